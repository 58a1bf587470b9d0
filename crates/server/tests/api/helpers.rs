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
use wristband_server::startup::App;
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
    pub _dir: Arc<TempDir>,
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
        Self::spawn_in(Arc::new(tempfile::tempdir().unwrap()), tweak).await
    }

    /// Stops this instance (its open streams end) and starts another on the same data
    /// directory and SQLite file, on a new port.
    pub async fn restart(self) -> Self {
        let dir = Arc::clone(&self._dir);
        drop(self);
        Self::spawn_in(dir, |_| {}).await
    }

    async fn spawn_in(dir: Arc<TempDir>, tweak: impl FnOnce(&mut Config)) -> Self {
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

/// A registered OAuth client and its secret.
pub struct TestClient {
    pub id: String,
    pub secret: String,
}

impl TestClient {
    /// `Authorization: Basic ...` for this client.
    pub fn basic(&self) -> String {
        basic(&self.id, &self.secret)
    }
}

/// An HTTP Basic header value (RFC 6749 §2.3.1: both parts form-encoded first).
pub fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// `application/x-www-form-urlencoded` from pairs (names may repeat).
pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

impl TestApp {
    /// The pinned time, in Unix seconds.
    pub fn now(&self) -> i64 {
        i64::try_from(wristband_jose::Clock::now(&*self.clock).as_secs()).unwrap()
    }

    /// The pinned time, to the millisecond (what a subject cut-off records).
    pub fn now_ms(&self) -> wristband_server::domain::revoke::Millis {
        wristband_server::domain::revoke::Millis::now(&*self.clock)
    }

    /// Pins the clock at `ms` Unix milliseconds.
    pub fn set_millis(&self, ms: i64) {
        self.clock.set_millis(u64::try_from(ms).unwrap());
    }

    /// Registers a client directly in the store.
    pub async fn add_client(
        &self,
        name: &str,
        kind: &str,
        scopes: &[&str],
        audiences: &[&str],
        format: wristband_server::domain::TokenFormat,
    ) -> TestClient {
        let c = wristband_server::domain::oauth::add_client(
            &*self.store,
            name,
            kind,
            scopes.iter().map(|s| (*s).to_owned()).collect(),
            audiences.iter().map(|s| (*s).to_owned()).collect(),
            format,
            self.now(),
        )
        .await
        .unwrap();
        TestClient {
            id: c.record.id,
            secret: c.secret.expose().to_owned(),
        }
    }

    /// A resource server with a JWT format and the default audience.
    pub async fn resource_server(&self, name: &str) -> TestClient {
        self.add_client(
            name,
            "resource-server",
            &[],
            &[],
            wristband_server::domain::TokenFormat::Jwt,
        )
        .await
    }

    /// POSTs a form body.
    pub async fn post_form(
        &self,
        path: &str,
        pairs: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut h = vec![("content-type", "application/x-www-form-urlencoded")];
        h.extend_from_slice(headers);
        self.client
            .send(Method::POST, &self.url(path), &h, form(pairs).as_bytes())
            .await
    }

    /// `client_credentials` with Basic authentication; returns the access token.
    pub async fn client_token(&self, c: &TestClient) -> String {
        let r = self
            .post_form(
                "/oauth2/token",
                &[("grant_type", "client_credentials")],
                &[("authorization", &c.basic())],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// Introspects `token` as the resource server `rs`.
    pub async fn introspect(&self, rs: &TestClient, token: &str) -> TestResponse {
        self.post_form(
            "/oauth2/introspect",
            &[("token", token)],
            &[("authorization", &rs.basic())],
        )
        .await
    }

    /// RFC 7009 revocation by `client`.
    pub async fn revoke(&self, c: &TestClient, token: &str, hint: Option<&str>) -> TestResponse {
        let mut pairs = vec![("token", token)];
        if let Some(h) = hint {
            pairs.push(("token_type_hint", h));
        }
        self.post_form("/oauth2/revoke", &pairs, &[("authorization", &c.basic())])
            .await
    }

    /// `GET /v1/revocations` (all pages), read with a resource server's token.
    pub async fn revocations(&self, token: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let r = self
                .client
                .get_bearer(&self.url(&format!("/v1/revocations?after={after}")), token)
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
            let j = r.json();
            out.extend(j["revocations"].as_array().unwrap().iter().cloned());
            after = j["cursor"].as_i64().unwrap();
            if !j["has_more"].as_bool().unwrap() {
                return out;
            }
        }
    }

    /// The `sub` of an access token, from the auth service.
    pub async fn user_id(&self, at: &str) -> String {
        let r = self.me(at).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_owned()
    }
}

/// The `(kind, value)` pairs of feed records.
pub fn kinds(records: &[Value]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Claims of a JWT, read without verification (test assertions only).
pub fn claims(jwt: &str) -> Value {
    wristband_jose::dangerous::decode_without_verification(jwt)
        .unwrap()
        .payload
}
