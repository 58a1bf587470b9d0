//! B2: `jku` / `x5u` pointing at a listener we control: refused, and never contacted.

use std::time::Duration;

use crate::api_service::api_service_router;
use http::StatusCode;
use wristband_jose::Algorithm;
use wristband_testkit::{keys, Canary, JwksServer, Minter};
use wristband_verify::INVALID_BODY;

use crate::{bearer, call, get, remote_verifier, AUDIENCE};

#[tokio::test]
async fn key_urls_in_tokens_are_never_fetched() {
    let canary = Canary::start().await;
    let key = keys::fixed(Algorithm::ES256, 1);
    let server = JwksServer::start(keys::jwks([&key])).await;
    // A short cooldown so that every unknown kid below could fetch, if anything did.
    let verifier = remote_verifier(&server, Duration::from_millis(1)).await;
    let app = api_service_router(verifier);
    let attacker = Minter::new(keys::fixed(Algorithm::ES256, 3), server.issuer(), AUDIENCE);
    let legit = Minter::new(key, server.issuer(), AUDIENCE);
    let fetches = server.jwks_fetches();

    for (name, url) in [
        ("jku", canary.url("/jwks.json")),
        ("x5u", canary.url("/cert.pem")),
        ("jku", "http://169.254.169.254/latest/meta-data/".to_owned()),
        ("jku", "file:///etc/passwd".to_owned()),
    ] {
        for m in [&attacker, &legit] {
            let mut header = m.header();
            header[name] = serde_json::Value::String(url.clone());
            let token = m.sign_with_header(&header, &m.claims("u"));
            tokio::time::sleep(Duration::from_millis(2)).await;
            let reply = call(
                &app,
                get("/resource", &[("authorization", &bearer(&token))]),
            )
            .await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name} {url}");
            assert_eq!(reply.body, INVALID_BODY.as_bytes());
        }
    }
    // Let any stray connection land before counting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        canary.hits(),
        0,
        "nothing may connect to a URL named by a token"
    );
    // The header is refused at parse time: not even the trusted JWKS was refetched.
    assert_eq!(server.jwks_fetches(), fetches);
}
