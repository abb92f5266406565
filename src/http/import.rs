//! History import: a patient's check-ins from the clinic's earlier system (SPEC §11).

use actix_web::{post, web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{self, IdempotentJson};
use crate::auth::{Caller, Role};
use crate::domain::check_in::{CheckInInput, ImportDraft};
use crate::error::{ApiError, Problem};
use crate::service::import::{self as service, ImportRequest};
use crate::state::AppState;

/// The largest import body accepted: 16 MiB, room for 5,000 check-ins of about 3.3 KB each
/// (every field, the withdrawal scale and a long note); the default 64 KiB holds about 150.
pub const IMPORT_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// One imported check-in: its date and the same fields, under the same rules, as a live
/// check-in (`PUT /v1/me/check-ins/{date}`). Documentation only (the body is read entry by
/// entry, so that errors name `check_ins[i].field`): its schema is the check-in's, closed to
/// unknown fields like it, with `date` added.
pub struct ImportedCheckIn;

impl utoipa::PartialSchema for ImportedCheckIn {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
        use utoipa::openapi::RefOr;
        let RefOr::T(Schema::Object(mut o)) = <CheckInInput as utoipa::PartialSchema>::schema()
        else {
            return <CheckInInput as utoipa::PartialSchema>::schema();
        };
        let date = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .description(Some(
                "Required. The patient's local date, YYYY-MM-DD; any date up to the patient's local today.",
            ))
            .build();
        o.properties.insert("date".into(), date.into());
        o.required.insert(0, "date".into());
        o.description = Some(
            "One imported check-in: its date and the same fields, under the same rules, as a \
             live check-in (`PUT /v1/me/check-ins/{date}`)."
                .into(),
        );
        if let Some(serde_json::Value::Object(example)) = o.example.as_mut() {
            example.insert("date".into(), serde_json::json!("2026-11-20"));
        }
        o.into()
    }
}

impl ToSchema for ImportedCheckIn {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <CheckInInput as ToSchema>::schemas(schemas);
    }
}

/// The body of a history import.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// Required. A short label of the clinic's earlier system (1–100 characters), kept with
    /// every imported check-in as `imported_from`.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub source: String,
    /// Required. 1 to 5,000 check-ins, each on its own date. Errors name
    /// `check_ins[i].field`.
    #[schema(value_type = Vec<ImportedCheckIn>, min_items = 1, max_items = 5000)]
    pub check_ins: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Replace the check-ins already stored on these dates (default false: a date that
    /// already has one is a 409 naming it, and nothing is imported).
    #[serde(default)]
    pub replace: bool,
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResponse {
    /// Check-ins stored by this import (the replaced ones included).
    pub imported: usize,
    /// Of those, how many replaced a check-in already stored for their date.
    pub replaced: usize,
    /// The earliest date imported.
    pub from: NaiveDate,
    /// The latest date imported.
    pub to: NaiveDate,
}

/// Reads one entry: its `date` aside, the rest exactly as a live check-in's body.
fn draft(mut entry: serde_json::Map<String, serde_json::Value>) -> ImportDraft {
    let date = entry.remove("date");
    ImportDraft {
        date,
        fields: extract::from_value::<CheckInInput>(serde_json::Value::Object(entry)),
    }
}

/// Import a patient's check-in history from the clinic's earlier system.
///
/// All or nothing: every check-in is validated like a live one (any past date is allowed, a
/// date at most once) and every error is reported at once, naming `check_ins[i].field`; a date
/// that already has a check-in is a 409 naming it unless `replace` is true. Imported check-ins
/// read back with `source: "import"`. They raise no alerts and send nothing, but the risk
/// engine counts them as history from then on (a live check-in after them sees them). At most
/// 5,000 check-ins and 16 MiB per request.
#[utoipa::path(
    tag = "patients",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "Patient id"),
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", description = "Makes retries safe: the same key and body for the same patient return the first response without importing again; the same key with another body is a 422"),
    ),
    request_body = ImportBody,
    responses(
        (status = 201, description = "Imported", body = ImportResponse),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Counsellors and admins only", body = Problem),
        (status = 404, description = "No such patient within your reach", body = Problem),
        (status = 409, description = "Some dates already have a check-in (named in `detail`), or the patient's account was closed; nothing was imported", body = Problem),
        (status = 413, description = "Body larger than 16 MiB", body = Problem),
        (status = 422, description = "Invalid or unknown fields, each named (`check_ins[3].craving`), or more than 5,000 check-ins; nothing was imported", body = Problem),
    )
)]
#[post("/patients/{id}/check-ins/import")]
pub async fn import_check_ins(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: IdempotentJson<ImportBody, IMPORT_BODY_LIMIT>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let (b, key) = (body.body, body.key);
    let input = ImportRequest {
        source: b.source,
        check_ins: b.check_ins.into_iter().map(draft).collect(),
        replace: b.replace,
    };
    let done = service::import(&state, &caller, path.into_inner(), input, key).await?;
    Ok(HttpResponse::Created().json(ImportResponse {
        imported: done.imported,
        replaced: done.replaced,
        from: done.from,
        to: done.to,
    }))
}
