-- OpenID Connect back-channel logout (issue 15): the queue of logout tokens to deliver,
-- and the durable cursor of the revocation-feed follower that fills it.

-- One row per (revocation record, client, sign-in session): several instances following
-- the same feed queue each logout token once.
CREATE TABLE backchannel_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    revocation_id   BIGINT NOT NULL,
    client_id       TEXT NOT NULL,
    -- The sign-in session (the logout token's `sid`) and its user (`sub`).
    sid             TEXT NOT NULL,
    sub             TEXT NOT NULL,
    -- The client's backchannel_logout_uri when the delivery was queued.
    uri             TEXT NOT NULL,
    -- The logout token's `jti`, the same for every attempt.
    jti             TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- Set while an instance is sending it: no other instance claims it before then.
    lease_until     BIGINT,
    delivered_at    BIGINT,
    gave_up_at      BIGINT,
    UNIQUE (revocation_id, client_id, sid)
);
CREATE INDEX backchannel_deliveries_due ON backchannel_deliveries(next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;

-- Named counters; 'cursor' is the id of the last revocation record the follower handled.
-- It starts at the newest record: revocations made before this migration are not followed.
CREATE TABLE backchannel_state (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO backchannel_state (name, value)
    SELECT 'cursor', COALESCE(MAX(id), 0) FROM revocations;
