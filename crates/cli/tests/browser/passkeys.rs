//! Passkeys in Chromium with the WebDriver virtual authenticator: registration on the
//! account page, passwordless sign-in, a passkey as the second step, removal; a page of
//! another origin refused; a cloned authenticator (its signature counter behind) refused.
//!
//! The service is browsed as `http://localhost:PORT`: a relying party id must be a domain
//! name, and Chromium treats `http://localhost` as a secure context.

use std::path::Path;
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use wristband_testkit::browser::{free_port, Browser, WAIT};
use wristband_testkit::http::Client;
use wristband_testkit::process::ServiceProcess;

use crate::pages::{assert_no_errors, fill_login, store_with_user, ACCESS, USER};

const PASSWORD: &str = "correct horse battery staple";

struct Site {
    _dir: TempDir,
    _service: ServiceProcess,
    port: u16,
    base: String,
    api: String,
    http: Client,
}

impl Site {
    async fn start() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let (config, data) = store_with_user(&dir).await;
        let port = free_port();
        let base = format!("http://localhost:{port}");
        let service = ServiceProcess::spawn(
            Path::new(env!("CARGO_BIN_EXE_wristband")),
            &[
                "serve",
                "--config",
                &config,
                "--data-dir",
                &data,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--issuer",
                &base,
            ],
        )
        .await;
        Site {
            api: format!("http://{}", service.addr()),
            _dir: dir,
            _service: service,
            port,
            base,
            http: Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /v1/login` with the password, outside the browser: the JSON answer.
    async fn password_login(&self) -> Value {
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
        r.json()
    }
}

/// The claims of the browser's access cookie.
async fn access_claims(browser: &Browser) -> Value {
    let access = browser.cookie(ACCESS).await.expect("access cookie");
    wristband_jose::dangerous::decode_without_verification(&access.value)
        .unwrap()
        .payload
}

/// Waits until `css` holds `text`.
async fn wait_for_text_in(browser: &Browser, css: &str, text: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = browser
            .execute(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
                vec![json!(css)],
            )
            .await;
        if found.as_str().is_some_and(|t| t.contains(text)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never held {text:?}: {found}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs in with the password on the login page, then registers a passkey named `name`
/// on the account page.
async fn register(site: &Site, browser: &Browser, name: &str) {
    browser.open(&site.url("/login")).await;
    fill_login(browser).await;
    browser.wait_for_path("/account").await;
    browser.fill("#passkey-name", name).await;
    browser.click("#passkey-register").await;
    // Success reloads the page with the passkey listed; a failure says why in the status.
    let deadline = Instant::now() + WAIT;
    loop {
        let state = browser
            .execute(
                "const l = document.querySelector('#passkey-list'); \
                 const b = document.querySelector('#passkey-register'); \
                 const s = document.querySelector('#passkey-add-status'); \
                 return [l ? l.textContent : '', b ? b.getAttribute('data-result') : null, \
                         s ? s.textContent : ''];",
                vec![],
            )
            .await;
        if state[0].as_str().is_some_and(|t| t.contains(name)) {
            return;
        }
        let failed = state[1].as_str().is_some_and(|r| r != "ok");
        assert!(!failed, "registration failed: {state}");
        assert!(
            Instant::now() < deadline,
            "registration never finished: {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Logs the browser out from the account page.
async fn log_out(browser: &Browser) {
    browser.click("#logout button").await;
    browser.wait_for_path("/login").await;
}

/// A passwordless sign-in run by a script on the current page, with the tokens in the
/// body (so that no cookie or Origin rule is involved, only WebAuthn's checks): the
/// finish request's status and error code.
async fn scripted_sign_in(browser: &Browser) -> Value {
    let script = r#"
const done = arguments[arguments.length - 1];
const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
  .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const bin = (t) => Uint8Array.from(atob(t.replace(/-/g, '+').replace(/_/g, '/')
  + '==='.slice((t.length + 3) % 4)), (c) => c.charCodeAt(0)).buffer;
(async () => {
  const post = (path, body) => fetch(path, {method: 'POST',
    headers: {'content-type': 'application/json'}, body: JSON.stringify(body)});
  const start = await (await post('/v1/webauthn/login/start', {})).json();
  const pk = start.publicKey;
  pk.challenge = bin(pk.challenge);
  const cred = await navigator.credentials.get({publicKey: pk});
  const r = cred.response;
  const finish = await post('/v1/webauthn/login/finish', {
    challenge_id: start.challenge_id,
    delivery: 'body',
    credential: {id: cred.id, rawId: b64(cred.rawId), type: cred.type,
      response: {clientDataJSON: b64(r.clientDataJSON),
        authenticatorData: b64(r.authenticatorData), signature: b64(r.signature),
        userHandle: r.userHandle ? b64(r.userHandle) : null}}});
  const j = await finish.json();
  done({status: finish.status, error: j.error || null, acr: j.access_token ?
    JSON.parse(atob(j.access_token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).acr : null});
})().catch((e) => done({status: 0, error: String(e)}));
"#;
    browser.execute_async(script, vec![]).await
}

/// A copy of a credential as an authenticator listed it, to put into another one: the
/// fields the Add Credential command takes, the signature counter moved on by `ahead`.
fn key_copy(listed: &Value, ahead: u64) -> Value {
    let mut copy = json!({});
    for field in [
        "credentialId",
        "isResidentCredential",
        "rpId",
        "privateKey",
        "userHandle",
    ] {
        copy[field] = listed[field].clone();
    }
    copy["signCount"] = json!(listed["signCount"].as_u64().unwrap_or(0) + ahead);
    copy
}

/// Forwards `127.0.0.1:from` to `127.0.0.1:to`: the same service on a second origin.
async fn forward(from: u16, to: u16) -> tokio::task::JoinHandle<()> {
    let listener = TcpListener::bind(("127.0.0.1", from)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", to)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_register_sign_in_alone_and_as_a_second_factor_then_go() {
    let Some(browser) =
        Browser::start("passkeys_register_sign_in_alone_and_as_a_second_factor_then_go").await
    else {
        return;
    };
    let site = Site::start().await;
    browser.open(&site.url("/login")).await;
    let authenticator = browser.add_virtual_authenticator().await;

    // Registration from the account page: a discoverable credential, named.
    register(&site, &browser, "Laptop").await;
    let held = browser.authenticator_credentials(&authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["isResidentCredential"], true);
    assert_eq!(held[0]["rpId"], "localhost");
    let text = browser.text().await;
    assert!(text.contains("Laptop"), "{text}");
    // The password alone no longer signs in: the passkey is a second factor.
    let answer = site.password_login().await;
    assert_eq!(answer["error"], "mfa_required", "{answer}");
    assert_eq!(answer["methods"], json!(["webauthn"]));

    // Passwordless sign-in from the login page.
    log_out(&browser).await;
    browser.click("#passkey-sign-in").await;
    browser.wait_for_path("/account").await;
    let c = access_claims(&browser).await;
    assert_eq!(c["acr"], "urn:wristband:acr:phr", "{c}");
    assert_eq!(c["amr"], json!(["hwk", "mfa"]));

    // The password, then the passkey as the second step.
    log_out(&browser).await;
    fill_login(&browser).await;
    browser.wait_for("#passkey-second-step").await;
    assert!(
        !browser.has("#totp-step").await,
        "no authenticator app: no code form"
    );
    browser.click("#passkey-second-step").await;
    browser.wait_for_path("/account").await;
    let c = access_claims(&browser).await;
    assert_eq!(c["amr"], json!(["pwd", "hwk", "mfa"]), "{c}");
    assert_eq!(c["acr"], "urn:wristband:acr:phr");

    // Removal: the password alone signs in again.
    browser.click("#passkey-list form button").await;
    wait_for_text_in(&browser, "main", "The passkey is removed.").await;
    assert!(!browser.has("#passkey-list").await);
    let answer = site.password_login().await;
    assert!(answer["access_token"].is_string(), "{answer}");
    assert_no_errors(&browser.console_errors().await, "passkey pages");
    // And the authenticator's key no longer signs in.
    browser.open(&site.url("/login")).await;
    let refused = scripted_sign_in(&browser).await;
    assert_eq!(refused["status"], 401, "{refused}");
    assert_eq!(refused["error"], "invalid_passkey");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_origin_and_a_cloned_authenticator_are_refused() {
    let Some(browser) =
        Browser::start("another_origin_and_a_cloned_authenticator_are_refused").await
    else {
        return;
    };
    let site = Site::start().await;
    browser.open(&site.url("/login")).await;
    let original = browser.add_virtual_authenticator().await;
    register(&site, &browser, "Phone").await;
    let snapshot = browser.authenticator_credentials(&original).await;
    assert_eq!(snapshot.len(), 1);

    // On the service's own origin the script signs in (the control).
    browser.open(&site.url("/login")).await;
    let ok = scripted_sign_in(&browser).await;
    assert_eq!(ok["status"], 200, "{ok}");
    assert_eq!(ok["acr"], "urn:wristband:acr:phr");

    // The same service on another port is another origin: the browser signs for it (the
    // RP id, localhost, matches), and the service refuses the signature's origin.
    let other = free_port();
    let _forwarder = forward(other, site.port).await;
    browser
        .open(&format!("http://localhost:{other}/login"))
        .await;
    let refused = scripted_sign_in(&browser).await;
    assert_eq!(refused["status"], 401, "{refused}");
    assert_eq!(refused["error"], "invalid_passkey");

    // A clone of the key, made before the last sign-in: its counter is behind the one the
    // service saw, so it is refused (the counter-checking policy in docs/MFA.md).
    browser.remove_virtual_authenticator(&original).await;
    let clone = browser.add_virtual_authenticator().await;
    let copy = key_copy(&snapshot[0], 0);
    browser.add_authenticator_credential(&clone, copy).await;
    browser.open(&site.url("/login")).await;
    let cloned = scripted_sign_in(&browser).await;
    assert_eq!(cloned["status"], 401, "{cloned}");
    assert_eq!(cloned["error"], "invalid_passkey");
    // The genuine key, one sign-in further, still works... once the clone is gone.
    browser.remove_virtual_authenticator(&clone).await;
    let genuine = browser.add_virtual_authenticator().await;
    browser
        .add_authenticator_credential(&genuine, key_copy(&snapshot[0], 5))
        .await;
    let again = scripted_sign_in(&browser).await;
    assert_eq!(again["status"], 200, "{again}");
    browser.quit().await;
}
