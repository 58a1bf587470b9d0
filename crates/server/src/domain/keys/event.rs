//! What happened to a key: typed for the domain and the CLI, named only in the audit log
//! and the CLI's output.

use std::fmt;

use crate::domain::audit;

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyEventKind {
    /// Published in the JWKS, before it signs.
    Published,
    /// Became the signing key.
    Activated,
    /// Stopped signing; still published for the tokens it signed.
    Retired,
    /// Left the JWKS.
    Removed,
    /// Revoked in an emergency: its tokens are refused.
    Revoked,
}

impl KeyEventKind {
    /// The audit event name: `key_published`, `key_activated`, `key_retired`,
    /// `key_removed` or `key_revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyEventKind::Published => "key_published",
            KeyEventKind::Activated => "key_activated",
            KeyEventKind::Retired => "key_retired",
            KeyEventKind::Removed => "key_removed",
            KeyEventKind::Revoked => "key_revoked",
        }
    }

    /// What happened, in one word: `published`, `activated`, `retired`, `removed` or
    /// `revoked`.
    pub fn verb(self) -> &'static str {
        self.as_str().trim_start_matches("key_")
    }
}

impl fmt::Display for KeyEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened to a key, for the audit log and the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    /// What happened.
    pub kind: KeyEventKind,
    /// The key.
    pub kid: String,
    /// Its algorithm.
    pub alg: String,
}

impl KeyEvent {
    pub(super) fn new(kind: KeyEventKind, kid: &str, alg: &impl fmt::Display) -> Self {
        KeyEvent {
            kind,
            kid: kid.to_owned(),
            alg: alg.to_string(),
        }
    }

    pub(super) fn audit(&self) {
        let (kid, alg) = (&self.kid, &self.alg);
        match self.kind {
            KeyEventKind::Published => audit!("key_published", kid = %kid, alg = %alg),
            KeyEventKind::Activated => audit!("key_activated", kid = %kid, alg = %alg),
            KeyEventKind::Retired => audit!("key_retired", kid = %kid, alg = %alg),
            KeyEventKind::Removed => audit!("key_removed", kid = %kid, alg = %alg),
            KeyEventKind::Revoked => audit!("key_revoked", kid = %kid, alg = %alg),
        }
    }
}
