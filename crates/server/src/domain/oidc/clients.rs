//! Registering and changing OpenID Connect relying parties (`web` and `public` clients).

use super::redirect::{self, Holder};
use super::{SCOPES_SUPPORTED, SCOPE_OPENID};
use crate::domain::oauth::NewClient;
use crate::domain::{audit, DomainError, TokenFormat};
use crate::store::{ClientKind, ClientRecord, Store};

/// What a relying party is registered with, besides its name and kind.
#[derive(Debug, Clone, Default)]
pub struct RelyingParty {
    /// Where the authorization endpoint may send the user back.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the user back.
    pub post_logout_redirect_uris: Vec<String>,
    /// Where back-channel logout tokens go.
    pub backchannel_logout_uri: Option<String>,
    /// No consent page.
    pub first_party: bool,
    /// The scopes it may ask for (`openid` is always added).
    pub scopes: Vec<String>,
    /// The audiences of its access tokens (besides userinfo).
    pub audiences: Vec<String>,
}

/// Changes to a client; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    /// New redirect URIs.
    pub redirect_uris: Option<Vec<String>>,
    /// New post-logout redirect URIs.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// A new back-channel logout URI (`Some(None)` removes it).
    pub backchannel_logout_uri: Option<Option<String>>,
    /// First-party or not.
    pub first_party: Option<bool>,
    /// New scopes.
    pub scopes: Option<Vec<String>>,
}

fn holder(kind: ClientKind) -> Holder {
    if kind == ClientKind::Public {
        Holder::Public
    } else {
        Holder::Confidential
    }
}

/// Checks the OpenID Connect settings of a client of `kind`, and adds `openid` to its
/// scopes.
fn check(record: &mut ClientRecord) -> Result<(), DomainError> {
    if !record.kind.is_relying_party() {
        let oidc = !record.redirect_uris.is_empty()
            || !record.post_logout_redirect_uris.is_empty()
            || record.backchannel_logout_uri.is_some()
            || record.first_party;
        if oidc {
            return Err(DomainError::invalid(
                "redirect URIs, logout URIs and --first-party are for web and public clients",
            ));
        }
        return Ok(());
    }
    if record.redirect_uris.is_empty() {
        return Err(DomainError::invalid(
            "a web or public client needs at least one --redirect-uri",
        ));
    }
    let holder = holder(record.kind);
    for uri in record
        .redirect_uris
        .iter()
        .chain(&record.post_logout_redirect_uris)
    {
        redirect::check(uri, holder)
            .map_err(|e| DomainError::invalid(format!("redirect URI {uri:?}: {e}")))?;
    }
    if let Some(uri) = &record.backchannel_logout_uri {
        redirect::check(uri, Holder::Confidential)
            .map_err(|e| DomainError::invalid(format!("back-channel logout URI {uri:?}: {e}")))?;
    }
    if !record.scopes.iter().any(|s| s == SCOPE_OPENID) {
        record.scopes.insert(0, SCOPE_OPENID.to_owned());
    }
    if let Some(s) = record
        .scopes
        .iter()
        .find(|s| !SCOPES_SUPPORTED.contains(&s.as_str()))
    {
        return Err(DomainError::invalid(format!(
            "scope {s:?} is not one of {}",
            SCOPES_SUPPORTED.join(", ")
        )));
    }
    Ok(())
}

/// Registers a relying party: `web` (with a secret, shown once) or `public` (no secret:
/// the stored hash is of a random value nobody is given).
pub async fn add_relying_party(
    store: &dyn Store,
    name: &str,
    kind: ClientKind,
    rp: RelyingParty,
    now: i64,
) -> Result<NewClient, DomainError> {
    if !kind.is_relying_party() {
        return Err(DomainError::invalid("kind must be web or public"));
    }
    let mut new = crate::domain::oauth::add_client_unchecked(
        name,
        kind,
        rp.scopes,
        rp.audiences,
        TokenFormat::Jwt,
        now,
    )?;
    new.record.redirect_uris = rp.redirect_uris;
    new.record.post_logout_redirect_uris = rp.post_logout_redirect_uris;
    new.record.backchannel_logout_uri = rp.backchannel_logout_uri;
    new.record.first_party = rp.first_party;
    check(&mut new.record)?;
    store.create_client(&new.record).await?;
    audit!("client_created", client_id = %new.record.id, kind = kind.as_str());
    Ok(new)
}

/// Changes a client's OpenID Connect settings or scopes, by name.
pub async fn update_client(
    store: &dyn Store,
    name: &str,
    changes: ClientChanges,
) -> Result<ClientRecord, DomainError> {
    let mut record = store
        .client_by_name(name)
        .await?
        .ok_or(DomainError::NotFound)?;
    if let Some(v) = changes.redirect_uris {
        record.redirect_uris = v;
    }
    if let Some(v) = changes.post_logout_redirect_uris {
        record.post_logout_redirect_uris = v;
    }
    if let Some(v) = changes.backchannel_logout_uri {
        record.backchannel_logout_uri = v;
    }
    if let Some(v) = changes.first_party {
        record.first_party = v;
    }
    if let Some(v) = changes.scopes {
        crate::domain::oauth::check_words(&v, "scope")?;
        record.scopes = v;
    }
    check(&mut record)?;
    if !store.update_client(&record).await? {
        return Err(DomainError::NotFound);
    }
    audit!("client_updated", client_id = %record.id);
    Ok(record)
}
