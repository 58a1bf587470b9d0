//! Run: `cargo run -p wristband --example oidc_rp -- --issuer http://127.0.0.1:8080 --client-id ID --listen 127.0.0.1:9000`
//! (with the client's secret in `OIDC_RP_CLIENT_SECRET`, or none for a public client).
//!
//! A minimal web application (a "relying party") that signs its users in through
//! Wristband with OpenID Connect, using the independent `openidconnect` crate:
//!
//! - `GET /`: who is signed in (the ID token's `sub`, `auth_time` and `amr`, and the
//!   `preferred_username` from userinfo), or a link to sign in;
//! - `GET /login`: sends the browser to Wristband's `authorization_endpoint` (code flow,
//!   PKCE S256, `state` bound to this browser by a cookie, `nonce`);
//! - `GET /callback`: checks `state` and the RFC 9207 `iss` parameter, exchanges the code
//!   (with the PKCE verifier), validates the ID token (signature from the published JWKS,
//!   `iss`, `aud`, `exp`, `nonce`, `at_hash`) and calls userinfo;
//! - `GET /logout`: RP-initiated logout: ends the local session and sends the browser to
//!   Wristband's `end_session_endpoint` with `id_token_hint`, `post_logout_redirect_uri`
//!   (this app's `/`) and `state`.
//!
//! Register it first, with this app's two addresses:
//!
//! `wristband client add demo-app --kind web --redirect-uri http://127.0.0.1:9000/callback --post-logout-redirect-uri http://127.0.0.1:9000/ --scope openid --scope profile`
//!
//! The bound address is printed on stdout as `listening on ADDR`. Sessions live in memory:
//! this is an example, not a framework.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use clap::Parser;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm,
};
use openidconnect::{
    AccessTokenHash, AdditionalProviderMetadata, AuthorizationCode, ClientId, ClientSecret,
    CsrfToken, EmptyAdditionalClaims, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, ProviderMetadata, RedirectUrl, Scope, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};

/// The provider metadata with `end_session_endpoint` (RP-initiated logout).
#[derive(Clone, Debug, Deserialize, Serialize)]
struct LogoutMetadata {
    end_session_endpoint: Option<openidconnect::EndSessionUrl>,
}
impl AdditionalProviderMetadata for LogoutMetadata {}

type Metadata = ProviderMetadata<
    LogoutMetadata,
    openidconnect::core::CoreAuthDisplay,
    openidconnect::core::CoreClientAuthMethod,
    openidconnect::core::CoreClaimName,
    openidconnect::core::CoreClaimType,
    openidconnect::core::CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    openidconnect::core::CoreResponseMode,
    openidconnect::core::CoreResponseType,
    openidconnect::core::CoreSubjectIdentifierType,
>;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Command-line arguments.
#[derive(Debug, Parser)]
struct Args {
    /// Wristband's issuer URL (its public URL).
    #[arg(long)]
    issuer: String,
    /// This app's client id.
    #[arg(long)]
    client_id: String,
    /// This app's client secret (a `web` client); none for a `public` client.
    #[arg(long, env = "OIDC_RP_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// This app's own base URL, as the browser sees it (default: `http://` + the bound
    /// address).
    #[arg(long)]
    base_url: Option<String>,
    /// Scopes to ask for besides `openid`.
    #[arg(long, default_values_t = ["profile".to_owned()])]
    scope: Vec<String>,
}

/// A sign-in on its way: what the callback needs.
struct Pending {
    verifier: PkceCodeVerifier,
    nonce: Nonce,
}

/// A signed-in browser.
struct Signed {
    sub: String,
    username: Option<String>,
    auth_time: Option<i64>,
    amr: Vec<String>,
    id_token: openidconnect::core::CoreIdToken,
}

struct App {
    client: Client,
    issuer: String,
    end_session: Option<openidconnect::EndSessionUrl>,
    http: openidconnect::reqwest::Client,
    base: String,
    scopes: Vec<String>,
    pending: Mutex<HashMap<String, Pending>>,
    sessions: Mutex<HashMap<String, Signed>>,
}

type Shared = Arc<App>;

const SESSION_COOKIE: &str = "rp_session";
const STATE_COOKIE: &str = "rp_state";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    // Never follow redirects from the provider's endpoints (SSRF).
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()?;
    let metadata = Metadata::discover_async(IssuerUrl::new(args.issuer.clone())?, &http).await?;
    let end_session = metadata.additional_metadata().end_session_endpoint.clone();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let base = args
        .base_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(args.client_id.clone()),
        args.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(format!("{base}/callback"))?);
    let app = Arc::new(App {
        client,
        issuer: args.issuer.clone(),
        end_session,
        http,
        base,
        scopes: args.scope.clone(),
        pending: Mutex::default(),
        sessions: Mutex::default(),
    });
    let router = Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", get(logout))
        .with_state(app);
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()?;
    axum::serve(listener, router).await?;
    Ok(())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <link rel=\"icon\" href=\"data:,\"></head><body><h1>{title}</h1>{body}</body></html>"
    ))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn failed(status: StatusCode, why: &str) -> Response {
    (
        status,
        page(
            "Sign-in failed",
            &format!("<p id=\"error\">{}</p>", escape(why)),
        ),
    )
        .into_response()
}

async fn home(State(app): State<Shared>, headers: HeaderMap) -> Html<String> {
    let sessions = app.sessions.lock().unwrap_or_else(PoisonError::into_inner);
    match cookie(&headers, SESSION_COOKIE).and_then(|id| sessions.get(id)) {
        Some(s) => page(
            "Example app",
            &format!(
                "<p id=\"who\">Signed in as <b id=\"username\">{}</b> (sub <code id=\"sub\">{}</code>)</p>\
                 <p>auth_time <span id=\"auth-time\">{}</span>, amr <span id=\"amr\">{}</span></p>\
                 <p><a id=\"logout\" href=\"/logout\">Sign out</a></p>",
                escape(s.username.as_deref().unwrap_or("?")),
                escape(&s.sub),
                s.auth_time.map_or_else(|| "?".to_owned(), |t| t.to_string()),
                escape(&s.amr.join(" ")),
            ),
        ),
        None => page(
            "Example app",
            "<p id=\"anonymous\">Not signed in.</p><p><a id=\"login\" href=\"/login\">Sign in with Wristband</a></p>",
        ),
    }
}

async fn login(State(app): State<Shared>) -> Response {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = app
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for s in &app.scopes {
        request = request.add_scope(Scope::new(s.clone()));
    }
    let (url, state, nonce) = request.url();
    app.pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(state.secret().clone(), Pending { verifier, nonce });
    // The state is bound to this browser: the callback must come back with the cookie.
    let set = format!(
        "{STATE_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age=600",
        state.secret()
    );
    ([(header::SET_COOKIE, set)], Redirect::to(url.as_str())).into_response()
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(app): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    if let Some(e) = q.error {
        return failed(StatusCode::BAD_REQUEST, &format!("the provider said: {e}"));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return failed(StatusCode::BAD_REQUEST, "no code or state");
    };
    if cookie(&headers, STATE_COOKIE) != Some(state.as_str()) {
        return failed(StatusCode::BAD_REQUEST, "state does not match this browser");
    }
    // RFC 9207: the response names the issuer that sent it (mix-up defence).
    if q.iss.as_deref() != Some(app.issuer.as_str()) {
        return failed(StatusCode::BAD_REQUEST, "wrong or missing iss");
    }
    let Some(pending) = app
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&state)
    else {
        return failed(StatusCode::BAD_REQUEST, "unknown or spent state");
    };
    match finish(&app, code, pending).await {
        Ok(signed) => {
            let id = CsrfToken::new_random().secret().clone();
            app.sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id.clone(), signed);
            let set = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax");
            let clear = format!("{STATE_COOKIE}=; Path=/; Max-Age=0");
            (
                axum::response::AppendHeaders([
                    (header::SET_COOKIE, set),
                    (header::SET_COOKIE, clear),
                ]),
                Redirect::to("/"),
            )
                .into_response()
        }
        Err(e) => failed(StatusCode::BAD_GATEWAY, &e),
    }
}

/// The code exchange and every check on its answer.
async fn finish(app: &App, code: String, pending: Pending) -> Result<Signed, String> {
    let tokens = app
        .client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| e.to_string())?
        .set_pkce_verifier(pending.verifier)
        .request_async(&app.http)
        .await
        .map_err(|e| format!("code exchange: {e}"))?;
    let id_token = tokens.id_token().ok_or("no ID token")?.clone();
    let verifier = app.client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &pending.nonce)
        .map_err(|e| format!("ID token: {e}"))?;
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token.signing_alg().map_err(|e| e.to_string())?;
        let key = id_token.signing_key(&verifier).map_err(|e| e.to_string())?;
        let actual = AccessTokenHash::from_token(tokens.access_token(), alg, key)
            .map_err(|e| e.to_string())?;
        if actual != *expected {
            return Err("at_hash does not match the access token".into());
        }
    }
    let sub = claims.subject().to_string();
    let auth_time = claims.auth_time().map(|t| t.timestamp());
    let amr = claims
        .auth_method_refs()
        .map(|v| v.iter().map(|m| m.to_string()).collect())
        .unwrap_or_default();
    let info: UserInfoClaims<EmptyAdditionalClaims, CoreGenderClaim> = app
        .client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .map_err(|e| e.to_string())?
        .request_async(&app.http)
        .await
        .map_err(|e| format!("userinfo: {e}"))?;
    let username = info.preferred_username().map(|u| u.to_string());
    Ok(Signed {
        sub,
        username,
        auth_time,
        amr,
        id_token,
    })
}

async fn logout(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let signed = cookie(&headers, SESSION_COOKIE).and_then(|id| {
        app.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
    });
    let clear = format!("{SESSION_COOKIE}=; Path=/; Max-Age=0");
    let back = PostLogoutRedirectUrl::new(format!("{}/", app.base));
    let to = match (signed, &app.end_session, back) {
        (Some(s), Some(end), Ok(back)) => LogoutRequest::from(end.clone())
            .set_id_token_hint(&s.id_token)
            .set_post_logout_redirect_uri(back)
            .set_state(CsrfToken::new_random())
            .http_get_url()
            .to_string(),
        _ => "/".to_owned(),
    };
    ([(header::SET_COOKIE, clear)], Redirect::to(&to)).into_response()
}
