//! Browser cookie delivery, cookie refresh and logout, CSRF and CORS.

use std::collections::BTreeMap;

use http::Method;
use serde_json::json;
use wristband_testkit::http::TestResponse;

use crate::helpers::{claims, TestApp, PASSWORD};

pub const AT: &str = "__Host-wb_at";
pub const RT: &str = "__Secure-wb_rt";
pub const CSRF: &str = "__Host-wb_csrf";

/// A `Set-Cookie` header taken apart.
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// Attributes in order, as sent (`HttpOnly`, `Path=/`, ...).
    pub attrs: Vec<String>,
}

impl SetCookie {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find_map(|a| match a.split_once('=') {
            Some((n, v)) if n.eq_ignore_ascii_case(name) => Some(v),
            None if a.eq_ignore_ascii_case(name) => Some(""),
            _ => None,
        })
    }

    pub fn has(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }
}

/// Every `Set-Cookie` of a response, by name.
pub fn set_cookies(r: &TestResponse) -> BTreeMap<String, SetCookie> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let text = v.to_str().unwrap();
            let mut parts = text.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let c = SetCookie {
                name: name.to_owned(),
                value: value.to_owned(),
                attrs: parts.map(str::to_owned).collect(),
            };
            (c.name.clone(), c)
        })
        .collect()
}

/// The cookies a browser holds for this service.
#[derive(Debug, Clone, Default)]
pub struct Jar(pub BTreeMap<String, String>);

impl Jar {
    /// Applies a response's `Set-Cookie` headers (Max-Age=0 deletes).
    pub fn update(&mut self, r: &TestResponse) {
        for (name, c) in set_cookies(r) {
            if c.attr("Max-Age") == Some("0") {
                self.0.remove(&name);
            } else {
                self.0.insert(name, c.value);
            }
        }
    }

    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }

    /// The `Cookie` header for a path (the refresh cookie only under /v1/session).
    pub fn header(&self, path: &str) -> String {
        self.0
            .iter()
            .filter(|(n, _)| *n != RT || path.starts_with("/v1/session"))
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The session id, from the access token.
    pub fn sid(&self) -> String {
        claims(self.get(AT))["sid"].as_str().unwrap().to_owned()
    }
}

/// Logs in with cookie delivery (same-origin request) and returns the cookies.
pub async fn cookie_login(app: &TestApp, user: &str) -> Jar {
    let r = app
        .post_json(
            "/v1/login",
            &json!({"username": user, "password": PASSWORD, "delivery": "cookie"}),
            &[("origin", &app.base), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut jar = Jar::default();
    jar.update(&r);
    // The three session cookies and the device cookie.
    assert_eq!(jar.0.len(), 4, "{:?}", jar);
    jar
}

/// A POST as a browser on the service's own origin would send it, plus `extra` headers.
pub async fn browser_post(
    app: &TestApp,
    jar: &Jar,
    path: &str,
    extra: &[(&str, &str)],
) -> TestResponse {
    let cookie = jar.header(path);
    let mut h = vec![("cookie", cookie.as_str())];
    h.extend_from_slice(extra);
    app.client.send(Method::POST, &app.url(path), &h, b"").await
}

/// Same-origin browser headers with the CSRF header from the jar.
fn same_origin<'a>(app: &'a TestApp, jar: &'a Jar) -> [(&'static str, &'a str); 3] {
    [
        ("origin", app.base.as_str()),
        ("sec-fetch-site", "same-origin"),
        ("x-csrf-token", jar.get(CSRF)),
    ]
}

#[tokio::test]
async fn cookie_login_sets_the_three_cookies_with_the_contract_attributes() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "user").await;
    let r = app
        .post_json(
            "/v1/login",
            &json!({"username": "alice", "password": PASSWORD, "delivery": "cookie"}),
            &[("origin", &app.base)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let c = set_cookies(&r);
    assert_eq!(
        c.keys().cloned().collect::<Vec<_>>(),
        vec![
            AT.to_owned(),
            CSRF.to_owned(),
            "__Host-wb_device".to_owned(),
            RT.to_owned()
        ]
    );
    let refresh_ttl = (30 * 86_400).to_string();

    let at = &c[AT];
    assert!(at.has("HttpOnly") && at.has("Secure"), "{at:?}");
    assert_eq!(at.attr("SameSite"), Some("Strict"));
    assert_eq!(at.attr("Path"), Some("/"));
    assert_eq!(at.attr("Max-Age"), Some("900"));
    assert!(!at.has("Domain"), "__Host- cookies carry no Domain");
    assert!(claims(&at.value)["sub"].as_str().unwrap().len() > 4);

    let rt = &c[RT];
    assert!(rt.has("HttpOnly") && rt.has("Secure"), "{rt:?}");
    assert_eq!(rt.attr("SameSite"), Some("Strict"));
    assert_eq!(rt.attr("Path"), Some("/v1/session"));
    assert_eq!(rt.attr("Max-Age"), Some(refresh_ttl.as_str()));
    assert!(!rt.has("Domain"));
    assert_eq!(rt.value.len(), 43);

    let csrf = &c[CSRF];
    assert!(!csrf.has("HttpOnly"), "scripts must read the CSRF cookie");
    assert!(csrf.has("Secure"));
    assert_eq!(csrf.attr("SameSite"), Some("Strict"));
    assert_eq!(csrf.attr("Path"), Some("/"));
    assert_eq!(csrf.attr("Max-Age"), Some(refresh_ttl.as_str()));
    assert!(!csrf.has("Domain"));
    assert_eq!(csrf.value.len(), 43, "base64url of an HMAC-SHA256");

    // No token in the body: only the lifetimes.
    let body = r.json();
    let mut keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["delivery", "expires_at", "expires_in", "token_type"]);
    assert_eq!(body["delivery"], "cookie");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["expires_at"], app.now() + 900);
    assert_eq!(claims(&at.value)["exp"], body["expires_at"]);
    let text = r.text();
    assert!(!text.contains(&at.value) && !text.contains(&rt.value));
}

#[tokio::test]
async fn body_delivery_is_unchanged_and_sets_no_cookie() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "user").await;
    let r = app
        .post_json(
            "/v1/login",
            &json!({"username": "alice", "password": PASSWORD, "delivery": "body"}),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["access_token"].is_string());
    assert!(set_cookies(&r).is_empty());
    let r = app
        .post_json(
            "/v1/login",
            &json!({"username": "alice", "password": PASSWORD, "delivery": "pigeon"}),
            &[],
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn cookies_stay_under_4kb_with_an_rs256_token() {
    let app = TestApp::spawn_with(|c| c.alg = wristband_jose::Algorithm::RS256).await;
    app.add_user("a-rather-long-user.name@example.com", "administrator")
        .await;
    let r = app
        .post_json(
            "/v1/login",
            &json!({
                "username": "a-rather-long-user.name@example.com",
                "password": PASSWORD,
                "delivery": "cookie"
            }),
            &[("user-agent", &"M".repeat(300))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut sizes = Vec::new();
    for v in r.headers.get_all("set-cookie") {
        let len = v.as_bytes().len();
        sizes.push(len);
        assert!(len < 4096, "a Set-Cookie of {len} bytes");
    }
    let c = set_cookies(&r);
    let at = &c[AT].value;
    let header = wristband_jose::dangerous::decode_without_verification(at).unwrap();
    assert_eq!(header.header["alg"], "RS256");
    for claim in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "client_id",
        "role",
        "sid",
    ] {
        assert!(!claims(at)[claim].is_null(), "{claim} missing");
    }
    assert!(at.len() > 500, "an RS256 token is several hundred bytes");
    eprintln!("Set-Cookie sizes with RS256: {sizes:?} bytes");
}

#[tokio::test]
async fn cookie_refresh_rotates_and_two_tabs_converge() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "user").await;
    let jar = cookie_login(&app, "alice").await;
    app.advance(60);

    // Two tabs refresh with the same cookies at once: both succeed, with one successor.
    let a = browser_post(&app, &jar, "/v1/session/refresh", &same_origin(&app, &jar)).await;
    let b = browser_post(&app, &jar, "/v1/session/refresh", &same_origin(&app, &jar)).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(b.status, 200, "{}", b.text());
    let (ca, cb) = (set_cookies(&a), set_cookies(&b));
    assert_eq!(ca[RT].value, cb[RT].value);
    assert_ne!(ca[RT].value, jar.get(RT));
    assert_ne!(ca[AT].value, jar.get(AT));
    assert_eq!(
        ca[CSRF].value,
        jar.get(CSRF),
        "same session, same CSRF token"
    );
    assert_eq!(ca[RT].attr("Path"), Some("/v1/session"));
    let body = a.json();
    let mut keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["delivery", "expires_at", "expires_in"]);
    assert_eq!(body["expires_at"], app.now() + 900);
    assert!(!a.text().contains(&ca[AT].value));

    // The new cookies work; the access cookie's session is the same.
    let mut next = jar.clone();
    next.update(&a);
    assert_eq!(next.sid(), jar.sid());
    let r = browser_post(
        &app,
        &next,
        "/v1/session/refresh",
        &same_origin(&app, &next),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn cookie_refresh_without_a_refresh_cookie_fails_and_clears() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .send(Method::POST, &app.url("/v1/session/refresh"), &[], b"")
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid_grant");
    let c = set_cookies(&r);
    assert_eq!(c.len(), 3);
    assert!(c.values().all(|c| c.attr("Max-Age") == Some("0")));
}

#[tokio::test]
async fn cookie_logout_ends_the_session_and_clears_the_cookies() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "user").await;
    let jar = cookie_login(&app, "alice").await;
    let r = browser_post(&app, &jar, "/v1/session/logout", &same_origin(&app, &jar)).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let c = set_cookies(&r);
    assert_eq!(c.len(), 3);
    for name in [AT, RT, CSRF] {
        assert_eq!(c[name].attr("Max-Age"), Some("0"), "{name}");
        assert_eq!(c[name].value, "");
    }
    assert_eq!(c[RT].attr("Path"), Some("/v1/session"));
    // The session is over: its refresh token and its access token are refused.
    let r = browser_post(&app, &jar, "/v1/session/refresh", &same_origin(&app, &jar)).await;
    assert_eq!(r.status, 400);
    assert_eq!(app.me(jar.get(AT)).await.status, 401);
}

#[tokio::test]
async fn cookie_logout_works_with_the_refresh_cookie_alone() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "user").await;
    let mut jar = cookie_login(&app, "alice").await;
    let at = jar.get(AT).to_owned();
    jar.0.remove(AT); // the browser dropped the expired access cookie
    let r = browser_post(&app, &jar, "/v1/session/logout", &same_origin(&app, &jar)).await;
    assert_eq!(r.status, 204, "{}", r.text());
    jar.0.insert(AT.into(), at);
    let r = browser_post(&app, &jar, "/v1/session/refresh", &same_origin(&app, &jar)).await;
    assert_eq!(r.status, 400, "{}", r.text());
}

async fn assert_csrf_refused(r: TestResponse) {
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"], "csrf_failed");
    assert!(r.json()["error_description"].is_string());
}

#[tokio::test]
async fn csrf_missing_or_wrong_header_is_refused() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "user").await;
    let jar = cookie_login(&app, "alice").await;
    for path in ["/v1/session/refresh", "/v1/session/logout"] {
        let none = browser_post(&app, &jar, path, &[("origin", &app.base)]).await;
        assert_csrf_refused(none).await;
        let wrong = browser_post(
            &app,
            &jar,
            path,
            &[("origin", &app.base), ("x-csrf-token", "not-the-token")],
        )
        .await;
        assert_csrf_refused(wrong).await;
    }
    // Nothing changed: the session still refreshes.
    let r = browser_post(&app, &jar, "/v1/session/refresh", &same_origin(&app, &jar)).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn csrf_header_matching_a_forged_cookie_but_not_the_session_is_refused() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "user").await;
    app.add_user("mallory", "user").await;
    let victim = cookie_login(&app, "alice").await;
    let attacker = cookie_login(&app, "mallory").await;
    // Header and cookie agree (a planted cookie), but the value is another session's
    // CSRF token, or made up.
    for forged in [attacker.get(CSRF).to_owned(), "A".repeat(43)] {
        let mut jar = victim.clone();
        jar.0.insert(CSRF.into(), forged.clone());
        for path in ["/v1/session/refresh", "/v1/session/logout"] {
            let r = browser_post(
                &app,
                &jar,
                path,
                &[("origin", &app.base), ("x-csrf-token", &forged)],
            )
            .await;
            assert_csrf_refused(r).await;
        }
    }
    // The right header but no cookie: refused (double submit).
    let mut jar = victim.clone();
    jar.0.remove(CSRF);
    let r = browser_post(
        &app,
        &jar,
        "/v1/session/refresh",
        &[("x-csrf-token", victim.get(CSRF))],
    )
    .await;
    assert_csrf_refused(r).await;
}

#[tokio::test]
async fn cross_site_requests_are_refused() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "user").await;
    let jar = cookie_login(&app, "alice").await;
    let token = jar.get(CSRF);
    let cases: [&[(&str, &str)]; 4] = [
        &[("origin", "https://evil.example"), ("x-csrf-token", token)],
        &[("sec-fetch-site", "cross-site"), ("x-csrf-token", token)],
        &[("sec-fetch-site", "same-site"), ("x-csrf-token", token)],
        &[("origin", "null"), ("x-csrf-token", token)],
    ];
    for headers in cases {
        for path in ["/v1/session/refresh", "/v1/session/logout"] {
            let r = browser_post(&app, &jar, path, headers).await;
            assert_csrf_refused(r).await;
        }
    }
    // Login with cookie delivery is protected by the Origin rule too.
    let r = app
        .post_json(
            "/v1/login",
            &json!({"username": "alice", "password": PASSWORD, "delivery": "cookie"}),
            &[
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
        )
        .await;
    assert_csrf_refused(r).await;
    // A same-origin request without the fetch metadata (older browsers) passes.
    let r = browser_post(
        &app,
        &jar,
        "/v1/session/refresh",
        &[("x-csrf-token", token)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn get_never_changes_state() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "user").await;
    let jar = cookie_login(&app, "alice").await;
    for path in [
        "/v1/session/refresh",
        "/v1/session/logout",
        "/account/logout",
        "/account/logout-all",
        "/account/password",
        &format!("/account/sessions/{}/revoke", jar.sid()),
    ] {
        let r = app
            .client
            .get(
                &format!("{}?csrf_token={}", app.url(path), jar.get(CSRF)),
                &[
                    ("cookie", &jar.header(path)),
                    ("x-csrf-token", jar.get(CSRF)),
                ],
            )
            .await;
        assert!(
            r.status == 405 || r.status == 404,
            "GET {path}: {}",
            r.status
        );
        assert!(set_cookies(&r).is_empty(), "GET {path} set cookies");
    }
    // The session is intact: the access token works and the refresh token rotates.
    assert_eq!(app.me(jar.get(AT)).await.status, 200);
    let r = browser_post(&app, &jar, "/v1/session/refresh", &same_origin(&app, &jar)).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn cors_allows_listed_origins_only() {
    let app = TestApp::spawn_with(|c| {
        c.cors_allowed_origins = vec!["https://app.example.com".into()];
    })
    .await;
    app.add_user("alice", "user").await;
    let jar = cookie_login(&app, "alice").await;

    // Preflight from the listed origin.
    let r = app
        .client
        .send(
            Method::OPTIONS,
            &app.url("/v1/session/refresh"),
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "x-csrf-token"),
            ],
            b"",
        )
        .await;
    assert!(r.status.is_success(), "{}", r.status);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert!(r
        .header("access-control-allow-headers")
        .unwrap()
        .contains("x-csrf-token"));

    // The listed origin's credentialed refresh works (same-site, cross-origin).
    let r = browser_post(
        &app,
        &jar,
        "/v1/session/refresh",
        &[
            ("origin", "https://app.example.com"),
            ("sec-fetch-site", "same-site"),
            ("x-csrf-token", jar.get(CSRF)),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));

    // An unlisted origin gets no CORS headers at all, and its POST is refused.
    for method in [Method::OPTIONS, Method::POST] {
        let r = app
            .client
            .send(
                method.clone(),
                &app.url("/v1/session/refresh"),
                &[
                    ("origin", "https://evil.example"),
                    ("access-control-request-method", "POST"),
                    ("cookie", &jar.header("/v1/session/refresh")),
                ],
                b"",
            )
            .await;
        assert_eq!(r.header("access-control-allow-origin"), None, "{method}");
        assert_eq!(
            r.header("access-control-allow-credentials"),
            None,
            "{method}"
        );
        if method == Method::POST {
            assert_eq!(r.status, 403);
        }
    }
}

#[tokio::test]
async fn without_a_list_no_origin_gets_cors_headers() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(&app.url("/v1/me"), &[("origin", "https://app.example.com")])
        .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("access-control-allow-credentials"), None);
}

#[tokio::test]
async fn malformed_cors_origins_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::test_config(&dir);
    config.cors_allowed_origins = vec!["https://app.example.com/path".into()];
    assert!(config.validate().is_err());
    config.cors_allowed_origins = vec!["*".into()];
    assert!(config.validate().is_err());
    config.cors_allowed_origins = vec!["http://localhost:3000".into()];
    assert!(config.validate().is_ok());
}
