//! The one place HTTP statuses are decided: every failure becomes an RFC 9457
//! `application/problem+json` body. A 5xx never carries internals; its cause is logged
//! (without request bodies or patient data) and the client gets the request id to quote.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::validation::FieldError;

/// An RFC 9457 problem details document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this request, for a person to read.
    pub detail: String,
    /// On validation failures: each invalid field and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// On `/problems/mfa-required` only: the token that carries this sign-in to
    /// `POST /v1/auth/mfa` with the second factor (valid 5 minutes, single use).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<String>,
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request (e.g. JSON that does not parse).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Query parameters that cannot be read, field by field.
    #[error("bad query")]
    BadQuery(Vec<FieldError>),
    /// Well-formed but invalid input, field by field.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// Missing, expired or invalid credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The password was right; the account's second factor is due (`POST /v1/auth/mfa`).
    #[error("second factor required")]
    MfaRequired {
        /// Carries the sign-in to the second step.
        mfa_token: String,
    },
    /// The organisation requires staff to have a second factor and this account has none yet.
    #[error("second factor enrolment required")]
    MfaEnrolmentRequired,
    /// A sensitive operation, and the session did not sign in recently.
    #[error("reauthentication required")]
    ReauthenticationRequired,
    /// Authenticated, but the role may not do this.
    #[error("forbidden")]
    Forbidden,
    /// Authenticated, but not allowed this, for the reason given (e.g. a data category
    /// outside an integration's consent and scopes).
    #[error("forbidden: {0}")]
    ForbiddenBecause(String),
    /// Missing, or outside the caller's reach: the two are indistinguishable on purpose.
    #[error("not found")]
    NotFound,
    /// No route for this method; carries the methods that do exist.
    #[error("method not allowed")]
    MethodNotAllowed(Vec<String>),
    /// The request conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The body is larger than allowed.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The body is not JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Too many attempts; try again after this many seconds.
    #[error("rate limited")]
    RateLimited {
        /// Seconds until another attempt may succeed.
        retry_after_secs: u64,
    },
    /// Storage cannot be reached right now.
    #[error("storage unavailable")]
    Unavailable,
    /// A message to a person (an address confirmation) could not be handed to the SMTP
    /// server; nothing was changed.
    #[error("mail unavailable")]
    MailUnavailable,
    /// Too much work is waiting (password hashing under a flood); retry shortly.
    #[error("overloaded")]
    Overloaded,
    /// The request body did not arrive within the read deadline.
    #[error("request timeout")]
    RequestTimeout,
    /// Anything else; logged, never shown.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A validation failure on a single field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// Wraps any error as internal.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(anyhow::anyhow!("{e}"))
    }

    fn parts(&self) -> (&'static str, &'static str, String) {
        match self {
            Self::BadRequest(d) => ("/problems/bad-request", "Bad request", d.clone()),
            Self::BadQuery(errors) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                (
                    "/problems/bad-query",
                    "Bad query parameters",
                    format!("Some query parameters are invalid: {}.", fields.join(", ")),
                )
            }
            Self::Validation(errors) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                (
                    "/problems/validation",
                    "Invalid request",
                    format!("Some fields are invalid: {}.", fields.join(", ")),
                )
            }
            Self::Unauthorized(d) => (
                "/problems/unauthorized",
                "Authentication required",
                d.clone(),
            ),
            Self::MfaRequired { .. } => (
                "/problems/mfa-required",
                "Second factor required",
                "The password is right; send a code from your authenticator app (or a recovery \
                 code) with this mfa_token to POST /v1/auth/mfa within 5 minutes."
                    .into(),
            ),
            Self::MfaEnrolmentRequired => (
                "/problems/mfa-enrolment-required",
                "Second factor enrolment required",
                "Your organisation requires staff to sign in with a second factor. Set one up \
                 with POST /v1/me/mfa/totp; until then only /v1/me and /v1/me/mfa are open."
                    .into(),
            ),
            Self::ReauthenticationRequired => (
                "/problems/reauthentication-required",
                "Reauthentication required",
                "This change needs a sign-in within the last 10 minutes: sign in again, then \
                 retry."
                    .into(),
            ),
            Self::Forbidden => (
                "/problems/forbidden",
                "Forbidden",
                "Your role does not allow this operation.".into(),
            ),
            Self::ForbiddenBecause(why) => ("/problems/forbidden", "Forbidden", why.clone()),
            Self::NotFound => (
                "/problems/not-found",
                "Not found",
                "No such resource.".into(),
            ),
            Self::MethodNotAllowed(allow) => (
                "/problems/method-not-allowed",
                "Method not allowed",
                format!("This resource supports: {}.", allow.join(", ")),
            ),
            Self::Conflict(d) => ("/problems/conflict", "Conflict", d.clone()),
            Self::PayloadTooLarge => (
                "/problems/payload-too-large",
                "Payload too large",
                "The request body is larger than this endpoint accepts.".into(),
            ),
            Self::UnsupportedMediaType => (
                "/problems/unsupported-media-type",
                "Unsupported media type",
                "Send the body as JSON with Content-Type: application/json.".into(),
            ),
            Self::RateLimited { retry_after_secs } => (
                "/problems/rate-limited",
                "Too many requests",
                format!("Try again in {retry_after_secs} seconds."),
            ),
            Self::Unavailable => (
                "/problems/unavailable",
                "Service unavailable",
                "Storage is unavailable right now; nothing was changed. Please retry shortly."
                    .into(),
            ),
            Self::MailUnavailable => (
                "/problems/mail-unavailable",
                "Mail unavailable",
                "The message to the new address could not be sent; nothing was changed. Please \
                 retry in a few minutes."
                    .into(),
            ),
            Self::Overloaded => (
                "/problems/overloaded",
                "Service busy",
                "Too many sign-ins are being checked right now; nothing was changed. Please retry shortly."
                    .into(),
            ),
            Self::RequestTimeout => (
                "/problems/request-timeout",
                "Request timeout",
                "The request body did not arrive in time; nothing was changed. Please send it again."
                    .into(),
            ),
            Self::Internal(_) => (
                "/problems/internal",
                "Internal server error",
                "Something went wrong on our side; nothing you sent was lost if you retry.".into(),
            ),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::BadQuery(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) | Self::MfaRequired { .. } | Self::ReauthenticationRequired => {
                StatusCode::UNAUTHORIZED
            }
            Self::Forbidden | Self::ForbiddenBecause(_) | Self::MfaEnrolmentRequired => {
                StatusCode::FORBIDDEN
            }
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable | Self::Overloaded | Self::MailUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            Self::Internal(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "internal error")
            }
            Self::Unavailable => tracing::warn!("storage unavailable"),
            _ => {}
        }
        let (kind, title, detail) = self.parts();
        let body = Problem {
            kind: kind.into(),
            title: title.into(),
            status: status.as_u16(),
            detail,
            errors: match self {
                Self::Validation(e) | Self::BadQuery(e) => Some(e.clone()),
                _ => None,
            },
            mfa_token: match self {
                Self::MfaRequired { mfa_token } => Some(mfa_token.clone()),
                _ => None,
            },
        };
        let mut resp = HttpResponse::build(status);
        resp.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        resp.insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            Self::Unauthorized(_) | Self::MfaRequired { .. } | Self::ReauthenticationRequired => {
                resp.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"aftercare\""),
                ));
            }
            Self::MethodNotAllowed(allow) => {
                if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
                    resp.insert_header((header::ALLOW, v));
                }
            }
            Self::RateLimited { retry_after_secs } => {
                resp.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            Self::Unavailable => {
                resp.insert_header((header::RETRY_AFTER, "5"));
            }
            Self::Overloaded => {
                resp.insert_header((header::RETRY_AFTER, "2"));
            }
            Self::MailUnavailable => {
                resp.insert_header((header::RETRY_AFTER, "60"));
            }
            // The rest of the body may still trickle in: the connection is not reused.
            Self::RequestTimeout => {
                resp.force_close();
            }
            _ => {}
        }
        let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        resp.body(json)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                Self::Unavailable
            }
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(what) => Self::Conflict(what),
            StoreError::Other(e) => Self::Internal(e),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        Self::Internal(anyhow::anyhow!("blocking task was cancelled"))
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        crate::store::StoreError::from(e).into()
    }
}
