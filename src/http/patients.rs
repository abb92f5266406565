//! Patients as counsellors and admins see them.

use actix_web::{get, patch, put, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::check_ins::{summary, Summary};
use super::extract::Json;
use super::pagination::{Page, PageParams};
use super::types::utc;
use super::vocabulary::{CountryCode, Timezone};
use crate::auth::{policy, Caller, Role};
use crate::domain::policy::{Phase, Severity};
use crate::error::{ApiError, Problem};
use crate::service::{accounts, audit, patients as patient_service};
use crate::state::AppState;
use crate::store::{accounts as users, patients, DbConnection};

/// One entry of the phase history.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhaseEntry {
    /// `detox`, `treatment`, `aftercare` or `discharged`.
    #[schema(value_type = Phase)]
    pub phase: String,
    /// The local date the phase started.
    pub started_on: NaiveDate,
}

/// A care-team member.
#[derive(Debug, Serialize, ToSchema)]
pub struct CareTeamMember {
    /// The counsellor's user id.
    #[schema(format = Uuid)]
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
    #[schema(format = Uuid)]
    pub id: String,
    /// The patient's name.
    pub display_name: String,
    /// The patient's email.
    #[schema(format = Email)]
    pub email: String,
    /// The patient's IANA timezone.
    #[schema(value_type = Timezone)]
    pub timezone: String,
    /// ISO 3166-1 alpha-2 country on the patient's profile, null when unset.
    #[schema(value_type = Option<CountryCode>)]
    pub country: Option<String>,
    /// The country whose crisis lines the patient is shown (the profile's, else their
    /// timezone's; null when neither gives one).
    #[schema(value_type = Option<CountryCode>)]
    pub crisis_country: Option<String>,
    /// Current treatment phase.
    #[schema(value_type = Phase)]
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
    /// When the account was closed (erasure asked for); null while it is open. A closed
    /// account's record is kept unchanged until `erasure_due_at`, then erased.
    pub closed_at: Option<DateTime<Utc>>,
    /// When the clinical content of a closed account will be erased.
    pub erasure_due_at: Option<DateTime<Utc>>,
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
        closed_at: p.closed_at.map(utc),
        erasure_due_at: p.erasure_due_at.map(utc),
    })
}

/// A patient's record (counsellors on the care team, and admins).
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Patient id")),
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
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub counsellor_ids: Vec<String>,
    /// The primary counsellor; one of `counsellor_ids` (default: the first).
    #[schema(format = Uuid)]
    pub primary_counsellor_id: Option<String>,
}

/// Assign a patient's care team (admins only). Counsellors removed lose access on their very
/// next request.
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Patient id")),
    request_body = CareTeamRequest,
    responses(
        (status = 200, description = "The patient with the new care team", body = PatientDetail),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 404, description = "No such patient in your organisation", body = Problem),
        (status = 409, description = "The patient's account was closed (the record is kept unchanged until it is erased)", body = Problem),
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

/// The headline values of the most recent check-in.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatestCheckIn {
    /// Its local date.
    pub date: NaiveDate,
    /// Strongest urge to use, 0–10.
    #[schema(minimum = 0, maximum = 10)]
    pub craving: i32,
    /// Mood, 0–10.
    #[schema(minimum = 0, maximum = 10)]
    pub mood: i32,
    /// Hours slept, if answered (0–24).
    #[schema(minimum = 0, maximum = 24)]
    pub sleep_hours: Option<f64>,
}

/// One patient in a caseload.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a6f2-7c1e-7d40-9a55-3f1f6f1d2b10",
    "display_name": "Dana R.",
    "phase": "aftercare",
    "phase_started_on": "2026-10-02",
    "timezone": "America/New_York",
    "last_check_in_date": "2026-12-01",
    "checked_in_today": false,
    "latest": {"date": "2026-12-01", "craving": 8, "mood": 3, "sleep_hours": 4.5},
    "open_alerts": 1,
    "highest_open_severity": "high",
    "escalated": false,
    "days_since_last_use": 61
}))]
pub struct CaseloadItem {
    /// Patient id.
    #[schema(format = Uuid)]
    pub id: String,
    /// The patient's name.
    pub display_name: String,
    /// Current phase.
    #[schema(value_type = Phase)]
    pub phase: String,
    /// When the current phase started (the patient's local date).
    pub phase_started_on: NaiveDate,
    /// The patient's IANA timezone.
    #[schema(value_type = Timezone)]
    pub timezone: String,
    /// The most recent check-in's local date.
    pub last_check_in_date: Option<NaiveDate>,
    /// Whether the check-in of the patient's local today is in.
    pub checked_in_today: bool,
    /// The most recent check-in's values; null before the first check-in.
    pub latest: Option<LatestCheckIn>,
    /// Unresolved (open or acknowledged) alerts.
    pub open_alerts: usize,
    /// The highest severity among them (null when there are none).
    #[schema(value_type = Option<Severity>)]
    pub highest_open_severity: Option<String>,
    /// Whether an unresolved alert was escalated (not acknowledged in time).
    pub escalated: bool,
    /// The current abstinent streak in days, today included (the same count as the
    /// patient's summary).
    pub days_since_last_use: Option<i64>,
}

impl From<patient_service::CaseloadEntry> for CaseloadItem {
    fn from(e: patient_service::CaseloadEntry) -> Self {
        Self {
            id: e.patient.user_id,
            display_name: e.user.display_name,
            phase: e.patient.phase,
            phase_started_on: e.patient.phase_started_on,
            timezone: e.user.timezone,
            last_check_in_date: e.patient.last_check_in_on,
            checked_in_today: e.checked_in_today,
            latest: e.latest.map(|l| LatestCheckIn {
                date: l.date,
                craving: l.craving,
                mood: l.mood,
                sleep_hours: l.sleep_hours,
            }),
            open_alerts: e.open_alerts,
            highest_open_severity: severity_name(e.urgency.severity_rank),
            escalated: e.urgency.escalated,
            days_since_last_use: e.days_since_last_use,
        }
    }
}

/// The caseload, ordered by risk: the highest unresolved severity first, then escalated
/// alerts, then the alert waiting longest for acknowledgement, then the longest time since
/// the last check-in (never checked in counts as longest), then by name.
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
    let items = patient_service::caseload(&state, &caller).await?;
    let limit_us = usize::try_from(limit).unwrap_or(50);
    let total = items.len();
    let page: Vec<CaseloadItem> = items
        .into_iter()
        .skip(offset)
        .take(limit_us)
        .map(CaseloadItem::from)
        .collect();
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

/// A patient's summary, as the patient sees it in `/v1/me/summary` (counsellors on the care
/// team, and admins).
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Patient id")),
    responses(
        (status = 200, description = "The patient's summary, on the patient's local today", body = Summary),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients use /v1/me/summary", body = Problem),
        (status = 404, description = "No such patient within your reach", body = Problem),
    )
)]
#[get("/patients/{id}/summary")]
pub async fn patient_summary(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let id = path.into_inner();
    let c = caller.clone();
    let s = state
        .store
        .run(move |conn| -> Result<Summary, ApiError> {
            policy::reachable_patient(conn, &c, &id)?;
            let tz = users::find_user(conn, &id)?
                .map(|u| u.timezone)
                .unwrap_or_default();
            let s = summary(conn, &id, crate::service::check_ins::local_today(&tz))?;
            audit::record(
                conn,
                &c,
                audit::Event::patient("summary.read", &id, "patient", Some(&id)),
            )?;
            Ok(s)
        })
        .await?;
    Ok(HttpResponse::Ok().json(s))
}

/// The chart window.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TrendParams {
    /// How many local days, ending today, 1–365 (default 35).
    #[param(minimum = 1, maximum = 365)]
    pub days: Option<i64>,
}

/// One local date of a patient's chart; values are null where there was no check-in (or
/// the question was not answered).
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendPoint {
    /// The patient's local date.
    pub date: NaiveDate,
    /// Strongest urge to use, 0–10.
    #[schema(minimum = 0, maximum = 10)]
    pub craving: Option<i32>,
    /// Mood, 0–10.
    #[schema(minimum = 0, maximum = 10)]
    pub mood: Option<i32>,
    /// Hours slept, 0–24.
    #[schema(minimum = 0, maximum = 24)]
    pub sleep_hours: Option<f64>,
    /// Minutes of exercise, 0–1440.
    #[schema(minimum = 0, maximum = 1440)]
    pub exercise_minutes: Option<i32>,
    /// Meals eaten, 0–10.
    #[schema(minimum = 0, maximum = 10)]
    pub meals: Option<i32>,
    /// SOWS total, 0–64.
    #[schema(minimum = 0, maximum = 64)]
    pub withdrawal_score: Option<i32>,
}

/// Chart data for a patient: one entry per local date of the last `days` days in the
/// patient's timezone, oldest first (counsellors on the care team, and admins).
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Patient id"), TrendParams),
    responses(
        (status = 200, description = "One entry per local date, oldest first, the last one the patient's local today", body = [TrendPoint]),
        (status = 400, description = "`days` is not from 1 to 365", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
        (status = 404, description = "No such patient within your reach", body = Problem),
    )
)]
#[get("/patients/{id}/trends")]
pub async fn patient_trends(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    q: super::extract::Query<TrendParams>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let days = patient_service::trend_days(q.0.days).map_err(|e| ApiError::BadQuery(vec![e]))?;
    let entries = patient_service::trends(&state, &caller, path.into_inner(), days).await?;
    Ok(HttpResponse::Ok().json(
        entries
            .into_iter()
            .map(|d| {
                let v = d.check_in;
                TrendPoint {
                    date: d.date,
                    craving: v.as_ref().map(|v| v.craving),
                    mood: v.as_ref().map(|v| v.mood),
                    sleep_hours: v.as_ref().and_then(|v| v.sleep_hours),
                    exercise_minutes: v.as_ref().map(|v| v.exercise_minutes),
                    meals: v.as_ref().map(|v| v.meals),
                    withdrawal_score: v.as_ref().and_then(|v| v.withdrawal_score),
                }
            })
            .collect::<Vec<TrendPoint>>(),
    ))
}

/// A phase change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePatient {
    /// The new phase: `detox`, `treatment`, `aftercare` or `discharged`.
    #[schema(value_type = Phase)]
    pub phase: String,
    /// The patient's local date it started (default: their local today): within the last
    /// year, not in the future and not before the current phase started.
    #[serde(alias = "phase_started_on")]
    pub started_on: Option<NaiveDate>,
}

/// Move a patient to another treatment phase; the history is kept.
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Patient id")),
    request_body = UpdatePatient,
    responses(
        (status = 200, description = "The patient", body = PatientDetail),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
        (status = 404, description = "No such patient within your reach", body = Problem),
        (status = 409, description = "The patient's account was closed (the record is kept unchanged until it is erased)", body = Problem),
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
            policy::writable_patient(conn, &c, &id)?;
            let tz = users::find_user(conn, &id)?
                .map(|u| u.timezone)
                .unwrap_or_default();
            let today = crate::service::check_ins::local_today(&tz);
            let started = b.started_on.unwrap_or(today);
            patient_service::check_past_date("started_on", started, today, 0)
                .map_err(|e| ApiError::Validation(vec![e]))?;
            let history = patients::phase_history(conn, &id)?;
            if history.last().is_some_and(|h| started < h.started_on) {
                return Err(ApiError::field(
                    "started_on",
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
