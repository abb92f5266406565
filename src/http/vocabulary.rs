//! The fixed sets of words the API speaks, as schemas for the OpenAPI document.
//!
//! The handlers keep these values as strings (they come from, and go to, the database as
//! strings, and a request holding another word is a 422 naming the field, not a body that
//! fails to parse); these types only tell integrators which words there are. Each one's
//! [`Vocabulary::WORDS`] is checked against the set the server itself uses (see the tests).

use serde::Serialize;
use utoipa::ToSchema;

/// A fixed set of wire words, in the order the document lists them.
pub trait Vocabulary {
    /// Every word, as it is sent.
    const WORDS: &'static [&'static str];
}

macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $word:tt),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $word)] $variant,)+
        }

        impl Vocabulary for $name {
            const WORDS: &'static [&'static str] = &[$($word),+];
        }
    };
}

vocabulary! {
    /// Where an alert is in its lifecycle.
    AlertStatus {
        /// Raised (or raised again by a more serious finding) and not yet acknowledged.
        Open = "open",
        /// Someone is on it; its escalation clock is stopped.
        Acknowledged = "acknowledged",
        /// Closed with an outcome and a note; the next finding opens a new alert.
        Resolved = "resolved",
    }
}

vocabulary! {
    /// How an alert was resolved.
    ResolveOutcome {
        /// The patient was reached.
        Contacted = "contacted",
        /// The patient could not be reached.
        NoContact = "no_contact",
        /// Nothing was wrong.
        FalseAlarm = "false_alarm",
        /// Emergency services were called.
        EmergencyServices = "emergency_services",
        /// Something else (say what in the note).
        Other = "other",
    }
}

vocabulary! {
    /// The role an invitation gives (only admins invite counsellors).
    InvitationRole {
        /// A patient, on the inviting counsellor's care team (or the named counsellor's).
        Patient = "patient",
        /// A counsellor.
        Counsellor = "counsellor",
    }
}

vocabulary! {
    /// The type of an event of the live alert stream (and of a webhook delivery).
    AlertEventType {
        /// A new alert.
        Created = "alert.created",
        /// An alert changed: a repeat finding, a raised severity, findings joined or corrected
        /// away, acknowledged, resolved.
        Updated = "alert.updated",
        /// An alert went unacknowledged too long and was escalated.
        Escalated = "alert.escalated",
    }
}

vocabulary! {
    /// An event an integration's webhook may subscribe to.
    IntegrationEventType {
        /// A new alert about a consenting patient (needs `alerts`).
        Created = "alert.created",
        /// One of their alerts changed (needs `alerts`).
        Updated = "alert.updated",
        /// One of their alerts was escalated (needs `alerts`).
        Escalated = "alert.escalated",
        /// They submitted or corrected a check-in (needs a check-in category).
        CheckInSubmitted = "check_in.submitted",
    }
}

vocabulary! {
    /// The role a staff member acted in.
    StaffRole {
        /// A counsellor.
        Counsellor = "counsellor",
        /// An administrator.
        Admin = "admin",
    }
}

vocabulary! {
    /// A kind of change in an alert's history.
    AlertChangeKind {
        /// The alert was raised.
        Created = "created",
        /// Rules joined the episode (`detail` names them).
        FindingsAdded = "findings_added",
        /// A finding was seen again.
        Repeated = "repeated",
        /// The alert became more serious.
        SeverityRaised = "severity_raised",
        /// The patient pressed SOS.
        SosPressed = "sos_pressed",
        /// The patient's correction took findings back (`detail` names the rules).
        Corrected = "corrected",
        /// Someone acknowledged it.
        Acknowledged = "acknowledged",
        /// Someone resolved it (`detail` is the outcome).
        Resolved = "resolved",
        /// It went unacknowledged too long and was escalated.
        Escalated = "escalated",
    }
}

vocabulary! {
    /// How an audited action ended.
    AuditOutcome {
        /// It was done.
        Success = "success",
        /// It failed (e.g. a wrong password).
        Failure = "failure",
        /// It was refused (the caller may not).
        Denied = "denied",
    }
}

vocabulary! {
    /// The kind of a disclosure.
    DisclosureType {
        /// Without consent, to medical personnel in a medical emergency (42 CFR 2.51).
        Emergency = "emergency",
        /// To an integration, under the patient's consent.
        Integration = "integration",
    }
}

vocabulary! {
    /// Who read a patient's record.
    ReaderType {
        /// A member of the clinic's staff.
        Staff = "staff",
        /// A connected app, under the patient's consent.
        Integration = "integration",
    }
}

vocabulary! {
    /// Where a consent stands, on the patient's local date.
    ConsentStatus {
        /// In force: the app may receive what it names.
        Active = "active",
        /// Revoked by the patient (or replaced by a newer consent, or its app deleted).
        Revoked = "revoked",
        /// Past its last day.
        Expired = "expired",
    }
}

vocabulary! {
    /// A category of a patient's data: the unit of consent and of an integration's scopes
    /// (`<category>.read`).
    DataCategory {
        /// Craving, mood, sleep, exercise, meals, anxiety, irritability, loneliness, triggers.
        Wellbeing = "wellbeing",
        /// Whether substances were used, which, and days since last use.
        SubstanceUse = "substance_use",
        /// The SOWS items and the withdrawal score.
        Withdrawal = "withdrawal",
        /// Medication taken as prescribed.
        Medication = "medication",
        /// Attendance at support groups or therapy.
        Support = "support",
        /// Thoughts of self-harm.
        Safety = "safety",
        /// Alerts: id, rule, severity, status, dates (never explanations or notes).
        Alerts = "alerts",
        /// The treatment phase.
        Phase = "phase",
    }
}

vocabulary! {
    /// An integration's scope: reading one category (`<category>.read`).
    DataScope {
        /// The `wellbeing` category.
        Wellbeing = "wellbeing.read",
        /// The `substance_use` category.
        SubstanceUse = "substance_use.read",
        /// The `withdrawal` category.
        Withdrawal = "withdrawal.read",
        /// The `medication` category.
        Medication = "medication.read",
        /// The `support` category.
        Support = "support.read",
        /// The `safety` category.
        Safety = "safety.read",
        /// The `alerts` category.
        Alerts = "alerts.read",
        /// The `phase` category.
        Phase = "phase.read",
    }
}

vocabulary! {
    /// Where a webhook delivery stands.
    DeliveryStatus {
        /// Will be attempted, or retried after a failure.
        Pending = "pending",
        /// The receiver answered 2xx.
        Delivered = "delivered",
        /// Given up: attempts exhausted, the webhook gone, or dropped (a lapsed consent, a
        /// closed account); `last_error` says which.
        Dead = "dead",
    }
}

vocabulary! {
    /// The export's forms, as `?format=` names them.
    ExportFormat {
        /// aftercare's own document.
        Json = "json",
        /// A FHIR R4 `Bundle`.
        Fhir = "fhir",
    }
}

vocabulary! {
    /// The token endpoint's one grant type.
    GrantType {
        /// RFC 6749 §4.4: the client's own credentials.
        ClientCredentials = "client_credentials",
    }
}

vocabulary! {
    /// How a client assertion is sent (RFC 7523).
    ClientAssertionType {
        /// A signed JWT (`private_key_jwt`).
        JwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
}

/// The token request's `scope`: one or more [`DataScope`]s, separated by single spaces.
pub const SCOPE_LIST_PATTERN: &str = "^(wellbeing|substance_use|withdrawal|medication|support|safety|alerts|phase)\\.read( (wellbeing|substance_use|withdrawal|medication|support|safety|alerts|phase)\\.read)*$";

vocabulary! {
    /// An RFC 6749 §5.2 error code of the token endpoint.
    OAuthErrorCode {
        /// A parameter missing, repeated or malformed.
        InvalidRequest = "invalid_request",
        /// The client could not be authenticated (401, with `WWW-Authenticate`).
        InvalidClient = "invalid_client",
        /// The grant is not valid for this client.
        InvalidGrant = "invalid_grant",
        /// A scope the integration was not granted, or unknown.
        InvalidScope = "invalid_scope",
        /// Only `client_credentials` is supported.
        UnsupportedGrantType = "unsupported_grant_type",
    }
}

vocabulary! {
    /// The state of the process or of one of its dependencies.
    HealthStatus {
        /// Working.
        Ok = "ok",
        /// A dependency cannot be reached.
        Unavailable = "unavailable",
    }
}

vocabulary! {
    /// The kind of access token.
    TokenType {
        /// A bearer token: send it as `Authorization: Bearer <token>`.
        Bearer = "Bearer",
    }
}

/// An IANA time zone name, e.g. `America/New_York` or `Europe/Berlin` (the names of the tz
/// database, as `chrono-tz` knows them; `UTC` included). A patient's local dates — check-in
/// dates, streaks, "today" — are reckoned in it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(
    example = "America/New_York",
    pattern = r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$"
)]
pub struct Timezone(pub String);

/// An ISO 3166-1 alpha-2 country code, upper case, e.g. `US` or `DE`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = "US", pattern = "^[A-Z]{2}$")]
pub struct CountryCode(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    fn wire<T: Serialize>(v: T) -> String {
        serde_json::to_value(v)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    #[test]
    fn the_documented_words_are_the_ones_serialised() {
        assert_eq!(wire(AlertStatus::Acknowledged), "acknowledged");
        assert_eq!(
            wire(ResolveOutcome::EmergencyServices),
            "emergency_services"
        );
        assert_eq!(wire(AlertChangeKind::SosPressed), "sos_pressed");
        assert_eq!(wire(TokenType::Bearer), "Bearer");
    }

    /// The words an enum's schema lists.
    fn documented<T: utoipa::PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap_or_default();
        schema["enum"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn check<T: utoipa::PartialSchema + Vocabulary>() {
        assert_eq!(
            documented::<T>(),
            T::WORDS,
            "{}",
            std::any::type_name::<T>()
        );
    }

    #[test]
    fn the_schemas_list_the_wire_words() {
        check::<AlertStatus>();
        check::<ResolveOutcome>();
        check::<InvitationRole>();
        check::<StaffRole>();
        check::<AlertChangeKind>();
        check::<AuditOutcome>();
        check::<DisclosureType>();
        check::<ReaderType>();
        check::<HealthStatus>();
        check::<TokenType>();
        check::<AlertEventType>();
        check::<IntegrationEventType>();
        check::<ConsentStatus>();
        check::<DataCategory>();
        check::<DataScope>();
        check::<DeliveryStatus>();
        check::<OAuthErrorCode>();
        check::<GrantType>();
        check::<ExportFormat>();
        check::<ClientAssertionType>();
        assert_eq!(
            GrantType::WORDS,
            [crate::service::oauth::CLIENT_CREDENTIALS]
        );
        assert_eq!(
            ClientAssertionType::WORDS,
            [crate::service::oauth::JWT_BEARER]
        );
    }

    #[test]
    fn the_scope_pattern_lists_every_scope_and_nothing_else() {
        let words: Vec<&str> = DataScope::WORDS
            .iter()
            .map(|s| s.trim_end_matches(".read"))
            .collect();
        let one = format!("({})\\.read", words.join("|"));
        assert_eq!(SCOPE_LIST_PATTERN, format!("^{one}( {one})*$"));
        // The token form's schema states it (an attribute needs the literal).
        let form = serde_json::to_value(
            <crate::http::oauth::TokenForm as utoipa::PartialSchema>::schema(),
        )
        .unwrap_or_default();
        assert_eq!(form["properties"]["scope"]["pattern"], SCOPE_LIST_PATTERN);
    }

    #[test]
    fn the_documented_categories_are_the_domain_s() {
        let domain: Vec<&str> = crate::domain::categories::ALL
            .iter()
            .map(|c| c.as_str())
            .collect();
        assert_eq!(DataCategory::WORDS, domain.as_slice());
        let scopes: Vec<String> = crate::domain::categories::ALL
            .iter()
            .map(|c| c.scope())
            .collect();
        assert_eq!(DataScope::WORDS, scopes.as_slice());
        for s in ConsentStatus::WORDS {
            assert!(["active", "revoked", "expired"].contains(s));
        }
    }

    #[test]
    fn the_documented_words_are_the_ones_the_server_accepts() {
        assert_eq!(
            ResolveOutcome::WORDS,
            crate::service::alerts::OUTCOMES.as_slice()
        );
        assert_eq!(
            crate::domain::policy::Phase::parse("aftercare"),
            Some(crate::domain::policy::Phase::Aftercare)
        );
        for p in crate::service::accounts::PHASES {
            assert!(crate::domain::policy::Phase::parse(p).is_some(), "{p}");
        }
        assert_eq!(
            AlertEventType::WORDS,
            [
                crate::service::alerts::events::CREATED,
                crate::service::alerts::events::UPDATED,
                crate::service::alerts::events::ESCALATED,
            ]
            .as_slice()
        );
        assert_eq!(
            AlertEventType::WORDS,
            crate::service::alerts::events::ALL.as_slice()
        );
        assert_eq!(
            IntegrationEventType::WORDS,
            crate::service::alerts::events::INTEGRATION.as_slice()
        );
        for r in InvitationRole::WORDS.iter().chain(StaffRole::WORDS) {
            assert!(crate::auth::Role::parse(r).is_some(), "{r}");
        }
    }
}
