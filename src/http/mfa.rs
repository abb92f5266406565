//! Staff second factor: TOTP enrolment, the second sign-in step, turning it off, and the
//! organisation's `staff_mfa` setting.

use actix_web::{delete, get, post, put, web, HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::TokenResponse;
use super::extract::Json;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::service::mfa::{self, SecondStep, StaffMfa};
use crate::state::AppState;
use crate::telemetry::RequestId;

/// The second step of a sign-in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaLoginRequest {
    /// The `mfa_token` from the `mfa-required` answer of `POST /v1/auth/login`.
    pub mfa_token: String,
    /// The 6-digit code the authenticator app shows now, or one of the recovery codes
    /// (spaces and dashes ignored, any case).
    #[schema(
        pattern = "^[\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000-]*(([0-9][\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000-]*){6}|([A-Za-z2-7][\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000-]*){16})$"
    )]
    pub code: String,
}

/// A code from the authenticator app.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmTotp {
    /// The 6-digit code the app shows for the new secret (spaces ignored).
    #[schema(
        pattern = "^[\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000-]*([0-9][\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000-]*){6}$"
    )]
    pub code: String,
}

/// Turning the second factor off.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableTotp {
    /// The account's password.
    pub password: String,
    /// A 6-digit code from the authenticator app, or a recovery code (spaces and dashes
    /// ignored, any case).
    #[schema(
        pattern = "^[\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000-]*(([0-9][\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000-]*){6}|([A-Za-z2-7][\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000-]*){16})$"
    )]
    pub code: String,
}

/// A started TOTP enrolment.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// The shared secret, base32 (RFC 4648, no padding), to type into an authenticator app.
    pub secret: String,
    /// The same as an `otpauth://totp/…` URI (SHA-1, 6 digits, 30 s), for a QR code.
    pub otpauth_uri: String,
}

/// The recovery codes of a confirmed enrolment.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten single-use codes that stand in for the app (a lost phone). Shown only now: store
    /// them somewhere safe.
    pub recovery_codes: Vec<String>,
}

/// Where the signed-in user stands with their second factor.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaStatus {
    /// A confirmed authenticator is on: sign-ins ask for a code.
    pub totp_enabled: bool,
    /// An enrolment was started and awaits confirmation.
    pub enrolment_pending: bool,
    /// The organisation requires staff to have a second factor.
    pub required: bool,
    /// Recovery codes not used yet.
    pub recovery_codes_remaining: i64,
}

/// Whether counsellors and admins must sign in with a second factor.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StaffMfaSetting {
    /// Staff may turn a second factor on.
    Optional,
    /// Staff must: until they enrol, they reach only `/v1/me` and `/v1/me/mfa/…` (403,
    /// `mfa-enrolment-required`).
    Required,
}

/// The organisation's security settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganisationSecurity {
    /// `optional` or `required`.
    pub staff_mfa: StaffMfaSetting,
}

impl From<StaffMfa> for OrganisationSecurity {
    fn from(s: StaffMfa) -> Self {
        Self {
            staff_mfa: match s {
                StaffMfa::Optional => StaffMfaSetting::Optional,
                StaffMfa::Required => StaffMfaSetting::Required,
            },
        }
    }
}

/// Complete a sign-in with a second factor.
///
/// Send the `mfa_token` from the `mfa-required` answer of `POST /v1/auth/login` with a code
/// from the authenticator app (each code is accepted once) or a recovery code (each works
/// once). Wrong codes are throttled like passwords (429 with `Retry-After`).
#[utoipa::path(
    tag = "auth",
    request_body = MfaLoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "A wrong or already used code, or an expired or used mfa_token", body = Problem),
        (status = 422, description = "Invalid body", body = Problem),
        (status = 429, description = "Too many wrong codes", body = Problem,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
#[post("/auth/mfa")]
pub async fn login_mfa(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<MfaLoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let session = mfa::complete_sign_in(
        &state,
        SecondStep {
            mfa_token: b.mfa_token,
            code: b.code,
            request_id,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(session)))
}

/// The signed-in user's second-factor status.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Status", body = MfaStatus),
        (status = 401, description = "Not signed in", body = Problem),
    )
)]
#[get("/me/mfa")]
pub async fn mfa_status(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let s = mfa::status(&state, &caller).await?;
    Ok(HttpResponse::Ok().json(MfaStatus {
        totp_enabled: s.totp_enabled,
        enrolment_pending: s.enrolment_pending,
        required: s.required,
        recovery_codes_remaining: s.recovery_codes_left,
    }))
}

/// Start TOTP enrolment (counsellors and admins).
///
/// Returns a new secret for an authenticator app; it counts once confirmed with
/// `POST /v1/me/mfa/totp/confirm`. Starting again replaces an unconfirmed secret. Needs a
/// sign-in within the last 10 minutes.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The secret, shown only now", body = TotpEnrolment),
        (status = 401, description = "Not signed in, or (type ending reauthentication-required) not signed in within the last 10 minutes", body = Problem),
        (status = 403, description = "Staff only", body = Problem),
        (status = 409, description = "A second factor is already on", body = Problem),
    )
)]
#[post("/me/mfa/totp")]
pub async fn begin_totp(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let e = mfa::begin(&state, &caller).await?;
    Ok(HttpResponse::Ok().json(TotpEnrolment {
        secret: e.secret,
        otpauth_uri: e.otpauth_uri,
    }))
}

/// Confirm TOTP enrolment with the code the app shows; turns the second factor on.
///
/// Returns ten single-use recovery codes, shown only this once. Wrong codes are throttled.
/// Needs a sign-in within the last 10 minutes.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    request_body = ConfirmTotp,
    responses(
        (status = 200, description = "On; the recovery codes", body = RecoveryCodes),
        (status = 401, description = "Not signed in, or (type ending reauthentication-required) not signed in within the last 10 minutes", body = Problem),
        (status = 403, description = "Staff only", body = Problem),
        (status = 409, description = "No enrolment started, or already on", body = Problem),
        (status = 422, description = "Not the current code", body = Problem),
        (status = 429, description = "Too many wrong codes", body = Problem,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
#[post("/me/mfa/totp/confirm")]
pub async fn confirm_totp(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<ConfirmTotp>,
) -> Result<HttpResponse, ApiError> {
    let codes = mfa::confirm(&state, &caller, body.0.code).await?;
    Ok(HttpResponse::Ok().json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Turn the second factor off, with the password and a code (a recovery code if the device
/// is lost). The recovery codes go with it.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    request_body = DisableTotp,
    responses(
        (status = 204, description = "Off"),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Staff only", body = Problem),
        (status = 409, description = "No second factor is on", body = Problem),
        (status = 422, description = "Wrong password or code", body = Problem),
        (status = 429, description = "Too many wrong passwords or codes", body = Problem,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
#[delete("/me/mfa/totp")]
pub async fn disable_totp(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<DisableTotp>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    mfa::disable(&state, &caller, b.password, b.code).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The organisation's security settings (admins).
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings", body = OrganisationSecurity),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
    )
)]
#[get("/organisation/security")]
pub async fn get_security(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let s = mfa::security(&state, &caller).await?;
    Ok(HttpResponse::Ok().json(OrganisationSecurity::from(s)))
}

/// Replace the organisation's security settings (admins; needs a sign-in within the last 10
/// minutes). With `staff_mfa: required`, counsellors and admins without a second factor reach
/// only `/v1/me` and `/v1/me/mfa/…` until they enrol.
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    request_body = OrganisationSecurity,
    responses(
        (status = 200, description = "The stored settings", body = OrganisationSecurity),
        (status = 401, description = "Not signed in, or (type ending reauthentication-required) not signed in within the last 10 minutes", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 422, description = "Invalid body", body = Problem),
    )
)]
#[put("/organisation/security")]
pub async fn put_security(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<OrganisationSecurity>,
) -> Result<HttpResponse, ApiError> {
    let value = match body.0.staff_mfa {
        StaffMfaSetting::Optional => StaffMfa::Optional,
        StaffMfaSetting::Required => StaffMfa::Required,
    };
    let s = mfa::set_security(&state, &caller, value).await?;
    Ok(HttpResponse::Ok().json(OrganisationSecurity::from(s)))
}
