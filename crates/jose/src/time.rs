//! Time as a parameter: NumericDate values and the clock that produces "now".

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The largest NumericDate we accept: 9999-12-31T23:59:59Z.
pub const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// Seconds since the Unix epoch (a JWT NumericDate, whole seconds only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(u64);

impl UnixTime {
    /// A time from whole seconds since the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        UnixTime(secs)
    }

    /// Whole seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// This time plus `d` (saturating, whole seconds).
    pub fn saturating_add(self, d: Duration) -> Self {
        UnixTime(self.0.saturating_add(d.as_secs()))
    }

    /// Whole seconds as the signed integer that the stores keep, saturating at
    /// `i64::MAX` (a NumericDate never comes near it).
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// A time from a stored signed second count; a negative count is the epoch.
    pub fn from_i64(secs: i64) -> Self {
        UnixTime(u64::try_from(secs).unwrap_or(0))
    }

    /// This time plus `d`, or `None` on overflow.
    pub fn checked_add(self, d: Duration) -> Option<Self> {
        self.0.checked_add(d.as_secs()).map(UnixTime)
    }
}

/// Whole seconds of `d` as the signed integer the stores keep, saturating at `i64::MAX`.
pub fn secs_i64(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A millisecond count as a signed integer, saturating at `i64::MAX`.
pub fn millis_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Milliseconds since the epoch on the wall clock.
#[allow(clippy::disallowed_methods)]
fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl serde::Serialize for UnixTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// A source of "now". Domain code takes one so that tests can pin time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> UnixTime;

    /// The current time in milliseconds since the epoch, for the few comparisons that
    /// need better than whole seconds (sub-second revocation cut-offs). Its whole seconds
    /// agree with [`Clock::now`]. Default: [`Clock::now`] times 1000.
    fn now_millis(&self) -> u64 {
        self.now().as_secs().saturating_mul(1000)
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        UnixTime(now_millis() / 1000)
    }

    fn now_millis(&self) -> u64 {
        now_millis()
    }
}

/// A clock that stands still until told to move. For tests. It keeps milliseconds, so
/// that tests can pin sub-second instants ([`FixedClock::set_millis`]).
#[derive(Debug, Default)]
pub struct FixedClock(AtomicU64);

impl FixedClock {
    /// A clock showing `t`.
    pub fn new(t: UnixTime) -> Self {
        FixedClock(AtomicU64::new(t.0.saturating_mul(1000)))
    }

    /// Sets the time.
    pub fn set(&self, t: UnixTime) {
        self.0.store(t.0.saturating_mul(1000), Ordering::SeqCst);
    }

    /// Sets the time in milliseconds since the epoch.
    pub fn set_millis(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    /// Moves the time forward (to the millisecond).
    pub fn advance(&self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst) / 1000)
    }

    fn now_millis(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> UnixTime {
        (**self).now()
    }

    fn now_millis(&self) -> u64 {
        (**self).now_millis()
    }
}
