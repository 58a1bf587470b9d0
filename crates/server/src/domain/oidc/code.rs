//! Authorization codes: issued by the authorization endpoint, exchanged once at the token
//! endpoint (`grant_type=authorization_code`) for an access token, an ID token and, with
//! `offline_access`, a refresh token of a new child session.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use serde::Serialize;
use wristband_jose::{sign_claims, Algorithm};

use super::request::{SignIn, Valid};
use super::{has_scope, CODE_TTL_SECS, SCOPE_OFFLINE};
use crate::domain::oauth::{server_side, ClientCredentials, IssuedToken, OAuthError};
use crate::domain::tokens::Grant;
use crate::domain::{audit, random_id, revoke, token_hash, AuthService, DomainError};
use crate::store::{AuthCodeRecord, ClientKind, ClientRecord, SessionRecord, UserRecord};

/// The parameters of an `authorization_code` grant.
#[derive(Debug, Clone, Copy)]
pub struct CodeExchange<'a> {
    /// The code.
    pub code: &'a str,
    /// The redirect URI of the authorization request.
    pub redirect_uri: Option<&'a str>,
    /// The PKCE verifier.
    pub code_verifier: Option<&'a str>,
}

/// The claims of an ID token (OpenID Connect Core §2).
#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    amr: Vec<&'a str>,
    acr: &'a str,
    sid: &'a str,
    at_hash: String,
}

/// `at_hash`: the left half of the hash of the access token, with the hash of the
/// signing algorithm (SHA-512 for EdDSA, as for Ed25519 in OpenID Connect practice;
/// SHA-256 for the others).
pub(super) fn at_hash(alg: Algorithm, access_token: &str) -> String {
    let algorithm = if alg == Algorithm::EdDSA {
        &digest::SHA512
    } else {
        &digest::SHA256
    };
    let d = digest::digest(algorithm, access_token.as_bytes());
    let bytes = d.as_ref();
    wristband_jose::b64::encode(bytes.get(..bytes.len() / 2).unwrap_or_default())
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn is_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// S256: `BASE64URL(SHA256(verifier)) == challenge`, compared in constant time.
fn pkce_ok(verifier: &str, challenge: &str) -> bool {
    let d = digest::digest(&digest::SHA256, verifier.as_bytes());
    let computed = wristband_jose::b64::encode(d.as_ref());
    verify_slices_are_equal(computed.as_bytes(), challenge.as_bytes()).is_ok()
}

fn new_code() -> Result<String, DomainError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|e| DomainError::internal_because("random bytes", e))?;
    Ok(wristband_jose::b64::encode(bytes))
}

impl AuthService {
    /// Issues a code for a valid request and a live sign-in, and returns the redirect that
    /// carries it back to the client.
    pub(super) async fn issue_code(
        &self,
        valid: &Valid,
        sign_in: &SignIn,
        now: i64,
    ) -> Result<String, DomainError> {
        let code = new_code()?;
        let record = AuthCodeRecord {
            client_id: valid.checked.client.id.clone(),
            user_id: sign_in.session.user_id.clone(),
            session_id: sign_in.session.id.clone(),
            redirect_uri: valid.checked.redirect_uri.clone(),
            scope: valid.scopes.join(" "),
            nonce: valid.nonce.clone(),
            code_challenge: valid.challenge.clone(),
            auth_time: sign_in.session.auth_time,
            amr: sign_in.session.amr.clone(),
            created_at: now,
            expires_at: now.saturating_add(CODE_TTL_SECS),
            used_at: None,
            child_session_id: None,
        };
        self.store
            .put_auth_code(&token_hash(&code), &record)
            .await?;
        audit!("authorization_code_issued", user_id = %record.user_id, client_id = %record.client_id);
        Ok(valid.checked.redirect(self.issuer(), &[("code", &code)]))
    }

    /// Authenticates a relying party at the token endpoint: a `web` client by its secret
    /// (Basic or form, compared in constant time, by hash), a `public` client by its id
    /// alone (PKCE is its proof). `None` when `creds` do not name a relying party.
    pub(crate) async fn authenticate_relying_party(
        &self,
        creds: Option<&ClientCredentials>,
    ) -> Result<Option<ClientRecord>, OAuthError> {
        let Some(creds) = creds else {
            return Ok(None);
        };
        let record = self
            .store
            .client(&creds.id)
            .await
            .map_err(|e| server_side(e.into(), "looking up a client"))?;
        let Some(client) = record.filter(|c| c.kind.is_relying_party()) else {
            return Ok(None);
        };
        let ok = match (&creds.secret, client.kind) {
            (None, ClientKind::Public) => true,
            (Some(secret), ClientKind::Web) => {
                let presented = token_hash(secret.expose());
                verify_slices_are_equal(&presented, &client.secret_hash).is_ok()
            }
            _ => false,
        };
        if ok {
            Ok(Some(client))
        } else {
            audit!("client_auth_failed", client_id = %creds.id);
            Err(OAuthError::InvalidClient)
        }
    }

    /// `grant_type=authorization_code`. A code used a second time revokes the child session
    /// its first use made, and with it every token issued from it (RFC 6749 §4.1.2).
    pub async fn authorization_code_grant(
        &self,
        creds: Option<ClientCredentials>,
        ex: CodeExchange<'_>,
    ) -> Result<IssuedToken, OAuthError> {
        let client = match self.authenticate_relying_party(creds.as_ref()).await? {
            Some(c) => c,
            None if creds.is_none() => return Err(OAuthError::InvalidClient),
            // A known client of another kind, or an unknown one.
            None => {
                self.authenticate_client(creds).await?;
                return Err(OAuthError::UnauthorizedClient);
            }
        };
        self.exchange(&client, ex).await.map_err(|e| match e {
            DomainError::InvalidGrant => OAuthError::InvalidGrant,
            DomainError::InvalidRequest { .. } => OAuthError::InvalidRequest,
            e => server_side(e, "authorization code grant"),
        })
    }

    async fn exchange(
        &self,
        client: &ClientRecord,
        ex: CodeExchange<'_>,
    ) -> Result<IssuedToken, DomainError> {
        let (Some(redirect_uri), Some(verifier)) = (ex.redirect_uri, ex.code_verifier) else {
            return Err(DomainError::invalid(
                "redirect_uri and code_verifier are required",
            ));
        };
        if ex.code.len() != 43 {
            return Err(DomainError::InvalidGrant);
        }
        let now = self.now();
        let child_id = random_id("ses_")?;
        let Some(code) = self
            .store
            .use_auth_code(&token_hash(ex.code), &child_id, now)
            .await?
        else {
            return Err(DomainError::InvalidGrant);
        };
        if code.used_at.is_some() {
            if let Some(child) = &code.child_session_id {
                let revoked = revoke::revoke_session(
                    &*self.store,
                    self.record_lifetime(),
                    child,
                    "authorization_code_reuse",
                    now,
                )
                .await?;
                if revoked.is_some() {
                    self.feed_changed();
                }
            }
            tracing::warn!(
                target: "wristband::audit",
                event = "authorization_code_reuse_detected",
                client_id = %client.id,
                user_id = %code.user_id,
            );
            return Err(DomainError::InvalidGrant);
        }
        let bound = code.client_id == client.id
            && code.redirect_uri == redirect_uri
            && now < code.expires_at
            && is_verifier(verifier)
            && pkce_ok(verifier, &code.code_challenge);
        if !bound {
            audit!("authorization_code_refused", client_id = %client.id, user_id = %code.user_id);
            return Err(DomainError::InvalidGrant);
        }
        let parent = match self.store.session(&code.session_id).await? {
            Some(s) if s.revoked_at.is_none() && now < s.absolute_expires_at => s,
            _ => return Err(DomainError::InvalidGrant),
        };
        let user = match self.store.user_by_id(&code.user_id).await? {
            Some(u) if !u.disabled => u,
            _ => return Err(DomainError::InvalidGrant),
        };
        let offline = has_scope(Some(&code.scope), SCOPE_OFFLINE);
        let refresh_token = crate::domain::new_refresh_token()?;
        let absolute = wristband_jose::secs_i64(self.config.refresh_absolute_ttl);
        let child = SessionRecord {
            id: child_id,
            user_id: user.id.clone(),
            client_id: client.id.clone(),
            created_at: now,
            last_used_at: now,
            absolute_expires_at: now.saturating_add(absolute),
            generation: 0,
            rotated_at: None,
            revoked_at: None,
            user_agent: None,
            ip: None,
            parent_id: Some(parent.id.clone()),
            offline,
            scope: Some(code.scope.clone()),
            amr: code.amr.clone(),
            auth_time: code.auth_time,
        };
        self.store
            .create_session(&child, &token_hash(&refresh_token))
            .await?;
        let access_token = self
            .issue_access(
                self.rp_grant(&user, &child, client),
                client.token_format,
                now,
            )
            .await?;
        let id_token = self.id_token(&code, &access_token, now)?;
        audit!("authorization_code_exchanged", user_id = %user.id, client_id = %client.id, session_id = %child.id);
        Ok(IssuedToken {
            access_token,
            expires_in: self.config.access_ttl.as_secs(),
            scope: Some(code.scope),
            refresh_token: offline.then_some(refresh_token),
            id_token: Some(id_token),
        })
    }

    /// The access-token grant of a relying party's child session: its audiences and the
    /// userinfo endpoint's, its scopes, the child as `sid`.
    pub(crate) fn rp_grant(
        &self,
        user: &UserRecord,
        session: &SessionRecord,
        client: &ClientRecord,
    ) -> Grant {
        let mut aud = client.audiences.clone();
        aud.push(self.userinfo_audience());
        Grant {
            sub: user.id.clone(),
            client_id: client.id.clone(),
            aud,
            scope: session.scope.clone(),
            role: None,
            sid: Some(session.id.clone()),
            authn: Grant::authn_of(session),
        }
    }

    /// Signs the ID token of a code exchange with the key ring's current key.
    fn id_token(
        &self,
        code: &AuthCodeRecord,
        access_token: &str,
        now: i64,
    ) -> Result<String, DomainError> {
        let ring = self.keys.ring();
        let key = ring.signing();
        let ttl = wristband_jose::secs_i64(self.config.access_ttl);
        let claims = IdTokenClaims {
            iss: self.issuer(),
            sub: &code.user_id,
            aud: &code.client_id,
            azp: &code.client_id,
            exp: now.saturating_add(ttl),
            iat: now,
            auth_time: code.auth_time,
            nonce: code.nonce.as_deref(),
            amr: code.amr.split_whitespace().collect(),
            acr: crate::domain::mfa::acr_of(&code.amr.split_whitespace().collect::<Vec<_>>()),
            sid: &code.session_id,
            at_hash: at_hash(key.algorithm(), access_token),
        };
        sign_claims(key, None, &claims)
            .map_err(|e| DomainError::internal_because("signing an ID token", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    #[test]
    fn pkce_s256_of_the_rfc_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_verifier(verifier));
        assert!(pkce_ok(verifier, challenge));
        assert!(!pkce_ok(challenge, challenge));
        assert!(!is_verifier("short"));
        assert!(!is_verifier(&"a".repeat(129)));
        assert!(!is_verifier(&format!("{}!", "a".repeat(43))));
    }

    /// OpenID Connect Core §3.1.3.6, with the example of its Appendix A.3 (RS256).
    #[test]
    fn at_hash_is_the_left_half_of_the_hash() {
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(at_hash(Algorithm::RS256, token), "77QmUPtjPfzWtF2AnpK9RQ");
        assert_eq!(at_hash(Algorithm::EdDSA, token).len(), 43);
    }
}
