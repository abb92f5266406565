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
    let (user_id, sid) = (claims.sub.clone(), claims.sid.clone());
    let found = state
        .store
        .run(move |conn| -> Result<_, ApiError> {
            Ok(sessions::user_and_session(conn, &user_id, &sid)?)
        })
        .await?;
    let invalid =
        || ApiError::Unauthorized("The access token is no longer valid; sign in again.".into());
    let (user, session_open) = found.ok_or_else(invalid)?;
    // Logged out, or revoked because its refresh token was reused.
    if !session_open {
        return Err(invalid());
    }
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
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let caller = authenticate(&state, &token?, request_id).await?;
            // For the audit of denials, which happen after the handler has the caller.
            req.extensions_mut().insert(caller.clone());
            Ok(caller)
        })
    }
}
