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
    components(schemas(
        crate::error::Problem,
        crate::domain::validation::FieldError,
        crate::http::vocabulary::ExportFormat
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "operations", description = "Health and metrics"),
        (name = "integrations", description = "Registering integrations (admins) and their OAuth 2.0 token endpoint"),
        (name = "integration", description = "What an integration reads, under patients' consent (42 CFR Part 2)"),
        (name = "fhir", description = "FHIR R4 definitions the FHIR export refers to: the daily check-in Questionnaire and local CodeSystems"),
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
            // Integrations (SPEC §9): OAuth 2.0 client credentials at /oauth/token.
            let scopes = utoipa::openapi::security::Scopes::from_iter(
                crate::domain::categories::ALL
                    .iter()
                    .map(|c| (c.scope(), c.description().to_owned())),
            );
            let flow = utoipa::openapi::security::Flow::ClientCredentials(
                utoipa::openapi::security::ClientCredentials::new("/oauth/token", scopes),
            );
            components.add_security_scheme(
                "integration",
                SecurityScheme::OAuth2(utoipa::openapi::security::OAuth2::with_description(
                    [flow],
                    "An integration's access token, from POST /oauth/token (client_secret_basic or private_key_jwt).",
                )),
            );
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
    let mut doc = doc;
    complete_errors(&mut doc);
    always_on(&mut doc);
    substances_only_with_use(&mut doc);
    doc
}

/// `self_harm` and `sos` can never be switched off (their settings type, `Toggle`, serves
/// those two alone): the document says `enabled` is `true` (or, in an override, left out or
/// null), so that a client cannot build the policy the server refuses.
fn always_on(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    for (name, allowed) in [
        ("Toggle", vec![serde_json::Value::Bool(true)]),
        (
            "ToggleOverride",
            vec![serde_json::Value::Bool(true), serde_json::Value::Null],
        ),
    ] {
        let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(name) else {
            continue;
        };
        if let Some(RefOr::T(Schema::Object(enabled))) = o.properties.get_mut("enabled") {
            enabled.enum_values = Some(allowed);
            enabled.description = Some("Always on: this rule cannot be switched off.".into());
        }
    }
}

/// A check-in lists `substances` only when `used_substance` is true: stated as JSON Schema's
/// `anyOf` (used, or no substances listed) on every schema carrying both (utoipa has no
/// attribute for it).
fn substances_only_with_use(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    for schema in components.schemas.values_mut() {
        let RefOr::T(Schema::Object(o)) = schema else {
            continue;
        };
        if !(o.properties.contains_key("used_substance") && o.properties.contains_key("substances"))
        {
            continue;
        }
        // One keyword, so that the document's text is the same at every run (extensions are
        // a hash map).
        o.extensions.get_or_insert_with(Default::default).insert(
            "anyOf".into(),
            serde_json::json!([
                {"properties": {"used_substance": {"const": true}}, "required": ["used_substance"]},
                {"properties": {"substances": {"maxItems": 0}}}
            ]),
        );
    }
}

/// Errors every operation can answer, whether or not its own annotation lists them: 503 when
/// storage is unavailable, for operations with a JSON body 400 (malformed), 413 (over
/// 64 KiB) and 415 (not JSON), and for signed-in operations the 403 of a required second
/// factor not yet enrolled. And every problem is `application/problem+json`.
fn complete_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{ContentBuilder, Header, Ref, RefOr, ResponseBuilder};

    const NO_STORAGE: [&str; 3] = ["/health/live", "/metrics", "/.well-known/jwks.json"];
    let problem = |description: &str, retry_after: bool| {
        let mut b = ResponseBuilder::new().description(description).content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        );
        if retry_after {
            let mut h = Header::new(ObjectBuilder::new().schema_type(Type::Integer));
            h.description = Some("Seconds to wait before retrying".into());
            b = b.header("Retry-After", h);
        }
        RefOr::T(b.build())
    };
    let problem_ref = format!("#/components/schemas/{}", "Problem");
    for (path, item) in &mut doc.paths.paths {
        let ops = [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.patch.as_mut(),
            item.delete.as_mut(),
        ];
        for op in ops.into_iter().flatten() {
            let paged = pages(op);
            let responses = &mut op.responses.responses;
            // Problems are application/problem+json, not plain JSON.
            for r in responses.values_mut() {
                let RefOr::T(r) = r else { continue };
                let is_problem = r.content.get("application/json").is_some_and(
                    |c| matches!(&c.schema, Some(RefOr::Ref(x)) if x.ref_location == problem_ref),
                );
                if is_problem {
                    if let Some(c) = r.content.shift_remove("application/json") {
                        r.content.insert("application/problem+json".into(), c);
                    }
                }
            }
            // Every paged operation reads `limit` through `PageParams::limit`: 1–200, and a
            // 400 naming it (or a bad `cursor`) otherwise.
            if paged {
                responses.entry("400".into()).or_insert_with(|| {
                    problem(
                        "Bad query parameter (`limit` not from 1 to 200, or a cursor this API did not give out)",
                        false,
                    )
                });
            }
            if !NO_STORAGE.contains(&path.as_str()) {
                responses
                    .entry("503".into())
                    .or_insert_with(|| problem("Storage unavailable or busy; retry", true));
            }
            // The token endpoint takes a form and answers RFC 6749 errors (400), not these.
            if op.request_body.is_some() && path != "/oauth/token" {
                responses
                    .entry("400".into())
                    .or_insert_with(|| problem("The body is not valid JSON", false));
                responses
                    .entry("413".into())
                    .or_insert_with(|| problem("The body is larger than 64 KiB", false));
                responses
                    .entry("415".into())
                    .or_insert_with(|| problem("The body is not application/json", false));
            }
            // The organisation's `staff_mfa: required` closes every signed-in route but the
            // caller's own account and second factor to staff who have not enrolled yet.
            // And every route that takes a token answers 403 to the other kind (a user's on an
            // integration route, an integration's anywhere else).
            let signed_in = op.security.as_ref().is_some_and(|s| !s.is_empty());
            if signed_in && !crate::auth::caller::mfa_enrolment_open(path) {
                const ENROL: &str = "or (type ending mfa-enrolment-required) the organisation \
                    requires staff to have a second factor and the caller has none yet";
                match responses.get_mut("403") {
                    Some(RefOr::T(r)) => r.description = format!("{}; {ENROL}", r.description),
                    _ => {
                        responses
                            .insert("403".into(), problem(&format!("Forbidden: {ENROL}"), false));
                    }
                }
            } else if signed_in {
                responses.entry("403".into()).or_insert_with(|| {
                    problem(
                        "Forbidden: an integration's token (integrations reach only the \
                         `/v1/integration/…` routes)",
                        false,
                    )
                });
            }
        }
    }
}

/// Whether an operation is paged (takes `?limit=`); makes sure its `limit` says 1–200.
fn pages(op: &mut utoipa::openapi::path::Operation) -> bool {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    let Some(params) = op.parameters.as_mut() else {
        return false;
    };
    let mut paged = false;
    for p in params.iter_mut() {
        if p.name != "limit" || !matches!(p.parameter_in, ParameterIn::Query) {
            continue;
        }
        paged = true;
        if let Some(RefOr::T(Schema::Object(o))) = p.schema.as_mut() {
            o.minimum.get_or_insert(1.into());
            o.maximum
                .get_or_insert(crate::http::pagination::MAX_LIMIT.into());
        }
    }
    paged
}

/// The document as pretty JSON with a trailing newline, byte-for-byte what is committed.
pub fn document_json() -> String {
    let mut s = document().to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    fn schemas() -> Value {
        let doc = serde_json::to_value(super::document()).unwrap_or_default();
        doc["components"]["schemas"].clone()
    }

    #[test]
    fn self_harm_and_sos_are_stated_always_on() {
        let s = schemas();
        assert_eq!(s["Toggle"]["properties"]["enabled"]["enum"], json!([true]));
        assert_eq!(
            s["ToggleOverride"]["properties"]["enabled"]["enum"],
            json!([true, null])
        );
    }

    #[test]
    fn every_check_in_schema_states_substances_only_with_use() {
        let s = schemas();
        for name in ["CheckInInput", "ImportedCheckIn", "CheckIn"] {
            let any = &s[name]["anyOf"];
            assert_eq!(
                any[0]["properties"]["used_substance"]["const"], true,
                "{name}"
            );
            assert_eq!(any[1]["properties"]["substances"]["maxItems"], 0, "{name}");
        }
    }
}
