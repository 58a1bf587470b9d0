//! Catalog section D: claims.

use super::*;

#[test]
fn section_d_claims() {
    let f = fx();
    let now = NOW.as_secs();
    let es = |changes: &[(&str, Option<Value>)]| signed(&f.es, &claims_with(changes));
    let mut t = Vec::new();
    t.push(case("D0", "control", es(&[]), Accept));

    // D1: expiry, with a 30 s leeway.
    let exp_at = |exp: u64| es(&[("exp", Some(json!(exp))), ("iat", Some(json!(exp - 600)))]);
    t.push(case(
        "D1",
        "exp = now - leeway - 1",
        exp_at(now - LEEWAY - 1),
        reject(&[K::Expired]),
    ));
    t.push(case(
        "D1",
        "exp + leeway = now (boundary)",
        exp_at(now - LEEWAY),
        reject(&[K::Expired]),
    ));
    t.push(case(
        "D1",
        "control: exp = now - leeway + 1",
        exp_at(now - LEEWAY + 1),
        Accept,
    ));
    t.push(case("D1", "control: exp = now", exp_at(now), Accept));
    t.push(case(
        "D1",
        "exp long past",
        exp_at(1_000_000_000),
        reject(&[K::Expired]),
    ));

    // D2: each required claim removed in turn.
    for (claim, kind) in [
        ("exp", K::MissingClaim("exp")),
        ("iss", K::MissingClaim("iss")),
        ("aud", K::MissingClaim("aud")),
        ("sub", K::MissingClaim("sub")),
        ("iat", K::MissingClaim("iat")),
        ("jti", K::MissingClaim("jti")),
        ("client_id", K::MissingClaim("client_id")),
    ] {
        t.push(case(
            "D2",
            format!("{claim} missing"),
            es(&[(claim, None)]),
            reject(&[kind]),
        ));
    }
    t.push(case(
        "D2",
        "all claims missing",
        signed(&f.es, b"{}"),
        reject(&[K::MissingClaim("client_id"), K::MissingClaim("iss")]),
    ));

    // D3: nbf.
    t.push(case(
        "D3",
        "nbf = now + leeway + 1",
        es(&[("nbf", Some(json!(now + LEEWAY + 1)))]),
        reject(&[K::NotYetValid]),
    ));
    t.push(case(
        "D3",
        "control: nbf = now + leeway",
        es(&[("nbf", Some(json!(now + LEEWAY)))]),
        Accept,
    ));
    t.push(case(
        "D3",
        "nbf as a string",
        es(&[("nbf", Some(json!(now.to_string())))]),
        reject(&[K::InvalidClaim("nbf")]),
    ));

    // D4: iat in the future or too old for the maximum lifetime (60 min).
    t.push(case(
        "D4",
        "iat = now + leeway + 1",
        es(&[("iat", Some(json!(now + LEEWAY + 1)))]),
        reject(&[K::IssuedInFuture]),
    ));
    t.push(case(
        "D4",
        "control: iat = now + leeway",
        es(&[("iat", Some(json!(now + LEEWAY)))]),
        Accept,
    ));
    t.push(case(
        "D4",
        "iat older than the maximum lifetime",
        es(&[("iat", Some(json!(now - 3_601)))]),
        reject(&[K::LifetimeTooLong]),
    ));
    t.push(case(
        "D4",
        "exp - iat = 60 min + 1 s",
        es(&[("iat", Some(json!(now))), ("exp", Some(json!(now + 3_601)))]),
        reject(&[K::LifetimeTooLong]),
    ));
    t.push(case(
        "D4",
        "control: exp - iat = 60 min",
        es(&[("iat", Some(json!(now))), ("exp", Some(json!(now + 3_600)))]),
        Accept,
    ));
    t.push(case(
        "D4",
        "exp before iat",
        es(&[
            ("iat", Some(json!(now + 10))),
            ("exp", Some(json!(now + 5))),
        ]),
        reject(&[K::LifetimeTooLong, K::IssuedInFuture]),
    ));

    // D5: NumericDate type confusion.
    let d5 = r#"{"iss":"https://auth.example","sub":"user-123","aud":"api://orders","iat":1799999940,"exp":"4102444800","jti":"t1","client_id":"web"}"#;
    assert!(b64s(d5).contains("LCJleHAiOiI0MTAyNDQ0ODAwIiwi"));
    t.push(case(
        "D5",
        "exp as a string (catalog fragment)",
        signed(&f.es, d5.as_bytes()),
        reject(&[K::InvalidClaim("exp")]),
    ));
    let poc = r#"{"sub":"krishna","nbf":"99999999999","exp":10000000000}"#;
    t.push(case(
        "D5",
        "CVE-2026-25537 PoC payload",
        signed(&f.es, poc.as_bytes()),
        reject(&[K::InvalidClaim("nbf")]),
    ));
    for (what, raw) in [
        ("null", "null"),
        ("true", "true"),
        ("[]", "[]"),
        ("{}", "{}"),
        ("-1", "-1"),
        ("1e400", "1e400"),
        ("18446744073709551616", "18446744073709551616"),
        ("4102444800.5", "4102444800.5"),
        ("1800000600.0", "1800000600.0"),
        ("1.8000006e9", "1.8000006e9"),
        ("past year 9999", "253402300800"),
    ] {
        let body = String::from_utf8(claims_with(&[("exp", None)])).unwrap();
        let p = format!("{},\"exp\":{raw}}}", &body[..body.len() - 1]);
        t.push(case(
            "D5",
            format!("exp {what}"),
            signed(&f.es, p.as_bytes()),
            reject(&[K::InvalidClaim("exp"), K::InvalidJson]),
        ));
    }
    for claim in ["iat", "nbf"] {
        t.push(case(
            "D5",
            format!("{claim} null"),
            es(&[(claim, Some(Value::Null))]),
            reject(&[K::InvalidClaim(claim)]),
        ));
    }

    // D6: audience.
    for (what, aud, kinds) in [
        (
            "aud api://other",
            json!("api://other"),
            &[K::WrongAudience][..],
        ),
        ("aud []", json!([]), &[K::InvalidClaim("aud")]),
        ("aud \"\"", json!(""), &[K::WrongAudience]),
        ("aud null", json!(null), &[K::InvalidClaim("aud")]),
        ("aud 123", json!(123), &[K::InvalidClaim("aud")]),
        (
            "aud API://orders",
            json!("API://orders"),
            &[K::WrongAudience],
        ),
        (
            "aud [api://other]",
            json!(["api://other"]),
            &[K::WrongAudience],
        ),
        (
            "aud [123, api://orders]",
            json!([123, AUD]),
            &[K::InvalidClaim("aud")],
        ),
        (
            "aud with trailing slash",
            json!("api://orders/"),
            &[K::WrongAudience],
        ),
    ] {
        t.push(case("D6", what, es(&[("aud", Some(aud))]), reject(kinds)));
    }
    t.push(case(
        "D6",
        "aud missing",
        es(&[("aud", None)]),
        reject(&[K::MissingClaim("aud")]),
    ));
    t.push(case(
        "D6",
        "control: [api://other, api://orders]",
        es(&[("aud", Some(json!(["api://other", AUD])))]),
        Accept,
    ));

    // D7: issuer, exact and case-sensitive.
    for iss in [
        "https://auth.example/",
        "HTTPS://auth.example",
        "https://evil.example",
        "https://auth.example ",
        "",
    ] {
        t.push(case(
            "D7",
            format!("iss {iss:?}"),
            es(&[("iss", Some(json!(iss)))]),
            reject(&[K::WrongIssuer]),
        ));
    }
    t.push(case(
        "D7",
        "iss missing",
        es(&[("iss", None)]),
        reject(&[K::MissingClaim("iss")]),
    ));
    t.push(case(
        "D7",
        "iss as an array",
        es(&[("iss", Some(json!([ISS])))]),
        reject(&[K::InvalidClaim("iss")]),
    ));

    // D8: subject.
    t.push(case(
        "D8",
        "sub missing",
        es(&[("sub", None)]),
        reject(&[K::MissingClaim("sub")]),
    ));
    t.push(case(
        "D8",
        "numeric sub",
        es(&[("sub", Some(json!(123)))]),
        reject(&[K::InvalidClaim("sub")]),
    ));
    t.push(case(
        "D8",
        "sub null",
        es(&[("sub", Some(json!(null)))]),
        reject(&[K::InvalidClaim("sub")]),
    ));

    // D9: wrong token kind.
    let payload = claims_with(&[]);
    for (what, typ) in [
        ("typ missing", None),
        ("typ JWT", Some("JWT")),
        ("typ dpop+jwt", Some("dpop+jwt")),
        ("typ at+jwt+x", Some("at+jwt+x")),
        ("typ empty", Some("")),
    ] {
        let mut h = json!({"alg":"ES256","kid":"k1"});
        if let Some(typ) = typ {
            h["typ"] = json!(typ);
        }
        t.push(case(
            "D9",
            what,
            sign_raw(&f.es, h.to_string().as_bytes(), &payload).unwrap(),
            reject(&[K::WrongType]),
        ));
    }
    let h = json!({"alg":"ES256","kid":"k1","typ":1}).to_string();
    t.push(case(
        "D9",
        "typ as a number",
        sign_raw(&f.es, h.as_bytes(), &payload).unwrap(),
        reject(&[K::WrongType]),
    ));
    let id_token = json!({"iss": ISS, "sub": "user-123", "aud": "web", "exp": now + 600, "iat": now - 60, "nonce": "n", "jti": "i1", "client_id": "web"}).to_string();
    let h = json!({"alg":"ES256","typ":"JWT","kid":"k1"}).to_string();
    t.push(case(
        "D9",
        "OIDC ID token",
        sign_raw(&f.es, h.as_bytes(), id_token.as_bytes()).unwrap(),
        reject(&[K::WrongType]),
    ));
    let reset = json!({"alg":"ES256","typ":"reset+jwt","kid":"k1"}).to_string();
    t.push(case(
        "D9",
        "password-reset JWT with the same key",
        sign_raw(&f.es, reset.as_bytes(), &payload).unwrap(),
        reject(&[K::WrongType]),
    ));
    let h = json!({"alg":"ES256","typ":"application/at+jwt","kid":"k1"}).to_string();
    t.push(case(
        "D9",
        "control: typ application/at+jwt",
        sign_raw(&f.es, h.as_bytes(), &payload).unwrap(),
        Accept,
    ));

    // D10: authorization claim types (see also d10_authorization_claims_are_strict).
    t.push(case(
        "D10",
        "scope as an array",
        es(&[("scope", Some(json!(["admin"])))]),
        reject(&[K::InvalidClaim("scope")]),
    ));
    t.push(case(
        "D10",
        "role as an array",
        es(&[("role", Some(json!(["admin"])))]),
        reject(&[K::InvalidClaim("role")]),
    ));
    t.push(case(
        "D10",
        "role as true",
        es(&[("role", Some(json!(true)))]),
        reject(&[K::InvalidClaim("role")]),
    ));
    t.push(case(
        "D10",
        "client_id as a number",
        es(&[("client_id", Some(json!(7)))]),
        reject(&[K::InvalidClaim("client_id")]),
    ));
    t.push(case(
        "D10",
        "jti as a number",
        es(&[("jti", Some(json!(7)))]),
        reject(&[K::InvalidClaim("jti")]),
    ));
    t.push(case(
        "D10",
        "scope with NUL (accepted; never matches)",
        es(&[("scope", Some(json!("read admin\u{0}")))]),
        Accept,
    ));
    t.push(case(
        "D10",
        "unknown admin:true (accepted; not a role)",
        es(&[("admin", Some(json!(true)))]),
        Accept,
    ));

    // D11: a token for another service.
    t.push(case(
        "D11",
        "token for api://billing",
        es(&[("aud", Some(json!("api://billing")))]),
        reject(&[K::WrongAudience]),
    ));

    run("D", t);
}

/// D10: authorization reads only documented, strictly typed claims.
#[test]
fn d10_authorization_claims_are_strict() {
    let f = fx();
    let verify = |c: &[u8]| {
        UnverifiedToken::parse(&signed(&f.es, c))
            .unwrap()
            .verify(&f.asym, &f.asym_policy, NOW)
            .unwrap()
    };
    let v = verify(&claims_with(&[("scope", Some(json!("read admin\u{0}")))]));
    assert!(v.has_scope("read"));
    assert!(!v.has_scope("admin"));
    let v = verify(&claims_with(&[("admin", Some(json!(true)))]));
    assert!(!v.has_role("admin"));
    assert_eq!(v.extra.get("admin"), Some(&json!(true)));
    let v = verify(&claims_with(&[
        ("role", Some(json!("admin"))),
        ("scope", Some(json!("read write"))),
    ]));
    assert!(v.has_role("admin") && !v.has_role("Admin"));
    assert!(v.has_scope("write") && !v.has_scope("read write"));
}
