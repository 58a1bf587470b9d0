//! The authorization request (`/oauth2/authorize`): its parameters, their checks, and what
//! comes next: the login page, the consent page, or a redirect back to the client.

use url::Url;

use super::redirect;
use super::{scope_words, AUTHORIZE_PATH, SCOPE_OPENID};
use crate::domain::strength::{StepUp, Strength};
use crate::domain::{audit, AuthService, DomainError, Principal};
use crate::store::{ClientRecord, ConsentRecord, SessionRecord};

/// The parameters read from an authorization request; others are ignored.
const NAMES: [&str; 16] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "acr_values",
    "login_hint",
    "ui_locales",
    "request",
    "request_uri",
    "response_mode",
];

/// The longest parameter value accepted, in bytes.
const MAX_VALUE: usize = 1024;

/// An authorization request's parameters, as received (query or form).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeParams {
    fields: Vec<(&'static str, String)>,
}

impl AuthorizeParams {
    /// Reads form-encoded parameters. A repeated parameter (RFC 6749 §3.1) or an overlong
    /// one is refused; unknown ones are ignored.
    pub fn parse(encoded: &[u8]) -> Result<Self, DomainError> {
        let mut fields: Vec<(&'static str, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(encoded) {
            let Some(name) = NAMES.iter().find(|n| **n == k) else {
                continue;
            };
            if fields.iter().any(|(n, _)| n == name) {
                return Err(DomainError::invalid(format!(
                    "the parameter {name} is repeated"
                )));
            }
            if v.len() > MAX_VALUE {
                return Err(DomainError::invalid(format!(
                    "the parameter {name} is too long"
                )));
            }
            fields.push((name, v.into_owned()));
        }
        Ok(AuthorizeParams { fields })
    }

    /// A parameter; an empty value counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The parameters (for hidden form fields).
    pub fn fields(&self) -> &[(&'static str, String)] {
        &self.fields
    }

    /// The request as a query string, without `prompt` when `drop_prompt` (the login page
    /// comes back to it once the user has signed in again).
    pub fn to_query(&self, drop_prompt: bool) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (n, v) in &self.fields {
            if !(drop_prompt && *n == "prompt") {
                q.append_pair(n, v);
            }
        }
        q.finish()
    }
}

/// What an authorization request leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorize {
    /// The user must sign in on the hosted login page, which then comes back to
    /// `return_to` (this request, under the public URL).
    Login {
        /// Where the login page returns to.
        return_to: String,
        /// A username to prefill.
        login_hint: Option<String>,
        /// The user must sign in again even with a live session (`prompt=login`, or a
        /// sign-in older than `max_age`).
        force: bool,
    },
    /// The user must consent to the client's scopes.
    Consent(ConsentPrompt),
    /// Back to the client, with a code or an error (RFC 6749 §4.1.2).
    Redirect(String),
}

/// What the consent page shows and posts back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentPrompt {
    /// The client's name.
    pub client_name: String,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// The request, echoed in hidden fields.
    pub params: AuthorizeParams,
    /// Where the decision's redirect goes, as a CSP source (the page's `form-action`
    /// must allow it): an origin, or a private-use scheme (`com.example.app:`).
    pub redirect_source: String,
}

/// `prompt` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Prompt {
    none: bool,
    login: bool,
    consent: bool,
}

/// A request whose client and redirect URI are known good: from here on, errors go back to
/// the client.
#[derive(Debug, Clone)]
pub(super) struct Checked {
    pub(super) client: ClientRecord,
    pub(super) redirect_uri: String,
    pub(super) state: Option<String>,
}

/// A request that passed every check.
#[derive(Debug, Clone)]
pub(super) struct Valid {
    pub(super) checked: Checked,
    pub(super) scopes: Vec<String>,
    pub(super) nonce: Option<String>,
    pub(super) challenge: String,
    prompt: Prompt,
    max_age: Option<i64>,
    /// The `acr` values asked for (voluntary, OpenID Connect Core §3.1.2.1): a session
    /// below them signs in again when the user has a factor that reaches them.
    acr: Strength,
    login_hint: Option<String>,
}

/// An OAuth error to send back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Back(pub(super) &'static str, pub(super) &'static str);

/// The signed-in user, as the authorization endpoint sees them.
pub(super) struct SignIn {
    pub(super) session: SessionRecord,
}

fn is_challenge(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Checked {
    /// The redirect back to the client with `pairs`, `state` and `iss` (RFC 9207).
    pub(super) fn redirect(&self, iss: &str, pairs: &[(&str, &str)]) -> String {
        match Url::parse(&self.redirect_uri) {
            Ok(mut url) => {
                {
                    let mut q = url.query_pairs_mut();
                    for (k, v) in pairs {
                        q.append_pair(k, v);
                    }
                    if let Some(state) = &self.state {
                        q.append_pair("state", state);
                    }
                    q.append_pair("iss", iss);
                }
                url.into()
            }
            // Checked to parse when it was matched.
            Err(_) => self.redirect_uri.clone(),
        }
    }

    fn error(&self, iss: &str, back: Back) -> String {
        self.redirect(iss, &[("error", back.0), ("error_description", back.1)])
    }
}

/// The CSP source of a redirect URI: its origin, or its private-use scheme.
fn csp_source(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url.origin().ascii_serialization(),
        Ok(url) => format!("{}:", url.scheme()),
        Err(_) => "'none'".to_owned(),
    }
}

impl AuthService {
    /// The client and the redirect URI: a failure here is shown on an error page, never
    /// redirected.
    async fn check_client(&self, p: &AuthorizeParams) -> Result<Checked, DomainError> {
        let client_id = p
            .get("client_id")
            .ok_or_else(|| DomainError::invalid("the client_id parameter is missing"))?;
        let client = match self.store.client(client_id).await? {
            Some(c) if c.kind.is_relying_party() => c,
            _ => return Err(DomainError::invalid("unknown client")),
        };
        let redirect_uri = p
            .get("redirect_uri")
            .ok_or_else(|| DomainError::invalid("the redirect_uri parameter is missing"))?;
        if !redirect::matches(&client.redirect_uris, redirect_uri) {
            return Err(DomainError::invalid(
                "the redirect_uri is not registered for this client",
            ));
        }
        Ok(Checked {
            redirect_uri: redirect_uri.to_owned(),
            state: p.get("state").map(str::to_owned),
            client,
        })
    }

    /// Every other check; a failure goes back to the client.
    fn check_rest(checked: Checked, p: &AuthorizeParams) -> Result<Valid, Box<(Checked, Back)>> {
        let fail = |c: Checked, e: &'static str, d: &'static str| Err(Box::new((c, Back(e, d))));
        if p.get("request").is_some() {
            return fail(
                checked,
                "request_not_supported",
                "request objects are not supported",
            );
        }
        if p.get("request_uri").is_some() {
            return fail(
                checked,
                "request_uri_not_supported",
                "request_uri is not supported",
            );
        }
        match p.get("response_type") {
            Some("code") => {}
            None => return fail(checked, "invalid_request", "response_type is missing"),
            Some(_) => {
                return fail(
                    checked,
                    "unsupported_response_type",
                    "only response_type=code is supported",
                )
            }
        }
        if p.get("response_mode").is_some_and(|m| m != "query") {
            return fail(
                checked,
                "invalid_request",
                "only response_mode=query is supported",
            );
        }
        let scopes = scope_words(p.get("scope").unwrap_or_default());
        if !scopes.iter().any(|s| s == SCOPE_OPENID) {
            return fail(checked, "invalid_scope", "the openid scope is required");
        }
        if scopes.iter().any(|s| !checked.client.scopes.contains(s)) {
            return fail(
                checked,
                "invalid_scope",
                "a scope is not registered for this client",
            );
        }
        let challenge = match (p.get("code_challenge"), p.get("code_challenge_method")) {
            (Some(c), Some("S256")) if is_challenge(c) => c.to_owned(),
            (Some(_), Some("S256")) => {
                return fail(
                    checked,
                    "invalid_request",
                    "the code_challenge is malformed",
                )
            }
            (None, _) => {
                return fail(
                    checked,
                    "invalid_request",
                    "PKCE is required: send code_challenge with code_challenge_method=S256",
                )
            }
            (Some(_), _) => {
                return fail(
                    checked,
                    "invalid_request",
                    "only code_challenge_method=S256 is supported",
                )
            }
        };
        let mut prompt = Prompt::default();
        for word in p.get("prompt").unwrap_or_default().split(' ') {
            match word {
                "" | "select_account" => {}
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                _ => return fail(checked, "invalid_request", "unknown prompt value"),
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return fail(
                checked,
                "invalid_request",
                "prompt=none cannot be combined with other values",
            );
        }
        let max_age = match p.get("max_age") {
            None => None,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => {
                    return fail(
                        checked,
                        "invalid_request",
                        "max_age is not a number of seconds",
                    )
                }
            },
        };
        Ok(Valid {
            scopes,
            nonce: p.get("nonce").map(str::to_owned),
            challenge,
            prompt,
            max_age,
            // Voluntary: values it cannot read are ignored rather than refused.
            acr: Strength::parse(p.get("acr_values"), None).unwrap_or_default(),
            login_hint: p.get("login_hint").map(str::to_owned),
            checked,
        })
    }

    /// The live sign-in session behind a browser's access cookie, if any: a first-party
    /// user token whose session is a sign-in session.
    async fn sign_in(&self, caller: Option<&Principal>) -> Result<Option<SignIn>, DomainError> {
        let Some(caller) = caller else {
            return Ok(None);
        };
        if caller.client_id() != self.config.client_id {
            return Ok(None);
        }
        let Ok((user_id, sid)) = caller.user_session() else {
            return Ok(None);
        };
        match self.store.session(sid).await? {
            Some(s) if s.revoked_at.is_none() && s.parent_id.is_none() && s.user_id == user_id => {
                Ok(Some(SignIn { session: s }))
            }
            _ => Ok(None),
        }
    }

    /// Handles an authorization request for the browser whose access cookie made
    /// `caller` (`None`: not signed in). An unknown client, a missing client id, a
    /// redirect URI that is not registered or a repeated parameter is an error (shown on a
    /// page); every other failure is a redirect back to the client.
    pub async fn authorize(
        &self,
        params: &AuthorizeParams,
        caller: Option<&Principal>,
    ) -> Result<Authorize, DomainError> {
        let checked = self.check_client(params).await?;
        let iss = self.issuer().to_owned();
        let valid = match Self::check_rest(checked, params) {
            Ok(v) => v,
            Err(failed) => {
                let (c, back) = *failed;
                return Ok(Authorize::Redirect(c.error(&iss, back)));
            }
        };
        let now = self.now();
        let sign_in = self.sign_in(caller).await?;
        let fresh = sign_in.as_ref().filter(|s| {
            valid
                .max_age
                .is_none_or(|max| now.saturating_sub(s.session.auth_time) <= max)
        });
        let login = |force| Authorize::Login {
            return_to: format!(
                "{}?{}",
                self.public_url().path(AUTHORIZE_PATH),
                params.to_query(true)
            ),
            login_hint: valid.login_hint.clone(),
            force,
        };
        let Some(sign_in) = fresh else {
            if valid.prompt.none {
                let back = Back("login_required", "the user is not signed in");
                return Ok(Authorize::Redirect(valid.checked.error(&iss, back)));
            }
            return Ok(login(sign_in.is_some()));
        };
        if valid.prompt.login {
            return Ok(login(true));
        }
        if !valid.acr.is_empty()
            && !valid.prompt.none
            && self.step_up(&sign_in.session.id, &valid.acr).await? == StepUp::SignInAgain
        {
            return Ok(login(true));
        }
        if !valid.checked.client.first_party {
            let consent = self
                .store
                .consent(&sign_in.session.user_id, &valid.checked.client.id)
                .await?;
            let covered = consent.is_some_and(|c| {
                let granted = scope_words(&c.scope);
                valid.scopes.iter().all(|s| granted.contains(s))
            });
            if !covered || valid.prompt.consent {
                if valid.prompt.none {
                    let back = Back("consent_required", "the user has not consented");
                    return Ok(Authorize::Redirect(valid.checked.error(&iss, back)));
                }
                return Ok(Authorize::Consent(ConsentPrompt {
                    client_name: valid.checked.client.name.clone(),
                    scopes: valid.scopes.clone(),
                    redirect_source: csp_source(&valid.checked.redirect_uri),
                    params: params.clone(),
                }));
            }
        }
        let to = self.issue_code(&valid, sign_in, now).await?;
        Ok(Authorize::Redirect(to))
    }

    /// The user's answer on the consent page (after its CSRF checks): the request is
    /// checked again; on `allow` the consent is remembered and a code issued, otherwise
    /// `access_denied` goes back to the client. Without a sign-in session: the login page.
    pub async fn decide_consent(
        &self,
        params: &AuthorizeParams,
        caller: &Principal,
        allow: bool,
    ) -> Result<Authorize, DomainError> {
        let checked = self.check_client(params).await?;
        let iss = self.issuer().to_owned();
        let valid = match Self::check_rest(checked, params) {
            Ok(v) => v,
            Err(failed) => {
                let (c, back) = *failed;
                return Ok(Authorize::Redirect(c.error(&iss, back)));
            }
        };
        let Some(sign_in) = self.sign_in(Some(caller)).await? else {
            return Ok(Authorize::Login {
                return_to: format!(
                    "{}?{}",
                    self.public_url().path(AUTHORIZE_PATH),
                    params.to_query(true)
                ),
                login_hint: None,
                force: false,
            });
        };
        let client_id = valid.checked.client.id.clone();
        let user_id = sign_in.session.user_id.clone();
        if !allow {
            audit!("consent_denied", user_id = %user_id, client_id = %client_id);
            let back = Back("access_denied", "the user refused");
            return Ok(Authorize::Redirect(valid.checked.error(&iss, back)));
        }
        let now = self.now();
        let mut scopes = match self.store.consent(&user_id, &client_id).await? {
            Some(c) => scope_words(&c.scope),
            None => Vec::new(),
        };
        for s in &valid.scopes {
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        self.store
            .put_consent(&ConsentRecord {
                user_id: user_id.clone(),
                client_id: client_id.clone(),
                scope: scopes.join(" "),
                created_at: now,
            })
            .await?;
        audit!("consent_given", user_id = %user_id, client_id = %client_id);
        Ok(Authorize::Redirect(
            self.issue_code(&valid, &sign_in, now).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_and_unknown_ones_ignored() {
        assert!(AuthorizeParams::parse(b"client_id=a&client_id=b").is_err());
        let p = AuthorizeParams::parse(b"client_id=a&foo=1&foo=2&state=").unwrap();
        assert_eq!(p.get("client_id"), Some("a"));
        assert_eq!(p.get("foo"), None);
        assert_eq!(p.get("state"), None);
    }

    #[test]
    fn the_return_query_drops_prompt_only_when_asked() {
        let p = AuthorizeParams::parse(b"client_id=a&prompt=login&state=x%20y").unwrap();
        assert_eq!(p.to_query(true), "client_id=a&state=x+y");
        assert_eq!(p.to_query(false), "client_id=a&prompt=login&state=x+y");
    }

    #[test]
    fn csp_sources() {
        assert_eq!(
            csp_source("https://rp.example:8443/cb?x"),
            "https://rp.example:8443"
        );
        assert_eq!(
            csp_source("http://127.0.0.1:5000/cb"),
            "http://127.0.0.1:5000"
        );
        assert_eq!(csp_source("com.example.app:/cb"), "com.example.app:");
    }
}
