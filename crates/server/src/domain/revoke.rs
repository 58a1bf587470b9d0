//! Revocation: records that reach every verifier through the feed.
//!
//! Three kinds: one token by `jti` (kept until that token's `exp`), a session by `sid`, and
//! a subject cut-off ("every token of `sub` issued at or before T"). A session or subject
//! record is kept for one access-token lifetime plus leeway after it is made: after that no
//! token it covers can still be valid, and it is pruned, so the set stays bounded.

use super::{audit, DomainError};
use crate::store::{RevocationKind, RevocationRecord, Store};

/// Clock skew allowed on top of the access-token lifetime before a record is dropped.
pub const RECORD_SLACK_SECS: i64 = 60;

/// How long records live: the longest access-token lifetime in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLifetime {
    /// The access-token lifetime, in seconds.
    pub access_ttl_secs: i64,
}

impl RecordLifetime {
    /// How long a record made now must live: the access-token lifetime plus slack.
    pub fn span(self) -> std::time::Duration {
        std::time::Duration::from_secs(
            u64::try_from(self.access_ttl_secs.saturating_add(RECORD_SLACK_SECS)).unwrap_or(0),
        )
    }

    fn expires(self, now: i64) -> i64 {
        now.saturating_add(self.access_ttl_secs)
            .saturating_add(RECORD_SLACK_SECS)
    }
}

/// A moment to the millisecond (Unix milliseconds): when a subject cut-off is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Millis(pub i64);

impl Millis {
    /// The current time of `clock`, to the millisecond.
    pub fn now(clock: &dyn wristband_jose::Clock) -> Self {
        Millis(wristband_jose::millis_i64(clock.now_millis()))
    }

    /// Whole seconds (rounded down).
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
}

/// Ends a session: its refresh tokens stop at once and its access tokens are pushed to the
/// verifiers as revoked. Returns the record, or `None` when the session was already over.
pub async fn revoke_session(
    store: &dyn Store,
    life: RecordLifetime,
    session_id: &str,
    reason: &'static str,
    now: i64,
) -> Result<Option<RevocationRecord>, DomainError> {
    let ended = store.revoke_session(session_id, reason, now).await?;
    if !ended {
        return Ok(None);
    }
    let record = store
        .add_revocation(
            RevocationKind::Sid,
            session_id,
            None,
            None,
            now,
            life.expires(now),
        )
        .await?;
    audit!(
        "session_revoked",
        session_id,
        reason,
        revocation_id = record.id
    );
    Ok(Some(record))
}

/// Ends every session of a subject and revokes every token issued to it until now. The
/// cut-off is recorded in whole seconds (`before`, which deployed verifiers read) and in
/// milliseconds (`before_ms`), so that a token issued later in the same second is not
/// covered where both sides know milliseconds.
pub async fn revoke_subject(
    store: &dyn Store,
    life: RecordLifetime,
    user_id: &str,
    reason: &'static str,
    at: Millis,
) -> Result<RevocationRecord, DomainError> {
    let now = at.secs();
    let sessions = store.revoke_user_sessions(user_id, reason, now).await?;
    let record = store
        .add_revocation(
            RevocationKind::Sub,
            user_id,
            Some(now),
            Some(at.0),
            now,
            life.expires(now),
        )
        .await?;
    audit!(
        "subject_revoked",
        user_id,
        reason,
        sessions,
        revocation_id = record.id
    );
    Ok(record)
}

/// Revokes one access token until its expiry.
pub async fn revoke_token(
    store: &dyn Store,
    jti: &str,
    exp: i64,
    reason: &'static str,
    now: i64,
) -> Result<Option<RevocationRecord>, DomainError> {
    if exp <= now {
        return Ok(None);
    }
    let expires = exp.saturating_add(RECORD_SLACK_SECS);
    let record = store
        .add_revocation(RevocationKind::Jti, jti, None, None, now, expires)
        .await?;
    audit!("token_revoked", jti, reason, revocation_id = record.id);
    Ok(Some(record))
}
