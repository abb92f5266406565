CREATE INDEX audit_events_patient_reads ON audit_events (patient_id, id);
