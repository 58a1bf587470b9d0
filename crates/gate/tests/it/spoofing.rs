//! Identity headers a client sends never come back from the gate except as computed from
//! the token, and a description of the original request from an untrusted peer is
//! ignored (deny).

use http::{Method, StatusCode};
use wristband_gate::ORIGINAL_BODY;

use crate::*;

const PLANTED: [(&str, &str); 9] = [
    ("x-auth-request-user", "admin"),
    ("x-auth-request-role", "admin"),
    ("x-auth-request-scope", "everything"),
    ("x-auth-request-session", "s-admin"),
    ("x-auth-request-client", "root"),
    ("x-auth-request-amr", "mfa"),
    ("x-auth-request-access-token", "forged"),
    ("remote-user", "admin"),
    ("remote-groups", "admin"),
];

#[tokio::test]
async fn planted_identity_headers_are_never_echoed() {
    let m = minter();
    let app = app(&m).await;
    let user = bearer(&m.token("user-2", Some("user")));
    let mut with_token = PLANTED.to_vec();
    with_token.push(("authorization", &user));
    let expected_user = vec![
        ("remote-groups".to_owned(), "user".to_owned()),
        ("remote-user".to_owned(), "user-2".to_owned()),
        (
            "x-auth-request-client".to_owned(),
            Minter::CLIENT_ID.to_owned(),
        ),
        ("x-auth-request-role".to_owned(), "user".to_owned()),
        ("x-auth-request-user".to_owned(), "user-2".to_owned()),
    ];

    // Allowed route, with a token: only the token's identity.
    let r = nginx(&app, "GET", "https://app.example.com/orders", &with_token).await;
    assert_eq!(
        (r.status, r.identity()),
        (StatusCode::OK, expected_user.clone())
    );
    for via in [Via::Traefik, Via::Caddy] {
        let r = forward(&app, via, "GET", "app.example.com", "/orders", &with_token).await;
        assert_eq!(
            (r.status, r.identity()),
            (StatusCode::OK, expected_user.clone())
        );
    }
    let r = envoy(&app, "GET", "app.example.com", "/orders", &with_token).await;
    assert_eq!(
        (r.status, r.identity()),
        (StatusCode::OK, expected_user.clone())
    );

    // Anonymous route without a token: allowed, and no identity at all.
    let r = nginx(&app, "GET", "https://app.example.com/public", &PLANTED).await;
    assert_eq!((r.status, r.identity()), (StatusCode::OK, vec![]));
    let r = forward(
        &app,
        Via::Traefik,
        "GET",
        "app.example.com",
        "/public",
        &PLANTED,
    )
    .await;
    assert_eq!((r.status, r.identity()), (StatusCode::OK, vec![]));
    let r = envoy(&app, "GET", "app.example.com", "/public", &PLANTED).await;
    assert_eq!((r.status, r.identity()), (StatusCode::OK, vec![]));

    // Planted headers do not make an admin: the role comes from the token.
    let r = nginx(&app, "GET", "https://app.example.com/admin", &with_token).await;
    assert_eq!((r.status, r.identity()), (StatusCode::FORBIDDEN, vec![]));
    let r = nginx(&app, "GET", "https://app.example.com/admin", &PLANTED).await;
    assert_eq!((r.status, r.identity()), (StatusCode::UNAUTHORIZED, vec![]));
}

#[tokio::test]
async fn descriptions_from_untrusted_peers_are_refused() {
    let m = minter();
    let app = app(&m).await;
    let admin = bearer(&m.token("user-1", Some("admin")));
    let r = send(
        &app,
        Method::GET,
        "/authz/auth-request",
        &[
            ("x-original-url", "https://app.example.com/public"),
            ("x-original-method", "GET"),
            ("authorization", &admin),
        ],
        stranger(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body, ORIGINAL_BODY.as_bytes());
    assert!(r.identity().is_empty());
    let r = send(
        &app,
        Method::GET,
        "/authz/forward",
        &[
            ("x-forwarded-method", "GET"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "/public"),
            ("authorization", &admin),
        ],
        stranger(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.identity().is_empty());

    // From the trusted proxy, but the description is missing, repeated or garbled: 403,
    // never 400 or 5xx.
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("x-original-url", "https://app.example.com/public")],
        vec![("x-original-method", "GET")],
        vec![("x-original-url", "/public"), ("x-original-method", "GET")],
        vec![
            ("x-original-url", "https://app.example.com/public"),
            ("x-original-method", "G E T"),
        ],
        vec![
            ("x-original-url", "https://evil@app.example.com/public"),
            ("x-original-method", "GET"),
        ],
        vec![
            ("x-original-url", "https://app.example.com/public"),
            ("x-original-url", "https://app.example.com/admin"),
            ("x-original-method", "GET"),
        ],
    ];
    for headers in cases {
        let mut headers = headers.clone();
        headers.push(("authorization", &admin));
        let r = send(&app, Method::GET, "/authz/auth-request", &headers, local()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{headers:?}");
        assert!(r.identity().is_empty());
    }
    let r = forward(
        &app,
        Via::Traefik,
        "GET",
        "app.example.com",
        "no-slash",
        &[("authorization", &admin)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
