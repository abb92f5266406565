-- Back to alert-only deliveries: check-in event deliveries (and their attempts) are dropped.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
DELETE FROM delivery_attempts
WHERE outbox_id IN (SELECT id FROM outbox WHERE alert_id IS NULL);
DROP TABLE IF EXISTS outbox_old;
CREATE TABLE outbox_old (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL,
    alert_id TEXT NOT NULL REFERENCES alerts(id),
    event_type TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    locked_by TEXT,
    last_status_code INTEGER,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP
);
INSERT INTO outbox_old
SELECT id, organisation_id, alert_id, event_type, channel, target, payload, status, attempts,
    next_attempt_at, locked_until, locked_by, last_status_code, last_error, created_at,
    updated_at, delivered_at
FROM outbox WHERE alert_id IS NOT NULL;
DROP TABLE outbox;
ALTER TABLE outbox_old RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_target ON outbox (target, created_at);
COMMIT;
PRAGMA foreign_keys = ON;
