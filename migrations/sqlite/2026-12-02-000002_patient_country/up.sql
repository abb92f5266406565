-- The patient's country (ISO 3166-1 alpha-2) for crisis resources; null: the country of
-- their timezone.
ALTER TABLE patients ADD COLUMN country TEXT;
