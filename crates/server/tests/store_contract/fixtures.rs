//! Records for the tests.

use wristband_jose::Algorithm;
use wristband_server::config::TokenFormat;
use wristband_server::store::{
    ClientKind, ClientRecord, KeyRecord, KeyState, OpaqueTokenRecord, SessionRecord, StoreError,
    UserRecord,
};

pub fn user(id: &str, username: &str) -> UserRecord {
    UserRecord {
        id: id.to_owned(),
        username: username.to_owned(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1${id}"),
        role: "user".to_owned(),
        disabled: false,
        created_at: 1_000,
    }
}

pub fn session(id: &str, user_id: &str, created_at: i64) -> SessionRecord {
    SessionRecord {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        client_id: "web".to_owned(),
        created_at,
        last_used_at: created_at,
        absolute_expires_at: created_at + 86_400,
        generation: 0,
        rotated_at: None,
        revoked_at: None,
        user_agent: Some("curl/8".to_owned()),
        ip: Some("192.0.2.1".to_owned()),
        parent_id: None,
        offline: false,
        scope: None,
        amr: "pwd".to_owned(),
        auth_time: created_at,
    }
}

/// A distinct 32-byte "hash" per label.
pub fn hash(label: &str) -> Vec<u8> {
    let mut h = [0u8; 32];
    for (i, b) in label.bytes().enumerate() {
        h[i % 32] = h[i % 32].wrapping_mul(31).wrapping_add(b);
    }
    h[31] = u8::try_from(label.len() % 256).unwrap();
    let mut v = h.to_vec();
    v.extend_from_slice(label.as_bytes());
    v
}

pub fn client(id: &str, name: &str) -> ClientRecord {
    ClientRecord {
        id: id.to_owned(),
        name: name.to_owned(),
        kind: ClientKind::Service,
        secret_hash: hash(&format!("secret-{id}")),
        scopes: vec!["read".to_owned(), "write".to_owned()],
        audiences: vec!["api".to_owned(), "billing".to_owned()],
        token_format: TokenFormat::Jwt,
        created_at: 1_000,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
        first_party: false,
    }
}

pub fn opaque(jti: &str) -> OpaqueTokenRecord {
    OpaqueTokenRecord {
        jti: jti.to_owned(),
        sub: "u1".to_owned(),
        client_id: "c1".to_owned(),
        aud: "api".to_owned(),
        scope: Some("read write".to_owned()),
        role: Some("admin".to_owned()),
        sid: Some("s1".to_owned()),
        iat: 1_000,
        iat_ms: Some(1_000_250),
        exp: 2_000,
    }
}

pub fn key(kid: &str, state: KeyState, created_at: i64) -> KeyRecord {
    KeyRecord {
        kid: kid.to_owned(),
        alg: Algorithm::ES256,
        state,
        private_key: Some(format!("sealed-{kid}").into_bytes()),
        public_jwk: format!(r#"{{"kty":"EC","kid":"{kid}"}}"#),
        created_at,
        activates_at: (state == KeyState::Next).then_some(created_at + 100),
        activated_at: (state == KeyState::Current).then_some(created_at),
        retired_at: None,
        removes_at: None,
        revoked_at: None,
    }
}

pub fn is_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict))
}
