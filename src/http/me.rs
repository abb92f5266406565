//! The signed-in user's own account.

use actix_web::{get, patch, post, web, HttpResponse};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::extract::Json;
use super::types::User;
use super::vocabulary::{CountryCode, Timezone};
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::service::accounts;
use crate::state::AppState;
use crate::store::{self, accounts as users};

/// Changes to the signed-in user's profile; omitted fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    /// New display name (1–100 printable characters, not only blanks).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub display_name: Option<String>,
    /// New IANA timezone.
    #[schema(value_type = Option<Timezone>)]
    pub timezone: Option<String>,
    /// New sign-in address; needs `current_password`. The answer is the same whether or not
    /// another account has the address (202, see the operation).
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    /// The current password: required with `email`, and only with it.
    pub current_password: Option<String>,
    /// Patients only: the country whose crisis lines they are shown (ISO 3166-1 alpha-2, e.g.
    /// `DE`); `null` goes back to the country of their timezone.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<CountryCode>, nullable)]
    pub country: Option<Option<String>>,
}

/// `Some(None)` for an explicit `null`, so it differs from an omitted field (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The signed-in user, and for a patient the country their crisis lines follow.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The user.
    #[serde(flatten)]
    pub user: User,
    /// Patients only: the country set on their profile (ISO 3166-1 alpha-2), `null` when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<CountryCode>, nullable)]
    pub country: Option<Option<String>>,
    /// Patients only: the country whose crisis lines they are shown — `country`, else the
    /// country of their timezone in the IANA zone table; `null` when neither gives one (e.g.
    /// UTC), and then general advice and findahelpline.com are shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<CountryCode>, nullable)]
    pub crisis_country: Option<Option<String>>,
}

/// The answer to a request that asked to change the email address.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailChangeAccepted {
    /// What happens next, for the person to read.
    #[schema(
        example = "If no other account uses this address, it is now the address you sign in with."
    )]
    pub message: String,
}

/// The one answer to an email change, free or taken alike, when no mail is configured.
pub const EMAIL_CHANGE_MESSAGE: &str = "If no other account uses this address, it is now the address you sign in with: use it (and your password) the next time you sign in. If it is not, nothing was changed.";

/// The one answer to an email change, free or taken alike, when the new address is confirmed
/// by mail.
pub const EMAIL_CONFIRMATION_MESSAGE: &str = "We sent a message to the new address. To start signing in with it, enter the code from that message (POST /v1/me/email/confirm) within 24 hours; until then, keep signing in with your current address. If the address cannot be used, the message says why.";

/// The code that confirms a new sign-in address.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmEmail {
    /// The code from the message sent to the new address (`abcd-efgh-ijkl-mnop`; any case,
    /// dashes optional).
    #[schema(
        example = "k3qd-7rmx-a2vn-pq5t",
        pattern = "^[\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000-]*([A-Za-z2-7][\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000-]*){16}$",
        max_length = 64
    )]
    pub code: String,
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The current password.
    pub current_password: String,
    /// The new password (12–128 bytes, not common).
    #[schema(min_length = 12, max_length = 128)]
    pub new_password: String,
}

async fn load_me(state: &AppState, caller: &Caller) -> Result<Me, ApiError> {
    let id = caller.user_id.clone();
    let (row, patient) = state
        .store
        .run(move |conn| -> Result<_, ApiError> {
            let row = users::find_user(conn, &id)?.ok_or(ApiError::NotFound)?;
            let patient = if row.role == "patient" {
                crate::store::patients::find(conn, &id)?
            } else {
                None
            };
            Ok((row, patient))
        })
        .await?;
    let (country, crisis_country) = match &patient {
        Some(p) => (
            Some(p.country.clone()),
            Some(crate::domain::crisis::patient_country(
                p.country.as_deref(),
                &row.timezone,
            )),
        ),
        None => (None, None),
    };
    Ok(Me {
        user: row.into(),
        country,
        crisis_country,
    })
}

/// The signed-in user.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = Me),
        (status = 401, description = "Not signed in", body = Problem),
    )
)]
#[get("/me")]
pub async fn get_me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(load_me(&state, &caller).await?))
}

/// Change the signed-in user's display name, timezone or email, and a patient's country.
///
/// Changing `email` needs `current_password`, and never tells whether another account has the
/// address (that would tell who is a patient, anywhere): the answer is 202 with the same
/// message either way, and the attempt is audited. When the server sends mail, the new
/// address gets a code (or, if an account already signs in with it, a note saying so) and
/// nothing changes until `POST /v1/me/email/confirm`; without mail, the address changes at
/// once if it is free. A wrong password is a 422 counted like a failed sign-in; at most 5
/// email changes per account per sign-in throttle window (429 after); 503 when the message
/// could not be sent (nothing changed).
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    request_body = UpdateMe,
    responses(
        (status = 200, description = "The updated user (no email change asked)", body = Me),
        (status = 202, description = "An email change was asked (the other changes are made); the same answer whether or not the address was free", body = EmailChangeAccepted),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 422, description = "Invalid field, or a missing or wrong current_password", body = Problem),
        (status = 429, description = "Too many email changes or wrong passwords", body = Problem,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 503, description = "The message to the new address could not be sent; nothing changed", body = Problem,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
#[patch("/me")]
pub async fn patch_me(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<UpdateMe>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    // Changing the sign-in email is a sensitive change (SPEC §12): it always carries the
    // password (checked in `accounts::change_email`), which stands for a recent sign-in.
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
    let mut new_email = None;
    if let Some(e) = &b.email {
        match accounts::normalise_email("email", e) {
            Ok(v) => new_email = Some(v),
            Err(e) => errors.push(e),
        }
    }
    match (&b.email, &b.current_password) {
        (Some(_), None) => errors.push(crate::domain::validation::FieldError::new(
            "current_password",
            "is required to change the email",
        )),
        (None, Some(_)) => errors.push(crate::domain::validation::FieldError::new(
            "current_password",
            "is only needed to change the email",
        )),
        _ => {}
    }
    let country = match &b.country {
        None => None,
        Some(_) if caller.role != crate::auth::Role::Patient => {
            errors.push(crate::domain::validation::FieldError::new(
                "country",
                "only a patient's profile has a country",
            ));
            None
        }
        Some(None) => Some(None),
        Some(Some(raw)) => match crate::domain::crisis::parse_country(raw) {
            Some(code) => Some(Some(code)),
            None => {
                errors.push(crate::domain::validation::FieldError::new(
                    "country",
                    "must be an ISO 3166-1 alpha-2 country code, e.g. DE",
                ));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    // The password is checked (and the address changed, if free) before anything else
    // changes, so a wrong password changes nothing.
    let email_asked = match (new_email, b.current_password) {
        (Some(email), Some(password)) => {
            Some(accounts::change_email(&state, &caller, password, email).await?)
        }
        _ => None,
    };
    let nothing_else =
        changes.display_name.is_none() && changes.timezone.is_none() && country.is_none();
    if let (Some(asked), true) = (email_asked, nothing_else) {
        return Ok(email_change_answer(asked));
    }
    changes.updated_at = Some(store::now());
    let c = caller.clone();
    state
        .store
        .transaction(move |conn| -> Result<(), ApiError> {
            users::update_user(conn, &c.user_id, &changes)?;
            if let Some(country) = &country {
                crate::store::patients::set_country(conn, &c.user_id, country.as_deref())?;
            }
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
    if let Some(asked) = email_asked {
        return Ok(email_change_answer(asked));
    }
    Ok(HttpResponse::Ok().json(load_me(&state, &caller).await?))
}

fn email_change_answer(asked: accounts::EmailChange) -> HttpResponse {
    let message = match asked {
        accounts::EmailChange::Applied => EMAIL_CHANGE_MESSAGE,
        accounts::EmailChange::ConfirmationSent => EMAIL_CONFIRMATION_MESSAGE,
    };
    HttpResponse::Accepted().json(EmailChangeAccepted {
        message: message.into(),
    })
}

/// Confirm a new sign-in address with the code mailed to it (when the server sends mail,
/// `PATCH /v1/me` with `email` only asks for the change). The account signs in with the new
/// address from now on, and the previous address gets a message saying so. The code works
/// for 24 hours and for 5 wrong tries; a new `PATCH /v1/me` replaces it.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    request_body = ConfirmEmail,
    responses(
        (status = 200, description = "The address changed: the updated user", body = Me),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 409, description = "Another account signs in with the address now; nothing changed", body = Problem),
        (status = 422, description = "`code` is wrong or expired, or no change is waiting", body = Problem),
    )
)]
#[post("/me/email/confirm")]
pub async fn confirm_email(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<ConfirmEmail>,
) -> Result<HttpResponse, ApiError> {
    accounts::confirm_email(&state, &caller, &body.0.code).await?;
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
    req: actix_web::HttpRequest,
    body: Json<ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let client = super::auth::client_address(&req, &state.settings.trusted_proxies);
    accounts::change_password(&state, &caller, b.current_password, b.new_password, &client).await?;
    Ok(HttpResponse::NoContent().finish())
}
