//! Chromium through nginx and through Caddy: the login round trip on the app's own origin, a silent refresh
//! on navigation, and logout, with no console errors. The app is browsed as
//! `http://localhost:PROXY` (Chromium treats `http://localhost` as a secure context, so the
//! `__Host-` cookies work without TLS), with the auth service mounted at `/auth/` and run
//! with the public URL `http://localhost:PROXY/auth`.

use std::time::{Duration, Instant};

use wristband_testkit::browser::{Browser, LogEntry, WAIT};

use crate::query_param;
use crate::stack::{available, Front, Options, Stack, PASSWORD};

const ACCESS: &str = "__Host-wb_at";

fn assert_no_errors(errors: &[LogEntry], where_: &str) {
    assert!(
        errors.is_empty(),
        "console errors on {where_}:\n{}",
        errors
            .iter()
            .map(|e| format!("  [{}] {}", e.source, e.message))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Waits until `#user` on the current page shows `sub`.
async fn wait_for_user(browser: &Browser, sub: &str, where_: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if browser.has("#user").await {
            let text = browser.wait_for("#user").await.text().await.unwrap();
            if text == sub {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{where_}: the app never showed user {sub}; the browser is at {}:\n{}",
            browser.url().await,
            browser.text().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One browser at a time: Chromium is heavy for a small machine.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_logs_in_refreshes_and_logs_out_through_nginx() {
    let test = "gate_proxies::browser::chromium_logs_in_refreshes_and_logs_out_through_nginx";
    login_refresh_logout(test, Front::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_logs_in_refreshes_and_logs_out_through_caddy() {
    let test = "gate_proxies::browser::chromium_logs_in_refreshes_and_logs_out_through_caddy";
    login_refresh_logout(test, Front::Caddy).await;
}

/// The whole round trip through `front`. nginx turns the gate's 401 into the 302 to the
/// resume endpoint; behind Caddy the gate answers the 302 itself.
async fn login_refresh_logout(test: &str, front: Front) {
    if !available(test, front) {
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let Some(browser) = Browser::start(test).await else {
        return;
    };
    let mut opts = Options::new(front);
    opts.public_url = true;
    opts.feed = true;
    let s = Stack::start(opts).await;
    let sub = s.login("alice").await.sub;

    // A protected page without a session: sent to the resume endpoint, which (with no
    // refresh cookie) sends the browser to the login page, on the app's own origin, with
    // the page to come back to.
    let wanted = format!("{}/page/one?x=1", s.origin);
    browser.open(&wanted).await;
    let login = browser.wait_for_path("/auth/login").await;
    assert_eq!(login.origin().ascii_serialization(), s.origin, "{login}");
    assert_eq!(
        query_param(login.as_str(), "return_to").as_deref(),
        Some(wanted.as_str()),
        "{login}"
    );
    browser.wait_for("input[name=password]").await;
    assert_no_errors(&browser.console_errors().await, "the login page");

    // After the login the browser is back on the page it asked for.
    browser.fill("input[name=username]", "alice").await;
    browser.fill("input[name=password]", PASSWORD).await;
    browser
        .click("form[action$=\"/login\"] button, form[action$=\"/login\"] input[type=submit]")
        .await;
    let back = browser.wait_for_path("/page/one").await;
    assert_eq!(back.as_str(), wanted);
    wait_for_user(&browser, &sub, "after the login").await;
    let first = browser.cookie(ACCESS).await.expect("the access cookie");
    assert!(first.http_only && first.secure);
    assert_no_errors(&browser.console_errors().await, "after the login");

    // The access cookie expires (the browser drops it when its Max-Age runs out; the
    // shortest access TTL is a minute, so the test drops it as the browser would). The
    // next navigation goes through the resume endpoint, which rotates the session with
    // the refresh cookie and comes straight back: the login page is never shown.
    browser
        .client()
        .delete_cookie(ACCESS)
        .await
        .expect("delete the access cookie");
    assert!(browser.cookie(ACCESS).await.is_none());
    browser.open(&format!("{}/page/two", s.origin)).await;
    browser.wait_for_path("/page/two").await;
    wait_for_user(&browser, &sub, "after the silent refresh").await;
    let second = browser.cookie(ACCESS).await.expect("a new access cookie");
    assert_ne!(second.value, first.value, "the session was not refreshed");
    assert_no_errors(&browser.console_errors().await, "the silent refresh");

    // Logout from the account page ends access on every protected page.
    browser.open(&format!("{}/auth/account", s.origin)).await;
    browser
        .click("form[action$=\"/account/logout\"] button")
        .await;
    browser.wait_for_path("/auth/login").await;
    assert!(
        browser.cookie(ACCESS).await.is_none(),
        "access cookie after logout"
    );
    for page in ["/", "/page/one", "/page/two?y=2", "/resource"] {
        browser.open(&format!("{}{page}", s.origin)).await;
        let at = browser.wait_for_path("/auth/login").await;
        assert_eq!(
            query_param(at.as_str(), "return_to").as_deref(),
            Some(format!("{}{page}", s.origin).as_str()),
            "{page} after logout: {at}"
        );
    }
    // The last access token itself is refused too: the session is revoked, and the gate
    // follows the revocation feed.
    s.until_status(
        "/resource",
        Some(&second.value),
        401,
        Duration::from_secs(2),
        "the logged-out access token",
    )
    .await;
    assert_no_errors(&browser.console_errors().await, "logout");
    browser.quit().await;
}
