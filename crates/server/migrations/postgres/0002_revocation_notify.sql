-- Every instance's revocation feed wakes at once when any instance records a revocation:
-- the insert notifies the channel `wristband_revocations` (delivered at commit). The
-- payload is the schema, so that several deployments in one database can tell theirs apart.
CREATE FUNCTION wristband_notify_revocation() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('wristband_revocations', current_schema());
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER revocations_notify
    AFTER INSERT ON revocations
    FOR EACH STATEMENT EXECUTE FUNCTION wristband_notify_revocation();
