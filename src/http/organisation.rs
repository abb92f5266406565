//! Organisation administration: the audit log.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::Query;
use super::pagination::{Page, PageParams};
use super::types::utc;
use super::vocabulary::{AuditOutcome, Vocabulary};
use crate::auth::{Caller, Role};
use crate::domain::validation::FieldError;
use crate::error::{ApiError, Problem};
use crate::state::AppState;
use crate::store::audit::{self, AuditFilter, AuditRow};

/// Filters for the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only events by this user.
    #[param(format = Uuid)]
    pub actor_id: Option<String>,
    /// Only events touching this patient's data.
    #[param(format = Uuid)]
    pub patient_id: Option<String>,
    /// Only this action, e.g. `patient.read`, `check_in.write`, `auth.login_failed`.
    pub action: Option<String>,
    /// Only this outcome: `success`, `failure` or `denied`.
    #[param(value_type = Option<AuditOutcome>)]
    pub outcome: Option<String>,
    /// Items per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Event id (time-ordered).
    #[schema(format = Uuid)]
    pub id: String,
    /// Who acted (null for anonymous attempts such as failed sign-ins to unknown accounts).
    pub actor_id: Option<String>,
    /// The actor's role at the time.
    #[schema(value_type = Option<Role>)]
    pub actor_role: Option<String>,
    /// What was done, e.g. `patient.read`.
    pub action: String,
    /// The patient whose data was read or written, if any.
    #[schema(format = Uuid)]
    pub patient_id: Option<String>,
    /// The kind of object acted on.
    pub target_type: Option<String>,
    /// The object's id.
    pub target_id: Option<String>,
    /// `success`, `failure` or `denied`.
    #[schema(value_type = AuditOutcome)]
    pub outcome: String,
    /// The request id, to correlate with logs.
    pub request_id: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            actor_id: r.actor_id,
            actor_role: r.actor_role,
            action: r.action,
            patient_id: r.patient_id,
            target_type: r.target_type,
            target_id: r.target_id,
            outcome: r.outcome,
            request_id: r.request_id,
            created_at: utc(r.created_at),
        }
    }
}

/// The organisation's audit log, newest first (admins only).
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of audit events", body = Page<AuditEvent>),
        (status = 400, description = "Bad query parameter", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
    )
)]
#[get("/organisation/audit-events")]
pub async fn audit_events(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let q = q.0;
    for (name, id) in [("actor_id", &q.actor_id), ("patient_id", &q.patient_id)] {
        if id.as_deref().is_some_and(|v| !super::types::is_id(v)) {
            return Err(ApiError::BadQuery(vec![FieldError::new(
                name,
                "must be an id (a UUID)",
            )]));
        }
    }
    if let Some(o) = &q.outcome {
        if !AuditOutcome::WORDS.contains(&o.as_str()) {
            return Err(ApiError::BadQuery(vec![FieldError::new(
                "outcome",
                "must be success, failure or denied",
            )]));
        }
    }
    let paging = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = paging.limit()?;
    let before = paging.position()?;
    let filter = AuditFilter {
        actor_id: q.actor_id,
        patient_id: q.patient_id,
        action: q.action,
        outcome: q.outcome,
    };
    let org = caller.organisation_id.clone();
    let rows = state
        .store
        .run(move |conn| {
            audit::list(conn, &org, &filter, before.as_deref(), limit + 1).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows,
        limit,
        |r| r.id.clone(),
        AuditEvent::from,
    )))
}
