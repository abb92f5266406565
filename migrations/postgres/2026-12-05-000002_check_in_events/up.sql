-- Deliveries of check-in events (check_in.submitted) belong to a patient, not an alert: the
-- outbox's alert_id becomes optional and every delivery names its patient.
ALTER TABLE outbox ALTER COLUMN alert_id DROP NOT NULL;
ALTER TABLE outbox ADD COLUMN patient_id TEXT REFERENCES patients(user_id);
UPDATE outbox SET patient_id = alerts.patient_id FROM alerts WHERE alerts.id = outbox.alert_id;
ALTER TABLE outbox ADD CONSTRAINT outbox_alert_or_patient
    CHECK (alert_id IS NOT NULL OR patient_id IS NOT NULL);
CREATE INDEX outbox_patient ON outbox (patient_id);
