//! Accounts and sessions: login, refresh, logout, registration, and the public keys.

use actix_web::{get, post, web, HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{IdempotentJson, Json};
use super::types::User;
use super::vocabulary::{Timezone, TokenType};
use crate::error::{ApiError, Problem};
use crate::service::accounts::{self, LoginAttempt, Registration, Session};
use crate::state::AppState;
use crate::telemetry::RequestId;

/// Sign-in credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "dana@example.org", "password": "correct horse battery staple"}))]
pub struct LoginRequest {
    /// Email address.
    #[schema(format = Email)]
    pub email: String,
    /// Password.
    pub password: String,
}

/// A refresh token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    pub refresh_token: String,
}

/// Registration with an invitation code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The code from the invitation (single use; expires).
    #[schema(min_length = 1)]
    pub invitation_code: String,
    /// Email address; must match the invitation's, if it named one.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 12 to 128 bytes, not a common password, not containing the email or name.
    #[schema(min_length = 12, max_length = 128)]
    pub password: String,
    /// Name shown to the care team (1–100 printable characters, not only blanks).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub display_name: String,
    /// IANA timezone, e.g. `America/Chicago`; the patient's check-in dates are reckoned in it.
    #[schema(value_type = Timezone)]
    pub timezone: String,
}

/// A session: tokens and the signed-in user.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "access_token": "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMTkzYTZmMi03YzFlLTdkNDAtOWE1NS0zZjFmNmYxZDJiMTAifQ.c2lnbmF0dXJl",
    "token_type": "Bearer",
    "expires_in": 900,
    "refresh_token": "rt_8JkqL3vX0sPz2mN7bYc4Wd",
    "user": {
        "id": "0193a6f2-7c1e-7d40-9a55-3f1f6f1d2b10",
        "organisation_id": "0193a6f0-1b2c-7e3d-8f40-5a6b7c8d9e0f",
        "role": "patient",
        "email": "dana@example.org",
        "display_name": "Dana R.",
        "timezone": "America/New_York",
        "created_at": "2026-10-02T14:03:11Z"
    }
}))]
pub struct TokenResponse {
    /// Short-lived access token (EdDSA JWT) for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(value_type = TokenType)]
    pub token_type: String,
    /// Seconds until the access token expires.
    #[schema(minimum = 1)]
    pub expires_in: i64,
    /// Opaque refresh token; each use returns a new one and retires this one.
    pub refresh_token: String,
    /// The signed-in user.
    pub user: User,
}

impl From<Session> for TokenResponse {
    fn from(s: Session) -> Self {
        Self {
            access_token: s.access_token,
            token_type: "Bearer".into(),
            expires_in: s.expires_in,
            refresh_token: s.refresh_token,
            user: s.user.into(),
        }
    }
}

pub fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(|r| r.0.clone())
}

/// Sign in with email and password.
///
/// Only wrong passwords are counted, per account, per network and per account from a network
/// (429 with `Retry-After`), identically whether or not the account exists; an account keeps
/// accepting its owner from a network it signed in from before. When too many sign-ins are
/// waiting for a password check the answer is 503 with `Retry-After`, at once.
/// With a second factor on, a right password answers 401 with `type` ending `mfa-required`
/// and an `mfa_token`: complete the sign-in with `POST /v1/auth/mfa`.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Wrong email or password; or (type ending mfa-required, with mfa_token) the password was right and the account's second factor is due", body = Problem),
        (status = 422, description = "Invalid body", body = Problem),
        (status = 429, description = "Too many failed attempts", body = Problem,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 503, description = "Too many sign-ins being checked right now", body = Problem,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let client_ip = client_address(&req, &state.settings.trusted_proxies);
    let body = body.0;
    let session = accounts::login(
        &state,
        LoginAttempt {
            email: body.email,
            password: body.password,
            client_ip,
            request_id: request_id(&req),
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(session)))
}

/// The client's address, for throttling: the TCP peer, unless the peer is one of our own
/// reverse proxies (`AFTERCARE_TRUSTED_PROXIES`), in which case it is the address the
/// outermost of our proxies saw, read from `X-Forwarded-For` right to left. Entries further
/// left were written by the client and are never believed.
pub fn client_address(req: &HttpRequest, trusted: &[std::net::IpAddr]) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
        return String::new();
    };
    if !trusted.contains(&peer) {
        return peer.to_string();
    }
    let chain: Vec<Option<std::net::IpAddr>> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| hop.trim().parse().ok())
        .collect();
    client_from_chain(peer, &chain, trusted).to_string()
}

fn client_from_chain(
    peer: std::net::IpAddr,
    chain: &[Option<std::net::IpAddr>],
    trusted: &[std::net::IpAddr],
) -> std::net::IpAddr {
    let mut nearest = peer;
    for hop in chain.iter().rev() {
        match hop {
            Some(ip) if trusted.contains(ip) => nearest = *ip,
            Some(ip) => return *ip,
            // Garbage where an address should be: stop at the last hop we can vouch for.
            None => return nearest,
        }
    }
    nearest
}

/// Exchange a refresh token for new tokens.
///
/// The presented token stops working. Presenting it again revokes the whole session, because
/// a reused refresh token means it was copied.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "Unknown, expired, revoked or reused token", body = Problem),
        (status = 422, description = "Invalid body", body = Problem),
    )
)]
#[post("/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let session = accounts::refresh(&state, body.0.refresh_token, request_id(&req)).await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(session)))
}

/// End the session a refresh token belongs to.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "Signed out"),
        (status = 422, description = "Invalid body", body = Problem),
    )
)]
#[post("/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    accounts::logout(&state, body.0.refresh_token).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Create an account with an invitation code; signs the new user in.
#[utoipa::path(
    tag = "auth",
    request_body = RegisterRequest,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", description = "Makes retries safe: the same key and body, after a response that was lost, sign the account the first request created in again (a new session) instead of failing on the used code; the same key with another body is a 422")),
    responses(
        (status = 201, description = "Registered and signed in", body = TokenResponse),
        (status = 409, description = "The email is already registered", body = Problem),
        (status = 422, description = "Invalid field, or an invalid, expired or used code", body = Problem),
    )
)]
#[post("/auth/register")]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: IdempotentJson<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let (b, key) = (body.body, body.key);
    let session = accounts::register(
        &state,
        Registration {
            invitation_code: b.invitation_code,
            email: b.email,
            password: b.password,
            display_name: b.display_name,
            timezone: b.timezone,
        },
        key,
        request_id(&req),
    )
    .await?;
    Ok(HttpResponse::Created().json(TokenResponse::from(session)))
}

/// The public keys that verify access tokens (JWKS).
#[utoipa::path(
    tag = "auth",
    responses((status = 200, description = "JSON Web Key Set", body = Object))
)]
#[get("/.well-known/jwks.json")]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(state.keys.jwks())
}

#[cfg(test)]
mod tests {
    use super::client_from_chain;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right() {
        let lb = ip("10.0.0.2");
        let trusted = [lb, ip("10.0.0.3")];
        let chain = |hops: &[&str]| -> Vec<Option<IpAddr>> {
            hops.iter().map(|h| h.parse().ok()).collect()
        };
        // A spoofed left-most entry is ignored; the proxy's own entry is the client.
        assert_eq!(
            client_from_chain(lb, &chain(&["1.1.1.1", "203.0.113.7"]), &trusted),
            ip("203.0.113.7")
        );
        // Two of our proxies in a row.
        assert_eq!(
            client_from_chain(lb, &chain(&["203.0.113.7", "10.0.0.3"]), &trusted),
            ip("203.0.113.7")
        );
        // No header: the proxy itself.
        assert_eq!(client_from_chain(lb, &[], &trusted), lb);
        // Garbage stops the walk at the last hop we vouch for.
        assert_eq!(
            client_from_chain(lb, &chain(&["203.0.113.7", "junk", "10.0.0.3"]), &trusted),
            ip("10.0.0.3")
        );
    }
}
