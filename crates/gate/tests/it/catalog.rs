//! The security catalog through the gate: every forged or confused token is refused with
//! the uniform 401 at every endpoint, from the header or the cookie, and nothing answers
//! 5xx (`send` asserts that for every request).

use http::{Method, StatusCode};
use wristband_gate::TWICE_BODY;
use wristband_testkit::catalog::bad_tokens;
use wristband_verify::INVALID_BODY;

use crate::*;

const INVALID: &str = r#"Bearer realm="wristband", error="invalid_token""#;

#[tokio::test]
async fn every_forged_token_is_refused_everywhere() {
    let m = minter();
    let app = app(&m).await;
    let tokens = bad_tokens(&m);
    assert!(tokens.len() > 40, "{}", tokens.len());
    let mut first: Option<(StatusCode, Vec<u8>)> = None;
    for (id, token) in &tokens {
        let auth = bearer(token);
        let Ok(_) = http::HeaderValue::from_str(&auth) else {
            panic!("{id}: not sendable as a header");
        };
        let cookie = format!("__Host-wb_at={token}");
        let replies = [
            (
                "nginx",
                nginx(
                    &app,
                    "GET",
                    "https://app.example.com/orders",
                    &[("authorization", &auth)],
                )
                .await,
            ),
            (
                "traefik",
                forward(
                    &app,
                    Via::Traefik,
                    "GET",
                    "app.example.com",
                    "/orders",
                    &[("authorization", &auth)],
                )
                .await,
            ),
            (
                "caddy",
                forward(
                    &app,
                    Via::Caddy,
                    "POST",
                    "app.example.com",
                    "/orders",
                    &[("authorization", &auth)],
                )
                .await,
            ),
            (
                "envoy",
                envoy(
                    &app,
                    "GET",
                    "app.example.com",
                    "/orders",
                    &[("authorization", &auth)],
                )
                .await,
            ),
            (
                "nginx cookie",
                nginx(
                    &app,
                    "GET",
                    "https://app.example.com/orders",
                    &[("cookie", &cookie)],
                )
                .await,
            ),
        ];
        for (via, r) in replies {
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{id} via {via}");
            assert_eq!(
                r.header("www-authenticate"),
                Some(INVALID),
                "{id} via {via}"
            );
            assert_eq!(r.body, INVALID_BODY.as_bytes(), "{id} via {via}");
            assert!(r.identity().is_empty(), "{id} via {via}");
            // H5: one body for every failure.
            match &first {
                None => first = Some((r.status, r.body.clone())),
                Some(f) => assert_eq!(f, &(r.status, r.body.clone()), "{id} via {via}"),
            }
        }
        // A navigation with a forged token is sent to log in, never let through.
        let r = forward(
            &app,
            Via::Traefik,
            "GET",
            "app.example.com",
            "/orders",
            &[("authorization", &auth), ("accept", CHROME_ACCEPT)],
        )
        .await;
        assert_eq!(r.status, StatusCode::FOUND, "{id}");
        assert!(r.identity().is_empty());
        // On an admin route too: forged admin claims get nowhere.
        let r = nginx(
            &app,
            "GET",
            "https://app.example.com/admin",
            &[("authorization", &auth)],
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{id}");
    }
}

#[tokio::test]
async fn a_token_sent_twice_is_an_invalid_request() {
    let m = minter();
    let app = app(&m).await;
    let token = m.token("user-1", Some("admin"));
    let auth = bearer(&token);
    // H3: in the query and the header.
    let url = format!("https://app.example.com/orders?access_token={token}");
    let r = nginx(&app, "GET", &url, &[("authorization", &auth)]).await;
    // nginx makes any status but 2xx, 401 and 403 a 500: the gate says 401 there.
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="wristband", error="invalid_request""#)
    );
    assert_eq!(r.body, TWICE_BODY.as_bytes());
    let uri = format!("/orders?access_token={token}");
    let r = forward(
        &app,
        Via::Traefik,
        "GET",
        "app.example.com",
        &uri,
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.identity().is_empty());
    let r = envoy(
        &app,
        "GET",
        "app.example.com",
        &uri,
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Two Authorization headers.
    let r = send(
        &app,
        Method::GET,
        "/authz/auth-request",
        &[
            ("x-original-url", "https://app.example.com/orders"),
            ("x-original-method", "GET"),
            ("authorization", &auth),
            ("authorization", &auth),
        ],
        local(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.identity().is_empty());
}
