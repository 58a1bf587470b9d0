//! Revocation reaching real, independent API service processes through the feed: every
//! source of revocation, a restart of the auth service with revocations made while it was
//! down, opaque tokens by introspection, and both staleness policies.
//!
//! Each test runs one `wristband serve` on a fresh data directory, registers a
//! resource-server client with the CLI, and starts `api_service` processes that follow the
//! feed with that client's credentials. The API services are never restarted: a rejection
//! can only come from the feed (or, for opaque tokens, introspection).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wristband_jose::Clock as _;

use http::Method;
use serde_json::{json, Value};
use tempfile::TempDir;
use wristband_testkit::http::{Client, TestResponse};
use wristband_testkit::process::ServiceProcess;

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// How long a revocation may take to reach every API service while the auth service runs:
/// the stream pushes in-process revocations at once and picks up other processes' writes
/// within a second.
pub(crate) const PROPAGATION: Duration = Duration::from_secs(3);

/// After a restart the API services reconnect with backoff (0.5 s doubling, with jitter)
/// and poll the snapshot after three failures, so allow a few rounds.
const RECONNECT: Duration = Duration::from_secs(12);

/// A data directory with a cheap-Argon2 config, the CLI on it, and the auth service.
pub(crate) struct Deployment {
    _dir: TempDir,
    pub(crate) config: String,
    pub(crate) data: PathBuf,
    pub(crate) http: Client,
}

/// A resource-server or service client's credentials.
pub(crate) struct ClientCreds {
    pub(crate) id: String,
    pub(crate) secret: String,
}

/// A user's login: access token, refresh token and session id.
pub(crate) struct Login {
    pub(crate) at: String,
    pub(crate) rt: String,
    pub(crate) sid: String,
}

impl Deployment {
    pub(crate) fn new() -> Self {
        Self::with_settings("")
    }

    /// A deployment whose config file also holds `settings` (top-level TOML lines).
    pub(crate) fn with_settings(settings: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("wristband.toml");
        std::fs::write(
            &config,
            format!(
                "alg = \"ES256\"\n{settings}\n[argon2]\nmemory_kib = 1024\niterations = 1\nparallelism = 1\n"
            ),
        )
        .unwrap();
        Deployment {
            config: config.to_string_lossy().into_owned(),
            data: dir.path().join("data"),
            _dir: dir,
            http: Client::new(),
        }
    }

    /// `wristband serve` on `listen` (`127.0.0.1:0` for any port).
    pub(crate) async fn serve(&self, listen: &str) -> ServiceProcess {
        let data = self.data.to_string_lossy();
        ServiceProcess::spawn(
            Path::new(env!("CARGO_BIN_EXE_wristband")),
            &[
                "serve",
                "--config",
                &self.config,
                "--listen",
                listen,
                "--data-dir",
                &data,
            ],
        )
        .await
    }

    /// `wristband GROUP --config .. --data-dir .. REST...`; returns stdout, panics on failure.
    /// GROUP may be several words (`keys rotate`): the store flags follow the last.
    pub(crate) async fn cli(&self, group: &str, rest: &[&str], stdin: Option<&str>) -> String {
        let data = self.data.to_string_lossy();
        let mut args: Vec<&str> = group.split(' ').collect();
        args.extend(["--config", &self.config, "--data-dir", &data]);
        args.extend(rest);
        let binary = std::path::Path::new(env!("CARGO_BIN_EXE_wristband"));
        wristband_testkit::process::run_to_completion(binary, &args, stdin).await
    }

    pub(crate) async fn add_user(&self, name: &str) {
        let out = self
            .cli(
                "user",
                &["add", name, "--role", "user", "--password-stdin"],
                Some(PASSWORD),
            )
            .await;
        assert!(out.contains(&format!("added {name}")), "{out}");
    }

    /// `wristband client add NAME --kind KIND --json [extra]`.
    pub(crate) async fn add_client(&self, name: &str, kind: &str, extra: &[&str]) -> ClientCreds {
        let mut args = vec!["add", name, "--kind", kind, "--json"];
        args.extend_from_slice(extra);
        let out = self.cli("client", &args, None).await;
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        let creds = ClientCreds {
            id: v["client_id"].as_str().unwrap().to_owned(),
            secret: v["client_secret"].as_str().unwrap().to_owned(),
        };
        assert!(creds.id.starts_with("cli_"), "{}", creds.id);
        assert!(creds.secret.len() >= 32);
        creds
    }

    pub(crate) async fn post_json(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: &Value,
    ) -> TestResponse {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        self.http
            .send(Method::POST, url, &headers, body.to_string().as_bytes())
            .await
    }

    async fn post_form(&self, url: &str, pairs: &[(&str, &str)]) -> TestResponse {
        let body = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.http
            .send(
                Method::POST,
                url,
                &[("content-type", "application/x-www-form-urlencoded")],
                body.as_bytes(),
            )
            .await
    }

    pub(crate) async fn login(&self, auth: &ServiceProcess, user: &str) -> Login {
        let r = self
            .post_json(
                &auth.url("/v1/login"),
                None,
                &json!({"username": user, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let j = r.json();
        let at = j["access_token"].as_str().unwrap().to_owned();
        let sid = wristband_jose::dangerous::decode_without_verification(&at)
            .unwrap()
            .payload["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        Login {
            at,
            rt: j["refresh_token"].as_str().unwrap().to_owned(),
            sid,
        }
    }

    /// RFC 7009 revocation by the first-party public client.
    pub(crate) async fn revoke(&self, auth: &ServiceProcess, token: &str, hint: &str) {
        let r = self
            .post_form(
                &auth.url("/oauth2/revoke"),
                &[
                    ("token", token),
                    ("token_type_hint", hint),
                    ("client_id", "wristband"),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }

    pub(crate) async fn status_at(&self, api: &ServiceProcess, token: &str) -> u16 {
        self.http
            .get_bearer(&api.url("/resource"), token)
            .await
            .status
            .as_u16()
    }

    /// Asserts that every API service accepts `token` now (which also caches it there).
    pub(crate) async fn accepted_everywhere(
        &self,
        apis: &[&ServiceProcess],
        token: &str,
        what: &str,
    ) {
        for (i, api) in apis.iter().enumerate() {
            let r = self.http.get_bearer(&api.url("/resource"), token).await;
            assert_eq!(r.status, 200, "{what}: API service #{i}: {}", r.text());
        }
    }

    /// Polls every API service until each refuses `token` with 401 `invalid_token`, for at
    /// most `within`.
    pub(crate) async fn rejected_everywhere(
        &self,
        apis: &[&ServiceProcess],
        token: &str,
        within: Duration,
        what: &str,
    ) {
        let start = Instant::now();
        for (i, api) in apis.iter().enumerate() {
            loop {
                let r = self.http.get_bearer(&api.url("/resource"), token).await;
                if r.status == 401 {
                    assert_eq!(r.json()["error"], "invalid_token", "{what}: {}", r.text());
                    break;
                }
                assert_eq!(r.status, 200, "{what}: API service #{i}: {}", r.text());
                assert!(
                    start.elapsed() < within,
                    "{what}: API service #{i} still accepts the token after {within:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// `application/x-www-form-urlencoded` value encoding.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An `api_service` following the feed of `auth` with the resource server's credentials.
pub(crate) async fn api_service(
    auth: &ServiceProcess,
    rs: &ClientCreds,
    extra: &[&str],
) -> ServiceProcess {
    api_service_for(&auth.url(""), Some(rs), extra).await
}

/// An `api_service` for tokens of `issuer`: following its feed with `rs`'s credentials,
/// or (without them) verifying with the keys alone.
pub(crate) async fn api_service_for(
    issuer: &str,
    rs: Option<&ClientCreds>,
    extra: &[&str],
) -> ServiceProcess {
    let bin = crate::api_service_binary();
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--issuer",
        issuer,
        "--audience",
        "wristband",
    ];
    if let Some(rs) = rs {
        args.extend_from_slice(&["--client-id", &rs.id, "--client-secret", &rs.secret]);
    }
    args.extend_from_slice(extra);
    ServiceProcess::spawn(&bin, &args).await
}

/// The value of the staleness gauge in an API service's `/metrics`.
async fn staleness(http: &Client, api: &ServiceProcess) -> u64 {
    let text = http.get(&api.url("/metrics"), &[]).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix("wristband_verifier_revocation_staleness_seconds "))
        .unwrap_or_else(|| panic!("no staleness gauge in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Waits until the wall clock is in a later second than `after` (claims have whole seconds).
pub(crate) async fn next_second(after: u64) {
    while wristband_jose::SystemClock.now().as_secs() <= after {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGTERM, and the process must exit 0 promptly even with feed streams open.
async fn stop(auth: ServiceProcess) {
    let start = Instant::now();
    let status = auth.terminate().await;
    assert!(status.success(), "graceful shutdown: {status:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "shutdown took {:?} with feed streams open",
        start.elapsed()
    );
}

#[tokio::test]
async fn every_source_of_revocation_reaches_every_api_service_without_a_restart() {
    let d = Deployment::new();
    for user in ["alice", "bob", "carol", "dave"] {
        d.add_user(user).await;
    }
    let rs = d.add_client("orders-api", "resource-server", &[]).await;
    let auth = d.serve("127.0.0.1:0").await;
    let api_a = api_service(&auth, &rs, &[]).await;
    let api_b = api_service(&auth, &rs, &[]).await;
    let apis = [&api_a, &api_b];
    let logout_url = auth.url("/v1/logout");

    // A session nobody revokes: it must keep working throughout.
    let bystander = d.login(&auth, "dave").await;
    d.accepted_everywhere(&apis, &bystander.at, "bystander")
        .await;

    // 1. Logout.
    let s = d.login(&auth, "alice").await;
    d.accepted_everywhere(&apis, &s.at, "before logout").await;
    let r = d.post_json(&logout_url, Some(&s.at), &json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text());
    d.rejected_everywhere(&apis, &s.at, PROPAGATION, "logout")
        .await;

    // 2. Logout-all: every session of the user, not only the caller's.
    let s1 = d.login(&auth, "bob").await;
    let s2 = d.login(&auth, "bob").await;
    d.accepted_everywhere(&apis, &s1.at, "before logout-all")
        .await;
    d.accepted_everywhere(&apis, &s2.at, "before logout-all")
        .await;
    let r = d
        .post_json(&auth.url("/v1/logout-all"), Some(&s1.at), &json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    d.rejected_everywhere(&apis, &s1.at, PROPAGATION, "logout-all (caller)")
        .await;
    d.rejected_everywhere(&apis, &s2.at, PROPAGATION, "logout-all (other session)")
        .await;

    // 3. `wristband user disable`, by another process on the same database.
    let s = d.login(&auth, "carol").await;
    d.accepted_everywhere(&apis, &s.at, "before disable").await;
    d.cli("user", &["disable", "carol"], None).await;
    d.rejected_everywhere(&apis, &s.at, PROPAGATION, "user disable")
        .await;

    // 4. DELETE /v1/sessions/{id}: one session ends another; the caller's stays valid.
    let keep = d.login(&auth, "alice").await;
    let gone = d.login(&auth, "alice").await;
    d.accepted_everywhere(&apis, &gone.at, "before session delete")
        .await;
    let listed = d
        .http
        .get_bearer(&auth.url("/v1/sessions"), &keep.at)
        .await
        .json();
    assert!(
        listed["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == gone.sid.as_str()),
        "{listed}"
    );
    let auth_header = format!("Bearer {}", keep.at);
    let r = d
        .http
        .send(
            Method::DELETE,
            &auth.url(&format!("/v1/sessions/{}", gone.sid)),
            &[("authorization", &auth_header)],
            b"",
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    d.rejected_everywhere(&apis, &gone.at, PROPAGATION, "session delete")
        .await;
    d.accepted_everywhere(&apis, &keep.at, "the deleting session")
        .await;

    // 5. RFC 7009 on an access token: that token only.
    let s = d.login(&auth, "alice").await;
    d.accepted_everywhere(&apis, &s.at, "before access-token revoke")
        .await;
    d.revoke(&auth, &s.at, "access_token").await;
    d.rejected_everywhere(&apis, &s.at, PROPAGATION, "RFC 7009 access token")
        .await;

    // 6. RFC 7009 on a refresh token: the session, so its access tokens too.
    let s = d.login(&auth, "alice").await;
    d.accepted_everywhere(&apis, &s.at, "before refresh-token revoke")
        .await;
    d.revoke(&auth, &s.rt, "refresh_token").await;
    d.rejected_everywhere(&apis, &s.at, PROPAGATION, "RFC 7009 refresh token")
        .await;

    d.accepted_everywhere(&apis, &bystander.at, "bystander at the end")
        .await;
    d.accepted_everywhere(&apis, &keep.at, "the deleting session at the end")
        .await;
    stop(auth).await;
}

#[tokio::test]
async fn the_feed_resumes_after_a_restart_with_no_revocation_missed() {
    let d = Deployment::new();
    for user in ["alice", "bob"] {
        d.add_user(user).await;
    }
    let rs = d.add_client("orders-api", "resource-server", &[]).await;
    let auth = d.serve("127.0.0.1:0").await;
    let listen = auth.addr().to_string();
    let api_a = api_service(&auth, &rs, &[]).await;
    let api_b = api_service(&auth, &rs, &[]).await;
    let apis = [&api_a, &api_b];

    let revoked_session = d.login(&auth, "alice").await;
    let kept_session = d.login(&auth, "alice").await;
    let bob = d.login(&auth, "bob").await;
    // A revocation before the restart, so that the cursor is past zero.
    let early = d.login(&auth, "bob").await;
    for s in [&revoked_session, &kept_session, &bob, &early] {
        d.accepted_everywhere(&apis, &s.at, "before the restart")
            .await;
    }
    d.revoke(&auth, &early.rt, "refresh_token").await;
    d.rejected_everywhere(&apis, &early.at, PROPAGATION, "before the restart")
        .await;

    // SIGTERM with both API services' streams open: the service exits promptly.
    stop(auth).await;

    // Revocations while the auth service is down, written by the CLI to the database.
    let out = d
        .cli("sessions", &["revoke", &revoked_session.sid], None)
        .await;
    assert!(out.contains("revoked session"), "{out}");
    d.cli("user", &["revoke-tokens", "bob"], None).await;
    // Nothing pushes them yet: the API services still accept both tokens.
    d.accepted_everywhere(&apis, &revoked_session.at, "while down")
        .await;
    d.accepted_everywhere(&apis, &bob.at, "while down").await;

    // The same address, so the same issuer: the API services reconnect by themselves.
    let auth = d.serve(&listen).await;
    assert_eq!(auth.addr().to_string(), listen);
    d.rejected_everywhere(
        &apis,
        &revoked_session.at,
        RECONNECT,
        "session revoked while down",
    )
    .await;
    d.rejected_everywhere(&apis, &bob.at, RECONNECT, "user revoked while down")
        .await;
    d.rejected_everywhere(&apis, &early.at, PROPAGATION, "revoked before the restart")
        .await;
    d.accepted_everywhere(&apis, &kept_session.at, "untouched session")
        .await;

    // And the stream is live again: a new revocation arrives as fast as before.
    d.revoke(&auth, &kept_session.at, "access_token").await;
    d.rejected_everywhere(&apis, &kept_session.at, PROPAGATION, "after the restart")
        .await;
    stop(auth).await;
}

#[tokio::test]
async fn opaque_service_tokens_work_through_the_verifier_until_revoked() {
    let d = Deployment::new();
    // `client add` changes an existing store only: `user add` makes it.
    d.add_user("alice").await;
    let rs = d.add_client("orders-api", "resource-server", &[]).await;
    let batch = d
        .add_client("batch", "service", &["--opaque", "--audience", "wristband"])
        .await;
    let auth = d.serve("127.0.0.1:0").await;
    let api_a = api_service(&auth, &rs, &[]).await;
    let api_b = api_service(&auth, &rs, &[]).await;
    let apis = [&api_a, &api_b];

    let token_url = auth.url("/oauth2/token");
    let grant = [
        ("grant_type", "client_credentials"),
        ("client_id", batch.id.as_str()),
        ("client_secret", batch.secret.as_str()),
    ];
    let r = d.post_form(&token_url, &grant).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let at = r.json()["access_token"].as_str().unwrap().to_owned();
    assert!(at.starts_with("wbo_"), "an opaque token");
    let other = d.post_form(&token_url, &grant).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(at, other);

    // Accepted through introspection, with the client as the subject; twice, so the second
    // answer comes from the introspection cache.
    for _ in 0..2 {
        for api in apis {
            let r = d.http.get_bearer(&api.url("/resource"), &at).await;
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.json()["sub"], batch.id.as_str());
        }
    }
    d.accepted_everywhere(&apis, &other, "a second token").await;
    // A made-up reference token is refused.
    let fake = format!("wbo_{}", "A".repeat(43));
    for api in apis {
        assert_eq!(d.status_at(api, &fake).await, 401);
    }

    // RFC 7009 by the owning client: the cached answer is overridden by the feed's record.
    let mut revoke = vec![("token", at.as_str())];
    revoke.extend_from_slice(&grant[1..]);
    let r = d.post_form(&auth.url("/oauth2/revoke"), &revoke).await;
    assert_eq!(r.status, 200, "{}", r.text());
    d.rejected_everywhere(&apis, &at, PROPAGATION, "opaque token revoked")
        .await;
    d.accepted_everywhere(&apis, &other, "the other token")
        .await;
    stop(auth).await;
}

#[tokio::test]
async fn fail_closed_refuses_old_tokens_once_stale_and_fail_open_keeps_accepting() {
    let d = Deployment::new();
    d.add_user("alice").await;
    let rs = d.add_client("orders-api", "resource-server", &[]).await;
    let auth = d.serve("127.0.0.1:0").await;
    let policy = |p| ["--staleness-policy", p, "--max-staleness", "2"];
    let closed = api_service(&auth, &rs, &policy("fail-closed")).await;
    let open = api_service(&auth, &rs, &policy("fail-open")).await;
    let apis = [&closed, &open];

    let s = d.login(&auth, "alice").await;
    let synced = d.login(&auth, "alice").await;
    d.accepted_everywhere(&apis, &s.at, "fresh").await;
    d.accepted_everywhere(&apis, &synced.at, "fresh").await;

    // A revocation event in a later second than the token's `iat` brings both services in
    // sync after it: the token is now one "issued before the last sync".
    let iat = wristband_jose::dangerous::decode_without_verification(&s.at)
        .unwrap()
        .payload["iat"]
        .as_u64()
        .unwrap();
    next_second(iat).await;
    d.revoke(&auth, &synced.rt, "refresh_token").await;
    d.rejected_everywhere(&apis, &synced.at, PROPAGATION, "sync event")
        .await;
    d.accepted_everywhere(&apis, &s.at, "in sync").await;

    stop(auth).await;
    let stopped = Instant::now();

    // Past --max-staleness (2 s, whole seconds), fail-closed refuses the token...
    loop {
        let status = d.status_at(&closed, &s.at).await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            stopped.elapsed() < Duration::from_secs(6),
            "fail-closed still accepts a token issued before its last sync"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = d.http.get_bearer(&closed.url("/resource"), &s.at).await;
    assert_eq!(r.json()["error"], "invalid_token", "{}", r.text());
    // ... while fail-open still accepts it.
    d.accepted_everywhere(&[&open], &s.at, "fail-open while stale")
        .await;

    // Both gauges are past the limit, and growing.
    let before = [
        staleness(&d.http, &closed).await,
        staleness(&d.http, &open).await,
    ];
    assert!(before.iter().all(|&s| s > 2), "{before:?}");
    // The gauges count whole seconds of the processes' clocks: poll until both moved on.
    let polling = Instant::now();
    loop {
        let after = [
            staleness(&d.http, &closed).await,
            staleness(&d.http, &open).await,
        ];
        if after.iter().zip(&before).all(|(a, b)| a > b) {
            break;
        }
        assert!(
            polling.elapsed() < Duration::from_secs(5),
            "{before:?} -> {after:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(d.status_at(&closed, &s.at).await, 401);
    assert_eq!(d.status_at(&open, &s.at).await, 200);
}
