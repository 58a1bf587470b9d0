//! OpenID Connect: the full code flow driven by an independent relying-party library (the
//! `openidconnect` crate), for a confidential and a public client, and the attacks the
//! provider must refuse.

use std::collections::BTreeMap;

use http::Method;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndSessionUrl,
    HttpRequest, HttpResponse, IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PostLogoutRedirectUrl, RedirectUrl, Scope, TokenResponse,
};
use wristband_server::domain::oidc::{self, RelyingParty};
use wristband_server::store::{ClientKind, Store};
use wristband_testkit::http::{Client, TestResponse};

use crate::helpers::{form, TestApp, PASSWORD};
use crate::oidc_logout::{valid_logout_token, Receiver, BYE};
use std::time::Duration;

const REDIRECT: &str = "https://rp.example/cb";

/// The relying party's HTTP client: plain HTTP/1 on loopback, through the test client.
async fn send(req: HttpRequest) -> Result<HttpResponse, std::io::Error> {
    let (parts, body) = req.into_parts();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = Client::new()
        .send(parts.method, &parts.uri.to_string(), &headers, &body)
        .await;
    let mut out = http::Response::builder().status(r.status);
    for (k, v) in &r.headers {
        out = out.header(k, v);
    }
    out.body(r.body.to_vec()).map_err(std::io::Error::other)
}

/// A browser: a cookie jar over the test client, following nothing by itself.
#[derive(Default)]
struct Browser {
    jar: BTreeMap<String, String>,
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, r: &TestResponse) {
        for v in r.headers.get_all("set-cookie") {
            let text = v.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.jar.remove(k);
            } else {
                self.jar.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    async fn request(
        &mut self,
        method: Method,
        url: &str,
        body: &str,
        extra: &[(&str, &str)],
    ) -> TestResponse {
        let cookie = self.cookie_header();
        let mut headers = vec![("cookie", cookie.as_str())];
        if method == Method::POST {
            headers.push(("content-type", "application/x-www-form-urlencoded"));
        }
        headers.extend_from_slice(extra);
        let r = Client::new()
            .send(method, url, &headers, body.as_bytes())
            .await;
        self.keep(&r);
        r
    }

    async fn get(&mut self, url: &str) -> TestResponse {
        self.request(Method::GET, url, "", &[]).await
    }
}

fn location(r: &TestResponse) -> String {
    assert_eq!(r.status, 303, "{}", r.text());
    r.header("location").unwrap().to_owned()
}

fn absolute(app: &TestApp, to: &str) -> String {
    if to.starts_with('/') {
        app.url(to)
    } else {
        to.to_owned()
    }
}

fn query_of(url: &str) -> BTreeMap<String, String> {
    let url = url::Url::parse(url).unwrap();
    url.query_pairs().into_owned().collect()
}

/// Signs `user` in through the hosted login page, from an authorization request with no
/// session, and returns the authorize URL the login comes back to.
async fn sign_in(app: &TestApp, browser: &mut Browser, auth_url: &str, user: &str) -> String {
    let to_resume = location(&browser.get(auth_url).await);
    assert!(
        to_resume.contains("/v1/session/resume?return_to="),
        "{to_resume}"
    );
    let to_login = location(&browser.get(&absolute(app, &to_resume)).await);
    let login_url = absolute(app, &to_login);
    assert!(login_url.contains("/login?return_to="), "{login_url}");
    let page = browser.get(&login_url).await;
    assert_eq!(page.status, 200);
    let return_to = query_of(&login_url)["return_to"].clone();
    let body = form(&[
        ("username", user),
        ("password", PASSWORD),
        ("return_to", &return_to),
    ]);
    let done = browser
        .request(Method::POST, &app.url("/login"), &body, &[])
        .await;
    // A page of this origin continues to the authorization request.
    assert_eq!(done.status, 200, "{}", done.text());
    assert!(done.text().contains("http-equiv=\"refresh\""));
    absolute(app, &return_to)
}

/// Answers the consent page of `page` with `decision`.
async fn consent(
    app: &TestApp,
    browser: &mut Browser,
    auth_url: &str,
    decision: &str,
) -> TestResponse {
    let csrf = browser.jar["__Host-wb_csrf"].clone();
    let mut pairs: Vec<(String, String)> = query_of(auth_url).into_iter().collect();
    pairs.push(("csrf_token".into(), csrf));
    pairs.push(("decision".into(), decision.into()));
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    browser
        .request(
            Method::POST,
            &app.url("/oauth2/consent"),
            &form(&pairs),
            &[],
        )
        .await
}

async fn register(
    app: &TestApp,
    name: &str,
    kind: ClientKind,
    first_party: bool,
) -> (String, Option<String>) {
    register_with(app, name, kind, first_party, RelyingParty::default()).await
}

/// [`register`], with the logout addresses of `logout`.
async fn register_with(
    app: &TestApp,
    name: &str,
    kind: ClientKind,
    first_party: bool,
    logout: RelyingParty,
) -> (String, Option<String>) {
    let rp = RelyingParty {
        post_logout_redirect_uris: logout.post_logout_redirect_uris,
        backchannel_logout_uri: logout.backchannel_logout_uri,
        redirect_uris: vec![REDIRECT.to_owned(), "com.example.app:/cb".to_owned()]
            .into_iter()
            .filter(|u| kind == ClientKind::Public || u.starts_with("https"))
            .collect(),
        first_party,
        scopes: ["openid", "profile", "offline_access"]
            .map(str::to_owned)
            .to_vec(),
        ..RelyingParty::default()
    };
    let c = oidc::add_relying_party(&*app.store, name, kind, rp, app.now())
        .await
        .unwrap();
    let secret = (kind == ClientKind::Web).then(|| c.secret.expose().to_owned());
    (c.record.id, secret)
}

async fn full_flow(kind: ClientKind) {
    let app = TestApp::spawn().await;
    let alice = app.add_user("alice", "admin").await;
    let receiver = Receiver::start().await;
    let logout = RelyingParty {
        post_logout_redirect_uris: vec![BYE.to_owned()],
        backchannel_logout_uri: Some(receiver.uri()),
        ..RelyingParty::default()
    };
    let (id, secret) = register_with(&app, "wiki", kind, false, logout).await;

    // Discovery.
    let issuer = IssuerUrl::new(app.base.clone()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &send)
        .await
        .unwrap();
    let jwks = metadata.jwks().clone();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(id.clone()),
        secret.map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap());

    // Authorize, log in through the hosted page, consent.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = Browser::default();
    let back = sign_in(&app, &mut browser, auth_url.as_str(), "alice").await;
    let page = browser.get(&back).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let text = page.text();
    assert!(text.contains("Allow wiki?") && text.contains("data-scope=\"offline_access\""));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(
        csp.contains("form-action 'self' https://rp.example"),
        "{csp}"
    );
    let to = location(&consent(&app, &mut browser, &back, "allow").await);
    assert!(to.starts_with(&format!("{REDIRECT}?code=")), "{to}");
    let q = query_of(&to);
    assert_eq!(q["state"], *state.secret());
    assert_eq!(q["iss"], app.base, "RFC 9207 iss");

    // The code, with the PKCE verifier; the ID token validated by the library.
    let tokens = client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&send)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(claims.subject().as_str(), alice);
    // The library refuses the token for another request's nonce, and a verifier expecting
    // another issuer (mix-up) refuses it too.
    assert!(id_token
        .claims(&verifier, &Nonce::new("another request".into()))
        .is_err());
    let mixed = openidconnect::core::CoreIdTokenVerifier::new_public_client(
        ClientId::new(id.clone()),
        IssuerUrl::new("https://other-provider.example".into()).unwrap(),
        jwks.clone(),
    );
    let err = id_token.claims(&mixed, &nonce).unwrap_err();
    assert!(err.to_string().to_lowercase().contains("iss"), "{err}");
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&at_hash));
    assert!(claims.auth_time().is_some());
    let raw = crate::helpers::claims(&id_token.to_string());
    let sign_in_sid = raw["sid"].as_str().unwrap().to_owned();
    assert_eq!(raw["amr"], serde_json::json!(["pwd"]));
    assert_eq!(raw["acr"], "urn:wristband:acr:pwd");
    // The access token: RFC 9068, for the child session, not the sign-in session.
    let at = crate::helpers::claims(tokens.access_token().secret());
    assert_eq!(at["client_id"], id);
    assert_eq!(at["sub"], alice);
    let child = at["sid"].as_str().unwrap();
    assert_ne!(child, sign_in_sid);
    let child = app.store.session(child).await.unwrap().unwrap();
    assert_eq!(child.parent_id.as_deref(), Some(sign_in_sid.as_str()));
    assert!(child.offline);

    // Userinfo, within the scopes.
    let info: openidconnect::core::CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&send)
        .await
        .unwrap();
    assert_eq!(info.subject().as_str(), alice);
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("alice"));
    // The RP's token is no key to the account API.
    let me = app.me(tokens.access_token().secret()).await;
    assert_eq!(me.status, 403, "{}", me.text());

    // Refresh (rotating).
    let rt = tokens
        .refresh_token()
        .expect("offline_access gives a refresh token");
    let refreshed = client
        .exchange_refresh_token(rt)
        .unwrap()
        .request_async(&send)
        .await
        .unwrap();
    let next = refreshed.refresh_token().unwrap();
    assert_ne!(next.secret(), rt.secret());
    let at = crate::helpers::claims(refreshed.access_token().secret());
    assert_eq!(at["sid"], child.id);
    assert_eq!(at["scope"], "openid profile offline_access");

    // Consent is remembered: the next request goes straight back with a code.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (again, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let to = location(&browser.get(again.as_str()).await);
    assert!(to.starts_with(&format!("{REDIRECT}?code=")), "{to}");

    // RP-initiated logout, as the library builds it: the sign-in session ends, the browser
    // goes back to the registered address with the state, and the RP's back-channel
    // receiver gets a valid logout token within a second.
    let logout_state = CsrfToken::new_random();
    let end = EndSessionUrl::new(app.url("/oauth2/logout")).unwrap();
    let logout_url = LogoutRequest::from(end)
        .set_id_token_hint(id_token)
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(BYE.to_owned()).unwrap())
        .set_state(logout_state.clone())
        .http_get_url();
    let to = location(&browser.get(logout_url.as_str()).await);
    assert!(to.starts_with(BYE), "{to}");
    assert_eq!(query_of(&to)["state"], *logout_state.secret());
    let s = app.store.session(&sign_in_sid).await.unwrap().unwrap();
    assert!(s.revoked_at.is_some(), "the sign-in session ended");
    let got = receiver.wait_for(1, Duration::from_secs(1)).await;
    assert_eq!(got.len(), 1, "one logout token within a second");
    valid_logout_token(&app, &got[0].1, &id, &sign_in_sid, &alice).await;
}

#[tokio::test]
async fn oidc_full_code_flow_confidential_client() {
    full_flow(ClientKind::Web).await;
}

#[tokio::test]
async fn oidc_full_code_flow_public_client() {
    full_flow(ClientKind::Public).await;
}

/// A signed-in browser and a first-party client: authorization requests go straight back.
struct Fixture {
    app: TestApp,
    browser: Browser,
    id: String,
    secret: String,
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

impl Fixture {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        app.add_user("alice", "user").await;
        let (id, secret) = register(&app, "ci", ClientKind::Web, true).await;
        let mut browser = Browser::default();
        let r = browser
            .request(
                Method::POST,
                &app.url("/login"),
                &form(&[("username", "alice"), ("password", PASSWORD)]),
                &[],
            )
            .await;
        assert_eq!(r.status, 303);
        Fixture {
            app,
            browser,
            id,
            secret: secret.unwrap(),
        }
    }

    fn auth_url(&self, extra: &[(&str, &str)]) -> String {
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", self.id.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "s-1"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        for (k, v) in extra {
            pairs.retain(|(n, _)| n != k);
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        self.app.url(&format!("/oauth2/authorize?{}", form(&pairs)))
    }

    async fn authorize(&mut self, extra: &[(&str, &str)]) -> TestResponse {
        let url = self.auth_url(extra);
        self.browser.get(&url).await
    }

    async fn code(&mut self) -> String {
        let to = location(&self.authorize(&[]).await);
        query_of(&to)["code"].clone()
    }

    async fn exchange(&self, code: &str, verifier: &str, redirect: &str) -> TestResponse {
        let body = form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ]);
        let auth = crate::helpers::basic(&self.id, &self.secret);
        self.app
            .client
            .send(
                Method::POST,
                &self.app.url("/oauth2/token"),
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("authorization", &auth),
                ],
                body.as_bytes(),
            )
            .await
    }
}

#[tokio::test]
async fn oidc_pkce_missing_plain_or_wrong_is_refused() {
    let mut f = Fixture::new().await;
    for (extra, error) in [
        (
            vec![("code_challenge", ""), ("code_challenge_method", "")],
            "invalid_request",
        ),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
    ] {
        let to = location(&f.authorize(&extra).await);
        let q = query_of(&to);
        assert_eq!(q["error"], error, "{extra:?}");
        assert_eq!(q["state"], "s-1");
        assert_eq!(q["iss"], f.app.base);
        assert!(!q.contains_key("code"));
    }
    let code = f.code().await;
    let wrong = "x".repeat(43);
    let r = f.exchange(&code, &wrong, REDIRECT).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"].clone()),
        (400, "invalid_grant".into())
    );
    // The code is spent by the failed attempt.
    let r = f.exchange(&code, VERIFIER, REDIRECT).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn oidc_code_replay_revokes_the_first_tokens() {
    let mut f = Fixture::new().await;
    let code = f.code().await;
    let first = f.exchange(&code, VERIFIER, REDIRECT).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let at = first.json()["access_token"].as_str().unwrap().to_owned();
    let userinfo = f
        .app
        .client
        .get_bearer(&f.app.url("/oauth2/userinfo"), &at)
        .await;
    assert_eq!(userinfo.status, 200);
    let again = f.exchange(&code, VERIFIER, REDIRECT).await;
    assert_eq!(again.status, 400);
    assert_eq!(again.json()["error"], "invalid_grant");
    let userinfo = f
        .app
        .client
        .get_bearer(&f.app.url("/oauth2/userinfo"), &at)
        .await;
    assert_eq!(userinfo.status, 401, "the first tokens are revoked");
}

#[tokio::test]
async fn oidc_code_bound_to_client_redirect_and_lifetime() {
    let mut f = Fixture::new().await;
    // Another client.
    let (other, other_secret) = register(&f.app, "other", ClientKind::Web, true).await;
    let code = f.code().await;
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ]);
    let auth = crate::helpers::basic(&other, &other_secret.unwrap());
    let r = f
        .app
        .client
        .send(
            Method::POST,
            &f.app.url("/oauth2/token"),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &auth),
            ],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_grant");
    // Another redirect URI.
    let code = f.code().await;
    let r = f
        .exchange(&code, VERIFIER, "https://rp.example/other")
        .await;
    assert_eq!(r.json()["error"], "invalid_grant");
    // Expired: 60 s.
    let code = f.code().await;
    f.app.advance(61);
    let r = f.exchange(&code, VERIFIER, REDIRECT).await;
    assert_eq!(r.json()["error"], "invalid_grant");
    // A wrong secret.
    let code = f.code().await;
    f.secret = "wbs_wrong".into();
    let r = f.exchange(&code, VERIFIER, REDIRECT).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn oidc_redirect_tricks_are_shown_never_redirected() {
    let mut f = Fixture::new().await;
    for trick in [
        "https://rp.example/c",
        "https://rp.example/cb/extra",
        "https://rp.example/cb/../admin",
        "https://evil@rp.example/cb",
        "https://rp.example:8443/cb",
        "https://rp.example/cb#x",
        "https://RP.example/cb",
        "https://rp.example/CB",
        "com.evil.app:/cb",
    ] {
        let r = f.authorize(&[("redirect_uri", trick)]).await;
        assert_eq!(r.status, 400, "{trick}");
        assert!(r.header("location").is_none(), "{trick}");
        assert!(r.text().contains("redirect_uri"), "{trick}");
    }
    let r = f.authorize(&[("client_id", "cli_nobody")]).await;
    assert_eq!(r.status, 400);
    assert!(r.header("location").is_none());
}

#[tokio::test]
async fn oidc_prompt_none_without_a_session_is_login_required() {
    let mut f = Fixture::new().await;
    f.browser.jar.clear();
    let to = location(&f.authorize(&[("prompt", "none")]).await);
    let q = query_of(&to);
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "s-1");
    assert_eq!(q["iss"], f.app.base);
}

#[tokio::test]
async fn oidc_consent_needs_its_csrf_token() {
    let app = TestApp::spawn().await;
    app.add_user("bob", "user").await;
    let (id, _) = register(&app, "thirdparty", ClientKind::Public, false).await;
    let mut browser = Browser::default();
    let r = browser
        .request(
            Method::POST,
            &app.url("/login"),
            &form(&[("username", "bob"), ("password", PASSWORD)]),
            &[],
        )
        .await;
    assert_eq!(r.status, 303);
    let auth = app.url(&format!(
        "/oauth2/authorize?{}",
        form(&[
            ("response_type", "code"),
            ("client_id", &id),
            ("redirect_uri", "com.example.app:/cb"),
            ("scope", "openid"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
    ));
    let page = browser.get(&auth).await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("form-action 'self' com.example.app:"));
    // A forged post: no token, a wrong one, or from another origin.
    let mut pairs: Vec<(String, String)> = query_of(&auth).into_iter().collect();
    pairs.push(("decision".into(), "allow".into()));
    let base: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = browser
        .request(Method::POST, &app.url("/oauth2/consent"), &form(&base), &[])
        .await;
    assert_eq!(r.status, 403);
    let mut wrong = base.clone();
    wrong.push(("csrf_token", "forged"));
    let r = browser
        .request(
            Method::POST,
            &app.url("/oauth2/consent"),
            &form(&wrong),
            &[],
        )
        .await;
    assert_eq!(r.status, 403);
    let csrf = browser.jar["__Host-wb_csrf"].clone();
    let mut good = base.clone();
    good.push(("csrf_token", &csrf));
    let r = browser
        .request(
            Method::POST,
            &app.url("/oauth2/consent"),
            &form(&good),
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(r.status, 403);
    let bob = app.store.user_by_name("bob").await.unwrap().unwrap().id;
    assert!(app.store.user_consents(&bob).await.unwrap().is_empty());
    // The real one: a code back to the private-use scheme.
    let r = consent(&app, &mut browser, &auth, "allow").await;
    assert!(location(&r).starts_with("com.example.app:/cb?code="));
    // Listed on the account page, and withdrawn from it.
    let account = browser.get(&app.url("/account")).await;
    assert!(account.text().contains("thirdparty"));
    let r = browser
        .request(
            Method::POST,
            &app.url(&format!("/account/apps/{id}/withdraw")),
            &form(&[("csrf_token", &csrf)]),
            &[],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let account = browser.get(&app.url("/account")).await;
    assert!(!account.text().contains("thirdparty"));
    // So the next request asks again.
    assert_eq!(browser.get(&auth).await.status, 200);
}

#[tokio::test]
async fn oidc_discovery_is_consistent_with_rfc8414() {
    let app = TestApp::spawn().await;
    let oidc = app
        .client
        .get(&app.url("/.well-known/openid-configuration"), &[])
        .await
        .json();
    let oauth = app
        .client
        .get(&app.url("/.well-known/oauth-authorization-server"), &[])
        .await
        .json();
    for key in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "code_challenge_methods_supported",
        "response_types_supported",
    ] {
        assert_eq!(oidc[key], oauth[key], "{key}");
    }
    assert_eq!(oidc["end_session_endpoint"], app.url("/oauth2/logout"));
    assert_eq!(oidc["backchannel_logout_supported"], true);
    assert_eq!(oidc["backchannel_logout_session_supported"], true);
    assert_eq!(oidc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        oidc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
}

#[tokio::test]
async fn oidc_acr_values_sign_in_again_only_when_a_factor_can_reach_them() {
    let mut f = Fixture::new().await;
    let mfa = [("acr_values", "urn:wristband:acr:mfa")];
    // No factor: acr_values are voluntary, the code comes with what the session has.
    let to = location(&f.authorize(&mfa).await);
    assert!(query_of(&to).contains_key("code"), "{to}");
    // Once alice has an authenticator, her password session is signed in again.
    let (at, _) = f.app.tokens("alice").await;
    f.app.enrol_totp(&at).await;
    let to = location(&f.authorize(&mfa).await);
    assert!(!to.contains("code="), "{to}");
    assert!(to.contains("login") || to.contains("resume"), "{to}");
    // Without acr_values the same session still gets a code; prompt=none never signs in.
    let to = location(&f.authorize(&[]).await);
    assert!(query_of(&to).contains_key("code"), "{to}");
    let to = location(&f.authorize(&[mfa[0], ("prompt", "none")]).await);
    assert!(query_of(&to).contains_key("code"), "{to}");
}

/// The value of the input `name` in a page (HTML-escaped slashes undone).
fn input_value(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no input {name}"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].replace("&#x2f;", "/")
}

#[tokio::test]
async fn oidc_id_and_access_tokens_say_a_second_factor_was_used() {
    let mut f = Fixture::new().await;
    let (at, _) = f.app.tokens("alice").await;
    let totp = f.app.enrol_totp(&at).await;
    // A new sign-in on the hosted pages: the password, then the code.
    f.browser.jar.clear();
    let page = f
        .browser
        .request(
            Method::POST,
            &f.app.url("/login"),
            &form(&[("username", "alice"), ("password", PASSWORD)]),
            &[],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    let step = input_value(&page.text(), "mfa_token");
    let code = totp.code_at(f.app.now());
    let done = f
        .browser
        .request(
            Method::POST,
            &f.app.url("/login/mfa"),
            &form(&[("mfa_token", &step), ("method", "totp"), ("code", &code)]),
            &[],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.text());
    let signed_in_at = f.app.now();
    f.app.advance(20);
    let code = f.code().await;
    let r = f.exchange(&code, VERIFIER, REDIRECT).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    for token in ["id_token", "access_token"] {
        let c = crate::helpers::claims(j[token].as_str().unwrap());
        assert_eq!(
            c["amr"],
            serde_json::json!(["pwd", "otp", "mfa"]),
            "{token}: {c}"
        );
        assert_eq!(c["acr"], "urn:wristband:acr:mfa", "{token}");
        assert_eq!(c["auth_time"], serde_json::json!(signed_in_at), "{token}");
    }
}
