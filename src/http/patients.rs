//! Patients as counsellors and admins see them.

use actix_web::{get, patch, put, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::Json;
use super::pagination::{Page, PageParams};
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
    /// ISO 3166-1 alpha-2 country on the patient's profile, null when unset.
    pub country: Option<String>,
    /// The country whose crisis lines the patient is shown (the profile's, else their
    /// timezone's; null when neither gives one).
    pub crisis_country: Option<String>,
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
        country: p.country.clone(),
        crisis_country: crate::domain::crisis::patient_country(p.country.as_deref(), &u.timezone),
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
                audit::Event::patient("patient.read", &id, "patient", Some(&id)),
            )?;
            Ok(d)
        })
        .await;
    let d = result?;
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
    result?;
    let d = state.store.run(move |conn| detail(conn, &id)).await?;
    Ok(HttpResponse::Ok().json(d))
}

/// One patient in a caseload.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseloadItem {
    /// Patient id.
    pub id: String,
    /// The patient's name.
    pub display_name: String,
    /// Current phase.
    pub phase: String,
    /// The most recent check-in's local date.
    pub last_check_in_date: Option<NaiveDate>,
    /// Unresolved (open or acknowledged) alerts.
    pub open_alerts: usize,
    /// The highest severity among them.
    pub highest_open_severity: Option<String>,
    /// The current abstinent streak in days.
    pub days_since_last_use: Option<i64>,
}

/// The caseload, ordered by risk: the highest unresolved severity first, then the number of
/// unresolved alerts, then the longest silence.
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of the caseload", body = Page<CaseloadItem>),
        (status = 400, description = "Bad query parameter", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
    )
)]
#[get("/patients")]
pub async fn caseload(
    state: web::Data<AppState>,
    caller: Caller,
    q: super::extract::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let limit = q.0.limit()?;
    let offset: usize = match q.0.position()? {
        Some(p) => p.parse().map_err(|_| {
            ApiError::BadQuery(vec![crate::domain::validation::FieldError::new(
                "cursor",
                "is not a cursor this API gave out",
            )])
        })?,
        None => 0,
    };
    let c = caller.clone();
    let items = state
        .store
        .run(move |conn| -> Result<Vec<CaseloadItem>, ApiError> {
            let only = match c.role {
                Role::Admin => None,
                _ => Some(patients::ids_for_counsellor(conn, &c.user_id)?),
            };
            let rows = patients::list_with_users(conn, &c.organisation_id, only)?;
            let ranks = crate::store::alerts::unresolved_ranks(conn, &c.organisation_id)?;
            let mut items: Vec<(i32, CaseloadItem)> = rows
                .into_iter()
                .map(|(p, u)| {
                    let mine: Vec<i32> = ranks
                        .iter()
                        .filter(|(pid, _)| *pid == p.user_id)
                        .map(|(_, r)| *r)
                        .collect();
                    let top = mine.iter().copied().max().unwrap_or(0);
                    let today = crate::service::check_ins::local_today(&u.timezone);
                    let ctx = crate::domain::risk::PatientContext {
                        phase_history: Vec::new(),
                        last_use_before: match (p.last_use_on, p.enrolment_last_use_on) {
                            (Some(a), Some(b)) => Some(a.max(b)),
                            (a, b) => a.or(b),
                        },
                        streak_origin: p
                            .first_check_in_on
                            .or(p.enrolment_last_use_on.and_then(|d| d.succ_opt())),
                    };
                    let days = crate::domain::risk::abstinent_days(
                        today + chrono::TimeDelta::days(1),
                        &ctx,
                    );
                    (
                        top,
                        CaseloadItem {
                            id: p.user_id,
                            display_name: u.display_name,
                            phase: p.phase,
                            last_check_in_date: p.last_check_in_on,
                            open_alerts: mine.len(),
                            highest_open_severity: severity_name(top),
                            days_since_last_use: days,
                        },
                    )
                })
                .collect();
            items.sort_by(|(ra, a), (rb, b)| {
                rb.cmp(ra)
                    .then(b.open_alerts.cmp(&a.open_alerts))
                    .then(a.last_check_in_date.cmp(&b.last_check_in_date))
                    .then(a.display_name.cmp(&b.display_name))
                    .then(a.id.cmp(&b.id))
            });
            audit::record(
                conn,
                &c,
                audit::Event::other("caseload.read", "patient", None),
            )?;
            Ok(items.into_iter().map(|(_, i)| i).collect())
        })
        .await?;
    let limit_us = usize::try_from(limit).unwrap_or(50);
    let total = items.len();
    let page: Vec<CaseloadItem> = items.into_iter().skip(offset).take(limit_us).collect();
    let next = (offset + limit_us < total)
        .then(|| super::pagination::cursor(&(offset + limit_us).to_string()));
    Ok(HttpResponse::Ok().json(Page {
        items: page,
        next_cursor: next,
    }))
}

fn severity_name(rank: i32) -> Option<String> {
    match rank {
        1 => Some("info".into()),
        2 => Some("warning".into()),
        3 => Some("high".into()),
        4 => Some("critical".into()),
        _ => None,
    }
}

/// A phase change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePatient {
    /// The new phase: `detox`, `treatment`, `aftercare` or `discharged`.
    pub phase: String,
    /// The local date it started (default: the patient's local today); not in the future.
    pub phase_started_on: Option<NaiveDate>,
}

/// Move a patient to another treatment phase; the history is kept.
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Patient id")),
    request_body = UpdatePatient,
    responses(
        (status = 200, description = "The patient", body = PatientDetail),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
        (status = 404, description = "No such patient within your reach", body = Problem),
        (status = 422, description = "Invalid phase or date", body = Problem),
    )
)]
#[patch("/patients/{id}")]
pub async fn patch_patient(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<UpdatePatient>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let id = path.into_inner();
    let b = body.0;
    if crate::domain::policy::Phase::parse(&b.phase).is_none() {
        return Err(ApiError::field(
            "phase",
            "must be detox, treatment, aftercare or discharged",
        ));
    }
    let c = caller.clone();
    let result = state
        .store
        .transaction(move |conn| -> Result<PatientDetail, ApiError> {
            policy::reachable_patient(conn, &c, &id)?;
            let tz = users::find_user(conn, &id)?
                .map(|u| u.timezone)
                .unwrap_or_default();
            let today = crate::service::check_ins::local_today(&tz);
            let started = b.phase_started_on.unwrap_or(today);
            if started > today {
                return Err(ApiError::field(
                    "phase_started_on",
                    "must not be in the future",
                ));
            }
            let history = patients::phase_history(conn, &id)?;
            if history.last().is_some_and(|h| started < h.started_on) {
                return Err(ApiError::field(
                    "phase_started_on",
                    "must not be before the current phase started",
                ));
            }
            patients::change_phase(
                conn,
                &patients::PhaseChangeRow {
                    id: crate::store::new_id(),
                    patient_id: id.clone(),
                    phase: b.phase,
                    started_on: started,
                    changed_by: Some(c.user_id.clone()),
                    created_at: crate::store::now(),
                },
            )?;
            crate::service::check_ins::reschedule_missed_review(conn, &id)?;
            audit::record(
                conn,
                &c,
                audit::Event::patient("patient.write", &id, "patient", Some(&id)),
            )?;
            detail(conn, &id)
        })
        .await;
    let d = result?;
    Ok(HttpResponse::Ok().json(d))
}
