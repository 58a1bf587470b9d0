//! Scale-out on loopback: three `wristband serve` instances on one PostgreSQL schema, with
//! the same master key and the same issuer, behind a TCP load balancer; twenty
//! `api_service` verifiers following the revocation feed through it.
//!
//! The issuer is the load balancer's URL (`http://127.0.0.1:<lb>`): every instance signs
//! the same `iss`, and the verifiers discover the metadata, the JWKS and the feed through
//! it. The balancer spreads connections round-robin per kind of first request, so the
//! verifiers' feed connections (token request, snapshot, then the stream, on one pooled
//! connection) land on all three instances, and a revocation written on one instance must
//! reach the others' subscribers through the database.
//!
//! Without a reachable PostgreSQL these tests fail in CI and are reported as NOT RUN
//! elsewhere (see `wristband_testkit::postgres`).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{json, Value};
use tempfile::TempDir;
use wristband_server::domain::MasterKey;
use wristband_server::store::{PgStore, Store};
use wristband_testkit::http::{Client, TestResponse};
use wristband_testkit::postgres;
use wristband_testkit::process::ServiceProcess;
use wristband_testkit::TcpProxy;

use crate::revocation::{ClientCreds, Deployment, Login, PROPAGATION};

/// What the balancer counts: stream requests of the revocation feed.
const STREAM: &str = "GET /v1/revocations/stream";

/// A PostgreSQL schema of the test's own, migrated, with the URL that selects it.
struct Schema {
    store: PgStore,
    name: String,
    url: String,
}

impl Schema {
    /// A fresh schema, or `None` (after the NOT RUN warning, or a failure in CI) when no
    /// PostgreSQL server answers.
    async fn create(test: &str) -> Option<Schema> {
        let base = postgres::url();
        let name = postgres::schema_name(test);
        let store = match PgStore::connect_with_schema(&base, &name).await {
            Ok(store) => store,
            Err(e) => {
                postgres::not_run(test, &e);
                return None;
            }
        };
        Some(Schema {
            store,
            url: with_search_path(&base, &name),
            name,
        })
    }

    async fn drop(self) {
        self.store.drop_schema().await.unwrap();
    }
}

/// `url` with `?options=-c search_path=<schema>` (the form `open_store` accepts).
fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// Three instances on one schema behind a balancer whose URL is the issuer.
struct Cluster {
    schema: Schema,
    _keys: TempDir,
    master_key_file: String,
    d: Deployment,
    lb: TcpProxy,
    instances: Vec<Option<ServiceProcess>>,
}

impl Cluster {
    async fn start(test: &str) -> Option<Cluster> {
        let schema = Schema::create(test).await?;
        let keys = tempfile::tempdir().unwrap();
        let master = keys.path().join("master.key");
        MasterKey::create_file(&master).unwrap();
        let master_key_file = master.to_string_lossy().into_owned();
        let lb = TcpProxy::start(&[], &[STREAM]).await;
        let d = Deployment::with_settings(&format!(
            "database = \"{}\"\nmaster_key_file = \"{master_key_file}\"\n\
             issuer = \"{}\"\nrefresh_grace = \"30s\"\n",
            schema.url,
            lb.url(""),
        ));
        // A creates the signing key in the empty schema; B and C then load it.
        let a = d.serve("127.0.0.1:0").await;
        let (b, c) = tokio::join!(d.serve("127.0.0.1:0"), d.serve("127.0.0.1:0"));
        lb.set_backends(&[a.addr(), b.addr(), c.addr()]);
        Some(Cluster {
            schema,
            _keys: keys,
            master_key_file,
            d,
            lb,
            instances: vec![Some(a), Some(b), Some(c)],
        })
    }

    fn instance(&self, i: usize) -> &ServiceProcess {
        self.instances[i].as_ref().expect("a running instance")
    }

    /// The issuer every instance signs: the balancer's URL.
    fn issuer(&self) -> String {
        self.lb.url("")
    }

    /// An `api_service` for the shared issuer, following the feed with `rs`'s credentials.
    async fn api_service(&self, rs: &ClientCreds) -> ServiceProcess {
        crate::revocation::api_service_for(&self.issuer(), Some(rs), &[]).await
    }

    async fn finish(mut self) {
        for i in self.instances.iter_mut() {
            if let Some(p) = i.take() {
                assert!(p.terminate().await.success(), "graceful shutdown");
            }
        }
        self.schema.drop().await;
    }
}

fn claims(at: &str) -> Value {
    wristband_jose::dangerous::decode_without_verification(at)
        .unwrap()
        .payload
}

async fn refresh(http: &Client, instance: &ServiceProcess, rt: &str) -> TestResponse {
    http.send(
        Method::POST,
        &instance.url("/v1/refresh"),
        &[("content-type", "application/json")],
        json!({ "refresh_token": rt }).to_string().as_bytes(),
    )
    .await
}

/// A refresh that may meet a dead server: `None` when the connection failed (the test
/// client panics then, inside its own task).
async fn try_refresh(http: &Client, url: &str, rt: &str) -> Option<TestResponse> {
    let (http, url) = (http.clone(), url.to_owned());
    let body = json!({ "refresh_token": rt }).to_string();
    tokio::spawn(async move {
        http.send(
            Method::POST,
            &url,
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await
    })
    .await
    .ok()
}

/// `wristband_refreshes_total{outcome="..."}` in an instance's `/metrics`.
async fn refreshes(http: &Client, instance: &ServiceProcess, outcome: &str) -> u64 {
    let text = http.get(&instance.url("/metrics"), &[]).await.text();
    let prefix = format!("wristband_refreshes_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

#[tokio::test]
async fn three_instances_share_sessions_and_a_logout_reaches_twenty_verifiers() {
    let test = "scale_out::three_instances_share_sessions_and_a_logout_reaches_twenty_verifiers";
    let Some(cl) = Cluster::start(test).await else {
        return;
    };
    let d = &cl.d;
    // Users and clients made by the CLI on the same database URL.
    d.add_user("alice").await;
    d.add_user("bob").await;
    let rs = d.add_client("orders-api", "resource-server", &[]).await;
    let (a, b, c) = (cl.instance(0), cl.instance(1), cl.instance(2));

    // One key set everywhere, sealed under the one master key.
    let mut jwks = Vec::new();
    for i in [a, b, c] {
        jwks.push(
            d.http
                .get(&i.url("/.well-known/jwks.json"), &[])
                .await
                .json(),
        );
    }
    assert!(jwks.iter().all(|k| k == &jwks[0]), "{jwks:?}");
    assert_eq!(jwks[0]["keys"].as_array().unwrap().len(), 1, "{}", jwks[0]);

    let mut apis = Vec::new();
    for _ in 0..20 {
        apis.push(cl.api_service(&rs).await);
    }
    let api_refs: Vec<&ServiceProcess> = apis.iter().collect();

    // The verifiers' streams are spread over the three instances.
    // (A verifier opens its stream in the background, once its snapshot is read.)
    let since = Instant::now();
    let streams = loop {
        let streams = cl.lb.seen(0);
        if streams.iter().sum::<usize>() >= 20 || since.elapsed() > Duration::from_secs(10) {
            break streams;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!("feed streams per instance (A, B, C): {streams:?}");
    assert_eq!(streams.iter().sum::<usize>(), 20, "{streams:?}");
    assert!(streams.iter().all(|&n| n >= 3), "{streams:?}");

    // Login on A, refresh on B: one session, one issuer.
    let s: Login = d.login(a, "alice").await;
    assert_eq!(claims(&s.at)["iss"], cl.issuer().as_str());
    d.accepted_everywhere(&api_refs, &s.at, "login on A").await;
    let r = refresh(&d.http, b, &s.rt).await;
    assert_eq!(r.status, 200, "refresh on B: {}", r.text());
    let pair = r.json();
    let at2 = pair["access_token"].as_str().unwrap().to_owned();
    let rt2 = pair["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt2, s.rt);
    assert_eq!(claims(&at2)["iss"], cl.issuer().as_str());
    assert_eq!(claims(&at2)["sid"], s.sid.as_str());
    d.accepted_everywhere(&api_refs, &at2, "refreshed on B")
        .await;
    // C sees the session as B left it: the sessions list and a login there.
    let listed = d.http.get_bearer(&c.url("/v1/sessions"), &at2).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert!(
        listed.json()["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == s.sid.as_str()),
        "{}",
        listed.text()
    );
    let bystander = d.login(c, "bob").await;
    d.accepted_everywhere(&api_refs, &bystander.at, "login on C")
        .await;

    // Logout on C: both access tokens of the session are refused by all twenty
    // verifiers, whichever instance their stream is connected to.
    let start = Instant::now();
    let r = d
        .post_json(&c.url("/v1/logout"), Some(&at2), &json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let mut waits = Vec::new();
    for api in &apis {
        let (http, url, token) = (d.http.clone(), api.url("/resource"), at2.clone());
        waits.push(tokio::spawn(async move {
            loop {
                let r = http.get_bearer(&url, &token).await;
                if r.status == 401 {
                    assert_eq!(r.json()["error"], "invalid_token", "{}", r.text());
                    return start.elapsed();
                }
                assert_eq!(r.status, 200, "{}", r.text());
                assert!(
                    start.elapsed() < PROPAGATION,
                    "{url} still accepts the token after {PROPAGATION:?}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }));
    }
    let mut delays = Vec::new();
    let mut by_instance = [Duration::ZERO; 3];
    for (k, w) in waits.into_iter().enumerate() {
        let delay = w.await.unwrap();
        // Verifier k's feed connection was the k-th of its kind: instance k % 3.
        by_instance[k % 3] = by_instance[k % 3].max(delay);
        delays.push(delay);
    }
    delays.sort();
    println!("slowest rejection among the followers of A, B, C: {by_instance:?}");
    println!(
        "logout on C -> rejected by 20 verifiers: p50 {:?}, max {:?}, min {:?}",
        percentile(&delays, 50),
        delays[delays.len() - 1],
        delays[0]
    );
    d.rejected_everywhere(&api_refs, &s.at, PROPAGATION, "the first access token")
        .await;
    d.accepted_everywhere(&api_refs, &bystander.at, "the other user")
        .await;
    // And the session is over on every instance.
    for i in [a, b, c] {
        assert_eq!(refresh(&d.http, i, &rt2).await.status, 400);
    }

    for api in apis {
        drop(api);
    }
    cl.finish().await;
}

#[tokio::test]
async fn the_same_refresh_token_at_two_instances_at_once_rotates_once() {
    let test = "scale_out::the_same_refresh_token_at_two_instances_at_once_rotates_once";
    let Some(cl) = Cluster::start(test).await else {
        return;
    };
    let d = &cl.d;
    d.add_user("race").await;
    let (a, b) = (cl.instance(0), cl.instance(1));
    let (sessions, rounds) = (20, 5);
    let mut logins = Vec::new();
    for _ in 0..sessions {
        logins.push(d.login(a, "race").await);
    }
    let first_gen = cl
        .schema
        .store
        .session(&logins[0].sid)
        .await
        .unwrap()
        .unwrap()
        .generation;

    // Every session at once; in each round one refresh token goes to A and B together.
    let urls = [a.url("/v1/refresh"), b.url("/v1/refresh")];
    let mut tasks = Vec::new();
    for s in &logins {
        let (http, urls, mut rt) = (d.http.clone(), urls.clone(), s.rt.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..rounds {
                let (ra, rb) = tokio::join!(
                    try_refresh(&http, &urls[0], &rt),
                    try_refresh(&http, &urls[1], &rt)
                );
                let (ra, rb) = (ra.unwrap(), rb.unwrap());
                assert_eq!(ra.status, 200, "round {round}, A: {}", ra.text());
                assert_eq!(rb.status, 200, "round {round}, B: {}", rb.text());
                let (na, nb) = (ra.json(), rb.json());
                assert_eq!(
                    na["refresh_token"], nb["refresh_token"],
                    "round {round}: two different successors"
                );
                let next = na["refresh_token"].as_str().unwrap().to_owned();
                assert_ne!(next, rt);
                rt = next;
            }
            rt
        }));
    }
    let mut last = Vec::new();
    for t in tasks {
        last.push(t.await.unwrap());
    }

    // Exactly one rotation per round, and every session alive at its last token.
    for (s, rt) in logins.iter().zip(&last) {
        let rec = cl.schema.store.session(&s.sid).await.unwrap().unwrap();
        assert_eq!(rec.revoked_at, None, "session {} was revoked", s.sid);
        assert_eq!(rec.generation, first_gen + rounds, "session {}", s.sid);
        let r = refresh(&d.http, cl.instance(2), rt).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let mut ok = 0;
    let mut grace = 0;
    let mut reuse = 0;
    for i in [a, b] {
        ok += refreshes(&d.http, i, "ok").await;
        grace += refreshes(&d.http, i, "grace").await;
        reuse += refreshes(&d.http, i, "reuse").await;
    }
    let total = u64::try_from(sessions).unwrap() * u64::try_from(rounds).unwrap();
    println!(
        "concurrent refresh: {total} rounds on A and B: {ok} rotations, {grace} grace answers, \
         {reuse} reuse detections (A won {} rotations, B {})",
        refreshes(&d.http, a, "ok").await,
        refreshes(&d.http, b, "ok").await,
    );
    assert_eq!(ok, total);
    assert_eq!(grace, total);
    assert_eq!(reuse, 0);
    cl.finish().await;
}

#[tokio::test]
async fn sigkill_of_one_instance_during_a_refresh_load_loses_no_session() {
    let test = "scale_out::sigkill_of_one_instance_during_a_refresh_load_loses_no_session";
    let Some(mut cl) = Cluster::start(test).await else {
        return;
    };
    cl.d.add_user("storm").await;
    let sessions = 12;
    let mut logins = Vec::new();
    for i in 0..sessions {
        logins.push(cl.d.login(cl.instance(i % 3), "storm").await);
    }
    let first_gen = cl
        .schema
        .store
        .session(&logins[0].sid)
        .await
        .unwrap()
        .unwrap()
        .generation;

    let urls: Vec<String> = (0..3).map(|i| cl.instance(i).url("/v1/refresh")).collect();
    let b_dead = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let after_kill = Arc::new(AtomicU32::new(0));
    let answered = Arc::new(AtomicU32::new(0));
    // Per session: the last refresh token the client saw, and how many distinct ones.
    let known: Vec<Arc<Mutex<(String, i64)>>> = logins
        .iter()
        .map(|s| Arc::new(Mutex::new((s.rt.clone(), 0))))
        .collect();
    let mut tasks = Vec::new();
    for (n, slot) in known.iter().enumerate() {
        let (http, urls, slot) = (cl.d.http.clone(), urls.clone(), Arc::clone(slot));
        let (b_dead, stop, after_kill, answered) = (
            Arc::clone(&b_dead),
            Arc::clone(&stop),
            Arc::clone(&after_kill),
            Arc::clone(&answered),
        );
        tasks.push(tokio::spawn(async move {
            let (mut done, mut lost) = (0u32, 0u32);
            let mut turn = n;
            while !stop.load(Ordering::SeqCst) {
                turn += 1;
                let target = turn % 3;
                if target == 1 && b_dead.load(Ordering::SeqCst) {
                    continue;
                }
                let killed_before = b_dead.load(Ordering::SeqCst);
                let rt = slot.lock().unwrap().0.clone();
                let Some(r) = try_refresh(&http, &urls[target], &rt).await else {
                    // Only B may fail, and only once it is being killed.
                    assert_eq!(target, 1, "instance #{target} stopped answering");
                    assert!(b_dead.load(Ordering::SeqCst), "B failed before the kill");
                    lost += 1;
                    continue;
                };
                assert_eq!(r.status, 200, "instance #{target}: {}", r.text());
                let next = r.json()["refresh_token"].as_str().unwrap().to_owned();
                let mut s = slot.lock().unwrap();
                if next != s.0 {
                    s.0 = next;
                    s.1 += 1;
                }
                done += 1;
                answered.fetch_add(1, Ordering::SeqCst);
                if killed_before && target != 1 {
                    after_kill.fetch_add(1, Ordering::SeqCst);
                }
            }
            (done, lost)
        }));
    }
    // The load runs over the three instances until it has answered a fair amount, then B
    // dies, and the load goes on until A and C have answered a fair amount alone.
    let count = u32::try_from(sessions).unwrap();
    until_at_least(&answered, count * 6, "refreshes before the kill").await;
    b_dead.store(true, Ordering::SeqCst);
    let b = cl.instances[1].take().unwrap();
    let status = b.kill().await;
    assert!(!status.success(), "B was killed: {status:?}");
    let killed_at = Instant::now();
    // A and C carry the whole load now, including tokens whose rotation B made but
    // never answered.
    until_at_least(&after_kill, count * 3, "refreshes after the kill").await;
    stop.store(true, Ordering::SeqCst);
    let (mut done, mut lost) = (0, 0);
    for t in tasks {
        let (d, l) = t.await.unwrap();
        done += d;
        lost += l;
    }
    let after = after_kill.load(Ordering::SeqCst);
    println!(
        "refresh load over A/B/C: {done} refreshes answered, {lost} lost in B's crash, \
         {after} answered by A and C in the {:?} after the kill",
        killed_at.elapsed()
    );
    assert!(
        done > u32::try_from(sessions * 3).unwrap(),
        "the load ran: {done}"
    );
    assert!(
        after > u32::try_from(sessions).unwrap(),
        "A and C kept serving: {after}"
    );

    // Every session is alive at the last token its client saw (one rotation past it at
    // most, answered by grace), and its generation counts exactly the tokens handed out.
    for (s, slot) in logins.iter().zip(&known) {
        let (rt, seen) = slot.lock().unwrap().clone();
        let r = refresh(&cl.d.http, cl.instance(0), &rt).await;
        assert_eq!(
            r.status,
            200,
            "session {} lost or corrupted: {}",
            s.sid,
            r.text()
        );
        let next = r.json()["refresh_token"].as_str().unwrap().to_owned();
        let seen = seen + i64::from(next != rt);
        let rec = cl.schema.store.session(&s.sid).await.unwrap().unwrap();
        assert_eq!(rec.revoked_at, None, "session {} revoked", s.sid);
        assert_eq!(rec.generation, first_gen + seen, "session {}", s.sid);
        let r = refresh(&cl.d.http, cl.instance(2), &next).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for i in [0, 2] {
        let r = cl.d.http.get(&cl.instance(i).url("/readyz"), &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    cl.finish().await;
}

#[tokio::test]
async fn readyz_follows_the_database_and_recovers_without_a_restart() {
    let test = "scale_out::readyz_follows_the_database_and_recovers_without_a_restart";
    let Some(cl) = Cluster::start(test).await else {
        return;
    };
    cl.d.add_user("alice").await;
    // Instance D reaches PostgreSQL through a cable the test can cut.
    let base = postgres::url();
    let rest = base.split_once("://").unwrap().1;
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host = rest[..host_end].rsplit('@').next().unwrap();
    let pg: std::net::SocketAddr = tokio::net::lookup_host(host).await.unwrap().next().unwrap();
    let cable = TcpProxy::start(&[pg], &[]).await;
    let through = base.replacen(host, &cable.addr().to_string(), 1);
    let d2 = Deployment::with_settings(&format!(
        "database = \"{}\"\nmaster_key_file = \"{}\"\nissuer = \"{}\"\n",
        with_search_path(&through, &cl.schema.name),
        cl.master_key_file,
        cl.issuer(),
    ));
    let dd = d2.serve("127.0.0.1:0").await;
    let a = cl.instance(0);
    let ready = |i: &ServiceProcess| {
        let (http, url) = (cl.d.http.clone(), i.url("/readyz"));
        async move { http.get(&url, &[]).await }
    };
    assert_eq!(ready(&dd).await.status, 200);
    cl.d.login(&dd, "alice").await;

    cable.cut();
    let cut_at = Instant::now();
    loop {
        let r = ready(&dd).await;
        if r.status == 503 {
            assert!(r.json()["error"].is_string(), "{}", r.text());
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            cut_at.elapsed() < Duration::from_secs(10),
            "readyz still 200 {:?} after the cut",
            cut_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let unready_after = cut_at.elapsed();
    let start = Instant::now();
    let r =
        cl.d.post_json(
            &dd.url("/v1/login"),
            None,
            &json!({"username": "alice", "password": crate::revocation::PASSWORD}),
        )
        .await;
    let login_took = start.elapsed();
    assert_eq!(
        r.status,
        503,
        "login while the database is away: {}\nlogs of D:\n{}",
        r.text(),
        dd.logs().join("\n")
    );
    assert!(r.json()["error"].is_string(), "{}", r.text());
    // The other instances do not depend on D's cable.
    assert_eq!(ready(a).await.status, 200);
    cl.d.login(a, "alice").await;

    cable.restore();
    let restored_at = Instant::now();
    loop {
        let r = ready(&dd).await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(
            restored_at.elapsed() < Duration::from_secs(10),
            "readyz still 503 {:?} after the restore",
            restored_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready_after = restored_at.elapsed();
    let s = cl.d.login(&dd, "alice").await;
    assert_eq!(refresh(&cl.d.http, &dd, &s.rt).await.status, 200);
    println!(
        "database cut: readyz 503 after {unready_after:?}, login 503 in {login_took:?}; \
         restored: readyz 200 after {ready_after:?}"
    );
    assert!(dd.terminate().await.success());
    cl.finish().await;
}

/// Waits (up to 60 s) until `counter` reaches `n`.
async fn until_at_least(counter: &AtomicU32, n: u32, what: &str) {
    let started = Instant::now();
    while counter.load(Ordering::SeqCst) < n {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: {} of {n}",
            counter.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
