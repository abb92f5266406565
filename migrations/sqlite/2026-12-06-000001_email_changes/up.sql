-- An email change waiting for its new address to be confirmed: the code mailed to that
-- address is kept only as a SHA-256 hash, with the wrong tries counted. One per user; a new
-- request replaces it. Until it is confirmed the account signs in with its current address.
CREATE TABLE email_changes (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id),
    new_email TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL
);
