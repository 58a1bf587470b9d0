//! A walk through every hosted page as a person meets them, shared by the accessibility
//! and small-screen tests (`a11y.rs`) and by the screenshots (`tests/screenshots`).
//!
//! [`Site::start`] runs `wristband serve` on a fresh data directory with two users and a
//! third-party web client; [`walk`] opens each page in turn — login, an error page, the
//! account page, authenticator enrolment, the recovery codes, the account page with the
//! authenticator on, consent, the logout confirmation and the logged-out page, the login's
//! second step, and the page that continues an authorization request after a login — and
//! hands each one to an [`Inspect`] while it is on screen.

use std::path::Path;
use std::time::Duration;

use http::Method;
use serde_json::{json, Value};
use tempfile::TempDir;
use wristband_jose::Clock as _;
use wristband_server::domain::totp::{Settings, Totp};
use wristband_testkit::browser::{free_port, Browser};
use wristband_testkit::http::Client;
use wristband_testkit::process::{run_to_completion, ServiceProcess};

/// The user who walks the pages (and turns on an authenticator app on the way).
pub(crate) const USER: &str = "alice";
/// A user without a second factor, whose login continues an authorization request.
pub(crate) const OTHER_USER: &str = "bob";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A PKCE S256 challenge of the right shape (RFC 7636's example).
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// `wristband serve` with `alice` and `bob` and a third-party web client, `example-app`.
pub(crate) struct Site {
    _dir: TempDir,
    _service: ServiceProcess,
    /// `http://localhost:PORT`: what the browser opens, and the issuer.
    pub(crate) base: String,
    /// `http://127.0.0.1:PORT`: for API calls from the test.
    pub(crate) api: String,
    pub(crate) http: Client,
    client_id: String,
    redirect_uri: String,
}

impl Site {
    pub(crate) async fn start() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("wristband.toml");
        std::fs::write(
            &config,
            "alg = \"ES256\"\n[argon2]\nmemory_kib = 1024\niterations = 1\nparallelism = 1\n",
        )
        .unwrap();
        let config = config.to_string_lossy().into_owned();
        let data = dir.path().join("data").to_string_lossy().into_owned();
        let wristband = Path::new(env!("CARGO_BIN_EXE_wristband"));
        for user in [USER, OTHER_USER] {
            let args = [
                "user",
                "--config",
                &config,
                "--data-dir",
                &data,
                "add",
                user,
                "--role",
                "user",
                "--password-stdin",
            ];
            run_to_completion(wristband, &args, Some(PASSWORD)).await;
        }
        // A web client on another site (nothing listens there: the walk stops at consent).
        let redirect_uri = format!("http://127.0.0.1:{}/callback", free_port());
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
                &redirect_uri,
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

        let port = free_port();
        let base = format!("http://localhost:{port}");
        let listen = format!("127.0.0.1:{port}");
        let service = ServiceProcess::spawn(
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
        Site {
            api: format!("http://{}", service.addr()),
            _dir: dir,
            _service: service,
            base,
            http: Client::new(),
            client_id,
            redirect_uri,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An authorization request of the web client (`client_id` replaced when given).
    pub(crate) fn authorize_url(&self, client_id: Option<&str>) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!(
            "{}/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}\
             &scope=openid%20profile&state=tour&code_challenge={CHALLENGE}\
             &code_challenge_method=S256",
            self.base,
            enc(client_id.unwrap_or(&self.client_id)),
            enc(&self.redirect_uri),
        )
    }

    /// A JSON call to the API: (status, body).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        let r = self
            .http
            .send(
                method,
                &format!("{}{path}", self.api),
                &headers,
                body.to_string().as_bytes(),
            )
            .await;
        let text = r.text();
        (
            r.status.as_u16(),
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Codes of one authenticator, each fresh: a code is accepted once per 30 s step, so a
/// second code in the same step is the next step's (within the one step of skew the
/// service allows), and past that the generator waits for the clock.
pub(crate) struct Authenticator {
    totp: Totp,
    last: Option<u64>,
}

impl Authenticator {
    /// The authenticator of a base32 key, as the enrolment page or API shows it.
    pub(crate) fn new(secret: &str) -> Authenticator {
        let key = data_encoding::BASE32_NOPAD
            .decode(secret.trim().as_bytes())
            .unwrap_or_else(|e| panic!("the key {secret:?} is not base32: {e}"));
        Authenticator {
            totp: Totp::new(key, Settings::STANDARD),
            last: None,
        }
    }

    /// A code of the current time that was not used yet.
    pub(crate) async fn code(&mut self) -> String {
        let settings = Settings::STANDARD;
        loop {
            let now = wristband_jose::SystemClock.now().as_i64();
            let current = settings.step_at(now);
            let step = self.last.map_or(current, |l| current.max(l + 1));
            if step <= current + u64::from(settings.skew) {
                self.last = Some(step);
                return self.totp.code_of_step(step).to_string();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The user agent of the other session of the [`walk`]: Safari on an iPhone.
const PHONE_AGENT: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) \
    AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";

/// A page on screen during the [`walk`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    /// A short name (the screenshot's file name).
    pub(crate) name: &'static str,
    /// CSS selectors of its main actions: each must be visible and clickable.
    pub(crate) actions: &'static [&'static str],
}

/// What is done with each page of the [`walk`] while it is on screen.
pub(crate) trait Inspect {
    async fn inspect(&mut self, browser: &Browser, page: Page);
}

/// The password form of the login page, filled and sent.
pub(crate) async fn log_in(browser: &Browser, user: &str) {
    browser.fill("#username", user).await;
    browser.fill("#password", PASSWORD).await;
    browser
        .click("form[action$=\"/login\"] button[type=submit]")
        .await;
}

/// Opens every hosted page in turn on `site` (fresh, as [`Site::start`] leaves it) and
/// inspects each. The pages' names, in order: `login`, `error`, `account`, `mfa-enrol`,
/// `recovery-codes`, `account-mfa-on`, `consent`, `logout`, `logged-out`, `login-mfa`,
/// `continue`.
pub(crate) async fn walk(browser: &Browser, site: &Site, inspector: &mut impl Inspect) {
    // A session on a phone, besides the one this browser will open.
    let r = site
        .http
        .send(
            Method::POST,
            &format!("{}/v1/login", site.api),
            &[
                ("content-type", "application/json"),
                ("user-agent", PHONE_AGENT),
            ],
            json!({"username": USER, "password": PASSWORD})
                .to_string()
                .as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    browser.open(&site.url("/login")).await;
    browser.wait_for("#password").await;
    let login = Page {
        name: "login",
        actions: &["#username", "#password", "form[action$=\"/login\"] button"],
    };
    inspector.inspect(browser, login).await;

    // An authorization request of a client that does not exist: an error page (400).
    browser.open(&site.authorize_url(Some("no-such-app"))).await;
    browser.wait_for("main .error").await;
    let error = Page {
        name: "error",
        actions: &["main a[href$=\"/login\"]"],
    };
    inspector.inspect(browser, error).await;

    browser.open(&site.url("/login")).await;
    log_in(browser, USER).await;
    browser.wait_for_path("/account").await;
    browser.wait_for("#mfa-enrol").await;
    let account = Page {
        name: "account",
        actions: &[
            "#sessions .revoke button",
            "#sessions summary",
            "#logout button",
            "#mfa-enrol button",
            "#password button",
        ],
    };
    inspector.inspect(browser, account).await;

    browser.click("#mfa-enrol button").await;
    browser.wait_for_path("/account/mfa/totp").await;
    let secret = browser.wait_for("#secret").await.text().await.unwrap();
    let enrol = Page {
        name: "mfa-enrol",
        actions: &["#code", "#mfa-confirm button"],
    };
    inspector.inspect(browser, enrol).await;

    let mut app = Authenticator::new(&secret);
    browser.fill("#code", &app.code().await).await;
    browser.click("#mfa-confirm button").await;
    browser.wait_for("#recovery-codes").await;
    let codes = Page {
        name: "recovery-codes",
        actions: &["main a[href$=\"/account\"]"],
    };
    inspector.inspect(browser, codes).await;

    browser.open(&site.url("/account")).await;
    browser.wait_for("#mfa-remove").await;
    let account_mfa = Page {
        name: "account-mfa-on",
        actions: &[
            "#sessions .revoke button",
            "#mfa-recovery button",
            "#remove-code",
            "#mfa-remove button",
            "#logout-all button",
        ],
    };
    inspector.inspect(browser, account_mfa).await;

    browser.open(&site.authorize_url(None)).await;
    browser.wait_for("#allow").await;
    let consent = Page {
        name: "consent",
        actions: &["#allow", "#deny"],
    };
    inspector.inspect(browser, consent).await;

    // RP-initiated logout without a hint asks first.
    browser.open(&site.url("/oauth2/logout")).await;
    browser
        .wait_for("form[action$=\"/oauth2/logout\"] button")
        .await;
    let logout = Page {
        name: "logout",
        actions: &[
            "form[action$=\"/oauth2/logout\"] button",
            "main a[href$=\"/account\"]",
        ],
    };
    inspector.inspect(browser, logout).await;
    browser
        .click("form[action$=\"/oauth2/logout\"] button")
        .await;
    browser.wait_for("main a[href$=\"/login\"]").await;
    let logged_out = Page {
        name: "logged-out",
        actions: &["main a[href$=\"/login\"]"],
    };
    inspector.inspect(browser, logged_out).await;

    // With the authenticator on, the password leads to the second step.
    browser.open(&site.url("/login")).await;
    log_in(browser, USER).await;
    browser.wait_for("#totp-step #code").await;
    let second = Page {
        name: "login-mfa",
        actions: &[
            "#code",
            "#totp-step button",
            "#recovery-code",
            "#recovery-step button",
        ],
    };
    inspector.inspect(browser, second).await;

    // A login that returns to an authorization request answers with a page that goes on
    // to it at once (a `<meta http-equiv="refresh">`). To look at it, the page's own
    // script posts bob's login, and the answer is shown without its refresh.
    let posted = browser
        .execute_async(
            "const [user, password, returnTo, done] = arguments;\
             const body = new URLSearchParams({username: user, password, return_to: returnTo});\
             fetch('/login', {method: 'POST', body, credentials: 'same-origin'})\
               .then(r => r.text().then(t => done([r.status, t])), e => done([0, String(e)]));",
            vec![
                json!(OTHER_USER),
                json!(PASSWORD),
                json!(site.authorize_url(None)),
            ],
        )
        .await;
    assert_eq!(
        posted[0],
        json!(200),
        "the login with a return target: {posted}"
    );
    let page = posted[1].as_str().unwrap();
    let refresh = page
        .find("<meta http-equiv=\"refresh\"")
        .expect("the continue page refreshes");
    let end = refresh + page[refresh..].find('>').unwrap() + 1;
    let still = format!("{}{}", &page[..refresh], &page[end..]);
    browser
        .execute(
            "document.open(); document.write(arguments[0]); document.close();",
            vec![json!(still)],
        )
        .await;
    browser.wait_for("#continue").await;
    wait_for_style(browser).await;
    let cont = Page {
        name: "continue",
        actions: &["#continue"],
    };
    inspector.inspect(browser, cont).await;
}

/// Waits until the page's stylesheet applies (the header has its colour).
async fn wait_for_style(browser: &Browser) {
    for _ in 0..100 {
        let background = browser
            .execute(
                "const h = document.querySelector('header');\
                 return h ? getComputedStyle(h).backgroundColor : null;",
                vec![],
            )
            .await;
        if background == json!("rgb(47, 111, 79)") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the stylesheet did not apply on {}", browser.url().await);
}
