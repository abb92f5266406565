//! Risk policies: the organisation's default and each patient's overrides.

use actix_web::{get, put, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::Json;
use crate::auth::{policy, Caller, Role};
use std::collections::BTreeMap;

use crate::domain::crisis::{self, CrisisResource};
use crate::domain::policy::{PolicyOverrides, RiskPolicy};
use crate::domain::validation::FieldError;
use crate::error::{ApiError, Problem};
use crate::service::audit;
use crate::service::check_ins::{organisation_policy, patient_overrides};
use crate::state::AppState;
use crate::store::{accounts, patients};

/// A patient's policy: the overrides a counsellor set, and the result in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientPolicy {
    /// The per-patient overrides (same shape as a policy, any subset of fields).
    pub overrides: PolicyOverrides,
    /// The organisation policy with the overrides merged over it: what the engine uses.
    pub effective: RiskPolicy,
}

/// The organisation's default risk policy (admins; counsellors may read it).
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The policy", body = RiskPolicy),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Staff only", body = Problem),
    )
)]
#[get("/organisation/risk-policy")]
pub async fn get_org_policy(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let org = caller.organisation_id.clone();
    let p = state
        .store
        .run(move |conn| -> Result<RiskPolicy, ApiError> {
            Ok(organisation_policy(&accounts::find_organisation(
                conn, &org,
            )?))
        })
        .await?;
    Ok(HttpResponse::Ok().json(p))
}

/// Replace the organisation's default risk policy (admins only). It must be complete; an
/// unknown rule or field, a threshold out of range, or `self_harm`/`sos` disabled is a 422
/// naming the field.
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    request_body = RiskPolicy,
    responses(
        (status = 200, description = "The stored policy", body = RiskPolicy),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 422, description = "Invalid policy", body = Problem),
    )
)]
#[put("/organisation/risk-policy")]
pub async fn put_org_policy(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<RiskPolicy>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let p = body.0;
    p.validate().map_err(ApiError::Validation)?;
    let json = serde_json::to_string(&p).map_err(ApiError::internal)?;
    let c = caller.clone();
    state
        .store
        .transaction(move |conn| -> Result<(), ApiError> {
            accounts::set_organisation_policy(conn, &c.organisation_id, &json)?;
            crate::service::check_ins::reschedule_organisation(conn, &c.organisation_id)?;
            audit::record(
                conn,
                &c,
                audit::Event::other(
                    "risk_policy.write",
                    "organisation",
                    Some(&c.organisation_id),
                ),
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::Ok().json(p))
}

/// A patient's risk-policy overrides and the effective policy (care team and admins).
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Patient id")),
    responses(
        (status = 200, description = "The patient's policy", body = PatientPolicy),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
        (status = 404, description = "No such patient within your reach", body = Problem),
    )
)]
#[get("/patients/{id}/risk-policy")]
pub async fn get_patient_policy(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let id = path.into_inner();
    let c = caller.clone();
    let result = state
        .store
        .run(move |conn| -> Result<PatientPolicy, ApiError> {
            let p = policy::reachable_patient(conn, &c, &id)?;
            let org = accounts::find_organisation(conn, &p.organisation_id)?;
            let overrides = patient_overrides(&p);
            let effective = organisation_policy(&org).merged(&overrides);
            audit::record(
                conn,
                &c,
                audit::Event::patient("risk_policy.read", &id, "patient", Some(&id)),
            )?;
            Ok(PatientPolicy {
                overrides,
                effective,
            })
        })
        .await;
    Ok(HttpResponse::Ok().json(result?))
}

/// Set a patient's risk-policy overrides (care team and admins). The body has the policy's
/// shape with any subset of fields and replaces the previous overrides; `{}` clears them.
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Patient id")),
    request_body = PolicyOverrides,
    responses(
        (status = 200, description = "The patient's policy", body = PatientPolicy),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
        (status = 404, description = "No such patient within your reach", body = Problem),
        (status = 409, description = "The patient's account was closed (the record is kept unchanged until it is erased)", body = Problem),
        (status = 422, description = "Invalid overrides", body = Problem),
    )
)]
#[put("/patients/{id}/risk-policy")]
pub async fn put_patient_policy(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<PolicyOverrides>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let id = path.into_inner();
    let overrides = body.0;
    let c = caller.clone();
    let result = state
        .store
        .transaction(move |conn| -> Result<PatientPolicy, ApiError> {
            let p = policy::writable_patient(conn, &c, &id)?;
            let org = accounts::find_organisation(conn, &p.organisation_id)?;
            let effective = organisation_policy(&org).merged(&overrides);
            effective.validate().map_err(ApiError::Validation)?;
            let empty = overrides == PolicyOverrides::default();
            let json = serde_json::to_string(&overrides).map_err(ApiError::internal)?;
            patients::set_overrides(conn, &id, (!empty).then_some(json.as_str()))?;
            crate::service::check_ins::reschedule_missed_review(conn, &id)?;
            audit::record(
                conn,
                &c,
                audit::Event::patient("risk_policy.write", &id, "patient", Some(&id)),
            )?;
            Ok(PatientPolicy {
                overrides,
                effective,
            })
        })
        .await;
    Ok(HttpResponse::Ok().json(result?))
}

/// The organisation's crisis resources, as an admin sets them.
#[derive(Debug, serde::Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrisisResources {
    /// The default list, 0–10 resources, most important first: shown to patients whose country
    /// has neither a list below nor a built-in one. Empty: the built-in fallback (call your local
    /// emergency number, findahelpline.com, naloxone advice).
    #[schema(max_items = 10)]
    pub items: Vec<CrisisResource>,
    /// Lists by country (ISO 3166-1 alpha-2, e.g. `"DE"`), 1–10 resources each: shown to the
    /// patients of that country before any built-in list. Omitted: none.
    #[serde(default)]
    pub by_country: BTreeMap<String, Vec<CrisisResource>>,
}

/// The organisation's crisis resources and the built-in ones, in the order a patient's list is
/// chosen: `by_country` for their country when set; else `items` (the clinic's own lines)
/// followed by `built_in` for their country; else the built-in fallback.
#[derive(Debug, Serialize, ToSchema)]
pub struct CrisisResourcesView {
    /// The organisation's default list; the built-in fallback when it keeps none.
    pub items: Vec<CrisisResource>,
    /// Whether `items` is the built-in fallback rather than the organisation's own.
    pub items_built_in: bool,
    /// The organisation's lists by country.
    pub by_country: BTreeMap<String, Vec<CrisisResource>>,
    /// The built-in lists by country, each number checked against its public source.
    pub built_in: BTreeMap<String, Vec<CrisisResource>>,
}

fn view(stored: Option<&str>) -> CrisisResourcesView {
    let own = crisis::OrganisationLists::from_stored(stored);
    let built_in = crisis::BUILT_IN_COUNTRIES
        .iter()
        .filter_map(|c| crisis::built_in(c).map(|l| ((*c).to_owned(), l)))
        .collect();
    CrisisResourcesView {
        items_built_in: own.items.is_empty(),
        items: if own.items.is_empty() {
            crisis::fallback()
        } else {
            own.items
        },
        by_country: own.by_country,
        built_in,
    }
}

fn check_list(errors: &mut Vec<FieldError>, at: &str, items: &[CrisisResource], min: usize) {
    if items.len() < min || items.len() > 10 {
        errors.push(FieldError::new(
            at,
            format!("must have {min} to 10 resources"),
        ));
    }
    for (i, r) in items.iter().enumerate() {
        for (name, v, max) in [
            ("name", &r.name, 100),
            ("contact", &r.contact, 200),
            ("description", &r.description, 500),
        ] {
            let n = v.trim().chars().count();
            if n == 0 || n > max {
                errors.push(FieldError::new(
                    format!("{at}[{i}].{name}"),
                    format!("must be 1 to {max} characters"),
                ));
            }
        }
    }
}

/// Checks an admin's lists; country codes are upper-cased.
fn validated(body: CrisisResources) -> Result<crisis::OrganisationLists, ApiError> {
    let mut errors = Vec::new();
    check_list(&mut errors, "items", &body.items, 0);
    let mut by_country = BTreeMap::new();
    for (code, list) in body.by_country {
        let at = format!("by_country.{code}");
        match crisis::parse_country(&code) {
            Some(c) if by_country.contains_key(&c) => {
                errors.push(FieldError::new(at, "names a country twice"));
            }
            Some(c) => {
                check_list(&mut errors, &at, &list, 1);
                by_country.insert(c, list);
            }
            None => errors.push(FieldError::new(
                at,
                "is not an ISO 3166-1 alpha-2 country code (e.g. DE, GB, US)",
            )),
        }
    }
    if errors.is_empty() {
        Ok(crisis::OrganisationLists {
            items: body.items,
            by_country,
        })
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// The organisation's crisis resources and the built-in ones (staff).
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The lists patients are shown, by country", body = CrisisResourcesView),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Staff only", body = Problem),
    )
)]
#[get("/organisation/crisis-resources")]
pub async fn get_crisis_resources(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let org = caller.organisation_id.clone();
    let stored = state
        .store
        .run(move |conn| -> Result<_, ApiError> {
            Ok(accounts::find_organisation(conn, &org)?.crisis_resources)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view(stored.as_deref())))
}

/// Replace the organisation's crisis resources (admins only): a default list and lists by
/// country. A patient is shown the list for their country (their profile's `country`, else
/// their timezone's): the organisation's, else the built-in one, else the default `items`, else
/// the built-in fallback. A country code that is not ISO 3166-1 alpha-2 is a 422 naming it.
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    request_body = CrisisResources,
    responses(
        (status = 200, description = "The lists patients will be shown", body = CrisisResourcesView),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 422, description = "Invalid resources or country code", body = Problem),
    )
)]
#[put("/organisation/crisis-resources")]
pub async fn put_crisis_resources(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CrisisResources>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let lists = validated(body.0)?;
    let json = (!lists.is_empty())
        .then(|| serde_json::to_string(&lists))
        .transpose()
        .map_err(ApiError::internal)?;
    let c = caller.clone();
    let stored = state
        .store
        .transaction(move |conn| -> Result<_, ApiError> {
            accounts::set_crisis_resources(conn, &c.organisation_id, json.as_deref())?;
            audit::record(
                conn,
                &c,
                audit::Event::other(
                    "crisis_resources.write",
                    "organisation",
                    Some(&c.organisation_id),
                ),
            )?;
            Ok(json)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view(stored.as_deref())))
}
