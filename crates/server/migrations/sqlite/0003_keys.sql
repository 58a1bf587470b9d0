-- Signing keys and sealed secrets live in the store, so that every auth instance shares
-- them. Private material is stored only as AES-256-GCM ciphertext under the master key,
-- which never enters the database.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    state        TEXT NOT NULL
                 CHECK (state IN ('next', 'current', 'retired', 'removed', 'revoked')),
    -- Sealed PKCS#8 PEM; NULL once the key is removed or revoked.
    private_key  BLOB,
    -- The public JWK, JSON.
    public_jwk   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    -- For 'next': when it starts to sign.
    activates_at INTEGER,
    activated_at INTEGER,
    retired_at   INTEGER,
    -- For 'retired': when it leaves the JWKS.
    removes_at   INTEGER,
    revoked_at   INTEGER
);
-- At most one key signs, and at most one waits to.
CREATE UNIQUE INDEX signing_keys_one_each ON signing_keys(state)
    WHERE state IN ('next', 'current');

CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    -- Sealed under the master key, with the name as associated data.
    value      BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

-- Revocation records gain the kind 'kid': an emergency-revoked signing key. SQLite cannot
-- alter a CHECK constraint, so the table is rebuilt, keeping every id and the AUTOINCREMENT
-- high-water mark: the feed's cursors must never see an id twice.
CREATE TABLE revocations_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('jti', 'sid', 'sub', 'kid')),
    value      TEXT NOT NULL,
    before     INTEGER,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
INSERT INTO revocations_new (id, kind, value, before, created_at, expires_at)
    SELECT id, kind, value, before, created_at, expires_at FROM revocations;
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'revocations_new', seq FROM sqlite_sequence WHERE name = 'revocations'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'revocations_new');
UPDATE sqlite_sequence
    SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'revocations'), 0))
    WHERE name = 'revocations_new';
DROP TABLE revocations;
ALTER TABLE revocations_new RENAME TO revocations;
CREATE INDEX revocations_expires ON revocations(expires_at);
CREATE INDEX revocations_value ON revocations(kind, value);
