//! A client that sends identity headers of its own: through either proxy, the app's
//! `/headers` echo never shows them, on anonymous and protected routes, with and without
//! a valid token.

use http::Method;
use serde_json::Value;

use crate::stack::{echoed, Front, Login, Stack};

/// What a hostile client adds to every request.
const SPOOFED: &[(&str, &str)] = &[
    ("x-auth-request-user", "admin"),
    ("x-auth-request-role", "admin"),
    ("x-auth-request-scope", "admin"),
    ("x-auth-request-session", "spoofed-session"),
    ("x-auth-request-client", "spoofed-client"),
    ("x-auth-request-amr", "mfa"),
    ("x-auth-request-access-token", "spoofed-token"),
    ("x-auth-request-email", "admin@example.com"),
    ("remote-user", "admin"),
    ("remote-groups", "admin"),
    ("x-original-url", "http://localhost/headers/public"),
    ("x-original-uri", "/headers/public"),
    ("x-original-method", "GET"),
    // Some frameworks read X_Auth_Request_User as X-Auth-Request-User.
    ("x_auth_request_user", "admin"),
    ("remote_user", "admin"),
];

/// No spoofed value, and no placeholder text, in any header the app received.
fn assert_clean(echo: &Value, what: &str) {
    let headers = echo["headers"].as_object().expect("headers object");
    for (name, values) in headers {
        for v in values.as_array().unwrap() {
            let v = v.as_str().unwrap();
            for (spoofed_name, spoofed_value) in SPOOFED {
                assert!(
                    !(name.eq_ignore_ascii_case(spoofed_name) && v == *spoofed_value),
                    "{what}: the app saw the client's {name}: {v}"
                );
            }
            assert!(
                ![
                    "admin",
                    "spoofed-session",
                    "spoofed-client",
                    "spoofed-token"
                ]
                .contains(&v),
                "{what}: the app saw a spoofed value in {name}: {v}"
            );
            assert!(
                !v.contains("{http."),
                "{what}: placeholder text in {name}: {v}"
            );
        }
    }
    for name in ["x-original-url", "x-original-uri", "x-original-method"] {
        assert!(
            echoed(echo, name).is_empty(),
            "{what}: the app saw {name}: {echo}"
        );
    }
}

/// The identity headers the app saw are exactly those of `login`'s token (alice, role
/// `user`), or none at all without a token.
fn assert_identity(echo: &Value, login: Option<&Login>, what: &str) {
    let identity = [
        "x-auth-request-user",
        "x-auth-request-role",
        "x-auth-request-session",
        "x-auth-request-client",
        "x-auth-request-amr",
        "x-auth-request-scope",
        "x-auth-request-access-token",
        "remote-user",
        "remote-groups",
    ];
    match login {
        None => {
            for name in identity {
                assert!(
                    echoed(echo, name).is_empty(),
                    "{what}: an anonymous request reached the app with {name}: {echo}"
                );
            }
        }
        Some(login) => {
            assert_eq!(
                echoed(echo, "x-auth-request-user"),
                [login.sub.as_str()],
                "{what}"
            );
            assert_eq!(echoed(echo, "remote-user"), [login.sub.as_str()], "{what}");
            assert_eq!(echoed(echo, "x-auth-request-role"), ["user"], "{what}");
            assert_eq!(echoed(echo, "remote-groups"), ["user"], "{what}");
            // Without --forward-token the token itself is not passed on.
            assert!(
                echoed(echo, "x-auth-request-access-token").is_empty(),
                "{what}: {echo}"
            );
        }
    }
}

/// The whole spoofing check through `front`.
pub(crate) async fn identity_spoofing_fails(s: &Stack, front: Front) {
    let alice = s.login("alice").await;
    let cases: [(&str, Option<&Login>, &str); 5] = [
        ("/headers/public", None, "anonymous route, no token"),
        (
            "/headers/public",
            Some(&alice),
            "anonymous route, alice's token",
        ),
        ("/headers", Some(&alice), "protected route, alice's token"),
        (
            "/headers/x/y?z=1",
            Some(&alice),
            "protected route with a query",
        ),
        (
            "/headers/public/deeper",
            None,
            "anonymous subtree, no token",
        ),
    ];
    for (path, login, what) in cases {
        let what = format!("{front:?} {what} ({path})");
        for method in [Method::GET, Method::POST] {
            let r = s
                .through(method.clone(), path, login.map(|l| l.at.as_str()), SPOOFED)
                .await;
            assert_eq!(r.status, 200, "{what} {method}: {}", r.text());
            let echo = r.json();
            assert_eq!(echo["method"], method.as_str(), "{what}");
            assert_clean(&echo, &what);
            assert_identity(&echo, login, &what);
        }
    }

    // Claiming an anonymous original URL, a role or a user does not open a protected
    // route: without a token it is a 401, with alice's a 403 on the admin area.
    let r = s.through(Method::GET, "/headers", None, SPOOFED).await;
    assert_eq!(r.status, 401, "{front:?} spoofed, no token: {}", r.text());
    let r = s
        .through(Method::GET, "/headers/admin", None, SPOOFED)
        .await;
    assert_eq!(
        r.status,
        401,
        "{front:?} spoofed admin, no token: {}",
        r.text()
    );
    let r = s
        .through(Method::GET, "/headers/admin", Some(&alice.at), SPOOFED)
        .await;
    assert_eq!(r.status, 403, "{front:?} spoofed admin role: {}", r.text());
    // The forward protocol's own headers, claimed by a client, are replaced too.
    let forwarded = [
        ("x-forwarded-uri", "/headers/public"),
        ("x-forwarded-method", "GET"),
        ("x-forwarded-host", "localhost"),
        ("x-forwarded-proto", "https"),
    ];
    let r = s.through(Method::GET, "/headers", None, &forwarded).await;
    assert_eq!(
        r.status,
        401,
        "{front:?} spoofed X-Forwarded-Uri: {}",
        r.text()
    );
}
