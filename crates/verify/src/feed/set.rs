//! [`RevocationSet`]: the in-memory revocation records a verifier answers from.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use serde::Deserialize;
use wristband_jose::{Claims, UnixTime};

use crate::revocation::RevocationView;

/// One revocation record as the auth service's feed sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RevocationRecord {
    /// The feed cursor (also the SSE event id).
    pub id: i64,
    /// What is revoked.
    pub kind: RevocationKind,
    /// The `jti`, `sid`, `sub` or `kid`.
    pub value: String,
    /// For [`RevocationKind::Sub`]: tokens issued at or before this time are revoked.
    #[serde(default)]
    pub before: Option<u64>,
    /// For [`RevocationKind::Sub`]: the same cut-off in milliseconds, sent by auth
    /// services that record it. When both it and the token's `iat_ms` claim are present,
    /// a token is revoked when `iat_ms <= before_ms`; otherwise the whole-second rule
    /// applies.
    #[serde(default)]
    pub before_ms: Option<u64>,
    /// After this time the record covers no token that could still be valid.
    pub expires_at: u64,
}

/// The kinds of revocation record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RevocationKind {
    /// One token, by `jti`.
    Jti,
    /// Every token of a session, by `sid`.
    Sid,
    /// Every token of a subject issued at or before a cut-off.
    Sub,
    /// Every token whose JOSE header names this `kid`: an emergency revocation of a
    /// signing key. A verifier following the feed also drops the key from its fetched key
    /// set, and keeps it out of later JWKS fetches while the record lives.
    Kid,
}

/// A subject cut-off: whole seconds, and milliseconds when the record carried them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Cutoff {
    secs: u64,
    millis: Option<u64>,
}

impl Cutoff {
    /// From a record; milliseconds are kept only when they agree with the seconds.
    fn new(secs: u64, millis: Option<u64>) -> Self {
        Cutoff {
            secs,
            millis: millis.filter(|ms| ms / 1000 == secs),
        }
    }

    /// The later of two cut-offs. Within the same second, milliseconds are kept only
    /// when both have them (otherwise the whole second, which covers more, stands).
    fn max(self, other: Cutoff) -> Cutoff {
        match self.secs.cmp(&other.secs) {
            std::cmp::Ordering::Greater => self,
            std::cmp::Ordering::Less => other,
            std::cmp::Ordering::Equal => Cutoff {
                secs: self.secs,
                millis: self.millis.zip(other.millis).map(|(a, b)| a.max(b)),
            },
        }
    }

    /// True when a token issued at `iat` (and `iat_ms`, if known) is covered: compared in
    /// milliseconds when both sides have them, else in whole seconds.
    fn covers(self, iat: u64, iat_ms: Option<u64>) -> bool {
        match (self.millis, iat_ms) {
            (Some(before), Some(issued)) => issued <= before,
            _ => iat <= self.secs,
        }
    }
}

#[derive(Default)]
struct Maps {
    /// jti -> expires_at.
    jti: HashMap<Box<str>, u64>,
    /// sid -> expires_at.
    sid: HashMap<Box<str>, u64>,
    /// sub -> its cut-off and expires_at.
    sub: HashMap<Box<str>, (Cutoff, u64)>,
    /// Signing key id -> expires_at.
    kid: HashMap<Box<str>, u64>,
}

impl Maps {
    fn len(&self) -> usize {
        self.jti.len() + self.sid.len() + self.sub.len() + self.kid.len()
    }

    /// The union of [`kid_bit`] over the revoked kids: 0 when none is revoked.
    fn kid_filter(&self) -> u64 {
        self.kid.keys().fold(0, |acc, k| acc | kid_bit(k))
    }
}

/// One bit of 64 picked from a `kid`'s length and first and last eight bytes: a prefilter
/// that answers most "is this key revoked?" questions without the lock or a full hash.
#[inline]
fn kid_bit(kid: &str) -> u64 {
    let b = kid.as_bytes();
    let n = b.len().min(8);
    let (mut head, mut tail) = ([0u8; 8], [0u8; 8]);
    head[..n].copy_from_slice(&b[..n]);
    tail[..n].copy_from_slice(&b[b.len() - n..]);
    let x = (u64::from_le_bytes(head) ^ u64::from_le_bytes(tail).rotate_left(29) ^ b.len() as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    1 << (x >> 58)
}

/// Revoked `jti`s, `sid`s, subject cut-offs and signing keys, with expiry pruning.
///
/// A lookup is three hash probes under a read lock (writers are the background feed task
/// only, a few times a second at most), so [`RevocationSet::is_revoked`] costs well under
/// a microsecond whatever the set's size.
///
/// - a `jti` record revokes the token with that `jti`;
/// - a `sid` record revokes every token whose `sid` equals it;
/// - a `sub` record revokes every token of that subject with `iat <= before`, or, when
///   the record has `before_ms` and the token an `iat_ms` claim, `iat_ms <= before_ms`;
/// - a `kid` record revokes every token whose header names that key
///   ([`RevocationSet::is_kid_revoked`]). That check first consults a 64-bit filter of
///   the revoked kids (one atomic load, no lock), so while no key is revoked, which is
///   nearly always, and for most kids when a few are, it costs a couple of nanoseconds.
#[derive(Default)]
pub struct RevocationSet {
    maps: RwLock<Maps>,
    /// [`Maps::kid_filter`], updated under the write lock, so that the common "key not
    /// revoked" answer needs no lock.
    kid_filter: AtomicU64,
}

impl std::fmt::Debug for RevocationSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationSet")
            .field("len", &self.len())
            .finish()
    }
}

impl RevocationSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a record, unless it already expired at `now`. A later `sub` cut-off replaces an
    /// earlier one; a record never shortens what is already revoked.
    pub fn apply(&self, record: &RevocationRecord, now: UnixTime) {
        if record.expires_at <= now.as_secs() {
            return;
        }
        let mut maps = self.maps.write().unwrap_or_else(PoisonError::into_inner);
        Self::insert(&mut maps, record);
        self.kid_filter.store(maps.kid_filter(), Ordering::Release);
    }

    /// Adds many records under one write lock.
    pub fn apply_all<'a>(
        &self,
        records: impl IntoIterator<Item = &'a RevocationRecord>,
        now: UnixTime,
    ) {
        let mut maps = self.maps.write().unwrap_or_else(PoisonError::into_inner);
        for record in records {
            if record.expires_at > now.as_secs() {
                Self::insert(&mut maps, record);
            }
        }
        self.kid_filter.store(maps.kid_filter(), Ordering::Release);
    }

    fn insert(maps: &mut Maps, r: &RevocationRecord) {
        let value: Box<str> = r.value.as_str().into();
        match r.kind {
            RevocationKind::Jti => {
                let e = maps.jti.entry(value).or_insert(0);
                *e = (*e).max(r.expires_at);
            }
            RevocationKind::Sid => {
                let e = maps.sid.entry(value).or_insert(0);
                *e = (*e).max(r.expires_at);
            }
            RevocationKind::Sub => {
                // A `sub` record without a cut-off covers everything issued until it expires.
                let before = match r.before {
                    Some(b) => Cutoff::new(b, r.before_ms),
                    None => Cutoff::new(r.expires_at, None),
                };
                let e = maps.sub.entry(value).or_default();
                *e = (e.0.max(before), e.1.max(r.expires_at));
            }
            RevocationKind::Kid => {
                let e = maps.kid.entry(value).or_insert(0);
                *e = (*e).max(r.expires_at);
            }
        }
    }

    /// Drops the records that expired at `now`; returns how many went.
    pub fn prune(&self, now: UnixTime) -> usize {
        let now = now.as_secs();
        let mut maps = self.maps.write().unwrap_or_else(PoisonError::into_inner);
        let before = maps.len();
        maps.jti.retain(|_, exp| *exp > now);
        maps.sid.retain(|_, exp| *exp > now);
        maps.sub.retain(|_, (_, exp)| *exp > now);
        maps.kid.retain(|_, exp| *exp > now);
        self.kid_filter.store(maps.kid_filter(), Ordering::Release);
        before - maps.len()
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.maps
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reserves room for `additional` more `jti` records.
    pub fn reserve_jti(&self, additional: usize) {
        let mut maps = self.maps.write().unwrap_or_else(PoisonError::into_inner);
        maps.jti.reserve(additional);
    }

    /// True when a `kid` record revokes the signing key `kid`. One atomic load and a few
    /// arithmetic operations while no key is revoked, and for most kids when some are; a
    /// hash probe under the read lock for the others.
    #[inline]
    pub fn is_kid_revoked(&self, kid: &str) -> bool {
        let filter = self.kid_filter.load(Ordering::Acquire);
        if filter == 0 || filter & kid_bit(kid) == 0 {
            return false;
        }
        self.maps
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .kid
            .contains_key(kid)
    }

    /// The revoked signing key ids, in no particular order.
    pub fn revoked_kids(&self) -> Vec<String> {
        if self.kid_filter.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let maps = self.maps.read().unwrap_or_else(PoisonError::into_inner);
        maps.kid.keys().map(|k| k.to_string()).collect()
    }

    /// True when a record covers the token with these claims. `kid` records are not
    /// consulted here (claims carry no header): see [`RevocationSet::is_kid_revoked`].
    #[inline]
    pub fn is_revoked(&self, claims: &Claims) -> bool {
        let maps = self.maps.read().unwrap_or_else(PoisonError::into_inner);
        if !maps.jti.is_empty() && maps.jti.contains_key(claims.jti.as_str()) {
            return true;
        }
        if let Some(sid) = &claims.sid {
            if !maps.sid.is_empty() && maps.sid.contains_key(sid.as_str()) {
                return true;
            }
        }
        if !maps.sub.is_empty() {
            if let Some((before, _)) = maps.sub.get(claims.sub.as_str()) {
                return before.covers(claims.iat.as_secs(), claims.issued_at_millis());
            }
        }
        false
    }
}

impl RevocationView for RevocationSet {
    #[inline]
    fn is_revoked(&self, claims: &Claims) -> bool {
        RevocationSet::is_revoked(self, claims)
    }

    #[inline]
    fn is_key_revoked(&self, kid: &str) -> bool {
        self.is_kid_revoked(kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rec(
        id: i64,
        kind: RevocationKind,
        value: &str,
        before: Option<u64>,
        exp: u64,
    ) -> RevocationRecord {
        RevocationRecord {
            id,
            kind,
            value: value.into(),
            before,
            before_ms: None,
            expires_at: exp,
        }
    }

    fn claims(sub: &str, iat: u64, sid: Option<&str>) -> Claims {
        let mut c = Claims::new(
            "iss",
            sub,
            "aud",
            UnixTime::from_secs(iat),
            Duration::from_secs(900),
        );
        c.sid = sid.map(str::to_owned);
        c
    }

    #[test]
    fn kinds_and_pruning() {
        let now = UnixTime::from_secs(1_000);
        let set = RevocationSet::new();
        let a = claims("alice", 900, Some("s1"));
        let b = claims("bob", 950, Some("s2"));
        let c = claims("carol", 990, None);
        set.apply(&rec(1, RevocationKind::Jti, &a.jti, None, 2_000), now);
        set.apply(&rec(2, RevocationKind::Sid, "s2", None, 1_500), now);
        set.apply(&rec(3, RevocationKind::Sub, "carol", Some(990), 1_800), now);
        set.apply(&rec(4, RevocationKind::Jti, "gone", None, 1_000), now);
        assert_eq!(set.len(), 3, "an expired record is not added");
        assert!(set.is_revoked(&a) && set.is_revoked(&b) && set.is_revoked(&c));
        assert!(!set.is_revoked(&claims("alice", 900, Some("s3"))));
        assert!(
            !set.is_revoked(&claims("carol", 991, None)),
            "issued after the cut-off"
        );
        // An earlier cut-off never shortens a later one.
        set.apply(&rec(5, RevocationKind::Sub, "carol", Some(500), 1_900), now);
        assert!(set.is_revoked(&claims("carol", 990, None)));
        assert_eq!(set.prune(UnixTime::from_secs(1_500)), 1);
        assert!(!set.is_revoked(&b));
        assert_eq!(set.prune(UnixTime::from_secs(2_000)), 2);
        assert!(set.is_empty());
    }

    fn claims_ms(sub: &str, iat_ms: u64) -> Claims {
        claims(sub, iat_ms / 1000, None).with_iat_millis(iat_ms)
    }

    fn sub_ms(id: i64, value: &str, before_ms: u64) -> RevocationRecord {
        RevocationRecord {
            before_ms: Some(before_ms),
            ..rec(
                id,
                RevocationKind::Sub,
                value,
                Some(before_ms / 1000),
                1_800,
            )
        }
    }

    /// Issue 11, item 10: a cut-off at S.200 covers a token issued at S.100 but not one
    /// issued at S.700, when both sides know milliseconds.
    #[test]
    fn same_second_cutoffs_compare_milliseconds() {
        let now = UnixTime::from_secs(1_000);
        let set = RevocationSet::new();
        set.apply(&sub_ms(1, "alice", 990_200), now);
        assert!(
            set.is_revoked(&claims_ms("alice", 990_100)),
            "issued before"
        );
        assert!(
            set.is_revoked(&claims_ms("alice", 990_200)),
            "at the cut-off"
        );
        assert!(
            !set.is_revoked(&claims_ms("alice", 990_700)),
            "issued after"
        );
        assert!(
            set.is_revoked(&claims_ms("alice", 989_999)),
            "an earlier second"
        );
        assert!(
            !set.is_revoked(&claims_ms("alice", 991_000)),
            "a later second"
        );
        // A token without iat_ms falls back to whole seconds: the same second is covered.
        assert!(set.is_revoked(&claims("alice", 990, None)));
        // An iat_ms that disagrees with iat is ignored (whole seconds again).
        let mut odd = claims("alice", 990, None);
        odd.extra
            .insert("iat_ms".into(), serde_json::json!(995_000));
        assert!(set.is_revoked(&odd));
        // A later cut-off in the same second moves it forward; an earlier one does not.
        set.apply(&sub_ms(2, "alice", 990_800), now);
        assert!(set.is_revoked(&claims_ms("alice", 990_700)));
        set.apply(&sub_ms(3, "alice", 990_300), now);
        assert!(set.is_revoked(&claims_ms("alice", 990_700)));
        assert!(!set.is_revoked(&claims_ms("alice", 990_900)));
    }

    /// A record from an auth service that sends no `before_ms` parses and keeps the
    /// whole-second rule, even for tokens that carry `iat_ms`.
    #[test]
    fn old_format_records_keep_the_whole_second_rule() {
        let now = UnixTime::from_secs(1_000);
        let old: RevocationRecord = serde_json::from_str(
            r#"{"id":1,"kind":"sub","value":"bob","before":990,"expires_at":1800}"#,
        )
        .unwrap();
        assert_eq!(old.before_ms, None);
        let set = RevocationSet::new();
        set.apply(&old, now);
        assert!(set.is_revoked(&claims_ms("bob", 990_700)), "same second");
        assert!(!set.is_revoked(&claims_ms("bob", 991_000)), "next second");
        // Merged with a millisecond record of the same second, the whole second stands.
        set.apply(&sub_ms(2, "bob", 990_200), now);
        assert!(set.is_revoked(&claims_ms("bob", 990_700)));
        let new: RevocationRecord = serde_json::from_str(
            r#"{"id":3,"kind":"sub","value":"carol","before":990,"before_ms":990200,"expires_at":1800}"#,
        )
        .unwrap();
        assert_eq!(new.before_ms, Some(990_200));
    }

    #[test]
    fn kid_records() {
        let now = UnixTime::from_secs(1_000);
        let set = RevocationSet::new();
        assert!(!set.is_kid_revoked("k1"), "empty set");
        let record: RevocationRecord = serde_json::from_str(
            r#"{"id":7,"kind":"kid","value":"k1","before":null,"expires_at":1500}"#,
        )
        .unwrap();
        assert_eq!(record.kind, RevocationKind::Kid);
        set.apply(&record, now);
        set.apply(&rec(8, RevocationKind::Kid, "k2", None, 1_000), now);
        assert_eq!(set.len(), 1, "an expired kid record is not added");
        assert!(set.is_kid_revoked("k1") && !set.is_kid_revoked("k2"));
        assert_eq!(set.revoked_kids(), vec!["k1".to_owned()]);
        // A kid record revokes no token by its claims, and a claims record no key.
        let c = claims("k1", 900, Some("k1"));
        assert!(!set.is_revoked(&c));
        set.apply(&rec(9, RevocationKind::Jti, "k3", None, 2_000), now);
        assert!(!set.is_kid_revoked("k3"));
        // Kids sharing the filter bit of a revoked one are still told apart.
        let twins: Vec<String> = (0..10_000)
            .map(|i| format!("kid-{i}"))
            .filter(|k| kid_bit(k) == kid_bit("k1") && k != "k1")
            .take(3)
            .collect();
        assert_eq!(twins.len(), 3);
        assert!(twins.iter().all(|k| !set.is_kid_revoked(k)));
        // A shorter record never shortens a longer one.
        set.apply(&rec(10, RevocationKind::Kid, "k1", None, 1_200), now);
        assert_eq!(set.prune(UnixTime::from_secs(1_300)), 0);
        assert!(set.is_kid_revoked("k1"));
        assert_eq!(set.prune(UnixTime::from_secs(1_500)), 1);
        assert!(!set.is_kid_revoked("k1"));
        assert!(set.revoked_kids().is_empty());
    }
}
