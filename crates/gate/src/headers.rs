//! The decision headers: identity taken from the verified token, set on allow only.
//!
//! The values come from the token's claims and from nowhere else; the incoming request's
//! headers of the same names are never read, so a client cannot plant them.

use http::header::{HeaderName, HeaderValue, AUTHORIZATION, COOKIE};
use http::HeaderMap;
use serde::Deserialize;
use wristband_jose::Claims;

/// The names of the decision headers, and whether the access token is forwarded too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNames {
    /// The `sub` (default `X-Auth-Request-User`).
    pub user: HeaderName,
    /// The `role` (default `X-Auth-Request-Role`).
    pub role: HeaderName,
    /// The `scope` (default `X-Auth-Request-Scope`).
    pub scope: HeaderName,
    /// The `sid` (default `X-Auth-Request-Session`).
    pub session: HeaderName,
    /// The `client_id` (default `X-Auth-Request-Client`).
    pub client: HeaderName,
    /// The `amr` values, comma-separated (default `X-Auth-Request-Amr`).
    pub amr: HeaderName,
    /// The `sub` again (default `Remote-User`).
    pub remote_user: HeaderName,
    /// The `role` again (default `Remote-Groups`).
    pub remote_groups: HeaderName,
    /// The access token, when forwarded (default `X-Auth-Request-Access-Token`).
    pub token: HeaderName,
    /// Forward the access token to the upstream.
    pub forward_token: bool,
}

impl Default for HeaderNames {
    fn default() -> Self {
        HeaderNames {
            user: HeaderName::from_static("x-auth-request-user"),
            role: HeaderName::from_static("x-auth-request-role"),
            scope: HeaderName::from_static("x-auth-request-scope"),
            session: HeaderName::from_static("x-auth-request-session"),
            client: HeaderName::from_static("x-auth-request-client"),
            amr: HeaderName::from_static("x-auth-request-amr"),
            remote_user: HeaderName::from_static("remote-user"),
            remote_groups: HeaderName::from_static("remote-groups"),
            token: HeaderName::from_static("x-auth-request-access-token"),
            forward_token: false,
        }
    }
}

/// The `[headers]` table of a policy file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeadersFile {
    user: Option<String>,
    role: Option<String>,
    scope: Option<String>,
    session: Option<String>,
    client: Option<String>,
    amr: Option<String>,
    remote_user: Option<String>,
    remote_groups: Option<String>,
    token: Option<String>,
    forward_token: Option<bool>,
}

impl HeaderNames {
    pub(crate) fn from_file(file: &HeadersFile) -> Result<Self, String> {
        let mut names = HeaderNames::default();
        let slots: [(&Option<String>, &mut HeaderName); 9] = [
            (&file.user, &mut names.user),
            (&file.role, &mut names.role),
            (&file.scope, &mut names.scope),
            (&file.session, &mut names.session),
            (&file.client, &mut names.client),
            (&file.amr, &mut names.amr),
            (&file.remote_user, &mut names.remote_user),
            (&file.remote_groups, &mut names.remote_groups),
            (&file.token, &mut names.token),
        ];
        for (given, slot) in slots {
            if let Some(text) = given {
                let name = HeaderName::from_bytes(text.as_bytes())
                    .map_err(|_| format!("{text:?} is not a header name"))?;
                if is_hop_or_credential(&name) {
                    return Err(format!("{text:?} cannot carry identity"));
                }
                *slot = name;
            }
        }
        names.forward_token = file.forward_token.unwrap_or(false);
        let all = names.all();
        for (i, a) in all.iter().enumerate() {
            if all[i + 1..].contains(a) {
                return Err(format!("the header {a} is named twice"));
            }
        }
        Ok(names)
    }

    fn all(&self) -> [&HeaderName; 9] {
        [
            &self.user,
            &self.role,
            &self.scope,
            &self.session,
            &self.client,
            &self.amr,
            &self.remote_user,
            &self.remote_groups,
            &self.token,
        ]
    }

    /// The headers of an allow for `claims`. `token` is the access token, added when it is
    /// forwarded. A value that is not a valid header value is left out rather than
    /// altered.
    pub fn decision_headers(&self, claims: &Claims, token: Option<&str>, out: &mut HeaderMap) {
        let mut put = |name: &HeaderName, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                out.insert(name.clone(), v);
            }
        };
        put(&self.user, &claims.sub);
        put(&self.remote_user, &claims.sub);
        if let Some(role) = &claims.role {
            put(&self.role, role);
            put(&self.remote_groups, role);
        }
        if let Some(scope) = &claims.scope {
            put(&self.scope, scope);
        }
        if let Some(sid) = &claims.sid {
            put(&self.session, sid);
        }
        if let Some(client) = &claims.client_id {
            put(&self.client, client);
        }
        if let Some(amr) = claims.extra.get("amr").and_then(|v| v.as_array()) {
            let joined = amr
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(",");
            if !joined.is_empty() {
                put(&self.amr, &joined);
            }
        }
        if let Some(token) = token {
            put(&self.token, token);
        }
    }
}

fn is_hop_or_credential(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "authorization"
            | "cookie"
            | "set-cookie"
            | "host"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "location"
            | "www-authenticate"
    )
}

/// The raw access token a request carried (for forwarding only: it has been verified
/// already): the bearer header, or the access cookie named `cookie`.
pub(crate) fn raw_token<'a>(headers: &'a HeaderMap, cookie: Option<&str>) -> Option<&'a str> {
    if let Some(v) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim_start_matches(' '));
    }
    let cookie = cookie?;
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == cookie).then_some(value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use wristband_jose::UnixTime;

    #[test]
    fn values_come_from_the_claims() {
        let claims = Claims::new(
            "iss",
            "user-1",
            "aud",
            UnixTime::from_secs(1),
            Duration::from_secs(60),
        )
        .with_client_id("web")
        .with_role("admin")
        .with_scope("a b")
        .with_sid("s1")
        .with_claim("amr", serde_json::json!(["pwd", "mfa"]))
        .unwrap();
        let mut out = HeaderMap::new();
        HeaderNames::default().decision_headers(&claims, Some("tok"), &mut out);
        assert_eq!(out["x-auth-request-user"], "user-1");
        assert_eq!(out["remote-user"], "user-1");
        assert_eq!(out["x-auth-request-role"], "admin");
        assert_eq!(out["remote-groups"], "admin");
        assert_eq!(out["x-auth-request-scope"], "a b");
        assert_eq!(out["x-auth-request-session"], "s1");
        assert_eq!(out["x-auth-request-client"], "web");
        assert_eq!(out["x-auth-request-amr"], "pwd,mfa");
        assert_eq!(out["x-auth-request-access-token"], "tok");
        assert_eq!(out.len(), 9);
    }

    #[test]
    fn the_raw_token_comes_from_the_header_or_the_cookie() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("a=1; __Host-wb_at=tok2"));
        assert_eq!(raw_token(&h, Some("__Host-wb_at")), Some("tok2"));
        assert_eq!(raw_token(&h, None), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer tok1"));
        assert_eq!(raw_token(&h, Some("__Host-wb_at")), Some("tok1"));
    }
}
