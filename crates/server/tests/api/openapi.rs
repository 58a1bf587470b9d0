//! The published API contract: served, complete (every JSON and OAuth route of the router
//! is in it) and rendered in docs/API.md.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use http::Method;
use serde_json::Value;

use crate::helpers::TestApp;

/// The router's source: its routes are read from it, so that a route added without a
/// document entry fails here.
const ROUTER_SOURCE: &str = include_str!("../../src/http/mod.rs");

/// `(method, path)` of every `.route(..)` in the router (the hosted pages are merged from
/// another module and are not part of the API).
fn router_routes() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let chunks: Vec<&str> = ROUTER_SOURCE.split(".route(").skip(1).collect();
    for chunk in chunks {
        // The route's own text: up to the next builder call.
        let end = [".merge(", ".fallback(", ".layer("]
            .iter()
            .filter_map(|m| chunk.find(m))
            .min()
            .unwrap_or(chunk.len());
        let chunk = &chunk[..end];
        let path = match chunk.trim_start().strip_prefix('"') {
            Some(rest) => rest[..rest.find('"').unwrap()].to_owned(),
            None if chunk.trim_start().starts_with("openapi::PATH") => "/openapi.json".to_owned(),
            None => panic!("a route whose path this test cannot read: {chunk}"),
        };
        let mut found = false;
        for method in ["get", "post", "put", "patch", "delete"] {
            let called = chunk
                .match_indices(&format!("{method}("))
                .any(|(i, _)| i == 0 || !chunk.as_bytes()[i - 1].is_ascii_alphanumeric());
            if called {
                out.insert((method.to_owned(), path.clone()));
                found = true;
            }
        }
        assert!(found, "no method found for {path}");
    }
    out
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route_of_the_router() {
    let t = TestApp::spawn_with(|c| c.allow_registration = true).await;
    let r = t.client.get(&t.url("/openapi.json"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc = r.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let routes = router_routes();
    assert!(routes.len() >= 20, "{routes:?}");
    let documented = documented(&doc);
    let missing: Vec<_> = routes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the API document: {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(extra.is_empty(), "documented but not routed: {extra:?}");

    // Every documented operation is routed (no fallback 404 or 405), and each names its
    // responses, every error one with the error body.
    for (method, path) in &documented {
        let url = t.url(&path.replace("{id}", "nosuchsession"));
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let got = t.client.send(m, &url, &[], b"").await;
        assert_ne!(got.status, 405, "{method} {path}");
        if got.status == 404 {
            assert_ne!(
                got.json()["error"],
                "not_found",
                "{method} {path}: {}",
                got.text()
            );
        }
        let op = &doc["paths"][path][method];
        let responses = op["responses"].as_object().unwrap();
        assert!(!responses.is_empty(), "{method} {path}");
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
        assert!(
            responses.contains_key(got.status.as_str()),
            "{method} {path} answered {} which is not documented",
            got.status
        );
    }
    // Throttled logins are documented with Retry-After.
    assert!(
        doc["paths"]["/v1/login"]["post"]["responses"]["429"]["headers"]["Retry-After"].is_object()
    );
    // Form-encoded OAuth endpoints and the event stream say so.
    for p in ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"] {
        assert!(
            doc["paths"][p]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
                .is_object(),
            "{p}"
        );
    }
    assert!(
        doc["paths"]["/v1/revocations/stream"]["get"]["responses"]["200"]["content"]
            ["text/event-stream"]
            .is_object()
    );
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for s in [
        "bearer",
        "access_cookie",
        "refresh_cookie",
        "csrf_header",
        "client_basic",
    ] {
        assert!(schemes.contains_key(s), "{s}");
    }
}

#[tokio::test]
async fn the_metadata_links_the_document() {
    let t = TestApp::spawn().await;
    let m = t
        .client
        .get(&t.url("/.well-known/oauth-authorization-server"), &[])
        .await
        .json();
    assert_eq!(m["wristband_openapi"], t.url("/openapi.json"));
    assert!(m["service_documentation"]
        .as_str()
        .unwrap()
        .ends_with("/docs/API.md"));
    let r = t
        .client
        .get(m["wristband_openapi"].as_str().unwrap(), &[])
        .await;
    assert_eq!(r.status, 200);
}

const API_MD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/API.md");

#[tokio::test]
async fn docs_api_md_is_rendered_from_the_document() {
    let t = TestApp::spawn().await;
    let doc = t.client.get(&t.url("/openapi.json"), &[]).await.json();
    let rendered = render(&doc);
    if std::env::var_os("WRISTBAND_BLESS").is_some() {
        std::fs::write(API_MD, &rendered).unwrap();
    }
    let on_disk = std::fs::read_to_string(API_MD).unwrap_or_default();
    assert!(
        on_disk == rendered,
        "docs/API.md is not the rendering of the API document; regenerate it with\n  \
         WRISTBAND_BLESS=1 cargo test -p wristband-server --test api docs_api_md"
    );
}

fn schema_name(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

/// A schema in a few words: a link to a named schema, or its type.
fn type_of(s: &Value) -> String {
    if let Some(r) = s["$ref"].as_str() {
        let name = schema_name(r);
        return format!("[{name}](#{})", name.to_lowercase());
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(list) = s[key].as_array() {
            return list.iter().map(type_of).collect::<Vec<_>>().join(" or ");
        }
    }
    if let Some(e) = s["enum"].as_array() {
        return e
            .iter()
            .map(|v| format!("`{}`", v.as_str().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join(" or ");
    }
    let types: Vec<String> = match &s["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => vec!["any".to_owned()],
    };
    types
        .iter()
        .map(|t| match t.as_str() {
            "array" => format!("array of {}", type_of(&s["items"])),
            "null" => "null".to_owned(),
            t => match s["format"].as_str() {
                Some(f) => format!("{t} ({f})"),
                None => t.to_owned(),
            },
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

fn cell(text: &str) -> String {
    text.replace('\n', " ").replace('|', "\\|")
}

/// Markdown of the document: endpoints in path order, then the schemas.
fn render(doc: &Value) -> String {
    let mut out = String::new();
    let info = &doc["info"];
    let _ = writeln!(out, "# {} HTTP API\n", info["title"].as_str().unwrap());
    let _ = writeln!(
        out,
        "<!-- Generated from the OpenAPI document; do not edit. Regenerate with:\n     \
         WRISTBAND_BLESS=1 cargo test -p wristband-server --test api docs_api_md -->\n"
    );
    let _ = writeln!(out, "{}\n", info["description"].as_str().unwrap());
    let _ = writeln!(
        out,
        "The machine-readable document (OpenAPI {}) is served at `GET /openapi.json` and \
         linked from the authorization server metadata as `wristband_openapi`. The hosted \
         HTML pages (`/login`, `/account` and their forms, `/static/*`) and the \
         navigation `GET /v1/session/resume` are for browsers and are not part of this \
         API (see BROWSERS.md).\n",
        doc["openapi"].as_str().unwrap()
    );
    let _ = writeln!(out, "## Security schemes\n");
    let _ = writeln!(out, "| Name | Kind | Description |\n| --- | --- | --- |");
    for (name, s) in doc["components"]["securitySchemes"].as_object().unwrap() {
        let kind = match s["type"].as_str().unwrap() {
            "http" => format!("HTTP `{}`", s["scheme"].as_str().unwrap()),
            "apiKey" => format!(
                "{} `{}`",
                s["in"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            ),
            other => other.to_owned(),
        };
        let _ = writeln!(
            out,
            "| `{name}` | {kind} | {} |",
            cell(s["description"].as_str().unwrap_or(""))
        );
    }
    let _ = writeln!(out, "\n## Endpoints\n");
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let _ = writeln!(out, "### `{} {path}`\n", method.to_uppercase());
            if let Some(s) = op["summary"].as_str() {
                let _ = writeln!(out, "{s}.\n");
            }
            if let Some(d) = op["description"].as_str() {
                let _ = writeln!(out, "{d}\n");
            }
            if let Some(sec) = op["security"].as_array() {
                let alts: Vec<String> = sec
                    .iter()
                    .map(|req| {
                        let names: Vec<String> = req
                            .as_object()
                            .unwrap()
                            .keys()
                            .map(|k| format!("`{k}`"))
                            .collect();
                        if names.is_empty() {
                            "none".to_owned()
                        } else {
                            names.join(" and ")
                        }
                    })
                    .collect();
                let _ = writeln!(out, "Authentication: {}.\n", alts.join(", or "));
            }
            if let Some(params) = op["parameters"].as_array() {
                let _ = writeln!(
                    out,
                    "| Parameter | In | Type | Required | Description |\n| --- | --- | --- | --- | --- |"
                );
                for p in params {
                    let _ = writeln!(
                        out,
                        "| `{}` | {} | {} | {} | {} |",
                        p["name"].as_str().unwrap(),
                        p["in"].as_str().unwrap(),
                        type_of(&p["schema"]),
                        if p["required"] == true { "yes" } else { "no" },
                        cell(p["description"].as_str().unwrap_or(""))
                    );
                }
                out.push('\n');
            }
            if let Some(content) = op["requestBody"]["content"].as_object() {
                for (ct, body) in content {
                    let _ = writeln!(
                        out,
                        "Request body (`{ct}`): {}.\n",
                        type_of(&body["schema"])
                    );
                }
            }
            let _ = writeln!(out, "| Status | Meaning | Body |\n| --- | --- | --- |");
            for (status, r) in op["responses"].as_object().unwrap() {
                let body = r["content"]
                    .as_object()
                    .map(|c| {
                        c.iter()
                            .map(|(ct, v)| format!("{} (`{ct}`)", type_of(&v["schema"])))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                let headers = r["headers"]
                    .as_object()
                    .map(|h| {
                        h.keys()
                            .map(|k| format!("; header `{k}`"))
                            .collect::<String>()
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "| {status} | {}{headers} | {body} |",
                    cell(r["description"].as_str().unwrap_or(""))
                );
            }
            out.push('\n');
        }
    }
    let _ = writeln!(out, "## Schemas\n");
    for (name, s) in doc["components"]["schemas"].as_object().unwrap() {
        let _ = writeln!(out, "### {name}\n");
        if let Some(d) = s["description"].as_str() {
            let _ = writeln!(out, "{d}\n");
        }
        if let Some(props) = s["properties"].as_object() {
            let required: Vec<&str> = s["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| Field | Type | Required | Description |\n| --- | --- | --- | --- |"
            );
            for (field, p) in props {
                let _ = writeln!(
                    out,
                    "| `{field}` | {} | {} | {} |",
                    type_of(p),
                    if required.contains(&field.as_str()) {
                        "yes"
                    } else {
                        "no"
                    },
                    cell(p["description"].as_str().unwrap_or(""))
                );
            }
            if s["additionalProperties"] == false {
                let _ = writeln!(out, "\nNo other fields are accepted.");
            }
        } else {
            let _ = writeln!(out, "One of: {}.", type_of(s));
        }
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}
