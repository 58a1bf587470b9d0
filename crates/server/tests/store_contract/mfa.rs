//! Second factors: TOTP authenticators, recovery codes and the second steps of sign-ins.

use std::sync::Arc;

use wristband_server::store::{ChallengeRecord, MfaTokenRecord, PasskeyRecord, Store, StoreError};

use crate::concurrency::race;
use crate::fixtures::{hash, user};

async fn users(store: &Arc<dyn Store>) {
    store.create_user(&user("u1", "alice")).await.unwrap();
    store.create_user(&user("u2", "bob")).await.unwrap();
}

pub async fn mfa_totp_enrolment_and_steps(store: Arc<dyn Store>) {
    users(&store).await;
    assert_eq!(store.totp("u1").await.unwrap(), None);
    assert!(store.begin_totp("u1", b"sealed-1", 1_000).await.unwrap());
    let t = store.totp("u1").await.unwrap().unwrap();
    assert_eq!(
        (
            t.user_id.as_str(),
            t.secret.as_slice(),
            t.created_at,
            t.confirmed_at,
            t.last_step
        ),
        ("u1", &b"sealed-1"[..], 1_000, None, None)
    );
    // Restarting an unconfirmed enrolment replaces its secret and forgets its steps.
    assert!(store.use_totp_step("u1", 3, 1_001).await.unwrap());
    store.remove_totp("u1").await.unwrap();
    assert!(store.begin_totp("u1", b"sealed-1", 1_000).await.unwrap());
    assert!(store.begin_totp("u1", b"sealed-2", 1_010).await.unwrap());
    let t = store.totp("u1").await.unwrap().unwrap();
    assert_eq!(
        (t.secret.as_slice(), t.created_at),
        (&b"sealed-2"[..], 1_010)
    );
    // The first step confirms it; a step is accepted once, and never an older one.
    assert!(store.use_totp_step("u1", 50, 1_020).await.unwrap());
    assert!(!store.use_totp_step("u1", 50, 1_021).await.unwrap());
    assert!(!store.use_totp_step("u1", 49, 1_021).await.unwrap());
    assert!(store.use_totp_step("u1", 51, 1_050).await.unwrap());
    let t = store.totp("u1").await.unwrap().unwrap();
    assert_eq!((t.confirmed_at, t.last_step), (Some(1_020), Some(51)));
    // A confirmed authenticator is not replaced by a new enrolment.
    assert!(!store.begin_totp("u1", b"sealed-3", 1_060).await.unwrap());
    assert_eq!(store.totp("u1").await.unwrap().unwrap().secret, b"sealed-2");
    // Another user's steps are their own.
    assert!(!store.use_totp_step("u2", 99, 1_060).await.unwrap());
    assert!(store.remove_totp("u1").await.unwrap());
    assert!(!store.remove_totp("u1").await.unwrap());
    assert_eq!(store.totp("u1").await.unwrap(), None);
}

pub async fn mfa_totp_concurrent_step_one_winner(store: Arc<dyn Store>) {
    users(&store).await;
    store.begin_totp("u1", b"s", 1_000).await.unwrap();
    for step in [10_i64, 11, 12] {
        let won = race(8, |_| {
            let store = Arc::clone(&store);
            async move { store.use_totp_step("u1", step, 1_000).await.unwrap() }
        })
        .await;
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "step {step}: {won:?}"
        );
    }
}

pub async fn mfa_recovery_codes_single_use(store: Arc<dyn Store>) {
    users(&store).await;
    assert_eq!(store.recovery_codes_left("u1").await.unwrap(), 0);
    let set: Vec<Vec<u8>> = ["a", "b", "c"].iter().map(|c| hash(c)).collect();
    store
        .replace_recovery_codes("u1", &set, 1_000)
        .await
        .unwrap();
    assert_eq!(store.recovery_codes_left("u1").await.unwrap(), 3);
    assert_eq!(
        store
            .use_recovery_code("u1", &hash("a"), 1_001)
            .await
            .unwrap(),
        Some(2)
    );
    assert_eq!(
        store
            .use_recovery_code("u1", &hash("a"), 1_002)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .use_recovery_code("u2", &hash("b"), 1_002)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .use_recovery_code("u1", &hash("z"), 1_002)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.recovery_codes_left("u1").await.unwrap(), 2);
    // A new set replaces the old one.
    let fresh: Vec<Vec<u8>> = ["d", "e"].iter().map(|c| hash(c)).collect();
    store
        .replace_recovery_codes("u1", &fresh, 1_003)
        .await
        .unwrap();
    assert_eq!(
        store
            .use_recovery_code("u1", &hash("b"), 1_004)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .use_recovery_code("u1", &hash("e"), 1_004)
            .await
            .unwrap(),
        Some(1)
    );
    // Of concurrent uses of one code exactly one wins.
    let won = race(8, |_| {
        let store = Arc::clone(&store);
        async move {
            store
                .use_recovery_code("u1", &hash("d"), 1_005)
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(won.iter().filter(|w| w.is_some()).count(), 1, "{won:?}");
    assert_eq!(store.recovery_codes_left("u1").await.unwrap(), 0);
}

fn step(user_id: &str, expires_at: i64) -> MfaTokenRecord {
    MfaTokenRecord {
        user_id: user_id.to_owned(),
        amr: "pwd".to_owned(),
        created_at: 1_000,
        expires_at,
        failures: 0,
        enrol: user_id == "u2",
        used_at: None,
    }
}

pub async fn mfa_tokens_finish_once(store: Arc<dyn Store>) {
    users(&store).await;
    let t = step("u1", 1_300);
    store.put_mfa_token(&hash("t1"), &t).await.unwrap();
    assert_eq!(store.mfa_token(&hash("t1")).await.unwrap(), Some(t));
    assert_eq!(store.mfa_token(&hash("nope")).await.unwrap(), None);
    let enrolling = step("u2", 1_300);
    assert!(enrolling.enrol);
    store
        .put_mfa_token(&hash("t-u2"), &enrolling)
        .await
        .unwrap();
    assert_eq!(
        store.mfa_token(&hash("t-u2")).await.unwrap(),
        Some(enrolling)
    );
    assert!(store
        .put_mfa_token(&hash("t1"), &step("u2", 1_300))
        .await
        .is_err());
    assert_eq!(store.fail_mfa_token(&hash("t1")).await.unwrap(), 1);
    assert_eq!(store.fail_mfa_token(&hash("t1")).await.unwrap(), 2);
    assert_eq!(store.fail_mfa_token(&hash("nope")).await.unwrap(), 0);
    // Too many failures for the limit given.
    assert!(!store.finish_mfa_token(&hash("t1"), 1_100, 2).await.unwrap());
    let won = race(8, |_| {
        let store = Arc::clone(&store);
        async move { store.finish_mfa_token(&hash("t1"), 1_100, 5).await.unwrap() }
    })
    .await;
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let done = store.mfa_token(&hash("t1")).await.unwrap().unwrap();
    assert_eq!((done.used_at, done.failures), (Some(1_100), 2));
    assert_eq!(
        store.fail_mfa_token(&hash("t1")).await.unwrap(),
        0,
        "finished"
    );
    // Expired at its expiry.
    store
        .put_mfa_token(&hash("t2"), &step("u1", 1_300))
        .await
        .unwrap();
    assert!(!store.finish_mfa_token(&hash("t2"), 1_300, 5).await.unwrap());
    assert!(store.finish_mfa_token(&hash("t2"), 1_299, 5).await.unwrap());
    // Pruning drops expired ones.
    store
        .put_mfa_token(&hash("t3"), &step("u1", 5_000))
        .await
        .unwrap();
    assert!(store.prune(1_300).await.unwrap() >= 2);
    assert_eq!(store.mfa_token(&hash("t1")).await.unwrap(), None);
    assert!(store.mfa_token(&hash("t3")).await.unwrap().is_some());
}

pub async fn mfa_reset_removes_every_factor(store: Arc<dyn Store>) {
    users(&store).await;
    for u in ["u1", "u2"] {
        store.begin_totp(u, b"s", 1_000).await.unwrap();
        store.use_totp_step(u, 1, 1_000).await.unwrap();
        let codes: Vec<Vec<u8>> = ["a", "b"]
            .iter()
            .map(|c| hash(&format!("{u}{c}")))
            .collect();
        store
            .replace_recovery_codes(u, &codes, 1_000)
            .await
            .unwrap();
        store
            .put_mfa_token(&hash(u), &step(u, 2_000))
            .await
            .unwrap();
    }
    assert_eq!(store.reset_mfa("u1").await.unwrap(), 4);
    assert_eq!(store.totp("u1").await.unwrap(), None);
    assert_eq!(store.recovery_codes_left("u1").await.unwrap(), 0);
    assert_eq!(store.mfa_token(&hash("u1")).await.unwrap(), None);
    assert!(
        store.totp("u2").await.unwrap().is_some(),
        "another user's stay"
    );
    assert_eq!(store.recovery_codes_left("u2").await.unwrap(), 2);
    assert_eq!(store.reset_mfa("u1").await.unwrap(), 0);
}

fn passkey(id: &str, user_id: &str, created_at: i64) -> PasskeyRecord {
    PasskeyRecord {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        name: format!("key {id}"),
        passkey: format!("{{\"cred\":\"{id}\",\"counter\":0}}"),
        created_at,
        last_used_at: None,
    }
}

pub async fn passkeys_add_list_use_remove(store: Arc<dyn Store>) {
    users(&store).await;
    let a = passkey("cred-a", "u1", 1_000);
    let b = passkey("cred-b", "u1", 1_001);
    store.add_passkey(&b).await.unwrap();
    store.add_passkey(&a).await.unwrap();
    store
        .add_passkey(&passkey("cred-c", "u2", 999))
        .await
        .unwrap();
    assert!(matches!(
        store.add_passkey(&passkey("cred-a", "u2", 5)).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.passkeys("u1").await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(store.passkey("cred-b").await.unwrap(), Some(b));
    assert_eq!(store.passkey("nope").await.unwrap(), None);
    assert!(store
        .passkey_used("cred-a", "{\"counter\":7}", 1_500)
        .await
        .unwrap());
    let used = store.passkey("cred-a").await.unwrap().unwrap();
    assert_eq!(
        (used.passkey.as_str(), used.last_used_at),
        ("{\"counter\":7}", Some(1_500))
    );
    assert!(!store.passkey_used("nope", "{}", 1_500).await.unwrap());
    // Only the owner removes one.
    assert!(!store.remove_passkey("u2", "cred-a").await.unwrap());
    assert!(store.remove_passkey("u1", "cred-a").await.unwrap());
    assert!(!store.remove_passkey("u1", "cred-a").await.unwrap());
    assert_eq!(store.passkeys("u1").await.unwrap().len(), 1);
    // A reset removes the rest.
    assert_eq!(store.reset_mfa("u1").await.unwrap(), 1);
    assert!(store.passkeys("u1").await.unwrap().is_empty());
    assert_eq!(store.passkeys("u2").await.unwrap().len(), 1);
}

fn ceremony(id: &str, binding: &str, expires_at: i64) -> ChallengeRecord {
    ChallengeRecord {
        id: id.to_owned(),
        kind: "authenticate".to_owned(),
        binding: binding.to_owned(),
        user_id: Some("u1".to_owned()),
        state: "{\"s\":1}".to_owned(),
        created_at: 1_000,
        expires_at,
        used_at: None,
    }
}

pub async fn webauthn_challenges_single_use_bound_and_expiring(store: Arc<dyn Store>) {
    users(&store).await;
    let c = ceremony("ch-1", "ses_1", 1_120);
    store.put_challenge(&c).await.unwrap();
    // Another binding, another kind, or too late: nothing, and it stays usable.
    assert_eq!(
        store
            .take_challenge("ch-1", "authenticate", "ses_2", 1_010)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .take_challenge("ch-1", "register", "ses_1", 1_010)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .take_challenge("ch-1", "authenticate", "ses_1", 1_120)
            .await
            .unwrap(),
        None
    );
    let won = race(8, |_| {
        let store = Arc::clone(&store);
        async move {
            store
                .take_challenge("ch-1", "authenticate", "ses_1", 1_010)
                .await
                .unwrap()
        }
    })
    .await;
    let winners: Vec<_> = won.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1);
    assert_eq!(
        winners[0],
        ChallengeRecord {
            used_at: Some(1_010),
            ..c
        }
    );
    // Pruned once expired.
    store
        .put_challenge(&ceremony("ch-2", "", 1_200))
        .await
        .unwrap();
    store
        .put_challenge(&ceremony("ch-3", "", 9_000))
        .await
        .unwrap();
    assert!(store.prune(1_200).await.unwrap() >= 2);
    assert_eq!(
        store
            .take_challenge("ch-3", "authenticate", "", 1_300)
            .await
            .unwrap()
            .map(|c| c.id),
        Some("ch-3".to_owned())
    );
}
