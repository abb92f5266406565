-- Webhooks an integration registers for itself (SPEC §9): deliveries only about patients who
-- consented to it, the consent checked again when each delivery is sent.
ALTER TABLE webhooks ADD COLUMN integration_id TEXT REFERENCES integrations (id);
CREATE INDEX webhooks_integration ON webhooks (integration_id);
