//! The diesel schema, written by hand with only the SQL types both backends share
//! (Text, Integer, BigInt, Bool, Double, Date, Timestamp). Ids are UUID strings.

diesel::table! {
    organisations (id) {
        id -> Text,
        name -> Text,
        risk_policy -> Text,
        crisis_resources -> Nullable<Text>,
        created_at -> Timestamp,
        staff_mfa -> Text,
        erasure_delay_days -> Integer,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        organisation_id -> Text,
        role -> Text,
        email -> Text,
        password_hash -> Text,
        display_name -> Text,
        timezone -> Text,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        password_changed_at -> Timestamp,
    }
}

diesel::table! {
    patients (user_id) {
        user_id -> Text,
        organisation_id -> Text,
        phase -> Text,
        phase_started_on -> Date,
        enrolment_last_use_on -> Nullable<Date>,
        risk_overrides -> Nullable<Text>,
        first_check_in_on -> Nullable<Date>,
        last_check_in_on -> Nullable<Date>,
        last_use_on -> Nullable<Date>,
        missed_check_due_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        country -> Nullable<Text>,
        closed_at -> Nullable<Timestamp>,
        closed_by -> Nullable<Text>,
        erasure_due_at -> Nullable<Timestamp>,
        erased_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    phase_changes (id) {
        id -> Text,
        patient_id -> Text,
        phase -> Text,
        started_on -> Date,
        changed_by -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    care_team_members (patient_id, counsellor_id) {
        patient_id -> Text,
        counsellor_id -> Text,
        is_primary -> Bool,
        added_at -> Timestamp,
    }
}

diesel::table! {
    invitations (id) {
        id -> Text,
        organisation_id -> Text,
        code_hash -> Text,
        role -> Text,
        email -> Nullable<Text>,
        counsellor_id -> Nullable<Text>,
        phase -> Nullable<Text>,
        last_use_on -> Nullable<Date>,
        created_by -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        used_by -> Nullable<Text>,
        created_at -> Timestamp,
        phase_started_on -> Nullable<Date>,
        detox_ended_on -> Nullable<Date>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        family_id -> Text,
        user_id -> Text,
        token_hash -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        authenticated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_throttles (key) {
        key -> Text,
        failures -> Integer,
        window_started_at -> Timestamp,
        blocked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sign_in_networks (key) {
        key -> Text,
        last_success_at -> Timestamp,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        private_key_pem -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        organisation_id -> Nullable<Text>,
        actor_id -> Nullable<Text>,
        actor_role -> Nullable<Text>,
        action -> Text,
        patient_id -> Nullable<Text>,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Text>,
        outcome -> Text,
        request_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (user_id, key) {
        user_id -> Text,
        key -> Text,
        request_hash -> Text,
        status -> Integer,
        body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    check_ins (id) {
        id -> Text,
        patient_id -> Text,
        date -> Date,
        craving -> Integer,
        mood -> Integer,
        exercise_minutes -> Integer,
        meals -> Integer,
        used_substance -> Bool,
        substances -> Text,
        sleep_hours -> Nullable<Double>,
        anxiety -> Nullable<Integer>,
        irritability -> Nullable<Integer>,
        loneliness -> Nullable<Integer>,
        triggers -> Text,
        took_medication -> Nullable<Bool>,
        attended_support -> Nullable<Bool>,
        withdrawal -> Nullable<Text>,
        withdrawal_score -> Nullable<Integer>,
        self_harm_thoughts -> Nullable<Bool>,
        note -> Nullable<Text>,
        answered_at -> Nullable<Timestamp>,
        received_at -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
        source -> Text,
        imported_from -> Nullable<Text>,
    }
}

diesel::table! {
    alerts (id) {
        id -> Text,
        organisation_id -> Text,
        patient_id -> Text,
        rule -> Text,
        severity -> Text,
        severity_rank -> Integer,
        status -> Text,
        title -> Text,
        explanation -> Text,
        evidence -> Text,
        check_in_date -> Nullable<Date>,
        occurrences -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_seen_at -> Timestamp,
        escalation_due_at -> Nullable<Timestamp>,
        escalated_at -> Nullable<Timestamp>,
        acknowledged_at -> Nullable<Timestamp>,
        acknowledged_by -> Nullable<Text>,
        resolved_at -> Nullable<Timestamp>,
        resolved_by -> Nullable<Text>,
        outcome -> Nullable<Text>,
        note -> Nullable<Text>,
        findings -> Text,
        rules -> Text,
    }
}

diesel::table! {
    alert_changes (id) {
        id -> Text,
        alert_id -> Text,
        change -> Text,
        actor_id -> Nullable<Text>,
        severity -> Nullable<Text>,
        status -> Nullable<Text>,
        detail -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Text,
        organisation_id -> Text,
        url -> Text,
        events -> Text,
        secret -> Text,
        disabled_at -> Nullable<Timestamp>,
        disabled_reason -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        integration_id -> Nullable<Text>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        organisation_id -> Text,
        alert_id -> Nullable<Text>,
        patient_id -> Nullable<Text>,
        event_type -> Text,
        channel -> Text,
        target -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        locked_by -> Nullable<Text>,
        last_status_code -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    delivery_attempts (id) {
        id -> Text,
        outbox_id -> Text,
        attempt -> Integer,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
        duration_ms -> Integer,
        created_at -> Timestamp,
    }
}

diesel::table! {
    alert_feed (seq) {
        seq -> BigInt,
        organisation_id -> Text,
        alert_id -> Text,
        event_type -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    disclosures (id) {
        id -> Text,
        organisation_id -> Text,
        patient_id -> Text,
        kind -> Text,
        recipient_name -> Text,
        recipient_affiliation -> Nullable<Text>,
        nature -> Nullable<Text>,
        categories -> Text,
        what -> Nullable<Text>,
        consent_id -> Nullable<Text>,
        recorded_by -> Nullable<Text>,
        disclosed_at -> Timestamp,
    }
}

diesel::table! {
    totp_credentials (user_id) {
        user_id -> Text,
        secret_sealed -> Text,
        confirmed_at -> Nullable<Timestamp>,
        last_step -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> Text,
        user_id -> Text,
        code_hash -> Text,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    email_changes (user_id) {
        user_id -> Text,
        new_email -> Text,
        code_hash -> Text,
        attempts -> Integer,
        expires_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    mfa_challenges (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    integrations (id) {
        id -> Text,
        organisation_id -> Text,
        client_id -> Text,
        name -> Text,
        description -> Text,
        scopes -> Text,
        token_endpoint_auth_method -> Text,
        secret_hash -> Nullable<Text>,
        jwks -> Nullable<Text>,
        credentials_changed_at -> Timestamp,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        disabled_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    client_assertions (integration_id, jti) {
        integration_id -> Text,
        jti -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    consents (id) {
        id -> Text,
        organisation_id -> Text,
        patient_id -> Text,
        integration_id -> Text,
        categories -> Text,
        purpose -> Text,
        expires_on -> Nullable<Date>,
        patient_name -> Text,
        disclosing_organisation -> Text,
        recipient -> Text,
        signed_by -> Text,
        signed_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(users -> organisations (organisation_id));
diesel::joinable!(patients -> users (user_id));
diesel::joinable!(care_team_members -> patients (patient_id));
diesel::joinable!(check_ins -> patients (patient_id));
diesel::joinable!(alerts -> patients (patient_id));
diesel::joinable!(alert_changes -> alerts (alert_id));
diesel::joinable!(outbox -> alerts (alert_id));
diesel::joinable!(delivery_attempts -> outbox (outbox_id));
diesel::joinable!(consents -> integrations (integration_id));

diesel::allow_tables_to_appear_in_same_query!(
    organisations,
    email_changes,
    disclosures,
    users,
    patients,
    phase_changes,
    care_team_members,
    invitations,
    refresh_tokens,
    login_throttles,
    sign_in_networks,
    signing_keys,
    audit_events,
    idempotency_keys,
    check_ins,
    alerts,
    alert_changes,
    webhooks,
    outbox,
    delivery_attempts,
    alert_feed,
    totp_credentials,
    recovery_codes,
    mfa_challenges,
    integrations,
    client_assertions,
    consents,
);
