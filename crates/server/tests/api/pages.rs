//! Hosted pages: /login and /account, their forms, static files, errors, and HTTPS.

use std::sync::Arc;

use http::Method;
use wristband_testkit::http::TestResponse;

use crate::cookies::{browser_post, cookie_login, set_cookies, Jar, AT, CSRF, RT};
use crate::helpers::{claims, form, TestApp, PASSWORD};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const NEW_PASSWORD: &str = "a different passphrase, still long 1842";

fn assert_security_headers(r: &TestResponse) {
    assert_eq!(r.header("content-security-policy"), Some(CSP));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("same-origin"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

/// No inline script or style, nothing a stack trace would leave.
fn assert_clean_html(r: &TestResponse) {
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/html; charset=utf-8"));
    let text = r.text();
    assert!(text.starts_with("<!doctype html>"), "{text}");
    for bad in [
        "<style",
        "style=",
        "onclick",
        "onsubmit",
        "javascript:",
        "panicked",
        "src/",
    ] {
        assert!(!text.contains(bad), "{bad} in {text}");
    }
    for (i, _) in text.match_indices("<script") {
        let tag = &text[i..text[i..].find('>').unwrap() + i];
        assert!(tag.contains("src=\"/static/"), "inline script: {tag}");
        assert!(text[i..].starts_with(&format!("{tag}></script>")));
    }
}

async fn get(app: &TestApp, jar: &Jar, path: &str) -> TestResponse {
    app.client
        .get(&app.url(path), &[("cookie", &jar.header(path))])
        .await
}

/// A form post as the browser sends it from the service's own page.
async fn post_form(app: &TestApp, jar: &Jar, path: &str, pairs: &[(&str, &str)]) -> TestResponse {
    let body = form(pairs);
    app.client
        .send(
            Method::POST,
            &app.url(path),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", &app.base),
                ("sec-fetch-site", "same-origin"),
                ("cookie", &jar.header(path)),
            ],
            body.as_bytes(),
        )
        .await
}

async fn form_login(app: &TestApp, user: &str, password: &str) -> TestResponse {
    post_form(
        app,
        &Jar::default(),
        "/login",
        &[("username", user), ("password", password)],
    )
    .await
}

#[tokio::test]
async fn login_page_renders_with_the_security_headers() {
    let app = TestApp::spawn().await;
    let r = app.client.get(&app.url("/login"), &[]).await;
    assert_eq!(r.status, 200);
    assert_security_headers(&r);
    assert_clean_html(&r);
    let text = r.text();
    assert!(
        text.contains(r#"<form method="post" action="/login""#),
        "{text}"
    );
    assert!(text.contains(r#"name="username""#) && text.contains(r#"name="password""#));
    assert!(text.contains(r#"<link rel="stylesheet" href="/static/style.css">"#));
    // Plain HTTP: no HSTS.
    assert_eq!(r.header("strict-transport-security"), None);
}

#[tokio::test]
async fn static_files_are_served_with_their_types() {
    let app = TestApp::spawn().await;
    let js = app.client.get(&app.url("/static/session.js"), &[]).await;
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_security_headers(&js);
    let text = js.text();
    for needle in [
        "navigator.locks.request",
        "'wristband-refresh'",
        "BroadcastChannel",
        "'wristband-session'",
        "X-CSRF-Token",
        "/v1/session/refresh",
        "refreshNow",
        "wb-expires-at",
    ] {
        assert!(text.contains(needle), "session.js lacks {needle}");
    }
    let css = app.client.get(&app.url("/static/style.css"), &[]).await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
}

#[tokio::test]
async fn form_login_sets_the_cookies_and_redirects_to_the_account() {
    let app = TestApp::spawn().await;
    let id = app.add_user("alice", "user").await;
    let r = form_login(&app, "alice", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/account"));
    let c = set_cookies(&r);
    assert_eq!(c.len(), 4, "the session cookies and the device cookie");
    assert!(c[AT].has("HttpOnly") && c[RT].has("HttpOnly") && !c[CSRF].has("HttpOnly"));
    assert_eq!(c[RT].attr("Path"), Some("/v1/session"));
    let mut jar = Jar::default();
    jar.update(&r);
    assert_eq!(claims(jar.get(AT))["sub"], id.as_str());

    let page = get(&app, &jar, "/account").await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_security_headers(&page);
    assert_clean_html(&page);
    let text = page.text();
    assert!(text.contains(&id) && text.contains("alice") && text.contains(">user<"));
}

#[tokio::test]
async fn form_login_failures_are_readable() {
    let app = TestApp::spawn_with(|c| c.throttle.pair_free_failures = 1).await;
    app.add_user("alice", "user").await;
    let r = form_login(&app, "alice", "wrong password").await;
    assert_eq!(r.status, 401);
    assert_security_headers(&r);
    assert_clean_html(&r);
    assert!(r.text().contains("Invalid username or password."));
    assert!(r.text().contains(r#"value="alice""#), "the name is kept");
    assert!(set_cookies(&r).is_empty());
    // Throttled: a 429 page with Retry-After.
    let r = form_login(&app, "alice", "wrong again").await;
    let r = if r.status == 401 {
        form_login(&app, "alice", PASSWORD).await
    } else {
        r
    };
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert!(r.text().contains("Too many failed attempts"));
    assert_clean_html(&r);
    // Cross-site form posts are refused with a readable page.
    let r = app
        .client
        .send(
            Method::POST,
            &app.url("/login"),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
            form(&[("username", "alice"), ("password", PASSWORD)]).as_bytes(),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_security_headers(&r);
    assert_clean_html(&r);
    assert!(r.text().contains("Request refused"));
    assert!(set_cookies(&r).is_empty());
}

#[tokio::test]
async fn account_without_a_session_redirects_to_login() {
    let app = TestApp::spawn().await;
    let r = app.client.get(&app.url("/account"), &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));
    let r = app
        .client
        .get(&app.url("/account"), &[("cookie", "__Host-wb_at=garbage")])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));
}

#[tokio::test]
async fn account_lists_the_sessions_with_forms_and_meta_tags() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "admin").await;
    let jar = cookie_login(&app, "alice").await;
    let other = cookie_login(&app, "alice").await;
    let r = get(&app, &jar, "/account").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let exp = claims(jar.get(AT))["exp"].as_i64().unwrap();
    assert!(text.contains(&format!(r#"<meta name="wb-expires-at" content="{exp}">"#)));
    assert!(text.contains(r#"<meta name="wb-csrf-cookie" content="__Host-wb_csrf">"#));
    assert!(text.contains(r#"<script src="/static/session.js" defer></script>"#));
    assert!(text.contains(">admin<"));
    for sid in [jar.sid(), other.sid()] {
        assert!(text.contains(&format!(r#"data-session="{sid}""#)), "{sid}");
        assert!(text.contains(&format!(r#"action="/account/sessions/{sid}/revoke""#)));
    }
    assert_eq!(text.matches("this session").count(), 1);
    let mine = text
        .find(&format!(r#"data-session="{}""#, jar.sid()))
        .unwrap();
    let marker = text.find("this session").unwrap();
    let theirs = text
        .find(&format!(r#"data-session="{}""#, other.sid()))
        .unwrap();
    assert!(marker > mine && (theirs < mine || marker < theirs));
    assert!(text.contains(r#"action="/account/logout-all""#));
    assert!(text.contains(r#"action="/account/password""#));
    assert!(text.contains(r#"action="/account/logout""#));
    // Every form carries the session's CSRF token.
    let hidden = format!(r#"name="csrf_token" value="{}""#, jar.get(CSRF));
    assert_eq!(text.matches(&hidden).count(), text.matches("<form").count());
    assert!(text.contains("2027-01-15 08:00 UTC"), "dates are shown");
}

#[tokio::test]
async fn the_revoke_form_ends_another_session_and_needs_the_csrf_token() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "user").await;
    let jar = cookie_login(&app, "alice").await;
    let other = cookie_login(&app, "alice").await;
    let path = format!("/account/sessions/{}/revoke", other.sid());

    // Without the token, or with another session's: a readable 403 page, nothing revoked.
    for token in ["", other.get(CSRF)] {
        let r = post_form(&app, &jar, &path, &[("csrf_token", token)]).await;
        assert_eq!(r.status, 403, "{}", r.text());
        assert_security_headers(&r);
        assert_clean_html(&r);
        assert!(r.text().contains("refused"));
    }
    assert_eq!(app.me(other.get(AT)).await.status, 200);

    let r = post_form(&app, &jar, &path, &[("csrf_token", jar.get(CSRF))]).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/account"));
    assert_eq!(app.me(other.get(AT)).await.status, 401);
    let r = browser_post(
        &app,
        &other,
        "/v1/session/refresh",
        &[("x-csrf-token", other.get(CSRF))],
    )
    .await;
    assert_eq!(r.status, 400);
    // This session lives on, and the page no longer lists the other one.
    let page = get(&app, &jar, "/account").await;
    assert_eq!(page.status, 200);
    assert!(!page.text().contains(&other.sid()));

    // Another user's session cannot be revoked through this form.
    app.add_user("bob", "user").await;
    let bob = cookie_login(&app, "bob").await;
    let path = format!("/account/sessions/{}/revoke", bob.sid());
    let r = post_form(&app, &jar, &path, &[("csrf_token", jar.get(CSRF))]).await;
    assert_eq!(r.status, 404);
    assert_clean_html(&r);
    assert_eq!(app.me(bob.get(AT)).await.status, 200);
}

#[tokio::test]
async fn log_out_everywhere_ends_every_session() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "user").await;
    let jar = cookie_login(&app, "alice").await;
    let other = cookie_login(&app, "alice").await;
    let r = post_form(
        &app,
        &jar,
        "/account/logout-all",
        &[("csrf_token", jar.get(CSRF))],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/login?done=logout"));
    assert!(set_cookies(&r)
        .values()
        .all(|c| c.attr("Max-Age") == Some("0")));
    for j in [&jar, &other] {
        assert_eq!(app.me(j.get(AT)).await.status, 401);
        let r = get(&app, j, "/account").await;
        assert_eq!(r.status, 303);
    }
    let page = app.client.get(&app.url("/login?done=logout"), &[]).await;
    assert!(page.text().contains("You are logged out."));
}

#[tokio::test]
async fn the_log_out_form_ends_this_session_only() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "user").await;
    let jar = cookie_login(&app, "alice").await;
    let other = cookie_login(&app, "alice").await;
    let r = post_form(
        &app,
        &jar,
        "/account/logout",
        &[("csrf_token", jar.get(CSRF))],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(set_cookies(&r).len(), 3);
    assert_eq!(app.me(jar.get(AT)).await.status, 401);
    assert_eq!(app.me(other.get(AT)).await.status, 200);
}

#[tokio::test]
async fn password_change_checks_the_current_password() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "user").await;
    let jar = cookie_login(&app, "alice").await;
    let token = jar.get(CSRF).to_owned();

    let r = post_form(
        &app,
        &jar,
        "/account/password",
        &[
            ("csrf_token", &token),
            ("current_password", "not my password"),
            ("new_password", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_clean_html(&r);
    assert!(r.text().contains("The current password is wrong"));
    assert_eq!(app.login("alice", PASSWORD).await.status, 200);

    // A new password the policy refuses: the reason is shown.
    let r = post_form(
        &app,
        &jar,
        "/account/password",
        &[
            ("csrf_token", &token),
            ("current_password", PASSWORD),
            ("new_password", "alice"),
        ],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("The new password was refused"));

    // Without the CSRF token: refused.
    let r = post_form(
        &app,
        &jar,
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(app.login("alice", PASSWORD).await.status, 200);

    let r = post_form(
        &app,
        &jar,
        "/account/password",
        &[
            ("csrf_token", &token),
            ("current_password", PASSWORD),
            ("new_password", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/login?done=password"));
    assert_eq!(app.login("alice", PASSWORD).await.status, 401);
    assert_eq!(app.login("alice", NEW_PASSWORD).await.status, 200);
    assert_eq!(app.me(jar.get(AT)).await.status, 401, "sessions ended");
}

/// A self-signed certificate for localhost and 127.0.0.1, as PEM (cert, key).
fn self_signed() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// One HTTPS GET that trusts only `cert_pem`.
async fn https_get(
    addr: std::net::SocketAddr,
    cert_pem: &str,
    path: &str,
) -> http::Response<String> {
    use http_body_util::BodyExt;
    use rustls_pki_types::pem::PemObject;
    use tokio_rustls::rustls;

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", format!("localhost:{}", addr.port()))
        .body(http_body_util::Empty::<axum::body::Bytes>::new())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    http::Response::from_parts(parts, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn tls_serves_https_with_hsts() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed();
    let cert_path = certs.path().join("cert.pem");
    let key_path = certs.path().join("key.pem");
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    let app = TestApp::spawn_with(|c| {
        c.tls_cert = Some(cert_path.clone());
        c.tls_key = Some(key_path.clone());
    })
    .await;
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    assert!(
        app.app.issuer().starts_with("https://"),
        "{}",
        app.app.issuer()
    );

    let r = https_get(addr, &cert, "/login").await;
    assert_eq!(r.status(), 200);
    let h = r.headers();
    let hsts = h["strict-transport-security"].to_str().unwrap();
    assert!(
        hsts.starts_with("max-age=") && hsts.contains("includeSubDomains"),
        "{hsts}"
    );
    assert_eq!(h["content-security-policy"], CSP);
    assert!(r.body().contains(r#"action="/login""#));
    // HSTS on the API too.
    let r = https_get(addr, &cert, "/healthz").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("strict-transport-security"));
    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tcp, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut buf),
    )
    .await;
    assert!(
        !buf.starts_with(b"HTTP/"),
        "plain HTTP answered on the TLS port"
    );
}

#[tokio::test]
async fn tls_clients_that_never_handshake_are_closed_and_make_room_at_the_cap() {
    use std::time::Duration;

    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed();
    let cert_path = certs.path().join("cert.pem");
    let key_path = certs.path().join("key.pem");
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    let app = TestApp::spawn_with(|c| {
        c.tls_cert = Some(cert_path.clone());
        c.tls_key = Some(key_path.clone());
        c.header_read_timeout = Duration::from_secs(1);
        c.max_connections = 4;
    })
    .await;
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    // Twice the cap in connections that never send a ClientHello.
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // A real client is served at once: waiting handshakes make room.
    let r = tokio::time::timeout(Duration::from_secs(2), https_get(addr, &cert, "/healthz"))
        .await
        .expect("an HTTPS client is served while silent connections fill the cap");
    assert_eq!(r.status(), 200);
    // Every silent connection is closed by the header read timeout (or evicted before).
    for mut s in silent {
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(
            Duration::from_secs(3),
            tokio::io::AsyncReadExt::read_to_end(&mut s, &mut buf),
        )
        .await;
        assert!(
            closed.is_ok(),
            "a connection without a handshake stayed open"
        );
    }
}

#[tokio::test]
async fn tls_with_a_missing_key_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::test_config(&dir);
    let (cert, _) = self_signed();
    std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
    config.tls_cert = Some(dir.path().join("cert.pem"));
    config.tls_key = None;
    assert!(config.validate().is_err(), "cert without key");
    config.tls_key = Some(dir.path().join("missing.pem"));
    let err = wristband_server::startup::App::build(
        config,
        Arc::new(wristband_jose::FixedClock::new(
            wristband_jose::UnixTime::from_secs(crate::helpers::START),
        )),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("TLS key"), "{err}");
}

/// The account page names each session as a person knows it, from its user agent and the
/// server's clock ("Firefox on Linux", "last used 5 minutes ago"), and keeps the raw values
/// in the row's details.
#[tokio::test]
async fn account_names_sessions_by_browser_and_time() {
    const FIREFOX: &str =
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    const EDGE: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
        (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
    let app = TestApp::spawn().await;
    app.add_user("alice", "user").await;
    let login = |agent: &'static str, delivery: &'static str| {
        let app = &app;
        async move {
            let r = app
                .post_json(
                    "/v1/login",
                    &serde_json::json!({"username": "alice", "password": PASSWORD, "delivery": delivery}),
                    &[
                        ("origin", &app.base),
                        ("sec-fetch-site", "same-origin"),
                        ("user-agent", agent),
                    ],
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
            let mut jar = Jar::default();
            jar.update(&r);
            jar
        }
    };
    let start = app.now();
    login("curl/8.11.1", "body").await;
    app.advance(2 * 3600 + 60);
    let browser = login(FIREFOX, "cookie").await;
    app.advance(5 * 60 + 10);
    login(EDGE, "body").await;

    let r = get(&app, &browser, "/account").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_clean_html(&r);
    let text = r.text();
    // Newest first: Edge, Firefox (this browser), curl.
    let rows: Vec<&str> = text.split("<li data-session=").skip(1).collect();
    assert_eq!(rows.len(), 3, "{text}");
    let visible = |row: &str| row[..row.find("<details>").unwrap()].to_owned();
    assert!(
        visible(rows[0]).contains("<strong>Edge on Windows</strong>"),
        "{}",
        rows[0]
    );
    assert!(visible(rows[0]).contains("Last used just now · signed in just now"));
    assert!(
        visible(rows[1]).contains("<strong>Firefox on Linux</strong>"),
        "{}",
        rows[1]
    );
    assert!(visible(rows[1]).contains("this session"));
    assert!(visible(rows[1]).contains("Last used 5 minutes ago · signed in 5 minutes ago"));
    assert!(
        visible(rows[2]).contains("<strong>curl</strong>"),
        "{}",
        rows[2]
    );
    assert!(visible(rows[2]).contains("Last used 2 hours ago · signed in 2 hours ago"));
    // The raw values, in the details.
    // (HTML-escaped: minijinja writes `/` as `&#x2f;`.)
    let escaped = FIREFOX.replace('/', "&#x2f;");
    assert!(
        rows[1].contains(&format!(r#"<dd class="user-agent">{escaped}</dd>"#)),
        "{}",
        rows[1]
    );
    assert!(rows[2].contains(r#"<dd class="user-agent">curl&#x2f;8.11.1</dd>"#));
    assert!(
        rows[2].contains(r#"<dd class="ip">127.0.0.1</dd>"#),
        "{}",
        rows[2]
    );
    // The clock starts at 1_800_000_000: 2027-01-15 08:00 UTC.
    assert_eq!(start, 1_800_000_000);
    assert!(rows[2].contains(r#"<dd class="created">2027-01-15 08:00 UTC</dd>"#));
    assert!(rows[0].contains(r#"<dd class="last-used">2027-01-15 10:06 UTC</dd>"#));
    assert!(rows[1].contains(&format!(r#"<code class="sid">{}</code>"#, browser.sid())));
}
