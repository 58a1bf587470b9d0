//! The hosted pages mounted under `/auth/` of an app's origin by a real nginx that strips
//! the prefix, in Chromium: a gate's login URL (`/auth/v1/session/resume`) leads to the
//! login page, the login returns to the app's page, `session.js` refreshes under the
//! prefix, resume refreshes silently and returns, and after logout it leads to the login
//! page again. No console errors on the way.

use std::path::Path;

use serde_json::json;
use wristband_testkit::browser::{free_port, Browser};
use wristband_testkit::process::ServiceProcess;

use crate::pages::{
    assert_no_errors, fill_login, store_with_user, wait_for_session_script, ACCESS, USER,
};
use wristband_testkit::proxies::Proxy;

const REFRESH: &str = "__Secure-wb_rt";

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn access_cookie(browser: &Browser) -> String {
    browser.cookie(ACCESS).await.expect("access cookie").value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_under_a_prefix_log_in_return_and_refresh() {
    let _one = crate::ONE_BROWSER.lock().await;
    let Some(browser) =
        Browser::start("browser::pages_under_a_prefix_log_in_return_and_refresh").await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = store_with_user(&dir).await;
    // The app's origin (nginx), browsed as localhost: a secure context for the cookies.
    let port = free_port();
    let app = format!("http://localhost:{port}");
    let service = ServiceProcess::spawn(
        Path::new(env!("CARGO_BIN_EXE_wristband")),
        &[
            "serve",
            "--config",
            &config,
            "--data-dir",
            &data,
            "--listen",
            "127.0.0.1:0",
            "--public-url",
            &format!("{app}/auth"),
        ],
    )
    .await;
    let _nginx = Proxy::nginx_server(
        port,
        &format!(
            "location /auth/ {{ proxy_pass http://{}/; }}\n\
             location = /favicon.ico {{ return 204; }}\n\
             location / {{ default_type text/html; return 200 '<!doctype html><html><head>\
             <title>app</title></head><body><p id=\"app\">the app</p></body></html>'; }}",
            service.addr()
        ),
    )
    .await;

    // A gate sent the browser to its login URL: no session, so on to the login page.
    let target = format!("{app}/reports?week=3");
    browser
        .open(&format!(
            "{app}/auth/v1/session/resume?return_to={}",
            enc(&target)
        ))
        .await;
    browser.wait_for_path("/auth/login").await;
    assert!(browser.has("link[href=\"/auth/static/style.css\"]").await);

    // After the login, the browser is back on the original URL, with the session cookies.
    fill_login(&browser).await;
    let url = browser.wait_for_path("/reports").await;
    assert_eq!(url.as_str(), target);
    browser.wait_for("#app").await;
    let first = access_cookie(&browser).await;
    assert!(
        browser.cookie(REFRESH).await.is_none(),
        "the refresh cookie is sent only under /auth/v1/session"
    );

    // The account page under the prefix; its script refreshes at /auth/v1/session/refresh.
    browser.open(&format!("{app}/auth/account")).await;
    browser.wait_for_path("/auth/account").await;
    wait_for_session_script(&browser).await;
    assert!(browser.text().await.contains(USER));
    let status = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             window.wristband.refreshNow().then(done, e => done('error: ' + e));",
            vec![],
        )
        .await;
    assert_eq!(status, json!(200));
    let second = access_cookie(&browser).await;
    assert_ne!(second, first, "refreshed");

    // Refresh and return, as a gate's redirect of a navigation does: no login page.
    browser
        .open(&format!(
            "{app}/auth/v1/session/resume?return_to={}",
            enc("/reports?week=4")
        ))
        .await;
    let url = browser.wait_for_path("/reports").await;
    assert_eq!(url.query(), Some("week=4"));
    browser.wait_for("#app").await;
    let third = access_cookie(&browser).await;
    assert_ne!(third, second, "refreshed by resume");

    // Log out on the account page: the session is over, and resume leads to the login page.
    browser.open(&format!("{app}/auth/account")).await;
    wait_for_session_script(&browser).await;
    browser.click("#logout button").await;
    browser.wait_for_path("/auth/login").await;
    assert!(browser.cookie(ACCESS).await.is_none());
    browser
        .open(&format!(
            "{app}/auth/v1/session/resume?return_to={}",
            enc(&target)
        ))
        .await;
    let url = browser.wait_for_path("/auth/login").await;
    assert!(
        url.query().is_some_and(|q| q.starts_with("return_to=")),
        "{url}"
    );

    assert_no_errors(&browser.console_errors().await, "the pages under a prefix");
    browser.quit().await;
}
