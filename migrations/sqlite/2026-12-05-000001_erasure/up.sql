-- Erasure (SPEC §10). A closed account (the patient's own request, or an admin's) keeps its
-- clinical content until `erasure_due_at` (closure + the organisation's retention delay); the
-- housekeeping then erases it and sets `erased_at`. The audit trail and the accounting of
-- disclosures stay: they hold who, what and when, never clinical values.
ALTER TABLE patients ADD COLUMN closed_at TIMESTAMP;
ALTER TABLE patients ADD COLUMN closed_by TEXT;
ALTER TABLE patients ADD COLUMN erasure_due_at TIMESTAMP;
ALTER TABLE patients ADD COLUMN erased_at TIMESTAMP;
CREATE INDEX patients_erasure_due ON patients (erasure_due_at);
CREATE INDEX patients_erased ON patients (erased_at);
-- Days a closed account's clinical content is kept before it is erased (0: at once).
ALTER TABLE organisations ADD COLUMN erasure_delay_days INTEGER NOT NULL DEFAULT 0;
