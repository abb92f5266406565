//! HTTP handlers only: extract, authorise, call the domain or the store, shape the response.
//! Routing, the fallback for unknown routes (404) and wrong methods (405 with `Allow`), and
//! the extractor error handlers live here too.

pub mod access_log;
pub mod alerts;
pub mod auth;
pub mod check_ins;
pub mod consents;
pub mod deadline;
pub mod disclosures;
pub mod erasure;
pub mod export;
pub mod extract;
pub mod fhir;
pub mod guard;
pub mod health;
pub mod import;
pub mod integration;
pub mod integrations;
pub mod invitations;
pub mod lab;
pub mod me;
pub mod mfa;
pub mod oauth;
pub mod organisation;
pub mod pagination;
pub mod patients;
pub mod policy;
pub mod stream;
pub mod strict;
pub mod types;
pub mod users;
pub mod vocabulary;
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
        .service(oauth::metadata)
        .service(oauth::token)
        .service(fhir::questionnaire)
        .service(fhir::code_system)
        .service(
            scope("/v1")
                .service(auth::login)
                .service(auth::refresh)
                .service(auth::logout)
                .service(auth::register)
                .service(mfa::login_mfa)
                .service(mfa::mfa_status)
                .service(mfa::begin_totp)
                .service(mfa::confirm_totp)
                .service(mfa::disable_totp)
                .service(mfa::get_security)
                .service(mfa::put_security)
                .service(me::get_me)
                .service(me::patch_me)
                .service(me::confirm_email)
                .service(me::change_password)
                .service(access_log::my_access_log)
                .service(disclosures::my_disclosures)
                .service(disclosures::patient_disclosures)
                .service(disclosures::record_emergency_disclosure)
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
                .service(organisation::audit_events)
                .service(integrations::register_integration)
                .service(integrations::list_integrations)
                .service(integrations::get_integration)
                .service(integrations::update_integration)
                .service(integrations::delete_integration)
                .service(integrations::rotate_integration_secret)
                .service(integrations::integration_webhooks)
                .service(consents::my_integrations)
                .service(consents::give_consent)
                .service(consents::my_consents)
                .service(consents::my_consent)
                .service(consents::revoke_consent)
                .service(consents::patient_consents)
                .service(integration::list_patients)
                .service(integration::get_patient)
                .service(integration::patient_check_ins)
                .service(integration::patient_alerts)
                .service(integration::create_webhook)
                .service(integration::list_webhooks)
                .service(integration::delete_webhook)
                .service(integration::webhook_deliveries)
                .service(export::my_export)
                .service(export::patient_export)
                .service(erasure::close_my_account)
                .service(erasure::erase_patient)
                .service(erasure::get_retention)
                .service(erasure::put_retention),
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

/// The pattern of the route a request matches (`/v1/patients/{id}`), found once per request:
/// actix finds it by matching the path against every route again at each call, and the gate,
/// the denial audit and the telemetry all ask.
pub fn route_pattern(request: &HttpRequest) -> Option<String> {
    use actix_web::HttpMessage;
    #[derive(Clone)]
    struct RoutePattern(Option<String>);
    if let Some(RoutePattern(known)) = request.extensions().get::<RoutePattern>() {
        return known.clone();
    }
    let pattern = request.match_pattern();
    request
        .extensions_mut()
        .insert(RoutePattern(pattern.clone()));
    pattern
}

/// The `{id}` of the route a request names: from routing, or, when the request was refused
/// before routing (by [`guard::gate`]), read from its path by the route's pattern.
fn object_id(request: &HttpRequest) -> Option<String> {
    if let Some(id) = request.match_info().get("id") {
        return Some(id.to_owned());
    }
    let pattern = route_pattern(request)?;
    let def = ResourceDef::new(pattern.as_str());
    let mut path = actix_web::dev::Path::new(request.path());
    def.capture_match_info(&mut path)
        .then(|| path.get("id").map(str::to_owned))
        .flatten()
}

/// Lets a request's statements share one database connection (see
/// `store::one_connection_per_request`) — except requests that check a password: holding a
/// pooled connection while waiting for the hashing threads would let a sign-in flood drain
/// the pool that check-ins need.
pub async fn one_connection(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    if hashes_a_password(req.method(), req.path()) {
        return next.call(req).await;
    }
    crate::store::one_connection_per_request(next.call(req)).await
}

/// Routes that may verify or hash a password.
fn hashes_a_password(method: &actix_web::http::Method, path: &str) -> bool {
    use actix_web::http::Method;
    path.starts_with("/v1/auth/")
        || path == "/v1/me/password"
        || (path == "/v1/me" && method == Method::PATCH)
        || (path == "/v1/me/mfa/totp" && method == Method::DELETE)
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
    // Only refusals are audited here: answers that succeed pay nothing for the route's
    // object id (finding it outside routing parses the route's pattern).
    let action = match res.status() {
        actix_web::http::StatusCode::FORBIDDEN => "permission.denied",
        actix_web::http::StatusCode::NOT_FOUND => "object.denied",
        _ => return Ok(res),
    };
    // What the path named, whatever it was (bounded: it is the caller's text).
    let object = object_id(request).map(|o| o.chars().take(64).collect::<String>());
    // A 404 is a denial only for a route's object; an unknown path is not.
    if action == "object.denied" && object.is_none() {
        return Ok(res);
    }
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
            route_pattern(request).unwrap_or_default()
        );
        // Only an id can name a patient; any other text is kept as the target alone.
        let patient = object
            .clone()
            .filter(|id| route.contains("/patients/{id}") && types::is_id(id));
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

/// The Content-Security-Policy of API answers (JSON, never a page): nothing may load, and
/// nothing may frame them.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The Content-Security-Policy of the browsable docs (`/docs/`): Swagger UI's own scripts and
/// styles from this server (it sets inline styles), the document from `/openapi.json`, and no
/// framing (clickjacking).
pub const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Security headers on every response: `X-Content-Type-Options: nosniff` (a browser never
/// guesses a type, so JSON holding markup is never run as a page), `X-Frame-Options: DENY`,
/// and a Content-Security-Policy (the docs' own, else [`API_CSP`]). HSTS is the TLS
/// terminator's to send (see the README), since only it knows the connection is HTTPS.
pub async fn security_headers(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::http::header::{self, HeaderValue};
    let docs = req.path() == "/docs" || req.path().starts_with("/docs/");
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(if docs { DOCS_CSP } else { API_CSP }),
        );
    }
    Ok(res)
}
