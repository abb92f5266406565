DROP INDEX alerts_updated;
DROP INDEX alerts_one_unresolved_per_patient;
CREATE UNIQUE INDEX alerts_one_unresolved_per_rule ON alerts (patient_id, rule)
    WHERE status <> 'resolved' AND rule <> 'sos';
ALTER TABLE alerts DROP COLUMN rules;
ALTER TABLE alerts DROP COLUMN findings;
