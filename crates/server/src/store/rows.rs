//! Row mappings that need more than `#[derive(sqlx::FromRow)]`: the enumerated columns,
//! read through their string form, and the space-separated lists. Written once, for any
//! engine whose rows decode these column types.

use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};
use wristband_jose::Algorithm;

use super::{ClientKind, ClientRecord, KeyRecord, KeyState, RevocationKind, RevocationRecord};
use super::{ThrottleRecord, TokenFormat};

/// A stored value this version does not know, such as an algorithm it cannot use: the
/// source of a [`StoreError::Corrupt`](super::StoreError::Corrupt).
#[derive(Debug, thiserror::Error)]
#[error("unknown {column} {value:?}")]
pub struct UnknownValue {
    /// The column.
    pub column: &'static str,
    /// What it holds.
    pub value: String,
}

/// Parses the text `value` of `column`; a value `parse` refuses is a decode error of that
/// column, never a silent default.
fn parsed<T>(
    column: &'static str,
    value: String,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, sqlx::Error> {
    parse(&value).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(UnknownValue { column, value }),
    })
}

/// The words of a space-separated list.
fn words(text: String) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// Implements [`FromRow`] for a record, for every engine that decodes text, blobs,
/// 64-bit integers and booleans (both of ours).
macro_rules! from_row {
    ($record:ty, |$row:ident| $body:expr) => {
        impl<'r, R> FromRow<'r, R> for $record
        where
            R: Row,
            &'r str: ColumnIndex<R>,
            String: Decode<'r, R::Database> + Type<R::Database>,
            Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
            i64: Decode<'r, R::Database> + Type<R::Database>,
            bool: Decode<'r, R::Database> + Type<R::Database>,
        {
            fn from_row($row: &'r R) -> Result<Self, sqlx::Error> {
                Ok($body)
            }
        }
    };
}

from_row!(ClientRecord, |row| ClientRecord {
    id: row.try_get("id")?,
    name: row.try_get("name")?,
    kind: parsed("kind", row.try_get("kind")?, ClientKind::parse)?,
    secret_hash: row.try_get("secret_hash")?,
    scopes: words(row.try_get("scopes")?),
    audiences: words(row.try_get("audiences")?),
    token_format: parsed(
        "token_format",
        row.try_get("token_format")?,
        TokenFormat::parse
    )?,
    created_at: row.try_get("created_at")?,
    redirect_uris: words(row.try_get("redirect_uris")?),
    post_logout_redirect_uris: words(row.try_get("post_logout_redirect_uris")?),
    backchannel_logout_uri: row.try_get("backchannel_logout_uri")?,
    first_party: row.try_get("first_party")?,
});

from_row!(RevocationRecord, |row| RevocationRecord {
    id: row.try_get("id")?,
    kind: parsed("kind", row.try_get("kind")?, RevocationKind::parse)?,
    value: row.try_get("value")?,
    before: row.try_get("before")?,
    before_ms: row.try_get("before_ms")?,
    created_at: row.try_get("created_at")?,
    expires_at: row.try_get("expires_at")?,
});

from_row!(KeyRecord, |row| KeyRecord {
    kid: row.try_get("kid")?,
    alg: parsed("alg", row.try_get("alg")?, |s| s.parse::<Algorithm>().ok())?,
    state: parsed("state", row.try_get("state")?, KeyState::parse)?,
    private_key: row.try_get("private_key")?,
    public_jwk: row.try_get("public_jwk")?,
    created_at: row.try_get("created_at")?,
    activates_at: row.try_get("activates_at")?,
    activated_at: row.try_get("activated_at")?,
    retired_at: row.try_get("retired_at")?,
    removes_at: row.try_get("removes_at")?,
    revoked_at: row.try_get("revoked_at")?,
});

/// A throttle record with its key, as [`Store::throttles`](super::Store::throttles) reads
/// them.
#[derive(sqlx::FromRow)]
pub(super) struct KeyedThrottle {
    pub(super) key: String,
    #[sqlx(flatten)]
    pub(super) record: ThrottleRecord,
}

/// The records of `keys` among those `found`, in the order asked (unknown keys empty,
/// repeated keys repeated): what [`Store::throttles`](super::Store::throttles) returns.
pub(super) fn in_key_order(keys: &[&str], found: &[KeyedThrottle]) -> Vec<ThrottleRecord> {
    let record = |key: &str| found.iter().find(|f| f.key == key).map(|f| f.record);
    keys.iter().map(|k| record(k).unwrap_or_default()).collect()
}
