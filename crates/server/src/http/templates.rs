//! The page templates, embedded in the binary and rendered with HTML auto-escaping.

use std::sync::LazyLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;

use crate::domain::DomainError;

const TEMPLATES: [(&str, &str); 10] = [
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("account.html", include_str!("../../templates/account.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("consent.html", include_str!("../../templates/consent.html")),
    (
        "continue.html",
        include_str!("../../templates/continue.html"),
    ),
    ("logout.html", include_str!("../../templates/logout.html")),
    (
        "login_mfa.html",
        include_str!("../../templates/login_mfa.html"),
    ),
    (
        "mfa_enrol.html",
        include_str!("../../templates/mfa_enrol.html"),
    ),
    (
        "recovery_codes.html",
        include_str!("../../templates/recovery_codes.html"),
    ),
];

static ENV: LazyLock<Result<Environment<'static>, minijinja::Error>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    Ok(env)
});

/// Renders a template (HTML auto-escaped).
pub(super) fn render(name: &str, ctx: minijinja::Value) -> Result<String, DomainError> {
    let env = ENV
        .as_ref()
        .map_err(|e| DomainError::internal_because("templates", e))?;
    env.get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| DomainError::internal_because(format!("template {name}"), e))
}

/// The public URL's path prefix for the templates' `base`, as it is: HTML escaping would
/// turn its slashes into entities, and a prefix holds only letters, digits, `-`, `.`, `_`,
/// `~` and `/` (checked by [`crate::config::PublicUrl::parse`]), none of which HTML gives a
/// meaning in an attribute.
pub(super) fn base(prefix: &str) -> minijinja::Value {
    let plain = prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b));
    if plain {
        minijinja::Value::from_safe_string(prefix.to_owned())
    } else {
        minijinja::Value::from(prefix)
    }
}

/// An HTML response.
pub(super) fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// A 303 to `location` (a path of this service, or a checked return target: both are
/// ASCII with no control characters).
pub(super) fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        assert!(ENV.is_ok(), "{:?}", ENV.as_ref().err());
        for (name, _) in TEMPLATES {
            assert!(ENV.as_ref().is_ok_and(|e| e.get_template(name).is_ok()));
        }
    }
}
