//! OAuth clients and opaque access tokens.

use std::sync::Arc;

use wristband_server::config::TokenFormat;
use wristband_server::store::{ClientKind, Store};

use crate::fixtures::{client, hash, is_conflict, opaque};

pub async fn clients_crud(store: Arc<dyn Store>) {
    let mut b = client("c-b", "billing");
    b.kind = ClientKind::ResourceServer;
    b.token_format = TokenFormat::Opaque;
    b.scopes = vec![];
    b.audiences = vec!["billing".to_owned()];
    let a = client("c-a", "api-gateway");
    store.create_client(&b).await.unwrap();
    store.create_client(&a).await.unwrap();

    assert_eq!(store.client("c-a").await.unwrap(), Some(a.clone()));
    assert_eq!(store.client("c-b").await.unwrap(), Some(b.clone()));
    assert_eq!(store.client("billing").await.unwrap(), None);
    assert_eq!(
        store.client_by_name("billing").await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(store.client_by_name("c-b").await.unwrap(), None);
    assert_eq!(
        store.list_clients().await.unwrap(),
        vec![a.clone(), b.clone()]
    );

    assert!(store
        .set_client_secret("c-a", &hash("new secret"))
        .await
        .unwrap());
    assert_eq!(
        store.client("c-a").await.unwrap().unwrap().secret_hash,
        hash("new secret")
    );
    assert_eq!(
        store.client("c-b").await.unwrap().unwrap().secret_hash,
        b.secret_hash
    );
    assert!(!store.set_client_secret("nobody", &hash("x")).await.unwrap());

    assert!(store.remove_client("c-a").await.unwrap());
    assert!(!store.remove_client("c-a").await.unwrap());
    assert_eq!(store.client("c-a").await.unwrap(), None);
    assert_eq!(store.list_clients().await.unwrap(), vec![b]);
}

pub async fn clients_conflict(store: Arc<dyn Store>) {
    store.create_client(&client("c1", "svc")).await.unwrap();
    assert!(is_conflict(store.create_client(&client("c2", "svc")).await));
    assert!(is_conflict(
        store.create_client(&client("c1", "other")).await
    ));
    // An unknown kind or token format cannot be written through the store (the types
    // have none) nor below it: `corrupt.rs` checks the tables refuse them.
    assert_eq!(store.list_clients().await.unwrap().len(), 1);
}

pub async fn opaque_tokens_put_get(store: Arc<dyn Store>) {
    let full = opaque("jti-1");
    let mut bare = opaque("jti-2");
    bare.scope = None;
    bare.role = None;
    bare.sid = None;
    bare.iat_ms = None;
    store.put_opaque_token(&hash("t1"), &full).await.unwrap();
    store.put_opaque_token(&hash("t2"), &bare).await.unwrap();
    assert_eq!(store.opaque_token(&hash("t1")).await.unwrap(), Some(full));
    assert_eq!(store.opaque_token(&hash("t2")).await.unwrap(), Some(bare));
    assert_eq!(store.opaque_token(&hash("t3")).await.unwrap(), None);
    assert!(is_conflict(
        store.put_opaque_token(&hash("t1"), &opaque("jti-3")).await
    ));
}
