//! The accounting of disclosures: emergency disclosures recorded by staff, read by the patient
//! (`/v1/me/disclosures`) and their care team (`/v1/patients/{id}/disclosures`).

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Json, Query};
use super::pagination::{Page, PageParams};
use super::types::utc;
use super::vocabulary::DisclosureType;
use crate::auth::{Caller, Role};
use crate::error::{ApiError, Problem};
use crate::service::disclosures::{self as service, Emergency};
use crate::state::AppState;
use crate::store::disclosures::DisclosureRow;

/// An emergency disclosure (42 CFR 2.51): records disclosed without the patient's consent to
/// medical personnel, to meet a bona fide medical emergency.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyDisclosureRequest {
    /// The medical personnel who received the records (1–200 characters).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub recipient_name: String,
    /// Their affiliation, e.g. "St Mary's Hospital emergency department" (1–200 characters).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub recipient_affiliation: String,
    /// What was disclosed and the nature of the emergency (1–2000 characters).
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub nature: String,
}

/// Who received the records.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisclosureRecipient {
    /// The person (emergency) or the integration's name.
    pub name: String,
    /// Their affiliation (emergency disclosures).
    pub affiliation: Option<String>,
}

/// The staff member who recorded a disclosure.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisclosureRecorder {
    /// User id.
    #[schema(format = Uuid)]
    pub id: String,
    /// Display name.
    pub name: String,
}

/// One entry of a patient's accounting of disclosures (no clinical values in it).
#[derive(Debug, Serialize, ToSchema)]
pub struct Disclosure {
    /// Id.
    #[schema(format = Uuid)]
    pub id: String,
    /// `emergency` (§2.51, without consent) or `integration` (under a consent).
    #[serde(rename = "type")]
    #[schema(value_type = DisclosureType)]
    pub kind: String,
    /// When the disclosure was made (recorded).
    pub disclosed_at: DateTime<Utc>,
    /// Who received it.
    pub recipient: DisclosureRecipient,
    /// For an emergency: what was disclosed and why.
    pub nature: Option<String>,
    /// The data categories disclosed (integrations; empty for an emergency, described in
    /// `nature`).
    #[schema(value_type = Vec<super::vocabulary::DataCategory>)]
    pub categories: Vec<String>,
    /// The route or event that disclosed (integrations).
    pub what: Option<String>,
    /// The consent relied on (integrations).
    #[schema(format = Uuid)]
    pub consent_id: Option<String>,
    /// Who recorded it (emergency disclosures).
    pub recorded_by: Option<DisclosureRecorder>,
}

/// A disclosure as the API shows it.
pub fn view((d, recorder): (DisclosureRow, Option<String>)) -> Disclosure {
    Disclosure {
        id: d.id,
        kind: d.kind,
        disclosed_at: utc(d.disclosed_at),
        recipient: DisclosureRecipient {
            name: d.recipient_name,
            affiliation: d.recipient_affiliation,
        },
        nature: d.nature,
        categories: d
            .categories
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
        what: d.what,
        consent_id: d.consent_id,
        recorded_by: d.recorded_by.map(|id| DisclosureRecorder {
            id,
            name: recorder.unwrap_or_else(|| "a former staff member".into()),
        }),
    }
}

/// Record a disclosure made without consent in a medical emergency (42 CFR 2.51). Admins, or
/// a counsellor on the patient's care team. It appears in the patient's accounting of
/// disclosures.
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Patient id")),
    request_body = EmergencyDisclosureRequest,
    responses(
        (status = 201, description = "Recorded", body = Disclosure),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
        (status = 404, description = "No such patient within your reach", body = Problem),
        (status = 422, description = "A missing or too long element, named", body = Problem),
    )
)]
#[post("/patients/{id}/emergency-disclosures")]
pub async fn record_emergency_disclosure(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<EmergencyDisclosureRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let b = body.0;
    let saved = service::record_emergency(
        &state,
        &caller,
        path.into_inner(),
        Emergency {
            recipient_name: b.recipient_name,
            recipient_affiliation: b.recipient_affiliation,
            nature: b.nature,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(view(saved)))
}

/// My accounting of disclosures: who outside the clinic received my records, when, what and
/// why, newest first. Patients only.
#[utoipa::path(
    tag = "me",
    params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Disclosures, newest first", body = Page<Disclosure>),
        (status = 400, description = "Bad limit or cursor", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients only", body = Problem),
    )
)]
#[get("/me/disclosures")]
pub async fn my_disclosures(
    state: web::Data<AppState>,
    caller: Caller,
    query: Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Patient])?;
    page(&state, &caller, None, query.0).await
}

/// A patient's accounting of disclosures, newest first. Admins, or a counsellor on the
/// patient's care team.
#[utoipa::path(
    tag = "patients",
    params(("id" = uuid::Uuid, Path, description = "Patient id"), PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Disclosures, newest first", body = Page<Disclosure>),
        (status = 400, description = "Bad limit or cursor", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
        (status = 404, description = "No such patient within your reach", body = Problem),
    )
)]
#[get("/patients/{id}/disclosures")]
pub async fn patient_disclosures(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    page(&state, &caller, Some(path.into_inner()), query.0).await
}

async fn page(
    state: &AppState,
    caller: &Caller,
    patient_id: Option<String>,
    paging: PageParams,
) -> Result<HttpResponse, ApiError> {
    let limit = paging.limit()?;
    let before = paging.position()?;
    let rows = service::list(state, caller, patient_id, before, limit).await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, limit, |r| r.0.id.clone(), view)))
}
