//! Second factors on the hosted pages, as form posts: the code page of a sign-in, step-up
//! through the resume navigation (RFC 9470's `acr_values` and `max_age`), and enrolment
//! and removal on the account page. The same in a real browser: `browser_mfa.rs`.

use wristband_server::domain::totp::Totp;
use wristband_testkit::http::TestResponse;

use crate::cookies::{Jar, AT};
use crate::helpers::{claims, TestApp, PASSWORD};
use crate::mount::{enc, location, mounted, post_form_from, ORIGIN};

const ACR_MFA: &str = "urn:wristband:acr:mfa";
const TARGET: &str = "https://app.example.com/reports?q=1";

/// The `value` of the input named `name` in a page.
fn input_value(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no input {name} in {page}"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()]
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

async fn form(app: &TestApp, jar: &Jar, path: &str, pairs: &[(&str, &str)]) -> TestResponse {
    post_form_from(app, ORIGIN, jar, path, pairs).await
}

async fn page(app: &TestApp, jar: &Jar, path: &str) -> TestResponse {
    app.client
        .get(&app.url(path), &[("cookie", &jar.header(path))])
        .await
}

async fn resume_with(app: &TestApp, jar: &Jar, extra: &str) -> TestResponse {
    let path = format!("/v1/session/resume?return_to={}{extra}", enc(TARGET));
    app.client
        .get(
            &app.url(&path),
            &[
                ("cookie", &jar.header("/v1/session/resume")),
                ("sec-fetch-mode", "navigate"),
            ],
        )
        .await
}

/// A form login with the strength fields; the response and the cookies it set.
async fn form_login(app: &TestApp, user: &str, strength: &[(&str, &str)]) -> (TestResponse, Jar) {
    let mut pairs = vec![
        ("username", user),
        ("password", PASSWORD),
        ("return_to", TARGET),
    ];
    pairs.extend_from_slice(strength);
    let r = form(app, &Jar::default(), "/login", &pairs).await;
    let mut jar = Jar::default();
    jar.update(&r);
    (r, jar)
}

async fn enrolled(app: &TestApp, user: &str) -> Totp {
    app.add_user(user, "user").await;
    let (at, _) = app.tokens(user).await;
    app.enrol_totp(&at).await
}

#[tokio::test]
async fn a_form_login_with_a_second_factor_asks_for_the_code_then_returns() {
    let app = mounted().await;
    let totp = enrolled(&app, "alice").await;
    let (r, jar) = form_login(&app, "alice", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(jar.0.is_empty(), "no cookie before the second step");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let text = r.text();
    assert!(text.contains("Code from your authenticator app"), "{text}");
    assert!(text.contains("action=\"/auth/login/mfa\""));
    let mfa_token = input_value(&text, "mfa_token");
    assert!(mfa_token.starts_with("wbm_"));
    assert_eq!(input_value(&text, "return_to"), TARGET);

    let step = |code: String| {
        let token = mfa_token.clone();
        let app = &app;
        async move {
            form(
                app,
                &Jar::default(),
                "/login/mfa",
                &[
                    ("mfa_token", &token),
                    ("method", "totp"),
                    ("code", &code),
                    ("return_to", TARGET),
                ],
            )
            .await
        }
    };
    let r = step("000000".into()).await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("That code is wrong"), "{}", r.text());
    let r = step(totp.code_at(app.now()).to_string()).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(location(&r), TARGET);
    let mut jar = Jar::default();
    jar.update(&r);
    assert_eq!(claims(jar.get(AT))["acr"], ACR_MFA);
    // The same second step again: sign in again.
    app.advance(30);
    let r = step(totp.code_at(app.now()).to_string()).await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("Sign in again"), "{}", r.text());
}

#[tokio::test]
async fn resume_steps_up_a_weak_or_old_sign_in() {
    let app = mounted().await;
    let acr = format!(
        "&acr_values={}",
        enc(&format!("{ACR_MFA} urn:wristband:acr:phr"))
    );

    // Without a factor: to the account page, which says why, with the session refreshed.
    app.add_user("bob", "user").await;
    let (_, bob) = form_login(&app, "bob", &[]).await;
    let r = resume_with(&app, &bob, &acr).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(location(&r), "/auth/account?need=mfa");
    let mut bob = bob.clone();
    bob.update(&r);
    let account = page(&app, &bob, "/account?need=mfa").await;
    assert!(
        account.text().contains("needs a second factor"),
        "{}",
        account.text()
    );

    // A password session of a user who has since enrolled a factor: sign in again, with
    // the strength.
    app.add_user("carol", "user").await;
    let (_, carol) = form_login(&app, "carol", &[]).await;
    let (at, _) = app.tokens("carol").await;
    app.enrol_totp(&at).await;
    let r = resume_with(&app, &carol, &acr).await;
    assert_eq!(r.status, 303);
    let to = location(&r).to_owned();
    assert_eq!(
        to,
        format!(
            "/auth/login?return_to={}&acr_values={}",
            enc(TARGET),
            enc(&format!("{ACR_MFA} urn:wristband:acr:phr"))
        )
    );
    // The proxy strips the public URL's /auth prefix.
    let login = page(&app, &Jar::default(), to.strip_prefix("/auth").unwrap()).await;
    assert!(login
        .text()
        .contains("needs a stronger or more recent sign-in"));

    // Signing in with the strength: the code page keeps it, and the browser returns.
    let totp = enrolled(&app, "alice").await;
    let strength = [("acr_values", ACR_MFA), ("max_age", "300")];
    let (r, _) = form_login(&app, "alice", &strength).await;
    let text = r.text();
    assert_eq!(input_value(&text, "acr_values"), ACR_MFA);
    assert_eq!(input_value(&text, "max_age"), "300");
    let r = form(
        &app,
        &Jar::default(),
        "/login/mfa",
        &[
            ("mfa_token", &input_value(&text, "mfa_token")),
            ("method", "totp"),
            ("code", &totp.code_at(app.now())),
            ("return_to", TARGET),
            ("acr_values", ACR_MFA),
            ("max_age", "300"),
        ],
    )
    .await;
    assert_eq!(location(&r), TARGET);
    let mut strong = Jar::default();
    strong.update(&r);
    let r = resume_with(&app, &strong, &format!("{acr}&max_age=300")).await;
    assert_eq!(location(&r), TARGET, "strong and fresh");
    strong.update(&r);
    // Five minutes later the same session is too old for max_age=300.
    app.advance(301);
    let r = resume_with(&app, &strong, &format!("{acr}&max_age=300")).await;
    assert!(location(&r).starts_with("/auth/login?"), "{}", location(&r));
    assert!(location(&r).ends_with("&max_age=300"), "{}", location(&r));
    // A max_age that is not seconds is a 400 page, not a redirect.
    let r = resume_with(&app, &strong, "&max_age=soon").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn the_account_page_enrols_shows_recovery_codes_once_and_removes() {
    let app = mounted().await;
    app.add_user("erin", "user").await;
    let (_, mut jar) = form_login(&app, "erin", &[]).await;
    let account = page(&app, &jar, "/account").await.text();
    assert!(
        account.contains("Off: your password alone signs you in."),
        "{account}"
    );
    let csrf = input_value(&account, "csrf_token");

    // Without the CSRF field the post is refused.
    let r = form(&app, &jar, "/account/mfa/totp", &[]).await;
    assert_eq!(r.status, 403);
    let r = form(&app, &jar, "/account/mfa/totp", &[("csrf_token", &csrf)]).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(location(&r), "/auth/account/mfa/totp");
    let enrol = page(&app, &jar, "/account/mfa/totp").await;
    assert_eq!(enrol.header("cache-control"), Some("no-store"));
    let text = enrol.text();
    assert!(
        text.contains("<svg role=\"img\" aria-hidden=\"true\""),
        "{text}"
    );
    assert!(!text.contains("<?xml"));
    let secret = {
        let at = text.find("<code id=\"secret\" class=\"secret\">").unwrap() + 33;
        text[at..at + text[at..].find('<').unwrap()].to_owned()
    };
    let totp = Totp::new(
        data_encoding::BASE32_NOPAD
            .decode(secret.as_bytes())
            .unwrap(),
        wristband_server::domain::totp::Settings::STANDARD,
    );

    // A wrong code shows the same secret again; the right one turns it on and shows the
    // recovery codes, once.
    let r = form(
        &app,
        &jar,
        "/account/mfa/totp/confirm",
        &[("csrf_token", &csrf), ("code", "000000")],
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains(&secret), "the same secret");
    let r = form(
        &app,
        &jar,
        "/account/mfa/totp/confirm",
        &[("csrf_token", &csrf), ("code", &totp.code_at(app.now()))],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let codes = r.text().matches("<li><code>").count();
    assert_eq!(codes, 10);
    let account = page(&app, &jar, "/account").await.text();
    assert!(
        account.contains("An authenticator app is on since"),
        "{account}"
    );
    assert!(account.contains("<span id=\"recovery-left\">10</span>"));
    // The enrolment page no longer shows a secret.
    let r = page(&app, &jar, "/account/mfa/totp").await;
    assert_eq!(r.status, 303);

    // New codes.
    let r = form(
        &app,
        &jar,
        "/account/mfa/recovery-codes",
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(r.text().matches("<li><code>").count(), 10);

    // Removal takes a current code.
    app.advance(30);
    let r = form(
        &app,
        &jar,
        "/account/mfa/totp/remove",
        &[("csrf_token", &csrf), ("code", "000000")],
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("still on"));
    let r = form(
        &app,
        &jar,
        "/account/mfa/totp/remove",
        &[("csrf_token", &csrf), ("code", &totp.code_at(app.now()))],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("The authenticator app is off."));
    jar.update(&r);
    assert_eq!(app.login("erin", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn the_login_page_enrols_a_user_whose_role_needs_a_factor() {
    let app = TestApp::spawn_with(|c| {
        c.public_url = Some(crate::mount::PUBLIC.into());
        c.require_mfa_for_roles = vec!["admin".into()];
    })
    .await;
    app.add_user("root", "admin").await;
    let (r, jar) = form_login(&app, "root", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(jar.0.is_empty());
    let text = r.text();
    assert!(text.contains("Set up two-step sign-in"), "{text}");
    assert!(text.contains("<svg role=\"img\""));
    assert!(
        !text.contains("recovery-step"),
        "no recovery codes while enrolling"
    );
    let secret = {
        let at = text.find("<code id=\"secret\" class=\"secret\">").unwrap() + 33;
        text[at..at + text[at..].find('<').unwrap()].to_owned()
    };
    let totp =
        Totp::from_base32(&secret, wristband_server::domain::totp::Settings::STANDARD).unwrap();
    let mfa_token = input_value(&text, "mfa_token");
    let post = |code: String| {
        let token = mfa_token.clone();
        let app = &app;
        async move {
            form(
                app,
                &Jar::default(),
                "/login/mfa",
                &[
                    ("mfa_token", &token),
                    ("method", "totp"),
                    ("enrol", "1"),
                    ("code", &code),
                    ("return_to", TARGET),
                ],
            )
            .await
        }
    };
    let r = post("000000".into()).await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains(&secret), "the same key again");
    let r = post(totp.code_at(app.now()).to_string()).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(location(&r), TARGET);
    let mut jar = Jar::default();
    jar.update(&r);
    assert_eq!(claims(jar.get(AT))["acr"], ACR_MFA);
}
