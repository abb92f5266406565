CREATE TABLE organisations (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    risk_policy TEXT NOT NULL,
    crisis_resources TEXT,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations(id),
    role TEXT NOT NULL CHECK (role IN ('admin', 'counsellor', 'patient')),
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name TEXT NOT NULL,
    timezone TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    password_changed_at TIMESTAMP NOT NULL
);
CREATE INDEX users_organisation ON users (organisation_id, role);

CREATE TABLE patients (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id),
    organisation_id TEXT NOT NULL REFERENCES organisations(id),
    phase TEXT NOT NULL CHECK (phase IN ('detox', 'treatment', 'aftercare', 'discharged')),
    phase_started_on DATE NOT NULL,
    enrolment_last_use_on DATE,
    risk_overrides TEXT,
    first_check_in_on DATE,
    last_check_in_on DATE,
    last_use_on DATE,
    missed_check_due_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX patients_organisation ON patients (organisation_id);
CREATE INDEX patients_missed_check_due ON patients (missed_check_due_at);

CREATE TABLE phase_changes (
    id TEXT PRIMARY KEY NOT NULL,
    patient_id TEXT NOT NULL REFERENCES patients(user_id),
    phase TEXT NOT NULL,
    started_on DATE NOT NULL,
    changed_by TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX phase_changes_patient ON phase_changes (patient_id, started_on);

CREATE TABLE care_team_members (
    patient_id TEXT NOT NULL REFERENCES patients(user_id),
    counsellor_id TEXT NOT NULL REFERENCES users(id),
    is_primary BOOLEAN NOT NULL,
    added_at TIMESTAMP NOT NULL,
    PRIMARY KEY (patient_id, counsellor_id)
);
CREATE INDEX care_team_counsellor ON care_team_members (counsellor_id);

CREATE TABLE invitations (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations(id),
    code_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    email TEXT,
    counsellor_id TEXT REFERENCES users(id),
    phase TEXT,
    last_use_on DATE,
    created_by TEXT NOT NULL REFERENCES users(id),
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    used_by TEXT,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE refresh_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    family_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    token_hash TEXT NOT NULL UNIQUE,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    revoked_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE login_throttles (
    key TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    window_started_at TIMESTAMP NOT NULL,
    blocked_until TIMESTAMP
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    private_key_pem TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT,
    actor_id TEXT,
    actor_role TEXT,
    action TEXT NOT NULL,
    patient_id TEXT,
    target_type TEXT,
    target_id TEXT,
    outcome TEXT NOT NULL,
    request_id TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX audit_events_organisation ON audit_events (organisation_id, id);
CREATE INDEX audit_events_patient ON audit_events (patient_id, id);

CREATE TABLE idempotency_keys (
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE TABLE check_ins (
    id TEXT PRIMARY KEY NOT NULL,
    patient_id TEXT NOT NULL REFERENCES patients(user_id),
    date DATE NOT NULL,
    craving INTEGER NOT NULL,
    mood INTEGER NOT NULL,
    exercise_minutes INTEGER NOT NULL,
    meals INTEGER NOT NULL,
    used_substance BOOLEAN NOT NULL,
    substances TEXT NOT NULL,
    sleep_hours DOUBLE PRECISION,
    anxiety INTEGER,
    irritability INTEGER,
    loneliness INTEGER,
    triggers TEXT NOT NULL,
    took_medication BOOLEAN,
    attended_support BOOLEAN,
    withdrawal TEXT,
    withdrawal_score INTEGER,
    self_harm_thoughts BOOLEAN,
    note TEXT,
    answered_at TIMESTAMP,
    received_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL,
    UNIQUE (patient_id, date)
);
-- The most recent use before a date, in O(log n) however long the history.
CREATE INDEX check_ins_use ON check_ins (patient_id, used_substance, date);

CREATE TABLE alerts (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations(id),
    patient_id TEXT NOT NULL REFERENCES patients(user_id),
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    severity_rank INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    title TEXT NOT NULL,
    explanation TEXT NOT NULL,
    evidence TEXT NOT NULL,
    check_in_date DATE,
    occurrences INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    escalation_due_at TIMESTAMP,
    escalated_at TIMESTAMP,
    acknowledged_at TIMESTAMP,
    acknowledged_by TEXT,
    resolved_at TIMESTAMP,
    resolved_by TEXT,
    outcome TEXT,
    note TEXT
);
-- At most one unresolved alert per (patient, rule), except SOS: the database enforces it
-- even when two processes evaluate the same patient at once.
CREATE UNIQUE INDEX alerts_one_unresolved_per_rule ON alerts (patient_id, rule)
    WHERE status <> 'resolved' AND rule <> 'sos';
CREATE INDEX alerts_inbox ON alerts (organisation_id, status, severity_rank);
CREATE INDEX alerts_patient ON alerts (patient_id, status);
CREATE INDEX alerts_escalation_due ON alerts (escalation_due_at);

CREATE TABLE alert_changes (
    id TEXT PRIMARY KEY NOT NULL,
    alert_id TEXT NOT NULL REFERENCES alerts(id),
    change TEXT NOT NULL,
    actor_id TEXT,
    severity TEXT,
    status TEXT,
    detail TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX alert_changes_alert ON alert_changes (alert_id);

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations(id),
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    disabled_at TIMESTAMP,
    disabled_reason TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP
);
CREATE INDEX webhooks_organisation ON webhooks (organisation_id);

CREATE TABLE outbox (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL,
    alert_id TEXT NOT NULL REFERENCES alerts(id),
    event_type TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    locked_by TEXT,
    last_status_code INTEGER,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_target ON outbox (target, created_at);

CREATE TABLE delivery_attempts (
    id TEXT PRIMARY KEY NOT NULL,
    outbox_id TEXT NOT NULL REFERENCES outbox(id),
    attempt INTEGER NOT NULL,
    status_code INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX delivery_attempts_outbox ON delivery_attempts (outbox_id);

-- Committed alert events, tailed by every process to feed its live streams.
CREATE TABLE alert_feed (
    seq BIGSERIAL PRIMARY KEY,
    organisation_id TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
