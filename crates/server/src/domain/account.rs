//! What a logged-in caller does to their own account and sessions: log out (one session
//! or all), list and end sessions, change the password, read their user. Each method takes
//! the verified [`Principal`], never a token.

use wristband_jose::SecretString;

use super::{
    audit, looks_like_refresh_token, revoke, throttle, token_hash, users, AuthService, ClientInfo,
    DomainError, Principal,
};
use crate::store::{SessionRecord, UserRecord};

impl AuthService {
    /// Ends the caller's session and revokes their token everywhere; also ends the session
    /// of `refresh_token` if it is the same user's.
    pub async fn logout(
        &self,
        caller: &Principal,
        refresh_token: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(), DomainError> {
        let now = self.now();
        let life = self.record_lifetime();
        if let Some(sid) = caller.session_id() {
            revoke::revoke_session(&*self.store, life, sid, "logout", now).await?;
        }
        let (jti, exp) = (caller.token_id(), caller.expires_at());
        revoke::revoke_token(&*self.store, jti, exp, "logout", now).await?;
        audit!("logout", user_id = %caller.subject(), session_id = caller.session_id(), ip = client.ip.as_deref());
        if let Some(rt) = refresh_token.filter(|t| looks_like_refresh_token(t)) {
            if let Some(record) = self.store.refresh_token(&token_hash(rt)).await? {
                if let Some(s) = self.store.session(&record.session_id).await? {
                    if s.user_id == caller.subject() {
                        revoke::revoke_session(&*self.store, life, &s.id, "logout", now).await?;
                    }
                }
            }
        }
        self.feed_changed();
        Ok(())
    }

    /// The session a refresh token belongs to (also for a predecessor still within its
    /// grace window), or `None` for an unknown or malformed token. Nothing is changed.
    pub async fn refresh_session_id(&self, token: &str) -> Result<Option<String>, DomainError> {
        if !looks_like_refresh_token(token) {
            return Ok(None);
        }
        Ok(self
            .store
            .refresh_token(&token_hash(token))
            .await?
            .map(|r| r.session_id))
    }

    /// Ends the session of a refresh token alone: logout when the access token is already
    /// gone (browsers drop an expired access cookie). An unknown token is not an error.
    pub async fn logout_refresh(
        &self,
        refresh_token: &str,
        client: &ClientInfo,
    ) -> Result<(), DomainError> {
        let Some(sid) = self.refresh_session_id(refresh_token).await? else {
            return Ok(());
        };
        let Some(session) = self.store.session(&sid).await? else {
            return Ok(());
        };
        if session.revoked_at.is_none() {
            let now = self.now();
            revoke::revoke_session(&*self.store, self.record_lifetime(), &sid, "logout", now)
                .await?;
            audit!("logout", user_id = %session.user_id, session_id = %sid, ip = client.ip.as_deref());
            self.feed_changed();
        }
        Ok(())
    }

    /// Changes the password of the caller's user after checking the current one (wrong
    /// answers count towards login throttling). Ends all their sessions, this one too.
    pub async fn change_password(
        &self,
        caller: &Principal,
        current: SecretString,
        new: SecretString,
        client: &ClientInfo,
    ) -> Result<(), DomainError> {
        let user = self.me(caller).await?;
        let now = self.now();
        let mut throttle = throttle::Keys::new(&user.username, client.ip.as_deref());
        if let Some(retry_after) = throttle.blocked(self, now).await? {
            return Err(DomainError::Throttled { retry_after });
        }
        let verdict = self
            .passwords
            .verify(current, Some(user.password_hash.clone()))
            .await?;
        if !verdict.ok {
            throttle.record_failure(self, now).await?;
            audit!("password_change_refused", user_id = %user.id, ip = client.ip.as_deref());
            return Err(DomainError::InvalidCredentials);
        }
        users::set_password(
            &*self.store,
            self.record_lifetime(),
            &self.passwords,
            &user.username,
            new,
            self.now_ms(),
        )
        .await?;
        self.feed_changed();
        Ok(())
    }

    /// "Log out everywhere": ends every session of the caller's user and revokes every
    /// token issued to them until now.
    pub async fn logout_all(
        &self,
        caller: &Principal,
        client: &ClientInfo,
    ) -> Result<(), DomainError> {
        let (user_id, _) = caller.user_session()?;
        revoke::revoke_subject(
            &*self.store,
            self.record_lifetime(),
            user_id,
            "logout_all",
            self.now_ms(),
        )
        .await?;
        audit!("logout_all", user_id = %user_id, ip = client.ip.as_deref());
        self.feed_changed();
        Ok(())
    }

    /// The live sessions of the caller's user.
    pub async fn sessions(&self, caller: &Principal) -> Result<Vec<SessionRecord>, DomainError> {
        let (user_id, _) = caller.user_session()?;
        let now = self.now();
        let idle = wristband_jose::secs_i64(self.config.refresh_idle_ttl);
        let mut sessions = self.store.user_sessions(user_id, now).await?;
        // A session idle for longer than the idle lifetime is over (its refresh token is
        // refused), even before a refresh attempt marks it so.
        sessions.retain(|s| now < s.last_used_at.saturating_add(idle));
        Ok(sessions)
    }

    /// Revokes one of the caller's user's own sessions.
    pub async fn revoke_own_session(
        &self,
        caller: &Principal,
        session_id: &str,
    ) -> Result<(), DomainError> {
        let (user_id, _) = caller.user_session()?;
        match self.store.session(session_id).await? {
            Some(s) if s.user_id == user_id && s.revoked_at.is_none() => {
                revoke::revoke_session(
                    &*self.store,
                    self.record_lifetime(),
                    session_id,
                    "user_revoked",
                    self.now(),
                )
                .await?;
                self.feed_changed();
                Ok(())
            }
            _ => Err(DomainError::NotFound),
        }
    }

    /// The caller's user: refused for a service token, and as an invalid token when the
    /// user is gone or disabled.
    pub async fn me(&self, caller: &Principal) -> Result<UserRecord, DomainError> {
        let (user_id, _) = caller.user_session()?;
        match self.store.user_by_id(user_id).await? {
            Some(u) if !u.disabled => Ok(u),
            _ => Err(DomainError::InvalidToken { expired: false }),
        }
    }
}
