//! Step-up authentication (RFC 9470) at the HTTP layer: per-route requirements
//! ([`Verifier::require_authn`]), the verifier-wide one ([`VerifierBuilder::require_authn`]),
//! the exact 401 challenge and body, `max_age` by the verifier's clock, claims that are
//! missing or malformed, and the `api_service` example with `--admin-requires-mfa`.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde_json::json;
use wristband_jose::authn::{ACR_MFA, ACR_PHR, ACR_PWD};
use wristband_jose::{Clock as _, FixedClock, UnixTime};
use wristband_testkit::{keys, Minter};
use wristband_verify::{
    AuthErrorKind, AuthnRequirement, Claims, RequireTokenLayer, Verifier, STEP_UP_DESCRIPTION,
};

use crate::api_service::api_service_router_with;
use crate::{bearer, call, get as get_req, minter, pinned_clock, Reply};

/// The challenge of an mfa requirement, realm `orders`.
const MFA_CHALLENGE: &str = "Bearer realm=\"orders\", error=\"insufficient_user_authentication\", \
     error_description=\"A different authentication level is required\", \
     acr_values=\"urn:wristband:acr:mfa urn:wristband:acr:phr\"";

const MINUTE: Duration = Duration::from_secs(60);

async fn verifier_with(
    m: &Minter,
    clock: Arc<FixedClock>,
    wide: Option<AuthnRequirement>,
) -> Verifier {
    let mut b = Verifier::builder(&m.iss, &m.aud)
        .keys(keys::key_set([m.key()]))
        .realm("orders")
        .clock(clock);
    if let Some(r) = wide {
        b = b.require_authn(r);
    }
    b.build().await.unwrap()
}

/// `/open` needs a valid token, `/mfa`, `/phr` and `/fresh` a requirement each.
fn routes(verifier: &Verifier) -> Router {
    let who = || get(|c: Claims| async move { c.sub.clone() });
    let stepped = |path: &str, r: AuthnRequirement| {
        Router::new()
            .route(path, who())
            .route_layer(verifier.require_authn(r))
    };
    Router::new()
        .route("/open", who())
        .merge(stepped("/mfa", AuthnRequirement::mfa()))
        .merge(stepped("/phr", AuthnRequirement::phr()))
        .merge(stepped(
            "/fresh",
            AuthnRequirement::new().max_age(Duration::from_secs(300)),
        ))
        .layer(RequireTokenLayer::new(verifier.clone()))
}

async fn ask(app: &Router, path: &str, token: &str) -> Reply {
    call(app, get_req(path, &[("authorization", &bearer(token))])).await
}

fn assert_step_up(r: &Reply, challenge: &str, body: serde_json::Value, what: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
    assert_eq!(r.www(), challenge, "{what}");
    assert_eq!(r.headers["content-type"], "application/json", "{what}");
    assert_eq!(r.json(), body, "{what}");
}

fn mfa_body() -> serde_json::Value {
    json!({
        "error": "insufficient_user_authentication",
        "error_description": STEP_UP_DESCRIPTION,
        "acr_values": "urn:wristband:acr:mfa urn:wristband:acr:phr",
    })
}

#[tokio::test]
async fn mfa_routes_refuse_password_tokens_with_the_rfc9470_challenge() {
    let m = minter();
    let verifier = verifier_with(&m, pinned_clock(), None).await;
    let app = routes(&verifier);
    let pwd = m.signed_in("alice", &["pwd"], ACR_PWD, MINUTE);
    let mfa = m.signed_in("alice", &["pwd", "otp", "mfa"], ACR_MFA, MINUTE);
    let phr = m.signed_in("alice", &["hwk", "user"], ACR_PHR, MINUTE);

    assert_eq!(ask(&app, "/open", &pwd).await.status, StatusCode::OK);
    let r = ask(&app, "/mfa", &pwd).await;
    assert_step_up(&r, MFA_CHALLENGE, mfa_body(), "pwd on mfa");
    // Cached now: the second refusal is the same, byte for byte.
    assert_eq!(ask(&app, "/mfa", &pwd).await, r);

    for (token, what) in [(&mfa, "mfa"), (&phr, "phr")] {
        let r = ask(&app, "/mfa", token).await;
        assert_eq!(r.status, StatusCode::OK, "{what}");
        assert_eq!(r.body, b"alice", "{what}");
    }
    // `mfa` in `amr` is enough for require_mfa, whatever the acr says.
    let amr_only = m.signed_in("alice", &["pwd", "mfa"], "urn:example:other", MINUTE);
    assert_eq!(ask(&app, "/mfa", &amr_only).await.status, StatusCode::OK);
    // No authentication claims at all: refused.
    let bare = m.token("alice", None);
    assert_step_up(
        &ask(&app, "/mfa", &bare).await,
        MFA_CHALLENGE,
        mfa_body(),
        "bare",
    );
}

#[tokio::test]
async fn phr_routes_refuse_mfa() {
    let m = minter();
    let app = routes(&verifier_with(&m, pinned_clock(), None).await);
    let challenge = "Bearer realm=\"orders\", error=\"insufficient_user_authentication\", \
         error_description=\"A different authentication level is required\", \
         acr_values=\"urn:wristband:acr:phr\"";
    let body = json!({
        "error": "insufficient_user_authentication",
        "error_description": STEP_UP_DESCRIPTION,
        "acr_values": "urn:wristband:acr:phr",
    });
    for (amr, acr) in [
        (&["pwd", "otp", "mfa"][..], ACR_MFA),
        (&["pwd"][..], ACR_PWD),
        // `mfa` in amr does not make a passkey sign-in.
        (&["hwk", "mfa"][..], ACR_MFA),
    ] {
        let token = m.signed_in("bob", amr, acr, MINUTE);
        assert_step_up(
            &ask(&app, "/phr", &token).await,
            challenge,
            body.clone(),
            acr,
        );
    }
    let phr = m.signed_in("bob", &["hwk"], ACR_PHR, MINUTE);
    assert_eq!(ask(&app, "/phr", &phr).await.status, StatusCode::OK);
}

#[tokio::test]
async fn max_age_follows_the_verifiers_clock() {
    let m = minter();
    // The clock is a minute ahead of the wall clock the tokens are minted by.
    let clock = pinned_clock();
    let app = routes(&verifier_with(&m, clock.clone(), None).await);
    let challenge = "Bearer realm=\"orders\", error=\"insufficient_user_authentication\", \
         error_description=\"A different authentication level is required\", max_age=300";
    let body = json!({
        "error": "insufficient_user_authentication",
        "error_description": STEP_UP_DESCRIPTION,
        "max_age": 300,
    });
    // Signed in 3 minutes before issue: 4 minutes old by the verifier's clock.
    let token = m.signed_in("carol", &["pwd"], ACR_PWD, 3 * MINUTE);
    assert_eq!(ask(&app, "/fresh", &token).await.status, StatusCode::OK);
    // Two minutes later the same (cached, unexpired) token is 6 minutes old.
    clock.advance(2 * MINUTE);
    assert_eq!(ask(&app, "/open", &token).await.status, StatusCode::OK);
    assert_step_up(
        &ask(&app, "/fresh", &token).await,
        challenge,
        body.clone(),
        "old",
    );
    // Signed in 10 minutes ago: refused from the start.
    let old = m.signed_in("carol", &["pwd"], ACR_PWD, 10 * MINUTE);
    assert_step_up(
        &ask(&app, "/fresh", &old).await,
        challenge,
        body.clone(),
        "older",
    );
    // Without auth_time there is no age to check: refused.
    let bare = m.token("carol", None);
    assert_step_up(
        &ask(&app, "/fresh", &bare).await,
        challenge,
        body,
        "no auth_time",
    );
}

#[tokio::test]
async fn malformed_authentication_claims_fail_closed() {
    let m = minter();
    let app = routes(&verifier_with(&m, pinned_clock(), None).await);
    let signed = |claim: &str, value: serde_json::Value| {
        let c = m.claims("dave").with_claim(claim, value).unwrap();
        m.sign(&c)
    };
    for (token, path, what) in [
        (signed("amr", json!("mfa")), "/mfa", "amr not an array"),
        (
            signed("amr", json!(["pwd", {"m": "mfa"}])),
            "/mfa",
            "amr not strings",
        ),
        (signed("acr", json!([ACR_MFA])), "/mfa", "acr not a string"),
        (
            signed("acr", json!([ACR_PHR])),
            "/phr",
            "phr acr not a string",
        ),
        (
            signed("auth_time", json!("1700000000")),
            "/fresh",
            "auth_time a string",
        ),
        (
            signed("auth_time", json!(-1)),
            "/fresh",
            "auth_time negative",
        ),
    ] {
        let r = ask(&app, path, &token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(
            r.www()
                .contains("error=\"insufficient_user_authentication\""),
            "{what}: {}",
            r.www()
        );
        // The token itself is valid.
        assert_eq!(
            ask(&app, "/open", &token).await.status,
            StatusCode::OK,
            "{what}"
        );
    }
    // An auth_time later than the token's iat is refused too.
    let now = wristband_jose::SystemClock.now();
    let future = m.sign(&m.claims_at("dave", now).with_authentication(
        &["pwd"],
        ACR_PWD,
        UnixTime::from_secs(now.as_secs() + 30),
    ));
    assert_eq!(
        ask(&app, "/fresh", &future).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_verifier_wide_requirement_applies_to_every_route_and_to_authenticate() {
    let m = minter();
    let clock = pinned_clock();
    let wide = AuthnRequirement::mfa().max_age(Duration::from_secs(600));
    let verifier = verifier_with(&m, clock.clone(), Some(wide.clone())).await;
    assert_eq!(verifier.authn_requirement(), Some(&wide));
    let app = routes(&verifier);
    let challenge = format!("{MFA_CHALLENGE}, max_age=600");
    let body = json!({
        "error": "insufficient_user_authentication",
        "error_description": STEP_UP_DESCRIPTION,
        "acr_values": "urn:wristband:acr:mfa urn:wristband:acr:phr",
        "max_age": 600,
    });
    let pwd = m.signed_in("erin", &["pwd"], ACR_PWD, MINUTE);
    let mfa = m.signed_in("erin", &["pwd", "otp", "mfa"], ACR_MFA, MINUTE);
    for pass in ["first (verified)", "second (cached)"] {
        let r = ask(&app, "/open", &pwd).await;
        assert_step_up(&r, &challenge, body.clone(), pass);
        assert_eq!(
            ask(&app, "/open", &mfa).await.status,
            StatusCode::OK,
            "{pass}"
        );
    }
    // The route's own requirement still applies on top of the verifier's.
    let r = ask(&app, "/phr", &mfa).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.www().ends_with("acr_values=\"urn:wristband:acr:phr\""),
        "{}",
        r.www()
    );
    // A form body is scanned before the check: the same refusal.
    let form = http::Request::post("/open")
        .header("authorization", bearer(&pwd))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from("a=1"))
        .unwrap();
    let app_post = Router::new()
        .route(
            "/open",
            axum::routing::post(|c: Claims| async move { c.sub.clone() }),
        )
        .layer(RequireTokenLayer::new(verifier.clone()));
    assert_step_up(&call(&app_post, form).await, &challenge, body, "form");

    // `authenticate` (what the gate calls) applies it too.
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", bearer(&pwd).parse().unwrap());
    let e = verifier
        .authenticate(&http::Method::GET, None, &headers)
        .await
        .unwrap_err();
    match e.kind() {
        AuthErrorKind::InsufficientUserAuthentication {
            acr_values,
            max_age,
        } => {
            assert_eq!(acr_values, &[ACR_MFA, ACR_PHR]);
            assert_eq!(*max_age, Some(600));
        }
        other => panic!("{other:?}"),
    }
    headers.insert("authorization", bearer(&mfa).parse().unwrap());
    assert!(verifier
        .authenticate(&http::Method::GET, None, &headers)
        .await
        .is_ok());
    // Ten minutes on, the mfa sign-in is too old for the verifier-wide max_age.
    clock.advance(10 * MINUTE);
    assert_eq!(
        ask(&app, "/open", &mfa).await.status,
        StatusCode::UNAUTHORIZED
    );
    // `verify` checks the token alone.
    assert!(verifier.verify(&pwd).await.is_ok());
}

#[tokio::test]
async fn claims_require_authn_in_a_handler() {
    let m = minter();
    let verifier = verifier_with(&m, pinned_clock(), None).await;
    let v = verifier.clone();
    let app = Router::new()
        .route(
            "/payments",
            get(move |c: Claims| {
                let v = v.clone();
                async move {
                    c.require_authn(&AuthnRequirement::phr(), v.now())?;
                    Ok::<_, wristband_verify::AuthError>("paid")
                }
            }),
        )
        .layer(RequireTokenLayer::new(verifier));
    let mfa = m.signed_in("frank", &["pwd", "otp", "mfa"], ACR_MFA, MINUTE);
    let r = ask(&app, "/payments", &mfa).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.www().ends_with("acr_values=\"urn:wristband:acr:phr\""));
    let phr = m.signed_in("frank", &["hwk"], ACR_PHR, MINUTE);
    assert_eq!(ask(&app, "/payments", &phr).await.body, b"paid");
}

#[tokio::test]
async fn the_authn_layer_without_the_token_layer_fails_closed() {
    let m = minter();
    let verifier = verifier_with(&m, pinned_clock(), None).await;
    let app = Router::new()
        .route("/mfa", get(|| async { "secret" }))
        .layer(verifier.require_authn(AuthnRequirement::mfa()));
    let mfa = m.signed_in("gina", &["mfa"], ACR_MFA, MINUTE);
    let r = ask(&app, "/mfa", &mfa).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.www(), "Bearer realm=\"orders\"");
}

#[tokio::test]
async fn api_service_admin_requires_mfa_in_process() {
    let m = minter();
    let verifier = verifier_with(&m, pinned_clock(), None).await;
    let strict = api_service_router_with(verifier.clone(), true);
    let lax = api_service_router_with(verifier, false);
    let pwd_admin = {
        let mut c = m.claims("root").with_authentication(
            &["pwd"],
            ACR_PWD,
            wristband_jose::SystemClock.now(),
        );
        c.role = Some("admin".into());
        m.sign(&c)
    };
    let mfa_user = m.signed_in("user", &["pwd", "otp", "mfa"], ACR_MFA, MINUTE);
    let mfa_admin = {
        let mut c = m.claims("root").with_authentication(
            &["pwd", "otp", "mfa"],
            ACR_MFA,
            wristband_jose::SystemClock.now(),
        );
        c.role = Some("admin".into());
        m.sign(&c)
    };
    assert_eq!(ask(&lax, "/admin", &pwd_admin).await.status, StatusCode::OK);
    let r = ask(&strict, "/admin", &pwd_admin).await;
    assert_step_up(&r, MFA_CHALLENGE, mfa_body(), "pwd admin");
    assert_eq!(
        ask(&strict, "/admin", &mfa_user).await.status,
        StatusCode::FORBIDDEN
    );
    let r = ask(&strict, "/admin", &mfa_admin).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"sub": "root", "role": "admin"}));
    // Other routes are unchanged.
    assert_eq!(
        ask(&strict, "/resource", &pwd_admin).await.status,
        StatusCode::OK
    );
}

/// `api_service --admin-requires-mfa` as a real process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_service_admin_requires_mfa_flag() {
    use wristband_testkit::http::Client;
    use wristband_testkit::process::ServiceProcess;
    use wristband_testkit::JwksServer;

    let key = keys::fixed(wristband_jose::Algorithm::ES256, 12);
    let server = JwksServer::start(keys::jwks([&key])).await;
    let m = Minter::new(key, server.issuer(), crate::AUDIENCE);
    let binary = crate::api_service_binary();
    let issuer = server.issuer();
    let jwks = server.jwks_url();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--issuer",
        &issuer,
        "--audience",
        crate::AUDIENCE,
        "--jwks",
        &jwks,
        "--admin-requires-mfa",
    ];
    let svc = ServiceProcess::spawn(&binary, &args).await;
    let client = Client::new();
    let admin = |amr: &[&str], acr: &str| {
        let mut c =
            m.claims("root")
                .with_authentication(amr, acr, wristband_jose::SystemClock.now());
        c.role = Some("admin".into());
        m.sign(&c)
    };
    let url = svc.url("/admin");
    let r = client.get_bearer(&url, &admin(&["pwd"], ACR_PWD)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            "Bearer realm=\"wristband\", error=\"insufficient_user_authentication\", \
             error_description=\"A different authentication level is required\", \
             acr_values=\"urn:wristband:acr:mfa urn:wristband:acr:phr\""
        )
    );
    assert_eq!(r.json()["error"], "insufficient_user_authentication");
    let r = client
        .get_bearer(&url, &admin(&["pwd", "otp", "mfa"], ACR_MFA))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["role"], "admin");
    let r = client
        .get_bearer(&url, &m.signed_in("u", &["hwk"], ACR_PHR, MINUTE))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "phr but not admin");
    let r = client
        .get_bearer(&svc.url("/resource"), &admin(&["pwd"], ACR_PWD))
        .await;
    assert_eq!(r.status, StatusCode::OK, "only /admin steps up");
    svc.terminate().await;
}
