//! Who may read a relay's feed: a resource-server client's token, verified locally with
//! the relay's keys, and the one mapping of a refusal to the auth service's error answers.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use wristband_jose::{Algorithm, Claims, Policy, Verified};

use crate::cache::TokenCache;
use crate::error::Realm;
use crate::feed::FeedRevocations;
use crate::verifier::{Inner, Verifier};

/// The scope a feed reader's token must carry.
pub const SCOPE_REVOCATIONS_READ: &str = "revocations:read";

/// Reader tokens kept verified (readers are few: one per downstream verifier).
const READER_CACHE: usize = 4_096;

/// Why a feed request is refused, answered exactly as the auth service answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The cursor is not an integer: 400 `invalid_request`.
    BadCursor,
    /// No bearer token: 401 `unauthorized`, bare challenge.
    Missing,
    /// The token does not verify: 401 `invalid_token`.
    Invalid {
        /// Expired rather than otherwise bad.
        expired: bool,
    },
    /// The token verifies but is not a feed reader's: 403 `insufficient_scope`.
    Forbidden,
    /// The relay is stale under the fail-closed policy: 503 `temporarily_unavailable`.
    Unavailable,
}

fn challenge(error: Option<&str>) -> HeaderValue {
    let realm = Realm::DEFAULT;
    let text = match error {
        None => format!("Bearer realm=\"{realm}\""),
        Some(e) => format!("Bearer realm=\"{realm}\", error=\"{e}\""),
    };
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("Bearer"))
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, code, text, header) = match self {
            Refusal::BadCursor => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "invalid cursor",
                None,
            ),
            Refusal::Missing => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a bearer token is required",
                Some((WWW_AUTHENTICATE, challenge(None))),
            ),
            Refusal::Invalid { expired } => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                if expired {
                    "token expired"
                } else {
                    "token invalid"
                },
                Some((WWW_AUTHENTICATE, challenge(Some("invalid_token")))),
            ),
            Refusal::Forbidden => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "the token does not allow this",
                Some((WWW_AUTHENTICATE, challenge(Some("insufficient_scope")))),
            ),
            Refusal::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the service is temporarily unavailable",
                Some((RETRY_AFTER, HeaderValue::from_static("5"))),
            ),
        };
        let body = serde_json::json!({ "error": code, "error_description": text }).to_string();
        let mut response = (
            status,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response();
        if let Some((name, value)) = header {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// Verifies feed readers' tokens with the relay's own keys.
pub(crate) struct Readers {
    verifier: Verifier,
    audience: String,
}

impl Readers {
    /// Readers of the feed of `verifier`'s issuer: the same keys (a fetched key set stays
    /// shared, unknown-`kid` refetches included), algorithms, leeway and lifetime, the
    /// audience `<issuer>/v1/revocations`, and the feed's records as the revocation view.
    ///
    /// The policy also accepts the verifier's own audiences, so that a valid token for
    /// another audience (a user's, say) is told apart from a bad one: 403, as the auth
    /// service answers it, instead of 401.
    pub(crate) fn new(
        verifier: &Verifier,
        feed: &FeedRevocations,
    ) -> Result<Self, wristband_jose::Error> {
        let main = &verifier.0.policy;
        let audience = format!("{}/v1/revocations", main.issuer().trim_end_matches('/'));
        let mut audiences = vec![audience.clone()];
        audiences.extend(main.audiences().iter().filter(|a| **a != audience).cloned());
        let algorithms: Vec<Algorithm> = Algorithm::ALL
            .into_iter()
            .filter(|a| main.allows(*a))
            .collect();
        let policy = Policy::builder(main.issuer(), audience.clone())
            .audiences(audiences)
            .algorithms(&algorithms)
            .leeway(main.leeway())
            .max_lifetime(main.max_lifetime())
            .require_client_id(true)
            .build()?;
        let inner = Inner {
            policy,
            keys: verifier.0.keys.clone(),
            cache: Some(Arc::new(TokenCache::new(READER_CACHE))),
            // The records only, not the staleness rule: a stale relay answers 503 itself.
            revocations: Arc::clone(feed.records_arc()) as _,
            clock: Arc::clone(&verifier.0.clock),
            realm: Realm::default(),
            feed: None,
            introspector: None,
            single_key: verifier.0.single_key.clone(),
            cookies: None,
            // Readers are services with client-credentials tokens: no user signed in.
            authn: None,
        };
        Ok(Readers {
            verifier: Verifier(Arc::new(inner)),
            audience,
        })
    }

    /// The audience a reader's token must name.
    pub(crate) fn audience(&self) -> &str {
        &self.audience
    }

    /// The reader behind the request's bearer token, or why it may not read.
    pub(crate) async fn authorize(
        &self,
        headers: &HeaderMap,
    ) -> Result<Arc<Verified<Claims>>, Refusal> {
        let token = bearer(headers).ok_or(Refusal::Missing)?;
        let verified = self
            .verifier
            .verify(token)
            .await
            .map_err(|e| Refusal::Invalid {
                expired: e.is_expired(),
            })?;
        let scoped = verified
            .scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|x| x == SCOPE_REVOCATIONS_READ));
        if !verified.aud.contains(&self.audience) || !scoped {
            return Err(Refusal::Forbidden);
        }
        Ok(verified)
    }

    /// True while the reader may go on reading: its token unexpired and not revoked by a
    /// record the relay holds.
    pub(crate) fn still_valid(&self, reader: &Verified<Claims>) -> bool {
        let inner = &*self.verifier.0;
        if inner.clock.now().as_secs() >= self.expires_at(reader) {
            return false;
        }
        !(inner.key_revoked(reader) || inner.revocations.is_revoked(reader))
    }

    /// Unix seconds from which the reader's token no longer verifies (`exp` + leeway).
    pub(crate) fn expires_at(&self, reader: &Verified<Claims>) -> u64 {
        reader
            .exp
            .as_secs()
            .saturating_add(self.verifier.0.policy.leeway().as_secs())
    }

    /// Unix seconds now, by the relay's clock.
    pub(crate) fn now(&self) -> u64 {
        self.verifier.0.clock.now().as_secs()
    }
}

/// The bearer token, as the auth service reads it.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}
