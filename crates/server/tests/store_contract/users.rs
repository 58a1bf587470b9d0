//! Users, and the store answering at all.

use std::sync::Arc;

use wristband_server::store::Store;

use crate::fixtures::{is_conflict, user};

pub async fn ping(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
}

pub async fn users_create_and_read(store: Arc<dyn Store>) {
    let alice = user("u-alice", "alice");
    let mut bob = user("u-bob", "bob");
    bob.disabled = true;
    bob.role = "admin".to_owned();
    store.create_user(&alice).await.unwrap();
    store.create_user(&bob).await.unwrap();

    assert_eq!(
        store.user_by_name("alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.user_by_id("u-bob").await.unwrap(), Some(bob.clone()));
    assert_eq!(store.user_by_name("u-alice").await.unwrap(), None);
    assert_eq!(store.user_by_id("alice").await.unwrap(), None);
    assert_eq!(
        store.user_by_name("ALICE").await.unwrap(),
        Some(alice.clone()),
        "names are found whatever their case"
    );
    assert_eq!(store.list_users().await.unwrap(), vec![alice, bob]);
}

pub async fn users_conflict(store: Arc<dyn Store>) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    assert!(is_conflict(store.create_user(&user("u2", "alice")).await));
    assert!(is_conflict(store.create_user(&user("u1", "other")).await));
    assert_eq!(store.list_users().await.unwrap().len(), 1);
    assert_eq!(store.user_by_id("u2").await.unwrap(), None);
}

pub async fn users_case_insensitive(store: Arc<dyn Store>) {
    let alice = user("u1", "aLice");
    store.create_user(&alice).await.unwrap();
    assert!(is_conflict(store.create_user(&user("u2", "ALICE")).await));
    assert!(is_conflict(store.create_user(&user("u3", "alice")).await));
    for name in ["alice", "ALICE", "aLice"] {
        let found = store.user_by_name(name).await.unwrap();
        assert_eq!(found.as_ref(), Some(&alice), "{name}");
    }
    assert_eq!(
        store.list_users().await.unwrap()[0].username,
        "aLice",
        "stored as typed"
    );
    assert_eq!(store.list_users().await.unwrap().len(), 1);
}

pub async fn users_list_byte_order(store: Arc<dyn Store>) {
    for (id, name) in [
        ("1", "bob"),
        ("2", "Zed"),
        ("3", "alice"),
        ("4", "_x"),
        ("5", "Bea"),
    ] {
        store.create_user(&user(id, name)).await.unwrap();
    }
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["Bea", "Zed", "_x", "alice", "bob"]);
}

pub async fn users_updates(store: Arc<dyn Store>) {
    let alice = user("u1", "alice");
    store.create_user(&alice).await.unwrap();

    assert!(store.set_disabled("u1", true, 2_000).await.unwrap());
    assert!(store.user_by_id("u1").await.unwrap().unwrap().disabled);
    assert!(store.set_disabled("u1", false, 2_001).await.unwrap());
    assert!(!store.user_by_id("u1").await.unwrap().unwrap().disabled);

    assert!(store
        .set_password_hash("u1", "$argon2id$new", 2_002)
        .await
        .unwrap());
    assert!(store.set_role("u1", "admin", 2_003).await.unwrap());
    let now = store.user_by_name("alice").await.unwrap().unwrap();
    assert_eq!(now.password_hash, "$argon2id$new");
    assert_eq!(now.role, "admin");
    assert_eq!(now.created_at, alice.created_at);

    assert!(!store.set_disabled("nobody", true, 2_004).await.unwrap());
    assert!(!store.set_password_hash("nobody", "h", 2_004).await.unwrap());
    assert!(!store.set_role("nobody", "admin", 2_004).await.unwrap());
}
