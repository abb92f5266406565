-- The audit trail is append-only: the database itself refuses to change or remove a record.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

-- The live feed is read by time (new events) and by organisation after a sequence number
-- (a reconnecting stream), and pruned by time.
CREATE INDEX alert_feed_created_at ON alert_feed (created_at);
CREATE INDEX alert_feed_organisation_seq ON alert_feed (organisation_id, seq);

-- Housekeeping deletes expired refresh tokens by expiry.
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
