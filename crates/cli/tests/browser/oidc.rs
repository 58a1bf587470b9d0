//! Issue 15's browser acceptance: the example relying party (`examples/oidc_rp`, built on
//! the independent `openidconnect` crate) signs a person in through Wristband's hosted
//! login and consent pages in a real Chromium, `/account` lists the app and withdraws its
//! consent, and RP-initiated logout ends the sign-in session: with no console error on
//! any page.
//!
//! Wristband listens on `127.0.0.1` and is browsed as `http://localhost:PORT` (its issuer);
//! the app runs on `http://127.0.0.1:OTHER`, another site, as a third-party app would.

use std::path::Path;

use serde_json::Value;
use tempfile::TempDir;
use wristband_testkit::browser::{free_port, Browser};
use wristband_testkit::process::{example_binary, run_to_completion, ServiceProcess};

use crate::pages::{fill_login, store_with_user, wait_for_text, USER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_app_signs_in_with_consent_and_logs_out_through_wristband() {
    let _one = crate::ONE_BROWSER.lock().await;
    let Some(browser) = Browser::start(
        "browser::oidc::the_example_app_signs_in_with_consent_and_logs_out_through_wristband",
    )
    .await
    else {
        return;
    };
    let dir = TempDir::new().unwrap();
    let (config, data) = store_with_user(&dir).await;
    let wristband = Path::new(env!("CARGO_BIN_EXE_wristband"));

    // Wristband, browsed as localhost (its issuer).
    let port = free_port();
    let base = format!("http://localhost:{port}");
    let listen = format!("127.0.0.1:{port}");
    let _service = ServiceProcess::spawn(
        wristband,
        &[
            "serve",
            "--config",
            &config,
            "--data-dir",
            &data,
            "--listen",
            &listen,
            "--issuer",
            &base,
        ],
    )
    .await;

    // The app: a third-party web client (so consent is asked), registered with its two
    // addresses before it starts.
    let app_port = free_port();
    let app = format!("http://127.0.0.1:{app_port}");
    let out = run_to_completion(
        wristband,
        &[
            "client",
            "--config",
            &config,
            "--data-dir",
            &data,
            "add",
            "example-app",
            "--kind",
            "web",
            "--redirect-uri",
            &format!("{app}/callback"),
            "--post-logout-redirect-uri",
            &format!("{app}/"),
            "--scope",
            "openid",
            "--scope",
            "profile",
            "--json",
        ],
        None,
    )
    .await;
    let creds: Value = serde_json::from_str(out.trim()).expect("client add --json");
    let client_id = creds["client_id"].as_str().unwrap().to_owned();
    let client_secret = creds["client_secret"].as_str().unwrap().to_owned();
    let _app = ServiceProcess::spawn_with_env(
        &example_binary("oidc_rp"),
        &[
            "--issuer",
            &base,
            "--client-id",
            &client_id,
            "--listen",
            &format!("127.0.0.1:{app_port}"),
        ],
        &[("OIDC_RP_CLIENT_SECRET", &client_secret)],
    )
    .await;

    // Sign in from the app: Wristband's login page, then its consent page.
    browser.open(&format!("{app}/")).await;
    browser.click("#login").await;
    browser.wait_for("input[name=username]").await;
    assert!(
        browser.url().await.as_str().starts_with(&base),
        "the app sent the browser to Wristband's login page"
    );
    fill_login(&browser).await;
    browser.wait_for("#allow").await;
    let consent = browser.text().await;
    assert!(
        consent.contains("example-app"),
        "the consent page names the app: {consent}"
    );
    assert!(
        browser.has("#scopes [data-scope=profile]").await,
        "the consent page lists the scopes"
    );
    browser.click("#allow").await;

    // Back at the app, signed in: the ID token validated by the library, userinfo read.
    let text = wait_for_text(&browser, "show the signed-in user", |t| {
        t.contains("Signed in as")
    })
    .await;
    assert!(
        browser.url().await.as_str().starts_with(&app),
        "back at the app after consent"
    );
    assert!(text.contains(USER), "userinfo's preferred_username: {text}");
    assert!(text.contains("pwd"), "the ID token's amr: {text}");

    // Wristband's account page lists the app; withdrawing removes it.
    browser.open(&format!("{base}/account")).await;
    browser
        .wait_for(&format!("#apps tr[data-client=\"{client_id}\"]"))
        .await;
    browser
        .click(&format!("#apps tr[data-client=\"{client_id}\"] button"))
        .await;
    browser.wait_for("#no-apps").await;

    // RP-initiated logout: the app sends the browser to the end-session endpoint with its
    // ID token as the hint, and Wristband sends it back to the app's registered address.
    browser.open(&format!("{app}/")).await;
    browser.click("#logout").await;
    wait_for_text(&browser, "show the app signed out", |t| {
        t.contains("Not signed in")
    })
    .await;
    assert!(
        browser.url().await.as_str().starts_with(&app),
        "back at the app after logout"
    );
    // Wristband's own session ended too: the account page asks for a login.
    browser.open(&format!("{base}/account")).await;
    browser.wait_for("input[name=username]").await;

    // Signing in again asks for consent again: it was withdrawn.
    browser.open(&format!("{app}/login")).await;
    browser.wait_for("input[name=username]").await;
    fill_login(&browser).await;
    browser.wait_for("#allow").await;

    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.quit().await;
}
