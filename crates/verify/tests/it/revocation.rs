//! The revocation hook: asked on every hit and every miss, keyed on claims.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use crate::api_service::api_service_router;
use http::StatusCode;
use wristband_jose::ErrorKind;
use wristband_verify::{RevocationView, Verifier, INVALID_BODY};

use crate::{bearer, call, get, minter};

/// Revokes by `jti` or by `sid`, as the auth service's view will.
#[derive(Default)]
struct Denylist {
    jti: RwLock<HashSet<String>>,
    sid: RwLock<HashSet<String>>,
}

impl RevocationView for Denylist {
    fn is_revoked(&self, claims: &wristband_jose::Claims) -> bool {
        self.jti.read().unwrap().contains(&claims.jti)
            || claims
                .sid
                .as_ref()
                .is_some_and(|s| self.sid.read().unwrap().contains(s))
    }
}

#[tokio::test]
async fn revoking_a_cached_token_takes_effect_on_the_next_hit() {
    let m = minter();
    let denylist = Arc::new(Denylist::default());
    let verifier = Verifier::builder(&m.iss, &m.aud)
        .keys(wristband_testkit::keys::key_set([m.key()]))
        .revocations(denylist.clone())
        .build()
        .await
        .unwrap();
    let app = api_service_router(verifier.clone());

    let claims = m.claims("user-1").with_sid("session-1");
    let jti = claims.jti.clone();
    let token = m.sign(&claims);
    let other = m.sign(&m.claims("user-1").with_sid("session-2"));
    for t in [&token, &other] {
        let r = call(&app, get("/resource", &[("authorization", &bearer(t))])).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(verifier.cached_tokens(), 2);
    assert!(
        verifier.verify_cached(&token).unwrap().is_ok(),
        "served from the cache"
    );

    // D12: revoke by (iss, jti); the cached token fails on its next use.
    denylist.jti.write().unwrap().insert(jti);
    let r = call(
        &app,
        get("/resource", &[("authorization", &bearer(&token))]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, INVALID_BODY.as_bytes());
    assert_eq!(
        verifier.verify(&token).await.unwrap_err().kind(),
        ErrorKind::Revoked
    );
    let r = call(
        &app,
        get("/resource", &[("authorization", &bearer(&other))]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "other tokens are unaffected");

    // Revoking a session; and the check also runs on a miss (a token never seen before).
    denylist.sid.write().unwrap().insert("session-2".into());
    let r = call(
        &app,
        get("/resource", &[("authorization", &bearer(&other))]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let fresh = m.sign(&m.claims("user-1").with_sid("session-2"));
    assert_eq!(
        verifier.verify(&fresh).await.unwrap_err().kind(),
        ErrorKind::Revoked
    );

    // Closures are revocation views too.
    let closure_view = Verifier::builder(&m.iss, &m.aud)
        .keys(wristband_testkit::keys::key_set([m.key()]))
        .revocations(Arc::new(|c: &wristband_jose::Claims| c.sub == "banned"))
        .build()
        .await
        .unwrap();
    assert!(closure_view.verify(&m.token("banned", None)).await.is_err());
    assert!(closure_view.verify(&m.token("fine", None)).await.is_ok());
}
