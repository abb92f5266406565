//! Closing an account and erasing a patient (SPEC §10), and the organisation's retention delay.

use actix_web::{delete, get, put, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::Json;
use super::types::utc;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::service::erasure::{self, Closure};
use crate::state::AppState;

/// The patient's password, which stands for a recent sign-in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseAccount {
    /// The account's current password.
    #[schema(max_length = 128)]
    pub password: String,
}

/// A closed account and its erasure.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "patient_id": "0193a6f2-7c1e-7d40-9a55-3f1f6f1d2b10",
    "closed_at": "2026-12-05T10:00:00Z",
    "erasure_due_at": "2026-12-05T10:00:00Z",
    "erased_at": "2026-12-05T10:00:00Z"
}))]
pub struct AccountClosure {
    /// The patient.
    #[schema(format = Uuid)]
    pub patient_id: String,
    /// When the account was closed: sign-in and every session stopped then.
    pub closed_at: DateTime<Utc>,
    /// When the clinical content is (or was) due to be erased: the closure plus the
    /// organisation's retention delay.
    pub erasure_due_at: Option<DateTime<Utc>>,
    /// When it was erased; null while the retention delay runs.
    pub erased_at: Option<DateTime<Utc>>,
}

impl From<Closure> for AccountClosure {
    fn from(c: Closure) -> Self {
        Self {
            patient_id: c.patient_id,
            closed_at: utc(c.closed_at),
            erasure_due_at: c.erasure_due_at.map(utc),
            erased_at: c.erased_at.map(utc),
        }
    }
}

fn answer(c: Closure) -> HttpResponse {
    HttpResponse::Ok().json(AccountClosure::from(c))
}

/// Close the signed-in patient's account and erase their clinical content.
///
/// Sign-in stops at once and every session ends (this one too); every consent is revoked,
/// deliveries not yet sent are dropped and an unresolved alert is resolved. The clinical
/// content — check-ins, alert explanations, evidence and notes, SOS messages — is erased after
/// the organisation's retention delay (`erased_at` is set when it is done; with no delay, at
/// once). The audit trail and the accounting of disclosures remain, holding who, what and when
/// but no clinical values. There is no way back into a closed account.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    request_body = CloseAccount,
    responses(
        (status = 200, description = "Closed; erased now or scheduled", body = AccountClosure),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients only (staff accounts are disabled by an admin)", body = Problem),
        (status = 422, description = "Missing or wrong password", body = Problem),
        (status = 429, description = "Too many wrong passwords", body = Problem,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
#[delete("/me")]
pub async fn close_my_account(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: Json<CloseAccount>,
) -> Result<HttpResponse, ApiError> {
    let client = super::auth::client_address(&req, &state.settings.trusted_proxies);
    let closure = erasure::close_own_account(&state, &caller, body.0.password, &client).await?;
    Ok(answer(closure))
}

/// Erase a patient (admins; a sign-in within the last 10 minutes).
///
/// As the patient's own `DELETE /v1/me`: the account is closed at once and the clinical
/// content erased after the organisation's retention delay. Until then the care team and
/// admins can still read the record (unchanged: changes to it are 409); afterwards the patient
/// is 404 to everyone. Asking again during the delay answers with the same closure.
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Patient id")),
    responses(
        (status = 200, description = "Closed; erased now or scheduled", body = AccountClosure),
        (status = 401, description = "Not signed in, or (type ending reauthentication-required) not signed in within the last 10 minutes", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 404, description = "No such patient in your organisation (or already erased)", body = Problem),
    )
)]
#[delete("/patients/{id}")]
pub async fn erase_patient(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let closure = erasure::erase_patient(&state, &caller, path.into_inner()).await?;
    Ok(answer(closure))
}

/// How long a closed account's clinical content is kept before it is erased.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Days from an account's closure to the erasure of its clinical content (0: at once).
    /// A change applies to accounts closed afterwards.
    #[schema(minimum = 0, maximum = 3650)]
    pub erasure_delay_days: i32,
}

/// The organisation's retention delay (admins).
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The retention delay", body = Retention),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
    )
)]
#[get("/organisation/retention")]
pub async fn get_retention(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let days = erasure::retention(&state, &caller).await?;
    Ok(HttpResponse::Ok().json(Retention {
        erasure_delay_days: days,
    }))
}

/// Set the organisation's retention delay (admins; a sign-in within the last 10 minutes).
/// Accounts closed from now on are erased this many days after their closure; erasures
/// already scheduled keep their date.
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    request_body = Retention,
    responses(
        (status = 200, description = "The stored delay", body = Retention),
        (status = 401, description = "Not signed in, or (type ending reauthentication-required) not signed in within the last 10 minutes", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 422, description = "erasure_delay_days outside 0–3650", body = Problem),
    )
)]
#[put("/organisation/retention")]
pub async fn put_retention(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<Retention>,
) -> Result<HttpResponse, ApiError> {
    let days = erasure::set_retention(&state, &caller, body.0.erasure_delay_days).await?;
    Ok(HttpResponse::Ok().json(Retention {
        erasure_delay_days: days,
    }))
}
