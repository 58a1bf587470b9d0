-- The PostgreSQL schema: the same tables and constraints as the SQLite schema after its
-- migrations 0001 to 0003. Times are Unix seconds (BIGINT); hashes and sealed secrets are
-- BYTEA.

-- Users, sessions (refresh-token families), refresh-token hashes and login throttling.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id           TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    last_used_at        BIGINT NOT NULL,
    absolute_expires_at BIGINT NOT NULL,
    generation          BIGINT NOT NULL DEFAULT 0,
    rotated_at          BIGINT,
    revoked_at          BIGINT,
    revoked_reason      TEXT,
    user_agent          TEXT,
    ip                  TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Only SHA-256 hashes of refresh tokens are stored.
CREATE TABLE refresh_tokens (
    hash       BYTEA PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

CREATE TABLE login_throttle (
    key           TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    window_start  BIGINT NOT NULL,
    last_failure  BIGINT NOT NULL
);

-- Revocation records, pushed to verifiers. The id is the feed cursor: it only grows, and
-- the store assigns ids under a lock so that they also commit in order.
CREATE TABLE revocations (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('jti', 'sid', 'sub', 'kid')),
    value      TEXT NOT NULL,
    -- For kind 'sub': every token of the subject issued at or before this time.
    before     BIGINT,
    created_at BIGINT NOT NULL,
    -- No token the record covers can be valid after this time; then it is pruned.
    expires_at BIGINT NOT NULL
);
CREATE INDEX revocations_expires ON revocations(expires_at);
CREATE INDEX revocations_value ON revocations(kind, value);

-- OAuth clients.
CREATE TABLE clients (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL CHECK (kind IN ('service', 'resource-server')),
    -- SHA-256 of a 256-bit random secret.
    secret_hash  BYTEA NOT NULL,
    scopes       TEXT NOT NULL,
    audiences    TEXT NOT NULL,
    token_format TEXT NOT NULL CHECK (token_format IN ('jwt', 'opaque')),
    created_at   BIGINT NOT NULL
);

-- Opaque (reference) access tokens, stored only as SHA-256 hashes.
CREATE TABLE opaque_tokens (
    hash      BYTEA PRIMARY KEY,
    jti       TEXT NOT NULL,
    sub       TEXT NOT NULL,
    client_id TEXT NOT NULL,
    aud       TEXT NOT NULL,
    scope     TEXT,
    role      TEXT,
    sid       TEXT,
    iat       BIGINT NOT NULL,
    exp       BIGINT NOT NULL
);
CREATE INDEX opaque_tokens_exp ON opaque_tokens(exp);

-- Signing keys and sealed secrets live in the store, so that every auth instance shares
-- them. Private material is stored only as AES-256-GCM ciphertext under the master key,
-- which never enters the database.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    state        TEXT NOT NULL
                 CHECK (state IN ('next', 'current', 'retired', 'removed', 'revoked')),
    -- Sealed PKCS#8 PEM; NULL once the key is removed or revoked.
    private_key  BYTEA,
    -- The public JWK, JSON.
    public_jwk   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    -- For 'next': when it starts to sign.
    activates_at BIGINT,
    activated_at BIGINT,
    retired_at   BIGINT,
    -- For 'retired': when it leaves the JWKS.
    removes_at   BIGINT,
    revoked_at   BIGINT
);
-- At most one key signs, and at most one waits to.
CREATE UNIQUE INDEX signing_keys_one_each ON signing_keys(state)
    WHERE state IN ('next', 'current');

CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    -- Sealed under the master key, with the name as associated data.
    value      BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
