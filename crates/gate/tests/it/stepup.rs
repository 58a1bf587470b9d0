//! Step-up authentication (RFC 9470) through the gate: rules with `require = "mfa"` or
//! `"phr"`, `authn` and `max_auth_age`; a valid but too weak token gets 401
//! `insufficient_user_authentication` with the exact challenge on API calls, and browser
//! navigations are sent to sign in again with `acr_values` and `max_age` next to
//! `return_to`. `max_auth_age` follows the verifier's clock.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use http::StatusCode;
use serde_json::json;
use wristband_gate::{router, Gate, GateOptions, Policy, PolicyHandle, INSUFFICIENT_BODY};
use wristband_jose::authn::{ACR_MFA, ACR_PHR, ACR_PWD};
use wristband_jose::{Clock as _, FixedClock, UnixTime};
use wristband_testkit::{keys, Minter};
use wristband_verify::{AuthnRequirement, CookieSource, Verifier, STEP_UP_DESCRIPTION};

use crate::*;

const STEP_UP_POLICY: &str = r#"
[[rule]]
name = "vault"
path = "/vault"
require = "mfa"

[[rule]]
name = "payments"
path = "/payments"
require = "phr"

[[rule]]
name = "settings"
path = "/settings"
require = "authenticated"
max_auth_age = "5m"

[[rule]]
name = "admin"
path = "/admin"
require = "role:admin"
authn = "mfa"
max_auth_age = "10m"

[[rule]]
name = "public"
path = "/public"
require = "anonymous"

[[rule]]
name = "app"
path = "/"
require = "authenticated"
"#;

const PREFIX: &str = "Bearer realm=\"wristband\", error=\"insufficient_user_authentication\", \
     error_description=\"A different authentication level is required\"";
const MFA_VALUES: &str = "urn:wristband:acr:mfa urn:wristband:acr:phr";
/// `MFA_VALUES` percent-encoded, as in the login URL.
const MFA_QUERY: &str = "urn%3Awristband%3Aacr%3Amfa%20urn%3Awristband%3Aacr%3Aphr";
const MINUTE: Duration = Duration::from_secs(60);

/// A clock a minute ahead of the wall clock the tokens are minted by.
fn clock() -> Arc<FixedClock> {
    let now = wristband_jose::SystemClock.now().as_secs();
    Arc::new(FixedClock::new(UnixTime::from_secs(now + 60)))
}

async fn step_up_app(
    m: &Minter,
    clock: Arc<FixedClock>,
    wide: Option<AuthnRequirement>,
    policy: &str,
) -> Router {
    let mut b = Verifier::builder(&m.iss, &m.aud)
        .keys(keys::key_set([m.key()]))
        .access_cookie(CookieSource::default())
        .clock(clock);
    if let Some(r) = wide {
        b = b.require_authn(r);
    }
    let mut options = GateOptions::for_issuer(ISS);
    options.login_url = LOGIN.into();
    router(Gate::new(
        b.build().await.unwrap(),
        PolicyHandle::new(Policy::parse(policy).unwrap()),
        options,
    ))
}

fn api(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("authorization", bearer(token)),
        ("accept", "application/json".to_owned()),
    ]
}

fn nav(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("cookie", format!("__Host-wb_at={token}")),
        ("accept", CHROME_ACCEPT.to_owned()),
        ("sec-fetch-mode", "navigate".to_owned()),
    ]
}

fn borrow<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    h.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn assert_step_up(r: &Reply, challenge: &str, body: serde_json::Value, what: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
    assert_eq!(r.header("www-authenticate"), Some(challenge), "{what}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    assert_eq!(r.header("location"), None, "{what}");
    assert_eq!(r.json(), body, "{what}");
    assert!(r.identity().is_empty(), "{what}");
}

fn signed_in_as(m: &Minter, role: Option<&str>, amr: &[&str], acr: &str, ago: Duration) -> String {
    let now = wristband_jose::SystemClock.now();
    let mut c = m.claims("user-1").with_authentication(
        amr,
        acr,
        UnixTime::from_secs(now.as_secs() - ago.as_secs()),
    );
    c.role = role.map(str::to_owned);
    m.sign(&c)
}

#[tokio::test]
async fn api_calls_get_the_rfc9470_challenge_at_every_endpoint() {
    let m = minter();
    let app = step_up_app(&m, clock(), None, STEP_UP_POLICY).await;
    let pwd = m.signed_in("user-1", &["pwd"], ACR_PWD, MINUTE);
    let mfa = m.signed_in("user-1", &["pwd", "otp", "mfa"], ACR_MFA, MINUTE);
    let challenge = format!("{PREFIX}, acr_values=\"{MFA_VALUES}\"");
    let body = json!({
        "error": "insufficient_user_authentication",
        "error_description": STEP_UP_DESCRIPTION,
        "acr_values": MFA_VALUES,
    });
    let weak = api(&pwd);
    let weak = borrow(&weak);
    let url = "https://app.example.com/vault/box";
    let replies = [
        ("nginx", nginx(&app, "GET", url, &weak).await),
        (
            "traefik",
            traefik(&app, "GET", "app.example.com", "/vault/box", &weak).await,
        ),
        (
            "caddy",
            caddy(&app, "POST", "app.example.com", "/vault/box", &weak).await,
        ),
        (
            "envoy",
            envoy(&app, "GET", "app.example.com", "/vault/box", &weak).await,
        ),
    ];
    for (via, r) in &replies {
        assert_step_up(r, &challenge, body.clone(), via);
    }
    let strong = api(&mfa);
    let r = nginx(&app, "GET", url, &borrow(&strong)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-auth-request-amr"), Some("pwd,otp,mfa"));
    // A catch-all route does not ask for more than a valid token.
    let r = nginx(&app, "GET", "https://app.example.com/home", &weak).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn navigations_are_sent_to_sign_in_with_acr_values_and_max_age() {
    let m = minter();
    let app = step_up_app(&m, clock(), None, STEP_UP_POLICY).await;
    let pwd = m.signed_in("user-1", &["pwd"], ACR_PWD, 20 * MINUTE);
    let weak = nav(&pwd);
    let weak = borrow(&weak);
    let vault = format!(
        "{LOGIN}?return_to=https%3A%2F%2Fapp.example.com%2Fvault%3Fx%3D1&acr_values={MFA_QUERY}"
    );
    for via in [Via::Traefik, Via::Caddy] {
        let r = forward(&app, via, "GET", "app.example.com", "/vault?x=1", &weak).await;
        assert_eq!(r.status, StatusCode::FOUND, "{via:?}");
        assert_eq!(r.header("location"), Some(vault.as_str()), "{via:?}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        // A cookie POST fails the CSRF rule first; with the bearer header it is a 303.
        let r = forward(&app, via, "POST", "app.example.com", "/vault?x=1", &weak).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{via:?}");
        let posted = [
            ("authorization", bearer(&pwd)),
            ("accept", CHROME_ACCEPT.to_owned()),
        ];
        let posted = borrow(&posted);
        let r = forward(&app, via, "POST", "app.example.com", "/vault?x=1", &posted).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{via:?}");
        assert_eq!(r.header("location"), Some(vault.as_str()), "{via:?}");
    }
    // nginx: 401 with the Location for `error_page 401 =302`, and the challenge.
    let r = nginx(&app, "GET", "https://app.example.com/vault?x=1", &weak).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("location"), Some(vault.as_str()));
    assert_eq!(
        r.header("www-authenticate"),
        Some(format!("{PREFIX}, acr_values=\"{MFA_VALUES}\"").as_str())
    );
    // Envoy.
    let r = envoy(&app, "GET", "app.example.com", "/vault?x=1", &weak).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.header("location"), Some(vault.as_str()));

    // max_auth_age alone: only max_age is added.
    let r = forward(
        &app,
        Via::Traefik,
        "GET",
        "app.example.com",
        "/settings",
        &weak,
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.header("location"),
        Some(
            format!("{LOGIN}?return_to=https%3A%2F%2Fapp.example.com%2Fsettings&max_age=300")
                .as_str()
        )
    );
    // Both, for the admin rule.
    let admin = signed_in_as(&m, Some("admin"), &["pwd"], ACR_PWD, 20 * MINUTE);
    let admin = nav(&admin);
    let r = forward(
        &app,
        Via::Caddy,
        "GET",
        "app.example.com",
        "/admin",
        &borrow(&admin),
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.header("location"),
        Some(
            format!(
                "{LOGIN}?return_to=https%3A%2F%2Fapp.example.com%2Fadmin\
                 &acr_values={MFA_QUERY}&max_age=600"
            )
            .as_str()
        )
    );
    // Phr.
    let r = forward(
        &app,
        Via::Caddy,
        "GET",
        "app.example.com",
        "/payments",
        &weak,
    )
    .await;
    assert!(
        r.header("location")
            .unwrap()
            .ends_with("&acr_values=urn%3Awristband%3Aacr%3Aphr"),
        "{:?}",
        r.header("location")
    );
}

#[tokio::test]
async fn phr_rules_refuse_mfa_and_max_auth_age_follows_the_clock() {
    let m = minter();
    let clock = clock();
    let app = step_up_app(&m, clock.clone(), None, STEP_UP_POLICY).await;
    let url = "https://app.example.com/payments";
    let phr_challenge = format!("{PREFIX}, acr_values=\"urn:wristband:acr:phr\"");
    let mfa = m.signed_in("user-1", &["pwd", "otp", "mfa"], ACR_MFA, MINUTE);
    let r = nginx(&app, "GET", url, &borrow(&api(&mfa))).await;
    assert_step_up(
        &r,
        &phr_challenge,
        json!({
            "error": "insufficient_user_authentication",
            "error_description": STEP_UP_DESCRIPTION,
            "acr_values": "urn:wristband:acr:phr",
        }),
        "mfa on phr",
    );
    let phr = m.signed_in("user-1", &["hwk", "user"], ACR_PHR, MINUTE);
    assert_eq!(
        nginx(&app, "GET", url, &borrow(&api(&phr))).await.status,
        StatusCode::OK
    );

    // /settings: signed in at most 5 minutes ago by the gate's clock.
    let url = "https://app.example.com/settings";
    let age_challenge = format!("{PREFIX}, max_age=300");
    let age_body = json!({
        "error": "insufficient_user_authentication",
        "error_description": STEP_UP_DESCRIPTION,
        "max_age": 300,
    });
    let recent = m.signed_in("user-1", &["pwd"], ACR_PWD, 2 * MINUTE);
    assert_eq!(
        nginx(&app, "GET", url, &borrow(&api(&recent))).await.status,
        StatusCode::OK
    );
    clock.advance(3 * MINUTE);
    let r = nginx(&app, "GET", url, &borrow(&api(&recent))).await;
    assert_step_up(&r, &age_challenge, age_body.clone(), "6 minutes old");
    let r = nginx(&app, "GET", url, &borrow(&api(&m.token("user-1", None)))).await;
    assert_step_up(&r, &age_challenge, age_body, "no auth_time");
    // Malformed authentication claims fail closed.
    let malformed = m.sign(
        &m.claims("user-1")
            .with_claim("amr", json!("mfa"))
            .unwrap()
            .with_claim("acr", json!({"v": ACR_MFA}))
            .unwrap(),
    );
    let r = nginx(
        &app,
        "GET",
        "https://app.example.com/vault",
        &borrow(&api(&malformed)),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_role_is_checked_before_the_sign_in() {
    let m = minter();
    let app = step_up_app(&m, clock(), None, STEP_UP_POLICY).await;
    let url = "https://app.example.com/admin";
    // Not an admin: stepping up would not help, 403.
    let user = signed_in_as(&m, Some("user"), &["pwd"], ACR_PWD, MINUTE);
    let r = nginx(&app, "GET", url, &borrow(&api(&user))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body, INSUFFICIENT_BODY.as_bytes());
    let admin_pwd = signed_in_as(&m, Some("admin"), &["pwd"], ACR_PWD, MINUTE);
    let r = nginx(&app, "GET", url, &borrow(&api(&admin_pwd))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        Some(format!("{PREFIX}, acr_values=\"{MFA_VALUES}\", max_age=600").as_str())
    );
    let admin_mfa = signed_in_as(&m, Some("admin"), &["pwd", "otp", "mfa"], ACR_MFA, MINUTE);
    let r = nginx(&app, "GET", url, &borrow(&api(&admin_mfa))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-auth-request-role"), Some("admin"));
    let admin_stale = signed_in_as(
        &m,
        Some("admin"),
        &["pwd", "otp", "mfa"],
        ACR_MFA,
        11 * MINUTE,
    );
    let r = nginx(&app, "GET", url, &borrow(&api(&admin_stale))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_verifier_wide_requirement_steps_up_every_authenticated_rule() {
    let m = minter();
    let app = step_up_app(
        &m,
        clock(),
        Some(AuthnRequirement::mfa()),
        "[[rule]]\npath = \"/public\"\nrequire = \"anonymous\"\n\
         [[rule]]\npath = \"/\"\nrequire = \"authenticated\"\n",
    )
    .await;
    let pwd = m.signed_in("user-1", &["pwd"], ACR_PWD, MINUTE);
    let url = "https://app.example.com/home";
    let r = nginx(&app, "GET", url, &borrow(&api(&pwd))).await;
    assert_step_up(
        &r,
        &format!("{PREFIX}, acr_values=\"{MFA_VALUES}\""),
        json!({
            "error": "insufficient_user_authentication",
            "error_description": STEP_UP_DESCRIPTION,
            "acr_values": MFA_VALUES,
        }),
        "verifier-wide",
    );
    let r = forward(
        &app,
        Via::Traefik,
        "GET",
        "app.example.com",
        "/home",
        &borrow(&nav(&pwd)),
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.header("location"),
        Some(
            format!(
                "{LOGIN}?return_to=https%3A%2F%2Fapp.example.com%2Fhome&acr_values={MFA_QUERY}"
            )
            .as_str()
        )
    );
    // An anonymous rule still allows, without identity.
    let r = nginx(
        &app,
        "GET",
        "https://app.example.com/public",
        &borrow(&api(&pwd)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.identity().is_empty());
    let mfa = m.signed_in("user-1", &["pwd", "otp", "mfa"], ACR_MFA, MINUTE);
    assert_eq!(
        nginx(&app, "GET", url, &borrow(&api(&mfa))).await.status,
        StatusCode::OK
    );
}
