//! Issue 7's acceptance tests: the hosted login and account pages in a real browser.
//!
//! Each test runs one `wristband serve` on a fresh data directory, listening on
//! `127.0.0.1` and browsed as `http://localhost:PORT` (the issuer too): Chromium treats
//! `http://localhost` as a secure context, so `Secure` and `__Host-` cookies work without
//! TLS. An "attacker" site is served on `http://127.0.0.1:OTHER`, which is cross-site to
//! `localhost`.

use std::path::Path;
use std::time::{Duration, Instant};
use wristband_jose::Clock as _;

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use http::Method;
use serde_json::{json, Value};
use tempfile::TempDir;
use wristband_testkit::browser::{free_port, png_size, screenshot_path, Browser, LogEntry, WAIT};
use wristband_testkit::http::Client;
use wristband_testkit::process::ServiceProcess;

pub(crate) const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";

pub(crate) const ACCESS: &str = "__Host-wb_at";
const CSRF: &str = "__Host-wb_csrf";

/// `wristband serve` on a fresh data directory with one user, `alice`.
struct Site {
    _dir: TempDir,
    _service: ServiceProcess,
    /// `http://localhost:PORT`: what the browser opens, and the issuer.
    base: String,
    /// `http://127.0.0.1:PORT`: for API calls from the test.
    api: String,
    http: Client,
}

impl Site {
    async fn start() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let (config, data) = store_with_user(&dir).await;
        // The issuer must name the port before the service starts: pick a free one.
        let port = free_port();
        let base = format!("http://localhost:{port}");
        let listen = format!("127.0.0.1:{port}");
        let service = ServiceProcess::spawn(
            Path::new(env!("CARGO_BIN_EXE_wristband")),
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
        Site {
            api: format!("http://{}", service.addr()),
            _dir: dir,
            _service: service,
            base,
            http: Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A JSON (bearer) login outside the browser: (access token, refresh token, sid).
    async fn api_login(&self) -> (String, String, String) {
        let r = self
            .http
            .send(
                Method::POST,
                &format!("{}/v1/login", self.api),
                &[("content-type", "application/json")],
                json!({"username": USER, "password": PASSWORD})
                    .to_string()
                    .as_bytes(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let j = r.json();
        let at = j["access_token"].as_str().unwrap().to_owned();
        let rt = j["refresh_token"].as_str().unwrap().to_owned();
        let sid = sid_of(&at);
        (at, rt, sid)
    }

    /// `POST /v1/refresh` with a refresh token: the status and the `error` code, if any.
    async fn api_refresh(&self, rt: &str) -> (u16, Value) {
        let r = self
            .http
            .send(
                Method::POST,
                &format!("{}/v1/refresh", self.api),
                &[("content-type", "application/json")],
                json!({"refresh_token": rt}).to_string().as_bytes(),
            )
            .await;
        (r.status.as_u16(), r.json()["error"].clone())
    }

    /// Logs in through the hosted form and waits for the account page.
    async fn browser_login(&self, browser: &Browser) {
        browser.open(&self.url("/login")).await;
        fill_login(browser).await;
        browser.wait_for_path("/account").await;
        wait_for_session_script(browser).await;
    }
}

/// A fast configuration (ES256, cheap Argon2) and a data directory in `dir`, with the
/// test user added: `(config path, data path)`.
pub(crate) async fn store_with_user(dir: &tempfile::TempDir) -> (String, String) {
    let config = dir.path().join("wristband.toml");
    std::fs::write(
        &config,
        "alg = \"ES256\"\n[argon2]\nmemory_kib = 1024\niterations = 1\nparallelism = 1\n",
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let data = dir.path().join("data").to_string_lossy().into_owned();
    add_user(&config, &data).await;
    (config, data)
}

async fn add_user(config: &str, data: &str) {
    let args = [
        "user",
        "--config",
        config,
        "--data-dir",
        data,
        "add",
        USER,
        "--role",
        "user",
        "--password-stdin",
    ];
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_wristband"));
    wristband_testkit::process::run_to_completion(binary, &args, Some(PASSWORD)).await;
}

/// The session id (`sid`) in an access token.
fn sid_of(jwt: &str) -> String {
    wristband_jose::dangerous::decode_without_verification(jwt)
        .unwrap()
        .payload["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

const LOGIN_SUBMIT: &str =
    "form[action$=\"/login\"] button, form[action$=\"/login\"] input[type=submit]";

pub(crate) async fn fill_login(browser: &Browser) {
    browser.fill("input[name=username]", USER).await;
    browser.fill("input[name=password]", PASSWORD).await;
    browser.click(LOGIN_SUBMIT).await;
}

/// Waits until `/static/session.js` has set up `window.wristband`.
pub(crate) async fn wait_for_session_script(browser: &Browser) {
    let deadline = Instant::now() + WAIT;
    loop {
        let ready = browser
            .execute(
                "return !!(window.wristband && typeof window.wristband.refreshNow === 'function');",
                vec![],
            )
            .await;
        if ready == json!(true) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "window.wristband.refreshNow did not appear within {WAIT:?} on {}",
            browser.url().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the page text satisfies `pred`; returns the text.
pub(crate) async fn wait_for_text(
    browser: &Browser,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = browser.text().await;
        if pred(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "waited {WAIT:?} for the page to {what}; it is {}:\n{text}",
            browser.url().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the ids of the sessions the account page lists (`data-session`; the ids
/// themselves are in each row's closed details) satisfy `pred`; returns them.
pub(crate) async fn wait_for_sessions(
    browser: &Browser,
    what: &str,
    pred: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let ids = browser
            .execute(
                "return [...document.querySelectorAll('#sessions [data-session]')]\
                   .map(row => row.dataset.session);",
                vec![],
            )
            .await;
        let ids: Vec<String> = serde_json::from_value(ids).unwrap_or_default();
        if pred(&ids) {
            return ids;
        }
        assert!(
            Instant::now() < deadline,
            "waited {WAIT:?} for the account page to {what}; it is {} and lists {ids:?}",
            browser.url().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The names of the cookies in a `document.cookie` string.
fn cookie_names(document_cookie: &str) -> Vec<String> {
    document_cookie
        .split(';')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| c.split('=').next().unwrap_or_default().to_owned())
        .collect()
}

/// A same-origin `fetch(path, {method: 'POST'})` from the page, with `X-CSRF-Token` set
/// to `csrf` when given: the response status and the JSON body's `error`, if any.
async fn page_post(browser: &Browser, path: &str, csrf: Option<&str>) -> (u16, Value) {
    let answer = browser
        .execute_async(
            "const [path, csrf, done] = arguments;\
             const headers = csrf === null ? {} : {'X-CSRF-Token': csrf};\
             fetch(path, {method: 'POST', credentials: 'same-origin', headers})\
               .then(r => r.text().then(t => {\
                 let error = null;\
                 try { error = JSON.parse(t).error ?? null; } catch (e) {}\
                 done([r.status, error]);\
               }), e => done('fetch failed: ' + e));",
            vec![json!(path), csrf.map_or(Value::Null, |c| json!(c))],
        )
        .await;
    let status = answer[0]
        .as_u64()
        .unwrap_or_else(|| panic!("POST {path}: {answer}"));
    (u16::try_from(status).unwrap(), answer[1].clone())
}

pub(crate) fn assert_no_errors(errors: &[LogEntry], where_: &str) {
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

/// Logging in through the page: the tokens are in `HttpOnly` cookies that scripts cannot
/// read (`document.cookie` holds only the CSRF cookie), and the account page lists this
/// session. Saves the screenshots of both pages under target/screenshots (in
/// docs/screenshots with `WRISTBAND_BLESS_SCREENSHOTS=1`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_page_keeps_tokens_from_scripts_and_account_lists_the_session() {
    let _one = crate::ONE_BROWSER.lock().await;
    let Some(browser) = Browser::start(
        "browser::login_page_keeps_tokens_from_scripts_and_account_lists_the_session",
    )
    .await
    else {
        return;
    };
    let site = Site::start().await;

    browser.open(&site.url("/login")).await;
    browser.wait_for("input[name=username]").await;
    browser.wait_for("input[name=password]").await;
    let png = browser.screenshot(&screenshot_path("login.png")).await;
    assert!(png_size(&png).is_some(), "login.png is not a PNG");
    assert_eq!(browser.document_cookie().await, "", "cookies before login");

    fill_login(&browser).await;
    browser.wait_for_path("/account").await;
    wait_for_session_script(&browser).await;

    // Scripts see the CSRF cookie and nothing else.
    let visible = browser.document_cookie().await;
    assert_eq!(cookie_names(&visible), vec![CSRF.to_owned()], "{visible}");
    let access = browser.cookie(ACCESS).await.expect("access cookie held");
    assert!(access.http_only && access.secure, "{access:?}");
    assert_eq!(access.value.split('.').count(), 3, "access cookie is a JWT");
    assert!(!visible.contains(&access.value));
    let csrf = browser.cookie(CSRF).await.expect("CSRF cookie held");
    assert!(!csrf.http_only && csrf.secure, "{csrf:?}");
    assert!(!csrf.value.is_empty());

    // The account page shows the user and this session.
    let sid = sid_of(&access.value);
    wait_for_sessions(&browser, "list this session", |s| s.contains(&sid)).await;
    let text = browser.text().await;
    assert!(text.contains(USER), "{text}");
    assert!(
        browser
            .has(&format!("form[action=\"/account/sessions/{sid}/revoke\"]"))
            .await,
        "no revoke form for this session"
    );
    let expires = browser
        .execute(
            "const m = document.querySelector('meta[name=\"wb-expires-at\"]');\
             return m ? Number(m.content) : null;",
            vec![],
        )
        .await;
    let now = wristband_jose::SystemClock.now().as_secs();
    let exp = expires.as_u64().expect("wb-expires-at meta tag");
    assert!(
        exp > now && exp <= now + 3600,
        "wb-expires-at {exp}, now {now}"
    );

    let png = browser.screenshot(&screenshot_path("account.png")).await;
    assert!(png_size(&png).is_some(), "account.png is not a PNG");

    assert_no_errors(&browser.console_errors().await, "login and account pages");
    browser.quit().await;
}

/// The account page's Revoke button ends another session, and revoking the browser's own
/// session elsewhere makes its next requests fail: a cookie refresh is 401 and reloading
/// the account page goes to the login page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_session_fails_the_next_request() {
    let _one = crate::ONE_BROWSER.lock().await;
    let Some(browser) = Browser::start("browser::revoked_session_fails_the_next_request").await
    else {
        return;
    };
    let site = Site::start().await;

    let (_, other_rt, other_sid) = site.api_login().await;
    site.browser_login(&browser).await;
    let sid = sid_of(&browser.cookie(ACCESS).await.unwrap().value);
    wait_for_sessions(&browser, "list both sessions", |s| {
        s.contains(&sid) && s.contains(&other_sid)
    })
    .await;

    // Revoke the other session from the page.
    browser
        .click(&format!(
            "form[action=\"/account/sessions/{other_sid}/revoke\"] button, \
             form[action=\"/account/sessions/{other_sid}/revoke\"] input[type=submit]"
        ))
        .await;
    browser.wait_for_path("/account").await;
    wait_for_sessions(&browser, "drop the revoked session", |s| {
        s.contains(&sid) && !s.contains(&other_sid)
    })
    .await;
    // The JSON API answers a dead refresh token with 400 invalid_grant.
    assert_eq!(
        site.api_refresh(&other_rt).await,
        (400, json!("invalid_grant")),
        "the revoked session's refresh token"
    );

    // Revoke the browser's session from another login, as another device would.
    let (at, _, _) = site.api_login().await;
    let r = site
        .http
        .send(
            Method::DELETE,
            &format!("{}/v1/sessions/{sid}", site.api),
            &[("authorization", &format!("Bearer {at}"))],
            b"",
        )
        .await;
    assert!(r.status.is_success(), "{} {}", r.status, r.text());

    // The browser still holds its cookies, and they no longer work: the account page
    // sends it to the login page, and a cookie refresh is refused like the JSON one.
    assert!(browser.cookie(ACCESS).await.is_some());
    let csrf = browser.cookie(CSRF).await.expect("CSRF cookie").value;
    browser.reload().await;
    browser.wait_for_path("/login").await;
    browser.wait_for("input[name=password]").await;
    assert_eq!(
        page_post(&browser, "/v1/session/refresh", Some(&csrf)).await,
        (400, json!("invalid_grant")),
        "refresh with the revoked session's cookies"
    );
    browser.open(&site.url("/account")).await;
    browser.wait_for_path("/login").await;
    browser.quit().await;
}

/// An attacker page on another site auto-submits form posts to the account and session
/// logout endpoints: they are refused and the session still works. A same-origin post
/// without (or with a wrong) `X-CSRF-Token` is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_form_posts_are_refused() {
    let _one = crate::ONE_BROWSER.lock().await;
    let Some(browser) = Browser::start("browser::cross_site_form_posts_are_refused").await else {
        return;
    };
    let site = Site::start().await;
    site.browser_login(&browser).await;
    let sid = sid_of(&browser.cookie(ACCESS).await.unwrap().value);

    let attacker = Router::new().route(
        "/{target}",
        get({
            let base = site.base.clone();
            move |axum::extract::Path(target): axum::extract::Path<String>| {
                let action = match target.as_str() {
                    "logout-all" => format!("{base}/account/logout-all"),
                    _ => format!("{base}/v1/session/logout"),
                };
                async move {
                    Html(format!(
                        "<!doctype html><html><body>\
                         <form id=\"f\" method=\"post\" action=\"{action}\">\
                         <input type=\"hidden\" name=\"confirm\" value=\"1\"></form>\
                         <script>document.getElementById('f').submit();</script>\
                         </body></html>"
                    ))
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil = format!("http://{}", listener.local_addr().unwrap());
    let _evil_server = tokio::spawn(async move {
        axum::serve(listener, attacker).await.unwrap();
    });

    for target in ["logout-all", "session-logout"] {
        browser.open(&format!("{evil}/{target}")).await;
        // The form was posted: the browser left the attacker's site.
        browser.wait_for_url_prefix(&site.base).await;
        browser.open(&site.url("/account")).await;
        let url = browser.url().await;
        assert_eq!(
            url.path(),
            "/account",
            "after the cross-site post to {target}"
        );
        wait_for_sessions(&browser, "still list this session", |s| s.contains(&sid)).await;
    }

    // Same origin, but no CSRF token or a wrong one.
    wait_for_session_script(&browser).await;
    let refused = (403, json!("csrf_failed"));
    assert_eq!(
        page_post(&browser, "/v1/session/logout", None).await,
        refused
    );
    assert_eq!(
        page_post(&browser, "/v1/session/logout", Some("not-the-token")).await,
        refused
    );
    assert_eq!(
        page_post(&browser, "/account/logout-all", None).await.0,
        403
    );
    browser.reload().await;
    assert_eq!(browser.url().await.path(), "/account");
    wait_for_sessions(&browser, "still list this session", |s| s.contains(&sid)).await;

    // With the token, the same request works: the refusals were the CSRF check.
    let csrf = browser.cookie(CSRF).await.expect("CSRF cookie").value;
    assert_eq!(
        page_post(&browser, "/v1/session/refresh", Some(&csrf))
            .await
            .0,
        200
    );
    browser.quit().await;
}

/// Two tabs refresh at the same moment: both succeed, and the session is not taken for a
/// stolen refresh token (both tabs still load the account page afterwards).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_refresh_together_without_logout() {
    let _one = crate::ONE_BROWSER.lock().await;
    let Some(browser) = Browser::start("browser::two_tabs_refresh_together_without_logout").await
    else {
        return;
    };
    let site = Site::start().await;
    site.browser_login(&browser).await;
    let before = browser.cookie(ACCESS).await.unwrap().value;
    let sid = sid_of(&before);

    let first = browser.current_tab().await;
    let second = browser.new_tab().await;
    browser.open(&site.url("/account")).await;
    browser.wait_for_path("/account").await;
    wait_for_session_script(&browser).await;

    // Start the refresh in the first tab without waiting, then run the second tab's.
    browser.switch_to(&first).await;
    browser
        .execute(
            "window.__wbRefresh = null;\
             window.wristband.refreshNow().then(\
               s => { window.__wbRefresh = s; },\
               e => { window.__wbRefresh = 'error: ' + e; });",
            vec![],
        )
        .await;
    browser.switch_to(&second).await;
    let second_status = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             window.wristband.refreshNow().then(done, e => done('error: ' + e));",
            vec![],
        )
        .await;
    browser.switch_to(&first).await;
    let first_status = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             const poll = () => window.__wbRefresh === null ? setTimeout(poll, 20) : done(window.__wbRefresh);\
             poll();",
            vec![],
        )
        .await;
    assert_eq!(first_status, json!(200), "first tab's refresh");
    assert_eq!(second_status, json!(200), "second tab's refresh");

    // New tokens, same session.
    let after = browser
        .cookie(ACCESS)
        .await
        .expect("access cookie after refresh")
        .value;
    assert_ne!(after, before, "the access cookie was not renewed");
    assert_eq!(sid_of(&after), sid);

    // Without the lock: each tab posts two refreshes at once (both built before any answer
    // arrives, so they carry the same refresh token), the second tab right after the
    // first. The grace window lets the duplicates through instead of calling them reuse.
    const RAW: &str = "const csrf = arguments[0];\
        const one = () => fetch('/v1/session/refresh', {method: 'POST', \
            credentials: 'same-origin', headers: {'X-CSRF-Token': csrf}}).then(r => r.status);\
        window.__wbRaw = null;\
        Promise.all([one(), one()]).then(s => { window.__wbRaw = s; }, \
            e => { window.__wbRaw = ['error: ' + e]; });";
    const AWAIT_RAW: &str = "const done = arguments[arguments.length - 1];\
        const poll = () => window.__wbRaw === null ? setTimeout(poll, 20) : done(window.__wbRaw);\
        poll();";
    let csrf = browser.cookie(CSRF).await.expect("CSRF cookie").value;
    browser.execute(RAW, vec![json!(csrf)]).await;
    browser.switch_to(&second).await;
    browser.execute(RAW, vec![json!(csrf)]).await;
    for tab in [&second, &first] {
        browser.switch_to(tab).await;
        let statuses = browser.execute_async(AWAIT_RAW, vec![]).await;
        assert_eq!(statuses, json!([200, 200]), "concurrent refreshes in a tab");
    }

    for tab in [&first, &second] {
        browser.switch_to(tab).await;
        browser.reload().await;
        assert_eq!(
            browser.url().await.path(),
            "/account",
            "a tab was logged out"
        );
        wait_for_sessions(&browser, "still list this session", |s| s.contains(&sid)).await;
        wait_for_session_script(&browser).await;
        assert_eq!(
            browser
                .execute_async(
                    "const done = arguments[arguments.length - 1];\
                     window.wristband.refreshNow().then(done, e => done('error: ' + e));",
                    vec![],
                )
                .await,
            json!(200),
            "a later refresh in a tab"
        );
    }
    browser.quit().await;
}

/// The pages log no console errors in normal use: the login page, the account page, a
/// refresh through the session script, a second account page load, and logging out
/// (which also clears the cookies).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_have_no_console_errors() {
    let _one = crate::ONE_BROWSER.lock().await;
    let Some(browser) = Browser::start("browser::pages_have_no_console_errors").await else {
        return;
    };
    let site = Site::start().await;

    browser.open(&site.url("/login")).await;
    browser.wait_for("input[name=password]").await;
    assert_no_errors(&browser.console_errors().await, "/login");

    fill_login(&browser).await;
    browser.wait_for_path("/account").await;
    wait_for_session_script(&browser).await;
    assert_no_errors(&browser.console_errors().await, "/account");

    let status = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             window.wristband.refreshNow().then(done, e => done('error: ' + e));",
            vec![],
        )
        .await;
    assert_eq!(status, json!(200));
    browser.open(&site.url("/account")).await;
    wait_for_session_script(&browser).await;
    assert_no_errors(&browser.console_errors().await, "/account after a refresh");

    // Log out through the page's form: back to the login page, still without errors.
    browser
        .click("form[action=\"/account/logout\"] button")
        .await;
    browser.wait_for_path("/login").await;
    browser.wait_for("input[name=password]").await;
    assert_eq!(browser.document_cookie().await, "", "cookies after logout");
    assert_no_errors(&browser.console_errors().await, "logout and /login");
    browser.quit().await;
}
