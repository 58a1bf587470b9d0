//! OpenID Connect logout: back-channel logout tokens delivered to a real receiving server,
//! and RP-initiated logout at `/oauth2/logout`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use http::Method;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};
use wristband_jose::{Jwks, KeySet, SigningKey};
use wristband_server::config::TokenFormat;
use wristband_server::domain::{revoke::RecordLifetime, token_hash, users};
use wristband_server::store::{ClientKind, ClientRecord, SessionRecord, Store};

use crate::cookies::{cookie_login, set_cookies, Jar, AT};
use crate::helpers::{claims, form, TestApp};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
pub(crate) const BYE: &str = "https://rp.example/bye";

/// A receiving server: records the `logout_token` of every POST to `/backchannel`.
pub(crate) struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<(Instant, String)>>>,
    arrived: Arc<Notify>,
    _stop: oneshot::Sender<()>,
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    fn on(listener: TcpListener) -> Self {
        let addr = listener.local_addr().unwrap();
        let got: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let arrived = Arc::new(Notify::new());
        let (tx, rx) = oneshot::channel::<()>();
        let (g, a) = (Arc::clone(&got), Arc::clone(&arrived));
        let app = axum::Router::new().route(
            "/backchannel",
            post(move |headers: http::HeaderMap, body: Bytes| {
                let (g, a) = (Arc::clone(&g), Arc::clone(&a));
                async move {
                    assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
                    let token = url::form_urlencoded::parse(&body)
                        .find(|(k, _)| k == "logout_token")
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default();
                    g.lock().unwrap().push((Instant::now(), token));
                    a.notify_waiters();
                    http::StatusCode::OK
                }
            }),
        );
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Receiver {
            addr,
            got,
            arrived,
            _stop: tx,
        }
    }

    pub(crate) fn uri(&self) -> String {
        uri_at(self.addr)
    }

    fn tokens(&self) -> Vec<(Instant, String)> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` tokens arrived, at most `limit`.
    pub(crate) async fn wait_for(&self, n: usize, limit: Duration) -> Vec<(Instant, String)> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.arrived.notified();
            let got = self.tokens();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.tokens();
            }
        }
    }
}

fn uri_at(addr: SocketAddr) -> String {
    format!("http://{addr}/backchannel")
}

/// A free port with nothing listening on it (yet).
async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// Registers a relying party through the store.
async fn rp(t: &TestApp, name: &str, backchannel: Option<String>) -> ClientRecord {
    let c = ClientRecord {
        id: format!("rp_{name}"),
        name: name.to_owned(),
        kind: ClientKind::Web,
        secret_hash: token_hash("secret"),
        scopes: vec!["openid".to_owned()],
        audiences: vec!["wristband".to_owned()],
        token_format: TokenFormat::Jwt,
        created_at: t.now(),
        redirect_uris: vec!["https://rp.example/cb".to_owned()],
        post_logout_redirect_uris: vec![BYE.to_owned(), "https://rp.example/bye?x=1".to_owned()],
        backchannel_logout_uri: backchannel,
        first_party: false,
    };
    t.store.create_client(&c).await.unwrap();
    c
}

/// A child session of `parent` for `client`, as a code exchange makes it.
async fn child(t: &TestApp, parent: &str, client: &str, offline: bool) -> String {
    let parent = t.store.session(parent).await.unwrap().unwrap();
    let id = format!("ses_child_{client}_{}_{offline}", parent.id);
    let now = t.now();
    let s = SessionRecord {
        id: id.clone(),
        user_id: parent.user_id,
        client_id: client.to_owned(),
        created_at: now,
        last_used_at: now,
        absolute_expires_at: now + 86_400,
        generation: 0,
        rotated_at: None,
        revoked_at: None,
        user_agent: None,
        ip: None,
        parent_id: Some(parent.id),
        offline,
        scope: Some("openid".to_owned()),
        amr: parent.amr,
        auth_time: parent.auth_time,
    };
    t.store.create_session(&s, &token_hash(&id)).await.unwrap();
    id
}

/// Logs in through the JSON API and returns (access token, refresh token, sid, user id).
async fn sign_in(t: &TestApp, user: &str) -> (String, String, String, String) {
    let (at, rt) = t.tokens(user).await;
    let c = claims(&at);
    (
        at,
        rt,
        c["sid"].as_str().unwrap().to_owned(),
        c["sub"].as_str().unwrap().to_owned(),
    )
}

async fn jwks(t: &TestApp) -> KeySet {
    let r = t.client.get(&t.url("/.well-known/jwks.json"), &[]).await;
    KeySet::from_jwks(&Jwks::from_slice(r.text().as_bytes()).unwrap()).0
}

/// Checks a logout token as an RP must (section 2.6 of the specification) and returns its
/// claims.
pub(crate) async fn valid_logout_token(
    t: &TestApp,
    token: &str,
    client: &str,
    sid: &str,
    sub: &str,
) -> Value {
    let decoded = wristband_jose::dangerous::decode_without_verification(token).unwrap();
    assert_eq!(decoded.header["typ"], "logout+jwt");
    let kid = decoded.header["kid"].as_str().unwrap();
    let keys = jwks(t).await;
    let key = keys.get(kid).expect("the token's kid is in the JWKS");
    assert_eq!(decoded.header["alg"], key.algorithm().as_str());
    let payload = wristband_jose::verify_jws(token, key).expect("signed by the JWKS key");
    let c: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(c["iss"], t.app.issuer());
    assert_eq!(c["aud"], client);
    assert_eq!(c["sub"], sub);
    assert_eq!(c["sid"], sid);
    assert!(c["jti"].as_str().is_some_and(|j| j.len() >= 16), "{c}");
    let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
    assert!(iat <= t.now() && iat >= t.now() - 5, "{c}");
    assert!(exp > iat && exp - iat <= 300, "a short lifetime: {c}");
    assert_eq!(c["events"], json!({ EVENT: {} }));
    assert!(c.get("nonce").is_none(), "no nonce: {c}");
    c
}

async fn metric(t: &TestApp, name: &str) -> f64 {
    let text = t.client.get(&t.url("/metrics"), &[]).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

async fn wait_metric(t: &TestApp, name: &str, at_least: f64, limit: Duration) -> f64 {
    let deadline = Instant::now() + limit;
    loop {
        let v = metric(t, name).await;
        if v >= at_least || Instant::now() >= deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn revoked(t: &TestApp, sid: &str) -> bool {
    t.store
        .session(sid)
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some()
}

#[tokio::test]
async fn a_logout_reaches_the_client_within_a_second_with_a_valid_logout_token() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let receiver = Receiver::start().await;
    let with = rp(&t, "with", Some(receiver.uri())).await;
    let without = rp(&t, "without", None).await;
    let (at, rt, sid, sub) = sign_in(&t, "alice").await;
    let online = child(&t, &sid, &with.id, false).await;
    let offline = child(&t, &sid, &with.id, true).await;
    let other = child(&t, &sid, &without.id, false).await;

    let started = Instant::now();
    assert_eq!(t.logout(&at, Some(&rt)).await.status, 204);
    let got = receiver.wait_for(1, Duration::from_secs(1)).await;
    assert_eq!(got.len(), 1, "delivered within 1 s");
    let elapsed = got[0].0 - started;
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");

    valid_logout_token(&t, &got[0].1, &with.id, &sid, &sub).await;
    // The children that are not offline ended with their sign-in session.
    assert!(revoked(&t, &online).await);
    assert!(revoked(&t, &other).await);
    assert!(
        !revoked(&t, &offline).await,
        "offline_access outlives the session"
    );
    // One token per client (two children of one client), none for the client without a
    // back-channel URI.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.tokens().len(), 1);
    assert_eq!(
        wait_metric(
            &t,
            "wristband_backchannel_delivered_total",
            1.0,
            Duration::from_secs(1)
        )
        .await,
        1.0
    );
    assert_eq!(metric(&t, "wristband_backchannel_queued_total").await, 1.0);
    assert_eq!(
        metric(&t, "wristband_backchannel_failures_total").await,
        0.0
    );
    assert!(t.store.pending_backchannel().await.unwrap().is_empty());
}

/// alice signed in, a relying party took part with its receiver on a closed port, and she
/// logged out: the first delivery has failed. (The app, the receiver's address, the client,
/// the sign-in session and alice's id.)
async fn logged_out_while_the_receiver_is_down(
) -> (TestApp, SocketAddr, ClientRecord, String, String) {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let addr = closed_port().await;
    let client = rp(&t, "rp", Some(uri_at(addr))).await;
    let (at, _, sid, sub) = sign_in(&t, "alice").await;
    child(&t, &sid, &client.id, false).await;
    assert_eq!(t.logout(&at, None).await.status, 204);
    let failures = "wristband_backchannel_failures_total";
    assert_eq!(
        wait_metric(&t, failures, 1.0, Duration::from_secs(3)).await,
        1.0
    );
    (t, addr, client, sid, sub)
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_token_when_it_comes_back() {
    let (t, addr, client, sid, sub) = logged_out_while_the_receiver_is_down().await;
    let pending = t.store.pending_backchannel().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempts, 1);
    assert_eq!(pending[0].next_attempt_at, t.now() + 1, "retried after 1 s");

    // The receiver comes back; the retry comes due.
    let receiver = Receiver::on(TcpListener::bind(addr).await.unwrap());
    t.advance(1);
    let got = receiver.wait_for(1, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1);
    valid_logout_token(&t, &got[0].1, &client.id, &sid, &sub).await;
    assert_eq!(
        wait_metric(
            &t,
            "wristband_backchannel_delivered_total",
            1.0,
            Duration::from_secs(1)
        )
        .await,
        1.0
    );
    assert!(t.store.pending_backchannel().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_restart_finishes_pending_deliveries() {
    let (t, addr, client, sid, sub) = logged_out_while_the_receiver_is_down().await;

    // Another process on the same database takes over: the queue is in the store.
    let t = t.restart().await;
    let receiver = Receiver::on(TcpListener::bind(addr).await.unwrap());
    t.advance(1);
    let got = receiver.wait_for(1, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1, "the new instance delivered it");
    valid_logout_token(&t, &got[0].1, &client.id, &sid, &sub).await;
}

#[tokio::test]
async fn logout_everywhere_and_a_disabled_user_deliver_too() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let receiver = Receiver::start().await;
    let client = rp(&t, "rp", Some(receiver.uri())).await;
    let (at1, _, sid1, sub) = sign_in(&t, "alice").await;
    let (_, _, sid2, _) = sign_in(&t, "alice").await;
    child(&t, &sid1, &client.id, false).await;
    child(&t, &sid2, &client.id, false).await;

    let r = t
        .client
        .send(
            Method::POST,
            &t.url("/v1/logout-all"),
            &[("authorization", &format!("Bearer {at1}"))],
            b"",
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let got = receiver.wait_for(2, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 2);
    let mut sids = Vec::new();
    for (_, token) in &got {
        let c = claims(token);
        let sid = c["sid"].as_str().unwrap().to_owned();
        valid_logout_token(&t, token, &client.id, &sid, &sub).await;
        sids.push(sid);
    }
    sids.sort();
    let mut want = vec![sid1, sid2];
    want.sort();
    assert_eq!(sids, want);

    // Disabling the user (the CLI's way) ends the session made since, and tells the client.
    t.advance(1);
    let (_, _, sid3, _) = sign_in(&t, "alice").await;
    child(&t, &sid3, &client.id, false).await;
    users::set_disabled(&*t.store, life(&t), "alice", true, t.now_ms())
        .await
        .unwrap();
    t.app.feed_changed();
    let got = receiver.wait_for(3, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 3, "the disabled user's session was announced");
    valid_logout_token(&t, &got[2].1, &client.id, &sid3, &sub).await;
}

fn life(t: &TestApp) -> RecordLifetime {
    t.app.record_lifetime()
}

#[tokio::test]
async fn deliveries_are_given_up_at_the_end_of_the_retry_window() {
    let t = TestApp::spawn_with(|c| c.backchannel_retry_window = Duration::from_secs(3)).await;
    t.add_user("alice", "user").await;
    let client = rp(&t, "rp", Some(uri_at(closed_port().await))).await;
    let (at, _, sid, _) = sign_in(&t, "alice").await;
    child(&t, &sid, &client.id, false).await;
    assert_eq!(t.logout(&at, None).await.status, 204);

    let failures = "wristband_backchannel_failures_total";
    assert_eq!(
        wait_metric(&t, failures, 1.0, Duration::from_secs(3)).await,
        1.0
    );
    // Retried after 1 s, then 2 s; the next wait (4 s) would end after the window.
    t.advance(1);
    assert_eq!(
        wait_metric(&t, failures, 2.0, Duration::from_secs(3)).await,
        2.0
    );
    assert_eq!(
        metric(&t, "wristband_backchannel_given_up_total").await,
        0.0
    );
    t.advance(2);
    assert_eq!(
        wait_metric(&t, failures, 3.0, Duration::from_secs(3)).await,
        3.0
    );
    let given_up = "wristband_backchannel_given_up_total";
    assert_eq!(
        wait_metric(&t, given_up, 1.0, Duration::from_secs(2)).await,
        1.0
    );
    assert!(t.store.pending_backchannel().await.unwrap().is_empty());
    // Nothing more is tried.
    t.advance(60);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(metric(&t, failures).await, 3.0);
}

// ---- RP-initiated logout -------------------------------------------------------------

/// An ID token for `client` as the service signs them (the current key of the ring).
fn id_token(t: &TestApp, client: &str, sub: &str, sid: &str, exp: i64) -> String {
    let ring = t.app.keys().ring();
    id_token_signed(t, ring.signing(), client, sub, sid, exp)
}

fn id_token_signed(
    t: &TestApp,
    key: &SigningKey,
    client: &str,
    sub: &str,
    sid: &str,
    exp: i64,
) -> String {
    let claims = json!({
        "iss": t.app.issuer(), "aud": client, "sub": sub, "sid": sid,
        "iat": exp - 300, "exp": exp, "nonce": "n-1",
    });
    wristband_jose::sign_claims(key, None, &claims).unwrap()
}

async fn logout_get(
    t: &TestApp,
    jar: &Jar,
    query: &[(&str, &str)],
) -> wristband_testkit::http::TestResponse {
    let url = format!("{}?{}", t.url("/oauth2/logout"), form(query));
    t.client
        .get(
            &url,
            &[
                ("cookie", &jar.header("/oauth2/logout")),
                ("sec-fetch-site", "cross-site"),
            ],
        )
        .await
}

async fn live(t: &TestApp, sid: &str) -> bool {
    !revoked(t, sid).await
}

#[tokio::test]
async fn a_valid_hint_ends_the_session_and_redirects_with_the_state() {
    let t = TestApp::spawn().await;
    let sub = t.add_user("alice", "user").await;
    let client = rp(&t, "rp", None).await;
    let jar = cookie_login(&t, "alice").await;
    let sid = jar.sid();
    // An expired hint is accepted.
    let hint = id_token(&t, &client.id, &sub, &sid, t.now() - 3600);

    let r = logout_get(
        &t,
        &jar,
        &[
            ("id_token_hint", &hint),
            ("post_logout_redirect_uri", BYE),
            ("state", "s t&ate"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some("https://rp.example/bye?state=s+t%26ate")
    );
    assert!(!live(&t, &sid).await, "the sign-in session ended");
    let cleared = set_cookies(&r);
    assert_eq!(cleared[AT].attr("Max-Age"), Some("0"));
    assert_eq!(t.me(jar.get(AT)).await.status, 401);

    // A navigation from the RP's site carries no SameSite=Strict cookie: the hint's session
    // ends all the same, and a registered URI with a query keeps it.
    let (_, _, sid2, _) = sign_in(&t, "alice").await;
    let hint = id_token(&t, &client.id, &sub, &sid2, t.now() + 300);
    let r = logout_get(
        &t,
        &Jar::default(),
        &[
            ("id_token_hint", &hint),
            ("post_logout_redirect_uri", "https://rp.example/bye?x=1"),
            ("state", "abc"),
            ("client_id", &client.id),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some("https://rp.example/bye?x=1&state=abc")
    );
    assert!(!live(&t, &sid2).await);

    // Without a redirect: the "logged out" page.
    let (_, _, sid3, _) = sign_in(&t, "alice").await;
    let hint = id_token(&t, &client.id, &sub, &sid3, t.now() + 300);
    let r = logout_get(&t, &Jar::default(), &[("id_token_hint", &hint)]).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("You are logged out"), "{}", r.text());
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert!(!live(&t, &sid3).await);
}

#[tokio::test]
async fn an_unregistered_post_logout_redirect_uri_is_never_followed() {
    let t = TestApp::spawn().await;
    let sub = t.add_user("alice", "user").await;
    let client = rp(&t, "rp", None).await;
    let other = rp(&t, "other", None).await;
    let (_, _, sid, _) = sign_in(&t, "alice").await;
    let hint = id_token(&t, &client.id, &sub, &sid, t.now() + 300);
    for uri in [
        "https://evil.example/bye",
        "https://rp.example/bye/",
        "https://rp.example/by",
        "https://rp.example/bye?x=2",
        "https://rp.example/bye#f",
        "https://RP.example/bye",
        "https://rp.example:444/bye",
        "https://rp.example@evil.example/bye",
        "http://rp.example/bye",
        "//evil.example/bye",
    ] {
        let r = logout_get(
            &t,
            &Jar::default(),
            &[
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", uri),
                ("state", "x"),
            ],
        )
        .await;
        assert_eq!(r.status, 400, "{uri}: {}", r.text());
        assert_eq!(r.header("location"), None, "{uri}");
        assert!(r.text().contains("not registered"), "{}", r.text());
        assert!(live(&t, &sid).await, "{uri}: nothing was ended");
    }
    // Another client's registered URI, with this client's hint: refused too.
    let r = logout_get(
        &t,
        &Jar::default(),
        &[
            ("id_token_hint", &hint),
            ("post_logout_redirect_uri", BYE),
            ("client_id", &other.id),
        ],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("location"), None);
    // A redirect without a hint or a client: nothing names its client.
    let r = logout_get(&t, &Jar::default(), &[("post_logout_redirect_uri", BYE)]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("location"), None);
    // An unknown client.
    let r = logout_get(
        &t,
        &Jar::default(),
        &[("post_logout_redirect_uri", BYE), ("client_id", "nope")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(live(&t, &sid).await);
}

#[tokio::test]
async fn a_forged_hint_is_refused() {
    let t = TestApp::spawn().await;
    let sub = t.add_user("alice", "user").await;
    let client = rp(&t, "rp", None).await;
    let (at, _, sid, _) = sign_in(&t, "alice").await;
    let exp = t.now() + 300;
    let genuine = id_token(&t, &client.id, &sub, &sid, exp);
    let ring = t.app.keys().ring();
    let kid = ring.signing().kid().to_owned();

    // Another key that claims our kid.
    let other = SigningKey::generate(ring.signing().algorithm()).unwrap();
    let header = json!({"alg": other.algorithm().as_str(), "kid": kid});
    let payload = claims(&genuine);
    let claims_kid = wristband_jose::dangerous::sign_raw(
        &other,
        header.to_string().as_bytes(),
        payload.to_string().as_bytes(),
    )
    .unwrap();
    // A token our key signed, with its payload changed.
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    let mut tampered = payload.clone();
    tampered["sid"] = json!("ses_someone_else");
    parts[1] = wristband_jose::b64::encode(tampered.to_string());
    let tampered = parts.join(".");
    // Our key, another issuer.
    let mut foreign = payload.clone();
    foreign["iss"] = json!("https://evil.example");
    let foreign = wristband_jose::sign_claims(ring.signing(), None, &foreign).unwrap();
    // Another key altogether.
    let unknown = id_token_signed(&t, &other, &client.id, &sub, &sid, exp);
    for (what, hint) in [
        ("kid of ours, signature of another key", claims_kid.as_str()),
        ("tampered payload", tampered.as_str()),
        ("another issuer", foreign.as_str()),
        ("an unknown key", unknown.as_str()),
        ("an access token", at.as_str()),
        ("not a token", "abc.def"),
    ] {
        let r = logout_get(
            &t,
            &Jar::default(),
            &[("id_token_hint", hint), ("post_logout_redirect_uri", BYE)],
        )
        .await;
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert_eq!(r.header("location"), None, "{what}");
        assert!(live(&t, &sid).await, "{what}: nothing was ended");
    }
    // The genuine one works.
    let r = logout_get(
        &t,
        &Jar::default(),
        &[
            ("id_token_hint", &genuine),
            ("post_logout_redirect_uri", BYE),
        ],
    )
    .await;
    assert_eq!(r.status, 303);
    assert!(!live(&t, &sid).await);
}

#[tokio::test]
async fn without_a_hint_the_user_confirms_on_a_protected_page() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    let client = rp(&t, "rp", None).await;
    let mut jar = cookie_login(&t, "alice").await;
    let sid = jar.sid();

    let r = logout_get(
        &t,
        &jar,
        &[
            ("client_id", &client.id),
            ("post_logout_redirect_uri", BYE),
            ("state", "st"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        live(&t, &sid).await,
        "nothing ends before the user confirms"
    );
    let page = r.text();
    assert!(
        page.contains("Log out?") && page.contains("<form method=\"post\""),
        "{page}"
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        csp.contains("form-action 'self' https://rp.example"),
        "{csp}"
    );
    jar.update(&r);
    let nonce = jar.get("__Host-wb_logout").to_owned();
    assert!(!nonce.is_empty());
    let token = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();

    let post = |jar: Jar, fields: Vec<(&'static str, String)>, origin: String| {
        let t = &t;
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            t.client
                .send(
                    Method::POST,
                    &t.url("/oauth2/logout"),
                    &[
                        ("content-type", "application/x-www-form-urlencoded"),
                        ("origin", &origin),
                        ("cookie", &jar.header("/oauth2/logout")),
                    ],
                    form(&pairs).as_bytes(),
                )
                .await
        }
    };
    let fields = |csrf: &str| {
        vec![
            ("confirm", "1".to_owned()),
            ("csrf_token", csrf.to_owned()),
            ("client_id", client.id.clone()),
            ("post_logout_redirect_uri", BYE.to_owned()),
            ("state", "st".to_owned()),
        ]
    };
    // No token, a wrong one, another origin, no cookie: refused, and nothing ends.
    for (what, r) in [
        (
            "no token",
            post(jar.clone(), fields(""), t.base.clone()).await,
        ),
        (
            "wrong token",
            post(jar.clone(), fields("AAAA"), t.base.clone()).await,
        ),
        (
            "cross-origin",
            post(jar.clone(), fields(&token), "https://evil.example".into()).await,
        ),
        (
            "no cookie",
            post(
                Jar(jar
                    .0
                    .iter()
                    .filter(|(k, _)| *k != "__Host-wb_logout")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()),
                fields(&token),
                t.base.clone(),
            )
            .await,
        ),
    ] {
        assert_eq!(r.status, 403, "{what}: {}", r.text());
        assert_eq!(r.header("location"), None, "{what}");
        assert!(live(&t, &sid).await, "{what}");
    }
    // An unregistered redirect slipped into the form: refused.
    let mut bad = fields(&token);
    bad[3].1 = "https://evil.example/".to_owned();
    let r = post(jar.clone(), bad, t.base.clone()).await;
    assert_eq!(r.status, 400);
    assert!(live(&t, &sid).await);

    let r = post(jar.clone(), fields(&token), t.base.clone()).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some("https://rp.example/bye?state=st")
    );
    assert!(
        !live(&t, &sid).await,
        "the confirmed logout ended the session"
    );
    assert_eq!(set_cookies(&r)[AT].attr("Max-Age"), Some("0"));

    // Without a hint or a client: the page, then the "logged out" page.
    let r = logout_get(&t, &Jar::default(), &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Log out?"));
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .ends_with("form-action 'self'"));
}

// ---- Several instances on one PostgreSQL database -----------------------------------

/// An auth instance on a PostgreSQL schema, sharing the master key and the issuer.
struct PgInstance {
    base: String,
    service: Arc<wristband_server::domain::AuthService>,
    _stop: oneshot::Sender<()>,
}

async fn pg_instance(
    url: &str,
    schema: &str,
    master: &std::path::Path,
    dir: &tempfile::TempDir,
    clock: Arc<wristband_jose::FixedClock>,
) -> PgInstance {
    use wristband_server::store::PgStore;
    let store = PgStore::connect_with_schema(url, schema).await.unwrap();
    let mut config = crate::helpers::test_config(dir);
    config.master_key_file = Some(master.to_path_buf());
    config.issuer = Some("http://wristband.test".to_owned());
    let app = wristband_server::startup::App::build_with_store(config, Arc::new(store), clock)
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    let service = Arc::clone(app.service());
    let (tx, rx) = oneshot::channel();
    tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    PgInstance {
        base,
        service,
        _stop: tx,
    }
}

#[tokio::test]
async fn two_instances_on_one_postgresql_deliver_each_token_once() {
    use wristband_server::store::PgStore;
    use wristband_testkit::postgres;
    let test = "oidc_logout::two_instances_on_one_postgresql_deliver_each_token_once";
    let url = postgres::url();
    let schema = postgres::schema_name(test);
    let admin = match PgStore::connect_with_schema(&url, &schema).await {
        Ok(s) => s,
        Err(e) => return postgres::not_run(test, &e),
    };
    let keys = tempfile::tempdir().unwrap();
    let master = keys.path().join("master.key");
    wristband_server::domain::MasterKey::create_file(&master).unwrap();
    let clock = Arc::new(wristband_jose::FixedClock::new(
        wristband_jose::UnixTime::from_secs(crate::helpers::START),
    ));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A creates the signing key; B loads it.
    let a = pg_instance(&url, &schema, &master, &dir_a, Arc::clone(&clock)).await;
    let b = pg_instance(&url, &schema, &master, &dir_b, Arc::clone(&clock)).await;

    let receiver = Receiver::start().await;
    let now = i64::try_from(crate::helpers::START).unwrap();
    let client = ClientRecord {
        id: "rp_pg".to_owned(),
        name: "pg".to_owned(),
        kind: ClientKind::Web,
        secret_hash: token_hash("secret"),
        scopes: vec!["openid".to_owned()],
        audiences: vec!["wristband".to_owned()],
        token_format: TokenFormat::Jwt,
        created_at: now,
        redirect_uris: vec!["https://rp.example/cb".to_owned()],
        post_logout_redirect_uris: Vec::new(),
        backchannel_logout_uri: Some(receiver.uri()),
        first_party: false,
    };
    admin.create_client(&client).await.unwrap();
    let user = users::add_user(
        &admin,
        a.service.passwords(),
        "alice",
        wristband_jose::SecretString::new(crate::helpers::PASSWORD.into()),
        "user",
        now,
    )
    .await
    .unwrap();

    // Ten sign-in sessions, on either instance, each with a child of the client.
    let http = wristband_testkit::http::Client::new();
    let mut sids = Vec::new();
    let mut access = String::new();
    for i in 0..10 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let body = json!({"username": "alice", "password": crate::helpers::PASSWORD});
        let r = http
            .send(
                Method::POST,
                &format!("{base}/v1/login"),
                &[("content-type", "application/json")],
                body.to_string().as_bytes(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        access = r.json()["access_token"].as_str().unwrap().to_owned();
        let sid = claims(&access)["sid"].as_str().unwrap().to_owned();
        let s = SessionRecord {
            id: format!("ses_child_{i}"),
            user_id: user.id.clone(),
            client_id: client.id.clone(),
            created_at: now,
            last_used_at: now,
            absolute_expires_at: now + 86_400,
            generation: 0,
            rotated_at: None,
            revoked_at: None,
            user_agent: None,
            ip: None,
            parent_id: Some(sid.clone()),
            offline: false,
            scope: Some("openid".to_owned()),
            amr: "pwd".to_owned(),
            auth_time: now,
        };
        admin.create_session(&s, &token_hash(&s.id)).await.unwrap();
        sids.push(sid);
    }
    // Log out everywhere on B: both instances follow the feed, both queue, both deliver.
    let r = http
        .send(
            Method::POST,
            &format!("{}/v1/logout-all", b.base),
            &[("authorization", &format!("Bearer {access}"))],
            b"",
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let got = receiver.wait_for(10, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 10);
    // Give a duplicate time to arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut delivered: Vec<String> = receiver
        .tokens()
        .iter()
        .map(|(_, t)| claims(t)["sid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(delivered.len(), 10, "each token once: {delivered:?}");
    delivered.sort();
    sids.sort();
    assert_eq!(delivered, sids);
    let queued = |s: &wristband_server::domain::AuthService| s.metrics().backchannel.queued.get();
    assert_eq!(
        queued(&a.service) + queued(&b.service),
        10,
        "queued once each"
    );
    let delivered_by =
        |s: &wristband_server::domain::AuthService| s.metrics().backchannel.delivered.get();
    assert_eq!(delivered_by(&a.service) + delivered_by(&b.service), 10);
    drop((a, b));
    admin.drop_schema().await.unwrap();
}

#[tokio::test]
async fn a_redirect_is_a_failed_attempt_and_is_not_followed() {
    let t = TestApp::spawn().await;
    t.add_user("alice", "user").await;
    // A receiver that redirects to a page that would accept the token.
    let followed = Arc::new(Mutex::new(0_u32));
    let f = Arc::clone(&followed);
    let app = axum::Router::new()
        .route(
            "/backchannel",
            post(|| async {
                (
                    http::StatusCode::TEMPORARY_REDIRECT,
                    [("location", "/elsewhere")],
                )
            }),
        )
        .route(
            "/elsewhere",
            post(move || {
                let f = Arc::clone(&f);
                async move {
                    *f.lock().unwrap() += 1;
                    http::StatusCode::OK
                }
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = rp(&t, "rp", Some(uri_at(addr))).await;
    let (at, _, sid, _) = sign_in(&t, "alice").await;
    child(&t, &sid, &client.id, false).await;
    assert_eq!(t.logout(&at, None).await.status, 204);

    let failures = "wristband_backchannel_failures_total";
    assert_eq!(
        wait_metric(&t, failures, 1.0, Duration::from_secs(3)).await,
        1.0
    );
    assert_eq!(
        *followed.lock().unwrap(),
        0,
        "the redirect was not followed"
    );
    assert_eq!(
        metric(&t, "wristband_backchannel_delivered_total").await,
        0.0
    );
    assert_eq!(
        t.store.pending_backchannel().await.unwrap().len(),
        1,
        "to be retried"
    );
}
