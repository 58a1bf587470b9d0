//! Issue 16's acceptance tests: the hosted pages as a person meets them.
//!
//! - Every page passes axe-core's audit (no `serious` or `critical` violation) at a
//!   desktop width (1280 px) and on a 375 px-wide phone screen, where nothing overflows
//!   sideways and the main actions are on screen and clickable.
//! - A keyboard alone signs in (password, then the authenticator's code), reaches the
//!   account page, opens a session's details and revokes that session; the focus goes
//!   where it should and can be seen.
//!
//! axe-core is the npm package pinned in `tests/browser/axe/` (installed there by
//! `.ci/browser.sh` with `npm ci`). Without it the audit fails in CI (or with
//! `WRISTBAND_REQUIRE_BROWSER=1`) and says loudly elsewhere that it did not run.

use std::path::PathBuf;

use http::Method;
use serde_json::{json, Value};
use wristband_testkit::browser::{not_run, Browser, Key};

use crate::tour::{self, Authenticator, Inspect, Page, Site};

/// The desktop window.
pub(crate) const DESKTOP: (u32, u32) = (1280, 900);
/// A phone's screen, 375 CSS pixels wide.
pub(crate) const PHONE: (u32, u32) = (375, 812);

/// The pages of [`tour::walk`], in order.
const PAGES: [&str; 11] = [
    "login",
    "error",
    "account",
    "mfa-enrol",
    "recovery-codes",
    "account-mfa-on",
    "consent",
    "logout",
    "logged-out",
    "login-mfa",
    "continue",
];

/// Where `npm ci` puts axe-core.
fn axe_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser/axe/node_modules/axe-core/axe.min.js")
}

/// axe-core's script, or `None` (after a loud `NOT RUN`, or a failure where browser tests
/// are required) when it is not installed.
fn axe_source(test: &str) -> Option<String> {
    match std::fs::read_to_string(axe_path()) {
        Ok(source) => Some(source),
        Err(e) => {
            not_run(
                test,
                &format!(
                    "axe-core is not installed ({e}: run `npm ci` in crates/cli/tests/browser/axe, \
                     as .ci/browser.sh does)"
                ),
            );
            None
        }
    }
}

/// The audit of one page: axe-core's serious and critical violations, whether the page
/// overflows the window sideways, and whether its main actions are on screen and
/// clickable. Problems are collected so that one run reports every page.
struct Audit {
    axe: String,
    width: u32,
    seen: Vec<&'static str>,
    problems: Vec<String>,
}

/// Runs axe-core on the page (injected first) and returns its serious and critical
/// violations as `[{id, impact, help, targets}]`.
async fn axe_violations(browser: &Browser, axe: &str) -> Value {
    let loaded = browser
        .execute(&format!("{axe}\n;return typeof window.axe;"), vec![])
        .await;
    assert_eq!(loaded, json!("object"), "axe-core did not load");
    let answer = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             axe.run(document, {resultTypes: ['violations']}).then(r => done(\
               r.violations\
                 .filter(v => v.impact === 'serious' || v.impact === 'critical')\
                 .map(v => ({id: v.id, impact: v.impact, help: v.help,\
                             targets: v.nodes.map(n => n.target.join(' '))}))\
             ), e => done('axe failed: ' + e));",
            vec![],
        )
        .await;
    assert!(answer.is_array(), "{answer}");
    answer
}

/// What is wrong with the element of `css` as a main action: missing, not on screen
/// within the window's width, or covered by something else where a click would land.
async fn action_problem(browser: &Browser, css: &str) -> Option<String> {
    let answer = browser
        .execute(
            "const el = document.querySelector(arguments[0]);\
             if (!el) return 'missing';\
             el.scrollIntoView({block: 'center', inline: 'nearest'});\
             const r = el.getBoundingClientRect();\
             if (r.width < 1 || r.height < 1) return 'not shown (' + r.width + 'x' + r.height + ')';\
             if (r.left < 0 || r.right > window.innerWidth) \
               return 'outside the window: ' + r.left + '..' + r.right + ' of ' + window.innerWidth;\
             const box = el.getClientRects()[0];\
             const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);\
             if (!hit || !(hit === el || el.contains(hit))) \
               return 'covered by ' + (hit ? hit.outerHTML.slice(0, 80) : 'nothing');\
             return null;",
            vec![json!(css)],
        )
        .await;
    answer.as_str().map(str::to_owned)
}

impl Inspect for Audit {
    async fn inspect(&mut self, browser: &Browser, page: Page) {
        self.seen.push(page.name);
        let at = format!("{} at {} px", page.name, self.width);
        let violations = axe_violations(browser, &self.axe).await;
        for v in violations.as_array().unwrap() {
            self.problems.push(format!(
                "{at}: axe {} ({}): {}; on {}",
                v["id"].as_str().unwrap_or_default(),
                v["impact"].as_str().unwrap_or_default(),
                v["help"].as_str().unwrap_or_default(),
                v["targets"]
            ));
        }
        let overflow = browser
            .execute(
                "window.scrollTo(0, 0);\
                 const w = document.documentElement.scrollWidth;\
                 if (w <= window.innerWidth) return null;\
                 const wide = [...document.querySelectorAll('body *')]\
                   .filter(e => e.getBoundingClientRect().right > window.innerWidth)\
                   .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')\
                             + (e.className ? '.' + e.className : ''));\
                 return w + ' > ' + window.innerWidth + ': ' + wide.slice(0, 5).join(', ');",
                vec![],
            )
            .await;
        if let Some(o) = overflow.as_str() {
            self.problems
                .push(format!("{at}: the page overflows sideways: {o}"));
        }
        for css in page.actions {
            if let Some(p) = action_problem(browser, css).await {
                self.problems
                    .push(format!("{at}: main action `{css}`: {p}"));
            }
        }
    }
}

/// Walks every page at `width`×`height` (with these Chromium switches) and audits each.
async fn audit_at(test: &str, (width, height): (u32, u32), switches: &[&str]) {
    let _one = crate::ONE_BROWSER.lock().await;
    let Some(browser) = Browser::start_with(test, switches).await else {
        return;
    };
    let Some(axe) = axe_source(test) else {
        browser.quit().await;
        return;
    };
    let inner = browser.set_window_size(width, height).await;
    assert_eq!(
        inner,
        u64::from(width),
        "window.innerWidth after the resize"
    );
    let site = Site::start().await;
    let mut audit = Audit {
        axe,
        width,
        seen: Vec::new(),
        problems: Vec::new(),
    };
    tour::walk(&browser, &site, &mut audit).await;
    assert_eq!(audit.seen, PAGES, "the pages audited");
    // The audit can fail: a field without a label and faint text on the last page are
    // reported.
    browser
        .execute(
            "const m = document.querySelector('main');\
             m.insertAdjacentHTML('beforeend', '<input id=\"unlabelled\">');\
             const p = document.createElement('p');\
             p.id = 'faint'; p.textContent = 'faint';\
             p.style.color = '#888'; p.style.background = '#999';\
             m.append(p);",
            vec![],
        )
        .await;
    let planted = axe_violations(&browser, &audit.axe).await;
    let ids: Vec<&str> = planted
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["id"].as_str())
        .collect();
    assert_eq!(ids, ["color-contrast", "label"], "{planted}");
    assert!(
        audit.problems.is_empty(),
        "{} problems:\n{}",
        audit.problems.len(),
        audit.problems.join("\n")
    );
    // The error page's own 400 is logged as a failed load; nothing else may be.
    let errors: Vec<_> = browser
        .console_errors()
        .await
        .into_iter()
        .filter(|e| !(e.message.contains("client_id=no-such-app") && e.message.contains("400")))
        .collect();
    crate::pages::assert_no_errors(&errors, "the pages");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_axe_at_desktop_width() {
    audit_at(
        "browser::a11y::every_page_passes_axe_at_desktop_width",
        DESKTOP,
        &[],
    )
    .await;
}

/// The pages follow the system's dark theme (`color-scheme: light dark`): their colours
/// must hold up on a dark background too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_axe_in_dark_mode() {
    let test = "browser::a11y::every_page_passes_axe_in_dark_mode";
    audit_at(test, DESKTOP, &["--force-dark-mode"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_axe_and_fits_375_px() {
    audit_at(
        "browser::a11y::every_page_passes_axe_and_fits_375_px",
        PHONE,
        &[],
    )
    .await;
}

/// `document.activeElement` as `tag#id` or `tag[name]`, and whether it shows a focus
/// ring (`:focus-visible` with a solid outline at least 2 px wide).
async fn focus(browser: &Browser) -> (String, bool) {
    let answer = browser
        .execute(
            "const el = document.activeElement;\
             if (!el || el === document.body) return ['body', false];\
             const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '');\
             const s = getComputedStyle(el);\
             const ring = el.matches(':focus-visible') && s.outlineStyle === 'solid'\
               && parseFloat(s.outlineWidth) >= 2;\
             return [name, ring];",
            vec![],
        )
        .await;
    (
        answer[0].as_str().unwrap().to_owned(),
        answer[1].as_bool().unwrap(),
    )
}

/// True when the focused element is `css` (`document.activeElement.matches`).
async fn focused_is(browser: &Browser, css: &str) -> bool {
    browser
        .execute(
            "return document.activeElement.matches(arguments[0]);",
            vec![json!(css)],
        )
        .await
        == json!(true)
}

/// Asserts that `css` has the focus and shows it.
async fn assert_focus(browser: &Browser, css: &str) {
    let (name, ring) = focus(browser).await;
    assert!(
        focused_is(browser, css).await,
        "focus on {name}, not on {css}"
    );
    assert!(ring, "the focus on {css} ({name}) is not visible");
}

/// Keyboard only: Tab to the username, type it, Tab to the password, type it, Enter; the
/// second step's code field has the focus: type the code, Enter. On the account page,
/// Tab goes through each session's Revoke button and Details in turn (each with a visible
/// focus ring); Enter opens the other session's details, Shift+Tab goes back to its Revoke
/// button, and Enter revokes it: the page comes back without it, and its refresh token no
/// longer works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_alone_signs_in_with_a_code_and_revokes_a_session() {
    let test = "browser::a11y::keyboard_alone_signs_in_with_a_code_and_revokes_a_session";
    let _one = crate::ONE_BROWSER.lock().await;
    let Some(browser) = Browser::start(test).await else {
        return;
    };
    let site = Site::start().await;

    // Another session (a phone, say), then the authenticator app turned on through the API.
    let (status, login) = site
        .call(
            Method::POST,
            "/v1/login",
            None,
            json!({"username": tour::USER, "password": tour::PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    let at = login["access_token"].as_str().unwrap().to_owned();
    let rt = login["refresh_token"].as_str().unwrap().to_owned();
    let (status, enrol) = site
        .call(Method::POST, "/v1/mfa/totp", Some(&at), json!({}))
        .await;
    assert_eq!(status, 200, "{enrol}");
    let mut app = Authenticator::new(enrol["secret"].as_str().unwrap());
    let code = app.code().await;
    let (status, confirmed) = site
        .call(
            Method::POST,
            "/v1/mfa/totp/confirm",
            Some(&at),
            json!({"code": code}),
        )
        .await;
    assert_eq!(status, 204, "{confirmed}");
    let (status, sessions) = site
        .call(Method::GET, "/v1/sessions", Some(&at), json!({}))
        .await;
    assert_eq!(status, 200, "{sessions}");
    let other = sessions["sessions"]
        .as_array()
        .and_then(|s| s.first())
        .and_then(|s| s["id"].as_str())
        .unwrap_or_else(|| panic!("the API session is listed: {sessions}"))
        .to_owned();

    browser.open(&site.url("/login")).await;
    browser.wait_for("#password").await;
    assert_eq!(
        focus(&browser).await.0,
        "body",
        "nothing has the focus at first"
    );
    browser.press(Key::Tab).await;
    assert_focus(&browser, "#username").await;
    browser.type_keys(tour::USER).await;
    browser.press(Key::Tab).await;
    assert_focus(&browser, "#password").await;
    browser.type_keys(tour::PASSWORD).await;
    browser.press(Key::Enter).await;

    // The second step: its code field takes the focus.
    browser.wait_for("#totp-step #code").await;
    assert_focus(&browser, "#totp-step #code").await;
    browser.type_keys(&app.code().await).await;
    browser.press(Key::Enter).await;
    browser.wait_for_path("/account").await;
    browser.wait_for("#mfa-remove").await;

    // Tab order: each session's Revoke button, then its Details, down to the other session.
    let order = browser
        .execute(
            "return [...document.querySelectorAll('#sessions [data-session]')]\
               .map(li => li.dataset.session);",
            vec![],
        )
        .await;
    let order: Vec<String> = serde_json::from_value(order).unwrap();
    assert_eq!(order.len(), 2, "two sessions listed: {order:?}");
    assert!(order.contains(&other), "{order:?} lists {other}");
    'rows: for sid in &order {
        for part in [".revoke button", "summary"] {
            browser.press(Key::Tab).await;
            let css = format!("[data-session=\"{sid}\"] {part}");
            assert_focus(&browser, &css).await;
            if *sid == other && part == "summary" {
                break 'rows;
            }
        }
    }
    browser.press(Key::Enter).await;
    let opened = browser
        .execute(
            "const d = document.querySelector(`[data-session=\"${arguments[0]}\"] details`);\
             return [d.open, d.querySelector('.sid').innerText];",
            vec![json!(other)],
        )
        .await;
    assert_eq!(opened, json!([true, other]), "Enter opens the details");
    browser.press_shifted(Key::Tab).await;
    assert_focus(
        &browser,
        &format!("[data-session=\"{other}\"] .revoke button"),
    )
    .await;
    browser.press(Key::Enter).await;

    // Back on the account page, without the other session.
    let left = crate::pages::wait_for_sessions(&browser, "drop the revoked session", |s| {
        s.len() == 1 && !s.contains(&other)
    })
    .await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(browser.url().await.path(), "/account");
    let (status, refused) = site
        .call(
            Method::POST,
            "/v1/refresh",
            None,
            json!({"refresh_token": rt}),
        )
        .await;
    assert_eq!((status, &refused["error"]), (400, &json!("invalid_grant")));
    crate::pages::assert_no_errors(&browser.console_errors().await, "the keyboard walk");
    browser.quit().await;
}
