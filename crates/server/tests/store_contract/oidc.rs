//! OpenID Connect: child sessions, authorization codes and consents.

use std::sync::Arc;

use wristband_server::store::{AuthCodeRecord, ConsentRecord, Store};

use crate::fixtures::{client, hash, session, user};

fn code(client_id: &str) -> AuthCodeRecord {
    AuthCodeRecord {
        client_id: client_id.to_owned(),
        user_id: "u1".to_owned(),
        session_id: "s1".to_owned(),
        redirect_uri: "https://rp.example/cb".to_owned(),
        scope: "openid profile".to_owned(),
        nonce: Some("n-1".to_owned()),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
        auth_time: 990,
        amr: "pwd".to_owned(),
        created_at: 1_000,
        expires_at: 1_060,
        used_at: None,
        child_session_id: None,
    }
}

fn consent(user_id: &str, client_id: &str, scope: &str, at: i64) -> ConsentRecord {
    ConsentRecord {
        user_id: user_id.to_owned(),
        client_id: client_id.to_owned(),
        scope: scope.to_owned(),
        created_at: at,
    }
}

/// Child sessions keep their parent and `offline` flag, and `sessions_by_parent` lists
/// every child of a parent, revoked or not, oldest first, and nothing else.
pub async fn sessions_by_parent_lists_children(store: Arc<dyn Store>) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    let parent = session("s-parent", "u1", 1_000);
    store.create_session(&parent, &hash("p")).await.unwrap();
    let mut first = session("s-child-b", "u1", 1_001);
    first.parent_id = Some("s-parent".to_owned());
    first.client_id = "rp-1".to_owned();
    let mut second = session("s-child-a", "u1", 1_002);
    second.parent_id = Some("s-parent".to_owned());
    second.client_id = "rp-2".to_owned();
    second.offline = true;
    second.scope = Some("openid offline_access".to_owned());
    let mut other = session("s-other", "u1", 1_003);
    other.parent_id = Some("s-elsewhere".to_owned());
    for s in [&second, &first, &other] {
        store.create_session(s, &hash(&s.id)).await.unwrap();
    }
    assert_eq!(
        store.session("s-child-a").await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(store.session("s-parent").await.unwrap(), Some(parent));

    assert!(store
        .revoke_session("s-child-b", "test", 1_010)
        .await
        .unwrap());
    let children = store.sessions_by_parent("s-parent").await.unwrap();
    let ids: Vec<&str> = children.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["s-child-b", "s-child-a"]);
    assert_eq!(children[0].revoked_at, Some(1_010));
    assert_eq!(children[1], second);
    assert!(store
        .sessions_by_parent("s-child-a")
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .sessions_by_parent("nothing")
        .await
        .unwrap()
        .is_empty());
}

/// A code is used once: the first use sees it unused and records the child session; every
/// later use sees it used, with that child session. Codes expire through `prune`.
pub async fn auth_codes_single_use(store: Arc<dyn Store>) {
    let c = code("rp-1");
    store.put_auth_code(&hash("code-1"), &c).await.unwrap();
    assert!(store.put_auth_code(&hash("code-1"), &c).await.is_err());
    let mut bare = code("rp-2");
    bare.nonce = None;
    store.put_auth_code(&hash("code-2"), &bare).await.unwrap();

    let first = store
        .use_auth_code(&hash("code-1"), "s-child-1", 1_010)
        .await
        .unwrap();
    assert_eq!(first, Some(c.clone()));
    let again = store
        .use_auth_code(&hash("code-1"), "s-child-2", 1_020)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.used_at, Some(1_010));
    assert_eq!(again.child_session_id.as_deref(), Some("s-child-1"));
    assert_eq!(again.client_id, "rp-1");
    assert_eq!(
        store
            .use_auth_code(&hash("nothing"), "s", 1_020)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .use_auth_code(&hash("code-2"), "s-x", 1_030)
            .await
            .unwrap(),
        Some(bare)
    );

    // Pruned at their expiry, not before.
    store
        .put_auth_code(&hash("code-3"), &code("rp-3"))
        .await
        .unwrap();
    store.prune(1_059).await.unwrap();
    assert!(store
        .use_auth_code(&hash("code-3"), "s-y", 1_059)
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.prune(1_060).await.unwrap(), 3);
    assert_eq!(
        store
            .use_auth_code(&hash("code-3"), "s-y", 1_060)
            .await
            .unwrap(),
        None
    );
}

/// Concurrent uses of one code: exactly one sees it unused.
pub async fn auth_codes_concurrent_use_one_winner(store: Arc<dyn Store>) {
    store
        .put_auth_code(&hash("code"), &code("rp-1"))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .use_auth_code(&hash("code"), &format!("child-{i}"), 1_010)
                    .await
            })
        })
        .collect();
    let mut unused = 0;
    let mut children = Vec::new();
    for t in tasks {
        let found = t.await.unwrap().unwrap().unwrap();
        if found.used_at.is_none() {
            unused += 1;
        } else {
            children.push(found.child_session_id.unwrap());
        }
    }
    assert_eq!(unused, 1);
    assert_eq!(children.len(), 7);
    assert!(children.windows(2).all(|w| w[0] == w[1]), "{children:?}");
}

/// Consents: one per user and client, replaced by a new one, listed per user, withdrawn,
/// and gone with their client or their user.
pub async fn consents_put_list_remove(store: Arc<dyn Store>) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    store.create_user(&user("u2", "bob")).await.unwrap();
    store.create_client(&client("rp-1", "wiki")).await.unwrap();
    store.create_client(&client("rp-2", "ci")).await.unwrap();
    store
        .put_consent(&consent("u1", "rp-2", "openid", 1_000))
        .await
        .unwrap();
    store
        .put_consent(&consent("u1", "rp-1", "openid", 1_001))
        .await
        .unwrap();
    store
        .put_consent(&consent("u2", "rp-1", "openid profile", 1_002))
        .await
        .unwrap();
    let widened = consent("u1", "rp-1", "openid profile", 1_005);
    store.put_consent(&widened).await.unwrap();
    assert_eq!(
        store.consent("u1", "rp-1").await.unwrap(),
        Some(widened.clone())
    );
    assert_eq!(store.consent("u1", "rp-3").await.unwrap(), None);
    assert_eq!(
        store.user_consents("u1").await.unwrap(),
        vec![consent("u1", "rp-2", "openid", 1_000), widened]
    );

    assert!(store.remove_consent("u1", "rp-2").await.unwrap());
    assert!(!store.remove_consent("u1", "rp-2").await.unwrap());
    assert_eq!(store.user_consents("u1").await.unwrap().len(), 1);

    // Removing the client drops the consents given to it, by every user.
    assert!(store.remove_client("rp-1").await.unwrap());
    assert!(store.user_consents("u1").await.unwrap().is_empty());
    assert!(store.user_consents("u2").await.unwrap().is_empty());
    assert!(!store.remove_client("rp-1").await.unwrap());
}
