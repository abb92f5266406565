-- Staff sign-in with a second factor (SPEC §12).

-- Whether the organisation's counsellors and admins must have a second factor.
ALTER TABLE organisations ADD COLUMN staff_mfa TEXT NOT NULL DEFAULT 'optional' CHECK (staff_mfa IN ('optional', 'required'));

-- When the session's sign-in happened (password, and second factor when one is on); every
-- refresh token of a family carries it, so a refresh never makes a sign-in look recent.
-- Sessions from before this column have none and count as signed in long ago.
ALTER TABLE refresh_tokens ADD COLUMN authenticated_at TIMESTAMP;

-- A user's TOTP authenticator (RFC 6238). The secret is sealed with a key derived from the
-- token-signing key (AES-256-GCM, bound to the user id). Until confirmed_at is set the
-- enrolment is pending and does not count. last_step is the last time step whose code was
-- accepted: a code is accepted once.
CREATE TABLE totp_credentials (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id),
    secret_sealed TEXT NOT NULL,
    confirmed_at TIMESTAMP,
    last_step BIGINT,
    created_at TIMESTAMP NOT NULL
);

-- Single-use recovery codes, stored as SHA-256 hashes only.
CREATE TABLE recovery_codes (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    code_hash TEXT NOT NULL UNIQUE,
    used_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- A sign-in whose password was right, waiting for its second factor (the mfa_token, stored
-- as a hash; single use, short-lived).
CREATE TABLE mfa_challenges (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);
