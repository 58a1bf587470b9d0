//! [`RevocationSet`]: the in-memory revocation records a verifier answers from.

use std::collections::HashMap;
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
    /// The `jti`, `sid` or `sub`.
    pub value: String,
    /// For [`RevocationKind::Sub`]: tokens issued at or before this time are revoked.
    #[serde(default)]
    pub before: Option<u64>,
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
}

#[derive(Default)]
struct Maps {
    /// jti -> expires_at.
    jti: HashMap<Box<str>, u64>,
    /// sid -> expires_at.
    sid: HashMap<Box<str>, u64>,
    /// sub -> (cut-off, expires_at).
    sub: HashMap<Box<str>, (u64, u64)>,
}

/// Revoked `jti`s, `sid`s and subject cut-offs, with expiry pruning.
///
/// A lookup is three hash probes under a read lock (writers are the background feed task
/// only, a few times a second at most), so [`RevocationSet::is_revoked`] costs well under
/// a microsecond whatever the set's size.
///
/// - a `jti` record revokes the token with that `jti`;
/// - a `sid` record revokes every token whose `sid` equals it;
/// - a `sub` record revokes every token of that subject with `iat <= before`.
#[derive(Default)]
pub struct RevocationSet {
    maps: RwLock<Maps>,
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
                let before = r.before.unwrap_or(r.expires_at);
                let e = maps.sub.entry(value).or_insert((0, 0));
                *e = (e.0.max(before), e.1.max(r.expires_at));
            }
        }
    }

    /// Drops the records that expired at `now`; returns how many went.
    pub fn prune(&self, now: UnixTime) -> usize {
        let now = now.as_secs();
        let mut maps = self.maps.write().unwrap_or_else(PoisonError::into_inner);
        let before = maps.jti.len() + maps.sid.len() + maps.sub.len();
        maps.jti.retain(|_, exp| *exp > now);
        maps.sid.retain(|_, exp| *exp > now);
        maps.sub.retain(|_, (_, exp)| *exp > now);
        let after = maps.jti.len() + maps.sid.len() + maps.sub.len();
        before - after
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        let maps = self.maps.read().unwrap_or_else(PoisonError::into_inner);
        maps.jti.len() + maps.sid.len() + maps.sub.len()
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

    /// True when a record covers the token with these claims.
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
                return claims.iat.as_secs() <= *before;
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
}
