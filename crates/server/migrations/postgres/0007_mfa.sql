-- Second factors (issue 16).
--
-- A session remembers how the user signed in (RFC 8176 method names, space-separated) and
-- when, so that every token of the session, refreshed or not, carries `amr`, `acr` and
-- `auth_time`. Sessions from before this migration signed in with a password.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE sessions ADD COLUMN auth_time BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET auth_time = created_at;

-- A user's TOTP authenticator (RFC 6238). `secret` is sealed under the master key.
-- `confirmed_at` is NULL until the first code is entered: until then it is no factor.
-- `last_step` is the time step of the last code accepted: a code of that step or an
-- earlier one is refused (no replay).
CREATE TABLE mfa_totp (
    user_id      TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret       BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_step    BIGINT
);

-- Recovery codes, only as SHA-256 hashes; each works once.
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash       BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, hash)
);

-- The second step of a sign-in: a password was right, a second factor is due. Stored as a
-- SHA-256 hash; finished once (`used_at`), refused after `expires_at` or too many wrong
-- codes (`failures`). `enrol`: the user has no factor yet but their role needs one, so the
-- second step enrols an authenticator first.
CREATE TABLE mfa_tokens (
    hash       BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    amr        TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    failures   BIGINT NOT NULL DEFAULT 0,
    enrol      BOOLEAN NOT NULL DEFAULT FALSE,
    used_at    BIGINT
);
CREATE INDEX mfa_tokens_expires ON mfa_tokens(expires_at);

-- Passkeys (WebAuthn credentials), several per user, each with a name. `passkey` is the
-- credential as the WebAuthn library keeps it (JSON: public key, signature counter,
-- flags); the counter is updated on every use.
CREATE TABLE webauthn_credentials (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    passkey      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials(user_id);

-- WebAuthn ceremonies in progress: single use (`used_at`), until `expires_at`, and bound
-- to what asked for them (`binding`: the session of a registration, the second step of a
-- sign-in; empty for a passwordless sign-in). `state` is the library's state (JSON).
CREATE TABLE webauthn_challenges (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    binding    TEXT NOT NULL,
    user_id    TEXT,
    state      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX webauthn_challenges_expires ON webauthn_challenges(expires_at);
