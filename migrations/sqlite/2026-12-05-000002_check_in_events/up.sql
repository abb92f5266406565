-- Deliveries of check-in events (check_in.submitted) belong to a patient, not an alert: the
-- outbox's alert_id becomes optional and every delivery names its patient. Rebuilt under one
-- transaction with foreign keys off, as SQLite documents; a re-run after a crash between the
-- COMMIT and diesel's bookkeeping does the same work again (patient_id is derived from alerts).
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
DROP TABLE IF EXISTS outbox_new;
CREATE TABLE outbox_new (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL,
    alert_id TEXT REFERENCES alerts(id),
    patient_id TEXT REFERENCES patients(user_id),
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
    delivered_at TIMESTAMP,
    CHECK (alert_id IS NOT NULL OR patient_id IS NOT NULL)
);
INSERT INTO outbox_new (id, organisation_id, alert_id, patient_id, event_type, channel, target,
    payload, status, attempts, next_attempt_at, locked_until, locked_by, last_status_code,
    last_error, created_at, updated_at, delivered_at)
SELECT o.id, o.organisation_id, o.alert_id,
    (SELECT a.patient_id FROM alerts a WHERE a.id = o.alert_id),
    o.event_type, o.channel, o.target, o.payload, o.status, o.attempts, o.next_attempt_at,
    o.locked_until, o.locked_by, o.last_status_code, o.last_error, o.created_at, o.updated_at,
    o.delivered_at
FROM outbox o;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_target ON outbox (target, created_at);
CREATE INDEX outbox_patient ON outbox (patient_id);
COMMIT;
PRAGMA foreign_keys = ON;
