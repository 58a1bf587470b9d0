//! The harness itself, against a tiny page server: forms, cookies, scripts, tabs,
//! screenshots and console errors are seen as they are.

use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use wristband_testkit::browser::{png_size, Browser};

const HOME: &str = r#"<!doctype html>
<html><head><title>home</title><link rel="icon" href="/favicon.ico"></head>
<body>
<h1 id="title">Home</h1>
<form action="/echo" method="get">
  <input name="q" id="q">
  <button type="submit" id="go">Go</button>
</form>
<script>document.cookie = "visible=1; path=/";</script>
</body></html>"#;

const NOISY: &str = r#"<!doctype html>
<html><head><title>noisy</title><link rel="icon" href="/favicon.ico"></head>
<body><p id="noisy">noisy</p>
<script>console.error("deliberate harness error");</script>
</body></html>"#;

/// A 1×1 transparent PNG, so that the browser's icon request finds something.
const ICON: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

async fn home() -> impl IntoResponse {
    (
        [(http::header::SET_COOKIE, "hidden=2; Path=/; HttpOnly")],
        Html(HOME),
    )
}

async fn echo(axum::extract::RawQuery(q): axum::extract::RawQuery) -> Html<String> {
    let q = q.unwrap_or_default();
    let value = q.strip_prefix("q=").unwrap_or(&q).replace('+', " ");
    Html(format!(
        "<!doctype html><html><head><title>echo</title><link rel=\"icon\" href=\"/favicon.ico\"></head>\
         <body><p id=\"echo\">echo: {value}</p></body></html>"
    ))
}

async fn serve_pages() -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route("/", get(home))
        .route("/echo", get(echo))
        .route("/noisy", get(|| async { Html(NOISY) }))
        .route(
            "/favicon.ico",
            get(|| async { ([(http::header::CONTENT_TYPE, "image/png")], ICON) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (base, task)
}

/// Forms, cookies (script-visible and `HttpOnly`), async scripts and two tabs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_drives_forms_cookies_scripts_and_tabs() {
    let _one = crate::ONE_BROWSER.lock().await;
    let Some(browser) =
        Browser::start("browser::harness_drives_forms_cookies_scripts_and_tabs").await
    else {
        return;
    };
    let (base, _server) = serve_pages().await;

    browser.open(&format!("{base}/")).await;
    browser.wait_for("#title").await;
    assert_eq!(browser.document_cookie().await, "visible=1");
    let hidden = browser
        .cookie("hidden")
        .await
        .expect("HttpOnly cookie held");
    assert!(hidden.http_only);
    assert_eq!(hidden.value, "2");
    assert!(!browser.cookie("visible").await.unwrap().http_only);

    browser.fill("#q", "hello browser").await;
    browser.click("#go").await;
    browser.wait_for_path("/echo").await;
    let echo = browser.wait_for("#echo").await.text().await.unwrap();
    assert_eq!(echo, "echo: hello browser");

    let answer = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             Promise.resolve(arguments[0] * 2).then(done);",
            vec![serde_json::json!(21)],
        )
        .await;
    assert_eq!(answer, serde_json::json!(42));

    // Two tabs share the cookie jar but not their pages.
    let first = browser.current_tab().await;
    let second = browser.new_tab().await;
    assert_ne!(first, second);
    browser.open(&format!("{base}/noisy")).await;
    browser.wait_for("#noisy").await;
    assert_eq!(browser.document_cookie().await, "visible=1");
    browser.switch_to(&first).await;
    assert_eq!(browser.url().await.path(), "/echo");
    browser.switch_to(&second).await;
    assert_eq!(browser.url().await.path(), "/noisy");
    assert_eq!(browser.client().windows().await.unwrap().len(), 2);

    browser.quit().await;
}

/// A deliberate `console.error` is caught, a clean page has none, and a screenshot is a
/// PNG of the window's width.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_catches_console_errors_and_takes_screenshots() {
    let _one = crate::ONE_BROWSER.lock().await;
    let Some(browser) =
        Browser::start("browser::harness_catches_console_errors_and_takes_screenshots").await
    else {
        return;
    };
    let (base, _server) = serve_pages().await;

    browser.open(&format!("{base}/")).await;
    browser.wait_for("#title").await;
    let clean = browser.console_errors().await;
    assert!(clean.is_empty(), "a clean page logged errors: {clean:?}");

    browser.open(&format!("{base}/noisy")).await;
    browser.wait_for("#noisy").await;
    let errors = browser.console_errors().await;
    assert!(
        errors
            .iter()
            .any(|e| e.source == "console-api" && e.message.contains("deliberate harness error")),
        "console.error not caught: {errors:?}"
    );
    // Reading the log clears it.
    assert!(browser.console_errors().await.is_empty());

    // A failed load (404) is an error too.
    browser.open(&format!("{base}/missing")).await;
    let errors = browser.console_errors().await;
    assert!(
        errors.iter().any(|e| e.message.contains("404")),
        "a 404 was not logged as an error: {errors:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shot.png");
    let png = browser.screenshot(&path).await;
    assert_eq!(std::fs::read(&path).unwrap(), png);
    let (width, height) = png_size(&png).expect("a PNG with an IHDR chunk");
    assert_eq!(width, 1200, "screenshot {width}x{height}");
    assert!(height > 300, "screenshot {width}x{height}");

    browser.quit().await;
}
