-- Patients often enrol days after leaving detox elsewhere: an invitation may carry when the
-- current phase started and when detox ended, so the phase history (and the overdose window
-- counted from leaving detox) starts from then, not from the registration day.
ALTER TABLE invitations ADD COLUMN phase_started_on DATE;
ALTER TABLE invitations ADD COLUMN detox_ended_on DATE;
