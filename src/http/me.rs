//! The signed-in user's own account.

use actix_web::{get, patch, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::Json;
use super::types::User;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::service::accounts;
use crate::state::AppState;
use crate::store::{self, accounts as users};

/// Changes to the signed-in user's profile; omitted fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    /// New display name (1–100 characters).
    pub display_name: Option<String>,
    /// New IANA timezone.
    pub timezone: Option<String>,
    /// New email address.
    pub email: Option<String>,
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The current password.
    pub current_password: String,
    /// The new password (12–128 bytes, not common).
    pub new_password: String,
}

async fn load_me(state: &AppState, caller: &Caller) -> Result<User, ApiError> {
    let id = caller.user_id.clone();
    let row = state
        .store
        .run(move |conn| users::find_user(conn, &id).map_err(ApiError::from))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(row.into())
}

/// The signed-in user.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 401, description = "Not signed in", body = Problem),
    )
)]
#[get("/me")]
pub async fn get_me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(load_me(&state, &caller).await?))
}

/// Change the signed-in user's display name, timezone or email.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    request_body = UpdateMe,
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 409, description = "The email is taken", body = Problem),
        (status = 422, description = "Invalid field", body = Problem),
    )
)]
#[patch("/me")]
pub async fn patch_me(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<UpdateMe>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let mut errors = Vec::new();
    let mut changes = users::UserChanges::default();
    if let Some(n) = &b.display_name {
        match accounts::check_display_name("display_name", n) {
            Ok(v) => changes.display_name = Some(v),
            Err(e) => errors.push(e),
        }
    }
    if let Some(t) = &b.timezone {
        match accounts::check_timezone("timezone", t) {
            Ok(v) => changes.timezone = Some(v),
            Err(e) => errors.push(e),
        }
    }
    if let Some(e) = &b.email {
        match accounts::normalise_email("email", e) {
            Ok(v) => changes.email = Some(v),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    changes.updated_at = Some(store::now());
    let c = caller.clone();
    state
        .store
        .transaction(move |conn| -> Result<(), ApiError> {
            if let Some(email) = &changes.email {
                if users::email_taken(conn, email, Some(&c.user_id))? {
                    return Err(ApiError::Conflict(
                        "An account with this email already exists.".into(),
                    ));
                }
            }
            users::update_user(conn, &c.user_id, &changes)?;
            if changes.timezone.is_some() && c.role == crate::auth::Role::Patient {
                crate::service::check_ins::reschedule_missed_review(conn, &c.user_id)?;
            }
            crate::service::audit::record(
                conn,
                &c,
                crate::service::audit::Event {
                    action: "account.updated",
                    patient_id: (c.role == crate::auth::Role::Patient)
                        .then_some(c.user_id.as_str()),
                    target_type: Some("user"),
                    target_id: Some(&c.user_id),
                    outcome: "success",
                },
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::Ok().json(load_me(&state, &caller).await?))
}

/// Change the signed-in user's password. Every session ends, this one included: sign in
/// again with the new password.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    request_body = ChangePassword,
    responses(
        (status = 204, description = "Changed; all sessions revoked"),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 422, description = "Wrong current password or a weak new one", body = Problem),
        (status = 429, description = "Too many wrong current passwords", body = Problem,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
#[post("/me/password")]
pub async fn change_password(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    accounts::change_password(&state, &caller, b.current_password, b.new_password).await?;
    Ok(HttpResponse::NoContent().finish())
}
