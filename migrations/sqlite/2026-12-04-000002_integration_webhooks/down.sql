DROP INDEX webhooks_integration;
ALTER TABLE webhooks DROP COLUMN integration_id;
