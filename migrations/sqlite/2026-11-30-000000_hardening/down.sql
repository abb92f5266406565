DROP INDEX refresh_tokens_expires_at;
DROP INDEX alert_feed_organisation_seq;
DROP INDEX alert_feed_created_at;
DROP TRIGGER audit_events_no_delete;
DROP TRIGGER audit_events_no_update;
