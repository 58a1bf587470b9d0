//! `wristband demo`: the walkthrough's sequence diagram, played live on this machine.
//!
//! Client → Auth (login) → API services (verify locally) → data; then the auth service
//! goes down and the APIs keep verifying; then it comes back and a stale refresh token is
//! caught as reuse.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use wristband_jose::Clock as _;

use anyhow::{bail, ensure, Context};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wristband_jose::{dangerous, SecretString, SystemClock};
use wristband_server::config::Config;
use wristband_server::domain::users;
use wristband_server::startup::App;
use wristband_verify::{RequireTokenLayer, Verifier};

use crate::settings::runtime;
use crate::Outcome;

const DEMO_USER: &str = "demo";
const DEMO_PASSWORD: &str = "wristband demo passphrase";

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Step<'a, W: Write> {
    n: u32,
    out: &'a mut W,
}

impl<W: Write> Step<'_, W> {
    fn say(&mut self, text: impl AsRef<str>) -> anyhow::Result<()> {
        self.n += 1;
        writeln!(self.out, "{:>2}. {}", self.n, text.as_ref())?;
        self.out.flush()?;
        Ok(())
    }

    fn detail(&mut self, text: impl AsRef<str>) -> anyhow::Result<()> {
        for line in text.as_ref().lines() {
            writeln!(self.out, "      {line}")?;
        }
        Ok(())
    }
}

async fn call(
    client: &HttpClient,
    method: Method,
    url: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut req = Request::builder().method(method).uri(url);
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let bytes = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    let res = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(req.body(Full::new(bytes))?),
    )
    .await
    .context("request timed out")??;
    let status = res.status();
    let body = res.into_body().collect().await?.to_bytes();
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok((status, value))
}

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

async fn refresh(
    client: &HttpClient,
    issuer: &str,
    token: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let url = format!("{issuer}/v1/refresh");
    call(
        client,
        Method::POST,
        &url,
        None,
        Some(json!({ "refresh_token": token })),
    )
    .await
}

async fn start_auth(config: Config) -> anyhow::Result<Running> {
    let app = App::build(config, Arc::new(SystemClock)).await?;
    let addr = app.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    Ok(Running {
        addr,
        stop: tx,
        task,
    })
}

async fn start_api(issuer: &str, audience: &str) -> anyhow::Result<Running> {
    let verifier = Verifier::builder(issuer, audience)
        .discover()
        .build()
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // The same hardened serve loop as every other server of the workspace.
        wristband_serve::serve(
            listener,
            api_router(verifier),
            wristband_serve::ServeLimits::default(),
            async {
                let _ = rx.await;
            },
        )
        .await
    });
    Ok(Running {
        addr,
        stop: tx,
        task,
    })
}

/// The demo's API service: `GET /resource` answers the verified `sub` and `role`.
fn api_router(verifier: Verifier) -> axum::Router {
    axum::Router::new()
        .route("/resource", axum::routing::get(resource))
        .layer(RequireTokenLayer::new(verifier))
}

async fn resource(claims: wristband_verify::Claims) -> axum::Json<Value> {
    axum::Json(json!({ "sub": claims.sub, "role": claims.role }))
}

/// Plays the demo. Exits 0 only if every step behaved as the diagram says.
pub(crate) fn run(out: &mut impl Write) -> anyhow::Result<Outcome> {
    runtime()?.block_on(play(out))
}

async fn play(out: &mut impl Write) -> anyhow::Result<Outcome> {
    let dir = tempdir()?;
    let mut step = Step { n: 0, out };
    writeln!(
        step.out,
        "Wristband demo: Client -> Auth -> API -> verify -> data\n"
    )?;

    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.clone(),
        alg: wristband_jose::Algorithm::ES256,
        // No grace window, so that the stale token below is caught at once.
        refresh_grace: Duration::ZERO,
        ..Config::default()
    };
    let auth = start_auth(config.clone()).await?;
    let issuer = format!("http://{}", auth.addr);
    step.say(format!(
        "Auth service started at {issuer} (SQLite in a temporary directory, new ES256 key)"
    ))?;
    add_demo_user(&mut step, &config).await?;

    let api_a = start_api(&issuer, &config.audience).await?;
    let api_b = start_api(&issuer, &config.audience).await?;
    step.say(format!(
        "API services A (http://{}) and B (http://{}) started; each fetched the public keys once \
         through {issuer}/.well-known/oauth-authorization-server",
        api_a.addr, api_b.addr
    ))?;
    let apis = [("A", &api_a), ("B", &api_b)];

    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let (access, refresh1) = login(&mut step, &client, &issuer).await?;
    call_apis(&mut step, &client, &apis, &access, "").await?;

    auth.stop().await?;
    step.say("Auth service stopped.")?;
    call_apis(
        &mut step,
        &client,
        &apis,
        &access,
        " with the auth service down",
    )
    .await?;

    let auth = start_auth(Config {
        listen: issuer.trim_start_matches("http://").parse()?,
        ..config
    })
    .await?;
    step.say(format!(
        "Auth service restarted at {issuer} on the same data."
    ))?;
    catch_reuse(&mut step, &client, &issuer, &refresh1).await?;

    auth.stop().await?;
    api_a.stop().await?;
    api_b.stop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    writeln!(step.out, "\nDone: every step behaved as expected.")?;
    Ok(Outcome::Success)
}

/// Adds the demo's admin user straight to the store.
async fn add_demo_user<W: Write>(step: &mut Step<'_, W>, config: &Config) -> anyhow::Result<()> {
    let store = wristband_server::startup::open_store(config).await?;
    let passwords = wristband_server::domain::Passwords::new(config.argon2, 1)?;
    let now = wristband_jose::SystemClock.now().as_i64();
    users::add_user(
        &*store,
        &passwords,
        DEMO_USER,
        SecretString::new(DEMO_PASSWORD.into()),
        "admin",
        now,
    )
    .await?;
    step.say(format!(
        "Created user \"{DEMO_USER}\" with role admin (password hashed with Argon2id)"
    ))
}

/// Logs the demo user in and shows the decoded access token; returns the access and the
/// refresh token.
async fn login<W: Write>(
    step: &mut Step<'_, W>,
    client: &HttpClient,
    issuer: &str,
) -> anyhow::Result<(String, String)> {
    let (status, tokens) = call(
        client,
        Method::POST,
        &format!("{issuer}/v1/login"),
        None,
        Some(json!({"username": DEMO_USER, "password": DEMO_PASSWORD})),
    )
    .await?;
    ensure!(status == StatusCode::OK, "login answered {status}");
    let access = tokens["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .context("no refresh token")?
        .to_owned();
    step.say(format!(
        "Client -> Auth: POST /v1/login -> {status}: an access token (expires in {} s) and a refresh token",
        tokens["expires_in"]
    ))?;

    let decoded = dangerous::decode_without_verification(&access)?;
    step.say(
        "The access token, decoded (this is only base64: no secrets or personal data in it):",
    )?;
    step.detail(format!(
        "header: {}\nclaims: {}",
        decoded.header,
        serde_json::to_string_pretty(&decoded.payload)?
    ))?;
    Ok((access, refresh))
}

/// `GET /resource` on each API service with `access`: each must answer 200. `when` is
/// empty while the auth service runs, and says so when it is down.
async fn call_apis<W: Write>(
    step: &mut Step<'_, W>,
    client: &HttpClient,
    apis: &[(&str, &Running)],
    access: &str,
    when: &str,
) -> anyhow::Result<()> {
    for (name, api) in apis {
        let (status, body) = call(
            client,
            Method::GET,
            &format!("http://{}/resource", api.addr),
            Some(access),
            None,
        )
        .await?;
        ensure!(
            status == StatusCode::OK,
            "API {name} answered {status}{when}"
        );
        if when.is_empty() {
            step.say(format!(
                "Client -> API {name}: GET /resource -> {status}: signature, expiry, issuer and audience checked \
                 locally; sub={} role={}",
                body["sub"], body["role"]
            ))?;
        } else {
            step.say(format!(
                "Client -> API {name}: GET /resource -> {status}: still verified, with no call to the auth service"
            ))?;
        }
    }
    Ok(())
}

/// Refreshes once with `refresh1`, then replays it: the reuse revokes the whole family.
async fn catch_reuse<W: Write>(
    step: &mut Step<'_, W>,
    client: &HttpClient,
    issuer: &str,
    refresh1: &str,
) -> anyhow::Result<()> {
    let (status, pair) = refresh(client, issuer, refresh1).await?;
    ensure!(status == StatusCode::OK, "refresh answered {status}");
    let refresh2 = pair["refresh_token"]
        .as_str()
        .context("no refresh token")?
        .to_owned();
    step.say(format!(
        "Client -> Auth: POST /v1/refresh with refresh token #1 -> {status}: new access token and refresh token #2 \
         (#1 is now spent)"
    ))?;

    let (status, body) = refresh(client, issuer, refresh1).await?;
    if status != StatusCode::BAD_REQUEST {
        bail!("reusing a spent refresh token answered {status}");
    }
    step.say(format!(
        "Attacker -> Auth: POST /v1/refresh with the stale token #1 -> {status} {}: reuse detected, the session is revoked",
        body["error"]
    ))?;

    let (status, _) = refresh(client, issuer, &refresh2).await?;
    ensure!(
        status == StatusCode::BAD_REQUEST,
        "refresh #2 answered {status}"
    );
    step.say(format!(
        "Client -> Auth: POST /v1/refresh with token #2 -> {status}: the whole token family is gone; log in again"
    ))
}

fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    let mut suffix = [0u8; 8];
    aws_lc_rs::rand::fill(&mut suffix).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let dir = std::env::temp_dir().join(format!(
        "wristband-demo-{}",
        wristband_jose::b64::encode(suffix)
    ));
    wristband_server::startup::create_private_dir(&dir)?;
    Ok(dir)
}
