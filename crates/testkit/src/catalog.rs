//! The security catalog's forged and confused access tokens, minted against one
//! [`Minter`]: every one must be refused by a verifier that trusts only the minter's key,
//! issuer and audience.

use serde_json::{json, Value};
use wristband_jose::Clock as _;
use wristband_jose::{b64, dangerous, SigningKey};

use crate::Minter;

/// `(catalog id, token)` pairs: each a token that must be refused with `invalid_token`.
/// None is expired (an expired token has its own body); see [`Minter::expired`].
pub fn bad_tokens(m: &Minter) -> Vec<(&'static str, String)> {
    let good = m.token("user-1", Some("admin"));
    let (head, rest) = good.split_once('.').unwrap();
    let (payload, sig) = rest.split_once('.').unwrap();
    let claims = m.claims("user-1");
    let raw_header = |header: &Value, payload: &Value| {
        dangerous::sign_raw(
            m.key(),
            &serde_json::to_vec(header).unwrap(),
            &serde_json::to_vec(payload).unwrap(),
        )
        .unwrap()
    };
    let claims_json = serde_json::to_value(&claims).unwrap();
    let mut out = Vec::new();
    // A1: alg none and case variants, empty signature.
    for h in [
        "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0",
        "eyJhbGciOiJOb25lIiwidHlwIjoiYXQrand0In0",
        "eyJhbGciOiJOT05FIiwidHlwIjoiYXQrand0In0",
        "eyJhbGciOiJuT25FIiwidHlwIjoiYXQrand0In0",
    ] {
        out.push(("A1 alg none", format!("{h}.{payload}.")));
    }
    // A2: algorithms outside the allowlist or malformed, under the real signature.
    for alg in [
        json!("hs256"),
        json!("RS256 "),
        json!(["ES256"]),
        Value::Null,
    ] {
        let mut header = m.header();
        header["alg"] = alg;
        let h = b64::encode(serde_json::to_vec(&header).unwrap());
        out.push(("A2 alg not allowed", format!("{h}.{payload}.{sig}")));
    }
    // A3: HS256 signed with the public key (PEM and JWKS JSON) as the secret, real kid.
    let pem = m.key().verifying_key().to_public_pem().unwrap();
    let jwk = serde_json::to_vec(&m.key().verifying_key().to_jwk().unwrap()).unwrap();
    for secret in [pem.as_bytes(), jwk.as_slice()] {
        let confused = SigningKey::hs256(secret).unwrap();
        let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": m.key().kid()});
        out.push((
            "A3 key confusion",
            dangerous::sign_raw(
                &confused,
                &serde_json::to_vec(&header).unwrap(),
                &serde_json::to_vec(&claims).unwrap(),
            )
            .unwrap(),
        ));
    }
    // A4: r = s = 0, and its DER form.
    out.push((
        "A4 psychic signature",
        format!("{head}.{payload}.{}", "A".repeat(86)),
    ));
    out.push((
        "A4 DER zero signature",
        format!("{head}.{payload}.MAYCAQACAQA"),
    ));
    // A9: stripped, truncated and extra segments.
    out.push(("A9 no signature", format!("{head}.{payload}.")));
    out.push(("A9 two segments", format!("{head}.{payload}")));
    out.push(("A9 extra dot", format!("{head}.{payload}..")));
    out.push(("A9 four segments", format!("{good}.x")));
    out.push(("A9 truncated", good[..good.len() - 4].to_owned()));
    // A10: payload tampered, signature kept.
    let mut tampered = claims.clone();
    tampered.sub = "admin".into();
    let tampered_b64 = b64::encode(serde_json::to_vec(&tampered).unwrap());
    out.push((
        "A10 tampered payload",
        format!("{head}.{tampered_b64}.{sig}"),
    ));
    let mut bad_sig = sig.to_owned().into_bytes();
    bad_sig[10] = if bad_sig[10] == b'A' { b'B' } else { b'A' };
    out.push((
        "A10 bad signature",
        format!("{head}.{payload}.{}", String::from_utf8(bad_sig).unwrap()),
    ));
    // B1, B2, B3: key material or key URLs in the header; C7: crit.
    for (id, extra) in [
        (
            "B1 jwk",
            json!({"jwk": m.key().verifying_key().to_jwk().unwrap()}),
        ),
        ("B2 jku", json!({"jku": "http://127.0.0.1:9/jwks.json"})),
        ("B2 x5u", json!({"x5u": "http://127.0.0.1:9/cert.pem"})),
        ("B3 x5c", json!({"x5c": ["MIIB"]})),
        ("C7 crit", json!({"crit": ["exp-ext"], "exp-ext": 1})),
    ] {
        let mut header = m.header();
        header
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        out.push((id, m.sign_with_header(&header, &claims)));
    }
    // B4, B5, B6: hostile and unknown kids.
    out.push((
        "B4 kid traversal",
        m.with_kid("../../../../../../dev/null", "user-1"),
    ));
    out.push((
        "B5 kid injection",
        m.with_kid("x' UNION SELECT '1';--", "user-1"),
    ));
    out.push(("B6 unknown kid", m.with_kid("no-such-key", "user-1")));
    out.push(("B6 kid with NUL", m.with_kid("k\u{0}1", "user-1")));
    let mut numeric_kid = m.header();
    numeric_kid["kid"] = json!(7);
    out.push(("B6 numeric kid", raw_header(&numeric_kid, &claims_json)));
    // C1: padding, standard alphabet, whitespace.
    out.push(("C1 padding", format!("{head}=.{payload}.{sig}")));
    out.push((
        "C1 standard alphabet",
        good.replace('-', "+").replace('_', "/") + "+/",
    ));
    out.push(("C1 bad base64", format!("{head}.{payload}!.{sig}")));
    // C2: five segments, as a JWE.
    out.push((
        "C2 JWE shape",
        format!("{head}.{payload}.{sig}.{sig}.{sig}"),
    ));
    // C4: duplicate member names, signed with the real key.
    let dup_header = br#"{"alg":"ES256","alg":"HS256","typ":"at+jwt"}"#;
    out.push((
        "C4 duplicate header member",
        dangerous::sign_raw(m.key(), dup_header, &serde_json::to_vec(&claims).unwrap()).unwrap(),
    ));
    let body = serde_json::to_string(&claims).unwrap();
    let dup_payload = format!("{{\"sub\":\"admin\",{}", &body[1..]);
    out.push((
        "C4 duplicate claim",
        dangerous::sign_raw(
            m.key(),
            &serde_json::to_vec(&m.header()).unwrap(),
            dup_payload.as_bytes(),
        )
        .unwrap(),
    ));
    // E1: far over the size cap.
    out.push((
        "E1 huge token",
        format!("{head}.{}.{sig}", "A".repeat(64 * 1024)),
    ));
    // D: claims.
    let mut no_typ = m.header();
    no_typ.as_object_mut().unwrap().remove("typ");
    out.push(("D9 typ missing", m.sign_with_header(&no_typ, &claims)));
    let mut wrong_aud = claims.clone();
    wrong_aud.aud = "api://billing".into();
    out.push(("D6 wrong aud", m.sign(&wrong_aud)));
    let mut wrong_iss = claims.clone();
    wrong_iss.iss = format!("{}/", m.iss);
    out.push(("D7 wrong iss", m.sign(&wrong_iss)));
    let now = wristband_jose::SystemClock.now().as_secs();
    let mut future = claims.clone();
    future.nbf = Some(wristband_jose::UnixTime::from_secs(now + 3600));
    out.push(("D3 nbf in the future", m.sign(&future)));
    out.push((
        "D2 no exp",
        raw_header(
            &m.header(),
            &json!({"iss": m.iss, "sub": "u", "aud": m.aud, "iat": now, "jti": "j", "client_id": "c"}),
        ),
    ));
    out.push((
        "D5 exp as string",
        raw_header(
            &m.header(),
            &json!({"iss": m.iss, "sub": "u", "aud": m.aud, "iat": now, "exp": (now + 60).to_string(), "jti": "j", "client_id": "c"}),
        ),
    ));
    out.push(("garbage", "not-a-token".into()));
    out
}
