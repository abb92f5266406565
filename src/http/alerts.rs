//! The counsellor's alert inbox: list, read, acknowledge, resolve.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Json, Query};
use super::pagination::{Page, PageParams};
use super::types::utc;
use super::vocabulary::{AlertChangeKind, AlertStatus, ResolveOutcome};
use crate::auth::{policy, Caller, Role};
use crate::domain::policy::{RuleId, Severity};
use crate::error::{ApiError, Problem};
use crate::service::{alerts as alert_service, audit};
use crate::state::AppState;
use crate::store::alerts::{self, AlertFilter, AlertRow, Scope};
use crate::store::DbConnection;

/// The patient an alert concerns.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertPatient {
    /// Patient (user) id.
    #[schema(format = Uuid)]
    pub id: String,
    /// The patient's name.
    pub display_name: String,
}

/// One rule's part in an alert's episode.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertFinding {
    /// The rule, e.g. `craving_high`.
    #[schema(value_type = RuleId)]
    pub rule: String,
    /// The most serious severity this rule reached in the episode, as the patient's answers
    /// (corrections included) now support it.
    #[schema(value_type = Severity)]
    pub severity: String,
    /// A short headline.
    pub title: String,
    /// Why it fired, for a person to read.
    pub explanation: String,
    /// The dates and values that made it fire (for staff: the substances named and the
    /// patient's note of that check-in).
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    /// The first local date the rule fired in this episode.
    pub first_seen_on: NaiveDate,
    /// The latest local date it fired.
    pub last_seen_on: NaiveDate,
    /// How many times it fired in this episode.
    pub occurrences: i32,
    /// When the patient corrected the check-in so that it no longer holds (null while it
    /// holds).
    pub corrected_at: Option<DateTime<Utc>>,
    /// The corrected answers, beside the original evidence (null while it holds).
    #[schema(value_type = Option<Object>)]
    pub corrected_values: Option<serde_json::Value>,
    /// What the finding said before a correction by the patient made it less serious — it
    /// still holds, at the lower severity shown above (null unless a correction lowered it).
    pub before_correction: Option<FindingBeforeCorrection>,
}

/// A finding's account before the patient's correction lowered it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FindingBeforeCorrection {
    /// The severity it had.
    #[schema(value_type = Severity)]
    pub severity: String,
    /// Its headline then.
    pub title: String,
    /// Its explanation then.
    pub explanation: String,
    /// Its evidence then.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    /// When the correction lowered it.
    pub corrected_at: DateTime<Utc>,
}

/// An alert: one per episode of a patient. What fired, why, and what the care team did about
/// it. Its headline (`rule`, `title`, `explanation`, `evidence`) is that of its leading finding
/// (the most severe, then the earliest); `findings` lists every rule involved.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193b1c4-5d6e-7f80-9a1b-2c3d4e5f6a7b",
    "patient_id": "0193a6f2-7c1e-7d40-9a55-3f1f6f1d2b10",
    "patient": {"id": "0193a6f2-7c1e-7d40-9a55-3f1f6f1d2b10", "display_name": "Dana R."},
    "rule": "craving_high",
    "severity": "high",
    "status": "open",
    "title": "Craving high on consecutive days",
    "explanation": "Craving was 8/10 on 2026-11-30 and 9/10 on 2026-12-01 (threshold 8).",
    "evidence": {"check_ins": [{"date": "2026-11-30", "craving": 8}, {"date": "2026-12-01", "craving": 9}], "threshold": 8},
    "findings": [{
        "rule": "craving_high",
        "severity": "high",
        "title": "Craving high on consecutive days",
        "explanation": "Craving was 8/10 on 2026-11-30 and 9/10 on 2026-12-01 (threshold 8).",
        "evidence": {"check_ins": [{"date": "2026-11-30", "craving": 8}, {"date": "2026-12-01", "craving": 9}], "threshold": 8},
        "first_seen_on": "2026-11-30",
        "last_seen_on": "2026-12-01",
        "occurrences": 2,
        "corrected_at": null,
        "corrected_values": null,
        "before_correction": null
    }],
    "holds": true,
    "check_in_date": "2026-12-01",
    "occurrences": 2,
    "created_at": "2026-11-30T21:02:44Z",
    "updated_at": "2026-12-01T20:48:10Z",
    "last_seen_at": "2026-12-01T20:48:10Z",
    "escalated_at": null,
    "acknowledged_at": null,
    "acknowledged_by": null,
    "resolved_at": null,
    "resolved_by": null,
    "outcome": null,
    "note": null
}))]
pub struct Alert {
    /// Alert id.
    #[schema(format = Uuid)]
    pub id: String,
    /// The patient it concerns.
    #[schema(format = Uuid)]
    pub patient_id: String,
    /// The patient it concerns, by name.
    pub patient: AlertPatient,
    /// The leading finding's rule, e.g. `craving_high`, `sos`, `missed_check_ins`.
    #[schema(value_type = RuleId)]
    pub rule: String,
    /// The highest severity among the findings: `info`, `warning`, `high` or `critical`.
    #[schema(value_type = Severity)]
    pub severity: String,
    /// `open`, `acknowledged` or `resolved`.
    #[schema(value_type = AlertStatus)]
    pub status: String,
    /// The leading finding's headline.
    pub title: String,
    /// The leading finding's explanation, for a person to read.
    pub explanation: String,
    /// The leading finding's evidence: the dates and values that made it fire.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    /// Every rule involved in the episode, in the order they joined it.
    pub findings: Vec<AlertFinding>,
    /// Whether any finding still holds (false when the patient corrected every one away: the
    /// alert then no longer escalates, but stays until resolved).
    pub holds: bool,
    /// The check-in date that (last) added to it.
    pub check_in_date: Option<NaiveDate>,
    /// How many findings were seen in the episode, repeats included.
    pub occurrences: i32,
    /// When it was raised.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When a finding was last seen.
    pub last_seen_at: DateTime<Utc>,
    /// When it was (last) escalated for going unacknowledged, if it was.
    pub escalated_at: Option<DateTime<Utc>>,
    /// When it was acknowledged (cleared when it got more serious and opened again).
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Who acknowledged it.
    #[schema(format = Uuid)]
    pub acknowledged_by: Option<String>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who resolved it.
    #[schema(format = Uuid)]
    pub resolved_by: Option<String>,
    /// `contacted`, `no_contact`, `false_alarm`, `emergency_services` or `other`.
    #[schema(value_type = Option<ResolveOutcome>)]
    pub outcome: Option<String>,
    /// The resolver's note.
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

impl Alert {
    /// The API view of a stored alert, given the patient's name.
    pub fn new(a: AlertRow, patient_name: String) -> Self {
        let episode = alert_service::episode_of(&a);
        let findings = episode
            .findings
            .iter()
            .map(|f| AlertFinding {
                rule: f.rule.as_str().to_owned(),
                severity: f.severity.as_str().to_owned(),
                title: f.title.clone(),
                explanation: f.explanation.clone(),
                evidence: f.evidence.clone(),
                first_seen_on: f.first_seen_on,
                last_seen_on: f.last_seen_on,
                occurrences: f.occurrences,
                corrected_at: f.corrected_at.map(utc),
                corrected_values: f.corrected_values.clone(),
                before_correction: f
                    .before_correction
                    .as_ref()
                    .map(|b| FindingBeforeCorrection {
                        severity: b.severity.as_str().to_owned(),
                        title: b.title.clone(),
                        explanation: b.explanation.clone(),
                        evidence: b.evidence.clone(),
                        corrected_at: utc(b.corrected_at),
                    }),
            })
            .collect();
        Self {
            patient: AlertPatient {
                id: a.patient_id.clone(),
                display_name: patient_name,
            },
            id: a.id,
            patient_id: a.patient_id,
            rule: a.rule,
            severity: a.severity,
            status: a.status,
            title: a.title,
            explanation: a.explanation,
            evidence: serde_json::from_str(&a.evidence).unwrap_or(serde_json::Value::Null),
            findings,
            holds: episode.holds(),
            check_in_date: a.check_in_date,
            occurrences: a.occurrences,
            created_at: utc(a.created_at),
            updated_at: utc(a.updated_at),
            last_seen_at: utc(a.last_seen_at),
            escalated_at: a.escalated_at.map(utc),
            acknowledged_at: a.acknowledged_at.map(utc),
            acknowledged_by: a.acknowledged_by,
            resolved_at: a.resolved_at.map(utc),
            resolved_by: a.resolved_by,
            outcome: a.outcome,
            note: a.note,
        }
    }
}

/// API views of stored alerts, with their patients' names read in one query.
pub fn views(conn: &mut DbConnection, rows: Vec<AlertRow>) -> Result<Vec<Alert>, ApiError> {
    let mut ids: Vec<String> = rows.iter().map(|a| a.patient_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let names = alerts::patient_names(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|a| {
            let name = names.get(&a.patient_id).cloned().unwrap_or_default();
            Alert::new(a, name)
        })
        .collect())
}

/// The API view of one stored alert.
pub fn view(conn: &mut DbConnection, row: AlertRow) -> Result<Alert, ApiError> {
    views(conn, vec![row])?
        .pop()
        .ok_or_else(|| ApiError::internal("no alert view"))
}

/// Inbox filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// `open`, `acknowledged` or `resolved`; a comma-separated list takes any of them
    /// (e.g. `open,acknowledged`).
    #[param(value_type = Option<Vec<AlertStatus>>, style = Form, explode = false)]
    pub status: Option<String>,
    /// `info`, `warning`, `high` or `critical`; a comma-separated list takes any of them.
    #[param(value_type = Option<Vec<Severity>>, style = Form, explode = false)]
    pub severity: Option<String>,
    /// Only this patient's alerts.
    #[param(format = Uuid)]
    pub patient_id: Option<String>,
    /// Only alerts with a finding of this rule (leading or not), e.g. `slide`.
    #[param(value_type = Option<RuleId>)]
    pub rule: Option<String>,
    /// Only alerts changed at or after this RFC 3339 instant ("what changed since
    /// yesterday").
    #[param(value_type = Option<DateTime<Utc>>)]
    pub updated_since: Option<String>,
    /// Items per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
}

/// A resolution.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"outcome": "contacted", "note": "Called her; she is safe and coming in tomorrow."}))]
pub struct ResolveRequest {
    /// `contacted`, `no_contact`, `false_alarm`, `emergency_services` or `other`.
    #[schema(value_type = ResolveOutcome)]
    pub outcome: String,
    /// What was done (1–2000 characters, not only blanks); kept in the record.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub note: String,
}

/// Loads an alert the caller may read (through the patient's reach).
pub fn reachable_alert(
    conn: &mut DbConnection,
    caller: &Caller,
    id: &str,
) -> Result<AlertRow, ApiError> {
    let alert = alerts::find(conn, id)?.ok_or(ApiError::NotFound)?;
    policy::reachable_patient(conn, caller, &alert.patient_id)?;
    Ok(alert)
}

/// Like [`reachable_alert`], locking the alert for a change.
fn reachable_alert_for_update(
    conn: &mut DbConnection,
    caller: &Caller,
    id: &str,
) -> Result<AlertRow, ApiError> {
    let alert = alerts::find_for_update(conn, id)?.ok_or(ApiError::NotFound)?;
    policy::reachable_patient(conn, caller, &alert.patient_id)?;
    Ok(alert)
}

/// Parses a comma-separated filter list, each item checked by `valid`.
fn comma_list(
    raw: Option<&str>,
    field: &str,
    valid: impl Fn(&str) -> bool,
    message: &str,
) -> Result<Vec<String>, ApiError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let items: Vec<String> = raw.split(',').map(|s| s.trim().to_owned()).collect();
    if items.iter().any(|s| !valid(s)) {
        return Err(bad_query(field, message));
    }
    Ok(items)
}

fn bad_query(field: &str, message: &str) -> ApiError {
    ApiError::BadQuery(vec![crate::domain::validation::FieldError::new(
        field, message,
    )])
}

/// The alert inbox, newest first: a counsellor sees their care teams' patients, an admin the
/// organisation's.
#[utoipa::path(
    tag = "alerts",
    security(("bearer" = [])),
    params(AlertQuery),
    responses(
        (status = 200, description = "A page of alerts", body = Page<Alert>),
        (status = 400, description = "Bad query parameter", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
    )
)]
#[get("/alerts")]
pub async fn list_alerts(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<AlertQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let q = q.0;
    let statuses = comma_list(
        q.status.as_deref(),
        "status",
        |s| ["open", "acknowledged", "resolved"].contains(&s),
        "must be open, acknowledged or resolved (or a comma-separated list of them)",
    )?;
    let severities = comma_list(
        q.severity.as_deref(),
        "severity",
        |s| crate::domain::policy::Severity::parse(s).is_some(),
        "must be info, warning, high or critical (or a comma-separated list of them)",
    )?;
    if let Some(p) = &q.patient_id {
        if !super::types::is_id(p) {
            return Err(bad_query("patient_id", "must be a patient id (a UUID)"));
        }
    }
    if let Some(r) = &q.rule {
        if crate::domain::policy::RuleId::parse(r).is_none() {
            return Err(bad_query("rule", "must be a rule id, e.g. craving_high"));
        }
    }
    let updated_since = match &q.updated_since {
        None => None,
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| {
                    bad_query(
                        "updated_since",
                        "must be an RFC 3339 timestamp, e.g. 2026-12-01T00:00:00Z",
                    )
                })?
                .naive_utc(),
        ),
    };
    let paging = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = paging.limit()?;
    let before = paging.position()?;
    let filter = AlertFilter {
        statuses,
        severities,
        patient_id: q.patient_id,
        rule: q.rule,
        updated_since,
    };
    let c = caller.clone();
    let rows = state
        .store
        .run(move |conn| -> Result<Vec<Alert>, ApiError> {
            let scope = match c.role {
                Role::Admin => Scope::Organisation(&c.organisation_id),
                _ => Scope::Counsellor(&c.organisation_id, &c.user_id),
            };
            let rows = alerts::list(conn, scope, &filter, before.as_deref(), limit + 1)?;
            let rows = views(conn, rows)?;
            // One record per patient shown, so each one's access log has the read.
            let shown: Vec<&str> = rows
                .iter()
                .take(usize::try_from(limit).unwrap_or(0))
                .map(|a| a.patient_id.as_str())
                .collect();
            if shown.is_empty() {
                audit::record(
                    conn,
                    &c,
                    audit::Event {
                        action: "alert.list",
                        patient_id: filter.patient_id.as_deref(),
                        target_type: Some("alert"),
                        target_id: None,
                        outcome: "success",
                    },
                )?;
            } else {
                audit::record_reads(conn, &c, "alert.list", "alert", &shown)?;
            }
            Ok(rows)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, limit, |a| a.id.clone(), |a| a)))
}

async fn act(
    state: &AppState,
    caller: &Caller,
    id: String,
    action: &'static str,
    f: impl FnOnce(
            &mut DbConnection,
            &crate::config::Settings,
            &Caller,
            AlertRow,
        ) -> Result<AlertRow, ApiError>
        + Send
        + 'static,
) -> Result<Alert, ApiError> {
    let c = caller.clone();
    let settings = state.settings.clone();
    let result = state
        .store
        .transaction(move |conn| -> Result<Alert, ApiError> {
            let alert = reachable_alert_for_update(conn, &c, &id)?;
            let patient_id = alert.patient_id.clone();
            let alert = f(conn, &settings, &c, alert)?;
            audit::record(
                conn,
                &c,
                audit::Event {
                    action,
                    patient_id: Some(&patient_id),
                    target_type: Some("alert"),
                    target_id: Some(&id),
                    outcome: "success",
                },
            )?;
            view(conn, alert)
        })
        .await;
    result
}

/// One alert.
#[utoipa::path(
    tag = "alerts",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Alert id")),
    responses(
        (status = 200, description = "The alert", body = Alert),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
        (status = 404, description = "No such alert within your reach", body = Problem),
    )
)]
#[get("/alerts/{id}")]
pub async fn get_alert(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let a = act(
        &state,
        &caller,
        path.into_inner(),
        "alert.read",
        |_, _, _, a| Ok(a),
    )
    .await?;
    Ok(HttpResponse::Ok().json(a))
}

/// Acknowledge an alert: someone is on it. Stops its escalation clock.
#[utoipa::path(
    tag = "alerts",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Alert id")),
    responses(
        (status = 200, description = "The acknowledged alert", body = Alert),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
        (status = 404, description = "No such alert within your reach", body = Problem),
        (status = 409, description = "The alert is already resolved", body = Problem),
    )
)]
#[post("/alerts/{id}/acknowledge")]
pub async fn acknowledge(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let a = act(
        &state,
        &caller,
        path.into_inner(),
        "alert.acknowledge",
        alert_service::acknowledge,
    )
    .await?;
    Ok(HttpResponse::Ok().json(a))
}

/// Resolve an alert with an outcome and a note. The next finding of the same rule opens a new
/// alert.
#[utoipa::path(
    tag = "alerts",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Alert id")),
    request_body = ResolveRequest,
    responses(
        (status = 200, description = "The resolved alert", body = Alert),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
        (status = 404, description = "No such alert within your reach", body = Problem),
        (status = 409, description = "The alert is already resolved", body = Problem),
        (status = 422, description = "Invalid outcome or note", body = Problem),
    )
)]
#[post("/alerts/{id}/resolve")]
pub async fn resolve(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<ResolveRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let b = body.0;
    let mut errors = Vec::new();
    if !alert_service::OUTCOMES.contains(&b.outcome.as_str()) {
        errors.push(crate::domain::validation::FieldError::new(
            "outcome",
            "must be contacted, no_contact, false_alarm, emergency_services or other",
        ));
    }
    let note = b.note.trim().to_owned();
    if note.is_empty() || note.chars().count() > 2000 {
        errors.push(crate::domain::validation::FieldError::new(
            "note",
            "must be 1 to 2000 characters",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let outcome = b.outcome;
    let a = act(
        &state,
        &caller,
        path.into_inner(),
        "alert.resolve",
        move |conn, s, c, a| alert_service::resolve(conn, s, c, a, outcome, note),
    )
    .await?;
    Ok(HttpResponse::Ok().json(a))
}

/// One recorded change to an alert.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertChange {
    /// `created`, `findings_added` (rules joined the episode), `repeated`, `severity_raised`,
    /// `sos_pressed`, `corrected` (the patient's correction took findings back; `detail` names
    /// the rules), `acknowledged`, `resolved` or `escalated`.
    #[schema(value_type = AlertChangeKind)]
    pub change: String,
    /// Who made it (null for the system: the risk engine, a sweep).
    #[schema(format = Uuid)]
    pub actor_id: Option<String>,
    /// The severity after the change.
    #[schema(value_type = Option<Severity>)]
    pub severity: Option<String>,
    /// The status after the change.
    #[schema(value_type = Option<AlertStatus>)]
    pub status: Option<String>,
    /// The outcome, for a resolution; the rules, for `findings_added` and `corrected`.
    pub detail: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

impl From<alerts::AlertChangeRow> for AlertChange {
    fn from(ch: alerts::AlertChangeRow) -> Self {
        AlertChange {
            change: ch.change,
            actor_id: ch.actor_id,
            severity: ch.severity,
            status: ch.status,
            detail: ch.detail,
            at: utc(ch.created_at),
        }
    }
}

/// Every change to an alert, oldest first: who did what and when.
#[utoipa::path(
    tag = "alerts",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Alert id")),
    responses(
        (status = 200, description = "The alert's history", body = Vec<AlertChange>),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
        (status = 404, description = "No such alert within your reach", body = Problem),
    )
)]
#[get("/alerts/{id}/history")]
pub async fn alert_history(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let id = path.into_inner();
    let c = caller.clone();
    let result = state
        .store
        .run(move |conn| -> Result<Vec<AlertChange>, ApiError> {
            let alert = reachable_alert(conn, &c, &id)?;
            let changes = alerts::changes(conn, &id)?;
            audit::record(
                conn,
                &c,
                audit::Event::patient("alert.history", &alert.patient_id, "alert", Some(&id)),
            )?;
            Ok(changes.into_iter().map(AlertChange::from).collect())
        })
        .await;
    let items = result?;
    Ok(HttpResponse::Ok().json(items))
}
