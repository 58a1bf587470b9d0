//! OpenID Connect RP-Initiated Logout 1.0 (`end_session_endpoint`, `/oauth2/logout`).
//!
//! - `id_token_hint`: an ID token this issuer signed (its signature checked against the key
//!   ring, its `iss` ours; an expired one is accepted). Its `aud` names the client, its
//!   `sid` the sign-in session to end and its `sub` the user.
//! - `post_logout_redirect_uri`: followed only when it is, character for character, one of
//!   the client's registered `post_logout_redirect_uris`; the client is the hint's `aud`,
//!   or `client_id` without a hint. Anything else is refused on an error page, never
//!   redirected to: there is no open redirect.
//! - `state` is appended to the redirect.
//! - With a valid hint whose session is the browser's (or when the browser's session is
//!   not visible: cookies are `SameSite=Strict`, so a navigation from the RP's site carries
//!   none), the sign-in session ends at once. Without a hint, or when the browser's session
//!   is another one, the user confirms first.

use serde::Deserialize;
use wristband_jose::UnverifiedToken;

use crate::domain::{audit, revoke, AuthService, ClientInfo, DomainError, Principal};
use crate::store::ClientRecord;

/// The parameters of a logout request (query or form).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EndSessionRequest {
    /// An ID token the RP holds.
    pub id_token_hint: Option<String>,
    /// Where to send the browser afterwards.
    pub post_logout_redirect_uri: Option<String>,
    /// Opaque value for the RP, appended to the redirect.
    pub state: Option<String>,
    /// The RP, when there is no hint (with a hint, it must be the hint's `aud`).
    pub client_id: Option<String>,
    /// `ui_locales` (accepted, not used).
    pub ui_locales: Option<String>,
    /// `logout_hint` (accepted, not used).
    pub logout_hint: Option<String>,
}

/// What to do with a logout request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndSession {
    /// The session was ended: send the browser to `redirect` (a registered URI with the
    /// state), or show the "logged out" page.
    Done {
        /// The checked redirect, `state` included.
        redirect: Option<String>,
    },
    /// Ask the user first.
    Confirm(Confirmation),
}

/// What the confirmation page shows and sends back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// The client, when one is named (by the hint or `client_id`).
    pub client_id: Option<String>,
    /// Its name, for the page.
    pub client_name: Option<String>,
    /// The checked `post_logout_redirect_uri`, without the state.
    pub post_logout_redirect_uri: Option<String>,
    /// The `state` to append.
    pub state: Option<String>,
    /// The origin of the redirect, which the page's form may be redirected to.
    pub redirect_origin: Option<String>,
}

/// The claims of a hint that matter here.
#[derive(Debug, Deserialize)]
struct HintClaims {
    iss: String,
    aud: Aud,
    sub: String,
    sid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Aud {
    One(String),
    Many(Vec<String>),
}

/// A verified `id_token_hint`.
#[derive(Debug)]
struct Hint {
    client_id: String,
    sub: String,
    sid: Option<String>,
}

fn bad_hint() -> DomainError {
    DomainError::invalid("id_token_hint is not a valid ID token of this issuer")
}

/// `uri` with `state` appended as a query parameter.
fn with_state(uri: &str, state: Option<&str>) -> String {
    match state {
        None => uri.to_owned(),
        Some(state) => {
            let sep = if uri.contains('?') { '&' } else { '?' };
            let state: String = url::form_urlencoded::byte_serialize(state.as_bytes()).collect();
            format!("{uri}{sep}state={state}")
        }
    }
}

impl AuthService {
    /// Checks an `id_token_hint`: our signature (a published key), `typ` absent or `JWT`,
    /// our `iss`, one `aud`. Its expiry is not checked.
    fn verify_hint(&self, token: &str) -> Result<Hint, DomainError> {
        let unverified = UnverifiedToken::parse(token).map_err(|_| bad_hint())?;
        let header = unverified.header();
        if !header.typ().is_none_or(|t| t.eq_ignore_ascii_case("JWT")) {
            return Err(bad_hint());
        }
        let ring = self.keys.ring();
        if !ring.algorithms().contains(&header.alg()) {
            return Err(bad_hint());
        }
        let key = header
            .kid()
            .and_then(|kid| ring.keyset().get(kid))
            .ok_or_else(bad_hint)?;
        let payload = wristband_jose::verify_jws(token, key).map_err(|_| bad_hint())?;
        let claims: HintClaims = serde_json::from_slice(&payload).map_err(|_| bad_hint())?;
        if claims.iss != self.issuer {
            return Err(bad_hint());
        }
        let client_id = match claims.aud {
            Aud::One(a) => a,
            Aud::Many(mut a) if a.len() == 1 => a.remove(0),
            Aud::Many(_) => return Err(bad_hint()),
        };
        Ok(Hint {
            client_id,
            sub: claims.sub,
            sid: claims.sid,
        })
    }

    /// The client named by the request, and the checked redirect (without the state).
    async fn logout_target(
        &self,
        client_id: Option<&str>,
        redirect: Option<&str>,
    ) -> Result<(Option<ClientRecord>, Option<String>), DomainError> {
        let client = match client_id {
            Some(id) => Some(
                self.store
                    .client(id)
                    .await?
                    .ok_or_else(|| DomainError::invalid("unknown client"))?,
            ),
            None => None,
        };
        let redirect = match (redirect, &client) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(DomainError::invalid(
                    "post_logout_redirect_uri needs an id_token_hint or a client_id",
                ))
            }
            (Some(uri), Some(c)) => {
                if !c.post_logout_redirect_uris.iter().any(|r| r == uri) {
                    return Err(DomainError::invalid(
                        "post_logout_redirect_uri is not registered for this client",
                    ));
                }
                Some(uri.to_owned())
            }
        };
        Ok((client, redirect))
    }

    /// The first step of a logout request: checks it, and either ends the sign-in session
    /// at once (a valid hint that matches the browser's session, `browser_sid`, when that
    /// is visible) or asks for a confirmation. A forged hint, an unknown client or an
    /// unregistered redirect is an error: nothing is ended and nobody is redirected.
    pub async fn end_session(
        &self,
        request: &EndSessionRequest,
        browser_sid: Option<&str>,
        client: &ClientInfo,
    ) -> Result<EndSession, DomainError> {
        let hint = match request.id_token_hint.as_deref() {
            Some(token) => Some(self.verify_hint(token)?),
            None => None,
        };
        if let (Some(h), Some(c)) = (&hint, &request.client_id) {
            if &h.client_id != c {
                return Err(DomainError::invalid(
                    "client_id is not the audience of the id_token_hint",
                ));
            }
        }
        let client_id = hint
            .as_ref()
            .map(|h| h.client_id.as_str())
            .or(request.client_id.as_deref());
        let (rp, redirect) = self
            .logout_target(client_id, request.post_logout_redirect_uri.as_deref())
            .await?;
        let ending = match &hint {
            Some(h) => match (h.sid.as_deref(), browser_sid) {
                (Some(hinted), None) => Some(hinted),
                (Some(hinted), Some(browser)) if hinted == browser => Some(hinted),
                (None, Some(browser)) => Some(browser),
                _ => None,
            },
            None => None,
        };
        if let (Some(h), Some(sid)) = (&hint, ending) {
            self.end_sign_in_session(sid, Some(&h.sub), &h.client_id, client)
                .await?;
            return Ok(EndSession::Done {
                redirect: redirect.map(|r| with_state(&r, request.state.as_deref())),
            });
        }
        let redirect_origin = redirect
            .as_deref()
            .and_then(|r| url::Url::parse(r).ok())
            .map(|u| u.origin())
            .filter(url::Origin::is_tuple)
            .map(|o| o.ascii_serialization());
        Ok(EndSession::Confirm(Confirmation {
            client_id: rp.as_ref().map(|c| c.id.clone()),
            client_name: rp.map(|c| c.name),
            post_logout_redirect_uri: redirect,
            state: request.state.clone(),
            redirect_origin,
        }))
    }

    /// The confirmed logout (the confirmation page's form, CSRF-checked by the caller):
    /// ends the browser's session, `browser`, when there is one, and returns the checked
    /// redirect with the state.
    pub async fn confirm_end_session(
        &self,
        request: &EndSessionRequest,
        browser: Option<&Principal>,
        client: &ClientInfo,
    ) -> Result<Option<String>, DomainError> {
        let (rp, redirect) = self
            .logout_target(
                request.client_id.as_deref(),
                request.post_logout_redirect_uri.as_deref(),
            )
            .await?;
        if let Some(caller) = browser {
            if let Some(sid) = caller.session_id() {
                let rp = rp.as_ref().map_or("", |c| c.id.as_str());
                self.end_sign_in_session(sid, Some(caller.subject()), rp, client)
                    .await?;
            }
        }
        Ok(redirect.map(|r| with_state(&r, request.state.as_deref())))
    }

    /// Ends a sign-in session of `user` (others are left alone): its tokens are revoked
    /// through the feed, whose follower then ends its children and tells their clients.
    async fn end_sign_in_session(
        &self,
        sid: &str,
        user: Option<&str>,
        rp: &str,
        client: &ClientInfo,
    ) -> Result<(), DomainError> {
        let Some(session) = self.store.session(sid).await? else {
            return Ok(());
        };
        if user.is_some_and(|u| u != session.user_id) || session.parent_id.is_some() {
            return Ok(());
        }
        let now = self.now();
        let life = self.record_lifetime();
        if revoke::revoke_session(&*self.store, life, sid, "rp_logout", now)
            .await?
            .is_some()
        {
            self.feed_changed();
        }
        audit!(
            "rp_initiated_logout",
            user_id = %session.user_id,
            session_id = %sid,
            client_id = rp,
            ip = client.ip.as_deref()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_is_appended_encoded() {
        assert_eq!(with_state("https://rp/cb", None), "https://rp/cb");
        assert_eq!(
            with_state("https://rp/cb", Some("a b&c")),
            "https://rp/cb?state=a+b%26c"
        );
        assert_eq!(
            with_state("https://rp/cb?x=1", Some("s")),
            "https://rp/cb?x=1&state=s"
        );
    }
}
