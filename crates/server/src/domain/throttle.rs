//! Login throttling with growing delays, per account, per IP and per (account, IP), and
//! per known device; and the per-address registration limit.
//!
//! Each key gets a number of free failures, after which every further failure doubles the
//! wait, up to `max_delay`. Failures are forgotten `window` after the first one. A real user
//! is therefore never locked out for good: at worst they wait `max_delay`, and an attacker
//! guessing from other addresses only trips the looser account-wide limit, which a client
//! holding a valid device token (see [`super::device`]) does not wait for: it has a
//! budget of its own.

use super::{token_hash, AuthService, DomainError};
use crate::store::ThrottleRecord;

/// What a throttle key counts, which sets its free failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Account,
    Pair,
    Ip,
    /// One known device of one account (a valid device token).
    Device,
}

/// A throttle key of bounded size: the kind, then the SHA-256 of what it counts
/// (base64url), so that neither a long input nor a username reaches the table.
fn key(kind: &str, material: &str) -> String {
    format!(
        "{kind}:{}",
        wristband_jose::b64::encode(token_hash(material))
    )
}

pub(super) struct Keys {
    keys: Vec<(String, Kind)>,
    /// Whether the key a success clears had failures when [`Keys::blocked`] read it: a
    /// success has nothing to forget otherwise.
    clear_failures: bool,
}

/// The delay, in seconds, that `failures` failures earn.
fn delay(failures: i64, free: u32, max_delay: u64) -> u64 {
    let over = failures - i64::from(free);
    if over <= 0 {
        return 0;
    }
    let exp = u32::try_from(over - 1).unwrap_or(u32::MAX).min(30);
    (1u64 << exp).min(max_delay)
}

fn window_secs(service: &AuthService) -> i64 {
    wristband_jose::secs_i64(service.config.throttle.window)
}

impl Keys {
    /// An untrusted client: limited per account, per (account, IP) and per IP. `username`
    /// is folded to lower case, so that every spelling of a name shares its keys.
    pub(super) fn new(username: &str, ip: Option<&str>) -> Self {
        let account = super::users::fold_username(username);
        let ip = ip.unwrap_or("-");
        Keys {
            keys: vec![
                (key("pair", &format!("{account}|{ip}")), Kind::Pair),
                (key("acct", &account), Kind::Account),
                (key("ip", ip), Kind::Ip),
            ],
            clear_failures: true,
        }
    }

    /// The second step of a sign-in (or another check of a second factor) of the user
    /// `user_id`: limited per (user, IP), per user and per IP, with the same free failures
    /// and delays as passwords, on keys of its own.
    pub(super) fn second_factor(user_id: &str, ip: Option<&str>) -> Self {
        let ip = ip.unwrap_or("-");
        Keys {
            keys: vec![
                (key("mfa-pair", &format!("{user_id}|{ip}")), Kind::Pair),
                (key("mfa-acct", user_id), Kind::Account),
                (key("mfa-ip", ip), Kind::Ip),
            ],
            clear_failures: true,
        }
    }

    /// A known device (its device token verified for the account): its own budget only,
    /// whatever the account-wide and per-address keys say.
    pub(super) fn device(token: &str) -> Self {
        Keys {
            keys: vec![(key("dev", token), Kind::Device)],
            clear_failures: true,
        }
    }

    fn free(service: &AuthService, kind: Kind) -> u32 {
        let t = &service.config.throttle;
        match kind {
            Kind::Account => t.account_free_failures,
            Kind::Pair => t.pair_free_failures,
            Kind::Ip => t.ip_free_failures,
            Kind::Device => t.device_free_failures,
        }
    }

    fn blocked_until(service: &AuthService, kind: Kind, r: &ThrottleRecord, now: i64) -> i64 {
        let t = &service.config.throttle;
        if r.failures == 0 || r.window_start.saturating_add(window_secs(service)) <= now {
            return 0;
        }
        let d = delay(r.failures, Self::free(service, kind), t.max_delay.as_secs());
        r.last_failure.saturating_add(wristband_jose::millis_i64(d))
    }

    /// Seconds to wait, if any key is blocked now. Reads every key in one store call.
    pub(super) async fn blocked(
        &mut self,
        service: &AuthService,
        now: i64,
    ) -> Result<Option<u64>, DomainError> {
        let keys: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        let records = service.store.throttles(&keys).await?;
        if records.len() != self.keys.len() {
            return Err(DomainError::internal(
                "throttle read returned the wrong number of keys",
            ));
        }
        let mut until = 0;
        for ((_, kind), r) in self.keys.iter().zip(&records) {
            until = until.max(Self::blocked_until(service, *kind, r, now));
        }
        self.clear_failures = records.first().is_some_and(|r| r.failures > 0);
        Ok((until > now).then(|| u64::try_from(until - now).unwrap_or(u64::MAX)))
    }

    pub(super) async fn record_failure(
        &self,
        service: &AuthService,
        now: i64,
    ) -> Result<(), DomainError> {
        let window = window_secs(service);
        for (key, _) in &self.keys {
            service.store.record_failure(key, now, window).await?;
        }
        Ok(())
    }

    /// A success forgets the failures of the first key only: this account from this
    /// address, or this device. Failures from elsewhere (an attack in progress) keep
    /// counting. When the read in [`Keys::blocked`] found none, there is nothing to delete
    /// and the write is skipped: a failure recorded since then counts as one made after
    /// this success.
    pub(super) async fn clear_on_success(&self, service: &AuthService) -> Result<(), DomainError> {
        if let Some((key, _)) = self.keys.first().filter(|_| self.clear_failures) {
            service.store.clear_throttle(key).await?;
        }
        Ok(())
    }
}

/// Counts one registration attempt from `ip` and refuses it (with the seconds until the
/// window ends) once `registrations_per_ip` attempts were made in the current window.
pub(super) async fn registration(
    service: &AuthService,
    ip: Option<&str>,
    now: i64,
) -> Result<(), DomainError> {
    let window = window_secs(service);
    let r = service
        .store
        .record_failure(&key("reg", ip.unwrap_or("-")), now, window)
        .await?;
    let limit = i64::from(service.config.throttle.registrations_per_ip);
    if r.failures > limit {
        let ends = r.window_start.saturating_add(window);
        let retry_after = u64::try_from(ends.saturating_sub(now)).unwrap_or(1).max(1);
        return Err(DomainError::RateLimited { retry_after });
    }
    Ok(())
}

/// Drops throttle records whose window is over.
pub(super) async fn prune(service: &AuthService, now: i64) -> Result<u64, DomainError> {
    Ok(service
        .store
        .prune_throttle(now, window_secs(service))
        .await?)
}

#[cfg(test)]
mod tests {
    use super::delay;

    #[test]
    fn delays_grow_and_are_capped() {
        assert_eq!(delay(5, 5, 900), 0);
        assert_eq!(delay(6, 5, 900), 1);
        assert_eq!(delay(7, 5, 900), 2);
        assert_eq!(delay(10, 5, 900), 16);
        assert_eq!(delay(100, 5, 900), 900);
        assert_eq!(delay(i64::MAX, 5, 900), 900);
    }
}
