//! The access token from the `__Host-wb_at` cookie (issue 7): accepted only when the
//! verifier is configured for it, never over a bearer header, and with the double-submit
//! CSRF rule on state-changing requests; the verified-token cache changes none of it.

use crate::api_service::api_service_router;
use axum::body::Body;
use axum::Router;
use http::{Method, Request, StatusCode};
use wristband_testkit::{keys, Minter};
use wristband_verify::{
    CookieSource, Verifier, ACCESS_COOKIE, CSRF_COOKIE, CSRF_FAILED_BODY, EXPIRED_BODY,
    INVALID_BODY,
};

use crate::{bearer, call, minter, Reply};

const CSRF: &str = "pX2n8Hq-Zc4rW9sYt1uVbA";

async fn verifier(m: &Minter, cookies: bool, cache_capacity: usize) -> Verifier {
    let mut b = Verifier::builder(&m.iss, &m.aud)
        .keys(keys::key_set([m.key()]))
        .realm("orders")
        .cache_capacity(cache_capacity);
    if cookies {
        b = b.access_cookie(CookieSource::default());
    }
    b.build().await.unwrap()
}

async fn app(m: &Minter, cookies: bool) -> Router {
    api_service_router(verifier(m, cookies, 100).await)
}

fn request(method: Method, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder().method(method).uri("/resource");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

/// The `Cookie` header of a browser holding both cookies and an unrelated one.
fn jar(token: &str) -> String {
    format!("theme=dark; {ACCESS_COOKIE}={token}; {CSRF_COOKIE}={CSRF}")
}

fn assert_csrf_failed(r: &Reply, what: &str) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}");
    assert_eq!(r.body, CSRF_FAILED_BODY.as_bytes(), "{what}");
    assert_eq!(r.json()["error"], "csrf_failed", "{what}");
    assert_eq!(r.headers["content-type"], "application/json", "{what}");
    assert!(r.headers.get("www-authenticate").is_none(), "{what}");
}

fn assert_invalid(r: &Reply, what: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
    assert_eq!(
        r.www(),
        r#"Bearer realm="orders", error="invalid_token""#,
        "{what}"
    );
    assert_eq!(r.body, INVALID_BODY.as_bytes(), "{what}");
}

#[tokio::test]
async fn cookie_token_is_accepted_on_safe_methods() {
    let m = minter();
    let app = app(&m, true).await;
    let token = m.token("cookie-user", Some("admin"));
    let cookie = jar(&token);

    let r = call(&app, request(Method::GET, &[("cookie", &cookie)])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["sub"], "cookie-user");

    // Only the access cookie is needed to read, from any site: GET never changes state.
    let only = format!("{ACCESS_COOKIE}={token}");
    let r = call(
        &app,
        request(
            Method::GET,
            &[("cookie", &only), ("sec-fetch-site", "cross-site")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(&app, request(Method::HEAD, &[("cookie", &only)])).await;
    assert_eq!(r.status, StatusCode::OK);

    // HTTP/2 sends one `Cookie` header per cookie.
    let r = call(
        &app,
        request(
            Method::GET,
            &[
                ("cookie", "theme=dark"),
                ("cookie", &only),
                ("cookie", "x=1"),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["sub"], "cookie-user");

    // The extractors work the same: /admin checks the cookie token's role.
    let user = format!("{ACCESS_COOKIE}={}", m.token("plain", Some("user")));
    let admin = Request::get("/admin")
        .header("cookie", &cookie)
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, admin).await.status, StatusCode::OK);
    let not_admin = Request::get("/admin")
        .header("cookie", &user)
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, not_admin).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_bearer_header_wins_over_the_cookie() {
    let m = minter();
    let app = app(&m, true).await;
    let cookie = jar(&m.token("cookie-user", None));
    let auth = bearer(&m.token("bearer-user", None));

    let r = call(
        &app,
        request(
            Method::GET,
            &[("cookie", &cookie), ("authorization", &auth)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["sub"], "bearer-user");

    // A bearer request needs no CSRF token, even with the cookies and a cross-site fetch.
    let r = call(
        &app,
        request(
            Method::POST,
            &[
                ("cookie", &cookie),
                ("authorization", &auth),
                ("sec-fetch-site", "cross-site"),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["sub"], "bearer-user");

    // A bad bearer token is refused; the valid cookie is no fallback.
    let bad = bearer("not-a-token");
    let r = call(
        &app,
        request(Method::GET, &[("cookie", &cookie), ("authorization", &bad)]),
    )
    .await;
    assert_invalid(&r, "bad bearer with a good cookie");
}

#[tokio::test]
async fn state_changing_cookie_requests_need_the_csrf_token() {
    let m = minter();
    let app = app(&m, true).await;
    let token = m.token("cookie-user", None);
    let cookie = jar(&token);

    let r = call(&app, request(Method::POST, &[("cookie", &cookie)])).await;
    assert_csrf_failed(&r, "POST without X-CSRF-Token");

    for (what, sent) in [
        ("mismatched", "pX2n8Hq-Zc4rW9sYt1uVbB"),
        ("prefix", "pX2n8Hq-Zc4rW9sYt1uVb"),
        ("empty", ""),
    ] {
        let r = call(
            &app,
            request(Method::POST, &[("cookie", &cookie), ("x-csrf-token", sent)]),
        )
        .await;
        assert_csrf_failed(&r, what);
    }

    // The header without the CSRF cookie, and an empty token on both sides.
    let no_csrf_cookie = format!("{ACCESS_COOKIE}={token}");
    let r = call(
        &app,
        request(
            Method::POST,
            &[("cookie", &no_csrf_cookie), ("x-csrf-token", CSRF)],
        ),
    )
    .await;
    assert_csrf_failed(&r, "no CSRF cookie");
    let empty = format!("{ACCESS_COOKIE}={token}; {CSRF_COOKIE}=");
    let r = call(
        &app,
        request(Method::POST, &[("cookie", &empty), ("x-csrf-token", "")]),
    )
    .await;
    assert_csrf_failed(&r, "empty on both sides");

    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let r = call(
            &app,
            request(
                method.clone(),
                &[("cookie", &cookie), ("x-csrf-token", CSRF)],
            ),
        )
        .await;
        if method == Method::POST {
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(r.json()["sub"], "cookie-user");
            assert_eq!(r.json()["updated"], true);
        } else {
            // Past the CSRF check, the router answers: no such route for this method.
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        }
        let r = call(&app, request(method.clone(), &[("cookie", &cookie)])).await;
        assert_csrf_failed(&r, method.as_str());
    }
}

#[tokio::test]
async fn cross_site_fetches_are_refused() {
    let m = minter();
    let app = app(&m, true).await;
    let cookie = jar(&m.token("cookie-user", None));
    for site in ["cross-site", "same-site"] {
        let r = call(
            &app,
            request(
                Method::POST,
                &[
                    ("cookie", &cookie),
                    ("x-csrf-token", CSRF),
                    ("sec-fetch-site", site),
                ],
            ),
        )
        .await;
        assert_csrf_failed(&r, site);
    }
    for site in ["same-origin", "none"] {
        let r = call(
            &app,
            request(
                Method::POST,
                &[
                    ("cookie", &cookie),
                    ("x-csrf-token", CSRF),
                    ("sec-fetch-site", site),
                ],
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{site}");
    }
}

#[tokio::test]
async fn without_the_setting_cookies_are_ignored() {
    let m = minter();
    let app = app(&m, false).await;
    let cookie = jar(&m.token("cookie-user", None));
    for method in [Method::GET, Method::POST] {
        let r = call(
            &app,
            request(
                method.clone(),
                &[("cookie", &cookie), ("x-csrf-token", CSRF)],
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method}");
        assert_eq!(r.www(), r#"Bearer realm="orders""#, "{method}");
        assert!(r.body.is_empty(), "{method}");
    }
    // Bearer tokens work as before.
    let auth = bearer(&m.token("bearer-user", None));
    let r = call(&app, request(Method::POST, &[("authorization", &auth)])).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_duplicate_and_bad_cookies_get_401() {
    let m = minter();
    let app = app(&m, true).await;
    let good = m.token("cookie-user", None);
    let other = m.token("someone-else", None);
    for (what, cookie) in [
        (
            "duplicate, same value",
            format!("{ACCESS_COOKIE}={good}; {ACCESS_COOKIE}={good}"),
        ),
        (
            "duplicate, two values",
            format!("{ACCESS_COOKIE}={good}; {ACCESS_COOKIE}={other}"),
        ),
        ("empty", format!("{ACCESS_COOKIE}=; theme=dark")),
        ("space inside", format!("{ACCESS_COOKIE}={good} x")),
        ("comma inside", format!("{ACCESS_COOKIE}={good},x")),
        ("open quote", format!("{ACCESS_COOKIE}=\"{good}")),
        ("not a token", format!("{ACCESS_COOKIE}=not-a-token")),
        ("bad signature", format!("{ACCESS_COOKIE}={good}x")),
        (
            "oversized",
            format!(
                "{ACCESS_COOKIE}={}",
                "a".repeat(wristband_jose::MAX_TOKEN_BYTES + 1)
            ),
        ),
    ] {
        let r = call(&app, request(Method::GET, &[("cookie", &cookie)])).await;
        assert_invalid(&r, what);
    }
    // Across two headers too.
    let a = format!("{ACCESS_COOKIE}={good}");
    let b = format!("{ACCESS_COOKIE}={other}");
    let r = call(
        &app,
        request(Method::GET, &[("cookie", &a), ("cookie", &b)]),
    )
    .await;
    assert_invalid(&r, "duplicate across headers");

    // Near misses of the name are other cookies: no credential at all.
    for cookie in [
        format!("__host-wb_at={good}"),
        format!("wb_at={good}"),
        format!("{ACCESS_COOKIE} ={good}"),
    ] {
        let r = call(&app, request(Method::GET, &[("cookie", &cookie)])).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{cookie}");
        assert_eq!(r.www(), r#"Bearer realm="orders""#, "{cookie}");
    }

    // An expired cookie token says so, as a bearer one does.
    let expired = format!("{ACCESS_COOKIE}={}", m.expired("cookie-user"));
    let r = call(&app, request(Method::GET, &[("cookie", &expired)])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, EXPIRED_BODY.as_bytes());
}

/// A named request: method and headers.
type Case<'a> = (&'static str, Method, Vec<(&'a str, &'a str)>);

/// Every case above in one list, so that runs with and without the cache can be compared.
async fn scenarios(
    app: &Router,
    token: &str,
    bearer_token: &str,
) -> Vec<(&'static str, StatusCode, Vec<u8>)> {
    let cookie = jar(token);
    let auth = bearer(bearer_token);
    let dup = format!("{ACCESS_COOKIE}={token}; {ACCESS_COOKIE}={token}");
    let cases: Vec<Case> = vec![
        ("get", Method::GET, vec![("cookie", &cookie)]),
        (
            "bearer wins",
            Method::GET,
            vec![("cookie", &cookie), ("authorization", &auth)],
        ),
        ("post, no csrf", Method::POST, vec![("cookie", &cookie)]),
        (
            "post, mismatched csrf",
            Method::POST,
            vec![("cookie", &cookie), ("x-csrf-token", "nope")],
        ),
        (
            "post, csrf",
            Method::POST,
            vec![("cookie", &cookie), ("x-csrf-token", CSRF)],
        ),
        (
            "post, cross-site",
            Method::POST,
            vec![
                ("cookie", &cookie),
                ("x-csrf-token", CSRF),
                ("sec-fetch-site", "cross-site"),
            ],
        ),
        ("duplicate", Method::GET, vec![("cookie", &dup)]),
    ];
    let mut out = Vec::new();
    for (name, method, headers) in cases {
        let r = call(app, request(method, &headers)).await;
        out.push((name, r.status, r.body));
    }
    out
}

#[tokio::test]
async fn the_cached_token_path_behaves_the_same() {
    let m = minter();
    let token = m.token("cookie-user", None);
    let bearer_token = m.token("bearer-user", None);
    let uncached = api_service_router(verifier(&m, true, 0).await);
    let expected = scenarios(&uncached, &token, &bearer_token).await;
    let statuses: Vec<u16> = expected.iter().map(|(_, s, _)| s.as_u16()).collect();
    assert_eq!(statuses, [200, 200, 403, 403, 200, 403, 401]);

    let cached = verifier(&m, true, 100).await;
    let app = api_service_router(cached.clone());
    assert!(cached.verify_cached(&token).is_none());
    let cold = scenarios(&app, &token, &bearer_token).await;
    assert_eq!(cold, expected, "first pass: cache misses");
    assert!(
        matches!(cached.verify_cached(&token), Some(Ok(_))),
        "the cookie token is in the verified-token cache"
    );
    let warm = scenarios(&app, &token, &bearer_token).await;
    assert_eq!(warm, expected, "second pass: cache hits");
}

/// `api_service --access-cookie` as a real process next to one without the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_service_access_cookie_flag() {
    use wristband_testkit::http::Client;
    use wristband_testkit::process::ServiceProcess;
    use wristband_testkit::JwksServer;

    let key = keys::fixed(wristband_jose::Algorithm::ES256, 11);
    let server = JwksServer::start(keys::jwks([&key])).await;
    let m = Minter::new(key, server.issuer(), crate::AUDIENCE);
    let binary = crate::api_service_binary();
    let issuer = server.issuer();
    let jwks = server.jwks_url();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--issuer",
        &issuer,
        "--audience",
        crate::AUDIENCE,
        "--jwks",
        &jwks,
    ];
    let plain = ServiceProcess::spawn(&binary, &args).await;
    let with_flag = [&args[..], &["--access-cookie"]].concat();
    let cookies = ServiceProcess::spawn(&binary, &with_flag).await;
    let client = Client::new();
    let jar = jar(&m.token("cookie-user", None));
    let with_csrf = [("cookie", jar.as_str()), ("x-csrf-token", CSRF)];

    let r = client.get(&plain.url("/resource"), &with_csrf).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "cookies ignored by default"
    );
    let url = cookies.url("/resource");
    let r = client.get(&url, &[("cookie", &jar)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["sub"], "cookie-user");
    let r = client
        .send(Method::POST, &url, &[("cookie", &jar)], b"")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body.as_ref(), CSRF_FAILED_BODY.as_bytes());
    let r = client.send(Method::POST, &url, &with_csrf, b"").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["updated"], true);
    plain.terminate().await;
    cookies.terminate().await;
}
