//! Catalog section E: denial of service and resource limits.

use super::*;

fn nested(depth: usize) -> String {
    format!("{{\"a\":{}{}}}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn section_e_resource_limits() {
    let f = fx();
    let mut t = vec![
        case("E0", "control", good(&f.es), Accept),
        // E1: huge tokens and many separators: refused on length before any decoding.
        case(
            "E1",
            "1 MiB of A",
            "A".repeat(1 << 20),
            reject(&[K::TooLarge]),
        ),
        case(
            "E1",
            "8 MiB of A",
            "A".repeat(8 << 20),
            reject(&[K::TooLarge]),
        ),
        case(
            "E1",
            "1,000,000 dots",
            ".".repeat(1_000_000),
            reject(&[K::TooLarge]),
        ),
        case(
            "E1",
            "8 KiB + 1 of dots",
            ".".repeat(8 * 1024 + 1),
            reject(&[K::TooLarge]),
        ),
        case(
            "E1",
            "1000 dots under the cap",
            ".".repeat(1000),
            reject(MALFORMED),
        ),
    ];
    let padded = signed(
        &f.es,
        &claims_with(&[("pad", Some(json!("x".repeat(6_500))))]),
    );
    assert!(padded.len() > 8 * 1024);
    t.push(case(
        "E1",
        "valid signature, 8 KiB + a little",
        padded,
        reject(&[K::TooLarge]),
    ));
    let fits = signed(
        &f.es,
        &claims_with(&[("pad", Some(json!("x".repeat(5_500))))]),
    );
    assert!(fits.len() <= 8 * 1024);
    t.push(case(
        "E1",
        "control: a valid token just under 8 KiB",
        fits,
        Accept,
    ));

    // E2: deep nesting: 10k and 100k levels exceed the size cap; under the cap, serde_json's
    // depth limit (128) refuses it without recursion trouble.
    for depth in [10_000, 100_000] {
        t.push(case(
            "E2",
            format!("{depth} levels"),
            signed(&f.es, nested(depth).as_bytes()),
            reject(&[K::TooLarge]),
        ));
    }
    let body = String::from_utf8(claims_with(&[])).unwrap();
    for depth in [129, 1_000, 2_900] {
        let p = format!(
            "{},\"deep\":{}{}}}",
            &body[..body.len() - 1],
            "[".repeat(depth),
            "]".repeat(depth)
        );
        t.push(case(
            "E2",
            format!("{depth} array levels inside the cap"),
            signed(&f.es, p.as_bytes()),
            reject(JSON),
        ));
    }
    for depth in [129, 800] {
        let p = format!(
            "{},\"deep\":{}1{}}}",
            &body[..body.len() - 1],
            "{\"a\":".repeat(depth),
            "}".repeat(depth)
        );
        t.push(case(
            "E2",
            format!("{depth} object levels inside the cap"),
            signed(&f.es, p.as_bytes()),
            reject(JSON),
        ));
    }
    let body = String::from_utf8(claims_with(&[])).unwrap();
    let p = format!(
        "{},\"deep\":{}{}}}",
        &body[..body.len() - 1],
        "[".repeat(100),
        "]".repeat(100)
    );
    t.push(case(
        "E2",
        "control: 100 levels",
        signed(&f.es, p.as_bytes()),
        Accept,
    ));
    let deep_header = format!(
        "{{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k1\",\"x\":{}{}}}",
        "[".repeat(2_000),
        "]".repeat(2_000)
    );
    t.push(case(
        "E2",
        "2000 levels in the header",
        sign_raw(&f.es, deep_header.as_bytes(), &claims_with(&[])).unwrap(),
        reject(JSON),
    ));

    // E3: big arrays, strings and numbers.
    let many: Vec<String> = (0..100_000).map(|i| format!("a{i}")).collect();
    t.push(case(
        "E3",
        "aud with 100k entries",
        signed(&f.es, &claims_with(&[("aud", Some(json!(many)))])),
        reject(&[K::TooLarge]),
    ));
    t.push(case(
        "E3",
        "1 MiB string claim",
        signed(
            &f.es,
            &claims_with(&[("s", Some(json!("x".repeat(1 << 20))))]),
        ),
        reject(&[K::TooLarge]),
    ));
    let body = String::from_utf8(claims_with(&[])).unwrap();
    let p = format!(
        "{},\"n\":1{}}}",
        &body[..body.len() - 1],
        "0".repeat(10_000)
    );
    t.push(case(
        "E3",
        "number with 10k digits",
        signed(&f.es, p.as_bytes()),
        reject(&[K::TooLarge]),
    ));
    let p = format!("{},\"n\":1{}}}", &body[..body.len() - 1], "0".repeat(5_000));
    t.push(case(
        "E3",
        "number with 5k digits inside the cap",
        signed(&f.es, p.as_bytes()),
        reject(&[K::InvalidJson]),
    ));
    let some: Vec<String> = (0..500).map(|i| format!("a{i}")).collect();
    t.push(case(
        "E3",
        "aud with 500 other entries inside the cap",
        signed(&f.es, &claims_with(&[("aud", Some(json!(some)))])),
        reject(&[K::WrongAudience]),
    ));
    let mut with_ours: Vec<String> = (0..400).map(|i| format!("a{i}")).collect();
    with_ours.push(AUD.to_owned());
    t.push(case(
        "E3",
        "control: aud with 400 others and ours",
        signed(&f.es, &claims_with(&[("aud", Some(json!(with_ours)))])),
        Accept,
    ));
    let members: String = (0..400).map(|i| format!(",\"m{i}\":0")).collect();
    let p = format!("{}{members}}}", &body[..body.len() - 1]);
    t.push(case(
        "E3",
        "control: 400 extra members",
        signed(&f.es, p.as_bytes()),
        Accept,
    ));

    run("E", t);
}

/// E2 for key sets: a deeply nested JWKS document fails to parse without overflowing the stack.
#[test]
fn e2_deep_jwks_fails_fast() {
    for depth in [10_000, 100_000] {
        let started = Instant::now();
        let doc = format!("{{\"keys\":[{}{}]}}", "[".repeat(depth), "]".repeat(depth));
        assert!(Jwks::from_slice(doc.as_bytes()).is_err());
        let doc = format!(
            "{{\"keys\":[{{\"kty\":\"EC\",\"x\":{}{}}}]}}",
            "{\"a\":".repeat(depth),
            "}".repeat(depth)
        );
        assert!(Jwks::from_slice(doc.as_bytes()).is_err());
        assert!(
            started.elapsed() < ROW_BUDGET * 4,
            "{depth}: {:?}",
            started.elapsed()
        );
    }
}

/// E4: expensive key material in a JWKS is skipped, and the set stays bounded.
#[test]
fn e4_expensive_key_material_is_skipped() {
    let f = fx();
    let good = f.es.verifying_key().to_jwk().unwrap().clone();
    let rsa = f.rs.verifying_key().to_jwk().unwrap().clone();

    let mut big_n = rsa.clone();
    big_n.kid = Some("rsa-16384".into());
    let mut n = vec![0xc5u8; 16_384 / 8];
    n[2047] |= 1;
    big_n.n = Some(b64s(&n));
    let mut huge_e = rsa.clone();
    huge_e.kid = Some("rsa-huge-e".into());
    huge_e.e = Some(b64s([0xffu8; 512]));
    let mut rsa_1024 = rsa.clone();
    rsa_1024.kid = Some("rsa-1024".into());
    rsa_1024.n = Some(b64s(&n[..128]));
    let mut e_one = rsa.clone();
    e_one.kid = Some("rsa-e-1".into());
    e_one.e = Some("AQ".into());

    let started = Instant::now();
    let jwks = Jwks {
        keys: vec![big_n, huge_e, rsa_1024, e_one, good.clone()],
    };
    let (set, skipped) = KeySet::from_jwks(&jwks);
    let loaded: Vec<_> = set.iter().map(|k| k.kid().to_owned()).collect();
    assert_eq!(loaded, ["k1"], "only the sound key loads");
    assert!(set.contains("k1"));
    let skipped: Vec<_> = skipped.iter().map(|s| s.kid.clone().unwrap()).collect();
    assert_eq!(skipped, ["rsa-16384", "rsa-huge-e", "rsa-1024", "rsa-e-1"]);

    // 10,000 keys: at most MAX_JWKS_KEYS are even parsed.
    let keys: Vec<_> = (0..10_000)
        .map(|i| {
            let mut k = good.clone();
            k.kid = Some(format!("k{i}"));
            k
        })
        .collect();
    let doc = serde_json::to_vec(&Jwks { keys }).unwrap();
    let jwks = Jwks::from_slice(&doc).unwrap();
    let (set, skipped) = KeySet::from_jwks(&jwks);
    assert_eq!(set.len(), MAX_JWKS_KEYS);
    assert_eq!(skipped.len(), 10_000 - MAX_JWKS_KEYS);
    assert!(skipped.iter().all(|s| s.error.kind() == K::InvalidKey));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Private and symmetric material never loads from a JWKS.
    let mut private = f.es.to_private_jwk().unwrap();
    private.kid = Some("with-d".into());
    let oct = f.hs.to_private_jwk().unwrap();
    let (set, skipped) = KeySet::from_jwks(&Jwks {
        keys: vec![private, oct],
    });
    assert!(set.is_empty());
    assert_eq!(skipped.len(), 2);
}
