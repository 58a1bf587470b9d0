//! The service mounted under a path prefix (`public_url` with a path), return targets on
//! `/login`, and the refresh-and-return navigation `GET /v1/session/resume`.
//!
//! The service answers at its root, as behind a proxy that strips the prefix; what a
//! browser sees (links, form actions, redirects, cookie paths) carries the prefix.

use std::time::Duration;

use http::Method;
use wristband_testkit::http::TestResponse;

use crate::cookies::{browser_post, cookie_login, set_cookies, Jar, AT, CSRF, RT};
use crate::helpers::{claims, form, TestApp, PASSWORD};

pub const PUBLIC: &str = "https://app.example.com/auth";
pub const ORIGIN: &str = "https://app.example.com";

pub async fn mounted() -> TestApp {
    TestApp::spawn_with(|c| c.public_url = Some(PUBLIC.into())).await
}

async fn get(app: &TestApp, jar: &Jar, path: &str) -> TestResponse {
    app.client
        .get(&app.url(path), &[("cookie", &jar.header(path))])
        .await
}

/// A form post as the browser sends it from a page on `origin`.
pub async fn post_form_from(
    app: &TestApp,
    origin: &str,
    jar: &Jar,
    path: &str,
    pairs: &[(&str, &str)],
) -> TestResponse {
    app.client
        .send(
            Method::POST,
            &app.url(path),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", origin),
                ("sec-fetch-site", "same-origin"),
                ("cookie", &jar.header(path)),
            ],
            form(pairs).as_bytes(),
        )
        .await
}

/// Every `href`, `src` and `action` of a page.
fn urls_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in [" href=\"", " src=\"", " action=\""] {
        for (i, _) in text.match_indices(attr) {
            let rest = &text[i + attr.len()..];
            out.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    out
}

fn assert_all_under(text: &str, prefix: &str, at_least: usize) {
    let urls = urls_in(text);
    assert!(urls.len() >= at_least, "{urls:?} in {text}");
    for u in &urls {
        assert!(u.starts_with(prefix), "{u} does not start with {prefix}");
    }
}

/// A page's text with the entities that HTML escaping puts into attribute values decoded.
fn unescaped(r: &TestResponse) -> String {
    r.text().replace("&#x2f;", "/").replace("&amp;", "&")
}

/// The login form of alice, posted from the public origin with the return target `target`.
async fn login_returning_to(app: &TestApp, password: &str, target: &str) -> TestResponse {
    post_form_from(
        app,
        ORIGIN,
        &Jar::default(),
        "/login",
        &[
            ("username", "alice"),
            ("password", password),
            ("return_to", target),
        ],
    )
    .await
}

pub fn location(r: &TestResponse) -> &str {
    r.header("location")
        .unwrap_or_else(|| panic!("no Location: {} {}", r.status, r.text()))
}

pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Logs in through the login form from the public origin, and returns the cookies.
async fn form_login(app: &TestApp) -> (TestResponse, Jar) {
    let r = post_form_from(
        app,
        ORIGIN,
        &Jar::default(),
        "/login",
        &[("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    let mut jar = Jar::default();
    jar.update(&r);
    (r, jar)
}

#[tokio::test]
async fn without_a_public_url_the_pages_and_the_refresh_cookie_are_at_the_root() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "user").await;
    let login = app.client.get(&app.url("/login"), &[]).await;
    assert_all_under(&login.text(), "/", 2);
    assert!(!login.text().contains("/auth"));
    let jar = cookie_login(&app, "alice").await;
    let page = get(&app, &jar, "/account").await;
    assert!(page.text().contains(r#"<meta name="wb-base" content="">"#));
    assert!(page
        .text()
        .contains(r#"<script src="/static/session.js" defer></script>"#));
    // The public URL's origin is the issuer's: another origin is refused.
    let r = post_form_from(
        &app,
        ORIGIN,
        &Jar::default(),
        "/login",
        &[("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
}

#[tokio::test]
async fn the_login_page_links_and_posts_under_the_prefix() {
    let app = mounted().await;
    let r = app.client.get(&app.url("/login"), &[]).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(text.contains(r#"<form method="post" action="/auth/login""#));
    assert!(text.contains(r#"<link rel="stylesheet" href="/auth/static/style.css">"#));
    assert_all_under(&text, "/auth/", 2);
}

#[tokio::test]
async fn a_form_login_from_the_public_origin_lands_on_the_prefixed_account_page() {
    let app = mounted().await;
    let id = app.add_user("alice", "user").await;
    let (r, jar) = form_login(&app).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(location(&r), "/auth/account");
    let c = set_cookies(&r);
    assert_eq!(c[RT].attr("Path"), Some("/auth/v1/session"));
    assert_eq!(c[AT].attr("Path"), Some("/"));
    assert_eq!(c[CSRF].attr("Path"), Some("/"));
    assert_eq!(c["__Host-wb_device"].attr("Path"), Some("/"));
    assert_eq!(claims(jar.get(AT))["sub"], id.as_str());

    let page = get(&app, &jar, "/account").await;
    assert_eq!(page.status, 200, "{}", page.text());
    let text = page.text();
    assert!(text.contains(r#"<meta name="wb-base" content="/auth">"#));
    assert!(text.contains(r#"<script src="/auth/static/session.js" defer></script>"#));
    assert!(text.contains(&format!(
        r#"action="/auth/account/sessions/{}/revoke""#,
        jar.sid()
    )));
    // Stylesheet, script, and the four forms.
    assert_all_under(&text, "/auth/", 6);

    // The login form's Origin check: the public origin and the service's own are accepted,
    // any other is refused.
    let evil = post_form_from(
        &app,
        "https://evil.example",
        &Jar::default(),
        "/login",
        &[("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(evil.status, 403);
    let own = post_form_from(
        &app,
        &app.base,
        &Jar::default(),
        "/login",
        &[("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(own.status, 303);

    // The API's cookie login also sets the refresh cookie under the prefix.
    let r = app
        .post_json(
            "/v1/login",
            &serde_json::json!({"username": "alice", "password": PASSWORD, "delivery": "cookie"}),
            &[("origin", ORIGIN), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(set_cookies(&r)[RT].attr("Path"), Some("/auth/v1/session"));
}

#[tokio::test]
async fn redirects_after_logout_and_password_change_and_error_pages_carry_the_prefix() {
    let app = mounted().await;
    app.add_user("alice", "user").await;

    // Not logged in: to the prefixed login page.
    let r = app.client.get(&app.url("/account"), &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(location(&r), "/auth/login");

    // An error page (a refused CSRF token) links under the prefix, with the page headers.
    let (_, jar) = form_login(&app).await;
    let path = format!("/account/sessions/{}/revoke", jar.sid());
    let r = post_form_from(&app, ORIGIN, &jar, &path, &[("csrf_token", "forged")]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.header("content-security-policy").is_some());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let text = r.text();
    assert!(text.contains(r#"<a href="/auth/account">"#), "{text}");
    assert!(text.contains(r#"<a href="/auth/login">"#), "{text}");
    assert_all_under(&text, "/auth/", 3);

    // Revoking this session, logging out, changing the password.
    let r = post_form_from(&app, ORIGIN, &jar, &path, &[("csrf_token", jar.get(CSRF))]).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(location(&r), "/auth/login?done=revoked");
    let (_, jar) = form_login(&app).await;
    let (_, other) = form_login(&app).await;
    let r = post_form_from(
        &app,
        ORIGIN,
        &jar,
        &format!("/account/sessions/{}/revoke", other.sid()),
        &[("csrf_token", jar.get(CSRF))],
    )
    .await;
    assert_eq!(location(&r), "/auth/account");
    let r = post_form_from(
        &app,
        ORIGIN,
        &jar,
        "/account/logout",
        &[("csrf_token", jar.get(CSRF))],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(location(&r), "/auth/login?done=logout");
    let cleared = set_cookies(&r);
    assert_eq!(cleared[RT].attr("Path"), Some("/auth/v1/session"));
    assert_eq!(cleared[RT].attr("Max-Age"), Some("0"));
    assert_eq!(cleared[AT].attr("Path"), Some("/"));

    let (_, jar) = form_login(&app).await;
    let r = post_form_from(
        &app,
        ORIGIN,
        &jar,
        "/account/logout-all",
        &[("csrf_token", jar.get(CSRF))],
    )
    .await;
    assert_eq!(location(&r), "/auth/login?done=logout");

    // Tokens issued in the same instant as a logout-everywhere count as ended by it.
    app.advance(1);
    let (_, jar) = form_login(&app).await;
    let r = post_form_from(
        &app,
        ORIGIN,
        &jar,
        "/account/password",
        &[
            ("csrf_token", jar.get(CSRF)),
            ("current_password", PASSWORD),
            ("new_password", "a different passphrase, still long 1842"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(location(&r), "/auth/login?done=password");

    // The cookie session endpoints clear the refresh cookie under the prefix too.
    let r = browser_post(
        &app,
        &Jar::default(),
        "/v1/session/logout",
        &[("origin", ORIGIN)],
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(set_cookies(&r)[RT].attr("Path"), Some("/auth/v1/session"));
}

#[tokio::test]
async fn session_js_calls_the_refresh_endpoint_under_the_base_of_its_meta_tag() {
    let app = mounted().await;
    app.add_user("alice", "user").await;
    let js = app
        .client
        .get(&app.url("/static/session.js"), &[])
        .await
        .text();
    assert!(js.contains("meta('wb-base')"), "{js}");
    assert!(js.contains("fetch(base + '/v1/session/refresh'"), "{js}");
    // The cookie refresh the script makes, from the public origin: new cookies, the refresh
    // cookie under the prefix.
    let (_, jar) = form_login(&app).await;
    let r = browser_post(
        &app,
        &jar,
        "/v1/session/refresh",
        &[
            ("origin", ORIGIN),
            ("sec-fetch-site", "same-origin"),
            ("x-csrf-token", jar.get(CSRF)),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(set_cookies(&r)[RT].attr("Path"), Some("/auth/v1/session"));
}

const ALLOWED: [&str; 3] = [
    "https://app.example.com/docs/page?x=1",
    "/docs/page?x=1",
    "http://127.0.0.1:8000/dashboard",
];

/// Return targets that must never become a redirect.
fn refused() -> Vec<String> {
    let mut out: Vec<String> = [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "https:evil.example",
        "javascript:alert(1)",
        "https://app.example.com@evil.example/",
        "https://app.example.com/\r\nSet-Cookie: x=1",
        "http://app.example.com/",
        "data:text/html,x",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    out.push(format!("https://app.example.com/{}", "a".repeat(2048)));
    out
}

async fn with_return_origins() -> TestApp {
    TestApp::spawn_with(|c| {
        c.public_url = Some(PUBLIC.into());
        c.return_origins = vec![ORIGIN.into(), "http://127.0.0.1:8000".into()];
    })
    .await
}

fn resolved(target: &str) -> String {
    if target.starts_with('/') {
        format!("{ORIGIN}{target}")
    } else {
        target.to_owned()
    }
}

#[tokio::test]
async fn login_sends_the_browser_back_to_an_allowed_return_target_only() {
    let app = with_return_origins().await;
    app.add_user("alice", "user").await;
    for target in ALLOWED {
        // The page keeps the target in a hidden field...
        let page = app
            .client
            .get(&app.url(&format!("/login?return_to={}", enc(target))), &[])
            .await;
        assert_eq!(page.status, 200);
        let want = resolved(target);
        let hidden = format!(r#"<input type="hidden" name="return_to" value="{want}">"#);
        assert!(unescaped(&page).contains(&hidden), "{}", page.text());
        // ...a failed attempt keeps it...
        let r = login_returning_to(&app, "wrong", target).await;
        assert_eq!(r.status, 401);
        assert!(unescaped(&r).contains(&hidden), "{}", r.text());
        // ...and the login goes there.
        let r = login_returning_to(&app, PASSWORD, target).await;
        assert_eq!(r.status, 303, "{}", r.text());
        assert_eq!(location(&r), want);
        assert_eq!(set_cookies(&r).len(), 4);
    }
    for target in refused() {
        let page = app
            .client
            .get(&app.url(&format!("/login?return_to={}", enc(&target))), &[])
            .await;
        assert_eq!(page.status, 200);
        assert!(!page.text().contains("name=\"return_to\""), "{target:?}");
        // A forged hidden field is checked again: the login goes to the account page.
        let r = login_returning_to(&app, PASSWORD, &target).await;
        assert_eq!(r.status, 303, "{target:?}: {}", r.text());
        assert_eq!(location(&r), "/auth/account", "{target:?}");
    }
}

#[tokio::test]
async fn by_default_only_the_public_origin_is_a_return_target() {
    let app = mounted().await;
    app.add_user("alice", "user").await;
    for (target, want) in [
        ("https://app.example.com/x", "https://app.example.com/x"),
        ("/y", "https://app.example.com/y"),
        ("http://127.0.0.1:8000/dashboard", "/auth/account"),
    ] {
        let r = login_returning_to(&app, PASSWORD, target).await;
        assert_eq!(location(&r), want, "{target}");
    }
}

pub async fn resume(app: &TestApp, jar: &Jar, return_to: Option<&str>) -> TestResponse {
    let path = match return_to {
        Some(t) => format!("/v1/session/resume?return_to={}", enc(t)),
        None => "/v1/session/resume".to_owned(),
    };
    let r = app
        .client
        .get(
            &app.url(&path),
            &[
                ("cookie", &jar.header("/v1/session/resume")),
                ("sec-fetch-mode", "navigate"),
                ("accept", "text/html"),
            ],
        )
        .await;
    assert!(!r.status.is_server_error(), "{path}: {}", r.status);
    assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    r
}

#[tokio::test]
async fn resume_with_a_live_refresh_cookie_rotates_the_session_and_returns() {
    let app = TestApp::spawn_with(|c| {
        c.public_url = Some(PUBLIC.into());
        c.refresh_grace = Duration::ZERO;
    })
    .await;
    app.add_user("alice", "user").await;
    let (_, jar) = form_login(&app).await;
    let sid = jar.sid();
    // The access cookie has expired; the session lives on.
    app.advance(16 * 60);
    assert_eq!(app.me(jar.get(AT)).await.status, 401);

    let target = "https://app.example.com/docs/page?x=1";
    let r = resume(&app, &jar, Some(target)).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(location(&r), target);
    let c = set_cookies(&r);
    assert_eq!(c.len(), 3, "{c:?}");
    assert_eq!(c[RT].attr("Path"), Some("/auth/v1/session"));
    assert_eq!(c[AT].attr("Path"), Some("/"));
    assert_eq!(c[CSRF].attr("Path"), Some("/"));
    assert_ne!(c[RT].value, jar.get(RT), "rotated");
    let mut fresh = jar.clone();
    fresh.update(&r);
    assert_eq!(fresh.sid(), sid, "the same session");
    assert_eq!(app.me(fresh.get(AT)).await.status, 200);

    // Without return_to: the account page.
    let r = resume(&app, &fresh, None).await;
    assert_eq!(r.status, 303);
    assert_eq!(location(&r), "/auth/account");
    let mut fresher = fresh.clone();
    fresher.update(&r);

    // The spent cookie again: reuse. Back to the login page, cookies cleared, and the
    // whole session is ended.
    let r = resume(&app, &jar, Some(target)).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        location(&r),
        format!("/auth/login?return_to={}", enc(target))
    );
    let cleared = set_cookies(&r);
    assert!(cleared.values().all(|c| c.attr("Max-Age") == Some("0")));
    assert_eq!(cleared[RT].attr("Path"), Some("/auth/v1/session"));
    assert_eq!(app.me(fresher.get(AT)).await.status, 401, "session revoked");
    let r = resume(&app, &fresher, Some(target)).await;
    assert!(location(&r).starts_with("/auth/login?"));
}

#[tokio::test]
async fn resume_without_a_session_goes_to_the_login_page_with_the_target() {
    let app = mounted().await;
    app.add_user("alice", "user").await;
    let target = "https://app.example.com/docs?a=1&b=2";
    let r = resume(&app, &Jar::default(), Some(target)).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        location(&r),
        format!("/auth/login?return_to={}", enc(target))
    );
    assert!(set_cookies(&r).is_empty());
    // A path target is sent on resolved.
    let r = resume(&app, &Jar::default(), Some("/docs")).await;
    assert_eq!(
        location(&r),
        format!(
            "/auth/login?return_to={}",
            enc("https://app.example.com/docs")
        )
    );
    // A refresh cookie that is no token: to the login page, the cookies cleared.
    let mut jar = Jar::default();
    jar.0.insert(RT.into(), "garbage".into());
    let r = resume(&app, &jar, Some(target)).await;
    assert_eq!(r.status, 303);
    assert!(location(&r).starts_with("/auth/login?return_to="));
    assert!(set_cookies(&r)
        .values()
        .all(|c| c.attr("Max-Age") == Some("0")));
    // An expired session (past the idle lifetime): the same.
    let (_, jar) = form_login(&app).await;
    app.advance(15 * 86_400);
    let r = resume(&app, &jar, Some(target)).await;
    assert_eq!(r.status, 303);
    assert!(location(&r).starts_with("/auth/login?return_to="));
    // And the login page it leads to keeps the target.
    let page = app
        .client
        .get(&app.url(location(&r).trim_start_matches("/auth")), &[])
        .await;
    assert!(
        unescaped(&page)
            .contains(r#"name="return_to" value="https://app.example.com/docs?a=1&b=2""#),
        "{}",
        page.text()
    );
}

#[tokio::test]
async fn resume_refuses_a_target_that_is_not_allowed_with_a_400_page() {
    let app = with_return_origins().await;
    app.add_user("alice", "user").await;
    let (_, jar) = form_login(&app).await;
    for target in refused() {
        let r = resume(&app, &jar, Some(&target)).await;
        assert_eq!(r.status, 400, "{target:?}");
        assert_eq!(r.header("location"), None, "{target:?}");
        assert!(set_cookies(&r).is_empty(), "{target:?}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert!(r.text().contains("not an allowed return target"));
        assert!(r.text().contains(r#"<a href="/auth/login">"#));
    }
    // Nothing was spent: the refresh cookie still resumes.
    let r = resume(&app, &jar, Some(ALLOWED[2])).await;
    assert_eq!(r.status, 303);
    assert_eq!(location(&r), ALLOWED[2]);
    // Malformed queries are client errors too, never a 5xx (checked in `resume`).
    for query in [
        "return_to=%FF%FE",
        "return_to=%00",
        "return_to=a&return_to=b",
        "return_to",
        "return_to=%",
    ] {
        let r = app
            .client
            .get(&app.url(&format!("/v1/session/resume?{query}")), &[])
            .await;
        assert!(r.status == 400 || r.status == 303, "{query}: {}", r.status);
        assert!(!r.status.is_server_error());
        if r.status == 303 {
            assert!(location(&r).starts_with("/auth/login"), "{query}");
        }
    }
}

#[tokio::test]
async fn resume_without_a_prefix_uses_the_root_paths() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "user").await;
    let target = format!("{}/somewhere", app.base);
    let r = resume(&app, &Jar::default(), Some(&target)).await;
    assert_eq!(location(&r), format!("/login?return_to={}", enc(&target)));
    let jar = cookie_login(&app, "alice").await;
    let r = resume(&app, &jar, Some(&target)).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(location(&r), target);
    assert_eq!(set_cookies(&r)[RT].attr("Path"), Some("/v1/session"));
    // Another origin than the issuer's is refused.
    let r = resume(&app, &jar, Some("https://app.example.com/")).await;
    assert_eq!(r.status, 400);
}
