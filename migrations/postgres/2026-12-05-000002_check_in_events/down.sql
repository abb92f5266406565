DELETE FROM delivery_attempts
WHERE outbox_id IN (SELECT id FROM outbox WHERE alert_id IS NULL);
DELETE FROM outbox WHERE alert_id IS NULL;
DROP INDEX outbox_patient;
ALTER TABLE outbox DROP CONSTRAINT outbox_alert_or_patient;
ALTER TABLE outbox DROP COLUMN patient_id;
ALTER TABLE outbox ALTER COLUMN alert_id SET NOT NULL;
