//! What an integration reads (SPEC §9), with an integration's token only: the patients who
//! consented to it and, of each, the categories in both the consent and the token's scopes.
//! Every answer carries the 42 CFR 2.32 notice and the consent it relied on; the check-in
//! note never leaves. Which check-in field belongs to which category is decided by
//! `domain::categories`, and applied in [`disclose_check_in`] alone.

use std::collections::BTreeSet;

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::check_ins::{view as check_in_view, CheckIn};
use super::consents::{described, CategoryInfo};
use super::extract::Query;
use super::pagination::{cursor, Page, PageParams};
use super::types::utc;
use crate::auth::IntegrationCaller;
use crate::domain::categories::{self, Category};
use crate::domain::check_in::Trigger;
use crate::domain::part2::REDISCLOSURE_NOTICE;
use crate::domain::validation::FieldError;
use crate::error::{ApiError, Problem};
use crate::service::integration_reads::{self as service, ConsentingPatient};
use crate::state::AppState;
use crate::store::alerts::AlertRow;

/// The consent a disclosure relies on.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentRef {
    /// Consent id.
    pub id: String,
    /// What may be disclosed under it to you (the consent's categories within your scopes).
    pub categories: Vec<CategoryInfo>,
    /// Its last day; null: until revoked.
    pub expires_on: Option<NaiveDate>,
}

/// A consenting patient.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentingPatientView {
    /// Patient id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// The consent relied on.
    pub consent: ConsentRef,
}

fn patient_view(p: &ConsentingPatient) -> ConsentingPatientView {
    ConsentingPatientView {
        id: p.user.id.clone(),
        display_name: p.user.display_name.clone(),
        consent: ConsentRef {
            id: p.consent.id.clone(),
            categories: described(&p.allowed),
            expires_on: p.consent.expires_on,
        },
    }
}

/// The consenting patients.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentingPatients {
    /// In id order.
    pub items: Vec<ConsentingPatientView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// The prohibition on redisclosure (42 CFR 2.32).
    pub notice: &'static str,
}

/// The patients who have an active consent to you, paged (integrations).
#[utoipa::path(
    tag = "integration",
    security(("integration" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "Consenting patients", body = ConsentingPatients),
        (status = 400, description = "Bad limit or cursor", body = Problem),
        (status = 401, description = "No valid integration token (expired, disabled, rotated)", body = Problem),
        (status = 403, description = "Integration tokens only", body = Problem),
    )
)]
#[get("/integration/patients")]
pub async fn list_patients(
    state: web::Data<AppState>,
    integration: IntegrationCaller,
    query: Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.0.limit()?;
    let after = query.0.position()?;
    let (rows, next) = service::list_patients(&state, &integration, after, limit).await?;
    Ok(HttpResponse::Ok().json(ConsentingPatients {
        items: rows.iter().map(patient_view).collect(),
        next_cursor: next.as_deref().map(cursor),
        notice: REDISCLOSURE_NOTICE,
    }))
}

/// One consenting patient.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationPatient {
    /// Patient id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// The consent relied on.
    pub consent: ConsentRef,
    /// The treatment phase (`phase` category only; absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "maintenance")]
    pub phase: Option<String>,
    /// Since when (`phase` category only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase_started_on: Option<NaiveDate>,
    /// Days of the current abstinent streak (`substance_use` category only; null when
    /// unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>, nullable)]
    pub days_since_last_use: Option<Option<i64>>,
    /// The prohibition on redisclosure (42 CFR 2.32).
    pub notice: &'static str,
    /// The consent this disclosure relied on.
    pub consent_id: String,
}

/// A consenting patient: name and consent; the phase with `phase`, days since last use with
/// `substance_use` (integrations). Any other patient is a 404.
#[utoipa::path(
    tag = "integration",
    security(("integration" = [])),
    params(("id" = String, Path, description = "Patient id")),
    responses(
        (status = 200, description = "The patient", body = IntegrationPatient),
        (status = 401, description = "No valid integration token", body = Problem),
        (status = 403, description = "Integration tokens only", body = Problem),
        (status = 404, description = "No patient who consented to you", body = Problem),
    )
)]
#[get("/integration/patients/{id}")]
pub async fn get_patient(
    state: web::Data<AppState>,
    integration: IntegrationCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let read = service::patient(&state, &integration, path.into_inner()).await?;
    let v = patient_view(&read.who);
    Ok(HttpResponse::Ok().json(IntegrationPatient {
        consent_id: read.who.consent.id.clone(),
        id: v.id,
        display_name: v.display_name,
        consent: v.consent,
        phase: read.phase.as_ref().map(|p| p.phase.clone()),
        phase_started_on: read.phase.as_ref().map(|p| p.phase_started_on),
        days_since_last_use: read.days_since_last_use,
        notice: REDISCLOSURE_NOTICE,
    }))
}

/// A check-in as disclosed to an integration: `date`, and the fields of the categories
/// disclosed. Fields of other categories are absent (not null); the note is never here.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct IntegrationCheckIn {
    /// The patient's local date.
    pub date: NaiveDate,
    /// `wellbeing`: strongest urge to use, 0–10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub craving: Option<i32>,
    /// `wellbeing`: mood, 0–10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mood: Option<i32>,
    /// `wellbeing`: hours slept.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>, nullable)]
    pub sleep_hours: Option<Option<f64>>,
    /// `wellbeing`: minutes of exercise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exercise_minutes: Option<i32>,
    /// `wellbeing`: meals eaten.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meals: Option<i32>,
    /// `wellbeing`: anxiety, 0–10.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i32>, nullable)]
    pub anxiety: Option<Option<i32>>,
    /// `wellbeing`: irritability, 0–10.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i32>, nullable)]
    pub irritability: Option<Option<i32>>,
    /// `wellbeing`: loneliness, 0–10.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i32>, nullable)]
    pub loneliness: Option<Option<i32>>,
    /// `wellbeing`: what set off cravings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Vec<Trigger>>,
    /// `substance_use`: any use since the last check-in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_substance: Option<bool>,
    /// `substance_use`: what was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub substances: Option<Vec<String>>,
    /// `withdrawal`: the SOWS items as answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, nullable)]
    pub withdrawal: Option<Option<serde_json::Value>>,
    /// `withdrawal`: SOWS total, 0–64.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i32>, nullable)]
    pub withdrawal_score: Option<Option<i32>>,
    /// `medication`: medication taken as prescribed (null: not prescribed).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<bool>, nullable)]
    pub took_medication: Option<Option<bool>>,
    /// `support`: went to a support meeting.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<bool>, nullable)]
    pub attended_support: Option<Option<bool>>,
    /// `safety`: thoughts of self-harm.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<bool>, nullable)]
    pub self_harm_thoughts: Option<Option<bool>>,
}

/// The one place a check-in is filtered by category for an integration.
pub fn disclose_check_in(c: CheckIn, shown: &BTreeSet<Category>) -> IntegrationCheckIn {
    let has = |field: &str| {
        shown
            .iter()
            .any(|cat| cat.check_in_fields().contains(&field))
    };
    IntegrationCheckIn {
        date: c.date,
        craving: has("craving").then_some(c.craving),
        mood: has("mood").then_some(c.mood),
        sleep_hours: has("sleep_hours").then_some(c.sleep_hours),
        exercise_minutes: has("exercise_minutes").then_some(c.exercise_minutes),
        meals: has("meals").then_some(c.meals),
        anxiety: has("anxiety").then_some(c.anxiety),
        irritability: has("irritability").then_some(c.irritability),
        loneliness: has("loneliness").then_some(c.loneliness),
        triggers: has("triggers").then_some(c.triggers),
        used_substance: has("used_substance").then_some(c.used_substance),
        substances: has("substances").then_some(c.substances),
        withdrawal: has("withdrawal").then_some(c.withdrawal),
        withdrawal_score: has("withdrawal_score").then_some(c.withdrawal_score),
        took_medication: has("took_medication").then_some(c.took_medication),
        attended_support: has("attended_support").then_some(c.attended_support),
        self_harm_thoughts: has("self_harm_thoughts").then_some(c.self_harm_thoughts),
    }
}

/// Which check-ins to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IntegrationCheckInQuery {
    /// First date (inclusive).
    pub from: Option<NaiveDate>,
    /// Last date (inclusive).
    pub to: Option<NaiveDate>,
    /// Only these categories, comma-separated; each must be within the consent and your
    /// scopes (403 otherwise). Default: every category you may read.
    pub categories: Option<String>,
    /// Items per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of disclosed check-ins.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationCheckIns {
    /// Newest first.
    pub items: Vec<IntegrationCheckIn>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// The categories disclosed here.
    #[schema(value_type = Vec<super::vocabulary::DataCategory>)]
    pub categories: Vec<&'static str>,
    /// The prohibition on redisclosure (42 CFR 2.32).
    pub notice: &'static str,
    /// The consent this disclosure relied on.
    pub consent_id: String,
}

/// A consenting patient's check-ins, newest first, with only the fields of the categories
/// in both the consent and your scopes (integrations). Needs a category that check-ins carry.
#[utoipa::path(
    tag = "integration",
    security(("integration" = [])),
    params(("id" = String, Path, description = "Patient id"), IntegrationCheckInQuery),
    responses(
        (status = 200, description = "Check-ins", body = IntegrationCheckIns),
        (status = 400, description = "Bad query parameter, named", body = Problem),
        (status = 401, description = "No valid integration token", body = Problem),
        (status = 403, description = "A category asked for (or every check-in category) is outside the consent and your scopes", body = Problem),
        (status = 404, description = "No patient who consented to you", body = Problem),
    )
)]
#[get("/integration/patients/{id}/check-ins")]
pub async fn patient_check_ins(
    state: web::Data<AppState>,
    integration: IntegrationCaller,
    path: web::Path<String>,
    query: Query<IntegrationCheckInQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    let paging = PageParams {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let limit = paging.limit()?;
    let before = paging.date_position()?;
    let names = match q.categories.as_deref() {
        None => None,
        Some(list) => Some(
            categories::parse_list(list.split(',').map(str::trim).filter(|s| !s.is_empty()))
                .map_err(|bad| {
                    ApiError::BadQuery(vec![FieldError::new(
                        "categories",
                        format!("`{bad}` is not a category"),
                    )])
                })?,
        ),
    };
    let (who, shown, rows) = service::check_ins(
        &state,
        &integration,
        path.into_inner(),
        names,
        q.from,
        q.to,
        before,
        limit,
    )
    .await?;
    let timezone = who.user.timezone.clone();
    let page = Page::from_rows(
        rows,
        limit,
        |r| r.date.to_string(),
        |r| disclose_check_in(check_in_view(r, &timezone), &shown),
    );
    Ok(HttpResponse::Ok().json(IntegrationCheckIns {
        items: page.items,
        next_cursor: page.next_cursor,
        categories: shown.iter().map(|c| c.as_str()).collect(),
        notice: REDISCLOSURE_NOTICE,
        consent_id: who.consent.id,
    }))
}

/// An alert as disclosed to an integration: no title, explanation, evidence or notes.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationAlert {
    /// Alert id.
    pub id: String,
    /// The rule that raised it.
    #[schema(value_type = crate::domain::policy::RuleId)]
    pub rule: String,
    /// How serious: `info`, `warning`, `high` or `critical`.
    #[schema(value_type = crate::domain::policy::Severity)]
    pub severity: String,
    /// Where it is in its lifecycle.
    #[schema(value_type = super::vocabulary::AlertStatus)]
    pub status: String,
    /// The check-in date it concerns.
    pub check_in_date: Option<NaiveDate>,
    /// Raised.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Escalated.
    pub escalated_at: Option<DateTime<Utc>>,
    /// Acknowledged.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Resolved.
    pub resolved_at: Option<DateTime<Utc>>,
}

fn alert_view(a: AlertRow) -> IntegrationAlert {
    IntegrationAlert {
        id: a.id,
        rule: a.rule,
        severity: a.severity,
        status: a.status,
        check_in_date: a.check_in_date,
        created_at: utc(a.created_at),
        updated_at: utc(a.updated_at),
        escalated_at: a.escalated_at.map(utc),
        acknowledged_at: a.acknowledged_at.map(utc),
        resolved_at: a.resolved_at.map(utc),
    }
}

/// A page of disclosed alerts.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationAlerts {
    /// Newest first.
    pub items: Vec<IntegrationAlert>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// The prohibition on redisclosure (42 CFR 2.32).
    pub notice: &'static str,
    /// The consent this disclosure relied on.
    pub consent_id: String,
}

/// A consenting patient's alerts, newest first (integrations; the `alerts` category).
#[utoipa::path(
    tag = "integration",
    security(("integration" = [])),
    params(("id" = String, Path, description = "Patient id"), PageParams),
    responses(
        (status = 200, description = "Alerts", body = IntegrationAlerts),
        (status = 400, description = "Bad limit or cursor", body = Problem),
        (status = 401, description = "No valid integration token", body = Problem),
        (status = 403, description = "The alerts category is outside the consent or your scopes", body = Problem),
        (status = 404, description = "No patient who consented to you", body = Problem),
    )
)]
#[get("/integration/patients/{id}/alerts")]
pub async fn patient_alerts(
    state: web::Data<AppState>,
    integration: IntegrationCaller,
    path: web::Path<String>,
    query: Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.0.limit()?;
    let before = query.0.position()?;
    let (who, rows) =
        service::alerts(&state, &integration, path.into_inner(), before, limit).await?;
    let page = Page::from_rows(rows, limit, |r| r.id.clone(), alert_view);
    Ok(HttpResponse::Ok().json(IntegrationAlerts {
        items: page.items,
        next_cursor: page.next_cursor,
        notice: REDISCLOSURE_NOTICE,
        consent_id: who.consent.id,
    }))
}

/// A webhook to register for the integration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegrationWebhook {
    /// Where to POST events: `https://` (or `http://`) on a public address.
    #[schema(
        example = "https://reminders.example.com/aftercare/events",
        pattern = "^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][!-~]*)?$",
        max_length = 2048
    )]
    pub url: String,
    /// `alert.created`, `alert.updated` and/or `alert.escalated` (with `alerts.read`);
    /// `check_in.submitted` (with the scope of at least one check-in category).
    #[schema(value_type = Vec<super::vocabulary::IntegrationEventType>, min_items = 1, example = json!(["alert.created", "check_in.submitted"]))]
    pub events: Vec<String>,
}

/// The integration's webhooks.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationWebhooks {
    /// Oldest first.
    pub items: Vec<super::webhooks::Webhook>,
    /// Always null: every webhook is in one answer.
    pub next_cursor: Option<String>,
}

/// Subscribe to events about the patients who consented to you: alert events (`alert.*`)
/// need the `alerts` category in both the consent and your scopes, and carry ids, rule and
/// severity only; `check_in.submitted` (a check-in stored or corrected) needs at least one
/// check-in category (wellbeing, substance_use, withdrawal, medication, support, safety) in
/// both, and carries the patient id and the check-in's date only — read its answers, filtered
/// by your consent, at `/v1/integration/patients/{id}/check-ins`. Deliveries are signed like
/// the organisation's (Standard Webhooks) and carry the Part 2 notice and the consent id; the
/// consent is checked again when each is sent, and a delivery whose consent lapsed is
/// dropped. Each delivery is recorded in the patient's accounting of disclosures.
#[utoipa::path(
    tag = "integration",
    security(("integration" = [])),
    request_body = CreateIntegrationWebhook,
    responses(
        (status = 201, description = "Registered; the signing secret is shown once", body = super::webhooks::CreatedWebhook),
        (status = 401, description = "No valid integration token", body = Problem),
        (status = 403, description = "Integration tokens only; an event whose category the token's scopes do not hold (named)", body = Problem),
        (status = 422, description = "A refused URL or unknown event, named", body = Problem),
    )
)]
#[post("/integration/webhooks")]
pub async fn create_webhook(
    state: web::Data<AppState>,
    integration: IntegrationCaller,
    body: super::extract::Json<CreateIntegrationWebhook>,
) -> Result<HttpResponse, ApiError> {
    // The caller's rights before the body's rules.
    crate::service::integration_webhooks::require_some_event(&integration)?;
    let b = body.0;
    let events = super::webhooks::check_subscription(
        &b.url,
        b.events,
        &crate::service::alerts::events::INTEGRATION,
        state.settings.webhook_allow_private_networks,
    )
    .await?;
    let row =
        crate::service::integration_webhooks::create(&state, &integration, b.url, events).await?;
    let secret = row.secret.clone();
    Ok(
        HttpResponse::Created().json(super::webhooks::CreatedWebhook {
            webhook: super::webhooks::view(row),
            secret,
        }),
    )
}

/// Your webhooks (integrations).
#[utoipa::path(
    tag = "integration",
    security(("integration" = [])),
    responses(
        (status = 200, description = "Webhooks", body = IntegrationWebhooks),
        (status = 401, description = "No valid integration token", body = Problem),
        (status = 403, description = "Integration tokens only", body = Problem),
    )
)]
#[get("/integration/webhooks")]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    integration: IntegrationCaller,
) -> Result<HttpResponse, ApiError> {
    let rows = crate::service::integration_webhooks::list(&state, &integration).await?;
    Ok(HttpResponse::Ok().json(IntegrationWebhooks {
        items: rows.into_iter().map(super::webhooks::view).collect(),
        next_cursor: None,
    }))
}

/// One of your webhooks' delivery log, newest first (integrations): attempts, status codes,
/// next retry, and deliveries dropped because a consent lapsed.
#[utoipa::path(
    tag = "integration",
    security(("integration" = [])),
    params(("id" = String, Path, description = "Webhook id"), PageParams),
    responses(
        (status = 200, description = "A page of deliveries", body = super::pagination::Page<super::webhooks::Delivery>),
        (status = 400, description = "Bad limit or cursor", body = Problem),
        (status = 401, description = "No valid integration token", body = Problem),
        (status = 403, description = "Integration tokens only", body = Problem),
        (status = 404, description = "No such webhook of yours", body = Problem),
    )
)]
#[get("/integration/webhooks/{id}/deliveries")]
pub async fn webhook_deliveries(
    state: web::Data<AppState>,
    integration: IntegrationCaller,
    path: web::Path<String>,
    query: Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.0.limit()?;
    let before = query.0.position()?;
    let (rows, attempts) = crate::service::integration_webhooks::deliveries(
        &state,
        &integration,
        path.into_inner(),
        before,
        limit,
    )
    .await?;
    Ok(HttpResponse::Ok().json(super::webhooks::deliveries_view(rows, attempts, limit)))
}

/// Delete one of your webhooks (integrations); its pending deliveries are dropped.
#[utoipa::path(
    tag = "integration",
    security(("integration" = [])),
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid integration token", body = Problem),
        (status = 403, description = "Integration tokens only", body = Problem),
        (status = 404, description = "No such webhook of yours", body = Problem),
    )
)]
#[delete("/integration/webhooks/{id}")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    integration: IntegrationCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    crate::service::integration_webhooks::delete(&state, &integration, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::check_in::CheckInSource;

    fn full() -> CheckIn {
        let t = utc(crate::store::now());
        CheckIn {
            date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            craving: 3,
            mood: 6,
            exercise_minutes: 20,
            meals: 3,
            used_substance: true,
            substances: vec!["heroin".into()],
            sleep_hours: Some(7.0),
            anxiety: Some(2),
            irritability: None,
            loneliness: Some(4),
            triggers: vec![Trigger::Stress],
            took_medication: Some(true),
            attended_support: Some(false),
            withdrawal: Some(serde_json::json!({"yawning": 1})),
            withdrawal_score: Some(1),
            self_harm_thoughts: Some(false),
            note: Some("private counselling note".into()),
            answered_at: Some(t),
            received_at: t,
            updated_at: t,
            version: 1,
            late: false,
            source: CheckInSource::App,
            imported_from: None,
        }
    }

    fn keys(shown: &[Category]) -> BTreeSet<String> {
        let set: BTreeSet<Category> = shown.iter().copied().collect();
        let v = serde_json::to_value(disclose_check_in(full(), &set)).unwrap();
        v.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn each_category_discloses_its_fields_and_nothing_else() {
        for c in categories::ALL {
            let mut want: BTreeSet<String> = c
                .check_in_fields()
                .iter()
                // A count over the history, disclosed with the patient, not per check-in.
                .filter(|f| **f != "days_since_last_use")
                .map(|f| (*f).to_owned())
                .collect();
            want.insert("date".into());
            assert_eq!(keys(&[c]), want, "category {}", c.as_str());
        }
        assert_eq!(keys(&[]), BTreeSet::from(["date".to_owned()]));
        let everything = keys(&categories::ALL);
        assert!(!everything.contains("note"));
        assert!(!everything.contains("answered_at"));
    }

    #[test]
    fn a_null_field_of_a_disclosed_category_is_null_not_absent() {
        let v = serde_json::to_value(disclose_check_in(
            full(),
            &BTreeSet::from([Category::Wellbeing]),
        ))
        .unwrap();
        assert!(v["irritability"].is_null());
        assert!(v.as_object().unwrap().contains_key("irritability"));
        assert!(!v.as_object().unwrap().contains_key("used_substance"));
    }
}
