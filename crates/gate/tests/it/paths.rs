//! Path confusion: every trick is decided on the normalised path or denied, never allowed
//! wrongly, whichever endpoint is asked.

use http::StatusCode;
use wristband_gate::{router, PATH_BODY};

use crate::*;

const POLICY: &str = r#"
[[rule]]
path = "/public"
require = "anonymous"

[[rule]]
path = "/admin"
require = "role:admin"
"#;

/// Paths that normalise to `/admin`.
const TO_ADMIN: [&str; 7] = [
    "/public/../admin",
    "/public/%2e%2e/admin",
    "/public/%2E%2E/admin",
    "//admin",
    "/public/./../admin",
    "/%61dmin",
    "/admin/",
];

/// Paths that are refused outright.
const REFUSED: [&str; 7] = [
    "/admin%2f..",
    "/public/..%2fadmin",
    "/public/%2e%2e%2fadmin",
    "/public/%00/../admin",
    "/public/..;/admin",
    "/../admin",
    "/public/%5c..%5cadmin",
];

/// Refused, and only expressible inside a header (not a valid request target).
const RAW_REFUSED: [&str; 2] = ["/public\\..\\admin", "/public/\u{1}/../admin"];

async fn all_endpoints(
    app: &Router,
    path: &str,
    original: &[(&str, &str)],
    envoy_too: bool,
) -> Vec<Reply> {
    let mut replies = vec![
        nginx(
            app,
            "GET",
            &format!("https://app.example.com{path}"),
            original,
        )
        .await,
        forward(app, Via::Traefik, "GET", "app.example.com", path, original).await,
        forward(app, Via::Caddy, "GET", "app.example.com", path, original).await,
    ];
    if envoy_too {
        replies.push(envoy(app, "GET", "app.example.com", path, original).await);
    }
    replies
}

#[tokio::test]
async fn confused_paths_are_decided_normalised_or_refused() {
    let m = minter();
    let app = router(gate(&m, POLICY).await);
    let user = bearer(&m.token("user-2", Some("user")));
    let admin = bearer(&m.token("user-1", Some("admin")));

    for path in TO_ADMIN {
        for r in all_endpoints(&app, path, &[], true).await {
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path} without a token");
        }
        for r in all_endpoints(&app, path, &[("authorization", &user)], true).await {
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path} as a user");
        }
        // Decided on /admin, not just denied: the admin gets through.
        for r in all_endpoints(&app, path, &[("authorization", &admin)], true).await {
            assert_eq!(r.status, StatusCode::OK, "{path} as an admin");
        }
    }
    for path in REFUSED {
        for r in all_endpoints(&app, path, &[("authorization", &admin)], true).await {
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
            assert_eq!(r.body, PATH_BODY.as_bytes(), "{path}");
            assert!(r.identity().is_empty());
        }
    }
    for path in RAW_REFUSED {
        let Ok(_) = http::HeaderValue::from_str(path) else {
            // A control character cannot even be sent in a header: nothing to decide.
            continue;
        };
        for r in all_endpoints(&app, path, &[("authorization", &admin)], false).await {
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path:?}");
        }
    }
    // And the public prefix does not leak to its neighbours.
    for r in all_endpoints(&app, "/publicity", &[], true).await {
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
}
