-- OpenID Connect (issue 15).
--
-- Clients gain the kinds 'web' (a confidential relying party, with a secret) and 'public'
-- (a browser or native app, without one), their redirect URIs (space-separated, as
-- `scopes` is), a back-channel logout URI, and whether they are first-party (no consent
-- page). SQLite cannot alter a CHECK constraint, so the table is rebuilt, keeping every row.
CREATE TABLE clients_new (
    id                        TEXT PRIMARY KEY,
    name                      TEXT NOT NULL UNIQUE,
    kind                      TEXT NOT NULL
                              CHECK (kind IN ('service', 'resource-server', 'web', 'public')),
    -- SHA-256 of a 256-bit random secret.
    secret_hash               BLOB NOT NULL,
    scopes                    TEXT NOT NULL,
    audiences                 TEXT NOT NULL,
    token_format              TEXT NOT NULL CHECK (token_format IN ('jwt', 'opaque')),
    created_at                INTEGER NOT NULL,
    redirect_uris             TEXT NOT NULL DEFAULT '',
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '',
    -- NULL: the client takes no back-channel logout.
    backchannel_logout_uri    TEXT,
    first_party               INTEGER NOT NULL DEFAULT 0
);
INSERT INTO clients_new (id, name, kind, secret_hash, scopes, audiences, token_format, created_at)
    SELECT id, name, kind, secret_hash, scopes, audiences, token_format, created_at FROM clients;
DROP TABLE clients;
ALTER TABLE clients_new RENAME TO clients;

-- A session made by an OIDC code exchange (a "child") names the sign-in session it came
-- from; `offline` is set when the relying party was granted `offline_access`, and `scope`
-- holds the scopes granted to it (NULL for a sign-in session).
ALTER TABLE sessions ADD COLUMN parent_id TEXT;
ALTER TABLE sessions ADD COLUMN offline INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN scope TEXT;
CREATE INDEX sessions_parent ON sessions(parent_id);

-- Authorization codes, stored only as SHA-256 hashes. A code is used once: `used_at` is set
-- by the exchange, together with the id of the child session it creates, so that a second
-- use can revoke that session.
CREATE TABLE oidc_codes (
    hash             BLOB PRIMARY KEY,
    client_id        TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    -- The sign-in session the user authorized from (the ID token's `sid`).
    session_id       TEXT NOT NULL,
    redirect_uri     TEXT NOT NULL,
    scope            TEXT NOT NULL,
    nonce            TEXT,
    -- The S256 PKCE challenge (base64url).
    code_challenge   TEXT NOT NULL,
    auth_time        INTEGER NOT NULL,
    amr              TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    used_at          INTEGER,
    child_session_id TEXT
) WITHOUT ROWID;
CREATE INDEX oidc_codes_expires ON oidc_codes(expires_at);

-- Consents: the scopes a user let a third-party client have. Removing the client removes
-- them too (the store does it: no foreign key on `clients`, which SQLite rebuilds).
CREATE TABLE oidc_consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) WITHOUT ROWID;
CREATE INDEX oidc_consents_client ON oidc_consents(client_id);
