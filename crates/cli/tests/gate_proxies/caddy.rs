//! Caddy `forward_auth` with the shipped `deploy/caddy/Caddyfile`: the forward protocol
//! (`/authz/forward`), where a browser navigation is redirected by the gate itself.

use http::Method;

use crate::nginx::NAVIGATE;
use crate::query_param;
use crate::spoofing::identity_spoofing_fails;
use crate::stack::{available, Front, Options, Stack};

#[tokio::test]
async fn caddy_allows_denies_and_redirects_navigations() {
    let test = "gate_proxies::caddy::caddy_allows_denies_and_redirects_navigations";
    if !available(test, Front::Caddy) {
        return;
    }
    let s = Stack::start(Options::new(Front::Caddy)).await;
    let alice = s.login("alice").await;
    let root = s.login("root").await;

    let r = s.get("/health", None).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let r = s.get("/resource", Some(&alice.at)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user"], alice.sub.as_str());
    assert_eq!(r.json()["role"], "user");

    // API calls: 401 with the challenge, never a redirect.
    let r = s.get("/resource", None).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r
        .header("www-authenticate")
        .is_some_and(|c| c.starts_with("Bearer")));
    assert!(r.header("location").is_none());
    let r = s.get("/resource", Some("not.a.token")).await;
    assert_eq!(r.status, 401, "{}", r.text());

    // Roles.
    let r = s.get("/admin", Some(&alice.at)).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r
        .header("www-authenticate")
        .is_some_and(|c| c.contains("insufficient_scope")));
    let r = s.get("/admin", Some(&root.at)).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // A navigation without a session: 302 for GET (and HEAD), 303 for other methods, to
    // the login URL with the original URL to come back to.
    for (method, status) in [(Method::GET, 302), (Method::HEAD, 302), (Method::POST, 303)] {
        let r = s
            .through(method.clone(), "/page/one?x=1", None, NAVIGATE)
            .await;
        assert_eq!(r.status, status, "{method}: {}", r.text());
        let location = r.header("location").unwrap_or_default().to_owned();
        assert!(
            location.starts_with(&format!("{}/auth/v1/session/resume?", s.origin)),
            "{method}: {location}"
        );
        assert_eq!(
            query_param(&location, "return_to").as_deref(),
            Some(format!("{}/page/one?x=1", s.origin).as_str()),
            "{method}: {location}"
        );
    }
    // A script's request is not a navigation.
    let mut xhr = NAVIGATE.to_vec();
    xhr.push(("x-requested-with", "XMLHttpRequest"));
    let r = s.through(Method::GET, "/page/one", None, &xhr).await;
    assert_eq!(r.status, 401, "{}", r.text());

    // The auth service under /auth/, its prefix stripped.
    let r = s.get("/auth/.well-known/jwks.json", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn caddy_never_passes_client_identity_headers_to_the_app() {
    let test = "gate_proxies::caddy::caddy_never_passes_client_identity_headers_to_the_app";
    if !available(test, Front::Caddy) {
        return;
    }
    let s = Stack::start(Options::new(Front::Caddy)).await;
    identity_spoofing_fails(&s, Front::Caddy).await;
}
