//! Patients as counsellors and admins see them.

use actix_web::{get, put, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::Json;
use super::types::utc;
use crate::auth::{policy, Caller, Role};
use crate::error::{ApiError, Problem};
use crate::service::{accounts, audit};
use crate::state::AppState;
use crate::store::{accounts as users, patients, DbConnection};

/// One entry of the phase history.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhaseEntry {
    /// `detox`, `treatment`, `aftercare` or `discharged`.
    pub phase: String,
    /// The local date the phase started.
    pub started_on: NaiveDate,
}

/// A care-team member.
#[derive(Debug, Serialize, ToSchema)]
pub struct CareTeamMember {
    /// The counsellor's user id.
    pub counsellor_id: String,
    /// The counsellor's name.
    pub display_name: String,
    /// Whether this is the patient's primary counsellor.
    pub is_primary: bool,
}

/// A patient's record header.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientDetail {
    /// Patient (user) id.
    pub id: String,
    /// The patient's name.
    pub display_name: String,
    /// The patient's email.
    pub email: String,
    /// The patient's IANA timezone.
    pub timezone: String,
    /// Current treatment phase.
    pub phase: String,
    /// When the current phase started.
    pub phase_started_on: NaiveDate,
    /// Every phase, oldest first.
    pub phase_history: Vec<PhaseEntry>,
    /// The counsellors who may read this patient.
    pub care_team: Vec<CareTeamMember>,
    /// Last use reported at enrolment, if any.
    pub enrolment_last_use_date: Option<NaiveDate>,
    /// The most recent check-in's local date.
    pub last_check_in_date: Option<NaiveDate>,
    /// When the patient enrolled.
    pub created_at: DateTime<Utc>,
}

/// Builds a patient's detail view (the caller's reach already checked).
pub fn detail(conn: &mut DbConnection, patient_id: &str) -> Result<PatientDetail, ApiError> {
    let (p, u) = patients::find_with_user(conn, patient_id)?.ok_or(ApiError::NotFound)?;
    let history = patients::phase_history(conn, patient_id)?;
    let mut team = Vec::new();
    for m in patients::care_team(conn, patient_id)? {
        let name = users::find_user(conn, &m.counsellor_id)?
            .map(|c| c.display_name)
            .unwrap_or_default();
        team.push(CareTeamMember {
            counsellor_id: m.counsellor_id,
            display_name: name,
            is_primary: m.is_primary,
        });
    }
    Ok(PatientDetail {
        id: p.user_id,
        display_name: u.display_name,
        email: u.email,
        timezone: u.timezone,
        phase: p.phase,
        phase_started_on: p.phase_started_on,
        phase_history: history
            .into_iter()
            .map(|h| PhaseEntry {
                phase: h.phase,
                started_on: h.started_on,
            })
            .collect(),
        care_team: team,
        enrolment_last_use_date: p.enrolment_last_use_on,
        last_check_in_date: p.last_check_in_on,
        created_at: utc(p.created_at),
    })
}

/// A patient's record (counsellors on the care team, and admins).
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Patient id")),
    responses(
        (status = 200, description = "The patient", body = PatientDetail),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients use /v1/me", body = Problem),
        (status = 404, description = "No such patient within your reach", body = Problem),
    )
)]
#[get("/patients/{id}")]
pub async fn get_patient(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let id = path.into_inner();
    let c = caller.clone();
    let result = state
        .store
        .run(move |conn| -> Result<PatientDetail, ApiError> {
            policy::reachable_patient(conn, &c, &id)?;
            let d = detail(conn, &id)?;
            audit::record(
                conn,
                &c,
                audit::Event {
                    action: "patient.read",
                    patient_id: Some(&id),
                    target_type: Some("patient"),
                    target_id: Some(&id),
                    outcome: "success",
                },
            )?;
            Ok(d)
        })
        .await;
    let d = super::audit_denial(&state, &caller, "patient.read", result).await?;
    Ok(HttpResponse::Ok().json(d))
}

/// A care team to assign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CareTeamRequest {
    /// The counsellors who may read this patient (replaces the current team; may be empty).
    pub counsellor_ids: Vec<String>,
    /// The primary counsellor; one of `counsellor_ids` (default: the first).
    pub primary_counsellor_id: Option<String>,
}

/// Assign a patient's care team (admins only). Counsellors removed lose access on their very
/// next request.
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Patient id")),
    request_body = CareTeamRequest,
    responses(
        (status = 200, description = "The patient with the new care team", body = PatientDetail),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 404, description = "No such patient in your organisation", body = Problem),
        (status = 422, description = "A listed user is not a counsellor of your organisation", body = Problem),
    )
)]
#[put("/patients/{id}/care-team")]
pub async fn put_care_team(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<CareTeamRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let b = body.0;
    let result = accounts::set_care_team(
        &state,
        &caller,
        id.clone(),
        b.counsellor_ids,
        b.primary_counsellor_id,
    )
    .await;
    super::audit_denial(&state, &caller, "care_team.write", result).await?;
    let d = state.store.run(move |conn| detail(conn, &id)).await?;
    Ok(HttpResponse::Ok().json(d))
}
