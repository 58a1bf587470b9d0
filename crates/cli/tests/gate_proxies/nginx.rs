//! nginx `auth_request` with the shipped `deploy/nginx/` configuration.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::json;
use wristband_testkit::http::Client;

use crate::query_param;
use crate::spoofing::identity_spoofing_fails;
use crate::stack::{available, Front, Options, Stack, POLICY};

/// The `Accept` of a browser's page load.
pub(crate) const NAVIGATE: &[(&str, &str)] = &[
    (
        "accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ),
    ("sec-fetch-mode", "navigate"),
];

#[tokio::test]
async fn nginx_allows_denies_and_applies_the_policy() {
    let test = "gate_proxies::nginx::nginx_allows_denies_and_applies_the_policy";
    if !available(test, Front::Nginx) {
        return;
    }
    let s = Stack::start(Options::new(Front::Nginx)).await;
    let alice = s.login("alice").await;
    let root = s.login("root").await;

    // An anonymous route, no token.
    let r = s.get("/health", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "ok");

    // No token, a forged one, a token for another issuer's key: 401 with the challenge,
    // and no redirect for an API call.
    let forged =
        "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJhZG1pbiIsInJvbGUiOiJhZG1pbiJ9.";
    for (token, what) in [(None, "no token"), (Some(forged), "alg none")] {
        let r = s.get("/resource", token).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "{what}: {challenge:?}");
        assert!(
            r.header("location").is_none(),
            "{what}: an API call redirected"
        );
        assert_eq!(r.json()["error"], "unauthorized", "{what}");
    }
    let mut tampered = alice.at.clone();
    tampered.pop();
    tampered.push(if alice.at.ends_with('A') { 'B' } else { 'A' });
    let r = s.get("/resource", Some(&tampered)).await;
    assert_eq!(r.status, 401, "a tampered signature: {}", r.text());

    // A valid token: the app answers with the identity the gate verified.
    let r = s.get("/resource", Some(&alice.at)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user"], alice.sub.as_str());
    assert_eq!(r.json()["role"], "user");

    // The role rule: alice (user) is refused the admin area by the gate with
    // insufficient_scope; root (admin) gets in.
    let r = s.get("/admin", Some(&alice.at)).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains("insufficient_scope"),
        "403 challenge: {challenge:?}"
    );
    assert_eq!(r.json()["error"], "forbidden");
    let r = s.get("/admin", Some(&root.at)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user"], root.sub.as_str());

    // Methods: the health rule is for GET and HEAD; a DELETE falls to "signed in".
    let r = s.through(Method::DELETE, "/health", None, &[]).await;
    assert_eq!(r.status, 401, "DELETE /health: {}", r.text());
    let r = s.through(Method::HEAD, "/health", None, &[]).await;
    assert_eq!(r.status, 200);

    // Path normalisation: dot segments do not climb out of an anonymous prefix.
    let r = s.get("/health/../resource", None).await;
    assert_ne!(r.status, 200, "/health/../resource: {}", r.text());
    let r = s.get("/headers/public/%2e%2e/x", None).await;
    assert_ne!(r.status, 200, "an encoded dot segment: {}", r.text());

    // A browser navigation without a session: nginx turns the gate's 401 into a 302 to
    // the login URL, with the original URL to come back to.
    let r = s
        .through(Method::GET, "/page/one?x=1&y=%C3%A9", None, NAVIGATE)
        .await;
    assert_eq!(r.status, 302, "{}", r.text());
    let location = r.header("location").unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{}/auth/v1/session/resume?", s.origin)),
        "{location}"
    );
    assert_eq!(
        query_param(&location, "return_to").as_deref(),
        Some(format!("{}/page/one?x=1&y=%C3%A9", s.origin).as_str()),
        "{location}"
    );
    // The same request from a script is an API call: 401, no redirect.
    let mut xhr = NAVIGATE.to_vec();
    xhr.push(("x-requested-with", "XMLHttpRequest"));
    let r = s.through(Method::GET, "/page/one", None, &xhr).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.header("location").is_none());
    // A JSON client never gets the redirect.
    let r = s
        .through(
            Method::GET,
            "/page/one",
            None,
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, 401);

    // The auth service is mounted at /auth/ without the gate, its prefix stripped.
    let r = s.get("/auth/.well-known/jwks.json", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["keys"].as_array().is_some_and(|k| !k.is_empty()));
    let r = s
        .through(
            Method::POST,
            "/auth/v1/login",
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(
        r.status.as_u16() / 100,
        4,
        "an empty login body: {}",
        r.text()
    );
}

#[tokio::test]
async fn nginx_never_passes_client_identity_headers_to_the_app() {
    let test = "gate_proxies::nginx::nginx_never_passes_client_identity_headers_to_the_app";
    if !available(test, Front::Nginx) {
        return;
    }
    let s = Stack::start(Options::new(Front::Nginx)).await;
    identity_spoofing_fails(&s, Front::Nginx).await;
}

#[tokio::test]
async fn a_revoked_token_is_refused_through_nginx_within_a_second() {
    let test = "gate_proxies::nginx::a_revoked_token_is_refused_through_nginx_within_a_second";
    if !available(test, Front::Nginx) {
        return;
    }
    let mut opts = Options::new(Front::Nginx);
    opts.feed = true;
    let s = Stack::start(opts).await;
    let alice = s.login("alice").await;
    let other = s.login("alice").await;
    // Both accepted (and so in the gate's verified-token cache).
    for login in [&alice, &other] {
        let r = s.get("/resource", Some(&login.at)).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }

    let start = Instant::now();
    let r = s
        .post_json(&s.auth().url("/v1/logout"), Some(&alice.at), &json!({}))
        .await;
    assert!(r.status.is_success(), "logout: {}", r.text());
    s.until_status(
        "/resource",
        Some(&alice.at),
        401,
        Duration::from_secs(1),
        "the logged-out session's token",
    )
    .await;
    let took = start.elapsed();
    eprintln!("revocation through nginx: refused {took:?} after the logout request began");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // The other session is untouched.
    let r = s.get("/resource", Some(&other.at)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // And the refusal holds.
    let r = s.get("/resource", Some(&alice.at)).await;
    assert_eq!(r.status, 401, "{}", r.text());
}

#[tokio::test]
async fn decisions_go_on_through_nginx_while_the_auth_service_is_down() {
    let test = "gate_proxies::nginx::decisions_go_on_through_nginx_while_the_auth_service_is_down";
    if !available(test, Front::Nginx) {
        return;
    }
    let mut s = Stack::start(Options::new(Front::Nginx)).await;
    let alice = s.login("alice").await;
    let root = s.login("root").await;
    let r = s.get("/resource", Some(&alice.at)).await;
    assert_eq!(r.status, 200, "{}", r.text());

    s.stop_auth().await;
    // The auth service is gone (its mount answers 502)...
    let r = s.get("/auth/.well-known/jwks.json", None).await;
    assert_eq!(r.status, 502, "{}", r.text());
    // ...and decisions go on, for a token the gate has seen and for one it has not.
    let until = Instant::now() + Duration::from_secs(3);
    let mut rounds = 0;
    while Instant::now() < until {
        let r = s.get("/resource", Some(&alice.at)).await;
        assert_eq!(
            r.status,
            200,
            "alice while the auth service is down: {}",
            r.text()
        );
        let r = s.get("/admin", Some(&root.at)).await;
        assert_eq!(
            r.status,
            200,
            "root while the auth service is down: {}",
            r.text()
        );
        let r = s.get("/admin", Some(&alice.at)).await;
        assert_eq!(r.status, 403, "{}", r.text());
        let r = s.get("/resource", None).await;
        assert_eq!(r.status, 401, "{}", r.text());
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rounds > 10, "{rounds} rounds");
}

#[tokio::test]
async fn a_policy_change_applies_through_nginx_and_an_invalid_one_is_ignored() {
    let test =
        "gate_proxies::nginx::a_policy_change_applies_through_nginx_and_an_invalid_one_is_ignored";
    if !available(test, Front::Nginx) {
        return;
    }
    let s = Stack::start(Options::new(Front::Nginx)).await;
    let alice = s.login("alice").await;
    let root = s.login("root").await;
    assert_eq!(s.get("/resource", Some(&alice.at)).await.status, 200);
    assert_eq!(s.get("/health", None).await.status, 200);

    // /resource becomes admin-only and /health needs a token.
    let stricter = format!(
        "[[rule]]\nname = \"resource for admins\"\npath = \"/resource\"\nrequire = \"role:admin\"\n\n\
         [[rule]]\nname = \"health for users\"\npath = \"/health\"\nrequire = \"authenticated\"\n{POLICY}"
    );
    s.write_policy(&stricter);
    let took = s
        .until_status(
            "/resource",
            Some(&alice.at),
            403,
            Duration::from_secs(5),
            "the stricter policy",
        )
        .await;
    eprintln!("policy reload seen through nginx after {took:?}");
    assert_eq!(s.get("/resource", Some(&root.at)).await.status, 200);
    assert_eq!(s.get("/health", None).await.status, 401);

    // An invalid file is refused and the stricter policy stays.
    s.write_policy("[[rule]]\npath = \"/\"\nrequire = \"sometimes\"\n");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(s.get("/resource", Some(&alice.at)).await.status, 403);
    assert_eq!(s.get("/resource", Some(&root.at)).await.status, 200);
    assert_eq!(s.get("/health", None).await.status, 401);
    let logs = s.gate.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("policy") && l.to_lowercase().contains("invalid")),
        "the invalid policy was not logged:\n{}",
        logs.join("\n")
    );

    // Back to the original.
    s.write_policy(POLICY);
    s.until_status(
        "/resource",
        Some(&alice.at),
        200,
        Duration::from_secs(5),
        "the original policy",
    )
    .await;
    assert_eq!(s.get("/health", None).await.status, 200);
}

/// Counts of a load run.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
}

fn kid_of(token: &str) -> String {
    wristband_jose::dangerous::decode_without_verification(token)
        .unwrap()
        .header["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_key_rotation_under_load_through_nginx_has_zero_failures() {
    let test = "gate_proxies::nginx::a_key_rotation_under_load_through_nginx_has_zero_failures";
    if !available(test, Front::Nginx) {
        return;
    }
    // A 2 s pre-publication: the new key signs two seconds after `keys rotate`. The gate
    // refreshes its JWKS at most once a minute in the background, so here (unlike with
    // the default pre-publication of twice the JWKS max-age) it learns the new key from
    // the first token that names it: one refetch on an unknown kid, without a failure.
    // (A second rotation within the 30 s refetch cooldown would be refused until the next
    // refetch; one rotation keeps the test short.)
    let mut opts = Options::new(Front::Nginx);
    opts.settings =
        "jwks_max_age = \"1s\"\nkey_prepublish = \"2s\"\nkey_rotation = \"0s\"\naccess_ttl = \"1m\"";
    let s = Stack::start(opts).await;
    let login = s.login("alice").await;
    let tokens: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(vec![login.at.clone()]));
    let stop = Arc::new(AtomicBool::new(false));

    // The token source: refreshes every 200 ms, so new tokens follow the signing key.
    let minter = wristband_testkit::http::spawn_refresher(
        s.auth().url("/v1/refresh"),
        login.rt.clone(),
        Arc::clone(&stop),
        Arc::clone(&tokens),
    );

    // Three clients through nginx: the newest token, and every fourth request an older
    // one (a client that has not refreshed yet).
    let tally = Arc::new(Tally::default());
    let per_kid: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let host = s.origin.trim_start_matches("http://").to_owned();
    let url = s.proxy.url("/resource");
    let mut workers = Vec::new();
    for w in 0..3u64 {
        let (tokens, stop, tally, per_kid) = (
            Arc::clone(&tokens),
            Arc::clone(&stop),
            Arc::clone(&tally),
            Arc::clone(&per_kid),
        );
        let (host, url) = (host.clone(), url.clone());
        workers.push(tokio::spawn(async move {
            let http = Client::new();
            let mut n = w;
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let token = {
                    let t = tokens.lock().unwrap();
                    if n % 4 == 0 {
                        t[usize::try_from(n * 7919).unwrap() % t.len()].clone()
                    } else {
                        t.last().unwrap().clone()
                    }
                };
                let bearer = format!("Bearer {token}");
                let r = http
                    .get(&url, &[("host", &host), ("authorization", &bearer)])
                    .await;
                if r.status == 200 {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                    *per_kid.lock().unwrap().entry(kid_of(&token)).or_default() += 1;
                } else {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                    failures.push(format!("{}: {}", r.status, r.text()));
                }
            }
            failures
        }));
    }

    let until = |kids: usize, ok: u64, what: &'static str| {
        let per_kid = Arc::clone(&per_kid);
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let done = {
                    let m = per_kid.lock().unwrap();
                    m.len() >= kids && m.values().copied().min().unwrap_or(0) >= ok
                };
                if done {
                    return;
                }
                assert!(Instant::now() < deadline, "{what}: not reached in 60 s");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    until(1, 200, "the load on the first key").await;
    s.cli().run("keys rotate", &[], None).await;
    until(2, 300, "the load on both keys").await;
    stop.store(true, Ordering::Relaxed);
    minter.await.unwrap();
    let mut failures = Vec::new();
    for w in workers {
        failures.extend(w.await.unwrap());
    }
    let ok = tally.ok.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    let per_kid = per_kid.lock().unwrap().clone();
    eprintln!("rotation through nginx: {ok} ok, {failed} failed, by kid: {per_kid:?}");
    assert!(
        failures.is_empty(),
        "{failed} failed: {:?}\ngate logs:\n{}",
        &failures[..failures.len().min(5)],
        s.gate.logs().join("\n")
    );
    assert_eq!(
        per_kid.len(),
        2,
        "two keys signed during the run: {per_kid:?}"
    );
}
