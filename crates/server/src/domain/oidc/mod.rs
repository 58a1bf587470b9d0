//! The OpenID Connect provider: relying-party registration, the authorization request
//! (`/oauth2/authorize`) with its login hand-off and consent, the `authorization_code`
//! grant with PKCE, ID tokens and userinfo.
//!
//! - A **sign-in session** is what the hosted login made (`parent_id` none); the ID
//!   token's `sid` is its id.
//! - Each code exchange starts a **child session** of the relying party (`parent_id` = the
//!   sign-in session), whose id is the `sid` of the RP's access tokens, so that revoking it
//!   (a replayed code, a reused refresh token) revokes them through the feed.
//! - Codes live [`CODE_TTL_SECS`], are used once and are stored only as hashes.
//! - The logout side: RP-initiated logout in [`logout`], back-channel logout in
//!   [`backchannel`].

pub mod backchannel;
pub mod clients;
mod code;
pub mod logout;
pub mod redirect;
mod request;

pub use clients::{add_relying_party, update_client, ClientChanges, RelyingParty};
pub use code::CodeExchange;
pub use request::{Authorize, AuthorizeParams, ConsentPrompt};

/// The scope every OpenID Connect request has.
pub const SCOPE_OPENID: &str = "openid";
/// `preferred_username` and `role` at userinfo.
pub const SCOPE_PROFILE: &str = "profile";
/// Accepted, but user records hold no e-mail address: it yields no claim.
pub const SCOPE_EMAIL: &str = "email";
/// A refresh token for the relying party, whose child session outlives the sign-in.
pub const SCOPE_OFFLINE: &str = "offline_access";
/// The scopes a relying party may be registered for.
pub const SCOPES_SUPPORTED: [&str; 4] = [SCOPE_OPENID, SCOPE_PROFILE, SCOPE_EMAIL, SCOPE_OFFLINE];
/// How long an authorization code is valid, in seconds.
pub const CODE_TTL_SECS: i64 = 60;
/// The path of the authorization endpoint.
pub const AUTHORIZE_PATH: &str = "/oauth2/authorize";
/// The path of the userinfo endpoint.
pub const USERINFO_PATH: &str = "/oauth2/userinfo";

/// What userinfo answers: only what the granted scopes allow.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserInfo {
    /// The user id.
    pub sub: String,
    /// The username (`profile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// The role (`profile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// The words of a space-separated list, without repeats, in their first order.
pub(crate) fn scope_words(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in s.split(' ').filter(|w| !w.is_empty()) {
        if !out.iter().any(|o| o == w) {
            out.push(w.to_owned());
        }
    }
    out
}

/// One of the given words in a space-separated list.
pub(crate) fn has_scope(scope: Option<&str>, word: &str) -> bool {
    scope.is_some_and(|s| s.split(' ').any(|w| w == word))
}

impl super::AuthService {
    /// The audience every relying party's access token carries, so that userinfo accepts
    /// it: the userinfo endpoint's URL.
    pub fn userinfo_audience(&self) -> String {
        format!("{}{USERINFO_PATH}", self.issuer().trim_end_matches('/'))
    }

    /// Userinfo: the claims of a relying party's live access token, within its scopes.
    /// Refused (invalid token) without `openid`, or for a token without a user session.
    pub async fn userinfo(&self, token: &str) -> Result<UserInfo, super::DomainError> {
        let info = self.authenticate(token).await?;
        if info.sid.is_none() || !has_scope(info.scope.as_deref(), SCOPE_OPENID) {
            return Err(super::DomainError::Forbidden);
        }
        let user = match self.store.user_by_id(&info.sub).await? {
            Some(u) if !u.disabled => u,
            _ => return Err(super::DomainError::InvalidToken { expired: false }),
        };
        let profile = has_scope(info.scope.as_deref(), SCOPE_PROFILE);
        Ok(UserInfo {
            sub: user.id,
            preferred_username: profile.then_some(user.username),
            role: profile.then_some(user.role),
        })
    }

    /// The clients a user consented to, with the scopes, oldest first.
    pub async fn consents(
        &self,
        caller: &super::Principal,
    ) -> Result<Vec<(crate::store::ConsentRecord, Option<String>)>, super::DomainError> {
        let (user_id, _) = caller.user_session()?;
        let mut out = Vec::new();
        for c in self.store.user_consents(user_id).await? {
            let name = self.store.client(&c.client_id).await?.map(|c| c.name);
            out.push((c, name));
        }
        Ok(out)
    }

    /// Withdraws the caller's consent to a client: the next authorization asks again.
    pub async fn withdraw_consent(
        &self,
        caller: &super::Principal,
        client_id: &str,
    ) -> Result<(), super::DomainError> {
        let (user_id, _) = caller.user_session()?;
        if !self.store.remove_consent(user_id, client_id).await? {
            return Err(super::DomainError::NotFound);
        }
        super::audit!("consent_withdrawn", user_id = %user_id, client_id = %client_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_words_drop_repeats_and_blanks() {
        assert_eq!(scope_words("openid  profile openid"), ["openid", "profile"]);
        assert!(scope_words("").is_empty());
        assert!(has_scope(Some("a openid b"), "openid"));
        assert!(!has_scope(Some("openidx"), "openid"));
        assert!(!has_scope(None, "openid"));
    }
}
