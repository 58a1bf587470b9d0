//! The verified caller of a request: what a live access token says, checked once.
//!
//! Only [`AuthService::verify_access`] makes a [`Principal`]: the signature (or the opaque
//! token's record), expiry, revocation records and the session are checked there, once
//! per request, and the domain methods that act for a caller take `&Principal`, never the
//! token itself.

use super::{AuthService, DomainError, TokenInfo};

/// The caller behind a live access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    subject: String,
    session_id: Option<String>,
    role: Option<String>,
    scopes: Vec<String>,
    client_id: String,
    amr: Option<Vec<String>>,
    token_id: String,
    expires_at: i64,
}

impl Principal {
    fn from_info(info: TokenInfo) -> Self {
        Principal {
            scopes: info
                .scope
                .as_deref()
                .map(|s| s.split(' ').filter(|w| !w.is_empty()).map(str::to_owned))
                .into_iter()
                .flatten()
                .collect(),
            subject: info.sub,
            session_id: info.sid,
            role: info.role,
            client_id: info.client_id,
            amr: info.amr,
            token_id: info.jti,
            expires_at: info.exp,
        }
    }

    /// The token's subject: a user id for a user's token, a client id for a service
    /// token (which has no session).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The session of a user's token; `None` for a service token.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// The user's role, when the token names one.
    pub fn role(&self) -> Option<&str> {
        self.role.as_deref()
    }

    /// The token's scopes (none for a user's token).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The client the token was issued to.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// How the user authenticated (`amr`, RFC 8176), when the token says.
    pub fn amr(&self) -> Option<&[String]> {
        self.amr.as_deref()
    }

    /// The token's id (`jti`).
    pub fn token_id(&self) -> &str {
        &self.token_id
    }

    /// When the token expires (Unix seconds).
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// The user and session of a user's token; [`DomainError::Forbidden`] for a service
    /// token, which acts for no user.
    pub fn user_session(&self) -> Result<(&str, &str), DomainError> {
        match &self.session_id {
            Some(sid) => Ok((&self.subject, sid)),
            None => Err(DomainError::Forbidden),
        }
    }
}

impl AuthService {
    /// Verifies a live access token of either format (see [`AuthService::inspect`]) and
    /// returns its caller; [`DomainError::InvalidToken`] when it is not live.
    ///
    /// A relying party's token (another client's, with a child session) acts for no user
    /// session here: the account endpoints refuse it.
    pub async fn verify_access(&self, token: &str) -> Result<Principal, DomainError> {
        let mut info = self.authenticate(token).await?;
        if info.client_id != self.config.client_id {
            info.sid = None;
        }
        Ok(Principal::from_info(info))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(scope: Option<&str>, sid: Option<&str>) -> TokenInfo {
        TokenInfo {
            sub: "usr_1".into(),
            client_id: "wristband".into(),
            aud: vec!["wristband".into()],
            scope: scope.map(str::to_owned),
            role: Some("user".into()),
            sid: sid.map(str::to_owned),
            jti: "jti_1".into(),
            iat: 10,
            iat_ms: None,
            exp: 20,
            amr: None,
            acr: None,
            auth_time: None,
        }
    }

    #[test]
    fn a_user_token_names_its_session() {
        let p = Principal::from_info(info(None, Some("ses_1")));
        assert_eq!(p.user_session().ok(), Some(("usr_1", "ses_1")));
        assert!(p.scopes().is_empty());
        assert_eq!((p.token_id(), p.expires_at()), ("jti_1", 20));
    }

    #[test]
    fn a_service_token_acts_for_no_user() {
        let p = Principal::from_info(info(Some("a  b"), None));
        assert!(matches!(p.user_session(), Err(DomainError::Forbidden)));
        assert_eq!(p.scopes(), ["a".to_owned(), "b".to_owned()]);
    }
}
