//! Screenshots of every hosted page, at a desktop width (1280 px) and on a 375 px-wide
//! phone screen, saved as `docs/screenshots/PAGE-desktop.png` and `PAGE-phone.png`.
//!
//! Not part of `cargo test` (the target has `test = false`): run it on purpose, with
//! Chromium and chromedriver installed (`.ci/browser.sh`), when the pages change:
//!
//! ```text
//! cargo test -p wristband --test screenshots
//! ```
//!
//! It walks the same pages as the accessibility tests (`tests/browser/tour.rs`), each
//! captured whole: the window is made as tall as the page first.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use std::path::{Path, PathBuf};

use wristband_testkit::browser::{missing, png_size, Browser};

// The walk is shared with the browser tests, which use more of it.
#[allow(dead_code)]
#[path = "../browser/tour.rs"]
mod tour;

use tour::{Inspect, Page, Site};

/// The widths: a desktop window, and a phone's screen.
const SIZES: [(&str, (u32, u32)); 2] = [("desktop", (1280, 900)), ("phone", (375, 812))];

struct Shots {
    dir: PathBuf,
    suffix: &'static str,
    size: (u32, u32),
    saved: Vec<PathBuf>,
}

impl Inspect for Shots {
    async fn inspect(&mut self, browser: &Browser, page: Page) {
        let (width, height) = self.size;
        // The page's height, and what the window has beyond its viewport.
        let sizes = browser
            .execute(
                "return [Math.ceil(document.documentElement.scrollHeight),\
                         window.outerHeight - window.innerHeight];",
                vec![],
            )
            .await;
        let page_height = u32::try_from(sizes[0].as_u64().expect("scrollHeight")).unwrap();
        let frame = u32::try_from(sizes[1].as_u64().expect("outer - inner height")).unwrap();
        browser
            .set_window_size(width, page_height.max(height - frame) + frame)
            .await;
        browser
            .execute(
                "window.scrollTo(0, 0); if (document.activeElement) document.activeElement.blur();",
                vec![],
            )
            .await;
        let path = self.dir.join(format!("{}-{}.png", page.name, self.suffix));
        let png = browser.screenshot(&path).await;
        let (w, h) = png_size(&png).expect("a PNG");
        assert_eq!(w, width, "{} is {w}x{h}", path.display());
        assert!(h >= page_height, "{} is {w}x{h}", path.display());
        browser.set_window_size(width, height).await;
        self.saved.push(path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_at_both_widths() {
    if let Some(reason) = missing() {
        panic!("the screenshots need a browser, but {reason}: run .ci/browser.sh first");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    for (suffix, size) in SIZES {
        let browser = Browser::start("screenshots::every_page_at_both_widths")
            .await
            .expect("a browser");
        let inner = browser.set_window_size(size.0, size.1).await;
        assert_eq!(inner, u64::from(size.0), "window.innerWidth");
        let site = Site::start().await;
        let mut shots = Shots {
            dir: dir.clone(),
            suffix,
            size,
            saved: Vec::new(),
        };
        tour::walk(&browser, &site, &mut shots).await;
        assert_eq!(shots.saved.len(), 11, "{:?}", shots.saved);
        for path in &shots.saved {
            println!("saved {}", path.display());
        }
        browser.quit().await;
    }
}
