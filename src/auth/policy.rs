//! Object-level access: who may reach which patient. Out of reach is indistinguishable from
//! missing (404), so ids cannot be probed across care teams or organisations.

use super::{Caller, Role};
use crate::error::ApiError;
use crate::store::patients::{self, PatientRow};
use crate::store::DbConnection;

/// Loads a patient the caller may read: admins their organisation's, counsellors their care
/// teams', patients only themselves.
pub fn reachable_patient(
    conn: &mut DbConnection,
    caller: &Caller,
    patient_id: &str,
) -> Result<PatientRow, ApiError> {
    let patient = patients::find(conn, patient_id)?.ok_or(ApiError::NotFound)?;
    // An erased patient is out of everyone's reach: only the audit trail remains.
    if patient.organisation_id != caller.organisation_id || patient.erased_at.is_some() {
        return Err(ApiError::NotFound);
    }
    let ok = match caller.role {
        Role::Admin => true,
        Role::Counsellor => patients::on_care_team(conn, patient_id, &caller.user_id)?,
        Role::Patient => patient.user_id == caller.user_id,
    };
    if ok {
        Ok(patient)
    } else {
        Err(ApiError::NotFound)
    }
}

/// [`reachable_patient`] for a change to the record: a closed account's record is kept
/// unchanged until it is erased (409).
pub fn writable_patient(
    conn: &mut DbConnection,
    caller: &Caller,
    patient_id: &str,
) -> Result<PatientRow, ApiError> {
    let patient = reachable_patient(conn, caller, patient_id)?;
    if patient.closed_at.is_some() {
        return Err(ApiError::Conflict(
            "The patient's account was closed; the record is kept unchanged until it is erased."
                .into(),
        ));
    }
    Ok(patient)
}

/// Who may call a route at all, decided before anything else about the request is read, so a
/// caller without the role learns nothing about the route's body or query rules (a 403 for
/// `{}` as for a valid body). Handlers check again; this is the gate in front of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (sign-in, health, public keys).
    Public,
    /// Any signed-in user.
    SignedIn,
    /// Signed in with one of these roles.
    Roles(&'static [Role]),
    /// An integration's access token (SPEC §9); every user gets 403 here, and an
    /// integration gets 403 on every route that is not this.
    Integration,
}

const STAFF: Access = Access::Roles(&[Role::Admin, Role::Counsellor]);
const ADMIN: Access = Access::Roles(&[Role::Admin]);
const PATIENT: Access = Access::Roles(&[Role::Patient]);

/// Every documented route and who may call it. A route missing here is a failing test
/// (`every_documented_route_has_an_access_rule` in tests/api/hardening.rs), not a guess.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/health/live", Access::Public),
    ("GET", "/health/ready", Access::Public),
    ("GET", "/metrics", Access::Public),
    ("GET", "/.well-known/jwks.json", Access::Public),
    ("POST", "/v1/auth/login", Access::Public),
    ("POST", "/v1/auth/refresh", Access::Public),
    ("POST", "/v1/auth/logout", Access::Public),
    ("POST", "/v1/auth/register", Access::Public),
    ("POST", "/v1/auth/mfa", Access::Public),
    ("GET", "/v1/me", Access::SignedIn),
    ("PATCH", "/v1/me", Access::SignedIn),
    ("POST", "/v1/me/email/confirm", Access::SignedIn),
    ("POST", "/v1/me/password", Access::SignedIn),
    ("GET", "/v1/me/mfa", Access::SignedIn),
    ("POST", "/v1/me/mfa/totp", STAFF),
    ("POST", "/v1/me/mfa/totp/confirm", STAFF),
    ("DELETE", "/v1/me/mfa/totp", STAFF),
    ("GET", "/v1/organisation/security", ADMIN),
    ("PUT", "/v1/organisation/security", ADMIN),
    ("POST", "/v1/invitations", STAFF),
    ("GET", "/v1/users", ADMIN),
    ("PATCH", "/v1/users/{id}", ADMIN),
    ("PUT", "/v1/me/check-ins/{date}", PATIENT),
    ("GET", "/v1/me/check-ins", PATIENT),
    ("GET", "/v1/me/check-ins/{date}", PATIENT),
    ("GET", "/v1/me/summary", PATIENT),
    ("POST", "/v1/me/sos", PATIENT),
    ("GET", "/v1/me/access-log", PATIENT),
    ("GET", "/v1/me/disclosures", PATIENT),
    ("GET", "/v1/patients/{id}/disclosures", STAFF),
    ("POST", "/v1/patients/{id}/emergency-disclosures", STAFF),
    ("GET", "/v1/patients", STAFF),
    ("GET", "/v1/patients/{id}", STAFF),
    ("PATCH", "/v1/patients/{id}", STAFF),
    ("PUT", "/v1/patients/{id}/care-team", ADMIN),
    ("GET", "/v1/patients/{id}/summary", STAFF),
    ("GET", "/v1/patients/{id}/trends", STAFF),
    ("GET", "/v1/patients/{id}/check-ins", STAFF),
    ("POST", "/v1/patients/{id}/check-ins/import", STAFF),
    ("GET", "/v1/patients/{id}/risk-policy", STAFF),
    ("PUT", "/v1/patients/{id}/risk-policy", STAFF),
    ("POST", "/v1/patients/{id}/risk-policy/backtest", STAFF),
    ("GET", "/v1/organisation/risk-policy", STAFF),
    ("PUT", "/v1/organisation/risk-policy", ADMIN),
    ("POST", "/v1/organisation/risk-policy/backtest", ADMIN),
    ("GET", "/v1/organisation/crisis-resources", STAFF),
    ("PUT", "/v1/organisation/crisis-resources", ADMIN),
    ("GET", "/v1/organisation/audit-events", ADMIN),
    ("POST", "/v1/organisation/webhooks", ADMIN),
    ("GET", "/v1/organisation/webhooks", ADMIN),
    ("GET", "/v1/organisation/webhooks/{id}", ADMIN),
    ("DELETE", "/v1/organisation/webhooks/{id}", ADMIN),
    ("GET", "/v1/organisation/webhooks/{id}/deliveries", ADMIN),
    ("GET", "/v1/alerts", STAFF),
    ("GET", "/v1/alerts/stream", STAFF),
    ("GET", "/v1/alerts/{id}", STAFF),
    ("GET", "/v1/alerts/{id}/history", STAFF),
    ("POST", "/v1/alerts/{id}/acknowledge", STAFF),
    ("POST", "/v1/alerts/{id}/resolve", STAFF),
    (
        "GET",
        "/.well-known/oauth-authorization-server",
        Access::Public,
    ),
    ("POST", "/oauth/token", Access::Public),
    ("POST", "/v1/organisation/integrations", ADMIN),
    ("GET", "/v1/organisation/integrations", ADMIN),
    ("GET", "/v1/organisation/integrations/{id}", ADMIN),
    ("PATCH", "/v1/organisation/integrations/{id}", ADMIN),
    ("DELETE", "/v1/organisation/integrations/{id}", ADMIN),
    ("POST", "/v1/organisation/integrations/{id}/secret", ADMIN),
    ("GET", "/v1/organisation/integrations/{id}/webhooks", ADMIN),
    ("GET", "/v1/me/integrations", PATIENT),
    ("POST", "/v1/me/consents", PATIENT),
    ("GET", "/v1/me/consents", PATIENT),
    ("GET", "/v1/me/consents/{id}", PATIENT),
    ("POST", "/v1/me/consents/{id}/revoke", PATIENT),
    ("GET", "/v1/patients/{id}/consents", STAFF),
    ("GET", "/v1/integration/patients", Access::Integration),
    ("GET", "/v1/integration/patients/{id}", Access::Integration),
    (
        "GET",
        "/v1/integration/patients/{id}/check-ins",
        Access::Integration,
    ),
    (
        "GET",
        "/v1/integration/patients/{id}/alerts",
        Access::Integration,
    ),
    ("POST", "/v1/integration/webhooks", Access::Integration),
    ("GET", "/v1/integration/webhooks", Access::Integration),
    (
        "DELETE",
        "/v1/integration/webhooks/{id}",
        Access::Integration,
    ),
    ("GET", "/v1/me/export", PATIENT),
    ("GET", "/v1/patients/{id}/export", STAFF),
    ("DELETE", "/v1/me", PATIENT),
    ("DELETE", "/v1/patients/{id}", ADMIN),
    ("GET", "/v1/organisation/retention", ADMIN),
    ("PUT", "/v1/organisation/retention", ADMIN),
    (
        "GET",
        "/v1/integration/webhooks/{id}/deliveries",
        Access::Integration,
    ),
    ("GET", "/fhir/Questionnaire/daily-check-in", Access::Public),
    ("GET", "/fhir/CodeSystem/{id}", Access::Public),
];

/// The access rule of a route, by method and matched pattern (`HEAD` as `GET`); `None` for a
/// route not in [`ROUTES`].
pub fn route_access(method: &str, pattern: &str) -> Option<Access> {
    let method = if method == "HEAD" { "GET" } else { method };
    ROUTES
        .iter()
        .find(|(m, p, _)| *m == method && *p == pattern)
        .map(|(_, _, a)| *a)
}
