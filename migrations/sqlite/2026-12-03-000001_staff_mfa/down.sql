DROP TABLE mfa_challenges;
DROP TABLE recovery_codes;
DROP TABLE totp_credentials;
ALTER TABLE refresh_tokens DROP COLUMN authenticated_at;
ALTER TABLE organisations DROP COLUMN staff_mfa;
