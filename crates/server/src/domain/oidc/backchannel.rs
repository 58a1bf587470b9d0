//! OpenID Connect Back-Channel Logout 1.0: when a sign-in session ends, every client that
//! took part in it (through a child session made by a code exchange) and registered a
//! `backchannel_logout_uri` gets a signed logout token by POST.
//!
//! - **The follower** ([`AuthService::run_backchannel_follower`]) follows the revocation
//!   feed inside the service: it wakes when the feed's head moves and reads the records
//!   after a durable cursor kept in the store, so that a restart, or another instance,
//!   resumes where it stopped. A `sid` record of a sign-in session, or a `sub` record (a
//!   subject cut-off: logout everywhere, a disabled user, a new password, an admin
//!   revocation) covering sign-in sessions, ends their children that are not `offline` and
//!   queues one logout token per child client with a `backchannel_logout_uri`. The queue's
//!   unique key (revocation, client, session) makes each token queued once, whatever the
//!   number of instances.
//! - **The worker** ([`AuthService::run_backchannel_worker`]) claims due deliveries with a
//!   lease (no two instances send the same one at once), signs a fresh logout token with
//!   the key ring's current key, and POSTs it. A 2xx is delivered; anything else is
//!   retried after 1 s, 2 s, 4 s ... (at most [`MAX_RETRY_SECS`] apart) until the retry
//!   window (`backchannel_retry_window`) ends, then given up with an audit event.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, Semaphore};

use crate::domain::{audit, random_id, revoke, AuthService, Chain, DomainError};
use crate::outbound::{FormPoster, POST_TIMEOUT};
use crate::store::{BackchannelRecord, RevocationKind, RevocationRecord, SessionRecord};

/// The `events` member of a logout token.
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The `typ` header of a logout token.
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";
/// A logout token's lifetime (`exp - iat`): short, it is signed afresh for every attempt.
pub const LOGOUT_TOKEN_TTL_SECS: i64 = 120;
/// The first retry waits this long; each next one twice as long as the previous one.
pub const FIRST_RETRY_SECS: i64 = 1;
/// The longest wait between two attempts.
pub const MAX_RETRY_SECS: i64 = 60;
/// How long a claimed delivery is reserved for the instance that claimed it: longer than
/// one attempt can take.
pub const LEASE_SECS: i64 = 30;
/// How often the worker looks for deliveries that nothing woke it for (retries coming
/// due, another instance's queue), and the follower retries after a store failure.
pub const POLL: Duration = Duration::from_secs(1);
/// Deliveries in flight at once per instance.
const MAX_IN_FLIGHT: usize = 64;
/// Deliveries claimed per store call.
const CLAIM_BATCH: usize = 16;
/// Revocation records read per store call by the follower.
const PAGE: u32 = 500;
/// Finished deliveries are kept this long (for inspection), then pruned.
const KEEP_FINISHED_SECS: i64 = 86_400;

/// The back-channel state of one instance: the worker's wake-up and the HTTP client (made
/// at the first delivery: it reads the platform's root certificates).
#[derive(Debug, Default)]
pub struct Backchannel {
    wake: Notify,
    poster: OnceLock<FormPoster>,
}

impl Backchannel {
    fn poster(&self) -> &FormPoster {
        self.poster.get_or_init(|| FormPoster::new(POST_TIMEOUT))
    }
}

/// The claims of a logout token (section 2.4 of the specification): no `nonce`.
#[derive(Debug, Serialize)]
struct LogoutClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: &'a str,
    sub: &'a str,
    sid: &'a str,
    events: serde_json::Value,
}

/// Signs the logout token of `delivery` at `now` with `key`: header `typ: logout+jwt`;
/// claims `iss`, `aud` (the client), `iat`, `exp` ([`LOGOUT_TOKEN_TTL_SECS`] later), `jti`,
/// `sub`, `sid` and `events`.
pub fn logout_token(
    key: &wristband_jose::SigningKey,
    issuer: &str,
    delivery: &BackchannelRecord,
    now: i64,
) -> Result<String, DomainError> {
    let claims = LogoutClaims {
        iss: issuer,
        aud: &delivery.client_id,
        iat: now,
        exp: now.saturating_add(LOGOUT_TOKEN_TTL_SECS),
        jti: &delivery.jti,
        sub: &delivery.sub,
        sid: &delivery.sid,
        events: serde_json::json!({ LOGOUT_EVENT: {} }),
    };
    wristband_jose::sign_claims(key, Some(LOGOUT_TOKEN_TYP), &claims)
        .map_err(|e| DomainError::internal_because("signing a logout token", e))
}

/// Seconds to wait after the `attempts`-th failed attempt: 1, 2, 4 ... at most
/// [`MAX_RETRY_SECS`].
pub fn retry_delay(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    FIRST_RETRY_SECS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_RETRY_SECS)
}

/// Drops deliveries finished more than a day before `now` (the janitor's job).
pub(crate) async fn prune(service: &AuthService, now: i64) -> Result<u64, DomainError> {
    let before = now.saturating_sub(KEEP_FINISHED_SECS);
    Ok(service.store.prune_backchannel(before).await?)
}

impl AuthService {
    /// Wakes the delivery worker: something was queued (or a retry may be due).
    pub fn backchannel_changed(&self) {
        self.backchannel.wake.notify_one();
    }

    /// Follows the revocation feed for back-channel logout until the service begins to shut
    /// down (see the module documentation). The server starts it once.
    pub async fn run_backchannel_follower(&self) {
        let mut stopping = self.stopping();
        let mut head = self.feed.watch_head();
        let mut cursor: Option<i64> = None;
        let mut seen: Option<Option<i64>> = None;
        let mut failed = false;
        loop {
            if *stopping.borrow() {
                return;
            }
            let now_head = *head.borrow_and_update();
            // The head also moves for heartbeats and expiries: read only for new records.
            if failed || seen != Some(now_head) {
                match self.follow(&mut cursor).await {
                    Ok(()) => {
                        failed = false;
                        seen = Some(now_head);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "back-channel logout: cannot follow the revocation feed");
                        failed = true;
                    }
                }
            }
            tokio::select! {
                r = head.changed() => if r.is_err() { return },
                () = tokio::time::sleep(POLL), if failed => {}
                _ = stopping.changed() => {}
            }
        }
    }

    /// Handles every record after the cursor, moving the durable cursor after each page.
    async fn follow(&self, cursor: &mut Option<i64>) -> Result<(), DomainError> {
        let mut at = match *cursor {
            Some(c) => c.max(self.store.backchannel_cursor().await?),
            None => self.store.backchannel_cursor().await?,
        };
        *cursor = Some(at);
        loop {
            let page = self.store.revocations_after(at, self.now(), PAGE).await?;
            let full = page.len() == PAGE as usize;
            for record in &page {
                self.on_revocation(record).await?;
                at = record.id;
                *cursor = Some(at);
            }
            if !page.is_empty() {
                self.store.advance_backchannel_cursor(at).await?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// One revocation record: the sign-in sessions it ends, if any, end their children and
    /// tell their clients.
    async fn on_revocation(&self, record: &RevocationRecord) -> Result<(), DomainError> {
        match record.kind {
            RevocationKind::Sid => {
                if let Some(session) = self.store.session(&record.value).await? {
                    if session.parent_id.is_none() {
                        self.end_children(record, &session).await?;
                    }
                }
            }
            RevocationKind::Sub => {
                let at = record.before.unwrap_or(record.created_at);
                let sessions = self.store.sign_in_sessions_at(&record.value, at).await?;
                for session in &sessions {
                    self.end_children(record, session).await?;
                }
            }
            RevocationKind::Jti | RevocationKind::Kid => {}
        }
        Ok(())
    }

    /// Ends the children of an ended sign-in session that are not `offline`, and queues a
    /// logout token for each of its clients that has a `backchannel_logout_uri`.
    async fn end_children(
        &self,
        record: &RevocationRecord,
        sign_in: &SessionRecord,
    ) -> Result<(), DomainError> {
        let children = self.store.sessions_by_parent(&sign_in.id).await?;
        if children.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let mut ended = false;
        let mut clients: BTreeSet<String> = BTreeSet::new();
        for child in children {
            if !child.offline && child.revoked_at.is_none() {
                let life = self.record_lifetime();
                let reason = "sign_in_session_ended";
                ended |= revoke::revoke_session(&*self.store, life, &child.id, reason, now)
                    .await?
                    .is_some();
            }
            clients.insert(child.client_id);
        }
        if ended {
            self.feed_changed();
        }
        let mut queued = false;
        for client_id in clients {
            let Some(client) = self.store.client(&client_id).await? else {
                continue;
            };
            let Some(uri) = client.backchannel_logout_uri else {
                continue;
            };
            let delivery = BackchannelRecord {
                id: 0,
                revocation_id: record.id,
                client_id,
                sid: sign_in.id.clone(),
                sub: sign_in.user_id.clone(),
                uri,
                jti: random_id("blt_")?,
                created_at: now,
                attempts: 0,
                next_attempt_at: now,
            };
            if self.store.enqueue_backchannel(&delivery).await? {
                self.metrics.backchannel.queued.inc();
                audit!(
                    "backchannel_queued",
                    client_id = %delivery.client_id,
                    session_id = %delivery.sid,
                    user_id = %delivery.sub,
                    revocation_id = record.id
                );
                queued = true;
            }
        }
        if queued {
            self.backchannel_changed();
        }
        Ok(())
    }

    /// Delivers queued logout tokens until the service begins to shut down (see the module
    /// documentation). The server starts it once.
    pub async fn run_backchannel_worker(self: &Arc<Self>) {
        let mut stopping = self.stopping();
        let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        loop {
            if *stopping.borrow() {
                return;
            }
            let free = permits.available_permits().min(CLAIM_BATCH);
            let mut more = false;
            if free > 0 {
                let now = self.now();
                let limit = u32::try_from(free).unwrap_or(1);
                match self
                    .store
                    .claim_backchannel(now, now.saturating_add(LEASE_SECS), limit)
                    .await
                {
                    Ok(claimed) => {
                        more = claimed.len() == free;
                        for delivery in claimed {
                            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                                return;
                            };
                            let service = Arc::clone(self);
                            tokio::spawn(async move {
                                service.deliver(delivery).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "back-channel logout: cannot claim deliveries");
                    }
                }
            }
            if more {
                continue;
            }
            tokio::select! {
                () = self.backchannel.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                _ = stopping.changed() => {}
            }
        }
    }

    /// One attempt at one claimed delivery, and its outcome in the store (then in the
    /// metrics and the audit log).
    async fn deliver(&self, delivery: BackchannelRecord) {
        let outcome = self.attempt(&delivery).await;
        let now = self.now();
        let metrics = &self.metrics.backchannel;
        let (client_id, session_id, attempts) =
            (&delivery.client_id, &delivery.sid, delivery.attempts);
        let result = match outcome {
            Ok(()) => self
                .store
                .backchannel_delivered(delivery.id, now)
                .await
                .map(|_| {
                    metrics.delivered.inc();
                    audit!("backchannel_delivered", client_id = %client_id, session_id = %session_id, attempts);
                }),
            Err(error) => {
                let next = now.saturating_add(retry_delay(attempts));
                let window = wristband_jose::secs_i64(self.config.backchannel_retry_window);
                if next > delivery.created_at.saturating_add(window) {
                    let done = self.store.backchannel_gave_up(delivery.id, now).await;
                    metrics.failures.inc();
                    metrics.given_up.inc();
                    tracing::warn!(
                        target: "wristband::audit",
                        event = "backchannel_given_up",
                        client_id = %client_id,
                        session_id = %session_id,
                        attempts,
                        error = %Chain(&error),
                    );
                    done.map(drop)
                } else {
                    let done = self.store.backchannel_retry_at(delivery.id, next).await;
                    metrics.failures.inc();
                    audit!(
                        "backchannel_failed",
                        client_id = %client_id,
                        session_id = %session_id,
                        attempts,
                        retry_in = next - now,
                        error = %Chain(&error)
                    );
                    done.map(drop)
                }
            }
        };
        if let Err(e) = result {
            // The lease runs out and the delivery is claimed again.
            tracing::warn!(error = %e, "back-channel logout: cannot record an attempt");
        }
    }

    /// Signs the logout token and POSTs it.
    async fn attempt(&self, delivery: &BackchannelRecord) -> Result<(), DomainError> {
        let ring = self.keys.ring();
        let token = logout_token(ring.signing(), &self.issuer, delivery, self.now())?;
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("logout_token", &token)
            .finish();
        self.backchannel
            .poster()
            .post_form(&delivery.uri, body)
            .await
            .map(drop)
            .map_err(|e| DomainError::internal_because("back-channel logout POST", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_one_second_up_to_a_minute() {
        let delays: Vec<i64> = (1..=9).map(retry_delay).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_delay(0), 1);
        assert_eq!(retry_delay(i64::MAX), 60);
    }
}
