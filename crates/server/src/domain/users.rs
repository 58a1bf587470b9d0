//! User administration, shared by the CLI (on the data directory) and registration.

use wristband_jose::SecretString;

use super::password::{check_policy, Passwords};
use super::revoke::{revoke_subject, Millis, RecordLifetime};
use super::{audit, random_id, DomainError};
use crate::store::{Store, UserRecord};

/// Checks a login name: 1 to 64 characters of `[A-Za-z0-9._@+-]`.
pub fn check_username(name: &str) -> Result<(), DomainError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "username must be 1 to 64 characters of letters, digits and . _ @ + -",
        ))
    }
}

/// The form of a login name that uniqueness, lookups and throttling use: ASCII lower case
/// (names are ASCII, see [`check_username`]). Names are stored as typed.
pub fn fold_username(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Checks a role: 1 to 32 characters of `[a-z0-9_-]`.
pub fn check_role(role: &str) -> Result<(), DomainError> {
    let ok = !role.is_empty()
        && role.len() <= 32
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "role must be 1 to 32 characters of a-z, 0-9, _ and -",
        ))
    }
}

/// Adds a user after checking the name, the role and the password policy.
pub async fn add_user(
    store: &dyn Store,
    passwords: &Passwords,
    username: &str,
    password: SecretString,
    role: &str,
    now: i64,
) -> Result<UserRecord, DomainError> {
    check_username(username)?;
    check_role(role)?;
    check_policy(password.expose(), username).map_err(DomainError::invalid)?;
    let user = UserRecord {
        id: random_id("usr_")?,
        username: username.to_owned(),
        password_hash: passwords.hash(password).await?,
        role: role.to_owned(),
        disabled: false,
        created_at: now,
    };
    store.create_user(&user).await?;
    audit!("user_created", user_id = %user.id, role);
    Ok(user)
}

/// A user by name; [`DomainError::NotFound`] when there is none.
pub async fn find(store: &dyn Store, username: &str) -> Result<UserRecord, DomainError> {
    store
        .user_by_name(username)
        .await?
        .ok_or(DomainError::NotFound)
}

/// Disables (or re-enables) a user. Disabling ends all their sessions and revokes every
/// token issued to them.
pub async fn set_disabled(
    store: &dyn Store,
    life: RecordLifetime,
    username: &str,
    disabled: bool,
    now: Millis,
) -> Result<UserRecord, DomainError> {
    let user = find(store, username).await?;
    store.set_disabled(&user.id, disabled, now.secs()).await?;
    if disabled {
        revoke_subject(store, life, &user.id, "user_disabled", now).await?;
        audit!("user_disabled", user_id = %user.id);
    } else {
        audit!("user_enabled", user_id = %user.id);
    }
    Ok(user)
}

/// Replaces a password (policy checked). Ends all the user's sessions and revokes their
/// tokens.
pub async fn set_password(
    store: &dyn Store,
    life: RecordLifetime,
    passwords: &Passwords,
    username: &str,
    password: SecretString,
    now: Millis,
) -> Result<UserRecord, DomainError> {
    let user = find(store, username).await?;
    check_policy(password.expose(), username).map_err(DomainError::invalid)?;
    let hash = passwords.hash(password).await?;
    store.set_password_hash(&user.id, &hash, now.secs()).await?;
    revoke_subject(store, life, &user.id, "password_changed", now).await?;
    audit!("password_changed", user_id = %user.id);
    Ok(user)
}

/// Changes a user's role. Tokens carrying the old role are revoked (and the sessions that
/// would mint more of them end), so the change takes effect everywhere at once.
pub async fn set_role(
    store: &dyn Store,
    life: RecordLifetime,
    username: &str,
    role: &str,
    now: Millis,
) -> Result<UserRecord, DomainError> {
    check_role(role)?;
    let user = find(store, username).await?;
    store.set_role(&user.id, role, now.secs()).await?;
    revoke_subject(store, life, &user.id, "role_changed", now).await?;
    audit!("role_changed", user_id = %user.id, role);
    Ok(user)
}

/// Ends every session of a user and revokes all their tokens ("log out everywhere").
pub async fn revoke_tokens(
    store: &dyn Store,
    life: RecordLifetime,
    username: &str,
    now: Millis,
) -> Result<UserRecord, DomainError> {
    let user = find(store, username).await?;
    revoke_subject(store, life, &user.id, "admin_revoked", now).await?;
    Ok(user)
}
