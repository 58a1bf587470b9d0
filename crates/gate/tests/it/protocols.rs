//! Each endpoint with exactly the headers its proxy sends: allow, 401, 403, role, scope
//! and mfa rules, anonymous routes, default deny, navigation versus XHR and API calls,
//! cookies with the CSRF rule, forwarded tokens, `/health` and `/metrics`.

use http::{Method, StatusCode};
use serde_json::json;
use wristband_gate::{router, INSUFFICIENT_BODY, MISSING_BODY, NO_RULE_BODY};
use wristband_verify::{CSRF_FAILED_BODY, EXPIRED_BODY};

use crate::*;

fn ids(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn auth_request_allows_denies_and_never_redirects() {
    let m = minter();
    let app = app(&m).await;
    let admin = bearer(&m.token("user-1", Some("admin")));
    let user = bearer(&m.token("user-2", Some("user")));

    // Allow: 200, identity from the token, nothing else of the kind.
    let r = nginx(
        &app,
        "GET",
        "https://app.example.com/admin/users?page=2",
        &[("authorization", &admin)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.identity(),
        ids(&[
            ("x-auth-request-user", "user-1"),
            ("x-auth-request-role", "admin"),
            ("x-auth-request-client", Minter::CLIENT_ID),
            ("remote-user", "user-1"),
            ("remote-groups", "admin"),
        ])
    );
    assert!(r.body.is_empty());

    // Valid token, role missing: 403 insufficient_scope.
    let r = nginx(
        &app,
        "GET",
        "https://app.example.com/admin",
        &[("authorization", &user)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="wristband", error="insufficient_scope""#)
    );
    assert_eq!(r.body, INSUFFICIENT_BODY.as_bytes());
    assert!(r.identity().is_empty());

    // No token, an API call: 401 with a bare challenge, no Location.
    let r = nginx(
        &app,
        "GET",
        "https://app.example.com/admin",
        &[("accept", "application/json")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="wristband""#)
    );
    assert_eq!(r.header("location"), None);
    assert_eq!(r.body, MISSING_BODY.as_bytes());

    // No token, a navigation: still 401 (never 3xx for nginx), with the login Location.
    for original in [
        vec![("accept", CHROME_ACCEPT)],
        vec![("sec-fetch-mode", "navigate"), ("accept", "*/*")],
    ] {
        let r = nginx(&app, "GET", "https://app.example.com/admin?x=1", &original).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.header("location"),
            Some(
                format!("{LOGIN}?return_to=https%3A%2F%2Fapp.example.com%2Fadmin%3Fx%3D1").as_str()
            )
        );
        assert!(r.header("www-authenticate").is_some());
    }

    // Expired: 401 with the expired body; a navigation is sent to log in again.
    let expired = bearer(&m.expired("user-1"));
    let r = nginx(
        &app,
        "GET",
        "https://app.example.com/",
        &[("authorization", &expired)],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, EXPIRED_BODY.as_bytes());
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="wristband", error="invalid_token""#)
    );
    let r = nginx(
        &app,
        "GET",
        "https://app.example.com/",
        &[("authorization", &expired), ("accept", CHROME_ACCEPT)],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("location").unwrap().starts_with(LOGIN));

    // Anonymous: allowed without a token (no identity), with one (its identity).
    let r = nginx(&app, "POST", "https://app.example.com/public/form", &[]).await;
    assert_eq!((r.status, r.identity()), (StatusCode::OK, vec![]));
    let r = nginx(
        &app,
        "GET",
        "https://app.example.com/public",
        &[("authorization", &user)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-auth-request-user"), Some("user-2"));
    // An invalid token on an anonymous route: allowed, anonymous.
    let r = nginx(
        &app,
        "GET",
        "https://app.example.com/public",
        &[("authorization", "Bearer nope")],
    )
    .await;
    assert_eq!((r.status, r.identity()), (StatusCode::OK, vec![]));

    // Default deny: no rule for another host.
    let r = nginx(
        &app,
        "GET",
        "https://other.example.com/x",
        &[("authorization", &admin)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body, NO_RULE_BODY.as_bytes());
    assert!(r.identity().is_empty());
}

#[tokio::test]
async fn scope_and_mfa_rules_and_methods() {
    let m = minter();
    let app = app(&m).await;
    let reader = bearer(&m.sign(&m.claims("u").with_scope("orders.read profile")));
    let writer = bearer(&m.sign(&m.claims("u").with_scope("orders.write")));
    let url = "https://app.example.com/api/orders/42";
    let r = nginx(&app, "GET", url, &[("authorization", &reader)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("x-auth-request-scope"),
        Some("orders.read profile")
    );
    let r = nginx(&app, "GET", url, &[("authorization", &writer)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The rule is for GET and HEAD: a DELETE falls through to the catch-all `app` rule.
    let r = nginx(&app, "DELETE", url, &[("authorization", &writer)]).await;
    assert_eq!(r.status, StatusCode::OK);

    let mfa = m.sign(
        &m.claims("u")
            .with_sid("s-1")
            .with_claim("amr", json!(["pwd", "mfa"]))
            .unwrap(),
    );
    let pwd = m.sign(&m.claims("u").with_claim("amr", json!(["pwd"])).unwrap());
    let r = nginx(
        &app,
        "GET",
        "https://app.example.com/vault",
        &[("authorization", &bearer(&mfa))],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-auth-request-amr"), Some("pwd,mfa"));
    assert_eq!(r.header("x-auth-request-session"), Some("s-1"));
    // A password-only sign-in is asked to step up (RFC 9470), not refused with 403.
    let r = nginx(
        &app,
        "GET",
        "https://app.example.com/vault",
        &[("authorization", &bearer(&pwd))],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            "Bearer realm=\"wristband\", error=\"insufficient_user_authentication\", \
             error_description=\"A different authentication level is required\", \
             acr_values=\"urn:wristband:acr:mfa urn:wristband:acr:phr\""
        )
    );
}

#[tokio::test]
async fn forward_redirects_navigations_and_challenges_scripts() {
    let m = minter();
    let app = app(&m).await;
    let user = bearer(&m.token("user-2", Some("user")));
    for via in [Via::Traefik, Via::Caddy] {
        let r = forward(
            &app,
            via,
            "GET",
            "app.example.com",
            "/orders?id=7",
            &[("authorization", &user)],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("x-auth-request-user"), Some("user-2"));

        let nav = [("accept", CHROME_ACCEPT)];
        let r = forward(&app, via, "GET", "app.example.com", "/orders?id=7", &nav).await;
        assert_eq!(r.status, StatusCode::FOUND);
        assert_eq!(
            r.header("location"),
            Some(
                format!("{LOGIN}?return_to=https%3A%2F%2Fapp.example.com%2Forders%3Fid%3D7")
                    .as_str()
            )
        );
        let r = forward(&app, via, "HEAD", "app.example.com", "/orders", &nav).await;
        assert_eq!(r.status, StatusCode::FOUND);
        let r = forward(&app, via, "POST", "app.example.com", "/orders", &nav).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);

        // XHR and API calls: 401 with the challenge, never a redirect.
        for script in [
            vec![
                ("accept", CHROME_ACCEPT),
                ("x-requested-with", "XMLHttpRequest"),
            ],
            vec![("accept", "application/json")],
            vec![("sec-fetch-mode", "cors"), ("accept", "*/*")],
            vec![],
        ] {
            let r = forward(&app, via, "GET", "app.example.com", "/orders", &script).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{script:?}");
            assert_eq!(
                r.header("www-authenticate"),
                Some(r#"Bearer realm="wristband""#)
            );
            assert_eq!(r.header("location"), None);
        }
        let r = forward(
            &app,
            via,
            "GET",
            "app.example.com",
            "/admin",
            &[("authorization", &user)],
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn cookies_follow_the_csrf_rule_of_the_original_method() {
    let m = minter();
    let app = app(&m).await;
    let token = m.token("user-3", None);
    let cookie = format!("__Host-wb_at={token}; __Host-wb_csrf=c5rf");
    let r = caddy(
        &app,
        "GET",
        "app.example.com",
        "/orders",
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-auth-request-user"), Some("user-3"));
    // Caddy asks with GET, but the original is a POST: the CSRF rule applies to it.
    let r = caddy(
        &app,
        "POST",
        "app.example.com",
        "/orders",
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body, CSRF_FAILED_BODY.as_bytes());
    let r = caddy(
        &app,
        "POST",
        "app.example.com",
        "/orders",
        &[
            ("cookie", &cookie),
            ("x-csrf-token", "c5rf"),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = nginx(
        &app,
        "DELETE",
        "https://app.example.com/orders",
        &[
            ("cookie", &cookie),
            ("sec-fetch-site", "cross-site"),
            ("x-csrf-token", "c5rf"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn envoy_allows_with_exactly_200() {
    let m = minter();
    let app = app(&m).await;
    let admin = bearer(&m.token("user-1", Some("admin")));
    let r = envoy(
        &app,
        "POST",
        "app.example.com",
        "/admin/x?y=1",
        &[("authorization", &admin)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-auth-request-role"), Some("admin"));
    let r = envoy(
        &app,
        "GET",
        "app.example.com",
        "",
        &[("authorization", &admin)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "the root path");
    let r = envoy(&app, "GET", "app.example.com", "/admin", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = envoy(
        &app,
        "GET",
        "app.example.com",
        "/admin",
        &[("accept", CHROME_ACCEPT)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert!(r
        .header("location")
        .unwrap()
        .ends_with("return_to=https%3A%2F%2Fapp.example.com%2Fadmin"));
    let r = envoy(
        &app,
        "PUT",
        "app.example.com",
        "/x",
        &[("accept", CHROME_ACCEPT)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let user = bearer(&m.token("u", None));
    let r = envoy(
        &app,
        "GET",
        "app.example.com",
        "/admin",
        &[("authorization", &user)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The host decides too: no rule for another host.
    let r = envoy(
        &app,
        "GET",
        "evil.example.com",
        "/x",
        &[("authorization", &admin)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_token_is_forwarded_and_headers_renamed_on_request() {
    let m = minter();
    let policy = "[headers]\nuser = \"X-User\"\nforward_token = true\n[[rule]]\npath = \"/\"\nrequire = \"authenticated\"\n";
    let app = router(gate(&m, policy).await);
    let token = m.token("user-9", None);
    let r = nginx(
        &app,
        "GET",
        "https://a.example/x",
        &[("authorization", &bearer(&token))],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-user"), Some("user-9"));
    assert_eq!(r.header("x-auth-request-user"), None);
    assert_eq!(
        r.header("x-auth-request-access-token"),
        Some(token.as_str())
    );
    let cookie = format!("__Host-wb_at={token}");
    let r = nginx(&app, "GET", "https://a.example/x", &[("cookie", &cookie)]).await;
    assert_eq!(
        r.header("x-auth-request-access-token"),
        Some(token.as_str())
    );
}

#[tokio::test]
async fn health_and_metrics() {
    let m = minter();
    let app = app(&m).await;
    let r = send(&app, Method::GET, "/health", &[], stranger()).await;
    assert_eq!(r.status, StatusCode::OK);
    let user = bearer(&m.token("u", None));
    nginx(
        &app,
        "GET",
        "https://app.example.com/",
        &[("authorization", &user)],
    )
    .await;
    nginx(
        &app,
        "GET",
        "https://app.example.com/",
        &[("authorization", &user)],
    )
    .await;
    traefik(
        &app,
        "GET",
        "app.example.com",
        "/",
        &[("accept", CHROME_ACCEPT)],
    )
    .await;
    let r = send(&app, Method::GET, "/metrics", &[], stranger()).await;
    let text = String::from_utf8(r.body).unwrap();
    assert!(
        text.contains(
            "wristband_gate_decisions_total{endpoint=\"auth-request\",outcome=\"allow\"} 2\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "wristband_gate_decisions_total{endpoint=\"forward\",outcome=\"redirect\"} 1\n"
        ),
        "{text}"
    );
    assert!(text.contains("wristband_gate_cached_tokens 1\n"), "{text}");
}
