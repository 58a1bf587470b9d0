-- Revocation records (pushed to verifiers), OAuth clients, and opaque access tokens.
CREATE TABLE revocations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('jti', 'sid', 'sub')),
    value      TEXT NOT NULL,
    -- For kind 'sub': every token of the subject issued at or before this time.
    before     INTEGER,
    created_at INTEGER NOT NULL,
    -- No token the record covers can be valid after this time; then it is pruned.
    expires_at INTEGER NOT NULL
);
CREATE INDEX revocations_expires ON revocations(expires_at);
CREATE INDEX revocations_value ON revocations(kind, value);

CREATE TABLE clients (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL CHECK (kind IN ('service', 'resource-server')),
    -- SHA-256 of a 256-bit random secret.
    secret_hash  BLOB NOT NULL,
    scopes       TEXT NOT NULL,
    audiences    TEXT NOT NULL,
    token_format TEXT NOT NULL CHECK (token_format IN ('jwt', 'opaque')),
    created_at   INTEGER NOT NULL
);

-- Opaque (reference) access tokens, stored only as SHA-256 hashes.
CREATE TABLE opaque_tokens (
    hash      BLOB PRIMARY KEY,
    jti       TEXT NOT NULL,
    sub       TEXT NOT NULL,
    client_id TEXT NOT NULL,
    aud       TEXT NOT NULL,
    scope     TEXT,
    role      TEXT,
    sid       TEXT,
    iat       INTEGER NOT NULL,
    exp       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX opaque_tokens_exp ON opaque_tokens(exp);
