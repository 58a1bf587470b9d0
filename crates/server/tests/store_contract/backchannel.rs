//! Back-channel logout: the queue of logout tokens and the follower's cursor.

use std::collections::BTreeSet;
use std::sync::Arc;

use wristband_server::store::{BackchannelRecord, Store};

use crate::fixtures::{hash, session, user};

fn delivery(revocation_id: i64, client_id: &str, sid: &str, now: i64) -> BackchannelRecord {
    BackchannelRecord {
        id: 0,
        revocation_id,
        client_id: client_id.to_owned(),
        sid: sid.to_owned(),
        sub: "u1".to_owned(),
        uri: format!("https://{client_id}.example/backchannel"),
        jti: format!("jti-{revocation_id}-{client_id}-{sid}"),
        created_at: now,
        attempts: 0,
        next_attempt_at: now,
    }
}

pub async fn backchannel_cursor_only_moves_forward(store: Arc<dyn Store>) {
    // A new store starts at the newest revocation: none.
    assert_eq!(store.backchannel_cursor().await.unwrap(), 0);
    store.advance_backchannel_cursor(7).await.unwrap();
    assert_eq!(store.backchannel_cursor().await.unwrap(), 7);
    // Another instance that is behind does not move it back.
    store.advance_backchannel_cursor(3).await.unwrap();
    assert_eq!(store.backchannel_cursor().await.unwrap(), 7);
    store.advance_backchannel_cursor(12).await.unwrap();
    assert_eq!(store.backchannel_cursor().await.unwrap(), 12);
}

pub async fn backchannel_queues_each_token_once(store: Arc<dyn Store>) {
    assert!(store
        .enqueue_backchannel(&delivery(1, "rp1", "s1", 1_000))
        .await
        .unwrap());
    // The same revocation, client and session again (another instance): not queued twice,
    // even with another jti.
    let mut again = delivery(1, "rp1", "s1", 1_001);
    again.jti = "other".to_owned();
    assert!(!store.enqueue_backchannel(&again).await.unwrap());
    // Another client, session or revocation is another token.
    assert!(store
        .enqueue_backchannel(&delivery(1, "rp2", "s1", 1_000))
        .await
        .unwrap());
    assert!(store
        .enqueue_backchannel(&delivery(1, "rp1", "s2", 1_000))
        .await
        .unwrap());
    assert!(store
        .enqueue_backchannel(&delivery(2, "rp1", "s1", 1_000))
        .await
        .unwrap());
    let pending = store.pending_backchannel().await.unwrap();
    assert_eq!(pending.len(), 4);
    let first = &pending[0];
    assert_eq!(
        (
            first.revocation_id,
            first.client_id.as_str(),
            first.sid.as_str()
        ),
        (1, "rp1", "s1")
    );
    assert_eq!(first.jti, "jti-1-rp1-s1");
    assert_eq!(first.uri, "https://rp1.example/backchannel");
    assert_eq!((first.sub.as_str(), first.attempts), ("u1", 0));
    let ids: BTreeSet<i64> = pending.iter().map(|d| d.id).collect();
    assert_eq!(ids.len(), 4, "every delivery has its own id");
}

pub async fn backchannel_claims_lease_and_finish(store: Arc<dyn Store>) {
    store
        .enqueue_backchannel(&delivery(1, "rp1", "s1", 1_000))
        .await
        .unwrap();
    let mut later = delivery(1, "rp2", "s1", 1_000);
    later.next_attempt_at = 1_005;
    store.enqueue_backchannel(&later).await.unwrap();

    // Only what is due is claimed, with one more attempt counted.
    let claimed = store.claim_backchannel(1_000, 1_030, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].client_id.as_str(), claimed[0].attempts),
        ("rp1", 1)
    );
    let id = claimed[0].id;
    // Leased: nobody claims it again before the lease ends.
    assert!(store
        .claim_backchannel(1_010, 1_040, 10)
        .await
        .unwrap()
        .iter()
        .all(|d| d.id != id));
    // A failed attempt releases it, due again later.
    assert!(store.backchannel_retry_at(id, 1_050).await.unwrap());
    assert!(store
        .claim_backchannel(1_049, 1_079, 10)
        .await
        .unwrap()
        .iter()
        .all(|d| d.id != id));
    let again = store.claim_backchannel(1_050, 1_080, 10).await.unwrap();
    let again: Vec<_> = again.iter().filter(|d| d.id == id).collect();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    // Delivered: finished, never claimed again, and only once.
    assert!(store.backchannel_delivered(id, 1_051).await.unwrap());
    assert!(!store.backchannel_delivered(id, 1_052).await.unwrap());
    assert!(!store.backchannel_retry_at(id, 1_060).await.unwrap());
    assert!(store
        .claim_backchannel(1_060, 1_090, 10)
        .await
        .unwrap()
        .is_empty());

    // A lease that ran out (its instance died) is claimed again: a restart finishes it.
    let other = store.pending_backchannel().await.unwrap();
    assert_eq!(other.len(), 1);
    let other_id = other[0].id;
    // Its last lease (taken at 1_049) has run out by 1_080: it is claimed again.
    let reclaimed = store.claim_backchannel(1_080, 1_110, 10).await.unwrap();
    assert_eq!(
        reclaimed.iter().map(|d| d.id).collect::<Vec<_>>(),
        [other_id]
    );
    // Given up: finished too.
    assert!(store.backchannel_gave_up(other_id, 1_090).await.unwrap());
    assert!(!store.backchannel_gave_up(other_id, 1_091).await.unwrap());
    assert!(store.pending_backchannel().await.unwrap().is_empty());
    assert!(store
        .claim_backchannel(9_000, 9_030, 10)
        .await
        .unwrap()
        .is_empty());

    // Finished rows are pruned after the given time, pending ones never.
    store
        .enqueue_backchannel(&delivery(3, "rp1", "s9", 1_000))
        .await
        .unwrap();
    assert_eq!(store.prune_backchannel(1_050).await.unwrap(), 0);
    assert_eq!(store.prune_backchannel(1_091).await.unwrap(), 2);
    assert_eq!(store.pending_backchannel().await.unwrap().len(), 1);
}

pub async fn backchannel_concurrent_claims_never_share_a_row(store: Arc<dyn Store>) {
    for i in 0..60 {
        store
            .enqueue_backchannel(&delivery(i, "rp", &format!("s{i}"), 1_000))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store.claim_backchannel(1_000, 1_030, 4).await.unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.into_iter().map(|d| d.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 60, "every row claimed once: {all:?}");
    assert_eq!(distinct.len(), 60);
}

pub async fn backchannel_sign_in_sessions_at_a_cutoff(store: Arc<dyn Store>) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    store.create_user(&user("u2", "bob")).await.unwrap();
    // Live at the cut-off (1_500).
    store
        .create_session(&session("a-live", "u1", 1_000), &hash("a"))
        .await
        .unwrap();
    // Ended by the cut-off itself (revoked at 1_500).
    store
        .create_session(&session("b-cut", "u1", 1_100), &hash("b"))
        .await
        .unwrap();
    store
        .revoke_session("b-cut", "logout_all", 1_500)
        .await
        .unwrap();
    // Ended before it.
    store
        .create_session(&session("c-old", "u1", 1_000), &hash("c"))
        .await
        .unwrap();
    store
        .revoke_session("c-old", "logout", 1_200)
        .await
        .unwrap();
    // Made after it.
    store
        .create_session(&session("d-new", "u1", 1_501), &hash("d"))
        .await
        .unwrap();
    // Expired before it.
    let mut expired = session("e-expired", "u1", 100);
    expired.absolute_expires_at = 1_400;
    store.create_session(&expired, &hash("e")).await.unwrap();
    // A child session (made by a code exchange) is not a sign-in session.
    let mut child = session("f-child", "u1", 1_200);
    child.parent_id = Some("a-live".to_owned());
    child.client_id = "rp".to_owned();
    store.create_session(&child, &hash("f")).await.unwrap();
    // Another user's.
    store
        .create_session(&session("g-bob", "u2", 1_000), &hash("g"))
        .await
        .unwrap();

    let found = store.sign_in_sessions_at("u1", 1_500).await.unwrap();
    let ids: Vec<&str> = found.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["a-live", "b-cut"]);
    assert!(store
        .sign_in_sessions_at("nobody", 1_500)
        .await
        .unwrap()
        .is_empty());
}
