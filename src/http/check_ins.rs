//! The patient's daily check-in, history, summary and SOS; and a patient's check-ins as the
//! care team sees them.

use actix_web::{get, post, put, web, HttpResponse};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{JsonReplacingNul, Query};
use super::pagination::{Page, PageParams};
use super::types::utc;
use crate::auth::{policy, Caller, Role};
use crate::domain::check_in::{CheckInInput, CheckInSource, Trigger};
use crate::domain::risk::{self, CrisisResource, SupportMessage};
use crate::domain::validation::FieldError;
use crate::error::{ApiError, Problem};
use crate::service::audit;
use crate::service::check_ins::{self as service, local_today};
use crate::state::AppState;
use crate::store::check_ins::{self as store, CheckInRow};
use crate::store::{patients, DbConnection};

/// A stored check-in.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckIn {
    /// The patient's local date.
    pub date: NaiveDate,
    /// Strongest urge to use, 0–10.
    #[schema(minimum = 0, maximum = 10)]
    pub craving: i32,
    /// Mood, 0–10.
    #[schema(minimum = 0, maximum = 10)]
    pub mood: i32,
    /// Minutes of exercise, 0–1440.
    #[schema(minimum = 0, maximum = 1440)]
    pub exercise_minutes: i32,
    /// Meals eaten, 0–10.
    #[schema(minimum = 0, maximum = 10)]
    pub meals: i32,
    /// Any use since the last check-in.
    pub used_substance: bool,
    /// What was used.
    pub substances: Vec<String>,
    /// Hours slept, 0–24 (one decimal).
    #[schema(minimum = 0, maximum = 24)]
    pub sleep_hours: Option<f64>,
    /// Anxiety, 0–10.
    #[schema(minimum = 0, maximum = 10)]
    pub anxiety: Option<i32>,
    /// Irritability, 0–10.
    #[schema(minimum = 0, maximum = 10)]
    pub irritability: Option<i32>,
    /// Loneliness, 0–10.
    #[schema(minimum = 0, maximum = 10)]
    pub loneliness: Option<i32>,
    /// What set off cravings.
    pub triggers: Vec<Trigger>,
    /// Medication taken as prescribed (null: not prescribed).
    pub took_medication: Option<bool>,
    /// Went to a support meeting.
    pub attended_support: Option<bool>,
    /// The SOWS items as answered.
    #[schema(value_type = Option<Object>)]
    pub withdrawal: Option<serde_json::Value>,
    /// SOWS total, 0–64.
    #[schema(minimum = 0, maximum = 64)]
    pub withdrawal_score: Option<i32>,
    /// Thoughts of self-harm.
    pub self_harm_thoughts: Option<bool>,
    /// Note for the counsellor (at most 2000 characters).
    #[schema(max_length = 2000)]
    pub note: Option<String>,
    /// When the patient answered on the device.
    pub answered_at: Option<DateTime<Utc>>,
    /// When the server received this version.
    pub received_at: DateTime<Utc>,
    /// When this date's check-in was last replaced.
    pub updated_at: DateTime<Utc>,
    /// 1 for the first submission of the date, +1 per correction.
    #[schema(minimum = 1)]
    pub version: i32,
    /// Submitted for a date before the patient's local today (always false for imported
    /// history, which the patient did not send late).
    pub late: bool,
    /// Where it came from: `app` (the patient sent it) or `import` (the care team imported it
    /// from the clinic's earlier system).
    pub source: CheckInSource,
    /// For imported check-ins, the label of the system they came from; null otherwise.
    pub imported_from: Option<String>,
}

/// Shapes a stored check-in; `late` says whether the date was already past, in the patient's
/// timezone, when the check-in for it first arrived (a later correction does not change it).
pub fn view(r: CheckInRow, timezone: &str) -> CheckIn {
    let first_received = r.created_at.and_utc().with_timezone(&service::tz(timezone));
    let source = CheckInSource::parse(&r.source);
    CheckIn {
        late: source == CheckInSource::App && r.date < first_received.date_naive(),
        source,
        imported_from: r.imported_from,
        date: r.date,
        craving: r.craving,
        mood: r.mood,
        exercise_minutes: r.exercise_minutes,
        meals: r.meals,
        used_substance: r.used_substance,
        substances: serde_json::from_str(&r.substances).unwrap_or_default(),
        sleep_hours: r.sleep_hours,
        anxiety: r.anxiety,
        irritability: r.irritability,
        loneliness: r.loneliness,
        triggers: serde_json::from_str(&r.triggers).unwrap_or_default(),
        took_medication: r.took_medication,
        attended_support: r.attended_support,
        withdrawal: r
            .withdrawal
            .as_deref()
            .and_then(|w| serde_json::from_str(w).ok()),
        withdrawal_score: r.withdrawal_score,
        self_harm_thoughts: r.self_harm_thoughts,
        note: r.note,
        answered_at: r.answered_at.map(utc),
        received_at: utc(r.received_at),
        updated_at: utc(r.updated_at),
        version: r.version,
    }
}

/// The answer to a check-in: what was stored, and what the patient should see at once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckInResponse {
    /// The stored check-in.
    pub check_in: CheckIn,
    /// Short supportive messages for what the check-in showed.
    pub support: Vec<SupportMessage>,
    /// Crisis resources, present when self-harm, SOS or high-risk use was found: the lines of
    /// the patient's country (their profile's `country`, else their timezone's).
    pub crisis_resources: Vec<CrisisResource>,
    /// Text the server changed before storing, field by field, so a check-in is never refused
    /// (nor its self-harm answer lost) for its free text: a NUL character (`\u0000`), which
    /// cannot be stored, is replaced with U+FFFD; and in a check-in reporting thoughts of
    /// self-harm, a note or substances that do not fit are cut to fit. Omitted when nothing
    /// was changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adjusted: Vec<FieldError>,
}

fn parse_date(raw: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| ApiError::field("date", "must be a date like 2026-11-22"))
}

fn require_patient(caller: &Caller) -> Result<(), ApiError> {
    caller.require(&[Role::Patient])
}

/// Submit (or correct) the check-in for a local date.
///
/// Accepted from 7 days before the patient's local today up to one day after it. A second
/// submission for the same date replaces the first (200) and bumps `version`.
#[utoipa::path(
    tag = "patient",
    security(("bearer" = [])),
    params(("date" = NaiveDate, Path, description = "The patient's local date, YYYY-MM-DD")),
    request_body = CheckInInput,
    responses(
        (status = 201, description = "Stored (first submission for the date)", body = CheckInResponse),
        (status = 200, description = "Replaced an earlier submission for the date", body = CheckInResponse),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients only", body = Problem),
        (status = 422, description = "An invalid or unknown field, or a date outside the window", body = Problem),
    )
)]
#[put("/me/check-ins/{date}")]
pub async fn put_check_in(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: JsonReplacingNul<CheckInInput>,
) -> Result<HttpResponse, ApiError> {
    require_patient(&caller)?;
    let date = parse_date(&path.into_inner())?;
    let mut input = body.body;
    let mut adjusted: Vec<FieldError> = body
        .replaced
        .iter()
        .map(|field| {
            FieldError::new(
                field.as_str(),
                "contained the NUL character (\\u0000), which cannot be stored; it was replaced with \u{FFFD}",
            )
        })
        .collect();
    adjusted.extend(input.fit_free_text_of_a_safety_report());
    let valid = input.validate().map_err(ApiError::Validation)?;
    let done = service::submit(&state, &caller, date, valid).await?;
    let body = CheckInResponse {
        check_in: view(done.row, &caller.timezone),
        support: done.support,
        crisis_resources: done.crisis_resources,
        adjusted,
    };
    Ok(if done.created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// A date range and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// First date (inclusive).
    pub from: Option<NaiveDate>,
    /// Last date (inclusive).
    pub to: Option<NaiveDate>,
    /// Items per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
}

fn page_of(
    conn: &mut DbConnection,
    patient_id: &str,
    timezone: &str,
    q: &RangeQuery,
) -> Result<Page<CheckIn>, ApiError> {
    let paging = PageParams {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let limit = paging.limit()?;
    let before = paging.date_position()?;
    let rows = store::page(conn, patient_id, q.from, q.to, before, limit + 1)?;
    Ok(Page::from_rows(
        rows,
        limit,
        |r| r.date.to_string(),
        |r| view(r, timezone),
    ))
}

/// The patient's check-ins, newest first.
#[utoipa::path(
    tag = "patient",
    security(("bearer" = [])),
    params(RangeQuery),
    responses(
        (status = 200, description = "A page of check-ins", body = Page<CheckIn>),
        (status = 400, description = "Bad query parameter", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients only", body = Problem),
    )
)]
#[get("/me/check-ins")]
pub async fn list_my_check_ins(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    require_patient(&caller)?;
    let q = q.0;
    let c = caller.clone();
    let page = state
        .store
        .run(move |conn| -> Result<Page<CheckIn>, ApiError> {
            let page = page_of(conn, &c.user_id, &c.timezone, &q)?;
            audit::record(
                conn,
                &c,
                audit::Event::patient("check_in.list", &c.user_id, "check_in", None),
            )?;
            Ok(page)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// The patient's check-in for one date.
#[utoipa::path(
    tag = "patient",
    security(("bearer" = [])),
    params(("date" = NaiveDate, Path, description = "Local date, YYYY-MM-DD")),
    responses(
        (status = 200, description = "The check-in", body = CheckIn),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients only", body = Problem),
        (status = 404, description = "No check-in for that date", body = Problem),
        (status = 422, description = "Not a date", body = Problem),
    )
)]
#[get("/me/check-ins/{date}")]
pub async fn get_my_check_in(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_patient(&caller)?;
    let date = parse_date(&path.into_inner())?;
    let c = caller.clone();
    let row = state
        .store
        .run(move |conn| -> Result<CheckInRow, ApiError> {
            let row = store::find(conn, &c.user_id, date)?.ok_or(ApiError::NotFound)?;
            audit::record(
                conn,
                &c,
                audit::Event::patient("check_in.read", &c.user_id, "check_in", Some(&row.id)),
            )?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view(row, &caller.timezone)))
}

/// Averages over the last seven local days.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastSevenDays {
    /// Check-ins in the last 7 local days (today included).
    pub check_ins: usize,
    /// Mean craving, 0–10.
    pub craving_avg: Option<f64>,
    /// Mean mood, 0–10.
    pub mood_avg: Option<f64>,
    /// Mean hours of sleep, where answered.
    pub sleep_hours_avg: Option<f64>,
    /// Total minutes of exercise.
    pub exercise_minutes_total: i64,
    /// Days on which use was reported.
    pub days_used: usize,
    /// Days a support meeting was attended.
    pub support_meetings: usize,
}

/// The patient's progress at a glance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Summary {
    /// Days of the current abstinent streak (null before any check-in or known last use).
    pub days_since_last_use: Option<i64>,
    /// Consecutive local days with a check-in, ending today (or yesterday, if today's is not in yet).
    pub check_in_streak: i64,
    /// The patient's local today.
    pub today: NaiveDate,
    /// Whether today's check-in is in.
    pub checked_in_today: bool,
    /// The last seven days.
    pub last_7_days: LastSevenDays,
}

fn avg(values: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.collect();
    (!v.is_empty()).then(|| (v.iter().sum::<f64>() / v.len() as f64 * 10.0).round() / 10.0)
}

/// Computes the summary for a patient on their local `today`.
pub fn summary(
    conn: &mut DbConnection,
    patient_id: &str,
    today: NaiveDate,
) -> Result<Summary, ApiError> {
    let p = patients::find(conn, patient_id)?.ok_or(ApiError::NotFound)?;
    let ctx = service::context(conn, &p, today + TimeDelta::days(1))?;
    let days_since_last_use =
        risk::abstinent_days(today + TimeDelta::days(1), &ctx).map(|d| d.max(0));
    let recent = store::range(conn, patient_id, today - TimeDelta::days(6), today)?;
    // The streak is counted in the last seven days already read, and read back in chunks
    // until the first gap only when it reaches further.
    let mut streak = 0i64;
    let checked_in_today = recent.iter().any(|r| r.date == today);
    let mut expect = if checked_in_today {
        today
    } else {
        today - TimeDelta::days(1)
    };
    let oldest = today - TimeDelta::days(6);
    for r in recent.iter().rev() {
        if r.date > expect {
            continue;
        }
        if r.date != expect {
            break;
        }
        streak += 1;
        expect -= TimeDelta::days(1);
    }
    let gap_seen = expect >= oldest;
    'outer: loop {
        if gap_seen {
            break;
        }
        let dates = store::dates_back_from(conn, patient_id, expect, 200)?;
        if dates.is_empty() {
            break;
        }
        for d in &dates {
            if *d != expect {
                break 'outer;
            }
            streak += 1;
            expect -= TimeDelta::days(1);
        }
        if dates.len() < 200 {
            break;
        }
    }
    Ok(Summary {
        days_since_last_use,
        check_in_streak: streak,
        today,
        checked_in_today,
        last_7_days: LastSevenDays {
            check_ins: recent.len(),
            craving_avg: avg(recent.iter().map(|r| f64::from(r.craving))),
            mood_avg: avg(recent.iter().map(|r| f64::from(r.mood))),
            sleep_hours_avg: avg(recent.iter().filter_map(|r| r.sleep_hours)),
            exercise_minutes_total: recent.iter().map(|r| i64::from(r.exercise_minutes)).sum(),
            days_used: recent.iter().filter(|r| r.used_substance).count(),
            support_meetings: recent
                .iter()
                .filter(|r| r.attended_support == Some(true))
                .count(),
        },
    })
}

/// The patient's streaks and recent averages.
#[utoipa::path(
    tag = "patient",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Summary", body = Summary),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients only", body = Problem),
    )
)]
#[get("/me/summary")]
pub async fn my_summary(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    require_patient(&caller)?;
    let c = caller.clone();
    let s = state
        .store
        .run(move |conn| -> Result<Summary, ApiError> {
            let s = summary(conn, &c.user_id, local_today(&c.timezone))?;
            audit::record(
                conn,
                &c,
                audit::Event::patient("summary.read", &c.user_id, "patient", Some(&c.user_id)),
            )?;
            Ok(s)
        })
        .await?;
    Ok(HttpResponse::Ok().json(s))
}

/// An SOS press.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SosRequest {
    /// An optional message for the care team (at most 500 characters).
    #[schema(max_length = 500)]
    pub message: Option<String>,
}

/// The answer to an SOS press.
#[derive(Debug, Serialize, ToSchema)]
pub struct SosResponse {
    /// The critical alert raised for the care team.
    #[schema(format = Uuid)]
    pub alert_id: String,
    /// Where to turn right now: the lines of the patient's country (their profile's `country`,
    /// else their timezone's), the organisation's own where it keeps them.
    pub crisis_resources: Vec<CrisisResource>,
    /// Always true in a 202: the critical alert and its deliveries to every counsellor on the
    /// care team were stored before this answer was sent.
    pub care_team_told: bool,
    /// What to show the patient, e.g. "Your care team has been told ...".
    #[schema(
        example = "Your care team has been told. If you are in danger right now, call your local emergency number — it is listed below."
    )]
    pub message: String,
}

/// What the SOS answer tells the patient. No country-specific number: those are in
/// `crisis_resources`, chosen for the patient's country.
pub const SOS_MESSAGE: &str = "Your care team has been told. If you are in danger right now, call your local emergency number — it is listed below.";

/// Press SOS: raises a critical alert for the care team at once and returns crisis resources.
///
/// Safe to retry: send an `Idempotency-Key` header and a retried press (same key, same body)
/// returns the first answer instead of raising a second alert.
#[utoipa::path(
    tag = "patient",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", description = "Makes retries safe: the same key and body return the first response; the same key with another body is a 422")),
    request_body(content = Option<SosRequest>, description = "Optional: no body, or `null`, is a press without a message"),
    responses(
        (status = 202, description = "The care team has been told (the alert and its deliveries are stored); crisis lines for the patient's country", body = SosResponse),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients only", body = Problem),
        (status = 413, description = "Body larger than 64 KiB", body = Problem),
        (status = 415, description = "A body that is not JSON", body = Problem),
        (status = 422, description = "Message too long", body = Problem),
    )
)]
#[post("/me/sos")]
pub async fn sos(
    state: web::Data<AppState>,
    caller: Caller,
    body: super::extract::LimitedBody,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    require_patient(&caller)?;
    let body = body.0;
    // The button must work even when the app sends no body at all (or a JSON `null`).
    let input = if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
        SosRequest { message: None }
    } else {
        let ct = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/json") {
            return Err(ApiError::UnsupportedMediaType);
        }
        // A NUL in the message is replaced, never a reason to refuse the press.
        super::extract::parse_json_replacing_nul::<SosRequest>(&body)?.0
    };
    if input
        .message
        .as_ref()
        .is_some_and(|m| m.chars().count() > 500)
    {
        return Err(ApiError::field("message", "must be at most 500 characters"));
    }
    let key = crate::service::idempotency::Key::parse(
        req.headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok()),
        &body,
    )?;
    let done = service::sos(&state, &caller, input.message, key).await?;
    Ok(HttpResponse::Accepted().json(SosResponse {
        alert_id: done.alert_id,
        crisis_resources: done.crisis_resources,
        care_team_told: true,
        message: SOS_MESSAGE.into(),
    }))
}

/// A patient's check-ins, newest first (care team and admins).
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Patient id"), RangeQuery),
    responses(
        (status = 200, description = "A page of check-ins", body = Page<CheckIn>),
        (status = 400, description = "Bad query parameter", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
        (status = 404, description = "No such patient within your reach", body = Problem),
    )
)]
#[get("/patients/{id}/check-ins")]
pub async fn patient_check_ins(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    q: Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let id = path.into_inner();
    let q = q.0;
    let c = caller.clone();
    let result = state
        .store
        .run(move |conn| -> Result<Page<CheckIn>, ApiError> {
            policy::reachable_patient(conn, &c, &id)?;
            let tz = crate::store::accounts::find_user(conn, &id)?
                .map(|u| u.timezone)
                .unwrap_or_default();
            let page = page_of(conn, &id, &tz, &q)?;
            audit::record(
                conn,
                &c,
                audit::Event::patient("check_in.list", &id, "check_in", None),
            )?;
            Ok(page)
        })
        .await;
    let page = result?;
    Ok(HttpResponse::Ok().json(page))
}
