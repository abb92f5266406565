//! Consent (42 CFR 2.31, SPEC §9) as patients give it and staff read it: the apps the clinic
//! connects, consents per app, category, purpose and expiry, revocation.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Json, Query};
use super::pagination::{Page, PageParams};
use super::types::utc;
use crate::auth::Caller;
use crate::domain::categories::{self, Category};
use crate::domain::part2;
use crate::error::{ApiError, Problem};
use crate::service::check_ins::local_today;
use crate::service::consents::{self as service, NewConsent};
use crate::state::AppState;
use crate::store::consents::ConsentRow;
use crate::store::integrations::IntegrationRow;

/// A data category with what it covers, in plain words.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryInfo {
    /// `wellbeing`, `substance_use`, `withdrawal`, `medication`, `support`, `safety`,
    /// `alerts` or `phase`.
    #[schema(value_type = super::vocabulary::DataCategory, example = "medication")]
    pub category: &'static str,
    /// What it covers.
    pub description: &'static str,
}

/// The categories of a set, described.
pub fn described(set: &std::collections::BTreeSet<Category>) -> Vec<CategoryInfo> {
    set.iter()
        .map(|c| CategoryInfo {
            category: c.as_str(),
            description: c.description(),
        })
        .collect()
}

/// An app the clinic connects, as a patient deciding on consent sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfferedIntegration {
    /// Integration id (name it in a consent).
    pub id: String,
    /// Name.
    pub name: String,
    /// What it does with the data.
    pub description: String,
    /// The categories it may ask a patient for.
    pub categories: Vec<CategoryInfo>,
}

/// The apps on offer.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfferedIntegrations {
    /// Every active app of the clinic.
    pub items: Vec<OfferedIntegration>,
    /// Always null: every app is in one answer.
    pub next_cursor: Option<String>,
}

/// A consent to give.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiveConsent {
    /// The app (from `GET /v1/me/integrations`).
    #[schema(format = "uuid")]
    pub integration_id: String,
    /// The categories it may receive; each must be one the app was granted.
    #[schema(value_type = Vec<super::vocabulary::DataCategory>, min_items = 1, example = json!(["medication"]))]
    pub categories: Vec<String>,
    /// Why the records are disclosed (1–500 printable characters, not only blanks).
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x1f\x7f-\x9f]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        example = "Medication reminders from my pharmacy"
    )]
    pub purpose: String,
    /// The last day the consent holds (your local date, today or later); omit for "until I
    /// revoke it".
    pub expires_on: Option<NaiveDate>,
}

/// A consent record, holding every element 42 CFR 2.31 asks of a written consent.
#[derive(Debug, Serialize, ToSchema)]
pub struct Consent {
    /// Consent id.
    pub id: String,
    /// `active`, `revoked` or `expired` (on the patient's local date).
    #[schema(value_type = super::vocabulary::ConsentStatus, example = "active")]
    pub status: &'static str,
    /// The app it was given to.
    pub integration_id: String,
    /// The patient's name.
    pub patient_name: String,
    /// The programme disclosing the records.
    pub disclosing_organisation: String,
    /// Who receives them (the app's name).
    pub recipient: String,
    /// What may be disclosed.
    pub categories: Vec<CategoryInfo>,
    /// Why.
    pub purpose: String,
    /// The last day it holds; null: until revoked.
    pub expires_on: Option<NaiveDate>,
    /// How to revoke it, and that revoking does not undo what was already disclosed.
    pub revocation: &'static str,
    /// When it was signed.
    pub signed_at: DateTime<Utc>,
    /// Who signed it.
    pub signed_by: String,
    /// The prohibition on redisclosure that travels with every disclosure (42 CFR 2.32).
    pub redisclosure_notice: &'static str,
    /// When it was revoked; null while not.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The consent record as the API shows it, its status on the patient's local date `today`.
pub fn view(row: ConsentRow, today: NaiveDate) -> Consent {
    Consent {
        status: service::status(&row, today),
        categories: described(&categories::from_stored(&row.categories)),
        id: row.id,
        integration_id: row.integration_id,
        patient_name: row.patient_name,
        disclosing_organisation: row.disclosing_organisation,
        recipient: row.recipient,
        purpose: row.purpose,
        expires_on: row.expires_on,
        revocation: part2::REVOCATION,
        signed_at: utc(row.signed_at),
        signed_by: row.signed_by,
        redisclosure_notice: part2::REDISCLOSURE_NOTICE,
        revoked_at: row.revoked_at.map(utc),
    }
}

fn offered(row: IntegrationRow) -> OfferedIntegration {
    OfferedIntegration {
        categories: described(&categories::parse_scopes(&row.scopes).unwrap_or_default()),
        id: row.id,
        name: row.name,
        description: row.description,
    }
}

/// The apps your clinic connects, and what each may ask you for (patients).
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Apps on offer", body = OfferedIntegrations),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients only", body = Problem),
    )
)]
#[get("/me/integrations")]
pub async fn my_integrations(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let rows = service::offered(&state, &caller).await?;
    Ok(HttpResponse::Ok().json(OfferedIntegrations {
        items: rows.into_iter().map(offered).collect(),
        next_cursor: None,
    }))
}

/// Consent to an app receiving categories of your records, for a purpose, until a date or
/// until you revoke it (patients). A new consent to the same app replaces the earlier one.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    request_body = GiveConsent,
    responses(
        (status = 201, description = "The consent record", body = Consent),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients only", body = Problem),
        (status = 422, description = "An invalid field, named: an unknown app, a category the app was not granted, an empty purpose, a past expiry", body = Problem),
    )
)]
#[post("/me/consents")]
pub async fn give_consent(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<GiveConsent>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let row = service::give(
        &state,
        &caller,
        NewConsent {
            integration_id: b.integration_id,
            categories: b.categories,
            purpose: b.purpose,
            expires_on: b.expires_on,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(view(row, local_today(&caller.timezone))))
}

/// Your consents, newest first (patients).
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "Consents", body = Page<Consent>),
        (status = 400, description = "Bad limit or cursor", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients only", body = Problem),
    )
)]
#[get("/me/consents")]
pub async fn my_consents(
    state: web::Data<AppState>,
    caller: Caller,
    query: Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.0.limit()?;
    let before = query.0.position()?;
    let rows = service::mine(&state, &caller, before, limit).await?;
    let today = local_today(&caller.timezone);
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows,
        limit,
        |r| r.id.clone(),
        |r| view(r, today),
    )))
}

/// One of your consents (patients).
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Consent id")),
    responses(
        (status = 200, description = "The consent record", body = Consent),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients only", body = Problem),
        (status = 404, description = "No such consent of yours", body = Problem),
    )
)]
#[get("/me/consents/{id}")]
pub async fn my_consent(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = service::one_of_mine(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view(row, local_today(&caller.timezone))))
}

/// Revoke one of your consents (patients): the app receives nothing more under it from this
/// moment. What was already disclosed is not undone.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Consent id")),
    responses(
        (status = 200, description = "Revoked (or already was)", body = Consent),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients only", body = Problem),
        (status = 404, description = "No such consent of yours", body = Problem),
    )
)]
#[post("/me/consents/{id}/revoke")]
pub async fn revoke_consent(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = service::revoke(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view(row, local_today(&caller.timezone))))
}

/// A patient's consents, newest first (admins, or a counsellor on the care team).
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Patient id"), PageParams),
    responses(
        (status = 200, description = "Consents", body = Page<Consent>),
        (status = 400, description = "Bad limit or cursor", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
        (status = 404, description = "No such patient within your reach", body = Problem),
    )
)]
#[get("/patients/{id}/consents")]
pub async fn patient_consents(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.0.limit()?;
    let before = query.0.position()?;
    let (rows, timezone) =
        service::of_patient(&state, &caller, path.into_inner(), before, limit).await?;
    let today = local_today(&timezone);
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows,
        limit,
        |r| r.id.clone(),
        |r| view(r, today),
    )))
}
