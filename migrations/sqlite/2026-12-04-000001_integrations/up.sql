-- Integrations (42 CFR Part 2, SPEC §9): other systems a clinic connects, acting as
-- themselves under OAuth 2.0 client credentials, and the patients' consents to them.
CREATE TABLE integrations (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    -- The OAuth client_id (public, unique).
    client_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    -- Granted scopes, space-separated (`<category>.read`).
    scopes TEXT NOT NULL,
    -- `client_secret_basic` or `private_key_jwt`.
    token_endpoint_auth_method TEXT NOT NULL,
    -- SHA-256 of the client secret (client_secret_basic only); never the secret itself.
    secret_hash TEXT,
    -- The registered public keys, a JWK Set (private_key_jwt only).
    jwks TEXT,
    -- Tokens issued before this instant are refused (secret rotated, keys replaced).
    credentials_changed_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    disabled_at TIMESTAMP,
    deleted_at TIMESTAMP
);
CREATE INDEX integrations_organisation ON integrations (organisation_id, created_at);

-- private_key_jwt assertions already used (`jti` single-use until the assertion expires).
CREATE TABLE client_assertions (
    integration_id TEXT NOT NULL REFERENCES integrations (id),
    jti TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (integration_id, jti)
);

-- A patient's written consent (42 CFR 2.31) to disclose categories of their records to one
-- integration. The record holds the elements as they were signed.
CREATE TABLE consents (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    patient_id TEXT NOT NULL REFERENCES users (id),
    integration_id TEXT NOT NULL REFERENCES integrations (id),
    -- Consented categories, comma-separated.
    categories TEXT NOT NULL,
    purpose TEXT NOT NULL,
    -- Last day the consent holds, in the patient's time zone; NULL: until revoked.
    expires_on DATE,
    -- The names as they stood when the patient signed.
    patient_name TEXT NOT NULL,
    disclosing_organisation TEXT NOT NULL,
    recipient TEXT NOT NULL,
    signed_by TEXT NOT NULL,
    signed_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX consents_integration ON consents (integration_id, patient_id);
CREATE INDEX consents_patient ON consents (patient_id, signed_at);
