//! The authenticated caller, extracted from `Authorization: Bearer <access token>`.
//!
//! The token proves identity; authorisation re-reads the user on every request so that a
//! disabled account, a role change or a password change takes effect on the very next
//! request rather than when the token expires.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::sessions;
use crate::telemetry::RequestId;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Clinic administrator.
    Admin,
    /// Aftercare counsellor.
    Counsellor,
    /// Patient.
    Patient,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Counsellor => "counsellor",
            Self::Patient => "patient",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "counsellor" => Some(Self::Counsellor),
            "patient" => Some(Self::Patient),
            _ => None,
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// User id.
    pub user_id: String,
    /// The caller's organisation.
    pub organisation_id: String,
    /// The caller's current role.
    pub role: Role,
    /// The caller's IANA timezone.
    pub timezone: String,
    /// The request id, for the audit trail.
    pub request_id: Option<String>,
    /// When this session signed in (refreshes keep it); `None` for callers without a session
    /// sign-in time (sessions from before it was kept, in-process tools).
    pub signed_in_at: Option<chrono::NaiveDateTime>,
    /// Staff of an organisation that requires a second factor, without one yet: they may
    /// reach only `/v1/me` and `/v1/me/mfa/…` (see [`mfa_enrolment_open`]).
    pub must_enrol_mfa: bool,
}

/// How recent a sign-in a sensitive operation needs, unless the request carries the password.
pub const REAUTHENTICATION_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Whether a session that signed in at `signed_in_at` may do a sensitive operation at `now`.
pub fn signed_in_recently(
    signed_in_at: Option<chrono::NaiveDateTime>,
    now: chrono::NaiveDateTime,
) -> bool {
    signed_in_at.is_some_and(|at| now - at <= REAUTHENTICATION_WINDOW)
}

/// The paths staff who must still enrol a second factor may reach.
pub fn mfa_enrolment_open(path: &str) -> bool {
    path == "/v1/me" || path == "/v1/me/mfa" || path.starts_with("/v1/me/mfa/")
}

impl Caller {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// 401 (`reauthentication-required`) unless the session signed in within the last
    /// [`REAUTHENTICATION_WINDOW`]: for sensitive operations whose request carries no password.
    pub fn require_recent_sign_in(&self) -> Result<(), ApiError> {
        if signed_in_recently(self.signed_in_at, crate::store::now()) {
            Ok(())
        } else {
            Err(ApiError::ReauthenticationRequired)
        }
    }
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::Unauthorized("An access token is required (Authorization: Bearer …).".into())
        })?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::Unauthorized("The Authorization header is malformed.".into()))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| ApiError::Unauthorized("Use the Bearer scheme.".into()))?;
    Ok(token.trim().to_owned())
}

/// Checks an access token and the user behind it as they are now: an access token outlives
/// neither a disabled account, a password change nor a move to another organisation.
pub async fn authenticate(
    state: &AppState,
    token: &str,
    request_id: Option<String>,
) -> Result<Caller, ApiError> {
    let claims = state
        .keys
        .verify(token)
        .map_err(|why| ApiError::Unauthorized(format!("The access token is not valid: {why}.")))?;
    authenticate_claims(state, claims, request_id).await
}

/// [`authenticate`] for a token whose signature and claims were already verified.
pub async fn authenticate_claims(
    state: &AppState,
    claims: crate::auth::tokens::Claims,
    request_id: Option<String>,
) -> Result<Caller, ApiError> {
    let (user_id, sid) = (claims.sub.clone(), claims.sid.clone());
    let found = state
        .store
        .run(move |conn| -> Result<_, ApiError> {
            Ok(sessions::user_and_session(conn, &user_id, &sid)?)
        })
        .await?;
    let invalid =
        || ApiError::Unauthorized("The access token is no longer valid; sign in again.".into());
    let found = found.ok_or_else(invalid)?;
    // Logged out, or revoked because its refresh token was reused.
    if !found.session_open {
        return Err(invalid());
    }
    let (user, signed_in_at) = (found.user, found.signed_in_at);
    // Staff of an organisation requiring a second factor, without one.
    let must_enrol_mfa =
        user.role != Role::Patient.as_str() && found.staff_mfa == "required" && !found.totp_enabled;
    if user.disabled || user.organisation_id != claims.org {
        return Err(invalid());
    }
    // A password change ends every session, including access tokens already issued.
    if claims.iat_ms < user.password_changed_at.and_utc().timestamp_millis() {
        return Err(invalid());
    }
    let role = Role::parse(&user.role).ok_or_else(invalid)?;
    Ok(Caller {
        user_id: user.id,
        organisation_id: user.organisation_id,
        role,
        timezone: user.timezone,
        request_id,
        signed_in_at,
        must_enrol_mfa,
    })
}

/// The bearer token of a request.
pub fn bearer_token(req: &HttpRequest) -> Result<String, ApiError> {
    bearer(req)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Already authenticated by the gate in front of the handler (`http::guard`).
        if let Some(caller) = req.extensions().get::<Caller>().cloned() {
            let open = mfa_enrolment_open(req.path());
            return Box::pin(async move {
                if caller.must_enrol_mfa && !open {
                    return Err(ApiError::MfaEnrolmentRequired);
                }
                Ok(caller)
            });
        }
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let caller = authenticate(&state, &token?, request_id).await?;
            // For the audit of denials, which happen after the handler has the caller.
            req.extensions_mut().insert(caller.clone());
            // Enforced here, for every route at once: staff who must enrol a second factor
            // reach nothing else until they have.
            if caller.must_enrol_mfa && !mfa_enrolment_open(req.path()) {
                return Err(ApiError::MfaEnrolmentRequired);
            }
            Ok(caller)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_is_recent_for_ten_minutes() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 3)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        let later = |secs| at + chrono::TimeDelta::seconds(secs);
        assert!(signed_in_recently(Some(at), later(599)));
        assert!(signed_in_recently(Some(at), later(600)));
        assert!(!signed_in_recently(Some(at), later(601)));
        assert!(!signed_in_recently(None, at));
    }

    #[test]
    fn staff_who_must_enrol_reach_only_their_own_account_and_mfa() {
        for open in [
            "/v1/me",
            "/v1/me/mfa",
            "/v1/me/mfa/totp",
            "/v1/me/mfa/totp/confirm",
        ] {
            assert!(mfa_enrolment_open(open), "{open}");
        }
        for closed in [
            "/v1/patients",
            "/v1/me/password",
            "/v1/me/mfaX",
            "/v1/me/check-ins/2026-12-03",
            "/v1/organisation/security",
        ] {
            assert!(!mfa_enrolment_open(closed), "{closed}");
        }
    }
}
