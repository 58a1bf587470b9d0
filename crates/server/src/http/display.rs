//! What the hosted pages show a person in place of raw values: a device named from its
//! `User-Agent` ("Chrome on Linux") and a time relative to now ("5 minutes ago").
//!
//! Pure functions, so that every page (sessions, and later other kinds of devices) names
//! things the same way; the raw values stay on the page next to them.

/// A short, readable name of the browser and system behind a `User-Agent`: "Chrome on
/// Linux", "Safari on iOS", "curl", or "Unknown browser" (on a known system: "Unknown
/// browser on Windows").
pub(crate) fn device_name(user_agent: &str) -> String {
    let browser = browser(user_agent);
    match (browser, os(user_agent)) {
        (Some(b), _) if b == "curl" => b.to_owned(),
        (Some(b), Some(os)) => format!("{b} on {os}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(os)) => format!("Unknown browser on {os}"),
        (None, None) => "Unknown browser".to_owned(),
    }
}

/// The browser (or command-line client) named in a `User-Agent`. Order matters: Edge and
/// Opera also say "Chrome", Chrome also says "Safari", and iOS browsers say "Safari" with
/// a token of their own.
fn browser(ua: &str) -> Option<&'static str> {
    let has = |token: &str| ua.contains(token);
    if ua.starts_with("curl/") {
        Some("curl")
    } else if has("Edg/") || has("EdgA/") || has("EdgiOS/") || has("Edge/") {
        Some("Edge")
    } else if has("OPR/") || has("OPiOS/") || has("Opera") {
        Some("Opera")
    } else if has("SamsungBrowser/") {
        Some("Samsung Internet")
    } else if has("Firefox/") || has("FxiOS/") {
        Some("Firefox")
    } else if has("HeadlessChrome/") {
        Some("Headless Chrome")
    } else if has("Chromium/") {
        Some("Chromium")
    } else if has("Chrome/") || has("CriOS/") {
        Some("Chrome")
    } else if has("Safari/") && has("Version/") {
        Some("Safari")
    } else {
        None
    }
}

/// The operating system named in a `User-Agent`. Android says "Linux" and iOS says "like
/// Mac OS X": they are looked for first.
fn os(ua: &str) -> Option<&'static str> {
    let has = |token: &str| ua.contains(token);
    if has("Android") {
        Some("Android")
    } else if has("iPhone") || has("iPod") {
        Some("iOS")
    } else if has("iPad") {
        Some("iPadOS")
    } else if has("CrOS") {
        Some("ChromeOS")
    } else if has("Windows") {
        Some("Windows")
    } else if has("Macintosh") || has("Mac OS X") {
        Some("macOS")
    } else if has("Linux") || has("X11") {
        Some("Linux")
    } else {
        None
    }
}

/// How long ago `then` was at `now` (Unix seconds), in words: "just now" (under a minute,
/// or a time ahead of the clock), "1 minute ago", "5 minutes ago", "2 hours ago",
/// "3 days ago", "2 months ago", "1 year ago".
pub(crate) fn time_ago(then: i64, now: i64) -> String {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    let elapsed = now.saturating_sub(then);
    let (n, unit) = match elapsed {
        e if e < MINUTE => return "just now".to_owned(),
        e if e < HOUR => (e / MINUTE, "minute"),
        e if e < DAY => (e / HOUR, "hour"),
        e if e < 45 * DAY => (e / DAY, "day"),
        e if e < 365 * DAY => (e / (30 * DAY), "month"),
        e => (e / (365 * DAY), "year"),
    };
    let s = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{s} ago")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real `User-Agent` strings and what the account page calls them.
    const AGENTS: &[(&str, &str)] = &[
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.0.0 Safari/537.36",
            "Chrome on Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.0.0 Safari/537.36",
            "Chrome on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 \
             (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Chrome on macOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
            "Chrome on iOS",
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.0.0 Safari/537.36",
            "Chrome on ChromeOS",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             HeadlessChrome/131.0.0.0 Safari/537.36",
            "Headless Chrome on Linux",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Ubuntu Chromium/83.0.4103.61 Chrome/83.0.4103.61 Safari/537.36",
            "Chromium on Linux",
        ),
        (
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox on Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 \
             Firefox/133.0",
            "Firefox on macOS",
        ),
        (
            "Mozilla/5.0 (Android 15; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
            "Firefox on Android",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
            "Firefox on iOS",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
            "Safari on macOS",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/17.7 Mobile/15E148 Safari/604.1",
            "Safari on iPadOS",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 \
             (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on macOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0",
            "Edge on Android",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/70.0.3538.102 Safari/537.36 Edge/18.19045",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.0.0 Safari/537.36 OPR/116.0.0.0",
            "Opera on Windows",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S911B) AppleWebKit/537.36 \
             (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
            "Samsung Internet on Android",
        ),
        ("curl/8.11.1", "curl"),
        ("curl/7.88.1", "curl"),
        ("python-requests/2.32.3", "Unknown browser"),
        ("Wget/1.21.4", "Unknown browser"),
        ("okhttp/4.12.0", "Unknown browser"),
        ("", "Unknown browser"),
        ("phone/2.0", "Unknown browser"),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
            "Unknown browser on Linux",
        ),
        (
            "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0)",
            "Unknown browser on Windows",
        ),
    ];

    #[test]
    fn devices_are_named_from_real_user_agents() {
        for (ua, name) in AGENTS {
            assert_eq!(device_name(ua), *name, "{ua}");
        }
    }

    #[test]
    fn times_are_said_relative_to_now() {
        let now = 1_800_000_000;
        let cases = [
            (now, "just now"),
            (now - 59, "just now"),
            (now + 120, "just now"),
            (now - 60, "1 minute ago"),
            (now - 5 * 60 - 30, "5 minutes ago"),
            (now - 3599, "59 minutes ago"),
            (now - 3600, "1 hour ago"),
            (now - 2 * 3600 - 1, "2 hours ago"),
            (now - 86_399, "23 hours ago"),
            (now - 86_400, "1 day ago"),
            (now - 3 * 86_400, "3 days ago"),
            (now - 44 * 86_400, "44 days ago"),
            (now - 45 * 86_400, "1 month ago"),
            (now - 100 * 86_400, "3 months ago"),
            (now - 365 * 86_400, "1 year ago"),
            (now - 800 * 86_400, "2 years ago"),
            (i64::MIN, "292471208677 years ago"),
        ];
        for (then, words) in cases {
            assert_eq!(time_ago(then, now), words, "{}", now - then);
        }
    }
}
