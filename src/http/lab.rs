//! The policy lab: backtests of a candidate policy, or of a patient's overrides, over recorded
//! history (SPEC §11).

use actix_web::{post, web, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::Json;
use crate::auth::{Caller, Role};
use crate::domain::policy::{PolicyOverrides, RiskPolicy};
use crate::error::{ApiError, Problem};
use crate::service::lab::{self, Backtest, OrganisationBacktest};
use crate::state::AppState;

/// A backtest of the organisation's history.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganisationBacktestRequest {
    /// The candidate policy, complete and validated like `PUT /v1/organisation/risk-policy`
    /// (default: the current one). Each patient's overrides are merged over it.
    #[serde(default)]
    pub policy: Option<RiskPolicy>,
    /// The first local date to replay (each patient's own timezone).
    pub from: NaiveDate,
    /// The last local date to replay; at most five years after `from`.
    pub to: NaiveDate,
    /// Only these patients (at most 1,000; default: every patient of the organisation).
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, max_items = 1000)]
    pub patient_ids: Option<Vec<String>>,
    /// No counsellor acts in a replay: each alert counts as resolved this many days after it
    /// opened, and the next finding opens a new one (1–90, default 1).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 90)]
    pub assume_resolved_after_days: Option<u32>,
}

/// A preview of a patient's overrides on that patient's history.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientBacktestRequest {
    /// The overrides to preview (same shape as `PUT /v1/patients/{id}/risk-policy`), merged
    /// over the organisation policy in place of the stored ones.
    pub overrides: PolicyOverrides,
    /// The first local date to replay (default: 89 days before `to`).
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// The last local date to replay (default: the patient's local today).
    #[serde(default)]
    pub to: Option<NaiveDate>,
}

/// Replay a policy over the organisation's history (admins). The alerts it would have raised,
/// day by day in each patient's timezone through the same engine, missed-check-in sweep and
/// one-alert-per-episode code as live traffic; per rule, its burden beside how counsellors
/// resolved the real alerts it led over the same stretch. Bounded: at most five years and
/// 2,000 patient-years per request.
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    request_body = OrganisationBacktestRequest,
    responses(
        (status = 200, description = "What the policy would have raised", body = Backtest),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 422, description = "Invalid policy, range or patients (the field is named)", body = Problem),
    )
)]
#[post("/organisation/risk-policy/backtest")]
pub async fn organisation_backtest(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<OrganisationBacktestRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let b = body.0;
    let result = lab::organisation_backtest(
        &state,
        &caller,
        OrganisationBacktest {
            policy: b.policy,
            from: b.from,
            to: b.to,
            patient_ids: b.patient_ids,
            assume_resolved_after_days: b.assume_resolved_after_days,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(result))
}

/// Preview a patient's risk-policy overrides on their history before saving them (care team
/// and admins): what they would have raised, default over the last 90 days.
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Patient id")),
    request_body = PatientBacktestRequest,
    responses(
        (status = 200, description = "What the overrides would have raised", body = Backtest),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
        (status = 404, description = "No such patient within your reach", body = Problem),
        (status = 422, description = "Invalid overrides or range (the field is named)", body = Problem),
    )
)]
#[post("/patients/{id}/risk-policy/backtest")]
pub async fn patient_backtest(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<PatientBacktestRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let b = body.0;
    let result = lab::patient_backtest(
        &state,
        &caller,
        path.into_inner(),
        b.overrides,
        b.from,
        b.to,
    )
    .await?;
    Ok(HttpResponse::Ok().json(result))
}
