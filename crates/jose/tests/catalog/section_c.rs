//! Catalog section C: encoding and parsing.

use super::*;

#[test]
fn section_c_encoding_and_parsing() {
    let f = fx();
    let payload = claims_with(&[]);
    let mut t = Vec::new();
    let es_good = good(&f.es);
    let (h, p, s) = split3(&es_good);
    t.push(case("C0", "control", es_good.clone(), Accept));

    // C1: non-canonical base64url.
    let pad = |seg: &str| format!("{seg}{}", "=".repeat((4 - seg.len() % 4) % 4));
    t.push(case(
        "C1",
        "= padding on the signature",
        format!("{h}.{p}.{}", pad(s)),
        reject(MALFORMED),
    ));
    // Pick a header whose length is not a multiple of 4, so it needs padding.
    let padded_header = (0..4)
        .map(|i| {
            b64s(json!({"alg":"ES256","typ":"at+jwt","kid":"k1","x":"y".repeat(i)}).to_string())
        })
        .find(|h| h.len() % 4 != 0)
        .unwrap();
    let tok = sign_raw(&f.es, &b64::decode(&padded_header).unwrap(), &payload).unwrap();
    let (h2, p2, s2) = split3(&tok);
    t.push(case(
        "C1",
        "control for the padded-header row",
        tok.clone(),
        Accept,
    ));
    t.push(case(
        "C1",
        "= padding on the header",
        format!("{}.{p2}.{s2}", pad(h2)),
        reject(MALFORMED),
    ));
    let std = base64::engine::general_purpose::STANDARD_NO_PAD;
    // Find a good token whose signature has a '-' or '_' so the standard alphabet differs.
    let std_tok = (0..64)
        .map(|i| {
            signed(
                &f.es,
                &claims_with(&[("jti", Some(json!(format!("c1-{i}"))))]),
            )
        })
        .find(|t| split3(t).2.contains(['-', '_']))
        .unwrap();
    let (sh, sp, ss) = split3(&std_tok);
    let std_form = std.encode(b64::decode(ss).unwrap());
    assert_ne!(std_form, ss);
    t.push(case(
        "C1",
        "standard alphabet (+ and /) in the signature",
        format!("{sh}.{sp}.{std_form}"),
        reject(MALFORMED),
    ));
    t.push(case(
        "C1",
        "space inside",
        format!("{h}.{p} .{s}"),
        reject(MALFORMED),
    ));
    t.push(case(
        "C1",
        "newline inside",
        format!("{h}.{}\n{}.{s}", &p[..10], &p[10..]),
        reject(MALFORMED),
    ));
    t.push(case(
        "C1",
        "leading space",
        format!(" {es_good}"),
        reject(MALFORMED),
    ));
    t.push(case(
        "C1",
        "trailing newline",
        format!("{es_good}\n"),
        reject(MALFORMED),
    ));
    // A 64-byte signature is 86 characters; the last carries 4 unused bits.
    assert_eq!(s.len(), 86);
    let last = s.as_bytes()[85];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.iter().position(|&c| c == last).unwrap();
    assert_eq!(idx & 0x0f, 0, "canonical last character");
    let bumped = char::from(alphabet[idx | 1]);
    t.push(case(
        "C1",
        "non-zero trailing bits in the signature",
        format!("{h}.{p}.{}{bumped}", &s[..85]),
        reject(MALFORMED),
    ));
    let payload_stray = (0..8)
        .map(|i| claims_with(&[("jti", Some(json!("t".repeat(i))))]))
        .find(|c| c.len() % 3 != 0)
        .unwrap();
    let tok = signed(&f.es, &payload_stray);
    let (h3, p3, s3) = split3(&tok);
    let last = p3.as_bytes()[p3.len() - 1];
    let idx = alphabet.iter().position(|&c| c == last).unwrap();
    let bumped = char::from(alphabet[idx | 1]);
    t.push(case(
        "C1",
        "non-zero trailing bits in the payload",
        format!("{h3}.{}{bumped}.{s3}", &p3[..p3.len() - 1]),
        reject(MALFORMED),
    ));
    t.push(case(
        "C1",
        "non-ASCII character",
        format!("{h}.{p}.{}é", &s[..85]),
        reject(MALFORMED),
    ));

    // C2: a compact JWE to our RSA kid.
    let jwe_h = b64s(json!({"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"rsa-1"}).to_string());
    let jwe = format!(
        "{jwe_h}.{}.{}.{}.{}",
        b64s([7u8; 256]),
        b64s([1u8; 12]),
        b64s(&payload),
        b64s([2u8; 16])
    );
    t.push(case("C2", "5-segment JWE", jwe, reject(MALFORMED)));
    let enc_h = json!({"alg":"RS256","enc":"A256GCM","typ":"at+jwt","kid":"rsa-1"}).to_string();
    t.push(case(
        "C2",
        "JWS header carrying enc",
        sign_raw(&f.rs, enc_h.as_bytes(), &payload).unwrap(),
        reject(FORBIDDEN),
    ));

    // C3: JSON serialization.
    let general = json!({"payload": p, "signatures": [{"protected": h, "header": {"unknown": "untrustworthy"}, "signature": s}]}).to_string();
    t.push(case(
        "C3",
        "general JSON serialization",
        general,
        reject(MALFORMED),
    ));
    let flat =
        json!({"payload": p, "protected": h, "header": {"kid": "k1"}, "signature": s}).to_string();
    t.push(case(
        "C3",
        "flattened JSON serialization",
        flat,
        reject(MALFORMED),
    ));

    // C4: duplicate members, signed with the test key.
    let c4_h = "eyJhbGciOiJFUzI1NiIsImFsZyI6IkhTMjU2IiwidHlwIjoiYXQrand0In0";
    t.push(case(
        "C4",
        "duplicate alg (exact header)",
        sign_raw(&f.es, &b64::decode(c4_h).unwrap(), &payload).unwrap(),
        reject(JSON),
    ));
    let dup_kid = r#"{"alg":"ES256","typ":"at+jwt","kid":"k2","kid":"k1"}"#;
    t.push(case(
        "C4",
        "duplicate kid",
        sign_raw(&f.es, dup_kid.as_bytes(), &payload).unwrap(),
        reject(JSON),
    ));
    let c4_p = "eyJzdWIiOiJ1c2VyLTEyMyIsInN1YiI6ImFkbWluIiwiYXVkIjoiYXBpOi8vb3JkZXJzIiwiaXNzIjoiaHR0cHM6Ly9hdXRoLmV4YW1wbGUiLCJleHAiOjQxMDI0NDQ4MDB9";
    t.push(case(
        "C4",
        "duplicate sub (exact payload)",
        signed(&f.es, &b64::decode(c4_p).unwrap()),
        reject(JSON),
    ));
    let body = String::from_utf8(payload.clone()).unwrap();
    let inner = &body[1..body.len() - 1];
    for (what, dup) in [
        (
            "exp 1 then exp 4102444800",
            r#""exp":1,"exp":4102444800"#.to_owned(),
        ),
        (
            "escaped duplicate \\u0073ub",
            r#""\u0073ub":"admin""#.to_owned(),
        ),
        (
            "duplicate inside an extra claim",
            r#""ext":{"a":1,"a":2}"#.to_owned(),
        ),
        (
            "duplicate inside an array of objects",
            r#""ext":[{"r":"user"},{"r":"a","r":"admin"}]"#.to_owned(),
        ),
    ] {
        let p = format!("{{{inner},{dup}}}");
        t.push(case("C4", what, signed(&f.es, p.as_bytes()), reject(JSON)));
    }

    // C5: non-UTF-8 JSON in the header and the payload.
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(
            header("ES256", "k1")
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    assert!(b64s(&utf16).starts_with("__57ACIAYQBs"));
    t.push(case(
        "C5",
        "UTF-16LE header with BOM",
        sign_raw(&f.es, &utf16, &payload).unwrap(),
        reject(JSON),
    ));
    let mut bom = vec![0xef, 0xbb, 0xbf];
    bom.extend(header("ES256", "k1").as_bytes());
    t.push(case(
        "C5",
        "UTF-8 BOM header",
        sign_raw(&f.es, &bom, &payload).unwrap(),
        reject(JSON),
    ));
    let mut bom_p = vec![0xef, 0xbb, 0xbf];
    bom_p.extend(&payload);
    t.push(case(
        "C5",
        "UTF-8 BOM payload",
        signed(&f.es, &bom_p),
        reject(JSON),
    ));
    for (what, bytes) in [
        ("overlong '/' (C0 AF)", &[0xc0, 0xaf][..]),
        ("invalid byte FF", &[0xff]),
        ("truncated sequence", &[0xe2, 0x82]),
        ("encoded surrogate ED A0 80", &[0xed, 0xa0, 0x80]),
    ] {
        let mut p = payload[..payload.len() - 1].to_vec();
        p.extend(br#","name":""#);
        p.extend(bytes);
        p.extend(br#""}"#);
        t.push(case(
            "C5",
            format!("payload string with {what}"),
            signed(&f.es, &p),
            reject(JSON),
        ));
    }
    let lone = format!("{{{inner},\"name\":\"\\ud800\"}}");
    t.push(case(
        "C5",
        "lone surrogate escape",
        signed(&f.es, lone.as_bytes()),
        reject(JSON),
    ));
    let ok_pair = format!("{{{inner},\"name\":\"\\ud83d\\ude00\"}}");
    t.push(case(
        "C5",
        "control: a valid surrogate pair",
        signed(&f.es, ok_pair.as_bytes()),
        Accept,
    ));

    // C6: payloads that are not a JSON object.
    for p in [
        "0", "1", "-1", "true", "false", "null", "[]", "\"\"", "{", "", "{}x", "{} {}",
    ] {
        t.push(case(
            "C6",
            format!("payload {p:?}"),
            signed(&f.es, p.as_bytes()),
            reject(JSON),
        ));
    }
    for h in ["[]", "null", "\"ES256\"", "{"] {
        t.push(case(
            "C6",
            format!("header {h:?}"),
            sign_raw(&f.es, h.as_bytes(), &payload).unwrap(),
            reject(JSON),
        ));
    }

    // C7: crit, with the catalog's exact header.
    let c7 = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsxIiwiY3JpdCI6WyJleHAtZXh0Il0sImV4cC1leHQiOjF9";
    t.push(case(
        "C7",
        "crit [exp-ext] (exact header)",
        sign_raw(&f.es, &b64::decode(c7).unwrap(), &payload).unwrap(),
        reject(FORBIDDEN),
    ));
    for crit in [
        json!([]),
        json!("x"),
        json!([null]),
        json!(["alg"]),
        json!(["absent"]),
    ] {
        let h = json!({"alg":"ES256","typ":"at+jwt","kid":"k1","crit":crit}).to_string();
        t.push(case(
            "C7",
            format!("crit {crit}"),
            sign_raw(&f.es, h.as_bytes(), &payload).unwrap(),
            reject(FORBIDDEN),
        ));
    }

    // C8: unencoded payload, exact header, signed with the HS key.
    let c8 = "eyJhbGciOiJIUzI1NiIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19";
    t.push(hs_case(
        "C8",
        "b64:false (exact header)",
        sign_raw(&f.hs, &b64::decode(c8).unwrap(), &payload).unwrap(),
        reject(FORBIDDEN),
    ));
    let h = json!({"alg":"HS256","typ":"at+jwt","kid":"hs-1","b64":true}).to_string();
    t.push(hs_case(
        "C8",
        "b64:true",
        sign_raw(&f.hs, h.as_bytes(), &payload).unwrap(),
        reject(FORBIDDEN),
    ));

    // C9: zip.
    let h = json!({"alg":"ES256","typ":"at+jwt","kid":"k1","zip":"DEF"}).to_string();
    t.push(case(
        "C9",
        "zip DEF",
        sign_raw(&f.es, h.as_bytes(), &[0x78, 0x9c, 0x03, 0x00]).unwrap(),
        reject(FORBIDDEN),
    ));

    // C10: PBES2 with a huge iteration count.
    let pbes2 =
        json!({"alg":"PBES2-HS256+A128KW","enc":"A128GCM","p2c":2_147_483_647u32,"p2s":"c2FsdA"})
            .to_string();
    let jwe = format!(
        "{}.{}.{}.{}.{}",
        b64s(&pbes2),
        b64s([1u8; 24]),
        b64s([1u8; 12]),
        b64s(&payload),
        b64s([1u8; 16])
    );
    t.push(case("C10", "PBES2 JWE", jwe, reject(MALFORMED)));
    let h = json!({"alg":"ES256","typ":"at+jwt","kid":"k1","p2c":2_147_483_647u32}).to_string();
    t.push(case(
        "C10",
        "p2c in a JWS header",
        sign_raw(&f.es, h.as_bytes(), &payload).unwrap(),
        reject(FORBIDDEN),
    ));

    run("C", t);
}
