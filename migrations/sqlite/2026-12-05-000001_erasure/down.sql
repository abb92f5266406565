ALTER TABLE organisations DROP COLUMN erasure_delay_days;
DROP INDEX patients_erased;
DROP INDEX patients_erasure_due;
ALTER TABLE patients DROP COLUMN erased_at;
ALTER TABLE patients DROP COLUMN erasure_due_at;
ALTER TABLE patients DROP COLUMN closed_by;
ALTER TABLE patients DROP COLUMN closed_at;
