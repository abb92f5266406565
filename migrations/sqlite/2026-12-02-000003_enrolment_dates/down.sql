ALTER TABLE invitations DROP COLUMN detox_ended_on;
ALTER TABLE invitations DROP COLUMN phase_started_on;
