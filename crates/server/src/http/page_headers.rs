//! The security headers of every hosted page (login, account, consent, logout): a strict
//! Content-Security-Policy, no framing, no sniffing, no caching. A page whose form ends in
//! a redirect to another origin (a relying party) widens its own `form-action`, because
//! browsers apply it to the redirects that follow a form submission.

use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use super::AppState;

/// The Content-Security-Policy of every page.
pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// `pages` with the security headers. A page that set its own Content-Security-Policy
/// ([`allow_form_target`]) keeps it.
pub(super) fn secured(pages: Router<AppState>) -> Router<AppState> {
    let mut router = pages;
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        router = router.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router.layer(SetResponseHeaderLayer::if_not_present(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    ))
}

/// Lets the page's forms end in a redirect to `source` (an origin, or a private-use
/// scheme such as `com.example.app:`), besides this service.
pub(super) fn allow_form_target(page: &mut Response, source: &str) {
    let csp = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'",
        &format!("form-action 'self' {source}"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        page.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
}
