//! Key rotation against real processes: the CLI changing keys under a running auth
//! service, and rotation twice under load through three independent `api_service`
//! verifiers with zero failed requests.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wristband_testkit::http::Client;
use wristband_testkit::process::ServiceProcess;

use crate::revocation::{api_service, api_service_for, Deployment, PROPAGATION};

fn kid_of(token: &str) -> String {
    wristband_jose::dangerous::decode_without_verification(token)
        .unwrap()
        .header["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn jwks_kids(http: &Client, auth: &ServiceProcess) -> Vec<String> {
    let r = http.get(&auth.url("/.well-known/jwks.json"), &[]).await;
    assert_eq!(r.status, 200);
    r.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// The kid of the key in `state` in `wristband keys list` output.
fn kid_in_state(listing: &str, state: &str) -> Option<String> {
    listing.lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.len() >= 3 && cols[2] == state).then(|| cols[0].to_owned())
    })
}

#[tokio::test]
async fn the_cli_manages_keys_under_a_running_server_which_notices_within_5_seconds() {
    let d = Deployment::new();
    d.add_user("alice").await;
    let auth = d.serve("127.0.0.1:0").await;
    let first = d.login(&auth, "alice").await;
    let k1 = kid_of(&first.at);

    let listing = d.cli("keys list", &[], None).await;
    assert_eq!(
        kid_in_state(&listing, "current").as_deref(),
        Some(&*k1),
        "{listing}"
    );

    // An immediate rotation from another process: the server signs with the new key
    // within 5 seconds, and the old one stays published (retired).
    let out = d.cli("keys rotate", &["--immediate"], None).await;
    let k2 = kid_in_state(&out, "current").unwrap();
    assert_ne!(k2, k1);
    assert_eq!(
        kid_in_state(&out, "retired").as_deref(),
        Some(&*k1),
        "{out}"
    );
    let start = Instant::now();
    loop {
        let login = d.login(&auth, "alice").await;
        if kid_of(&login.at) == k2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the server still signs with the old key after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let noticed = start.elapsed();
    eprintln!("server noticed the rotation after {noticed:?}");
    let kids = jwks_kids(&d.http, &auth).await;
    assert!(kids.contains(&k1) && kids.contains(&k2), "{kids:?}");
    let me = d.http.get_bearer(&auth.url("/v1/me"), &first.at).await;
    assert_eq!(me.status, 200, "a token of the retired key still works");

    // Emergency revocation from the CLI: gone from the JWKS, its tokens refused.
    let out = d.cli("keys revoke", &[&k1], None).await;
    assert!(out.contains(&format!("revoked: {k1}")), "{out}");
    let start = Instant::now();
    loop {
        let me = d.http.get_bearer(&auth.url("/v1/me"), &first.at).await;
        if me.status == 401 && !jwks_kids(&d.http, &auth).await.contains(&k1) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "revocation not noticed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every key change is an audit event (written by whichever process made it).
    let audited = std::process::Command::new(env!("CARGO_BIN_EXE_wristband"))
        .args([
            "keys",
            "rotate",
            "--immediate",
            "--config",
            &d.config,
            "--data-dir",
        ])
        .arg(&d.data)
        .env("RUST_LOG", "wristband::audit=info")
        .output()
        .unwrap();
    assert!(audited.status.success());
    let log = String::from_utf8_lossy(&audited.stderr);
    for event in ["\"key_published\"", "\"key_retired\"", "\"key_activated\""] {
        assert!(log.contains(event), "{event} not audited: {log}");
    }
    let k3 = kid_in_state(&String::from_utf8_lossy(&audited.stdout), "current").unwrap();
    assert!(log.contains(&k3) && log.contains(&k2), "{log}");

    // A backup restores into a fresh store only with the same master key.
    let backup = d.data.parent().unwrap().join("keys-backup.json");
    let backup = backup.to_string_lossy().into_owned();
    let out = d.cli("keys export", &["--out", &backup], None).await;
    assert!(out.contains("wrote 2 key(s)"), "{out}");
    let text = std::fs::read_to_string(&backup).unwrap();
    assert!(!text.contains("PRIVATE KEY") && text.contains(&k2));

    let other = Deployment::new();
    let master = d.data.join("master.key");
    let master = master.to_string_lossy();
    let out = other
        .cli(
            "keys import",
            &["--master-key-file", &master, &backup],
            None,
        )
        .await;
    assert!(out.contains("imported 2 key(s)"), "{out}");
    assert!(out.contains(&k2), "{out}");

    let third = Deployment::new();
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_wristband"))
        .args(["keys", "import", "--config", &third.config, "--data-dir"])
        .arg(&third.data)
        .arg(&backup)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("master key"), "{err}");
}

/// Counts of one load run.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
}

/// What the rotation test waits on: requests verified, per signing key.
struct LoadProgress<'a> {
    tally: &'a Tally,
    per_kid: &'a Mutex<BTreeMap<String, u64>>,
}

impl LoadProgress<'_> {
    /// Waits (up to 60 s) until `kids` keys have signed verified tokens, the newest of them
    /// at least `ok` times, and at least 150 requests per phase passed in all.
    async fn until(&self, kids: usize, ok: u64, what: &str) {
        let started = Instant::now();
        loop {
            let newest = {
                let per_kid = self.per_kid.lock().unwrap();
                (per_kid.len() >= kids).then(|| newest_count(&per_kid, kids))
            };
            let total = self.tally.ok.load(Ordering::Relaxed);
            if newest.is_some_and(|n| n >= ok) && total >= 150 * kids as u64 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{what}: {total} requests, by kid {:?}",
                self.per_kid.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A lower bound of how many tokens of the newest key were verified: the smallest count
/// (kids are random, so the newest key is not known by name; it starts at 0 while the
/// older ones keep counting).
fn newest_count(per_kid: &BTreeMap<String, u64>, kids: usize) -> u64 {
    if kids == 1 {
        return per_kid.values().copied().max().unwrap_or(0);
    }
    per_kid.values().copied().min().unwrap_or(0)
}

#[tokio::test]
async fn keys_rotate_twice_under_load_through_three_verifiers_with_zero_failures() {
    // A JWKS max-age of 1 s and a 2 s pre-publication: a rotation takes effect a few
    // seconds after `keys rotate`, and a retired key stays published for 2 minutes.
    let d = Deployment::with_settings(
        "jwks_max_age = \"1s\"\nkey_prepublish = \"2s\"\nkey_rotation = \"0s\"\naccess_ttl = \"1m\"",
    );
    d.add_user("alice").await;
    let auth = d.serve("127.0.0.1:0").await;
    let issuer = auth.url("");
    let mut apis = Vec::new();
    for _ in 0..3 {
        apis.push(api_service_for(&issuer, None, &["--refetch-cooldown", "1"]).await);
    }
    let api_urls: Vec<String> = apis.iter().map(|a| a.url("/resource")).collect();

    // The token source: refreshes every 200 ms, so new tokens follow the signing key.
    let login = d.login(&auth, "alice").await;
    let tokens: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(vec![login.at.clone()]));
    let stop = Arc::new(AtomicBool::new(false));
    let minter = wristband_testkit::http::spawn_refresher(
        auth.url("/v1/refresh"),
        login.rt.clone(),
        Arc::clone(&stop),
        Arc::clone(&tokens),
    );

    // Four workers: each request goes to the next API service with the newest token, and
    // every fourth with a random older one (a client that has not refreshed yet).
    let tally = Arc::new(Tally::default());
    let per_kid: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let (tokens, stop, tally, per_kid, urls) = (
            Arc::clone(&tokens),
            Arc::clone(&stop),
            Arc::clone(&tally),
            Arc::clone(&per_kid),
            api_urls.clone(),
        );
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
                let url = &urls[usize::try_from(n).unwrap() % urls.len()];
                let r = http.get_bearer(url, &token).await;
                if r.status == 200 {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                    *per_kid.lock().unwrap().entry(kid_of(&token)).or_default() += 1;
                } else {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                    failures.push(format!("{url} {}: {}", r.status, r.text()));
                }
            }
            failures
        }));
    }

    // Two scheduled rotations from the CLI while the load runs. Each phase lasts until
    // its key has signed tokens that were verified a good number of times, rather than a
    // fixed time: the new key signs `key_prepublish` (2 s) after `keys rotate`.
    let load = LoadProgress {
        tally: &tally,
        per_kid: &per_kid,
    };
    load.until(1, 100, "the load on the first key").await;
    d.cli("keys rotate", &[], None).await;
    load.until(2, 100, "the load on the second key").await;
    d.cli("keys rotate", &[], None).await;
    load.until(3, 100, "the load on the third key").await;
    stop.store(true, Ordering::Relaxed);
    minter.await.unwrap();
    let mut failures = Vec::new();
    for w in workers {
        failures.extend(w.await.unwrap());
    }

    let ok = tally.ok.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    let per_kid = per_kid.lock().unwrap().clone();
    eprintln!("rotation under load: {ok} ok, {failed} failed, by kid: {per_kid:?}");
    assert!(
        failures.is_empty(),
        "{failed} failed: {:?}",
        &failures[..failures.len().min(5)]
    );
    assert_eq!(
        per_kid.len(),
        3,
        "three keys signed during the run: {per_kid:?}"
    );
    assert!(ok > 300, "the load ran: {ok} requests");
    let kids = jwks_kids(&d.http, &auth).await;
    assert_eq!(
        kids.len(),
        3,
        "the retired keys are still published: {kids:?}"
    );
}

#[tokio::test]
async fn an_emergency_revocation_reaches_every_verifier_through_the_feed() {
    let d = Deployment::new();
    d.add_user("alice").await;
    let rs = d.add_client("orders-api", "resource-server", &[]).await;
    let auth = d.serve("127.0.0.1:0").await;
    let mut apis = Vec::new();
    for _ in 0..3 {
        apis.push(api_service(&auth, &rs, &[]).await);
    }
    let refs: Vec<&ServiceProcess> = apis.iter().collect();
    let leaked = d.login(&auth, "alice").await;
    let leaked_kid = kid_of(&leaked.at);
    // Every verifier has verified (and cached) the token before the revocation.
    d.accepted_everywhere(&refs, &leaked.at, "before").await;

    let start = Instant::now();
    d.cli("keys revoke", &[&leaked_kid], None).await;
    let cli_done = start.elapsed();
    let mut delays = Vec::new();
    for (i, api) in apis.iter().enumerate() {
        loop {
            let r = d.http.get_bearer(&api.url("/resource"), &leaked.at).await;
            if r.status == 401 {
                assert_eq!(r.json()["error"], "invalid_token");
                break;
            }
            assert_eq!(r.status, 200, "API service #{i}: {}", r.text());
            assert!(
                start.elapsed() < PROPAGATION + cli_done,
                "API service #{i} still accepts a token of the revoked key"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        delays.push(start.elapsed());
    }
    eprintln!(
        "kid revocation: CLI finished after {cli_done:?}; refused at the 3 verifiers after {delays:?}"
    );

    // Tokens of the key that took over verify everywhere.
    let fresh = d.login(&auth, "alice").await;
    assert_ne!(kid_of(&fresh.at), leaked_kid);
    d.accepted_everywhere(&refs, &fresh.at, "after").await;
}

#[tokio::test]
async fn hs256_mode_end_to_end_with_the_shared_secret() {
    let d = Deployment::with_settings("");
    let dir = d.data.parent().unwrap().to_path_buf();
    let secret_file = dir.join("hs256.secret");
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    std::fs::write(&secret_file, wristband_jose::b64::encode(bytes)).unwrap();
    let secret_file = secret_file.to_string_lossy().into_owned();
    d.add_user("alice").await;
    let data = d.data.to_string_lossy().into_owned();
    let auth = ServiceProcess::spawn(
        std::path::Path::new(env!("CARGO_BIN_EXE_wristband")),
        &[
            "serve",
            "--config",
            &d.config,
            "--data-dir",
            &data,
            "--listen",
            "127.0.0.1:0",
            "--alg",
            "HS256",
            "--hs256-secret-file",
            &secret_file,
        ],
    )
    .await;
    let login = d.login(&auth, "alice").await;
    let header = wristband_jose::dangerous::decode_without_verification(&login.at)
        .unwrap()
        .header;
    assert_eq!(header["alg"], "HS256");
    assert!(
        jwks_kids(&d.http, &auth).await.is_empty(),
        "no HS key in the JWKS"
    );

    let api = api_service_for(&auth.url(""), None, &["--hs256-secret-file", &secret_file]).await;
    assert_eq!(d.status_at(&api, &login.at).await, 200);
    assert_eq!(d.status_at(&api, "eyJhbGciOiJIUzI1NiJ9.e30.x").await, 401);

    // A weak secret stops the server at start-up, without printing the secret (the first
    // server stops first: a second one on the same database would be refused anyway).
    auth.terminate().await;
    let weak = dir.join("weak.secret");
    let weak_text = wristband_jose::b64::encode(b"a-string-secret-at-least-256-bits-long");
    std::fs::write(&weak, &weak_text).unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_wristband"))
        .args(["serve", "--config", &d.config, "--data-dir", &data])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--alg",
            "HS256",
            "--hs256-secret-file",
        ])
        .arg(&weak)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the server started with a weak secret")
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HS256 secret refused"), "{err}");
    assert!(!err.contains(&weak_text), "{err}");
}

#[tokio::test]
async fn a_key_id_that_begins_with_a_hyphen_is_an_id_not_a_flag() {
    // Key ids are base64url thumbprints: one in 64 begins with '-'.
    let d = Deployment::new();
    d.add_user("alice").await;
    for cmd in ["retire", "revoke"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wristband"))
            .args(["keys", cmd, "--config", &d.config, "--data-dir"])
            .arg(&d.data)
            .arg("-4oj7x-eaEiIinIIzT7F_kc5uJ79vmPc_-tbeLgBxcA")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("unexpected argument"), "{cmd}: {err}");
        assert!(err.contains("not found"), "{cmd}: {err}");
    }
}
