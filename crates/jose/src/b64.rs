//! Strict base64url (RFC 7515 §2): no padding, URL-safe alphabet, canonical trailing bits.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};

use crate::error::{ErrorKind, Result};

/// Decoder that rejects padding, the standard alphabet and non-zero trailing bits.
const STRICT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Encodes bytes as unpadded base64url.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    STRICT.encode(bytes)
}

/// Appends unpadded base64url of `bytes` to `out`.
pub(crate) fn encode_into(bytes: &[u8], out: &mut String) {
    STRICT.encode_string(bytes, out);
}

/// Decodes canonical unpadded base64url, refusing every other spelling.
pub fn decode(s: &str) -> Result<Vec<u8>> {
    STRICT
        .decode(s)
        .map_err(|e| crate::Error::with_source(ErrorKind::Malformed, e))
}

/// Decodes into `out`, reusing its allocation.
pub(crate) fn decode_into(s: &str, out: &mut Vec<u8>) -> Result<()> {
    STRICT
        .decode_vec(s, out)
        .map_err(|e| crate::Error::with_source(ErrorKind::Malformed, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_canonical_forms() {
        assert_eq!(decode("AQAB").unwrap(), vec![1, 0, 1]);
        // padding
        assert!(decode("AQ==").is_err());
        // standard alphabet
        assert!(decode("+/8").is_err());
        // non-zero trailing bits: "AQ" is canonical for [1], "AR" carries a stray bit
        assert_eq!(decode("AQ").unwrap(), vec![1]);
        assert!(decode("AR").is_err());
        // impossible length
        assert!(decode("A").is_err());
        assert_eq!(encode([0xfb, 0xff]), "-_8");
    }
}
