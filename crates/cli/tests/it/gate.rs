//! `wristband gate` as a process: `check-policy`, `explain`, and a gate in front of a
//! real auth service (`wristband serve`) following its revocation feed: allow, deny, a
//! logout refused within a second, a policy file changed under the running gate, an
//! invalid one ignored and logged, and a graceful stop.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use wristband_jose::Algorithm;
use wristband_testkit::http::{Client, TestResponse};
use wristband_testkit::process::ServiceProcess;
use wristband_testkit::{keys, Minter};

use crate::revocation::Deployment;

const POLICY: &str = r#"
[[rule]]
name = "public"
path = "/public"
require = "anonymous"

[[rule]]
name = "admin"
path = "/admin"
require = "role:admin"

[[rule]]
name = "app"
path = "/"
require = "authenticated"
"#;

/// `wristband ARGS...` to completion: (exit code, stdout, stderr).
async fn wristband(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wristband"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A minter for `https://auth.example` and its keys as a JWKS file in `dir`.
fn minter_with_jwks(dir: &Path) -> (Minter, std::path::PathBuf) {
    let m = Minter::new(
        keys::fixed(Algorithm::ES256, 0),
        "https://auth.example",
        "wristband",
    );
    let jwks = dir.join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_string(&keys::jwks([m.key()])).unwrap(),
    )
    .unwrap();
    (m, jwks)
}

#[tokio::test]
async fn check_policy_accepts_a_good_file_and_names_the_error_in_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, POLICY).unwrap();
    let (code, out, _) = wristband(&["gate", "check-policy", good.to_str().unwrap()]).await;
    assert_eq!((code, out.as_str()), (0, "policy ok: 3 rules\n"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[rule]]\npath = \"/\"\nrequire = \"superuser\"\n").unwrap();
    let (code, out, err) = wristband(&["gate", "check-policy", bad.to_str().unwrap()]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("rule #1") && err.contains("superuser"),
        "{err}"
    );

    let (code, _, err) = wristband(&["gate", "check-policy", "/nonexistent/policy.toml"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("reading"), "{err}");
}

#[tokio::test]
async fn explain_prints_the_decision_and_its_rule() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let (m, jwks) = minter_with_jwks(dir.path());
    let (policy, jwks) = (policy.to_str().unwrap(), jwks.to_str().unwrap());
    let explain = |url: &'static str, token: Option<String>| async move {
        let mut args = vec![
            "gate".to_owned(),
            "explain".into(),
            url.into(),
            "--policy".into(),
            policy.into(),
            "--issuer".into(),
            "https://auth.example".into(),
            "--jwks".into(),
            jwks.into(),
        ];
        if let Some(t) = token {
            args.extend(["--token".to_owned(), t]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        wristband(&args).await
    };

    let admin = m.token("user-1", Some("admin"));
    let (code, out, err) = explain("https://app.example.com/admin/x", Some(admin)).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("decision: allow (200)\n"), "{out}");
    assert!(
        out.contains("rule:     #2 \"admin\" (require role:admin)"),
        "{out}"
    );
    assert!(
        out.contains("header:   x-auth-request-user: user-1"),
        "{out}"
    );

    let user = m.token("user-2", Some("user"));
    let (code, out, _) = explain("https://app.example.com/admin", Some(user)).await;
    assert_eq!(code, 1);
    assert!(
        out.contains("(403)") && out.contains("#2 \"admin\""),
        "{out}"
    );

    let (code, out, _) = explain("https://app.example.com/public/../admin", None).await;
    assert_eq!(code, 1);
    assert!(
        out.contains("deny: no token (401)") && out.contains("\"admin\""),
        "{out}"
    );

    let (code, out, _) = explain("https://app.example.com/public", None).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("allow (anonymous) (200)") && out.contains("\"public\""),
        "{out}"
    );

    let (code, out, _) = explain("https://app.example.com/", Some(m.expired("u"))).await;
    assert_eq!(code, 1);
    assert!(
        out.contains("token refused (expired)") || out.contains("token refused"),
        "{out}"
    );
}

/// A request from "nginx" (this test, on 127.0.0.1) about `url`.
async fn ask(http: &Client, gate: &ServiceProcess, url: &str, token: Option<&str>) -> TestResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("x-original-url", url), ("x-original-method", "GET")];
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    http.get(&gate.url("/authz/auth-request"), &headers).await
}

#[tokio::test]
async fn a_gate_in_front_of_a_real_auth_service() {
    let d = Deployment::new();
    d.add_user("alice").await;
    let rs = d.add_client("gate", "resource-server", &[]).await;
    let auth = d.serve("127.0.0.1:0").await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let issuer = auth.url("");
    let gate = ServiceProcess::spawn(
        Path::new(env!("CARGO_BIN_EXE_wristband")),
        &[
            "gate",
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            &issuer,
            "--client-id",
            &rs.id,
            "--client-secret",
            &rs.secret,
            "--policy",
            policy.to_str().unwrap(),
        ],
    )
    .await;
    let http = &d.http;
    assert_eq!(http.get(&gate.url("/health"), &[]).await.status, 200);

    let s = d.login(&auth, "alice").await;
    let r = ask(http, &gate, "https://app.example.com/orders", Some(&s.at)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-auth-request-session"), Some(s.sid.as_str()));
    assert!(r
        .header("x-auth-request-user")
        .is_some_and(|u| !u.is_empty()));
    let r = ask(http, &gate, "https://app.example.com/admin", Some(&s.at)).await;
    assert_eq!(r.status, 403);
    let r = ask(http, &gate, "https://app.example.com/orders", None).await;
    assert_eq!(r.status, 401);
    let r = ask(http, &gate, "https://app.example.com/public/x", None).await;
    assert_eq!(r.status, 200);

    // Forward auth: a browser without a session goes to the auth service's resume
    // endpoint (the default login URL), with the original URL to return to.
    let forwarded = [
        ("x-forwarded-method", "GET"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "app.example.com"),
        ("x-forwarded-uri", "/orders?id=1"),
        ("accept", "text/html,*/*;q=0.8"),
    ];
    let r = http.get(&gate.url("/authz/forward"), &forwarded).await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some(
            format!("{issuer}/v1/session/resume?return_to=https%3A%2F%2Fapp.example.com%2Forders%3Fid%3D1")
                .as_str()
        )
    );
    // Envoy: the original request is the gate request itself.
    let bearer = format!("Bearer {}", s.at);
    let r = http
        .get(
            &gate.url("/authz/ext-authz/orders/1"),
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let metrics = http.get(&gate.url("/metrics"), &[]).await.text();
    assert!(
        metrics.contains("wristband_gate_revocation_staleness_seconds ")
            && metrics.contains(
                "wristband_gate_decisions_total{endpoint=\"forward\",outcome=\"redirect\"} 1"
            ),
        "{metrics}"
    );

    // Logout: the gate refuses the token within a second, through the feed alone.
    let r = d
        .post_json(&auth.url("/v1/logout"), Some(&s.at), &json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let start = Instant::now();
    loop {
        let r = ask(http, &gate, "https://app.example.com/orders", Some(&s.at)).await;
        if r.status == 401 {
            assert_eq!(r.json()["error"], "invalid_token");
            break;
        }
        assert_eq!(r.status, 200);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "still allowed after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("logout refused by the gate after {:?}", start.elapsed());

    // Policy reload: /orders becomes anonymous within about two seconds.
    let fresh = d.login(&auth, "alice").await;
    std::fs::write(
        &policy,
        "[[rule]]\npath = \"/orders\"\nrequire = \"anonymous\"\n",
    )
    .unwrap();
    let start = Instant::now();
    while ask(http, &gate, "https://app.example.com/orders", None)
        .await
        .status
        != 200
    {
        assert!(
            start.elapsed() < Duration::from_millis(2500),
            "the new policy is not in force"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Default deny under the new policy.
    let r = ask(
        http,
        &gate,
        "https://app.example.com/other",
        Some(&fresh.at),
    )
    .await;
    assert_eq!(r.status, 403);

    // An invalid file: logged, the policy stays as it was.
    std::fs::write(&policy, "this is not toml [[").unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        ask(http, &gate, "https://app.example.com/orders", None)
            .await
            .status,
        200
    );
    let logs = gate.logs().join("\n");
    assert!(
        logs.contains("invalid; keeping the policy in force"),
        "{logs}"
    );
    assert!(
        !logs.contains(&fresh.at) && !logs.contains(&s.at),
        "a token in the logs"
    );

    let status = gate.terminate().await;
    assert!(status.success(), "{status:?}");
}

#[cfg(unix)]
/// One HTTP/1.1 request over a Unix socket (`Connection: close`): the status line and the
/// raw head of the answer.
async fn ask_unix(socket: &Path, url: &str, token: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let mut request = format!(
        "GET /authz/auth-request HTTP/1.1\r\nHost: gate\r\nX-Original-URL: {url}\r\n\
         X-Original-Method: GET\r\nConnection: close\r\n"
    );
    if let Some(t) = token {
        request.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[cfg(unix)]
#[tokio::test]
async fn a_gate_on_a_unix_socket_trusts_its_peer_like_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let (m, jwks) = minter_with_jwks(dir.path());
    let socket = dir.path().join("gate.sock");
    // A stale socket from an earlier run is replaced; a regular file is not.
    std::fs::write(&socket, "not a socket").unwrap();
    let listen = format!("unix:{}", socket.display());
    let args = [
        "gate",
        "--listen",
        &listen,
        "--threads",
        "1",
        "--issuer",
        "https://auth.example",
        "--jwks",
        jwks.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ];
    let (code, _, err) = wristband(&args).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a socket"), "{err}");
    std::fs::remove_file(&socket).unwrap();

    let mut gate = tokio::process::Command::new(env!("CARGO_BIN_EXE_wristband"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(gate.stdout.take().unwrap());
    let mut first = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut first),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(first.trim(), format!("listening on {listen}"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o666
    );

    let admin = m.token("user-1", Some("admin"));
    let (status, head) = ask_unix(&socket, "https://app.example.com/admin/x", Some(&admin)).await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-auth-request-user: user-1"),
        "{head}"
    );
    let user = m.token("user-2", Some("user"));
    let (status, _) = ask_unix(&socket, "https://app.example.com/admin/x", Some(&user)).await;
    assert_eq!(status, 403);
    let (status, head) = ask_unix(&socket, "https://app.example.com/orders", None).await;
    assert_eq!(status, 401, "{head}");

    // SIGTERM: the gate stops and removes its socket.
    let pid = gate.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), gate.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists());
}
