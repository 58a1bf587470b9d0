//! `wristband user mfa status` and `reset` on a running deployment: the reset removes the
//! factor, ends the user's sessions, and the password alone signs in again.

use serde_json::json;
use wristband_server::domain::totp::{Settings, Totp};

use crate::revocation::Deployment;

/// The real clock: the server runs on it.
fn now() -> i64 {
    wristband_jose::Clock::now(&wristband_jose::SystemClock).as_i64()
}

#[tokio::test]
async fn status_and_reset_of_a_users_second_factor() {
    let d = Deployment::new();
    d.add_user("alice").await;
    let auth = d.serve("127.0.0.1:0").await;
    let out = d.cli("user mfa", &["status", "alice"], None).await;
    assert!(out.contains("totp:            off"), "{out}");
    assert!(out.contains("second step:     password only"), "{out}");

    let login = d.login(&auth, "alice").await;
    let r = d
        .post_json(&auth.url("/v1/mfa/totp"), Some(&login.at), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let secret = r.json()["secret"].as_str().unwrap().to_owned();
    let out = d.cli("user mfa", &["status", "alice"], None).await;
    assert!(
        out.contains("totp:            enrolment started, not confirmed"),
        "{out}"
    );
    let totp = Totp::from_base32(&secret, Settings::STANDARD).unwrap();
    let r = d
        .post_json(
            &auth.url("/v1/mfa/totp/confirm"),
            Some(&login.at),
            &json!({"code": *totp.code_at(now())}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = d
        .post_json(
            &auth.url("/v1/mfa/recovery-codes"),
            Some(&login.at),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200);
    let out = d.cli("user mfa", &["status", "alice"], None).await;
    assert!(out.contains("totp:            on since 20"), "{out}");
    assert!(out.contains("recovery codes:  10 left"), "{out}");
    assert!(out.contains("second step:     totp, recovery"), "{out}");
    let r = d
        .post_json(
            &auth.url("/v1/login"),
            None,
            &json!({"username": "alice", "password": crate::revocation::PASSWORD}),
        )
        .await;
    assert_eq!(r.json()["error"], "mfa_required");

    // The phone is lost: an administrator resets the factor (the authenticator, ten
    // recovery codes, and the unfinished second step of the login above).
    let out = d.cli("user mfa", &["reset", "alice"], None).await;
    assert!(
        out.contains("removed the second factors of alice (12 records)"),
        "{out}"
    );
    let me = d.http.get_bearer(&auth.url("/v1/me"), &login.at).await;
    assert_eq!(me.status, 401, "the user's sessions ended");
    let again = d.login(&auth, "alice").await;
    assert!(!again.at.is_empty());
    let out = d.cli("user mfa", &["status", "alice"], None).await;
    assert!(out.contains("totp:            off"), "{out}");
    let data = d.data.to_string_lossy();
    let failed = std::process::Command::new(env!("CARGO_BIN_EXE_wristband"))
        .args(["user", "mfa", "--config", &d.config, "--data-dir", &data])
        .args(["reset", "nobody"])
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("not found"), "{stderr}");
}
