-- OpenID Connect (issue 15): the same changes as the SQLite migration 0006.
--
-- Clients gain the kinds 'web' (a confidential relying party, with a secret) and 'public'
-- (a browser or native app, without one), their redirect URIs (space-separated, as
-- `scopes` is), a back-channel logout URI, and whether they are first-party (no consent
-- page).
ALTER TABLE clients DROP CONSTRAINT clients_kind_check;
ALTER TABLE clients ADD CONSTRAINT clients_kind_check
    CHECK (kind IN ('service', 'resource-server', 'web', 'public'));
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
-- NULL: the client takes no back-channel logout.
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE;

-- A session made by an OIDC code exchange (a "child") names the sign-in session it came
-- from; `offline` is set when the relying party was granted `offline_access`, and `scope`
-- holds the scopes granted to it (NULL for a sign-in session).
ALTER TABLE sessions ADD COLUMN parent_id TEXT;
ALTER TABLE sessions ADD COLUMN offline BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE sessions ADD COLUMN scope TEXT;
CREATE INDEX sessions_parent ON sessions(parent_id);

-- Authorization codes, stored only as SHA-256 hashes. A code is used once: `used_at` is set
-- by the exchange, together with the id of the child session it creates, so that a second
-- use can revoke that session.
CREATE TABLE oidc_codes (
    hash             BYTEA PRIMARY KEY,
    client_id        TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    -- The sign-in session the user authorized from (the ID token's `sid`).
    session_id       TEXT NOT NULL,
    redirect_uri     TEXT NOT NULL,
    scope            TEXT NOT NULL,
    nonce            TEXT,
    -- The S256 PKCE challenge (base64url).
    code_challenge   TEXT NOT NULL,
    auth_time        BIGINT NOT NULL,
    amr              TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    used_at          BIGINT,
    child_session_id TEXT
);
CREATE INDEX oidc_codes_expires ON oidc_codes(expires_at);

-- Consents: the scopes a user let a third-party client have. Removing the client removes
-- them too (the store does it, as on SQLite).
CREATE TABLE oidc_consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX oidc_consents_client ON oidc_consents(client_id);
