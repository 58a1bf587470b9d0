//! Key lifecycle on a controlled clock: scheduled rotation with pre-publication, retirement
//! and removal, emergency revocation, keys encrypted at rest, backups, and HS256 mode.

use std::time::Duration;

use serde_json::Value;
use wristband_jose::{dangerous, Algorithm, SigningKey};
use wristband_server::domain::keys::hs256_key_from_text;
use wristband_server::domain::{AuthService, MasterKey};
use wristband_server::store::{KeyState, RevocationKind, SqliteStore, Store};

use crate::helpers::TestApp;

const DAY: u64 = 86_400;

fn kid_of(token: &str) -> String {
    dangerous::decode_without_verification(token)
        .unwrap()
        .header["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn published(t: &TestApp) -> Vec<String> {
    let r = t.client.get(&t.url("/.well-known/jwks.json"), &[]).await;
    assert_eq!(r.status, 200);
    let mut kids: Vec<String> = r.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

async fn sync(app: &AuthService) -> Vec<&'static str> {
    app.sync_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind.as_str())
        .collect()
}

#[tokio::test]
async fn the_schedule_publishes_ahead_then_signs_retires_and_removes() {
    // Rotation every 30 days; JWKS max-age 5m, so the next key is published 10m ahead; a
    // retired key stays published for the access-token lifetime (15m) plus 60 s.
    let t = TestApp::spawn().await;
    t.add_user("ana", "user").await;
    let (first_token, _) = t.tokens("ana").await;
    let k1 = kid_of(&first_token);
    assert_eq!(published(&t).await, vec![k1.clone()]);

    // One second before the pre-publication point nothing happens.
    t.advance(30 * DAY - 600 - 1);
    assert!(sync(&t.app).await.is_empty());
    assert_eq!(published(&t).await.len(), 1);

    // Then the next key is published, but the old one still signs.
    t.advance(1);
    assert_eq!(sync(&t.app).await, vec!["key_published"]);
    let kids = published(&t).await;
    assert_eq!(kids.len(), 2);
    let k2 = kids.iter().find(|k| **k != k1).unwrap().clone();
    let (before, _) = t.tokens("ana").await;
    assert_eq!(kid_of(&before), k1, "a next key does not sign yet");

    // At the rotation time the next key signs; tokens of the old key keep working.
    t.advance(600);
    assert_eq!(sync(&t.app).await, vec!["key_retired", "key_activated"]);
    let (after, _) = t.tokens("ana").await;
    assert_eq!(kid_of(&after), k2);
    assert_eq!(
        t.me(&before).await.status,
        200,
        "retired key still verifies"
    );
    assert_eq!(t.me(&after).await.status, 200);
    assert_eq!(published(&t).await.len(), 2);

    // Once every token of the retired key has expired, it leaves the JWKS.
    t.advance(15 * 60 + 60 - 1);
    assert!(sync(&t.app).await.is_empty());
    assert_eq!(published(&t).await.len(), 2);
    t.advance(1);
    assert_eq!(sync(&t.app).await, vec!["key_removed"]);
    assert_eq!(published(&t).await, vec![k2.clone()]);

    let states: Vec<(String, KeyState)> = t
        .store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect();
    assert_eq!(
        states,
        vec![(k1, KeyState::Removed), (k2, KeyState::Current)]
    );
    let removed = &t.store.list_keys().await.unwrap()[0];
    assert!(
        removed.private_key.is_none(),
        "removal erases the private key"
    );
}

#[tokio::test]
async fn rotation_can_be_turned_off_and_started_by_hand() {
    let t = TestApp::spawn_with(|c| c.key_rotation = Duration::ZERO).await;
    t.add_user("ana", "user").await;
    let (token, _) = t.tokens("ana").await;
    t.advance(400 * DAY);
    assert!(sync(&t.app).await.is_empty(), "no automatic rotation");

    // A manual rotation pre-publishes too, and can migrate the algorithm.
    let now = t.app.keys().list().await.unwrap()[0].created_at + 400 * 86_400;
    let events = t
        .app
        .keys()
        .rotate(Some(Algorithm::EdDSA), false, now)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].alg, "EdDSA");
    let r = t.client.get(&t.url("/.well-known/jwks.json"), &[]).await;
    let algs: Vec<String> = r.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(algs.len(), 2);
    assert!(algs.contains(&"ES256".to_owned()) && algs.contains(&"EdDSA".to_owned()));
    // A second rotation while one waits is refused; --immediate promotes the waiting key.
    assert!(t.app.keys().rotate(None, false, now).await.is_err());
    t.app.keys().rotate(None, true, now).await.unwrap();
    let (ed, _) = t.tokens("ana").await;
    let header = dangerous::decode_without_verification(&ed).unwrap().header;
    assert_eq!(header["alg"], "EdDSA");
    // During the overlap both algorithms verify, and the metadata names both.
    assert_eq!(t.me(&ed).await.status, 200);
    let meta = t
        .client
        .get(&t.url("/.well-known/oauth-authorization-server"), &[])
        .await
        .json();
    assert_eq!(
        meta["access_token_signing_alg_values_supported"],
        serde_json::json!(["ES256", "EdDSA"])
    );
    assert_eq!(kid_of(&token).len(), 43);
}

#[tokio::test]
async fn an_emergency_revocation_takes_effect_at_once_and_reaches_the_feed() {
    let t = TestApp::spawn_with(|c| c.revocation_feed_public = true).await;
    t.add_user("ana", "user").await;
    let (token, _) = t.tokens("ana").await;
    let leaked = kid_of(&token);
    assert_eq!(t.me(&token).await.status, 200);

    let events = t.app.revoke_key(&leaked).await.unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(names, vec!["key_revoked", "key_published", "key_activated"]);

    assert_eq!(
        t.me(&token).await.status,
        401,
        "its tokens are refused here"
    );
    let kids = published(&t).await;
    assert_eq!(kids.len(), 1);
    assert!(!kids.contains(&leaked), "gone from the JWKS at once");
    let (fresh, _) = t.tokens("ana").await;
    assert_ne!(kid_of(&fresh), leaked);
    assert_eq!(t.me(&fresh).await.status, 200);

    // The feed carries the kid, for as long as any of its tokens could be valid.
    let records = t.app.revocations_after(0, 100).await.unwrap();
    let kid_record = records
        .iter()
        .find(|r| r.kind == RevocationKind::Kid)
        .unwrap();
    assert_eq!(kid_record.value, leaked);
    assert!(kid_record.expires_at >= kid_record.created_at + 15 * 60);
    let page = t.client.get(&t.url("/v1/revocations"), &[]).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let body: Value = page.json();
    assert!(
        body.to_string().contains(&format!("\"{leaked}\"")),
        "{body}"
    );

    // The private half is gone, and the key cannot be revoked twice.
    let row = t
        .store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == leaked)
        .unwrap();
    assert_eq!(row.state, KeyState::Revoked);
    assert!(row.private_key.is_none());
    assert!(t.app.revoke_key(&leaked).await.is_err());
    assert!(t.app.revoke_key("no-such-kid").await.is_err());
}

/// Every byte string that would give the private key away.
fn private_key_forms(pem: &str) -> Vec<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &body).unwrap();
    let mut forms = vec![pem.as_bytes().to_vec(), body.as_bytes().to_vec()];
    forms.extend(
        pem.lines()
            .filter(|l| l.len() >= 40)
            .map(|l| l.as_bytes().to_vec()),
    );
    // The DER, and its tail (which holds the secret scalar).
    forms.push(der.clone());
    forms.push(der[der.len() - 32..].to_vec());
    forms
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn private_keys_in_the_database_cannot_be_read_without_the_master_key() {
    let t = TestApp::spawn().await;
    t.app
        .keys()
        .rotate(None, false, 1_800_000_000)
        .await
        .unwrap();
    let master = MasterKey::read_file(&t._dir.path().join("master.key")).unwrap();
    let rows = t.store.list_keys().await.unwrap();
    assert_eq!(rows.len(), 2);
    let files: Vec<Vec<u8>> = ["wristband.db", "wristband.db-wal"]
        .iter()
        .filter_map(|f| std::fs::read(t._dir.path().join(f)).ok())
        .collect();
    assert!(files.iter().map(Vec::len).sum::<usize>() > 0);
    for row in rows {
        let sealed = row.private_key.as_deref().unwrap();
        let pem = master.open(&row.kid, sealed).unwrap();
        let pem = std::str::from_utf8(&pem).unwrap();
        assert!(pem.contains("PRIVATE KEY"));
        for form in private_key_forms(pem) {
            for file in &files {
                assert!(
                    !contains(file, &form),
                    "private key bytes found in the database"
                );
            }
        }
        // The public half is stored in the clear, and so is found: the grep can fail.
        assert!(files.iter().any(|f| contains(f, row.public_jwk.as_bytes())));
        let other = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        assert!(other.open(&row.kid, sealed).is_err());
    }
}

#[tokio::test]
async fn a_wrong_master_key_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wristband.db");
    let clock = std::sync::Arc::new(wristband_jose::SystemClock);
    {
        let store = std::sync::Arc::new(SqliteStore::open(&db).await.unwrap());
        let config = crate::helpers::test_config(&dir);
        wristband_server::startup::App::build_with_store(config, store, clock.clone())
            .await
            .unwrap();
    }
    let store = std::sync::Arc::new(SqliteStore::open(&db).await.unwrap());
    let mut config = crate::helpers::test_config(&dir);
    config.master_key = Some(wristband_jose::b64::encode([1u8; 32]).into());
    let err = wristband_server::startup::App::build_with_store(config, store, clock)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("master key does not open"), "{err}");
}

#[tokio::test]
async fn a_backup_restores_with_the_same_master_key_only() {
    let a = TestApp::spawn().await;
    a.app
        .keys()
        .rotate(None, false, 1_800_000_000)
        .await
        .unwrap();
    let backup = a.app.keys().export().await.unwrap();
    assert_eq!(backup.keys.len(), 2);
    let text = serde_json::to_string(&backup).unwrap();
    assert!(!text.contains("PRIVATE KEY"));
    let master_text = std::fs::read_to_string(a._dir.path().join("master.key")).unwrap();

    // Same master key, fresh database: every key comes back in its state.
    let b = TestApp::spawn_with(|c| c.master_key = Some(master_text.clone().into())).await;
    let before = published(&b).await;
    let restored = b.app.keys().import(&backup, 1_800_000_000).await.unwrap();
    assert_eq!(restored.len(), 2);
    let after = published(&b).await;
    assert_eq!(after.len(), 3, "the restored keys join the JWKS");
    for k in &backup.keys {
        assert!(after.contains(&k.kid));
    }
    assert!(before.iter().all(|k| after.contains(k)));
    // Importing twice adds nothing.
    assert!(b
        .app
        .keys()
        .import(&backup, 1_800_000_000)
        .await
        .unwrap()
        .is_empty());

    // Another master key cannot open them.
    let c = TestApp::spawn().await;
    let err = c
        .app
        .keys()
        .import(&backup, 1_800_000_000)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("master key"), "{err}");
}

#[tokio::test]
async fn a_key_file_from_an_older_version_is_imported_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    std::fs::create_dir_all(dir.path().join("keys")).unwrap();
    std::fs::write(
        dir.path().join("keys/signing-es256.pem"),
        key.to_pem().unwrap().as_bytes(),
    )
    .unwrap();
    let store = std::sync::Arc::new(
        SqliteStore::open(&dir.path().join("wristband.db"))
            .await
            .unwrap(),
    );
    let app = wristband_server::startup::App::build_with_store(
        crate::helpers::test_config(&dir),
        store,
        std::sync::Arc::new(wristband_jose::SystemClock),
    )
    .await
    .unwrap();
    let jwks = app.service().jwks();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].kid.as_deref(), Some(key.kid()));
}

fn hs_secret() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    wristband_jose::b64::encode(bytes)
}

#[tokio::test]
async fn hs256_mode_signs_with_the_shared_secret_and_publishes_nothing() {
    let secret = hs_secret();
    let t = TestApp::spawn_with(|c| {
        c.alg = Algorithm::HS256;
        c.hs256_secret = Some(secret.clone().into());
    })
    .await;
    t.add_user("ana", "user").await;
    let (token, _) = t.tokens("ana").await;
    let header = dangerous::decode_without_verification(&token)
        .unwrap()
        .header;
    assert_eq!(header["alg"], "HS256");
    assert_eq!(t.me(&token).await.status, 200);
    assert!(
        published(&t).await.is_empty(),
        "HS keys never appear in the JWKS"
    );
    let jwks = t
        .client
        .get(&t.url("/.well-known/jwks.json"), &[])
        .await
        .text();
    assert!(!jwks.contains(&secret));

    // The same secret verifies the token elsewhere; another does not.
    let key = hs256_key_from_text(&secret).unwrap();
    let keys = wristband_jose::KeySet::from_keys([key.verifying_key().clone()]).unwrap();
    let policy = wristband_jose::Policy::builder(t.app.issuer(), "wristband")
        .algorithms(&[Algorithm::HS256])
        .build()
        .unwrap();
    let now = wristband_jose::UnixTime::from_secs(crate::helpers::START + 1);
    let parsed = wristband_jose::UnverifiedToken::parse(&token).unwrap();
    assert!(parsed.verify(&keys, &policy, now).is_ok());
    let other = hs256_key_from_text(&hs_secret()).unwrap();
    let other = wristband_jose::KeySet::from_keys([other.verifying_key().clone()]).unwrap();
    let parsed = wristband_jose::UnverifiedToken::parse(&token).unwrap();
    assert!(parsed.verify(&other, &policy, now).is_err());

    // Nothing is stored or rotated in this mode.
    assert!(t.store.list_keys().await.unwrap().is_empty());
    t.advance(365 * DAY);
    assert!(sync(&t.app).await.is_empty());
    assert!(t.app.keys().rotate(None, true, 0).await.is_err());
}

#[tokio::test]
async fn weak_hs256_secrets_are_refused() {
    let short = wristband_jose::b64::encode([9u8; 16]);
    let low_entropy = wristband_jose::b64::encode([b'a'; 48]);
    let tutorial = wristband_jose::b64::encode(b"a-string-secret-at-least-256-bits-long");
    for bad in [
        short.as_str(),
        &low_entropy,
        &tutorial,
        "not base64 !!",
        "{\"kty\":\"oct\"}",
    ] {
        assert!(hs256_key_from_text(bad).is_err(), "{bad} accepted");
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::helpers::test_config(&dir);
        config.alg = Algorithm::HS256;
        config.hs256_secret = Some(bad.to_owned().into());
        let err = wristband_server::startup::App::build(
            config,
            std::sync::Arc::new(wristband_jose::SystemClock),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("HS256 secret"), "{err}");
        assert!(
            !err.contains(bad) || bad.len() < 20,
            "the secret is not echoed: {err}"
        );
    }
    // No secret at all is a configuration error that says how to make one.
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::test_config(&dir);
    config.alg = Algorithm::HS256;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("keys generate --alg HS256"), "{err}");
    // A JWK as written by `keys generate` is accepted.
    let jwk = SigningKey::generate(Algorithm::HS256)
        .unwrap()
        .to_private_jwk()
        .unwrap();
    assert!(hs256_key_from_text(&serde_json::to_string(&jwk).unwrap()).is_ok());
}

#[tokio::test]
async fn the_master_key_can_be_replaced_and_the_old_one_then_opens_nothing() {
    use wristband_server::domain::keys::rewrap_master_key;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wristband.db");
    let clock = std::sync::Arc::new(wristband_jose::SystemClock);
    let old_text = wristband_jose::b64::encode([1u8; 32]);
    let new_text = wristband_jose::b64::encode([2u8; 32]);
    let start = |master: &str| {
        let mut config = crate::helpers::test_config(&dir);
        config.master_key = Some(master.to_owned().into());
        let clock = clock.clone();
        let db = db.clone();
        async move {
            let store = std::sync::Arc::new(SqliteStore::open(&db).await.unwrap());
            wristband_server::startup::App::build_with_store(config, store, clock).await
        }
    };
    let app = start(&old_text).await.unwrap();
    app.service()
        .keys()
        .rotate(None, false, 1_800_000_000)
        .await
        .unwrap();
    let kids_before = app.service().jwks().keys.len();
    drop(app);

    let store = SqliteStore::open(&db).await.unwrap();
    let old = MasterKey::from_text(&old_text).unwrap();
    let new = MasterKey::from_text(&new_text).unwrap();
    // A wrong "current" key changes nothing.
    let err = rewrap_master_key(&store, &new, &old).await.unwrap_err();
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    let (keys, secrets) = rewrap_master_key(&store, &old, &new).await.unwrap();
    assert_eq!(keys, 2);
    assert_eq!(secrets, 2, "the refresh key and the master-key check");
    for k in store.list_keys().await.unwrap() {
        let sealed = k.private_key.unwrap();
        assert!(old.open(&k.kid, &sealed).is_err());
        assert!(new.open(&k.kid, &sealed).is_ok());
    }
    drop(store);

    let err = start(&old_text).await.unwrap_err().to_string();
    assert!(err.contains("master key does not open"), "{err}");
    let app = start(&new_text).await.unwrap();
    assert_eq!(
        app.service().jwks().keys.len(),
        kids_before,
        "the same keys"
    );
}
