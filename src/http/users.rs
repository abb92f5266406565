//! Administrators manage their organisation's users.

use actix_web::{get, patch, web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::extract::{Json, Query};
use super::pagination::{Page, PageParams};
use super::types::{ManagedUser, User};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, Problem};
use crate::service::audit;
use crate::state::AppState;
use crate::store::{self, accounts, sessions};

/// Filters for the user list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// Only users with this role.
    pub role: Option<Role>,
    /// Items per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
}

/// Changes an administrator may make to a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// Disable (true) or re-enable (false) sign-in. Takes effect on the user's very next request.
    pub disabled: Option<bool>,
}

fn managed(u: accounts::UserRow) -> ManagedUser {
    let disabled = u.disabled;
    ManagedUser {
        user: User::from(u),
        disabled,
    }
}

/// The organisation's users (admins only).
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    params(UserQuery),
    responses(
        (status = 200, description = "A page of users", body = Page<ManagedUser>),
        (status = 400, description = "Bad query parameter (`limit` not from 1 to 200, an unknown `role`, a cursor this API did not give out, an unknown parameter)", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
    )
)]
#[get("/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<UserQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let q = q.0;
    let paging = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = paging.limit()?;
    let after = paging.position()?;
    let org = caller.organisation_id.clone();
    let role = q.role.map(Role::as_str);
    let rows = state
        .store
        .run(move |conn| {
            accounts::list_users(conn, &org, role, after.as_deref(), limit + 1)
                .map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, limit, |u| u.id.clone(), managed)))
}

/// Disable or re-enable a user of the organisation (admins only). Disabling also ends the
/// user's sessions.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    request_body = UpdateUser,
    params(("id" = uuid::Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = ManagedUser),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 404, description = "No such user in your organisation", body = Problem),
        (status = 409, description = "A closed patient account cannot be enabled again", body = Problem),
        (status = 422, description = "Invalid field", body = Problem),
    )
)]
#[patch("/users/{id}")]
pub async fn update_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<UpdateUser>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let id = path.into_inner();
    let disabled = body.0.disabled;
    if disabled == Some(true) && id == caller.user_id {
        return Err(ApiError::field(
            "disabled",
            "you cannot disable your own account",
        ));
    }
    let row = state
        .store
        .transaction(move |conn| -> Result<accounts::UserRow, ApiError> {
            let user = accounts::find_user(conn, &id)?
                .filter(|u| u.organisation_id == caller.organisation_id)
                .ok_or(ApiError::NotFound)?;
            let now = store::now();
            if disabled == Some(false)
                && user.disabled
                && crate::store::patients::find(conn, &id)?.is_some_and(|p| p.closed_at.is_some())
            {
                return Err(ApiError::Conflict(
                    "The patient's account was closed; it cannot be enabled again.".into(),
                ));
            }
            if let Some(d) = disabled {
                accounts::update_user(
                    conn,
                    &id,
                    &accounts::UserChanges {
                        disabled: Some(d),
                        updated_at: Some(now),
                        ..Default::default()
                    },
                )?;
                if d {
                    sessions::revoke_user(conn, &id, now)?;
                } else if user.role == "patient" {
                    crate::service::check_ins::reschedule_missed_review(conn, &id)?;
                }
            }
            audit::record(
                conn,
                &caller,
                audit::Event {
                    action: "user.updated",
                    patient_id: (user.role == "patient").then_some(id.as_str()),
                    target_type: Some("user"),
                    target_id: Some(&id),
                    outcome: "success",
                },
            )?;
            Ok(accounts::find_user(conn, &id)?.unwrap_or(user))
        })
        .await?;
    Ok(HttpResponse::Ok().json(managed(row)))
}
