//! `GET /v1/me/access-log`: who read the patient's record.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::Query;
use super::pagination::{Page, PageParams};
use super::types::utc;
use super::vocabulary::{ReaderType, StaffRole};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, Problem};
use crate::service::access_log::{self, AccessEntry};
use crate::state::AppState;

/// Who read the record.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reader {
    /// `staff` (integrations, when they exist, will be `integration`).
    #[serde(rename = "type")]
    #[schema(value_type = ReaderType)]
    pub kind: String,
    /// The reader's display name ("a former staff member" when no longer on record).
    pub name: String,
    /// For staff, the role they read in: `counsellor` or `admin`.
    #[schema(value_type = Option<StaffRole>)]
    pub role: Option<String>,
}

/// One read of the patient's data by someone other than the patient.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessLogEntry {
    /// When it was read.
    pub at: DateTime<Utc>,
    /// Who read it.
    pub reader: Reader,
    /// What they read, in plain words, e.g. "check-in history", "an alert".
    pub what: String,
}

impl From<AccessEntry> for AccessLogEntry {
    fn from(e: AccessEntry) -> Self {
        let integration = e.reader_role.as_deref() == Some(crate::service::audit::INTEGRATION_ROLE);
        Self {
            at: utc(e.at),
            reader: Reader {
                kind: if integration { "integration" } else { "staff" }.into(),
                name: e.reader_name.unwrap_or_else(|| {
                    if integration {
                        "a former connected app".into()
                    } else {
                        "a former staff member".into()
                    }
                }),
                role: e.reader_role,
            },
            what: e.what.to_owned(),
        }
    }
}

/// Who read my record: every read of the patient's data by anyone other than the patient —
/// staff by name and role — with when and what, newest first. Patients only.
#[utoipa::path(
    tag = "me",
    params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Reads of my record, newest first", body = Page<AccessLogEntry>),
        (status = 400, description = "Bad limit or cursor", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients only", body = Problem),
    )
)]
#[get("/me/access-log")]
pub async fn my_access_log(
    state: web::Data<AppState>,
    caller: Caller,
    query: Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Patient])?;
    let paging = query.0;
    let limit = paging.limit()?;
    let before = paging.position()?;
    let rows = access_log::for_me(&state, &caller, before, limit).await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows,
        limit,
        |e| e.id.clone(),
        AccessLogEntry::from,
    )))
}
