//! HTTP handlers only: extract, authorise, call the domain or the store, shape the response.
//! Routing, the fallback for unknown routes (404) and wrong methods (405 with `Allow`), and
//! the extractor error handlers live here too.

pub mod alerts;
pub mod auth;
pub mod check_ins;
pub mod extract;
pub mod health;
pub mod import;
pub mod invitations;
pub mod lab;
pub mod me;
pub mod organisation;
pub mod pagination;
pub mod patients;
pub mod policy;
pub mod stream;
pub mod types;
pub mod users;
pub mod webhooks;

use actix_web::dev::ResourceDef;
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::ApiError;

/// Registers every documented route.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(health::live)
        .service(health::ready)
        .service(health::metrics)
        .service(auth::jwks)
        .service(
            scope("/v1")
                .service(auth::login)
                .service(auth::refresh)
                .service(auth::logout)
                .service(auth::register)
                .service(me::get_me)
                .service(me::patch_me)
                .service(me::change_password)
                .service(invitations::create_invitation)
                .service(users::list_users)
                .service(users::update_user)
                .service(check_ins::put_check_in)
                .service(check_ins::list_my_check_ins)
                .service(check_ins::get_my_check_in)
                .service(check_ins::my_summary)
                .service(check_ins::sos)
                .service(patients::caseload)
                .service(patients::get_patient)
                .service(patients::patch_patient)
                .service(patients::put_care_team)
                .service(patients::patient_summary)
                .service(patients::patient_trends)
                .service(check_ins::patient_check_ins)
                .service(import::import_check_ins)
                .service(policy::get_patient_policy)
                .service(policy::put_patient_policy)
                .service(policy::get_org_policy)
                .service(policy::put_org_policy)
                .service(lab::organisation_backtest)
                .service(lab::patient_backtest)
                .service(policy::get_crisis_resources)
                .service(policy::put_crisis_resources)
                .service(stream::alert_stream)
                .service(alerts::list_alerts)
                .service(alerts::get_alert)
                .service(alerts::alert_history)
                .service(alerts::acknowledge)
                .service(alerts::resolve)
                .service(webhooks::create_webhook)
                .service(webhooks::list_webhooks)
                .service(webhooks::get_webhook)
                .service(webhooks::delete_webhook)
                .service(webhooks::list_deliveries)
                .service(organisation::audit_events),
        );
}

/// The documented paths and their methods, used to tell 405 from 404.
#[derive(Default)]
pub struct RouteTable(Vec<(ResourceDef, Vec<String>)>);

impl RouteTable {
    /// Builds the table from the OpenAPI document, which lists every route.
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut rows = Vec::new();
        for (path, item) in &doc.paths.paths {
            let mut methods = Vec::new();
            let ops = [
                ("GET", &item.get),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
            ];
            for (name, op) in ops {
                if op.is_some() {
                    methods.push(name.to_owned());
                }
            }
            if methods.iter().any(|m| m == "GET") {
                methods.push("HEAD".into());
            }
            rows.push((ResourceDef::new(path.as_str()), methods));
        }
        Self(rows)
    }

    fn allowed(&self, path: &str) -> Option<Vec<String>> {
        self.0
            .iter()
            .find(|(def, _)| def.is_match(path))
            .map(|(_, m)| m.clone())
    }
}

/// Fallback for requests no route took: 405 with `Allow` when the path exists, else 404.
pub async fn fallback(
    req: HttpRequest,
    table: web::Data<RouteTable>,
) -> Result<HttpResponse, ApiError> {
    match table.allowed(req.path()) {
        Some(methods) if !methods.iter().any(|m| m == req.method().as_str()) => {
            Err(ApiError::MethodNotAllowed(methods))
        }
        _ => Err(ApiError::NotFound),
    }
}

/// Path parameters that do not parse name a resource that cannot exist.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_, _| ApiError::NotFound.into())
}

/// Lets a request's statements share one database connection (see
/// `store::one_connection_per_request`).
pub async fn one_connection(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    crate::store::one_connection_per_request(next.call(req)).await
}

/// Records every denial an authenticated caller receives in the audit trail, in its own
/// write (the denied action's transaction, if any, has rolled back): a 403 (a role asking for
/// what it may not do) as `permission.denied`, a 404 on a route that names an object (one out
/// of reach, or missing: the same to the caller) as `object.denied`. Who, which route, which
/// object, when.
pub async fn audit_denials(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let res = next.call(req).await?;
    let request = res.request();
    let action = match res.status() {
        actix_web::http::StatusCode::FORBIDDEN => "permission.denied",
        actix_web::http::StatusCode::NOT_FOUND if request.match_info().get("id").is_some() => {
            "object.denied"
        }
        _ => return Ok(res),
    };
    let caller = actix_web::HttpMessage::extensions(request)
        .get::<crate::auth::Caller>()
        .cloned();
    let state = request
        .app_data::<web::Data<crate::state::AppState>>()
        .cloned();
    if let (Some(c), Some(state)) = (caller, state) {
        let route = format!(
            "{} {}",
            request.method(),
            request.match_pattern().unwrap_or_default()
        );
        let object = request.match_info().get("id").map(str::to_owned);
        let patient = object.clone().filter(|_| route.contains("/patients/{id}"));
        let written = state
            .store
            .run(move |conn| -> Result<(), ApiError> {
                crate::service::audit::record(
                    conn,
                    &c,
                    crate::service::audit::Event {
                        action,
                        patient_id: patient.as_deref(),
                        target_type: Some(&route),
                        target_id: object.as_deref(),
                        outcome: "denied",
                    },
                )?;
                Ok(())
            })
            .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not audit a denial");
        }
    }
    Ok(res)
}
