//! OAuth 2.0 clients: registration, client authentication, the client-credentials grant,
//! token revocation (RFC 7009) and introspection (RFC 7662).

use aws_lc_rs::constant_time::verify_slices_are_equal;
use wristband_jose::{dangerous, Claims, SecretString, UnixTime, UnverifiedToken, Verified};

use super::revoke::{revoke_session, revoke_token};
use super::tokens::{Grant, TokenFormat, TokenInfo, OPAQUE_PREFIX};
use super::{audit, random_id, token_hash, AuthService, DomainError};
use crate::store::{ClientKind, ClientRecord, RevocationKind, RevocationRecord, Store};

/// The scope a resource server needs to read the revocation feed.
pub const SCOPE_REVOCATIONS_READ: &str = "revocations:read";

/// Client kinds.
pub const KIND_SERVICE: &str = "service";
/// A resource server: may introspect tokens and read the revocation feed.
pub const KIND_RESOURCE_SERVER: &str = "resource-server";

/// An OAuth error answered by the token, revocation and introspection endpoints
/// (RFC 6749 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// Client authentication failed (401 with `WWW-Authenticate: Basic`).
    #[error("invalid_client")]
    InvalidClient,
    /// The grant is invalid, expired, revoked or not this client's.
    #[error("invalid_grant")]
    InvalidGrant,
    /// A scope or audience outside the client's registration.
    #[error("invalid_scope")]
    InvalidScope,
    /// A service client registered without an audience asked for a token: it has no
    /// audience its token could carry (`invalid_scope`, with a description telling the
    /// administrator to register one).
    #[error("invalid_scope")]
    NoAudience,
    /// Not `client_credentials` or `refresh_token`.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// The client may not use this grant or endpoint.
    #[error("unauthorized_client")]
    UnauthorizedClient,
    /// A required parameter is missing or repeated.
    #[error("invalid_request")]
    InvalidRequest,
    /// The store cannot be reached: retry later (503). Never reported as `invalid_grant`,
    /// which would tell a client to throw its refresh token away.
    #[error("temporarily_unavailable")]
    TemporarilyUnavailable,
    /// An unexpected failure (500); the cause goes to the log only.
    #[error("server_error")]
    ServerError,
}

/// A failure on the server's side, as an OAuth error: 503 for an unreachable store, 500
/// for anything else. The cause is logged here, where it is dropped from the answer.
pub(crate) fn server_side(e: DomainError, what: &'static str) -> OAuthError {
    tracing::error!(error = %super::Chain(&e), "{what}");
    match e {
        DomainError::Unavailable { .. } => OAuthError::TemporarilyUnavailable,
        _ => OAuthError::ServerError,
    }
}

/// Credentials presented by a client.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// `client_id`.
    pub id: String,
    /// `client_secret`, if any (public clients have none).
    pub secret: Option<SecretString>,
}

/// A newly registered client, with its secret shown once.
#[derive(Debug)]
pub struct NewClient {
    /// The stored record.
    pub record: ClientRecord,
    /// The secret; only its hash is kept.
    pub secret: SecretString,
}

fn new_secret() -> Result<SecretString, DomainError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|e| DomainError::internal_because("random bytes", e))?;
    Ok(SecretString::new(format!(
        "wbs_{}",
        wristband_jose::b64::encode(bytes)
    )))
}

pub(crate) fn check_words(words: &[String], what: &str) -> Result<(), DomainError> {
    let ok = words.iter().all(|w| {
        !w.is_empty()
            && w.len() <= 128
            && w.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    });
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(format!("invalid {what}")))
    }
}

/// Registers a client. Resource servers always get [`SCOPE_REVOCATIONS_READ`]. OpenID
/// Connect relying parties are registered by [`super::oidc::add_relying_party`].
pub async fn add_client(
    store: &dyn Store,
    name: &str,
    kind: &str,
    scopes: Vec<String>,
    audiences: Vec<String>,
    format: TokenFormat,
    now: i64,
) -> Result<NewClient, DomainError> {
    let kind = match ClientKind::parse(kind) {
        Some(k @ (ClientKind::Service | ClientKind::ResourceServer)) => k,
        _ => {
            return Err(DomainError::invalid(
                "kind must be service or resource-server",
            ))
        }
    };
    let mut scopes = scopes;
    if kind == ClientKind::ResourceServer && !scopes.iter().any(|s| s == SCOPE_REVOCATIONS_READ) {
        scopes.push(SCOPE_REVOCATIONS_READ.to_owned());
    }
    let new = add_client_unchecked(name, kind, scopes, audiences, format, now)?;
    store.create_client(&new.record).await?;
    audit!("client_created", client_id = %new.record.id, kind = kind.as_str());
    Ok(new)
}

/// A new client record with a fresh id and secret, its name, scopes and audiences
/// checked, not stored yet.
pub(crate) fn add_client_unchecked(
    name: &str,
    kind: ClientKind,
    scopes: Vec<String>,
    audiences: Vec<String>,
    format: TokenFormat,
    now: i64,
) -> Result<NewClient, DomainError> {
    super::users::check_username(name)?;
    check_words(&scopes, "scope")?;
    check_words(&audiences, "audience")?;
    let secret = new_secret()?;
    let record = ClientRecord {
        id: random_id("cli_")?,
        name: name.to_owned(),
        kind,
        secret_hash: token_hash(secret.expose()),
        scopes,
        audiences,
        token_format: format,
        created_at: now,
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        backchannel_logout_uri: None,
        first_party: false,
    };
    Ok(NewClient { record, secret })
}

/// Replaces a client's secret and returns the new one. Every token issued to the client
/// until now is revoked (a `sub` record for the client id, reason `client_secret_rotated`),
/// so that tokens got with the old secret stop everywhere, and open feed streams of the
/// client end through the same record.
pub async fn rotate_client_secret(
    store: &dyn Store,
    life: super::RecordLifetime,
    name: &str,
    now: super::revoke::Millis,
) -> Result<NewClient, DomainError> {
    let record = store
        .client_by_name(name)
        .await?
        .ok_or(DomainError::NotFound)?;
    let secret = new_secret()?;
    store
        .set_client_secret(&record.id, &token_hash(secret.expose()))
        .await?;
    audit!("client_secret_rotated", client_id = %record.id);
    super::revoke::revoke_subject(store, life, &record.id, "client_secret_rotated", now).await?;
    Ok(NewClient { record, secret })
}

/// Removes a client by name, and revokes every token issued to it (their `sub` is the
/// client id).
pub async fn remove_client(
    store: &dyn Store,
    life: super::RecordLifetime,
    name: &str,
    now: super::revoke::Millis,
) -> Result<ClientRecord, DomainError> {
    let record = store
        .client_by_name(name)
        .await?
        .ok_or(DomainError::NotFound)?;
    store.remove_client(&record.id).await?;
    super::revoke::revoke_subject(store, life, &record.id, "client_removed", now).await?;
    audit!("client_removed", client_id = %record.id);
    Ok(record)
}

/// Who is calling an OAuth endpoint, once authenticated.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// The first-party public client (`client_id` in the configuration), without a secret.
    FirstParty(String),
    /// A registered confidential client.
    Registered(ClientRecord),
}

impl Caller {
    fn id(&self) -> &str {
        match self {
            Caller::FirstParty(id) => id,
            Caller::Registered(c) => &c.id,
        }
    }
}

/// The response of a successful token request.
#[derive(Debug)]
pub struct IssuedToken {
    /// The access token.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: u64,
    /// Granted scope.
    pub scope: Option<String>,
    /// A refresh token (refresh grant, and code grant with `offline_access`).
    pub refresh_token: Option<String>,
    /// An ID token (code grant).
    pub id_token: Option<String>,
}

impl AuthService {
    /// The audience of a resource server's `client_credentials` token: the issuer's feed
    /// URL, which names the auth service's own feed and introspection. No API is
    /// configured with it, so no API accepts such a token.
    pub fn feed_audience(&self) -> String {
        format!("{}/v1/revocations", self.issuer().trim_end_matches('/'))
    }

    /// Authenticates a client. A registered client must present its secret (compared in
    /// constant time, by hash); the first-party client id may come without one.
    pub(crate) async fn authenticate_client(
        &self,
        creds: Option<ClientCredentials>,
    ) -> Result<Caller, OAuthError> {
        let creds = creds.ok_or(OAuthError::InvalidClient)?;
        if creds.id == self.config.client_id && creds.secret.is_none() {
            return Ok(Caller::FirstParty(creds.id));
        }
        let secret = creds.secret.ok_or(OAuthError::InvalidClient)?;
        let record = self
            .store
            .client(&creds.id)
            .await
            .map_err(|e| server_side(e.into(), "looking up a client"))?;
        // Hash whatever was presented, even for an unknown id, so both cost the same.
        let presented = token_hash(secret.expose());
        match record {
            Some(c) if verify_slices_are_equal(&presented, &c.secret_hash).is_ok() => {
                Ok(Caller::Registered(c))
            }
            _ => {
                audit!("client_auth_failed", client_id = %creds.id);
                Err(OAuthError::InvalidClient)
            }
        }
    }

    /// `grant_type=client_credentials`: a token for the client itself, with scope and
    /// audience bounded by its registration.
    pub async fn client_credentials(
        &self,
        creds: Option<ClientCredentials>,
        scope: Option<&str>,
        audience: Option<&str>,
    ) -> Result<IssuedToken, OAuthError> {
        let Caller::Registered(client) = self.authenticate_client(creds).await? else {
            return Err(OAuthError::UnauthorizedClient);
        };
        let granted: Vec<&str> = match scope {
            Some(s) => {
                let asked: Vec<&str> = s.split(' ').filter(|w| !w.is_empty()).collect();
                if asked.is_empty() || asked.iter().any(|a| !client.scopes.iter().any(|s| s == a)) {
                    return Err(OAuthError::InvalidScope);
                }
                asked
            }
            None => client.scopes.iter().map(String::as_str).collect(),
        };
        let aud = if client.kind == ClientKind::ResourceServer {
            // A resource server's token is for the auth service's own feed and
            // introspection only: never an audience an API accepts.
            let feed = self.feed_audience();
            match audience {
                Some(a) if a != feed => return Err(OAuthError::InvalidScope),
                _ => feed,
            }
        } else {
            match audience {
                Some(a) if client.audiences.iter().any(|x| x == a) => a.to_owned(),
                Some(_) => return Err(OAuthError::InvalidScope),
                // Never the user audience: every API that accepts user tokens would
                // accept this one too.
                None => client
                    .audiences
                    .first()
                    .cloned()
                    .ok_or(OAuthError::NoAudience)?,
            }
        };
        let scope = (!granted.is_empty()).then(|| granted.join(" "));
        let format = client.token_format;
        let now = self.now();
        let access_token = self
            .issue_access(
                Grant {
                    sub: client.id.clone(),
                    client_id: client.id.clone(),
                    aud: vec![aud],
                    scope: scope.clone(),
                    role: None,
                    sid: None,
                    authn: None,
                },
                format,
                now,
            )
            .await
            .map_err(|e| server_side(e, "issuing a client token"))?;
        audit!("client_token_issued", client_id = %client.id, scope = scope.as_deref());
        Ok(IssuedToken {
            access_token,
            expires_in: self.config.access_ttl.as_secs(),
            scope,
            refresh_token: None,
            id_token: None,
        })
    }

    /// `grant_type=refresh_token` at the OAuth endpoint: the `/v1/refresh` rules, for the
    /// client the session belongs to (the first-party client, or the relying party of a
    /// child session).
    pub async fn refresh_grant(
        &self,
        creds: Option<ClientCredentials>,
        refresh_token: &str,
        client: &super::ClientInfo,
    ) -> Result<IssuedToken, OAuthError> {
        let relying_party = self.authenticate_relying_party(creds.as_ref()).await?;
        let caller = match &relying_party {
            Some(rp) => rp.id.clone(),
            None => self.authenticate_client(creds).await?.id().to_owned(),
        };
        let found = self
            .refresh_lookup(refresh_token)
            .await
            .map_err(|e| server_side(e, "refresh grant"))?;
        // Sessions belong to the first-party client or to one relying party.
        let Some((record, session)) = found.filter(|(_, s)| s.client_id == caller) else {
            return Err(OAuthError::InvalidGrant);
        };
        let scope = session.scope.clone();
        let pair = self
            .refresh_found(
                refresh_token,
                record,
                session,
                relying_party.as_ref(),
                client,
            )
            .await
            .map_err(|e| match e {
                DomainError::Unavailable { .. } | DomainError::Internal { .. } => {
                    server_side(e, "refresh grant")
                }
                _ => OAuthError::InvalidGrant,
            })?;
        Ok(IssuedToken {
            access_token: pair.access_token,
            expires_in: pair.expires_in,
            scope,
            refresh_token: Some(pair.refresh_token),
            id_token: None,
        })
    }

    /// RFC 7009: revokes a refresh or access token of the calling client. Unknown tokens
    /// are not an error.
    pub async fn revoke_oauth(
        &self,
        creds: Option<ClientCredentials>,
        token: &str,
        hint: Option<&str>,
    ) -> Result<(), OAuthError> {
        let caller = self.authenticate_client(creds).await?;
        let now = self.now();
        let result: Result<(), DomainError> = async {
            let as_refresh = hint != Some("access_token") || !token.contains('.');
            if as_refresh {
                if let Some(r) = self.store.refresh_token(&token_hash(token)).await? {
                    if let Some(s) = self.store.session(&r.session_id).await? {
                        if s.client_id == caller.id() {
                            revoke_session(
                                &*self.store,
                                self.record_lifetime(),
                                &s.id,
                                "oauth_revoke",
                                now,
                            )
                            .await?;
                            self.feed_changed();
                        }
                    }
                    return Ok(());
                }
            }
            if token.contains('.') || token.starts_with(OPAQUE_PREFIX) {
                if let Ok(Some(info)) = self.inspect(token).await {
                    if info.client_id == caller.id() {
                        revoke_token(&*self.store, &info.jti, info.exp, "oauth_revoke", now)
                            .await?;
                        self.feed_changed();
                    }
                }
            }
            Ok(())
        }
        .await;
        result.map_err(|e| server_side(e, "revocation failed"))
    }

    /// RFC 7662: what a token says, for resource servers only. `None` means inactive.
    pub async fn introspect(
        &self,
        creds: Option<ClientCredentials>,
        token: &str,
    ) -> Result<Option<TokenInfo>, OAuthError> {
        match self.authenticate_client(creds).await? {
            Caller::Registered(c) if c.kind == ClientKind::ResourceServer => {}
            _ => return Err(OAuthError::UnauthorizedClient),
        }
        match self.inspect(token).await {
            Ok(info) => Ok(info),
            Err(DomainError::InvalidToken { .. }) => Ok(None),
            Err(e) => Err(server_side(e, "introspection failed")),
        }
    }

    /// Checks a bearer token allowed to read the revocation feed: a resource server's token
    /// with the `revocations:read` scope. Returns the reader, so that an open stream can
    /// end when a record it passes on revokes the reader ([`FeedReader::revoked_by`]).
    pub async fn authorize_feed(&self, token: Option<&str>) -> Result<FeedReader, DomainError> {
        if self.config.revocation_feed_public {
            return Ok(FeedReader { token: None });
        }
        let info = self
            .authenticate(token.ok_or(DomainError::MissingToken)?)
            .await?;
        let scoped = info
            .scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|x| x == SCOPE_REVOCATIONS_READ));
        match self.store.client(&info.client_id).await? {
            Some(c) if c.kind == ClientKind::ResourceServer => {}
            _ => return Err(DomainError::Forbidden),
        }
        if !scoped {
            return Err(DomainError::Forbidden);
        }
        Ok(FeedReader { token: Some(info) })
    }
}

/// Who reads the revocation feed, as [`AuthService::authorize_feed`] found it.
#[derive(Clone)]
pub struct FeedReader {
    /// The reader's token; `None` when the feed is public.
    token: Option<TokenInfo>,
}

impl FeedReader {
    /// When the reader's token expires (Unix seconds); `None` for a public feed.
    pub fn expires_at(&self) -> Option<i64> {
        self.token.as_ref().map(|info| info.exp)
    }

    /// True when `record`, unexpired at `now`, revokes the reader's token: by its `jti`, its
    /// `sid`, or a cut-off for its `sub` (the client id: the client's removal and the
    /// rotation of its secret record one) at or after its issue time. The same rules as
    /// [`Store::is_revoked`], in memory: milliseconds when both sides have them, else
    /// whole seconds.
    pub fn revoked_by(&self, record: &RevocationRecord, now: i64) -> bool {
        let Some(info) = &self.token else {
            return false;
        };
        if record.expires_at <= now {
            return false;
        }
        match record.kind {
            RevocationKind::Jti => record.value == info.jti,
            RevocationKind::Sid => info.sid.as_deref() == Some(record.value.as_str()),
            RevocationKind::Sub => {
                record.value == info.sub
                    && match (record.before_ms, info.iat_ms) {
                        (Some(before_ms), Some(iat_ms)) => before_ms >= iat_ms,
                        _ => record.before.is_some_and(|before| before >= info.iat),
                    }
            }
            // Not matched (nor by the store's check): the reader's key id is not kept. A
            // token of a revoked key is refused when the stream is opened again, and the
            // stream ends at the token's expiry.
            RevocationKind::Kid => false,
        }
    }
}

impl std::fmt::Debug for FeedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedReader")
            .field("client_id", &self.token.as_ref().map(|i| &i.client_id))
            .field("expires_at", &self.expires_at())
            .finish_non_exhaustive()
    }
}

impl AuthService {
    /// Verifies a client's token issued for one of that client's registered audiences
    /// (rather than the service's own), or for a resource server, for the feed audience.
    /// `None` when the token names the first-party client, or no registered client with
    /// audiences: the service's own audience is then the one to check.
    pub(super) async fn verify_for_client_audiences(
        &self,
        token: &str,
        now_t: UnixTime,
    ) -> Result<Option<Result<Verified<Claims>, wristband_jose::Error>>, DomainError> {
        // Only to find which client's audiences to accept: the token is then fully verified,
        // and its signed payload is the one read here.
        let client_id = dangerous::decode_without_verification(token)
            .ok()
            .and_then(|d| d.payload.get("client_id")?.as_str().map(str::to_owned));
        let Some(client_id) = client_id.filter(|id| *id != self.config.client_id) else {
            return Ok(None);
        };
        let Some(client) = self.store.client(&client_id).await? else {
            return Ok(None);
        };
        // A resource server's own token names the feed (see `feed_audience`), whatever
        // audiences were registered for it.
        let audiences = if client.kind == ClientKind::ResourceServer {
            vec![self.feed_audience()]
        } else if client.kind.is_relying_party() {
            let mut a = client.audiences;
            a.push(self.userinfo_audience());
            a
        } else {
            client.audiences
        };
        if audiences.is_empty() {
            return Ok(None);
        }
        let ring = self.keys.ring();
        let policy = self
            .keys
            .policy_template()
            .build(ring.algorithms(), Some(audiences))?;
        let verified =
            UnverifiedToken::parse(token).and_then(|t| t.verify(ring.keyset(), &policy, now_t));
        Ok(Some(verified))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> FeedReader {
        FeedReader {
            token: Some(TokenInfo {
                sub: "cli_reader".into(),
                client_id: "cli_reader".into(),
                aud: vec![],
                scope: Some(SCOPE_REVOCATIONS_READ.into()),
                role: None,
                sid: None,
                jti: "jti-1".into(),
                iat: 1_000,
                iat_ms: Some(1_000_500),
                exp: 1_900,
                amr: None,
                acr: None,
                auth_time: None,
            }),
        }
    }

    fn record(kind: RevocationKind, value: &str, before_ms: Option<i64>) -> RevocationRecord {
        RevocationRecord {
            id: 1,
            kind,
            value: value.into(),
            before: Some(1_000),
            before_ms,
            created_at: 1_000,
            expires_at: 2_000,
        }
    }

    /// The in-memory check of an open stream's reader follows `Store::is_revoked`.
    #[test]
    fn a_reader_is_revoked_by_its_jti_or_a_cutoff_covering_its_issue_time() {
        let r = reader();
        assert!(r.revoked_by(&record(RevocationKind::Jti, "jti-1", None), 1_100));
        assert!(!r.revoked_by(&record(RevocationKind::Jti, "jti-2", None), 1_100));
        // Expired records revoke nothing.
        assert!(!r.revoked_by(&record(RevocationKind::Jti, "jti-1", None), 2_000));
        // A subject cut-off: milliseconds when both sides have them, else seconds.
        let sub = RevocationKind::Sub;
        assert!(r.revoked_by(&record(sub, "cli_reader", Some(1_000_500)), 1_100));
        assert!(!r.revoked_by(&record(sub, "cli_reader", Some(1_000_499)), 1_100));
        assert!(r.revoked_by(&record(sub, "cli_reader", None), 1_100));
        assert!(!r.revoked_by(&record(sub, "cli_other", None), 1_100));
        // No sid on a client token; and a public feed has no reader to revoke.
        assert!(!r.revoked_by(&record(RevocationKind::Sid, "", None), 1_100));
        let public = FeedReader { token: None };
        assert!(!public.revoked_by(&record(RevocationKind::Jti, "jti-1", None), 1_100));
    }
}
