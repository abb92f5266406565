-- The accounting of disclosures (42 CFR 2.25, 2.51): every disclosure of a patient's records
-- outside the programme, with no clinical values in it.
CREATE TABLE disclosures (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    patient_id TEXT NOT NULL REFERENCES users (id),
    kind TEXT NOT NULL,
    recipient_name TEXT NOT NULL,
    recipient_affiliation TEXT,
    nature TEXT,
    categories TEXT NOT NULL,
    what TEXT,
    consent_id TEXT,
    recorded_by TEXT REFERENCES users (id),
    disclosed_at TIMESTAMP NOT NULL
);
CREATE INDEX disclosures_patient ON disclosures (patient_id, id);
