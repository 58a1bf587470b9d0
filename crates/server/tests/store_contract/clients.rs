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

/// The OpenID Connect kinds and fields survive a round trip, `update_client` replaces
/// them (but not the id, secret or creation time), and removing a client drops the
/// consents given to it.
pub async fn clients_oidc_fields_and_update(store: Arc<dyn Store>) {
    let mut web = client("c-web", "wiki");
    web.kind = ClientKind::Web;
    web.redirect_uris = vec![
        "https://wiki.example/cb".to_owned(),
        "http://127.0.0.1/cb".to_owned(),
    ];
    web.post_logout_redirect_uris = vec!["https://wiki.example/bye".to_owned()];
    web.backchannel_logout_uri = Some("https://wiki.example/bcl".to_owned());
    web.first_party = true;
    let mut public = client("c-pub", "mobile");
    public.kind = ClientKind::Public;
    public.redirect_uris = vec!["com.example.app:/cb".to_owned()];
    store.create_client(&web).await.unwrap();
    store.create_client(&public).await.unwrap();
    assert_eq!(store.client("c-web").await.unwrap(), Some(web.clone()));
    assert_eq!(store.client("c-pub").await.unwrap(), Some(public.clone()));
    assert!(ClientKind::Web.is_relying_party() && ClientKind::Public.is_relying_party());
    assert!(!ClientKind::Service.is_relying_party());

    let mut changed = web.clone();
    changed.name = "wiki2".to_owned();
    changed.scopes = vec!["openid".to_owned(), "profile".to_owned()];
    changed.redirect_uris = vec!["https://wiki2.example/cb".to_owned()];
    changed.post_logout_redirect_uris = vec![];
    changed.backchannel_logout_uri = None;
    changed.first_party = false;
    // Not changed by an update.
    changed.secret_hash = hash("other");
    changed.created_at = 9_999;
    assert!(store.update_client(&changed).await.unwrap());
    let got = store.client("c-web").await.unwrap().unwrap();
    changed.secret_hash = web.secret_hash.clone();
    changed.created_at = web.created_at;
    assert_eq!(got, changed);
    let mut renamed = public.clone();
    renamed.name = "wiki2".to_owned();
    assert!(is_conflict(store.update_client(&renamed).await));
    let mut nobody = public.clone();
    nobody.id = "c-none".to_owned();
    assert!(!store.update_client(&nobody).await.unwrap());
    assert_eq!(store.client("c-pub").await.unwrap(), Some(public));
}
