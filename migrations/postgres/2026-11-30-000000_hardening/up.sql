-- The audit trail is append-only: the database itself refuses to change or remove a record.
CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- The live feed is read by time (new events) and by organisation after a sequence number
-- (a reconnecting stream), and pruned by time.
CREATE INDEX alert_feed_created_at ON alert_feed (created_at);
CREATE INDEX alert_feed_organisation_seq ON alert_feed (organisation_id, seq);

-- Housekeeping deletes expired refresh tokens by expiry.
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
