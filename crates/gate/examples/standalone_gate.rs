//! Run: `cargo run -p wristband-gate --example standalone_gate`
//!
//! A gate with a key of its own, to try the three protocols with curl and no auth
//! service: it generates an ES256 key, prints one admin and one user token (valid 15
//! minutes), serves the gate on an ephemeral port under a small policy, and prints the
//! commands to ask it as nginx, Traefik and Envoy would. `Ctrl-C` stops it.
//!
//! The policy: `/public` is anonymous, `/admin` needs the role `admin`, everything else
//! a valid token.

#![allow(clippy::print_stdout)]

use std::io::Write;
use std::time::Duration;

use wristband_gate::{router, Gate, GateOptions, Policy, PolicyHandle};
use wristband_jose::{sign, Algorithm, Claims, Clock as _, KeySet, SigningKey, SystemClock};
use wristband_serve::{shutdown_signal, ServeLimits};
use wristband_verify::{CookieSource, Verifier};

const ISSUER: &str = "https://auth.example";
const POLICY: &str = r#"
[[rule]]
path = "/public"
require = "anonymous"

[[rule]]
path = "/admin"
require = "role:admin"

[[rule]]
path = "/"
require = "authenticated"
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = SigningKey::generate(Algorithm::ES256)?;
    let token = |sub: &str, role: &str| {
        let claims = Claims::new(
            ISSUER,
            sub,
            "wristband",
            SystemClock.now(),
            Duration::from_secs(900),
        )
        .with_client_id("example")
        .with_role(role);
        sign(&key, &claims)
    };
    let (admin, user) = (token("user-admin", "admin")?, token("user-plain", "user")?);
    let verifier = Verifier::builder(ISSUER, "wristband")
        .keys(KeySet::from_keys([key.verifying_key().clone()])?)
        .access_cookie(CookieSource::default())
        .build()
        .await?;
    let gate = Gate::new(
        verifier,
        PolicyHandle::new(Policy::parse(POLICY)?),
        GateOptions::for_issuer(ISSUER),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut out = std::io::stdout();
    writeln!(out, "listening on {addr}")?;
    writeln!(out, "ADMIN={admin}")?;
    writeln!(out, "USER={user}")?;
    writeln!(out, "# nginx auth_request:")?;
    writeln!(out, "curl -i http://{addr}/authz/auth-request -H 'X-Original-URL: https://app.example.com/admin' -H 'X-Original-Method: GET' -H \"Authorization: Bearer $ADMIN\"")?;
    writeln!(
        out,
        "# Traefik forwardAuth, a browser without a session (302 to the login URL):"
    )?;
    writeln!(out, "curl -i http://{addr}/authz/forward -H 'X-Forwarded-Method: GET' -H 'X-Forwarded-Proto: https' -H 'X-Forwarded-Host: app.example.com' -H 'X-Forwarded-Uri: /orders' -H 'Accept: text/html'")?;
    writeln!(out, "# Envoy ext_authz, a user on an admin route (403):")?;
    writeln!(out, "curl -i http://{addr}/authz/ext-authz/admin -H 'Host: app.example.com' -H \"Authorization: Bearer $USER\"")?;
    out.flush()?;
    wristband_serve::serve(
        listener,
        router(gate),
        ServeLimits::default(),
        shutdown_signal(),
    )
    .await?;
    Ok(())
}
