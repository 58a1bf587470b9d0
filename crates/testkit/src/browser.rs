//! Headless Chromium for tests, driven over WebDriver by `chromedriver`.
//!
//! [`Browser::start`] runs `chromedriver` on a free loopback port and opens one headless
//! Chromium session with the browser console log enabled. The helpers cover what the
//! browser tests need: open a page and wait for elements or a path, fill and click, read
//! `document.cookie` (what scripts see) and the WebDriver cookie jar (what the browser
//! holds, `HttpOnly` included), run scripts, switch tabs, take screenshots, and read the
//! console log (chromedriver's `POST /session/{id}/se/log`).
//!
//! In CI every browser test must run: when `CI` is set (non-empty) or
//! `WRISTBAND_REQUIRE_BROWSER=1`, a missing Chromium or chromedriver fails the test.
//! Elsewhere the test writes a loud `NOT RUN` line to the terminal and returns.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::wd::{TimeoutConfiguration, WebDriverCompatibleCommand, WindowHandle};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// Special keys for [`Browser::type_keys`] (`Key::Tab.into()` is its `char`).
pub use fantoccini::key::Key;

/// The Chromium binary the tests use (Debian's `chromium` package).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The WebDriver server the tests use (Debian's `chromium-driver` package).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The variable that makes a missing browser a test failure outside CI too.
pub const REQUIRE_VAR: &str = "WRISTBAND_REQUIRE_BROWSER";

/// How long the helpers wait for an element, a URL or a script before they fail.
pub const WAIT: Duration = Duration::from_secs(30);

/// True when browser tests must not be left out: in CI (`CI` set and non-empty) or with
/// `WRISTBAND_REQUIRE_BROWSER=1`.
pub fn required() -> bool {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let forced = std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1");
    ci || forced
}

/// What is missing to run browser tests, if anything.
pub fn missing() -> Option<String> {
    let absent: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    (!absent.is_empty()).then(|| format!("{} not installed", absent.join(" and ")))
}

/// Reports that `test` cannot run for `reason`. Panics (failing the test) when
/// [`required`]; otherwise writes a warning straight to the terminal, past the test
/// harness's output capture, and the caller returns.
pub fn not_run(test: &str, reason: &str) {
    if required() {
        panic!(
            "{test}: a browser is required here (CI or {REQUIRE_VAR}=1) but {reason}; \
             run .ci/browser.sh to install Chromium and chromedriver"
        );
    }
    static BANNER: Once = Once::new();
    let mut message = String::new();
    BANNER.call_once(|| {
        message = format!(
            "\n!!! WARNING: {reason}; browser tests did NOT run.\n\
             !!! Run .ci/browser.sh (Debian: chromium, chromium-driver), or .ci/run, to run them.\n"
        );
    });
    message.push_str(&format!("!!! NOT RUN: {test} ({reason})\n"));
    let mut tty = std::fs::OpenOptions::new().write(true).open("/dev/tty");
    match &mut tty {
        Ok(t) => {
            let _ = t.write_all(message.as_bytes());
        }
        Err(_) => {
            let _ = std::io::stderr().write_all(message.as_bytes());
        }
    }
}

/// One entry of the browser console log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// `SEVERE`, `WARNING`, `INFO` or `DEBUG`.
    pub level: String,
    /// Where it came from: `console-api`, `javascript`, `network`, `security`, ...
    pub source: String,
    /// The text, usually prefixed by the URL and line of its origin.
    pub message: String,
}

impl LogEntry {
    /// True for errors: `console.error`, uncaught exceptions, failed loads, CSP violations.
    pub fn is_error(&self) -> bool {
        self.level == "SEVERE"
    }
}

/// chromedriver's legacy log command, `POST /session/{id}/se/log {"type": "browser"}`:
/// returns the console entries logged since the last call, and clears them.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// A cookie as the browser holds it for the current page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserCookie {
    /// The cookie's name.
    pub name: String,
    /// The cookie's value.
    pub value: String,
    /// Whether scripts are kept from it.
    pub http_only: bool,
    /// Whether it is sent over secure contexts only.
    pub secure: bool,
}

/// A headless Chromium session and the `chromedriver` that drives it. Call
/// [`Browser::quit`] at the end; dropping it kills the processes instead.
pub struct Browser {
    client: Option<Client>,
    driver: Option<Child>,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("driver_pid", &self.driver.as_ref().map(Child::id))
            .finish_non_exhaustive()
    }
}

/// A free TCP port on the loopback interface (free when this returns).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Starts chromedriver on a free port in a process group of its own (so that the browser
/// it starts can be ended with it) and waits until it accepts connections.
async fn start_driver() -> (Child, u16) {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn chromedriver");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                last = format!("chromedriver exited with {status} on port {port}");
                break;
            }
            if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                .await
                .is_ok()
            {
                return (child, port);
            }
            if Instant::now() > deadline {
                kill_group(&mut child);
                panic!("chromedriver did not listen on port {port} within {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("chromedriver did not start: {last}");
}

/// Kills the process group led by `child` (chromedriver and the browser it started).
fn kill_group(child: &mut Child) {
    let pid = child.id();
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

impl Browser {
    /// Starts chromedriver and a headless Chromium (1200×900 window, console log on).
    ///
    /// Returns `None` after a loud `NOT RUN` line when Chromium or chromedriver is not
    /// installed and browser tests are not [`required`]; panics when they are.
    pub async fn start(test: &str) -> Option<Browser> {
        Self::start_with(test, &[]).await
    }

    /// [`Browser::start`] with more Chromium switches, e.g. `--force-dark-mode` (pages
    /// see `prefers-color-scheme: dark`).
    pub async fn start_with(test: &str, switches: &[&str]) -> Option<Browser> {
        if let Some(reason) = missing() {
            not_run(test, &reason);
            return None;
        }
        let (driver, port) = start_driver().await;
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--window-size=1200,900",
            "--no-first-run",
            "--no-default-browser-check",
        ];
        args.extend_from_slice(switches);
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(caps) = caps else {
            unreachable!("capabilities are an object")
        };
        let mut browser = Browser {
            client: None,
            driver: Some(driver),
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("open a Chromium session through chromedriver: {e}"));
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(WAIT),
                Some(Duration::from_secs(60)),
                Some(Duration::ZERO),
            ))
            .await
            .expect("set WebDriver timeouts");
        browser.client = Some(client);
        Some(browser)
    }

    /// The WebDriver client, for anything the helpers do not cover.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("browser session is open")
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn open(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Reloads the current page.
    pub async fn reload(&self) {
        self.client().refresh().await.expect("reload the page");
    }

    /// The current page's URL.
    pub async fn url(&self) -> url::Url {
        self.client().current_url().await.expect("current URL")
    }

    /// Waits (up to [`WAIT`]) until the current page's path is `path`, and returns the URL.
    pub async fn wait_for_path(&self, path: &str) -> url::Url {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.url().await;
            if url.path() == path {
                return url;
            }
            if Instant::now() > deadline {
                let text = self.text().await;
                panic!("waited {WAIT:?} for path {path}; the browser is at {url}:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (up to [`WAIT`]) until the current page's URL starts with `prefix`.
    pub async fn wait_for_url_prefix(&self, prefix: &str) -> url::Url {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.url().await;
            if url.as_str().starts_with(prefix) {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for a URL under {prefix}; the browser is at {url}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (up to [`WAIT`]) for an element matching the CSS selector `css`.
    pub async fn wait_for(&self, css: &str) -> Element {
        match self
            .client()
            .wait()
            .at_most(WAIT)
            .every(Duration::from_millis(100))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => {
                let url = self.url().await;
                let text = self.text().await;
                panic!("no element `{css}` on {url} within {WAIT:?} ({e}); page text:\n{text}")
            }
        }
    }

    /// True if an element matches `css` now (no waiting).
    pub async fn has(&self, css: &str) -> bool {
        !self
            .client()
            .find_all(Locator::Css(css))
            .await
            .expect("find elements")
            .is_empty()
    }

    /// Types `value` into the (cleared) input matching `css`, once it is there.
    pub async fn fill(&self, css: &str, value: &str) {
        let input = self.wait_for(css).await;
        input.clear().await.expect("clear input");
        input
            .send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("type into `{css}`: {e}"));
    }

    /// Clicks the element matching `css`, once it is there.
    pub async fn click(&self, css: &str) {
        self.wait_for(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    /// Keyboard input, as a person types it, to whatever has the focus (WebDriver key
    /// actions, not an element's `send_keys`): each `char` of `keys` is pressed and
    /// released in turn; special keys are [`Key`]s as `char`s (`char::from(Key::Tab)`).
    pub async fn type_keys(&self, keys: &str) {
        let mut actions = KeyActions::new("keyboard".to_owned());
        for value in keys.chars() {
            actions = actions
                .then(KeyAction::Down { value })
                .then(KeyAction::Up { value });
        }
        self.client()
            .perform_actions(actions)
            .await
            .unwrap_or_else(|e| panic!("type {keys:?}: {e}"));
    }

    /// Presses one special key (Tab, Enter, ...) as keyboard input.
    pub async fn press(&self, key: Key) {
        self.type_keys(&char::from(key).to_string()).await;
    }

    /// Presses `key` with Shift held (Shift+Tab goes back one field).
    pub async fn press_shifted(&self, key: Key) {
        let (shift, value) = (char::from(Key::Shift), char::from(key));
        let actions = KeyActions::new("keyboard".to_owned())
            .then(KeyAction::Down { value: shift })
            .then(KeyAction::Down { value })
            .then(KeyAction::Up { value })
            .then(KeyAction::Up { value: shift });
        self.client()
            .perform_actions(actions)
            .await
            .unwrap_or_else(|e| panic!("press shift+{key:?}: {e}"));
    }

    /// Resizes the browser window to `width`×`height` CSS pixels (headless Chromium has no
    /// window frame, so this is the viewport) and returns `window.innerWidth` after it.
    pub async fn set_window_size(&self, width: u32, height: u32) -> u64 {
        self.client()
            .set_window_size(width, height)
            .await
            .unwrap_or_else(|e| panic!("resize the window to {width}x{height}: {e}"));
        self.execute("return window.innerWidth;", vec![])
            .await
            .as_u64()
            .expect("window.innerWidth is a number")
    }

    /// The page's visible text (`document.body.innerText`).
    pub async fn text(&self) -> String {
        self.client()
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.client()
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs `script` (a function body; its last argument is the callback that ends it) and
    /// returns the value passed to the callback.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.client()
            .execute_async(script, args)
            .await
            .unwrap_or_else(|e| panic!("async script failed: {e}\n{script}"))
    }

    /// `document.cookie`: the cookies that the page's scripts can read.
    pub async fn document_cookie(&self) -> String {
        self.execute("return document.cookie;", vec![])
            .await
            .as_str()
            .expect("document.cookie is a string")
            .to_owned()
    }

    /// The cookies the browser would send to the current page, `HttpOnly` ones included.
    pub async fn cookies(&self) -> Vec<BrowserCookie> {
        self.client()
            .get_all_cookies()
            .await
            .expect("read cookies")
            .into_iter()
            .map(|c| BrowserCookie {
                name: c.name().to_owned(),
                value: c.value().to_owned(),
                http_only: c.http_only().unwrap_or(false),
                secure: c.secure().unwrap_or(false),
            })
            .collect()
    }

    /// The value of cookie `name` for the current page, if the browser holds it.
    pub async fn cookie(&self, name: &str) -> Option<BrowserCookie> {
        self.cookies().await.into_iter().find(|c| c.name == name)
    }

    /// The current tab.
    pub async fn current_tab(&self) -> WindowHandle {
        self.client().window().await.expect("current window")
    }

    /// Opens a new tab, switches to it and returns it.
    pub async fn new_tab(&self) -> WindowHandle {
        let tab = self
            .client()
            .new_window(true)
            .await
            .expect("new tab")
            .handle;
        self.switch_to(&tab).await;
        tab
    }

    /// Makes `tab` the one that commands act on.
    pub async fn switch_to(&self, tab: &WindowHandle) {
        self.client()
            .switch_to_window(tab.clone())
            .await
            .expect("switch tab");
    }

    /// Saves a PNG screenshot of the current tab to `path` (creating its folder) and
    /// returns its bytes.
    pub async fn screenshot(&self, path: &Path) -> Vec<u8> {
        let png = self.client().screenshot().await.expect("screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create screenshot folder");
        }
        std::fs::write(path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        png
    }

    /// The console entries logged since the last call (chromedriver clears them on read).
    pub async fn console_log(&self) -> Vec<LogEntry> {
        let value = self
            .client()
            .issue_cmd(BrowserLog)
            .await
            .expect("read the browser console log");
        value
            .as_array()
            .expect("log entries are an array")
            .iter()
            .map(|e| LogEntry {
                level: e["level"].as_str().unwrap_or_default().to_owned(),
                source: e["source"].as_str().unwrap_or_default().to_owned(),
                message: e["message"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    /// The console errors logged since the last read of the log.
    pub async fn console_errors(&self) -> Vec<LogEntry> {
        self.console_log()
            .await
            .into_iter()
            .filter(LogEntry::is_error)
            .collect()
    }

    /// Ends the browser session and stops chromedriver and the browser.
    pub async fn quit(mut self) {
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), client.close()).await;
        }
        if let Some(mut driver) = self.driver.take() {
            kill_group(&mut driver);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(mut driver) = self.driver.take() {
            kill_group(&mut driver);
        }
    }
}

/// The environment variable that makes the page tests refresh the tracked screenshots.
pub const BLESS_SCREENSHOTS: &str = "WRISTBAND_BLESS_SCREENSHOTS";

/// Where a page test saves screenshot `NAME`: `target/screenshots/NAME`, so that running
/// the tests leaves the tracked files alone; `docs/screenshots/NAME` in the workspace when
/// `WRISTBAND_BLESS_SCREENSHOTS=1` asks to refresh the documentation's pictures.
pub fn screenshot_path(name: &str) -> PathBuf {
    let bless = std::env::var(BLESS_SCREENSHOTS).is_ok_and(|v| v == "1");
    screenshot_path_for(name, bless)
}

fn screenshot_path_for(name: &str, bless: bool) -> PathBuf {
    if bless {
        return Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/screenshots")
            .join(name);
    }
    // The test binary runs from target/<profile>/deps/.
    let exe = std::env::current_exe().expect("current exe");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("test binary inside target/<profile>/deps");
    target.join("screenshots").join(name)
}

/// True if `bytes` start with the PNG signature and an `IHDR` chunk of a non-empty image;
/// returns its width and height.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || !bytes.starts_with(SIGNATURE) || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let width = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    let height = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
    (width > 0 && height > 0).then_some((width, height))
}

/// A WebDriver command on the session (`session/{id}/{path}`), for the WebAuthn
/// virtual-authenticator extension (W3C WebAuthn §11).
#[derive(Debug)]
struct SessionCommand {
    method: http::Method,
    path: String,
    body: Option<Value>,
}

impl WebDriverCompatibleCommand for SessionCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}

/// The WebAuthn virtual authenticators of a session (W3C WebAuthn §11, "Automation"):
/// a platform authenticator (CTAP2, internal transport) that holds discoverable
/// credentials and verifies the user without asking.
impl Browser {
    async fn session_command(
        &self,
        method: http::Method,
        path: String,
        body: Option<Value>,
    ) -> Value {
        self.client()
            .issue_cmd(SessionCommand {
                method,
                path: path.clone(),
                body,
            })
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
    }

    /// Adds a virtual authenticator; returns its id.
    pub async fn add_virtual_authenticator(&self) -> String {
        let options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        });
        let v = self
            .session_command(
                http::Method::POST,
                "webauthn/authenticator".into(),
                Some(options),
            )
            .await;
        v.as_str().expect("an authenticator id").to_owned()
    }

    /// The credentials an authenticator holds (`credentialId`, `privateKey`, `signCount`,
    /// `rpId`, `userHandle`, `isResidentCredential`), private keys included.
    pub async fn authenticator_credentials(&self, authenticator: &str) -> Vec<Value> {
        let path = format!("webauthn/authenticator/{authenticator}/credentials");
        match self.session_command(http::Method::GET, path, None).await {
            Value::Array(v) => v,
            other => panic!("credentials: {other}"),
        }
    }

    /// Puts a credential (as [`Browser::authenticator_credentials`] lists them) into an
    /// authenticator: a copy of a key, for a cloned-authenticator test.
    pub async fn add_authenticator_credential(&self, authenticator: &str, credential: Value) {
        let path = format!("webauthn/authenticator/{authenticator}/credential");
        self.session_command(http::Method::POST, path, Some(credential))
            .await;
    }

    /// Removes a virtual authenticator and its credentials.
    pub async fn remove_virtual_authenticator(&self, authenticator: &str) {
        let path = format!("webauthn/authenticator/{authenticator}");
        self.session_command(http::Method::DELETE, path, None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screenshots_go_under_target_unless_blessed() {
        let plain = screenshot_path_for("account.png", false);
        assert!(
            plain.ends_with("screenshots/account.png"),
            "{}",
            plain.display()
        );
        assert!(
            !plain.to_string_lossy().contains("docs"),
            "{}",
            plain.display()
        );
        let exe = std::env::current_exe().unwrap();
        assert!(
            plain.starts_with(exe.ancestors().nth(3).unwrap()),
            "{}",
            plain.display()
        );
        let blessed = screenshot_path_for("account.png", true);
        assert!(
            blessed.ends_with("docs/screenshots/account.png"),
            "{}",
            blessed.display()
        );
    }
}
