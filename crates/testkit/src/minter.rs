//! Minting access tokens, valid or deliberately broken.

use std::time::Duration;
use wristband_jose::Clock as _;

use serde_json::Value;
use wristband_jose::{dangerous, sign, Claims, SigningKey, UnixTime};

/// Signs tokens for one issuer and audience with one key.
#[derive(Debug)]
pub struct Minter {
    key: SigningKey,
    /// The `iss` of minted tokens.
    pub iss: String,
    /// The `aud` of minted tokens.
    pub aud: String,
}

impl Minter {
    /// The client id every minted token carries.
    pub const CLIENT_ID: &'static str = "test-client";

    /// A minter signing with `key`.
    pub fn new(key: SigningKey, iss: impl Into<String>, aud: impl Into<String>) -> Self {
        Minter {
            key,
            iss: iss.into(),
            aud: aud.into(),
        }
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Claims for `sub`, issued at `now`, valid for 15 minutes, with a fresh `jti`.
    pub fn claims_at(&self, sub: &str, now: UnixTime) -> Claims {
        Claims::new(
            self.iss.clone(),
            sub,
            self.aud.as_str(),
            now,
            Duration::from_secs(900),
        )
        .with_client_id(Self::CLIENT_ID)
    }

    /// Claims for `sub` issued now (wall clock).
    pub fn claims(&self, sub: &str) -> Claims {
        self.claims_at(sub, wristband_jose::SystemClock.now())
    }

    /// Signs `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        sign(&self.key, claims).expect("signing")
    }

    /// A valid token for `sub` with an optional role, issued now.
    pub fn token(&self, sub: &str, role: Option<&str>) -> String {
        let mut claims = self.claims(sub);
        claims.role = role.map(str::to_owned);
        self.sign(&claims)
    }

    /// A valid token for `sub`, issued now, from a sign-in `ago` earlier with these `amr`
    /// (RFC 8176 method names) and `acr`: the claims of step-up authentication.
    pub fn signed_in(&self, sub: &str, amr: &[&str], acr: &str, ago: Duration) -> String {
        let now = wristband_jose::SystemClock.now();
        let auth_time = UnixTime::from_secs(now.as_secs().saturating_sub(ago.as_secs()));
        self.sign(
            &self
                .claims_at(sub, now)
                .with_authentication(amr, acr, auth_time),
        )
    }

    /// A token that expired an hour ago (issued two hours ago, for one hour).
    pub fn expired(&self, sub: &str) -> String {
        let now = wristband_jose::SystemClock.now().as_secs();
        let mut claims = self.claims_at(sub, UnixTime::from_secs(now - 7200));
        claims.exp = UnixTime::from_secs(now - 3600);
        self.sign(&claims)
    }

    /// Signs `claims` under an arbitrary header (which may hold forbidden parameters).
    pub fn sign_with_header(&self, header: &Value, claims: &Claims) -> String {
        let header = serde_json::to_vec(header).unwrap();
        let payload = serde_json::to_vec(claims).unwrap();
        dangerous::sign_raw(&self.key, &header, &payload).expect("signing")
    }

    /// The standard header of this minter's key: `{alg, typ: "at+jwt", kid}`.
    pub fn header(&self) -> Value {
        serde_json::json!({
            "alg": self.key.algorithm().as_str(),
            "typ": "at+jwt",
            "kid": self.key.kid(),
        })
    }

    /// A correctly signed token whose header names `kid` instead of the key's own.
    pub fn with_kid(&self, kid: &str, sub: &str) -> String {
        let mut header = self.header();
        header["kid"] = Value::String(kid.to_owned());
        self.sign_with_header(&header, &self.claims(sub))
    }
}
