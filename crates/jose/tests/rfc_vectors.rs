//! Example vectors from RFC 7515 Appendix A (HS256, RS256, ES256) and RFC 8037 Appendix A
//! (Ed25519), checked at the JWS layer with [`verify_jws`]. Where the algorithm is
//! deterministic (HS256, RS256, Ed25519) our signing of the same bytes must reproduce the
//! RFC's signature exactly.
//!
//! The examples' headers carry no `typ` or `kid` and A.1's payload expired in 2011: that is
//! irrelevant at the JWS layer, which is all these vectors test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use wristband_jose::{dangerous, verify_jws, Algorithm, ErrorKind, Jwk, SigningKey, VerifyingKey};

/// RFC 7515 A.1–A.3 payload: `{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}`.
const RFC7515_PAYLOAD: &[u8] =
    b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";
const RFC7515_PAYLOAD_B64: &str = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

/// RFC 7515 A.1: the protected header `{"typ":"JWT",\r\n "alg":"HS256"}`.
const A1_HEADER: &[u8] = b"{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
const A1_KEY: &str = r#"{"kty":"oct","alg":"HS256",
  "k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
const A1_JWS: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// RFC 7515 A.2: header `{"alg":"RS256"}` and the 2048-bit RSA key of A.2.1.
const A2_HEADER: &[u8] = b"{\"alg\":\"RS256\"}";
const A2_KEY: &str = r#"{"kty":"RSA","alg":"RS256",
  "n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
  "e":"AQAB",
  "d":"Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ",
  "p":"4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc",
  "q":"uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc",
  "dp":"BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-FOKnu1R6HsJeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0",
  "dq":"h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU",
  "qi":"IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_QJQ3ydy5cY7YIBi87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U"}"#;
const A2_SIGNATURE: &str = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

/// RFC 7515 A.3: header `{"alg":"ES256"}` and the P-256 key of A.3.1.
const A3_HEADER_B64: &str = "eyJhbGciOiJFUzI1NiJ9";
const A3_KEY: &str = r#"{"kty":"EC","crv":"P-256",
  "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
  "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
  "d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#;
const A3_SIGNATURE: &str =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

/// RFC 8037 A.1/A.2: the Ed25519 key; A.3: its thumbprint; A.4: the signed example.
const ED_KEY: &str = r#"{"kty":"OKP","crv":"Ed25519",
  "d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
  "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
const ED_THUMBPRINT: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
const ED_HEADER: &[u8] = b"{\"alg\":\"EdDSA\"}";
const ED_PAYLOAD: &[u8] = b"Example of Ed25519 signing";
const ED_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

fn jwk(text: &str) -> Jwk {
    serde_json::from_str(text).unwrap()
}

/// The same token with one signature bit flipped: must fail, so each test can fail.
fn tampered(token: &str) -> String {
    let (rest, sig) = token.rsplit_once('.').unwrap();
    let mut sig = wristband_jose::b64::decode(sig).unwrap();
    sig[0] ^= 1;
    format!("{rest}.{}", wristband_jose::b64::encode(sig))
}

fn assert_verifies(token: &str, key: &VerifyingKey, payload: &[u8]) {
    assert_eq!(verify_jws(token, key).unwrap(), payload);
    assert_eq!(
        verify_jws(&tampered(token), key).unwrap_err().kind(),
        ErrorKind::BadSignature
    );
}

#[test]
fn rfc7515_a1_hs256() {
    let private = jwk(A1_KEY);
    let key = VerifyingKey::from_jwk(&private).unwrap();
    assert_eq!(key.algorithm(), Algorithm::HS256);
    assert_verifies(A1_JWS, &key, RFC7515_PAYLOAD);
    // HMAC is deterministic: signing the RFC's exact header and payload bytes reproduces it.
    let signer = SigningKey::from_jwk(&private).unwrap();
    assert_eq!(
        dangerous::sign_raw(&signer, A1_HEADER, RFC7515_PAYLOAD).unwrap(),
        A1_JWS
    );
}

#[test]
fn rfc7515_a2_rs256() {
    let private = jwk(A2_KEY);
    let token = format!("eyJhbGciOiJSUzI1NiJ9.{RFC7515_PAYLOAD_B64}.{A2_SIGNATURE}");
    let key = VerifyingKey::from_jwk(&private.to_public()).unwrap();
    assert_eq!(key.algorithm(), Algorithm::RS256);
    assert_verifies(&token, &key, RFC7515_PAYLOAD);
    // RSASSA-PKCS1-v1_5 is deterministic too.
    let signer = SigningKey::from_jwk(&private).unwrap();
    assert_eq!(
        dangerous::sign_raw(&signer, A2_HEADER, RFC7515_PAYLOAD).unwrap(),
        token
    );
    // The same key as PS256 must not accept the RS256 signature.
    let ps = VerifyingKey::from_jwk_as(
        &jwk(&A2_KEY.replace("RS256", "PS256")).to_public(),
        Algorithm::PS256,
    )
    .unwrap();
    assert!(verify_jws(&token, &ps).is_err());
}

#[test]
fn rfc7515_a3_es256() {
    let private = jwk(A3_KEY);
    let token = format!("{A3_HEADER_B64}.{RFC7515_PAYLOAD_B64}.{A3_SIGNATURE}");
    let key = VerifyingKey::from_jwk(&private.to_public()).unwrap();
    assert_eq!(key.algorithm(), Algorithm::ES256);
    assert_verifies(&token, &key, RFC7515_PAYLOAD);
    // ECDSA signatures are randomised: ours differ from the RFC's but verify with its key.
    let signer = SigningKey::from_jwk(&private).unwrap();
    let ours = dangerous::sign_raw(&signer, b"{\"alg\":\"ES256\"}", RFC7515_PAYLOAD).unwrap();
    assert!(ours.starts_with(&format!("{A3_HEADER_B64}.{RFC7515_PAYLOAD_B64}.")));
    assert_ne!(ours, token);
    assert_verifies(&ours, &key, RFC7515_PAYLOAD);
}

#[test]
fn rfc8037_a4_ed25519() {
    let private = jwk(ED_KEY);
    let key = VerifyingKey::from_jwk(&private.to_public()).unwrap();
    assert_eq!(key.algorithm(), Algorithm::EdDSA);
    assert_verifies(ED_JWS, &key, ED_PAYLOAD);
    // Ed25519 is deterministic.
    let signer = SigningKey::from_jwk(&private).unwrap();
    assert_eq!(
        dangerous::sign_raw(&signer, ED_HEADER, ED_PAYLOAD).unwrap(),
        ED_JWS
    );
}

#[test]
fn rfc8037_a3_thumbprint_is_the_default_kid() {
    let public = jwk(ED_KEY).to_public();
    assert_eq!(public.thumbprint().unwrap(), ED_THUMBPRINT);
    assert_eq!(
        VerifyingKey::from_jwk(&public).unwrap().kid(),
        ED_THUMBPRINT
    );
    assert_eq!(
        SigningKey::from_jwk(&jwk(ED_KEY)).unwrap().kid(),
        ED_THUMBPRINT
    );
    // A different key has a different thumbprint.
    let other = SigningKey::generate(Algorithm::EdDSA).unwrap();
    assert_ne!(other.kid(), ED_THUMBPRINT);
}
