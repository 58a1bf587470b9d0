//! Signing keys and sealed secrets.

use std::sync::Arc;

use wristband_server::store::{KeyChange, KeyState, RevocationKind, Store, StoreError};

use crate::fixtures::{is_conflict, key};

fn change(kid: &str, from: KeyState, to: KeyState, at: i64, until: Option<i64>) -> KeyChange {
    KeyChange {
        kid: kid.to_owned(),
        from,
        to,
        at,
        until,
    }
}

async fn states(store: &Arc<dyn Store>) -> Vec<(String, KeyState)> {
    store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect()
}

fn st(v: &[(&str, KeyState)]) -> Vec<(String, KeyState)> {
    v.iter().map(|(k, s)| ((*k).to_owned(), *s)).collect()
}

pub async fn keys_insert_and_list(store: Arc<dyn Store>) {
    let next = key("k-next", KeyState::Next, 300);
    let current = key("k-cur", KeyState::Current, 200);
    let mut retired = key("k-old", KeyState::Retired, 100);
    retired.retired_at = Some(200);
    retired.removes_at = Some(900);
    let mut same_time = key("k-b", KeyState::Retired, 100);
    same_time.private_key = None;
    for k in [&next, &current, &same_time, &retired] {
        store.insert_key(k).await.unwrap();
    }
    // Oldest first, ties by kid.
    assert_eq!(
        store.list_keys().await.unwrap(),
        vec![same_time, retired, current.clone(), next]
    );
    assert!(is_conflict(
        store
            .insert_key(&key("k-cur", KeyState::Retired, 400))
            .await
    ));
    assert_eq!(store.list_keys().await.unwrap().len(), 4);
    assert!(format!("{current:?}").contains("k-cur"));
    assert!(
        !format!("{current:?}").contains("sealed"),
        "Debug shows no key material"
    );
}

pub async fn keys_one_current_one_next(store: Arc<dyn Store>) {
    store
        .insert_key(&key("a", KeyState::Current, 100))
        .await
        .unwrap();
    store
        .insert_key(&key("b", KeyState::Next, 110))
        .await
        .unwrap();
    assert!(is_conflict(
        store.insert_key(&key("c", KeyState::Current, 120)).await
    ));
    assert!(is_conflict(
        store.insert_key(&key("d", KeyState::Next, 130)).await
    ));
    // Any number of retired, removed and revoked keys.
    for (kid, state) in [
        ("e", KeyState::Retired),
        ("f", KeyState::Retired),
        ("g", KeyState::Removed),
        ("h", KeyState::Revoked),
    ] {
        store.insert_key(&key(kid, state, 140)).await.unwrap();
    }
    assert_eq!(store.list_keys().await.unwrap().len(), 6);
}

pub async fn keys_change_in_order(store: Arc<dyn Store>) {
    store
        .insert_key(&key("a", KeyState::Current, 100))
        .await
        .unwrap();
    store
        .insert_key(&key("b", KeyState::Next, 110))
        .await
        .unwrap();
    // Retiring the current key first frees the one current slot for the next key.
    let done = store
        .change_keys(&[
            change("a", KeyState::Current, KeyState::Retired, 500, Some(900)),
            change("b", KeyState::Next, KeyState::Current, 500, None),
        ])
        .await
        .unwrap();
    assert!(done);
    let keys = store.list_keys().await.unwrap();
    assert_eq!(
        (keys[0].state, keys[0].retired_at, keys[0].removes_at),
        (KeyState::Retired, Some(500), Some(900))
    );
    assert!(
        keys[0].private_key.is_some(),
        "a retired key keeps its private half"
    );
    assert_eq!(
        (keys[1].state, keys[1].activated_at),
        (KeyState::Current, Some(500))
    );
    assert!(store.change_keys(&[]).await.unwrap());
    assert!(
        store
            .change_keys(&[change("b", KeyState::Current, KeyState::Next, 600, None)])
            .await
            .is_err(),
        "no key goes back to next"
    );
    assert_eq!(
        states(&store).await,
        st(&[("a", KeyState::Retired), ("b", KeyState::Current)])
    );
}

pub async fn keys_change_all_or_nothing(store: Arc<dyn Store>) {
    store
        .insert_key(&key("a", KeyState::Current, 100))
        .await
        .unwrap();
    store
        .insert_key(&key("b", KeyState::Next, 110))
        .await
        .unwrap();
    let before = store.list_keys().await.unwrap();
    // The second change expects a state its key is not in: the first is undone.
    let done = store
        .change_keys(&[
            change("a", KeyState::Current, KeyState::Retired, 500, Some(900)),
            change("b", KeyState::Retired, KeyState::Removed, 500, None),
        ])
        .await
        .unwrap();
    assert!(!done);
    assert_eq!(store.list_keys().await.unwrap(), before);
    // Same when the second key does not exist, and when a revocation came first.
    let done = store
        .change_keys(&[
            change("a", KeyState::Current, KeyState::Revoked, 500, Some(900)),
            change("zz", KeyState::Next, KeyState::Current, 500, None),
        ])
        .await
        .unwrap();
    assert!(!done);
    assert_eq!(store.list_keys().await.unwrap(), before);
    assert!(
        store.revocations_after(0, 0, 10).await.unwrap().is_empty(),
        "the kid revocation went with the rollback"
    );
}

pub async fn keys_change_conflict_rolls_back(store: Arc<dyn Store>) {
    store
        .insert_key(&key("a", KeyState::Current, 100))
        .await
        .unwrap();
    store
        .insert_key(&key("b", KeyState::Next, 110))
        .await
        .unwrap();
    store
        .insert_key(&key("c", KeyState::Retired, 90))
        .await
        .unwrap();
    let before = store.list_keys().await.unwrap();
    // The second change would make a second current key.
    let r = store
        .change_keys(&[
            change("c", KeyState::Retired, KeyState::Removed, 500, None),
            change("b", KeyState::Next, KeyState::Current, 500, None),
        ])
        .await;
    assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
    assert_eq!(store.list_keys().await.unwrap(), before);
}

pub async fn keys_revoke_records_kid(store: Arc<dyn Store>) {
    store
        .insert_key(&key("a", KeyState::Current, 100))
        .await
        .unwrap();
    store
        .insert_key(&key("b", KeyState::Next, 110))
        .await
        .unwrap();
    let done = store
        .change_keys(&[
            change("a", KeyState::Current, KeyState::Revoked, 300, Some(1_200)),
            change("b", KeyState::Next, KeyState::Current, 300, None),
        ])
        .await
        .unwrap();
    assert!(done);
    let a = store.list_keys().await.unwrap().remove(0);
    assert_eq!(
        (a.state, a.revoked_at, a.private_key),
        (KeyState::Revoked, Some(300), None)
    );
    let recs = store.revocations_after(0, 300, 10).await.unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(
        (recs[0].kind, recs[0].value.as_str()),
        (RevocationKind::Kid, "a")
    );
    assert_eq!(
        (recs[0].before, recs[0].created_at, recs[0].expires_at),
        (None, 300, 1_200)
    );
    // Without `until` the record expires at once.
    store
        .insert_key(&key("c", KeyState::Next, 120))
        .await
        .unwrap();
    assert!(store
        .change_keys(&[change("c", KeyState::Next, KeyState::Revoked, 400, None)])
        .await
        .unwrap());
    let recs = store.revocations_after(recs[0].id, 0, 10).await.unwrap();
    assert_eq!((recs[0].value.as_str(), recs[0].expires_at), ("c", 400));
}

pub async fn keys_remove_erases_private_key(store: Arc<dyn Store>) {
    store
        .insert_key(&key("a", KeyState::Current, 100))
        .await
        .unwrap();
    store
        .insert_key(&key("b", KeyState::Next, 110))
        .await
        .unwrap();
    assert!(store
        .change_keys(&[
            change("a", KeyState::Current, KeyState::Retired, 200, Some(800)),
            change("b", KeyState::Next, KeyState::Current, 200, None),
        ])
        .await
        .unwrap());
    assert!(store
        .change_keys(&[change("a", KeyState::Retired, KeyState::Removed, 800, None)])
        .await
        .unwrap());
    let a = store.list_keys().await.unwrap().remove(0);
    assert_eq!(
        (a.state, a.removes_at, a.private_key),
        (KeyState::Removed, Some(800), None)
    );
    assert_eq!(a.public_jwk, key("a", KeyState::Current, 100).public_jwk);
    assert!(
        store.revocations_after(0, 0, 10).await.unwrap().is_empty(),
        "removal is no revocation"
    );
    assert!(!store
        .change_keys(&[change("a", KeyState::Retired, KeyState::Removed, 900, None)])
        .await
        .unwrap());
}

pub async fn secrets_first_writer_wins(store: Arc<dyn Store>) {
    assert_eq!(
        store
            .secret_or_insert("hs256", b"first", 100)
            .await
            .unwrap(),
        b"first"
    );
    assert_eq!(
        store
            .secret_or_insert("hs256", b"second", 200)
            .await
            .unwrap(),
        b"first"
    );
    assert_eq!(
        store.secret_or_insert("other", b"x", 200).await.unwrap(),
        b"x"
    );
    assert_eq!(
        store.secret_or_insert("hs256", b"", 300).await.unwrap(),
        b"first"
    );
}

pub async fn secrets_list_and_reseal(store: Arc<dyn Store>) {
    store.secret_or_insert("b-secret", b"one", 1).await.unwrap();
    store.secret_or_insert("a-secret", b"two", 1).await.unwrap();
    let mut k = key("kid-reseal", KeyState::Current, 1);
    k.private_key = Some(b"sealed-old".to_vec());
    store.insert_key(&k).await.unwrap();
    assert_eq!(
        store.secrets().await.unwrap(),
        vec![
            ("a-secret".to_owned(), b"two".to_vec()),
            ("b-secret".to_owned(), b"one".to_vec())
        ]
    );
    store
        .reseal(
            &[("kid-reseal".to_owned(), b"sealed-new".to_vec())],
            &[("a-secret".to_owned(), b"TWO".to_vec())],
        )
        .await
        .unwrap();
    let keys = store.list_keys().await.unwrap();
    let k = keys.iter().find(|k| k.kid == "kid-reseal").unwrap();
    assert_eq!(k.private_key.as_deref(), Some(&b"sealed-new"[..]));
    let secrets = store.secrets().await.unwrap();
    assert_eq!(secrets[0].1, b"TWO".to_vec());
    assert_eq!(secrets[1].1, b"one".to_vec(), "untouched");
}
