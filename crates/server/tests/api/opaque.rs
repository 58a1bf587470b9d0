//! Opaque (reference) access tokens: per client, or for every login.

use serde_json::json;
use wristband_server::domain::TokenFormat;

use crate::helpers::{kinds, TestApp};

fn is_opaque(token: &str) -> bool {
    token.len() == 4 + 43
        && token.starts_with("wbo_")
        && token[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[tokio::test]
async fn an_opaque_client_gets_reference_tokens_that_introspect_and_revoke() {
    let t = TestApp::spawn().await;
    let rs = t.resource_server("rs").await;
    let c = t
        .add_client(
            "batch",
            "service",
            &["jobs:run"],
            &["jobs-api"],
            TokenFormat::Opaque,
        )
        .await;
    let at = t.client_token(&c).await;
    assert!(is_opaque(&at), "an opaque token, not a JWT");
    assert_ne!(t.client_token(&c).await, at, "every token is fresh");

    let r = t.introspect(&rs, &at).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let jti = j["jti"].as_str().unwrap().to_owned();
    assert_eq!(
        j,
        json!({
            "active": true,
            "sub": c.id,
            "client_id": c.id,
            "scope": "jobs:run",
            "aud": "jobs-api",
            "iss": t.base,
            "token_type": "Bearer",
            "iat": t.now(),
            "iat_ms": t.now() * 1000,
            "exp": t.now() + 900,
            "jti": jti,
        })
    );

    // A service token is not a user's: /v1/me refuses it as forbidden.
    assert_eq!(t.me(&at).await.status, 403);

    // RFC 7009 revokes it by jti; the feed carries the record.
    assert_eq!(t.revoke(&c, &at, None).await.status, 200);
    assert_eq!(
        t.introspect(&rs, &at).await.json(),
        json!({"active": false})
    );
    let feed = t.revocations(&t.client_token(&rs).await).await;
    assert_eq!(kinds(&feed), [("jti".to_owned(), jti)]);

    // Expiry applies to opaque tokens too, and prune forgets them.
    let other = t.client_token(&c).await;
    t.advance(900);
    assert_eq!(
        t.introspect(&rs, &other).await.json(),
        json!({"active": false})
    );
    assert!(t.app.prune().await.unwrap() >= 2);
}

#[tokio::test]
async fn with_the_global_setting_logins_issue_opaque_tokens_that_work_everywhere() {
    let t = TestApp::spawn_with(|c| c.access_token_format = TokenFormat::Opaque).await;
    let rs = t.resource_server("rs").await;
    let id = t.add_user("alice", "admin").await;
    let (at, rt) = t.tokens("alice").await;
    assert!(is_opaque(&at));
    let me = t.me(&at).await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(
        me.json(),
        json!({"id": id, "username": "alice", "role": "admin"})
    );
    let j = t.introspect(&rs, &at).await.json();
    assert_eq!(j["active"], true);
    assert_eq!(j["sub"], id.as_str());
    assert_eq!(j["role"], "admin");
    assert_eq!(j["client_id"], "wristband");
    assert!(j["sid"].as_str().unwrap().starts_with("ses_"));

    // Refresh issues opaque tokens as well.
    let r = t.refresh(&rt).await;
    assert_eq!(r.status, 200);
    let at2 = r.json()["access_token"].as_str().unwrap().to_owned();
    assert!(is_opaque(&at2));
    assert_eq!(t.me(&at2).await.status, 200);

    // Logout ends both (one session).
    assert_eq!(t.logout(&at2, None).await.status, 204);
    for token in [&at, &at2] {
        assert_eq!(t.me(token).await.status, 401);
        assert_eq!(
            t.introspect(&rs, token).await.json(),
            json!({"active": false})
        );
    }

    // RFC 7009 on an opaque user token ends only that token.
    let (at3, rt3) = t.tokens("alice").await;
    let r = t
        .post_form(
            "/oauth2/revoke",
            &[("token", at3.as_str()), ("client_id", "wristband")],
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(t.me(&at3).await.status, 401);
    assert_eq!(t.refresh(&rt3).await.status, 200);

    // Tampering with an opaque token is just an unknown token.
    let (at4, _) = t.tokens("alice").await;
    let mut bad = at4.clone();
    bad.pop();
    bad.push(if at4.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(t.me(&bad).await.status, 401);
    assert_eq!(t.me(&at4).await.status, 200);
}

#[tokio::test]
async fn a_jwt_client_still_gets_jwts_when_logins_are_opaque() {
    let t = TestApp::spawn_with(|c| c.access_token_format = TokenFormat::Opaque).await;
    let c = t
        .add_client("svc", "service", &[], &["wristband"], TokenFormat::Jwt)
        .await;
    let at = t.client_token(&c).await;
    assert_eq!(at.split('.').count(), 3);
}
