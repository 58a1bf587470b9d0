//! Revocation records: the feed, the checks, pruning.

use std::sync::Arc;

use wristband_server::store::{RevocationKind, Store};

use crate::fixtures::{hash, opaque, session, user};

pub async fn revocations_feed_cursor_limit_expiry(store: Arc<dyn Store>) {
    let mut made = Vec::new();
    for (i, expires) in [5_000, 1_500, 5_000, 5_000, 2_000].into_iter().enumerate() {
        let r = store
            .add_revocation(
                RevocationKind::Jti,
                &format!("j{i}"),
                None,
                None,
                1_000,
                expires,
            )
            .await
            .unwrap();
        assert_eq!(
            (r.kind, r.value.as_str()),
            (RevocationKind::Jti, format!("j{i}").as_str())
        );
        assert_eq!(
            (r.before, r.created_at, r.expires_at),
            (None, 1_000, expires)
        );
        made.push(r);
    }
    assert!(
        made.windows(2).all(|w| w[0].id < w[1].id),
        "ids grow: {made:?}"
    );

    assert_eq!(store.revocations_after(0, 1_000, 100).await.unwrap(), made);
    // Cursor and limit.
    assert_eq!(
        store.revocations_after(made[0].id, 1_000, 2).await.unwrap(),
        made[1..3].to_vec()
    );
    assert_eq!(
        store
            .revocations_after(made[4].id, 1_000, 100)
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(store.revocations_after(0, 1_000, 0).await.unwrap(), vec![]);
    // Expired records (expires_at <= now) are skipped, not counted against the limit.
    let at_1500: Vec<_> = store.revocations_after(0, 1_500, 100).await.unwrap();
    assert_eq!(
        at_1500,
        vec![
            made[0].clone(),
            made[2].clone(),
            made[3].clone(),
            made[4].clone()
        ]
    );
    assert_eq!(
        store.revocations_after(made[0].id, 2_000, 1).await.unwrap(),
        vec![made[2].clone()]
    );
}

pub async fn revocations_ids_survive_prune(store: Arc<dyn Store>) {
    let a = store
        .add_revocation(RevocationKind::Jti, "a", None, None, 100, 200)
        .await
        .unwrap();
    let b = store
        .add_revocation(RevocationKind::Jti, "b", None, None, 100, 200)
        .await
        .unwrap();
    assert_eq!(store.prune(300).await.unwrap(), 2);
    let c = store
        .add_revocation(RevocationKind::Jti, "c", None, None, 300, 400)
        .await
        .unwrap();
    assert!(
        a.id < b.id && b.id < c.id,
        "an id is never handed out twice: {a:?} {b:?} {c:?}"
    );
    assert_eq!(
        store.revocations_after(b.id, 300, 10).await.unwrap(),
        vec![c]
    );
}

pub async fn revocations_is_revoked(store: Arc<dyn Store>) {
    store
        .add_revocation(RevocationKind::Jti, "jti-1", None, None, 1_000, 9_000)
        .await
        .unwrap();
    store
        .add_revocation(RevocationKind::Sid, "sid-1", None, None, 1_000, 9_000)
        .await
        .unwrap();
    store
        .add_revocation(RevocationKind::Sub, "alice", Some(500), None, 1_000, 9_000)
        .await
        .unwrap();
    store
        .add_revocation(RevocationKind::Kid, "key-1", None, None, 1_000, 9_000)
        .await
        .unwrap();
    store
        .add_revocation(RevocationKind::Jti, "old", None, None, 1_000, 2_000)
        .await
        .unwrap();

    let now = 1_500;
    let check = |jti: &'static str, sid: Option<&'static str>, sub: &'static str, iat: i64| {
        let store = Arc::clone(&store);
        async move {
            store
                .is_revoked(jti, sid, sub, iat, None, now)
                .await
                .unwrap()
        }
    };
    assert!(check("jti-1", None, "bob", 1_000).await);
    assert!(!check("jti-2", None, "bob", 1_000).await);
    assert!(check("x", Some("sid-1"), "bob", 1_000).await);
    assert!(!check("x", Some("sid-2"), "bob", 1_000).await);
    assert!(!check("x", None, "bob", 1_000).await);
    // Subject cut-off: issued at or before `before`.
    assert!(check("x", None, "alice", 499).await);
    assert!(check("x", None, "alice", 500).await);
    assert!(!check("x", None, "alice", 501).await);
    assert!(!check("x", None, "alicia", 100).await);
    // Kinds do not mix: a sid or kid value used as a jti is not a jti revocation.
    assert!(!check("sid-1", None, "bob", 1_000).await);
    assert!(!check("key-1", Some("key-1"), "key-1", 1_000).await);
    // Expired records no longer count.
    assert!(check("old", None, "bob", 1_000).await);
    assert!(!store
        .is_revoked("old", None, "bob", 1_000, None, 2_000)
        .await
        .unwrap());
    assert!(store
        .is_revoked("jti-1", None, "bob", 1_000, None, 8_999)
        .await
        .unwrap());
    assert!(!store
        .is_revoked("jti-1", None, "bob", 1_000, None, 9_000)
        .await
        .unwrap());
}

async fn with_user(store: &Arc<dyn Store>, id: &str) {
    store.create_user(&user(id, id)).await.unwrap();
}

/// `token_ended`: `is_revoked`, or a user token's session unknown, revoked or another
/// subject's; a token without a session rests on the records alone.
pub async fn revocations_token_ended(store: Arc<dyn Store>) {
    with_user(&store, "u1").await;
    with_user(&store, "u2").await;
    for sid in ["live", "ended", "recorded"] {
        store
            .create_session(&session(sid, "u1", 1_000), &hash(sid))
            .await
            .unwrap();
    }
    assert!(store
        .revoke_session("ended", "logout", 1_100)
        .await
        .unwrap());
    store
        .add_revocation(RevocationKind::Sid, "recorded", None, None, 1_100, 9_000)
        .await
        .unwrap();
    store
        .add_revocation(RevocationKind::Jti, "jti-1", None, None, 1_100, 9_000)
        .await
        .unwrap();
    store
        .add_revocation(
            RevocationKind::Sub,
            "u2",
            Some(1_050),
            Some(1_050_500),
            1_100,
            9_000,
        )
        .await
        .unwrap();

    let now = 1_200;
    let ended = |jti: &'static str, sid: Option<&'static str>, sub: &'static str, iat_ms| {
        let store = Arc::clone(&store);
        async move {
            let iat = 1_050;
            let by_records = store
                .is_revoked(jti, sid, sub, iat, iat_ms, now)
                .await
                .unwrap();
            let ended = store
                .token_ended(jti, sid, sub, iat, iat_ms, now)
                .await
                .unwrap();
            assert!(
                !by_records || ended,
                "{jti} {sid:?} {sub}: a record covers it"
            );
            ended
        }
    };
    assert!(!ended("x", Some("live"), "u1", None).await);
    assert!(!ended("x", None, "u1", None).await);
    // The session: revoked, unknown, or another user's.
    assert!(ended("x", Some("ended"), "u1", None).await);
    assert!(ended("x", Some("nothing"), "u1", None).await);
    assert!(ended("x", Some("live"), "u2", None).await);
    // The records: jti, sid (the session itself still live), sub cut-off to the millisecond.
    assert!(ended("jti-1", Some("live"), "u1", None).await);
    assert!(ended("jti-1", None, "u1", None).await);
    assert!(ended("x", Some("recorded"), "u1", None).await);
    assert!(ended("x", None, "u2", Some(1_050_500)).await);
    assert!(!ended("x", None, "u2", Some(1_050_501)).await);
    assert!(ended("x", None, "u2", None).await);
    // Records expire; the session check does not.
    assert!(!store
        .token_ended("jti-1", None, "u1", 1_050, None, 9_000)
        .await
        .unwrap());
    assert!(store
        .token_ended("jti-1", Some("ended"), "u1", 1_050, None, 9_000)
        .await
        .unwrap());
}

/// Issue 11, item 10: a subject cut-off recorded to the millisecond covers a token issued
/// earlier in the same second but not one issued later; without milliseconds on either
/// side the whole-second rule stands.
pub async fn revocations_subject_cutoff_milliseconds(store: Arc<dyn Store>) {
    let r = store
        .add_revocation(
            RevocationKind::Sub,
            "alice",
            Some(1_000),
            Some(1_000_200),
            1_000,
            9_000,
        )
        .await
        .unwrap();
    assert_eq!((r.before, r.before_ms), (Some(1_000), Some(1_000_200)));
    // An old-style record, without milliseconds.
    store
        .add_revocation(RevocationKind::Sub, "bob", Some(1_000), None, 1_000, 9_000)
        .await
        .unwrap();
    let check = |sub: &'static str, iat: i64, iat_ms: Option<i64>| {
        let store = Arc::clone(&store);
        async move {
            store
                .is_revoked("x", None, sub, iat, iat_ms, 1_500)
                .await
                .unwrap()
        }
    };
    assert!(
        check("alice", 1_000, Some(1_000_100)).await,
        "issued before"
    );
    assert!(
        check("alice", 1_000, Some(1_000_200)).await,
        "at the cut-off"
    );
    assert!(
        !check("alice", 1_000, Some(1_000_700)).await,
        "issued after"
    );
    assert!(check("alice", 1_000, None).await, "a token without iat_ms");
    assert!(check("alice", 999, Some(999_900)).await);
    assert!(!check("alice", 1_001, Some(1_001_000)).await);
    assert!(check("bob", 1_000, Some(1_000_700)).await, "an old record");
    assert!(!check("bob", 1_001, Some(1_001_000)).await);
    let feed = store.revocations_after(0, 1_500, 10).await.unwrap();
    assert_eq!(
        feed.iter().map(|r| r.before_ms).collect::<Vec<_>>(),
        vec![Some(1_000_200), None]
    );
}

pub async fn revocations_kid_kind(store: Arc<dyn Store>) {
    let r = store
        .add_revocation(RevocationKind::Kid, "key-9", None, None, 10, 20)
        .await
        .unwrap();
    let s = store
        .add_revocation(RevocationKind::Sub, "bob", Some(7), None, 10, 20)
        .await
        .unwrap();
    assert_eq!(
        (r.kind, r.value.as_str(), r.before),
        (RevocationKind::Kid, "key-9", None)
    );
    assert_eq!((s.kind, s.before), (RevocationKind::Sub, Some(7)));
    assert_eq!(
        store.revocations_after(0, 10, 10).await.unwrap(),
        vec![r, s]
    );
}

pub async fn revocations_prune(store: Arc<dyn Store>) {
    let live = store
        .add_revocation(RevocationKind::Jti, "live", None, None, 100, 1_001)
        .await
        .unwrap();
    store
        .add_revocation(RevocationKind::Jti, "gone", None, None, 100, 1_000)
        .await
        .unwrap();
    store
        .add_revocation(RevocationKind::Sid, "gone2", None, None, 100, 500)
        .await
        .unwrap();
    let mut t_live = opaque("t-live");
    t_live.exp = 1_001;
    let mut t_gone = opaque("t-gone");
    t_gone.exp = 1_000;
    store.put_opaque_token(b"live-hash", &t_live).await.unwrap();
    store.put_opaque_token(b"gone-hash", &t_gone).await.unwrap();

    assert_eq!(store.prune(1_000).await.unwrap(), 3);
    assert_eq!(store.prune(1_000).await.unwrap(), 0);
    assert_eq!(store.revocations_after(0, 0, 10).await.unwrap(), vec![live]);
    assert_eq!(
        store.opaque_token(b"live-hash").await.unwrap(),
        Some(t_live)
    );
    assert_eq!(store.opaque_token(b"gone-hash").await.unwrap(), None);
}

/// Where the feed's tail starts: the highest id so far, 0 on an empty store.
pub async fn revocations_last_id(store: Arc<dyn Store>) {
    assert_eq!(store.last_revocation_id().await.unwrap(), 0);
    let mut last = 0;
    for i in 0..3 {
        last = store
            .add_revocation(
                RevocationKind::Jti,
                &format!("j{i}"),
                None,
                None,
                1_000,
                2_000,
            )
            .await
            .unwrap()
            .id;
    }
    // Expired records count too: the tail starts above every id taken.
    assert_eq!(store.last_revocation_id().await.unwrap(), last);
    let next = store
        .add_revocation(RevocationKind::Sid, "s", None, None, 3_000, 4_000)
        .await
        .unwrap();
    assert_eq!(store.last_revocation_id().await.unwrap(), next.id);
}
