//! Sessions and refresh-token families.

use std::sync::Arc;

use wristband_server::store::{RefreshRecord, RevocationKind, Store};

use crate::fixtures::{hash, session, user};

async fn with_user(store: &Arc<dyn Store>, id: &str) {
    store
        .create_user(&user(id, &format!("name-{id}")))
        .await
        .unwrap();
}

pub async fn sessions_create_and_lookup(store: Arc<dyn Store>) {
    with_user(&store, "u1").await;
    let s1 = session("s1", "u1", 1_000);
    let mut s2 = session("s2", "u1", 1_001);
    s2.user_agent = None;
    s2.ip = None;
    s2.client_id = "cli".to_owned();
    s2.amr = "pwd otp mfa".to_owned();
    s2.auth_time = 990;
    store.create_session(&s1, &hash("s1-g0")).await.unwrap();
    store.create_session(&s2, &hash("s2-g0")).await.unwrap();

    assert_eq!(store.session("s1").await.unwrap(), Some(s1));
    assert_eq!(store.session("s2").await.unwrap(), Some(s2));
    assert_eq!(store.session("s3").await.unwrap(), None);
    assert_eq!(
        store.refresh_token(&hash("s2-g0")).await.unwrap(),
        Some(RefreshRecord {
            session_id: "s2".to_owned(),
            generation: 0
        })
    );
    assert_eq!(store.refresh_token(&hash("nothing")).await.unwrap(), None);
    // A refresh hash belongs to one family only.
    assert!(store
        .create_session(&session("s3", "u1", 1_002), &hash("s1-g0"))
        .await
        .is_err());
    assert_eq!(
        store.session("s3").await.unwrap(),
        None,
        "the failed login left no session"
    );
}

pub async fn sessions_rotate(store: Arc<dyn Store>) {
    with_user(&store, "u1").await;
    store
        .create_session(&session("s1", "u1", 1_000), &hash("g0"))
        .await
        .unwrap();

    assert!(store.rotate("s1", 0, &hash("g1"), 1_100).await.unwrap());
    let s = store.session("s1").await.unwrap().unwrap();
    assert_eq!(
        (s.generation, s.rotated_at, s.last_used_at),
        (1, Some(1_100), 1_100)
    );
    assert_eq!(
        store.refresh_token(&hash("g1")).await.unwrap(),
        Some(RefreshRecord {
            session_id: "s1".to_owned(),
            generation: 1
        })
    );
    // The old hash stays, so that its reuse can be recognised.
    assert_eq!(
        store
            .refresh_token(&hash("g0"))
            .await
            .unwrap()
            .unwrap()
            .generation,
        0
    );

    // Lost race: the generation moved on already.
    assert!(!store.rotate("s1", 0, &hash("late"), 1_200).await.unwrap());
    assert_eq!(store.refresh_token(&hash("late")).await.unwrap(), None);
    let s = store.session("s1").await.unwrap().unwrap();
    assert_eq!(
        (s.generation, s.rotated_at, s.last_used_at),
        (1, Some(1_100), 1_100)
    );

    assert!(store.rotate("s1", 1, &hash("g2"), 1_300).await.unwrap());
    assert_eq!(store.session("s1").await.unwrap().unwrap().generation, 2);
    assert!(!store.rotate("nobody", 0, &hash("x"), 1_300).await.unwrap());
}

pub async fn sessions_rotate_revoked_refused(store: Arc<dyn Store>) {
    with_user(&store, "u1").await;
    store
        .create_session(&session("s1", "u1", 1_000), &hash("g0"))
        .await
        .unwrap();
    assert!(store.revoke_session("s1", "logout", 1_050).await.unwrap());
    assert!(!store.rotate("s1", 0, &hash("g1"), 1_100).await.unwrap());
    assert_eq!(store.refresh_token(&hash("g1")).await.unwrap(), None);
    let s = store.session("s1").await.unwrap().unwrap();
    assert_eq!((s.generation, s.rotated_at), (0, None));
}

pub async fn sessions_touch(store: Arc<dyn Store>) {
    with_user(&store, "u1").await;
    store
        .create_session(&session("s1", "u1", 1_000), &hash("g0"))
        .await
        .unwrap();
    store.touch_session("s1", 1_500).await.unwrap();
    assert_eq!(
        store.session("s1").await.unwrap().unwrap().last_used_at,
        1_500
    );
    // Never backwards.
    store.touch_session("s1", 1_200).await.unwrap();
    assert_eq!(
        store.session("s1").await.unwrap().unwrap().last_used_at,
        1_500
    );
    store.touch_session("nobody", 1_600).await.unwrap();
}

pub async fn sessions_revoke(store: Arc<dyn Store>) {
    with_user(&store, "u1").await;
    store
        .create_session(&session("s1", "u1", 1_000), &hash("g0"))
        .await
        .unwrap();
    assert!(store.revoke_session("s1", "logout", 1_100).await.unwrap());
    assert_eq!(
        store.session("s1").await.unwrap().unwrap().revoked_at,
        Some(1_100)
    );
    assert!(!store.revoke_session("s1", "again", 1_200).await.unwrap());
    assert_eq!(
        store.session("s1").await.unwrap().unwrap().revoked_at,
        Some(1_100)
    );
    assert!(!store.revoke_session("nobody", "x", 1_200).await.unwrap());
    // Revoking a session does not by itself tell the verifiers.
    assert!(store
        .revocations_after(0, 1_100, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn sessions_revoke_recorded_once(store: Arc<dyn Store>) {
    with_user(&store, "u1").await;
    store
        .create_session(&session("s1", "u1", 1_000), &hash("a"))
        .await
        .unwrap();
    store
        .create_session(&session("s2", "u1", 1_000), &hash("b"))
        .await
        .unwrap();

    let rec = store
        .revoke_session_recorded("s1", "admin", 1_100, 5_000)
        .await
        .unwrap()
        .expect("first revocation is recorded");
    assert_eq!(rec.kind, RevocationKind::Sid);
    assert_eq!(rec.value, "s1");
    assert_eq!(
        (rec.before, rec.created_at, rec.expires_at),
        (None, 1_100, 5_000)
    );
    assert_eq!(
        store.session("s1").await.unwrap().unwrap().revoked_at,
        Some(1_100)
    );
    assert_eq!(
        store.revocations_after(0, 1_100, 10).await.unwrap(),
        vec![rec.clone()]
    );

    assert_eq!(
        store
            .revoke_session_recorded("s1", "again", 1_200, 5_000)
            .await
            .unwrap(),
        None
    );
    assert!(store.revoke_session("s2", "logout", 1_150).await.unwrap());
    assert_eq!(
        store
            .revoke_session_recorded("s2", "admin", 1_200, 5_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .revoke_session_recorded("nobody", "x", 1_200, 5_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.revocations_after(0, 1_200, 10).await.unwrap(),
        vec![rec]
    );
    assert!(store
        .is_revoked("j", Some("s1"), "u1", 1_000, None, 1_200)
        .await
        .unwrap());
}

pub async fn sessions_revoke_user_sessions(store: Arc<dyn Store>) {
    with_user(&store, "u1").await;
    with_user(&store, "u2").await;
    for (sid, uid) in [("a", "u1"), ("b", "u1"), ("c", "u1"), ("d", "u2")] {
        store
            .create_session(&session(sid, uid, 1_000), &hash(sid))
            .await
            .unwrap();
    }
    assert!(store.revoke_session("c", "logout", 1_050).await.unwrap());

    assert_eq!(
        store
            .revoke_user_sessions("u1", "password", 1_100)
            .await
            .unwrap(),
        2
    );
    for sid in ["a", "b"] {
        assert_eq!(
            store.session(sid).await.unwrap().unwrap().revoked_at,
            Some(1_100)
        );
    }
    assert_eq!(
        store.session("c").await.unwrap().unwrap().revoked_at,
        Some(1_050)
    );
    assert_eq!(store.session("d").await.unwrap().unwrap().revoked_at, None);
    assert_eq!(
        store
            .revoke_user_sessions("u1", "again", 1_200)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .revoke_user_sessions("nobody", "x", 1_200)
            .await
            .unwrap(),
        0
    );
}

pub async fn sessions_user_sessions_order_and_liveness(store: Arc<dyn Store>) {
    with_user(&store, "u1").await;
    with_user(&store, "u2").await;
    let mut expired = session("expired", "u1", 100);
    expired.absolute_expires_at = 2_000;
    let sessions = [
        session("old", "u1", 1_000),
        session("new-b", "u1", 1_300),
        session("mid", "u1", 1_200),
        session("new-a", "u1", 1_300),
        session("revoked", "u1", 1_400),
        expired,
        session("other-user", "u2", 1_500),
    ];
    for s in &sessions {
        store.create_session(s, &hash(&s.id)).await.unwrap();
    }
    assert!(store
        .revoke_session("revoked", "logout", 1_450)
        .await
        .unwrap());

    let ids = |v: Vec<wristband_server::store::SessionRecord>| {
        v.into_iter().map(|s| s.id).collect::<Vec<_>>()
    };
    // Newest first, ties by id; revoked sessions and those at or past their absolute
    // expiry are not live.
    assert_eq!(
        ids(store.user_sessions("u1", 2_000).await.unwrap()),
        ["new-a", "new-b", "mid", "old"]
    );
    assert_eq!(
        ids(store.user_sessions("u1", 1_999).await.unwrap()),
        ["new-a", "new-b", "mid", "old", "expired"]
    );
    assert_eq!(
        store.user_sessions("u1", 2_000).await.unwrap()[3],
        sessions[0]
    );
    assert!(store
        .user_sessions("nobody", 2_000)
        .await
        .unwrap()
        .is_empty());
}
