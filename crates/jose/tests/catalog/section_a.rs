//! Catalog section A: algorithm and signature.

use super::*;

/// The public forms of an RSA key an attacker could use as an HMAC secret (catalog A3).
fn rsa_public_forms(key: &VerifyingKey) -> Vec<(&'static str, Vec<u8>)> {
    let jwk = key.to_jwk().unwrap();
    let n = b64::decode(jwk.n.as_ref().unwrap()).unwrap();
    let e = b64::decode(jwk.e.as_ref().unwrap()).unwrap();
    let spki_pem = key.to_public_pem().unwrap();
    let spki_der = pem::parse(&spki_pem).unwrap().into_contents();
    // PKCS#1 RSAPublicKey: SEQUENCE { INTEGER n, INTEGER e }.
    let der_int = |v: &[u8]| {
        let mut v = v.to_vec();
        if v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        let mut out = vec![0x02];
        out.extend(der_len(v.len()));
        out.extend(v);
        out
    };
    let mut body = der_int(&n);
    body.extend(der_int(&e));
    let mut pkcs1 = vec![0x30];
    pkcs1.extend(der_len(body.len()));
    pkcs1.extend(body);
    let pkcs1_pem = pem::encode(&pem::Pem::new("RSA PUBLIC KEY", pkcs1.clone()));
    // OpenSSH: "ssh-rsa " + base64(string "ssh-rsa", mpint e, mpint n).
    let mut blob = Vec::new();
    let mut put = |v: &[u8]| {
        blob.extend(u32::try_from(v.len()).unwrap().to_be_bytes());
        blob.extend(v);
    };
    put(b"ssh-rsa");
    put(&e);
    let mut mpn = n.clone();
    if mpn[0] & 0x80 != 0 {
        mpn.insert(0, 0);
    }
    put(&mpn);
    let openssh = format!(
        "ssh-rsa {}",
        base64::engine::general_purpose::STANDARD.encode(&blob)
    );
    let jwks = serde_json::to_vec(&json!({ "keys": [jwk] })).unwrap();
    vec![
        ("JWKS JSON", jwks),
        ("JWK JSON", serde_json::to_vec(jwk).unwrap()),
        (
            "SPKI PEM with trailing newline",
            spki_pem.clone().into_bytes(),
        ),
        (
            "SPKI PEM without trailing newline",
            spki_pem.trim_end().as_bytes().to_vec(),
        ),
        (
            "SPKI PEM with CRLF",
            spki_pem.replace('\n', "\r\n").into_bytes(),
        ),
        ("PKCS#1 PEM", pkcs1_pem.into_bytes()),
        ("SPKI DER", spki_der),
        ("PKCS#1 DER", pkcs1),
        ("raw n", n),
        ("base64url n", jwk.n.clone().unwrap().into_bytes()),
        ("OpenSSH", openssh.clone().into_bytes()),
        ("OpenSSH with newline", format!("{openssh}\n").into_bytes()),
    ]
}

fn ec_public_forms(key: &VerifyingKey) -> Vec<(&'static str, Vec<u8>)> {
    let jwk = key.to_jwk().unwrap();
    let x = b64::decode(jwk.x.as_ref().unwrap()).unwrap();
    let y = b64::decode(jwk.y.as_ref().unwrap()).unwrap();
    let spki_pem = key.to_public_pem().unwrap();
    let spki_der = pem::parse(&spki_pem).unwrap().into_contents();
    let mut point = vec![4u8];
    point.extend(&x);
    point.extend(&y);
    vec![
        (
            "JWKS JSON",
            serde_json::to_vec(&json!({ "keys": [jwk] })).unwrap(),
        ),
        ("JWK JSON", serde_json::to_vec(jwk).unwrap()),
        (
            "SPKI PEM with trailing newline",
            spki_pem.clone().into_bytes(),
        ),
        (
            "SPKI PEM without trailing newline",
            spki_pem.trim_end().as_bytes().to_vec(),
        ),
        ("SPKI DER", spki_der),
        ("uncompressed point", point),
        ("x coordinate", x),
    ]
}

fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        vec![u8::try_from(len).unwrap()]
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        let mut out = vec![0x80 | u8::try_from(bytes.len()).unwrap()];
        out.extend(bytes);
        out
    }
}

/// The key-confusion tokens of A3: HS256 with the kid of `key`, HMAC keyed by each public form.
fn a3_tokens(key: &VerifyingKey) -> Vec<(String, String)> {
    let forms = if key.algorithm() == Algorithm::ES256 {
        ec_public_forms(key)
    } else {
        rsa_public_forms(key)
    };
    let h = b64s(header("HS256", key.kid()));
    let p = b64s(claims_with(&[]));
    forms
        .into_iter()
        .map(|(name, secret)| (name.to_owned(), hmac_token(&h, &p, &secret)))
        .collect()
}

#[test]
fn section_a_algorithm_and_signature() {
    let f = fx();
    let mut t = Vec::new();

    // Controls: each algorithm's good token passes, so the rows below can fail.
    for key in [&f.rs, &f.ps, &f.es, &f.es2, &f.ed] {
        t.push(case(
            "A0",
            format!("control {}", key.algorithm()),
            good(key),
            Accept,
        ));
    }
    t.push(hs_case("A0", "control HS256", good(&f.hs), Accept));

    // A1: alg none and its case variants, with the catalog's exact headers and an empty
    // signature, and the same with a kid we know and some signature bytes.
    for (name, h) in [
        ("none", "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0"),
        ("None", "eyJhbGciOiJOb25lIiwidHlwIjoiYXQrand0In0"),
        ("NONE", "eyJhbGciOiJOT05FIiwidHlwIjoiYXQrand0In0"),
        ("nOnE", "eyJhbGciOiJuT25FIiwidHlwIjoiYXQrand0In0"),
    ] {
        assert!(b64::decode(h).unwrap().ends_with(b"\"typ\":\"at+jwt\"}"));
        t.push(case(
            "A1",
            format!("alg {name}, H.P."),
            format!("{h}.{P}."),
            reject(MALFORMED),
        ));
        t.push(hs_case(
            "A1",
            format!("alg {name}, H.P."),
            format!("{h}.{P}."),
            reject(MALFORMED),
        ));
        let with_kid = b64s(header(name, "k1"));
        let forged = format!("{with_kid}.{P}.{}", b64s([0u8; 64]));
        t.push(case(
            "A1",
            format!("alg {name} with kid and a signature"),
            forged,
            reject(ALG),
        ));
    }
    let mixed_case = b64s(header("noNE", "hs-1"));
    t.push(hs_case(
        "A1",
        "alg noNE",
        format!("{mixed_case}.{P}.AA"),
        reject(ALG),
    ));

    // A2: alg outside the allow-list or malformed, validly signed where possible.
    let payload = claims_with(&[]);
    let raw_header = |v: Value| {
        let mut h = json!({"typ": "at+jwt", "kid": "k1"});
        h["alg"] = v;
        h.to_string()
    };
    for (what, alg) in [
        ("lower-case hs256", json!("hs256")),
        ("trailing space", json!("RS256 ")),
        ("array", json!(["ES256"])),
        ("null", json!(null)),
        ("HS512", json!("HS512")),
        ("ES512", json!("ES512")),
        ("number", json!(256)),
    ] {
        let token = sign_raw(&f.es, raw_header(alg).as_bytes(), &payload).unwrap();
        t.push(case("A2", format!("alg {what}"), token, reject(ALG)));
    }
    let no_alg = json!({"typ": "at+jwt", "kid": "k1"}).to_string();
    t.push(case(
        "A2",
        "alg missing",
        sign_raw(&f.es, no_alg.as_bytes(), &payload).unwrap(),
        reject(ALG),
    ));
    let ps_token = good(&f.ps);
    t.push(Case {
        mode: Mode::EsOnly,
        ..case(
            "A2",
            "PS256 when only ES256 is configured",
            ps_token,
            reject(ALG),
        )
    });
    t.push(Case {
        mode: Mode::EsOnly,
        ..case("A2", "control ES256 under ES256-only", good(&f.es), Accept)
    });
    let hs512 = hmac_token(&b64s(header("HS512", "k1")), &b64s(&payload), b"k");
    t.push(Case {
        mode: Mode::EsOnly,
        ..case(
            "A2",
            "HS512 when only ES256 is configured",
            hs512,
            reject(ALG),
        )
    });

    // A3: RS256/ES256 -> HS256 key confusion with every public key form.
    for key in [&f.rs, &f.ps, &f.es] {
        for (form, token) in a3_tokens(key.verifying_key()) {
            let what = format!("HS256 keyed by {} {form}", key.algorithm());
            t.push(case("A3", what.clone(), token.clone(), reject(ALG)));
            // An HS-mode verifier does not know the asymmetric kid at all.
            t.push(hs_case("A3", what, token, reject(UNKNOWN_KID)));
        }
    }

    // A4: ECDSA psychic signature, with the catalog's exact header (kid k1 is our ES key).
    let a4_h = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsxIn0";
    assert_eq!(b64::decode(a4_h).unwrap(), header("ES256", "k1").as_bytes());
    let zeros = "A".repeat(86);
    t.push(case(
        "A4",
        "r = s = 0 (86 x 'A')",
        format!("{a4_h}.{P}.{zeros}"),
        reject(BAD_SIG),
    ));
    t.push(case(
        "A4",
        "DER r = s = 0",
        format!("{a4_h}.{P}.MAYCAQACAQA"),
        reject(BAD_SIG),
    ));
    let es_good = good(&f.es);
    let es_sig = sig_of(&es_good);
    let nn: Vec<u8> = P256_N.iter().chain(P256_N.iter()).copied().collect();
    t.push(case(
        "A4",
        "r = s = n",
        with_sig(&es_good, &nn),
        reject(BAD_SIG),
    ));
    let mut r0 = vec![0u8; 32];
    r0.extend(&es_sig[32..]);
    t.push(case(
        "A4",
        "r = 0, s valid",
        with_sig(&es_good, &r0),
        reject(BAD_SIG),
    ));
    let mut s0 = es_sig[..32].to_vec();
    s0.extend([0u8; 32]);
    t.push(case(
        "A4",
        "r valid, s = 0",
        with_sig(&es_good, &s0),
        reject(BAD_SIG),
    ));

    // A5: ECDSA signature in the wrong encoding.
    t.push(case(
        "A5",
        "DER-encoded ES256 signature",
        with_sig(&es_good, &ecdsa_der(&es_sig)),
        reject(BAD_SIG),
    ));
    t.push(case(
        "A5",
        "63-byte signature",
        with_sig(&es_good, &es_sig[..63]),
        reject(BAD_SIG),
    ));
    let mut long = es_sig.clone();
    long.push(0);
    t.push(case(
        "A5",
        "65-byte signature",
        with_sig(&es_good, &long),
        reject(BAD_SIG),
    ));
    let mut lead = vec![0u8];
    lead.extend(&es_sig);
    t.push(case(
        "A5",
        "extra leading 00",
        with_sig(&es_good, &lead),
        reject(BAD_SIG),
    ));

    // A6: high-S is a valid ECDSA signature: accepted here (see a6_high_s_variant_has_same_jti).
    let mut high_s = es_sig[..32].to_vec();
    high_s.extend(sub_be(&P256_N, &es_sig[32..]));
    t.push(case(
        "A6",
        "s replaced by n - s",
        with_sig(&es_good, &high_s),
        Accept,
    ));

    // A7: Ed25519 S + L, and S of all ones.
    let ed_good = good(&f.ed);
    let ed_sig = sig_of(&ed_good);
    let mut s_plus_l = ed_sig[..32].to_vec();
    s_plus_l.extend(add_le(&ed_sig[32..], &ED25519_L));
    t.push(case(
        "A7",
        "Ed25519 S + L",
        with_sig(&ed_good, &s_plus_l),
        reject(BAD_SIG),
    ));
    let mut s_ff = ed_sig[..32].to_vec();
    s_ff.extend([0xff; 32]);
    t.push(case(
        "A7",
        "Ed25519 S = 2^256 - 1",
        with_sig(&ed_good, &s_ff),
        reject(BAD_SIG),
    ));
    let mut r_flip = ed_sig.clone();
    r_flip[31] ^= 0x80;
    t.push(case(
        "A7",
        "Ed25519 R sign bit flipped",
        with_sig(&ed_good, &r_flip),
        reject(BAD_SIG),
    ));

    // A8: malformed RSA signatures (RS256 and PS256).
    for key in [&f.rs, &f.ps] {
        let tok = good(key);
        let sig = sig_of(&tok);
        let n = b64::decode(key.verifying_key().to_jwk().unwrap().n.as_ref().unwrap()).unwrap();
        let alg = key.algorithm();
        t.push(case(
            "A8",
            format!("{alg} one byte short"),
            with_sig(&tok, &sig[1..]),
            reject(BAD_SIG),
        ));
        let mut longer = sig.clone();
        longer.push(0);
        t.push(case(
            "A8",
            format!("{alg} one byte long"),
            with_sig(&tok, &longer),
            reject(BAD_SIG),
        ));
        let mut pre = vec![0u8];
        pre.extend(&sig);
        t.push(case(
            "A8",
            format!("{alg} prepended 00"),
            with_sig(&tok, &pre),
            reject(BAD_SIG),
        ));
        t.push(case(
            "A8",
            format!("{alg} signature = n"),
            with_sig(&tok, &n),
            reject(BAD_SIG),
        ));
        t.push(case(
            "A8",
            format!("{alg} signature > n"),
            with_sig(&tok, &[0xff; 256]),
            reject(BAD_SIG),
        ));
        t.push(case(
            "A8",
            format!("{alg} signature = 0"),
            with_sig(&tok, &[0; 256]),
            reject(BAD_SIG),
        ));
        t.push(case(
            "A8",
            format!("{alg} signature = 1"),
            with_sig(&tok, &{
                let mut one = [0u8; 256];
                one[255] = 1;
                one
            }),
            reject(BAD_SIG),
        ));
    }

    // A9: null, stripped and truncated signatures.
    for key in [&f.rs, &f.es, &f.ed] {
        let tok = good(key);
        let (h, p, s) = split3(&tok);
        let alg = key.algorithm();
        t.push(case(
            "A9",
            format!("{alg} H.P."),
            format!("{h}.{p}."),
            reject(MALFORMED),
        ));
        t.push(case(
            "A9",
            format!("{alg} H.P"),
            format!("{h}.{p}"),
            reject(MALFORMED),
        ));
        t.push(case(
            "A9",
            format!("{alg} H.P.."),
            format!("{h}.{p}.."),
            reject(MALFORMED),
        ));
        t.push(case(
            "A9",
            format!("{alg} H.P.S.x"),
            format!("{tok}.x"),
            reject(MALFORMED),
        ));
        t.push(case(
            "A9",
            format!("{alg} H.P.S."),
            format!("{tok}."),
            reject(MALFORMED),
        ));
        let cut = &s[..s.len() - 4];
        t.push(case(
            "A9",
            format!("{alg} sig[:-4]"),
            format!("{h}.{p}.{cut}"),
            reject(&[K::BadSignature, K::Malformed]),
        ));
    }
    let hs_tok = good(&f.hs);
    let (h, p, s) = split3(&hs_tok);
    t.push(hs_case(
        "A9",
        "HS256 H.P.",
        format!("{h}.{p}."),
        reject(MALFORMED),
    ));
    t.push(hs_case(
        "A9",
        "HS256 sig[:-4]",
        format!("{h}.{p}.{}", &s[..s.len() - 4]),
        reject(&[K::BadSignature, K::Malformed]),
    ));
    t.push(hs_case(
        "A9",
        "HS256 16-byte truncated MAC",
        with_sig(&hs_tok, &sig_of(&hs_tok)[..16]),
        reject(BAD_SIG),
    ));
    t.push(hs_case(
        "A9",
        "HS256 1-byte MAC",
        with_sig(&hs_tok, &sig_of(&hs_tok)[..1]),
        reject(BAD_SIG),
    ));

    // A10: payload or header tampered, old signature kept.
    for key in [&f.rs, &f.es, &f.ed] {
        let tok = good(key);
        let (h, _, s) = split3(&tok);
        let alg = key.algorithm();
        let sub_admin = b64s(claims_with(&[("sub", Some(json!("admin")))]));
        t.push(case(
            "A10",
            format!("{alg} sub flipped"),
            format!("{h}.{sub_admin}.{s}"),
            reject(BAD_SIG),
        ));
        let plus_admin = b64s(claims_with(&[("admin", Some(json!(true)))]));
        t.push(case(
            "A10",
            format!("{alg} admin:true added"),
            format!("{h}.{plus_admin}.{s}"),
            reject(BAD_SIG),
        ));
    }
    let (_, p, s) = split3(&es_good);
    let k2 = b64s(header("ES256", "k2"));
    t.push(case(
        "A10",
        "kid changed to another ES256 key",
        format!("{k2}.{p}.{s}"),
        reject(BAD_SIG),
    ));
    let (_, p, s) = split3(&hs_tok);
    let typ_jwt = b64s(json!({"alg":"HS256","typ":"JWT","kid":"hs-1"}).to_string());
    t.push(hs_case(
        "A10",
        "typ changed in the header",
        format!("{typ_jwt}.{p}.{s}"),
        reject(BAD_SIG),
    ));

    // A11: blank or null HMAC secret.
    let hs_h = b64s(header("HS256", "hs-1"));
    let hs_p = b64s(claims_with(&[]));
    t.push(hs_case(
        "A11",
        "HS256 keyed by \"\"",
        hmac_token(&hs_h, &hs_p, b""),
        reject(BAD_SIG),
    ));
    t.push(hs_case(
        "A11",
        "HS256 keyed by 0x00",
        hmac_token(&hs_h, &hs_p, b"\0"),
        reject(BAD_SIG),
    ));

    // A12: the jwt.io sample (no kid, weak secret) and tokens keyed by tutorial secrets.
    let jwt_io = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    t.push(hs_case(
        "A12",
        "jwt.io sample token",
        jwt_io.to_owned(),
        reject(&[K::MissingKeyId]),
    ));
    for secret in [
        "your-256-bit-secret",
        "secret",
        "changeme",
        "a-string-secret-at-least-256-bits-long",
    ] {
        t.push(hs_case(
            "A12",
            format!("HS256 keyed by {secret:?}"),
            hmac_token(&hs_h, &hs_p, secret.as_bytes()),
            reject(BAD_SIG),
        ));
    }

    // A13: symmetric tokens at an asymmetric verifier and the reverse.
    t.push(case(
        "A13",
        "our own valid HS256 token at the ES/RS verifier",
        good(&f.hs),
        reject(&[K::UnknownKeyId, K::AlgorithmNotAllowed]),
    ));
    let hs_with_es_kid = hmac_token(
        &b64s(header("HS256", "k1")),
        &hs_p,
        b"any secret the attacker likes",
    );
    t.push(case(
        "A13",
        "HS256 with an ES256 kid",
        hs_with_es_kid,
        reject(ALG),
    ));
    let evil = signed(&f.evil_es, &claims_with(&[]));
    assert!(evil.starts_with(&b64s(header("ES256", "hs-1"))));
    t.push(hs_case(
        "A13",
        "ES256 signed by the attacker, kid of the HS key",
        evil,
        reject(ALG),
    ));

    run("A", t);
}

/// A3 at the JWS layer: the same confusion tokens are refused by `verify_jws` for the real
/// public key (the header alg is not the key's alg).
#[test]
fn a3_key_confusion_at_the_jws_layer() {
    let f = fx();
    let mut n = 0;
    for key in [&f.rs, &f.ps, &f.es] {
        for (form, token) in a3_tokens(key.verifying_key()) {
            let err = verify_jws(&token, key.verifying_key()).unwrap_err();
            assert_eq!(err.kind(), K::AlgorithmMismatch, "{form}");
            n += 1;
        }
        // Nor can a public form become an HS256 key through the key API.
        let pem = key.verifying_key().to_public_pem().unwrap();
        assert!(VerifyingKey::from_public_pem(Algorithm::HS256, &pem).is_err());
        let mut jwk = key.verifying_key().to_jwk().unwrap().clone();
        jwk.alg = Some("HS256".into());
        assert!(VerifyingKey::from_jwk(&jwk).is_err());
    }
    assert!(n > 25);
}

/// A6: the high-S twin of a token verifies, and carries the same `jti`, while its bytes
/// differ. Revocation and replay checks must therefore key on `(iss, jti)`, never on the
/// token bytes or their hash: that is the verifier's concern (crates/verify).
#[test]
fn a6_high_s_variant_has_same_jti() {
    let f = fx();
    let token = signed(&f.es, &claims_with(&[("jti", Some(json!("revoked-1")))]));
    let sig = sig_of(&token);
    let mut high_s = sig[..32].to_vec();
    high_s.extend(sub_be(&P256_N, &sig[32..]));
    let twin = with_sig(&token, &high_s);
    assert_ne!(twin, token);
    let verify = |t: &str| {
        UnverifiedToken::parse(t)
            .unwrap()
            .verify(&f.asym, &f.asym_policy, NOW)
            .unwrap()
    };
    assert_eq!(verify(&token).jti, "revoked-1");
    assert_eq!(verify(&twin).jti, "revoked-1");
    assert_eq!(
        verify_jws(&twin, f.es.verifying_key()).unwrap(),
        verify_jws(&token, f.es.verifying_key()).unwrap()
    );
}

/// A11, A12 and A13 on the configuration side: weak secrets and mixed key sets are refused.
#[test]
fn a11_a13_weak_secrets_and_mixed_sets_are_refused() {
    for weak in [
        &b""[..],
        b"\0",
        b"1",
        b"secret",
        b"your-256-bit-secret",
        b"changeme",
        &[0u8; 32],
    ] {
        assert_eq!(
            SigningKey::hs256(weak).unwrap_err().kind(),
            K::WeakSecret,
            "{weak:?}"
        );
        assert_eq!(
            VerifyingKey::hs256(weak).unwrap_err().kind(),
            K::WeakSecret,
            "{weak:?}"
        );
    }
    assert!(wristband_jose::is_common_secret(b"your-256-bit-secret"));
    let f = fx();
    assert!(
        KeySet::from_keys([f.hs.verifying_key().clone(), f.es.verifying_key().clone()]).is_err()
    );
    let mut set = f.asym.clone();
    assert!(set.insert(f.hs.verifying_key().clone()).is_err());
    assert!(Policy::builder(ISS, AUD)
        .algorithms(&[Algorithm::HS256, Algorithm::ES256])
        .build()
        .is_err());
    // A published JWKS never carries the HS key.
    assert!(f.hs_set.to_public_jwks().keys.is_empty());
}
