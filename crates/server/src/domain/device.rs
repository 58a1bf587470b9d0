//! Device tokens: proof that a client has logged in successfully as a user before (OWASP
//! "Slow Down Online Guessing Attacks with Device Cookies").
//!
//! A token is `<issued-at>.<nonce>.<tag>`: the issue time in Unix seconds, 128 random
//! bits, and HMAC-SHA256 over the label `device`, the case-folded username, the time and
//! the nonce, under a key derived from the server's refresh secret. It names no user, is
//! valid for one account only, and expires `device_cookie_max_age` after it was issued.
//! A client presenting a valid token for the account it logs in to is throttled on the
//! token's own key instead of the account-wide and per-address keys (see
//! [`super::throttle`]), so that guesses from elsewhere cannot lock it out.

use aws_lc_rs::hmac;

use super::DomainError;

/// The MAC input of a token: label, folded username, time and nonce, separated by a byte
/// that none of them can contain.
fn input(username: &str, issued_at: &str, nonce: &str) -> Vec<u8> {
    format!("device\n{username}\n{issued_at}\n{nonce}").into_bytes()
}

/// A new device token for the (folded) `username`, issued at `now`.
pub(crate) fn issue(key: &hmac::Key, username: &str, now: i64) -> Result<String, DomainError> {
    let mut nonce = [0u8; 16];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|e| DomainError::internal(e.to_string()))?;
    let nonce = wristband_jose::b64::encode(nonce);
    let issued_at = now.to_string();
    let tag = hmac::sign(key, &input(username, &issued_at, &nonce));
    Ok(format!(
        "{issued_at}.{nonce}.{}",
        wristband_jose::b64::encode(tag.as_ref())
    ))
}

/// Whether `token` is a device token of the (folded) `username`, issued no more than
/// `max_age` seconds before `now`. The tag is checked in constant time.
pub(crate) fn verify(key: &hmac::Key, username: &str, token: &str, now: i64, max_age: i64) -> bool {
    // 20 digits at most, 22 + 43 base64url characters: anything longer is not a token.
    if token.len() > 90 {
        return false;
    }
    let mut parts = token.split('.');
    let (Some(issued_at), Some(nonce), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(issued) = issued_at.parse::<i64>() else {
        return false;
    };
    if issued > now || now.saturating_sub(issued) >= max_age || nonce.len() != 22 {
        return false;
    }
    match wristband_jose::b64::decode(tag) {
        Ok(tag) => hmac::verify(key, &input(username, issued_at, nonce), &tag).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &[byte; 32])
    }

    #[test]
    fn a_token_is_valid_for_its_user_key_and_lifetime_only() {
        let k = key(1);
        let t = issue(&k, "alice", 1_000).unwrap();
        assert!(verify(&k, "alice", &t, 1_000, 60));
        assert!(verify(&k, "alice", &t, 1_059, 60));
        assert!(!verify(&k, "alice", &t, 1_060, 60), "expired");
        assert!(!verify(&k, "alice", &t, 999, 60), "from the future");
        assert!(!verify(&k, "bob", &t, 1_000, 60), "another user");
        assert!(!verify(&key(2), "alice", &t, 1_000, 60), "another key");
        let (rest, tag) = t.rsplit_once('.').unwrap();
        let moved = format!("{}.{tag}", rest.replacen("1000", "1001", 1));
        assert!(!verify(&k, "alice", &moved, 1_001, 60), "time is signed");
        for bad in ["", "..", "1000.x.y", &format!("{t}.x"), &"a".repeat(91)] {
            assert!(!verify(&k, "alice", bad, 1_000, 60), "{bad:?}");
        }
        assert_ne!(
            t,
            issue(&k, "alice", 1_000).unwrap(),
            "fresh nonce each time"
        );
    }
}
