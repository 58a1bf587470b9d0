//! The auth service as a real process: the walkthrough's flow with independent API service
//! processes, a crash in the middle of a refresh storm, and interop with a third-party JWT
//! library that is given nothing but the JWKS URL.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Method;
use serde_json::{json, Value};
use tempfile::TempDir;
use wristband_testkit::http::{Client, TestResponse};
use wristband_testkit::process::ServiceProcess;

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A config file with a cheap KDF: these tests are about flows and crashes, not Argon2 cost
/// (and the binary under test is a debug build).
pub(crate) fn write_config(dir: &Path) -> String {
    let path = dir.join("wristband.toml");
    std::fs::write(
        &path,
        "alg = \"ES256\"\n[argon2]\nmemory_kib = 1024\niterations = 1\nparallelism = 1\n",
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

async fn serve(dir: &TempDir, extra: &[&str]) -> ServiceProcess {
    let config = write_config(dir.path());
    let data = dir.path().join("data");
    let data = data.to_string_lossy();
    let mut args = vec![
        "serve",
        "--config",
        &config,
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &data,
    ];
    args.extend_from_slice(extra);
    ServiceProcess::spawn(Path::new(env!("CARGO_BIN_EXE_wristband")), &args).await
}

pub(crate) fn add_user(dir: &TempDir, name: &str, role: &str) {
    use std::io::Write;
    let config = write_config(dir.path());
    let data = dir.path().join("data");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wristband"))
        .args(["user", "--config", &config, "--data-dir"])
        .arg(&data)
        .args(["add", name, "--role", role, "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("added {name}")), "{text}");
}

async fn post(client: &Client, url: &str, body: Value) -> TestResponse {
    client
        .send(
            Method::POST,
            url,
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        )
        .await
}

async fn login(client: &Client, auth: &ServiceProcess, user: &str) -> (String, String, u64) {
    let r = post(
        client,
        &auth.url("/v1/login"),
        json!({"username": user, "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let at = j["access_token"].as_str().unwrap().to_owned();
    let exp = wristband_jose::dangerous::decode_without_verification(&at)
        .unwrap()
        .payload["exp"]
        .as_u64()
        .unwrap();
    (at, j["refresh_token"].as_str().unwrap().to_owned(), exp)
}

/// An API service that verifies tokens of `issuer` locally, without the revocation feed.
async fn api_service(issuer: &str, extra: &[&str]) -> ServiceProcess {
    crate::revocation::api_service_for(issuer, None, extra).await
}

#[tokio::test]
async fn tokens_keep_verifying_at_independent_apis_after_the_auth_service_stops() {
    let dir = tempfile::tempdir().unwrap();
    let auth = serve(&dir, &["--access-ttl", "1m"]).await;
    add_user(&dir, "alice", "admin");
    let issuer = auth.url("");
    let api_a = api_service(&issuer, &[]).await;
    let api_b = api_service(&issuer, &[]).await;
    let client = Client::new();

    let (at, rt, exp) = login(&client, &auth, "alice").await;
    for api in [&api_a, &api_b] {
        let r = client.get_bearer(&api.url("/resource"), &at).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["role"], "admin");
        assert_eq!(client.get_bearer(&api.url("/admin"), &at).await.status, 200);
    }

    // The audit trail has the events and none of the secrets.
    let logs = auth.logs().join("\n");
    assert!(logs.contains("login_ok"), "{logs}");
    // Written to a pipe, not a terminal: no colour codes.
    assert!(
        !logs.contains('\u{1b}'),
        "ANSI codes in redirected logs: {logs}"
    );
    for secret in [at.as_str(), rt.as_str(), PASSWORD] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }

    // The published keys, for the verifiers started below without the auth service.
    let jwks = client.get(&auth.url("/.well-known/jwks.json"), &[]).await;
    assert_eq!(jwks.status, 200);
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, &jwks.body).unwrap();

    // The box office closes; the stewards keep checking stamps.
    let status = auth.terminate().await;
    assert!(status.success(), "graceful shutdown: {status:?}");
    for api in [&api_a, &api_b] {
        assert_eq!(
            client.get_bearer(&api.url("/resource"), &at).await.status,
            200
        );
    }

    // ... until the token expires. Rather than wait for `exp` (a minute away), verifiers
    // with the same keys read a pinned clock (the example's hidden `--now`): one second
    // before `exp` the token is accepted, one second after it is refused as expired.
    let jwks_file = jwks_file.to_string_lossy();
    let pinned = |t: u64| {
        let (issuer, jwks_file) = (issuer.clone(), jwks_file.clone());
        async move {
            let t = t.to_string();
            api_service(&issuer, &["--jwks", &jwks_file, "--now", &t]).await
        }
    };
    let before = pinned(exp - 1).await;
    let r = client.get_bearer(&before.url("/resource"), &at).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let after = pinned(exp + 1).await;
    let r = client.get_bearer(&after.url("/resource"), &at).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({"error": "invalid_token", "error_description": "token expired"})
    );
}

#[tokio::test]
async fn a_crash_during_a_refresh_storm_loses_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let auth = serve(&dir, &["--refresh-grace", "60s"]).await;
    add_user(&dir, "storm", "user");
    let client = Client::new();

    let sessions = 16;
    let mut known = Vec::new();
    for _ in 0..sessions {
        let (_, rt, _) = login(&client, &auth, "storm").await;
        known.push(Arc::new(Mutex::new(rt)));
    }

    // Every session refreshes back to back; `known` holds the last token each client got.
    let url = auth.url("/v1/refresh");
    let answered = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for slot in &known {
        let (client, url, slot) = (client.clone(), url.clone(), Arc::clone(slot));
        let answered = Arc::clone(&answered);
        tasks.push(tokio::spawn(async move {
            let mut done = 0u32;
            loop {
                let rt = slot.lock().unwrap().clone();
                let (c, u) = (client.clone(), url.clone());
                let body = json!({ "refresh_token": rt }).to_string();
                // A killed server shows up as a panic inside the test client: stop there.
                let send = async move {
                    c.send(
                        Method::POST,
                        &u,
                        &[("content-type", "application/json")],
                        body.as_bytes(),
                    )
                    .await
                };
                let Ok(r) = tokio::spawn(send).await else {
                    return done;
                };
                assert_eq!(r.status, 200, "{}", r.text());
                *slot.lock().unwrap() = r.json()["refresh_token"].as_str().unwrap().to_owned();
                done += 1;
                answered.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // The storm is under way once every session could have rotated a few times.
    let storm = u32::try_from(sessions * 4).unwrap();
    let started = std::time::Instant::now();
    while answered.load(Ordering::SeqCst) < storm {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the storm did not start: {} refreshes answered",
            answered.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(auth); // SIGKILL, mid-storm
    let mut rotations = 0;
    for t in tasks {
        rotations += t.await.unwrap();
    }
    assert!(
        rotations > u32::try_from(sessions).unwrap(),
        "the storm ran: {rotations} rotations"
    );

    // Restart on the same data: every session is at the client's last token or one past it
    // (a rotation whose answer was lost), and the client's token still works either way.
    let auth = serve(&dir, &["--refresh-grace", "60s"]).await;
    for slot in &known {
        let rt = slot.lock().unwrap().clone();
        let r = post(
            &client,
            &auth.url("/v1/refresh"),
            json!({ "refresh_token": rt }),
        )
        .await;
        assert_eq!(r.status, 200, "session lost or corrupted: {}", r.text());
    }
    assert!(auth.terminate().await.success());

    let store = wristband_server::store::SqliteStore::open(&dir.path().join("data/wristband.db"))
        .await
        .unwrap();
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    store.close().await;
}

#[tokio::test]
async fn a_third_party_library_verifies_our_tokens_from_the_jwks_url_alone() {
    let dir = tempfile::tempdir().unwrap();
    let auth = serve(&dir, &[]).await;
    add_user(&dir, "interop", "user");
    let client = Client::new();
    let (at, _, _) = login(&client, &auth, "interop").await;

    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(
        &client
            .get(&auth.url("/.well-known/jwks.json"), &[])
            .await
            .body,
    )
    .unwrap();
    let header = jsonwebtoken::decode_header(&at).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[auth.url("")]);
    validation.set_audience(&["wristband"]);
    validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
    validation.validate_nbf = true;
    let data = jsonwebtoken::decode::<Value>(&at, &key, &validation).unwrap();
    assert_eq!(data.claims["client_id"], "wristband");
    assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));

    // And it refuses a tampered one.
    let mut parts: Vec<String> = at.split('.').map(str::to_owned).collect();
    parts[1] = wristband_jose::b64::encode(
        json!({"sub": "admin", "iss": auth.url(""), "aud": "wristband", "exp": 4_102_444_800u64, "iat": 1})
            .to_string(),
    );
    assert!(jsonwebtoken::decode::<Value>(&parts.join("."), &key, &validation).is_err());
}

#[test]
fn the_demo_plays_every_step_and_exits_0() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wristband"))
        .arg("demo")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        " 1. Auth service started",
        "Client -> API A: GET /resource -> 200",
        "Auth service stopped.",
        "still verified, with no call to the auth service",
        "stale token #1 -> 400",
        "reuse detected",
        "Done: every step behaved as expected.",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}
