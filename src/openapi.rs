//! The OpenAPI document's frame: info, security scheme, tags and shared components. Paths are
//! collected from the handlers by `utoipa-actix-web`.

use actix_web::App;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

/// Document frame.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "aftercare",
        description = "Recovery support for people leaving opioid addiction treatment: daily check-ins, \
relapse-risk patterns and counsellor alerts. Errors are RFC 9457 `application/problem+json`; every \
response carrying patient data is `Cache-Control: no-store`.",
        license(name = "AGPL-3.0-or-later")
    ),
    components(schemas(crate::error::Problem, crate::domain::validation::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            let mut scheme = Http::new(HttpAuthScheme::Bearer);
            scheme.bearer_format = Some("JWT".into());
            components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
        }
    }
}

/// The complete document, as served at `/openapi.json` and committed at `openapi/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, doc) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::http::routes)
        .split_for_parts();
    doc
}

/// The document as pretty JSON with a trailing newline, byte-for-byte what is committed.
pub fn document_json() -> String {
    let mut s = document().to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}
