//! The auth service mounted under `/auth/` of another origin by a real nginx that strips
//! the prefix (`location /auth/ { proxy_pass http://SERVICE/; }`), with `--public-url`:
//! the pages, their files, the form login with a return target, the cookie refresh and the
//! refresh-and-return navigation all work through the proxy.

use std::collections::BTreeMap;
use std::path::Path;

use http::Method;
use tempfile::TempDir;
use wristband_testkit::http::{Client, TestResponse};
use wristband_testkit::process::ServiceProcess;

use wristband_testkit::browser::free_port;

use crate::service::{add_user, write_config, PASSWORD};
use wristband_testkit::proxies::Proxy;

/// The cookies a browser on the app's origin holds: name → (value, path).
#[derive(Default)]
struct Jar(BTreeMap<String, (String, String)>);

impl Jar {
    fn update(&mut self, r: &TestResponse) {
        for v in r.headers.get_all("set-cookie") {
            let text = v.to_str().unwrap();
            let mut parts = text.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let attr = |n: &str| {
                text.split(';')
                    .map(str::trim)
                    .find_map(|a| a.strip_prefix(n).map(str::to_owned))
            };
            if attr("Max-Age=").as_deref() == Some("0") {
                self.0.remove(name);
            } else {
                let path = attr("Path=").unwrap_or_else(|| "/".into());
                self.0.insert(name.to_owned(), (value.to_owned(), path));
            }
        }
    }

    fn path_of(&self, name: &str) -> &str {
        &self.0[name].1
    }

    fn value(&self, name: &str) -> &str {
        &self.0[name].0
    }

    /// The `Cookie` header for `path`, by the cookies' paths as a browser matches them.
    fn header(&self, path: &str) -> String {
        self.0
            .iter()
            .filter(|(_, (_, p))| p == "/" || path == p || path.starts_with(&format!("{p}/")))
            .map(|(n, (v, _))| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn the_service_works_under_a_prefix_behind_nginx() {
    let dir = tempfile::tempdir().unwrap();
    add_user(&dir, "alice", "user");
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let service = serve_mounted(&dir, &format!("{public}/auth")).await;
    // The prefix is stripped: /auth/login reaches the service as /login.
    let nginx = Proxy::nginx_server(
        port,
        &format!(
            "location /auth/ {{ proxy_pass http://{}/; }}\n\
             location / {{ return 200 \"the app\\n\"; }}",
            service.addr()
        ),
    )
    .await;
    let base = public.clone();
    let client = Client::new();
    let get = |path: String, cookie: String| {
        let client = &client;
        let url = format!("{base}{path}");
        async move { client.get(&url, &[("cookie", cookie.as_str())]).await }
    };

    // The login page and the files it names, through the proxy.
    let page = get("/auth/login".into(), String::new()).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page
        .text()
        .contains(r#"<form method="post" action="/auth/login""#));
    let css = get("/auth/static/style.css".into(), String::new()).await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));

    // A protected page of the app sent the browser to resume: no session yet, so on to the
    // login page, with the target.
    let target = format!("{public}/reports?week=3");
    let r = get(
        format!("/auth/v1/session/resume?return_to={}", enc(&target)),
        String::new(),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let login = r.header("location").unwrap().to_owned();
    assert_eq!(login, format!("/auth/login?return_to={}", enc(&target)));
    let page = get(login.clone(), String::new()).await;
    assert!(page.text().replace("&#x2f;", "/").contains(&format!(
        r#"<input type="hidden" name="return_to" value="{}">"#,
        target
    )));

    // The form, posted from the app's origin: back on the original URL, with the cookies.
    let body = format!(
        "username=alice&password={}&return_to={}",
        enc(PASSWORD),
        enc(&target)
    );
    let r = client
        .send(
            Method::POST,
            &format!("{base}/auth/login"),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", &public),
                ("sec-fetch-site", "same-origin"),
            ],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some(target.as_str()));
    let mut jar = Jar::default();
    jar.update(&r);
    assert_eq!(jar.path_of("__Secure-wb_rt"), "/auth/v1/session");
    assert_eq!(jar.path_of("__Host-wb_at"), "/");
    assert_eq!(jar.path_of("__Host-wb_csrf"), "/");

    // The account page and its script, under the prefix.
    let account = get("/auth/account".into(), jar.header("/auth/account")).await;
    assert_eq!(account.status, 200, "{}", account.text());
    assert!(account
        .text()
        .contains(r#"<script src="/auth/static/session.js" defer></script>"#));
    assert!(account
        .text()
        .contains(r#"<meta name="wb-base" content="/auth">"#));
    let js = get("/auth/static/session.js".into(), String::new()).await;
    assert_eq!(js.status, 200);

    // What session.js does: the cookie refresh at the prefixed path, which the refresh
    // cookie's path covers.
    let path = "/auth/v1/session/refresh";
    let cookie = jar.header(path);
    assert!(cookie.contains("__Secure-wb_rt="), "{cookie}");
    let r = client
        .send(
            Method::POST,
            &format!("{base}{path}"),
            &[
                ("cookie", &cookie),
                ("origin", &public),
                ("sec-fetch-site", "same-origin"),
                ("x-csrf-token", jar.value("__Host-wb_csrf")),
            ],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    jar.update(&r);

    // Refresh and return, as after the access cookie expired: straight back to the target.
    let path = format!(
        "/auth/v1/session/resume?return_to={}",
        enc("/reports?week=3")
    );
    let before = jar.value("__Secure-wb_rt").to_owned();
    let r = get(path.clone(), jar.header(&path)).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some(target.as_str()));
    jar.update(&r);
    assert_ne!(jar.value("__Secure-wb_rt"), before, "rotated");
    let app = get("/reports?week=3".into(), jar.header("/reports")).await;
    assert_eq!(app.text(), "the app\n");

    // Log out through the account page's form: back to the prefixed login page.
    let path = "/auth/account/logout";
    let body = format!("csrf_token={}", enc(jar.value("__Host-wb_csrf")));
    let r = client
        .send(
            Method::POST,
            &format!("{base}{path}"),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", &jar.header(path)),
                ("origin", &public),
                ("sec-fetch-site", "same-origin"),
            ],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/auth/login?done=logout"));
    jar.update(&r);
    assert!(!jar.0.contains_key("__Secure-wb_rt"), "cleared at its path");
    drop(nginx);
    service.kill().await;
}

async fn serve_mounted(dir: &TempDir, public_url: &str) -> ServiceProcess {
    let config = write_config(dir.path());
    let data = dir.path().join("data");
    let data = data.to_string_lossy();
    ServiceProcess::spawn(
        Path::new(env!("CARGO_BIN_EXE_wristband")),
        &[
            "serve",
            "--config",
            &config,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data,
            "--public-url",
            public_url,
        ],
    )
    .await
}
