//! A test app on port 0 with a fresh SQLite file and a pinned clock.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;
use wristband_jose::{FixedClock, SecretString, UnixTime};
use wristband_server::config::{Argon2Config, Config};
use wristband_server::domain::users;
use wristband_server::http::App;
use wristband_server::store::SqliteStore;
use wristband_testkit::http::{Client, TestResponse};

pub const PASSWORD: &str = "correct horse battery staple";
pub const START: u64 = 1_800_000_000;

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub clock: Arc<FixedClock>,
    pub store: Arc<SqliteStore>,
    pub app: Arc<wristband_server::domain::AuthService>,
    pub _dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
}

/// Cheap Argon2 parameters: these tests exercise the flows, not the KDF cost.
pub fn test_config(dir: &TempDir) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        argon2: Argon2Config {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        alg: wristband_jose::Algorithm::ES256,
        ..Config::default()
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(&dir);
        tweak(&mut config);
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("wristband.db"))
                .await
                .unwrap(),
        );
        let clock = Arc::new(FixedClock::new(UnixTime::from_secs(START)));
        let app = App::build_with_store(config, store.clone(), clock.clone())
            .await
            .unwrap();
        let base = format!("http://{}", app.local_addr());
        let service = app.service().clone();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(app.run(async {
            let _ = rx.await;
        }));
        TestApp {
            base,
            client: Client::new(),
            clock,
            store,
            app: service,
            _dir: dir,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    pub async fn add_user(&self, name: &str, role: &str) -> String {
        let now = i64::try_from(wristband_jose::Clock::now(&*self.clock).as_secs()).unwrap();
        users::add_user(
            &*self.store,
            self.app.passwords(),
            name,
            SecretString::new(PASSWORD.into()),
            role,
            now,
        )
        .await
        .unwrap()
        .id
    }

    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut h = vec![("content-type", "application/json")];
        h.extend_from_slice(headers);
        self.client
            .send(
                Method::POST,
                &self.url(path),
                &h,
                body.to_string().as_bytes(),
            )
            .await
    }

    pub async fn login(&self, user: &str, password: &str) -> TestResponse {
        self.post_json(
            "/v1/login",
            &json!({"username": user, "password": password}),
            &[],
        )
        .await
    }

    /// Logs in and returns (access, refresh).
    pub async fn tokens(&self, user: &str) -> (String, String) {
        let r = self.login(user, PASSWORD).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let j = r.json();
        (
            j["access_token"].as_str().unwrap().to_owned(),
            j["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn refresh(&self, rt: &str) -> TestResponse {
        self.post_json("/v1/refresh", &json!({ "refresh_token": rt }), &[])
            .await
    }

    pub async fn me(&self, at: &str) -> TestResponse {
        self.client.get_bearer(&self.url("/v1/me"), at).await
    }

    pub async fn logout(&self, at: &str, rt: Option<&str>) -> TestResponse {
        let auth = format!("Bearer {at}");
        match rt {
            Some(rt) => {
                self.post_json(
                    "/v1/logout",
                    &json!({ "refresh_token": rt }),
                    &[("authorization", &auth)],
                )
                .await
            }
            None => {
                self.client
                    .send(
                        Method::POST,
                        &self.url("/v1/logout"),
                        &[("authorization", &auth)],
                        b"",
                    )
                    .await
            }
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
