//! Footguns, kept apart so that their use stands out in review.
//!
//! Nothing here verifies a signature. Use it for debugging tools (`wristband token decode`,
//! `wristband token audit`) and for building hostile tokens in tests, never to make an
//! authorisation decision.

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::key::SigningKey;

/// A token's header and payload, decoded but NOT verified.
#[derive(Debug, Clone)]
pub struct InsecureDecoded {
    /// The header as JSON.
    pub header: Value,
    /// The payload as JSON (or a JSON string holding the text, when it is not JSON).
    pub payload: Value,
}

/// Decodes a compact token without checking its signature or claims. The syntax rules
/// (size, characters, canonical base64url) still apply.
pub fn decode_without_verification(token: &str) -> Result<InsecureDecoded> {
    let (header, payload) = crate::token::decode_unverified(token.trim())?;
    let header = serde_json::from_slice(&header)
        .map_err(|e| Error::with_source(ErrorKind::InvalidJson, e))?;
    let payload = serde_json::from_slice(&payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&payload).into_owned()));
    Ok(InsecureDecoded { header, payload })
}

/// Signs arbitrary header and payload bytes with `key`. This can produce tokens without
/// `exp`, with duplicate members or with forbidden headers: it exists for tests.
pub fn sign_raw(key: &SigningKey, header: &[u8], payload: &[u8]) -> Result<String> {
    let header_b64 = crate::b64::encode(header);
    crate::token::sign_parts(key, &header_b64, payload)
}
