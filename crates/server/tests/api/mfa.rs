//! Second factors over the JSON API: TOTP enrolment, the two-step login, replays, expiry,
//! recovery codes, throttling, removal, and how tokens say the user signed in.

use http::Method;
use serde_json::{json, Value};
use wristband_server::domain::totp::{Settings, Totp};
use wristband_server::domain::TokenFormat;

use crate::helpers::{claims, TestApp, PASSWORD};

const ACR_PWD: &str = "urn:wristband:acr:pwd";
const ACR_MFA: &str = "urn:wristband:acr:mfa";

fn bearer(at: &str) -> String {
    format!("Bearer {at}")
}

impl TestApp {
    pub(crate) async fn post_bearer(
        &self,
        path: &str,
        at: &str,
        body: Option<&Value>,
    ) -> TestResponse {
        let auth = bearer(at);
        match body {
            Some(b) => self.post_json(path, b, &[("authorization", &auth)]).await,
            None => {
                self.client
                    .send(
                        Method::POST,
                        &self.url(path),
                        &[("authorization", &auth)],
                        b"",
                    )
                    .await
            }
        }
    }

    /// Enrols a TOTP authenticator for the holder of `at` and confirms it; returns it,
    /// and advances the clock one step so that the next code is fresh.
    pub(crate) async fn enrol_totp(&self, at: &str) -> Totp {
        let r = self.post_bearer("/v1/mfa/totp", at, None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let secret = r.json()["secret"].as_str().unwrap().to_owned();
        let totp = Totp::new(
            data_encoding::BASE32_NOPAD
                .decode(secret.as_bytes())
                .unwrap(),
            Settings::STANDARD,
        );
        let code = totp.code_at(self.now());
        let r = self
            .post_bearer("/v1/mfa/totp/confirm", at, Some(&json!({ "code": *code })))
            .await;
        assert_eq!(r.status, 204, "{}", r.text());
        self.advance(30);
        totp
    }

    pub(crate) async fn recovery_codes(&self, at: &str) -> Vec<String> {
        let r = self.post_bearer("/v1/mfa/recovery-codes", at, None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect()
    }

    /// A password login that must ask for a second factor: its `mfa_token`.
    async fn first_step(&self, user: &str) -> String {
        let r = self.login(user, PASSWORD).await;
        assert_eq!(r.status, 401, "{}", r.text());
        let j = r.json();
        assert_eq!(j["error"], "mfa_required", "{j}");
        j["mfa_token"].as_str().unwrap().to_owned()
    }

    async fn second_step(&self, mfa_token: &str, method: &str, code: &str) -> TestResponse {
        self.post_json(
            "/v1/login/mfa",
            &json!({"mfa_token": mfa_token, "method": method, "code": code}),
            &[],
        )
        .await
    }
}

use wristband_testkit::http::TestResponse;

#[tokio::test]
async fn enrolment_then_a_two_step_login_whose_tokens_say_mfa() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let (at, _) = t.tokens("alice").await;
    let before = claims(&at);
    assert_eq!(before["amr"], json!(["pwd"]));
    assert_eq!(before["acr"], ACR_PWD);
    assert_eq!(before["auth_time"], json!(t.now()));

    // A started enrolment is no factor yet.
    let r = t.post_bearer("/v1/mfa/totp", &at, None).await;
    let j = r.json();
    let uri = j["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/127.0.0.1:alice?secret="),
        "{uri}"
    );
    assert!(uri.contains("&algorithm=SHA1&digits=6&period=30"), "{uri}");
    let status = t.client.get_bearer(&t.url("/v1/mfa"), &at).await.json();
    assert_eq!(status["totp"], false);
    assert_eq!(status["totp_pending"], true);
    assert_eq!(t.login("alice", PASSWORD).await.status, 200);

    // Confirmation takes a right code once.
    let totp = t.enrol_totp(&at).await;
    let r = t
        .post_bearer(
            "/v1/mfa/totp/confirm",
            &at,
            Some(&json!({"code": "000000"})),
        )
        .await;
    assert_eq!(r.status, 409, "confirmed already: {}", r.text());
    let codes = t.recovery_codes(&at).await;
    assert_eq!(codes.len(), 10);
    let status = t.client.get_bearer(&t.url("/v1/mfa"), &at).await.json();
    assert_eq!(
        status,
        json!({"totp": true, "totp_pending": false, "recovery_codes_left": 10,
               "methods": ["totp", "recovery"]})
    );

    // The password alone now gets the second step, no token.
    let r = t.login("alice", PASSWORD).await;
    assert_eq!(r.status, 401);
    let j = r.json();
    assert_eq!(j["error"], "mfa_required");
    assert_eq!(j["methods"], json!(["totp", "recovery"]));
    assert!(j.get("access_token").is_none());
    let mfa_token = j["mfa_token"].as_str().unwrap();
    assert!(mfa_token.starts_with("wbm_"));

    // A wrong code, then the right one.
    let r = t.second_step(mfa_token, "totp", "123456").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_code");
    t.advance(7);
    let signed_in_at = t.now();
    let r = t
        .second_step(mfa_token, "totp", &totp.code_at(t.now()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let j = r.json();
    assert!(j["device_token"].is_string());
    assert!(j.get("recovery_codes_left").is_none());
    let c = claims(j["access_token"].as_str().unwrap());
    assert_eq!(c["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(c["acr"], ACR_MFA);
    assert_eq!(c["auth_time"], json!(signed_in_at));

    // The mfa_token is spent.
    t.advance(30);
    let r = t
        .second_step(mfa_token, "totp", &totp.code_at(t.now()))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_mfa_token");

    // A refresh keeps how and when the user signed in.
    t.advance(100);
    let r = t.refresh(j["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status, 200);
    let c = claims(r.json()["access_token"].as_str().unwrap());
    assert_eq!(c["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(c["acr"], ACR_MFA);
    assert_eq!(c["auth_time"], json!(signed_in_at));
    assert!(c["iat"].as_i64().unwrap() > signed_in_at);
}

#[tokio::test]
async fn a_code_works_once_and_only_in_its_window() {
    let t = TestApp::spawn().await;
    t.add_user("bob", "user").await;
    let (at, _) = t.tokens("bob").await;
    let totp = t.enrol_totp(&at).await;
    let code = totp.code_at(t.now());
    let first = t.first_step("bob").await;
    assert_eq!(t.second_step(&first, "totp", &code).await.status, 200);
    // The same code again (same step), with a new first step: a replay.
    let second = t.first_step("bob").await;
    let r = t.second_step(&second, "totp", &code).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_code");
    // The previous step's code is older than the last used: refused too.
    let r = t
        .second_step(&second, "totp", &totp.code_at(t.now() - 30))
        .await;
    assert_eq!(r.json()["error"], "invalid_code");
    // Two steps ahead is outside the window.
    let r = t
        .second_step(&second, "totp", &totp.code_at(t.now() + 60))
        .await;
    assert_eq!(r.json()["error"], "invalid_code");
    // One step ahead is inside it (clock skew).
    let r = t
        .second_step(&second, "totp", &totp.code_at(t.now() + 30))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn an_mfa_token_expires_after_five_minutes() {
    let t = TestApp::spawn().await;
    t.add_user("carol", "user").await;
    let (at, _) = t.tokens("carol").await;
    let totp = t.enrol_totp(&at).await;
    let mfa_token = t.first_step("carol").await;
    t.advance(300);
    let r = t
        .second_step(&mfa_token, "totp", &totp.code_at(t.now()))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_mfa_token");
    // Forged and malformed tokens get the same answer.
    for forged in [
        "",
        "wbm_",
        "x".repeat(47).as_str(),
        &format!("wbm_{}", "A".repeat(43)),
    ] {
        let r = t.second_step(forged, "totp", "123456").await;
        assert_eq!(r.status, 401, "{forged}");
        assert_eq!(r.json()["error"], "invalid_mfa_token");
    }
    let r = t.second_step(&mfa_token, "sms", "123456").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn recovery_codes_work_once_each_and_count_down() {
    let t = TestApp::spawn().await;
    t.add_user("dave", "user").await;
    let (at, _) = t.tokens("dave").await;
    t.enrol_totp(&at).await;
    let codes = t.recovery_codes(&at).await;
    let first = t.first_step("dave").await;
    // Typed in capitals with a space instead of the dash: the same code.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let r = t.second_step(&first, "recovery", &typed).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["recovery_codes_left"], 9);
    let c = claims(j["access_token"].as_str().unwrap());
    assert_eq!(c["acr"], ACR_MFA);
    let again = t.first_step("dave").await;
    let r = t.second_step(&again, "recovery", &codes[0]).await;
    assert_eq!(r.status, 401, "a recovery code is single use");
    assert_eq!(r.json()["error"], "invalid_code");
    assert_eq!(
        t.second_step(&again, "recovery", &codes[1]).await.json()["recovery_codes_left"],
        8
    );
    // A new set replaces the old one.
    let fresh = t.recovery_codes(&at).await;
    let third = t.first_step("dave").await;
    assert_eq!(
        t.second_step(&third, "recovery", &codes[2]).await.status,
        401
    );
    let r = t.second_step(&third, "recovery", &fresh[0]).await;
    assert_eq!(r.json()["recovery_codes_left"], 9);
}

#[tokio::test]
async fn wrong_codes_exhaust_the_token_and_then_throttle() {
    let t = TestApp::spawn().await;
    t.add_user("erin", "user").await;
    let (at, _) = t.tokens("erin").await;
    let totp = t.enrol_totp(&at).await;
    let a = t.first_step("erin").await;
    for _ in 0..5 {
        assert_eq!(t.second_step(&a, "totp", "000000").await.status, 401);
    }
    // Five wrong codes: this second step is over, even with the right code.
    let r = t.second_step(&a, "totp", &totp.code_at(t.now())).await;
    assert_eq!(r.json()["error"], "invalid_mfa_token");
    // A new one: the sixth wrong code from this address earns a delay.
    let b = t.first_step("erin").await;
    assert_eq!(t.second_step(&b, "totp", "000000").await.status, 401);
    let r = t.second_step(&b, "totp", &totp.code_at(t.now())).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    t.advance(1);
    let r = t.second_step(&b, "totp", &totp.code_at(t.now())).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn remove_totp(t: &TestApp, at: &str, code: &str) -> TestResponse {
    t.client
        .send(
            Method::DELETE,
            &t.url("/v1/mfa/totp"),
            &[
                ("authorization", &bearer(at)),
                ("content-type", "application/json"),
            ],
            json!({ "code": code }).to_string().as_bytes(),
        )
        .await
}

#[tokio::test]
async fn removal_needs_a_fresh_second_factor() {
    let t = TestApp::spawn().await;
    t.add_user("frank", "user").await;
    let (at, _) = t.tokens("frank").await;
    let totp = t.enrol_totp(&at).await;
    let r = remove_totp(&t, &at, "000000").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_code");
    assert_eq!(t.login("frank", PASSWORD).await.status, 401);
    let r = remove_totp(&t, &at, &totp.code_at(t.now())).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(t.login("frank", PASSWORD).await.status, 200);
    let r = remove_totp(&t, &at, &totp.code_at(t.now() + 30)).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn introspection_says_how_the_user_signed_in_for_both_formats() {
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        let t = TestApp::spawn_with(|c| c.access_token_format = format).await;
        let rs = t.resource_server("orders").await;
        t.add_user("gina", "user").await;
        let (at, _) = t.tokens("gina").await;
        let j = t.introspect(&rs, &at).await.json();
        assert_eq!(j["amr"], json!(["pwd"]), "{format:?} {j}");
        assert_eq!(j["acr"], ACR_PWD);
        assert_eq!(j["auth_time"], json!(t.now()));
        let totp = t.enrol_totp(&at).await;
        let step = t.first_step("gina").await;
        let r = t.second_step(&step, "totp", &totp.code_at(t.now())).await;
        let at = r.json()["access_token"].as_str().unwrap().to_owned();
        let j = t.introspect(&rs, &at).await.json();
        assert_eq!(j["active"], true, "{format:?} {j}");
        assert_eq!(j["amr"], json!(["pwd", "otp", "mfa"]), "{format:?}");
        assert_eq!(j["acr"], ACR_MFA);
        assert_eq!(j["auth_time"], json!(t.now()));
    }
}

#[tokio::test]
async fn a_role_that_needs_a_second_factor_enrols_at_sign_in() {
    let t = TestApp::spawn_with(|c| c.require_mfa_for_roles = vec!["admin".into()]).await;
    t.add_user("pat", "user").await;
    t.add_user("root", "admin").await;
    assert_eq!(
        t.login("pat", PASSWORD).await.status,
        200,
        "other roles as before"
    );

    let r = t.login("root", PASSWORD).await;
    assert_eq!(r.status, 401);
    let j = r.json();
    assert_eq!(j["error"], "mfa_enrolment_required", "{j}");
    assert_eq!(j["methods"], json!(["totp"]));
    assert!(j.get("access_token").is_none());
    let step = j["mfa_token"].as_str().unwrap().to_owned();
    // No code counts before an authenticator is enrolled, and no recovery code ever.
    let r = t.second_step(&step, "totp", "123456").await;
    assert_eq!(r.json()["error"], "invalid_code");
    let r = t.second_step(&step, "recovery", "abcde-fghij").await;
    assert_eq!(r.json()["error"], "invalid_code");
    let r = t
        .post_json("/v1/login/enrol", &json!({"mfa_token": "wbm_forged"}), &[])
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_mfa_token");

    let r = t
        .post_json("/v1/login/enrol", &json!({ "mfa_token": step }), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let totp = Totp::from_base32(r.json()["secret"].as_str().unwrap(), Settings::STANDARD).unwrap();
    let r = t.second_step(&step, "totp", &totp.code_at(t.now())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = claims(r.json()["access_token"].as_str().unwrap());
    assert_eq!(c["acr"], ACR_MFA);
    assert_eq!(c["role"], "admin");

    // From now on an ordinary second step.
    let r = t.login("root", PASSWORD).await;
    assert_eq!(r.json()["error"], "mfa_required");
    assert_eq!(r.json()["methods"], json!(["totp"]));
    // An ordinary second step does not enrol.
    let r = t
        .post_json(
            "/v1/login/enrol",
            &json!({ "mfa_token": r.json()["mfa_token"] }),
            &[],
        )
        .await;
    assert_eq!(r.json()["error"], "invalid_mfa_token");
}
