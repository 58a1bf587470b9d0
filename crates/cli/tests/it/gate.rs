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
    let m = Minter::new(
        keys::fixed(Algorithm::ES256, 0),
        "https://auth.example",
        "wristband",
    );
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_string(&keys::jwks([m.key()])).unwrap(),
    )
    .unwrap();
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
