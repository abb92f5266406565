//! The FHIR R4 definitions the FHIR export refers to (SPEC §10): the daily check-in
//! `Questionnaire` every exported `QuestionnaireResponse` answers, and the local `CodeSystem`s
//! of its codes. Public: they describe the form, not any patient.

use actix_web::http::header;
use actix_web::{get, web, HttpResponse};
use serde_json::Value;

use crate::domain::fhir;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

fn fhir_json(resource: &Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(fhir::MEDIA_TYPE)
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(resource)
}

/// The daily check-in as a FHIR R4 `Questionnaire` (public). Its items' `linkId`s are the
/// check-in's field names, as in the exported `QuestionnaireResponse`s.
#[utoipa::path(
    tag = "fhir",
    responses((status = 200, description = "The Questionnaire", content_type = "application/fhir+json", body = Object))
)]
#[get("/fhir/Questionnaire/daily-check-in")]
pub async fn questionnaire(state: web::Data<AppState>) -> HttpResponse {
    fhir_json(&fhir::questionnaire(&state.public_url()))
}

/// A local FHIR R4 `CodeSystem` (public): `daily-check-in` (the check-in's questions, SOWS
/// items and triggers) or `data-category` (the categories of consent).
#[utoipa::path(
    tag = "fhir",
    params(("id" = String, Path, description = "`daily-check-in` or `data-category`")),
    responses(
        (status = 200, description = "The CodeSystem", content_type = "application/fhir+json", body = Object),
        (status = 404, description = "No such code system", body = Problem),
    )
)]
#[get("/fhir/CodeSystem/{id}")]
pub async fn code_system(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let cs = fhir::code_system(&state.public_url(), &path).ok_or(ApiError::NotFound)?;
    Ok(fhir_json(&cs))
}
