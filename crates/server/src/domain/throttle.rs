//! Login throttling with growing delays, per account, per IP and per (account, IP).
//!
//! Each key gets a number of free failures, after which every further failure doubles the
//! wait, up to `max_delay`. Failures are forgotten `window` after the first one. A real user
//! is therefore never locked out for good: at worst they wait `max_delay`, and an attacker
//! guessing from other addresses only trips the looser account-wide limit.

use super::{AuthService, DomainError};
use crate::store::ThrottleRecord;

pub(super) struct Keys {
    keys: Vec<(String, u32)>,
    /// Whether the (account, IP) key had failures when [`Keys::blocked`] read it: a
    /// success has nothing to forget otherwise.
    pair_failures: bool,
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

impl Keys {
    pub(super) fn new(username: &str, ip: Option<&str>) -> Self {
        let account = username.to_lowercase();
        let ip = ip.unwrap_or("-");
        Keys {
            keys: vec![
                (format!("acct:{account}"), 0),
                (format!("pair:{account}|{ip}"), 1),
                (format!("ip:{ip}"), 2),
            ],
            pair_failures: true,
        }
    }

    fn free(service: &AuthService, kind: u32) -> u32 {
        let t = &service.config.throttle;
        match kind {
            0 => t.account_free_failures,
            1 => t.pair_free_failures,
            _ => t.ip_free_failures,
        }
    }

    fn blocked_until(service: &AuthService, kind: u32, r: &ThrottleRecord, now: i64) -> i64 {
        let t = &service.config.throttle;
        let window = i64::try_from(t.window.as_secs()).unwrap_or(i64::MAX);
        if r.failures == 0 || r.window_start.saturating_add(window) <= now {
            return 0;
        }
        let d = delay(r.failures, Self::free(service, kind), t.max_delay.as_secs());
        r.last_failure
            .saturating_add(i64::try_from(d).unwrap_or(i64::MAX))
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
            return Err(DomainError::Internal(
                "throttle read returned the wrong number of keys".into(),
            ));
        }
        let mut until = 0;
        for ((_, kind), r) in self.keys.iter().zip(&records) {
            until = until.max(Self::blocked_until(service, *kind, r, now));
        }
        self.pair_failures = records.get(1).is_some_and(|r| r.failures > 0);
        Ok((until > now).then(|| u64::try_from(until - now).unwrap_or(u64::MAX)))
    }

    pub(super) async fn record_failure(
        &self,
        service: &AuthService,
        now: i64,
    ) -> Result<(), DomainError> {
        let window = i64::try_from(service.config.throttle.window.as_secs()).unwrap_or(i64::MAX);
        for (key, _) in &self.keys {
            service.store.record_failure(key, now, window).await?;
        }
        Ok(())
    }

    /// A success forgets this account's failures from this address only: failures from
    /// elsewhere (an attack in progress) keep counting. When the read in [`Keys::blocked`]
    /// found none, there is nothing to delete and the write is skipped: a failure recorded
    /// since then counts as one made after this success.
    pub(super) async fn clear_on_success(&self, service: &AuthService) -> Result<(), DomainError> {
        if self.pair_failures {
            service.store.clear_throttle(&self.keys[1].0).await?;
        }
        Ok(())
    }
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
