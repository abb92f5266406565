//! The OAuth 2.0 token endpoint (client credentials, RFC 6749 §4.4; RFC 7523 client
//! assertions) and its discovery document (RFC 8414). Errors here follow RFC 6749 §5.2 —
//! `{"error", "error_description"}` — not problem+json, because OAuth clients expect them.

use actix_web::http::header;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{client_address, request_id};
use crate::domain::categories;
use crate::service::integrations::{ASSERTION_ALGORITHMS, AUTH_METHODS};
use crate::service::oauth::{self as service, ClientCredentials, OAuthError, TokenRequest};
use crate::state::AppState;

/// The token request's form body (`application/x-www-form-urlencoded`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenForm {
    /// Always `client_credentials`.
    #[schema(value_type = super::vocabulary::GrantType, example = "client_credentials")]
    pub grant_type: String,
    /// Space-separated scopes to ask for (`<category>.read`); default: every granted scope.
    #[schema(
        value_type = String,
        required = false,
        pattern = "^(wellbeing|substance_use|withdrawal|medication|support|safety|alerts|phase)\\.read( (wellbeing|substance_use|withdrawal|medication|support|safety|alerts|phase)\\.read)*$",
        example = "medication.read alerts.read"
    )]
    pub scope: Option<String>,
    /// With `private_key_jwt`: `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    #[schema(value_type = super::vocabulary::ClientAssertionType, required = false)]
    pub client_assertion_type: Option<String>,
    /// With `private_key_jwt`: the signed JWT (`iss` = `sub` = client id, `aud` = this token
    /// endpoint's URL, `exp` at most 5 minutes ahead, a `jti` used once).
    #[schema(value_type = String, required = false)]
    pub client_assertion: Option<String>,
    /// Optional with `private_key_jwt`; must then be the assertion's issuer.
    #[schema(value_type = String, required = false)]
    pub client_id: Option<String>,
}

/// An issued access token.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthToken {
    /// Send as `Authorization: Bearer …` to the `/v1/integration/…` routes.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until it expires (at most 900).
    #[schema(example = 300, maximum = 900)]
    pub expires_in: u64,
    /// The scopes it carries, space-separated.
    pub scope: String,
}

/// An RFC 6749 §5.2 error.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `invalid_scope` or
    /// `unsupported_grant_type`.
    #[schema(value_type = super::vocabulary::OAuthErrorCode, example = "invalid_client")]
    pub error: &'static str,
    /// What went wrong, for the integrator.
    pub error_description: String,
}

fn error(e: OAuthError) -> HttpResponse {
    let (status, code, description) = match e {
        OAuthError::InvalidRequest(d) => (400, "invalid_request", d),
        OAuthError::InvalidClient(d) => (401, "invalid_client", d),
        OAuthError::InvalidScope(d) => (400, "invalid_scope", d),
        OAuthError::UnsupportedGrantType(d) => (400, "unsupported_grant_type", d),
        OAuthError::Throttled(secs) => {
            return HttpResponse::TooManyRequests()
                .insert_header((header::RETRY_AFTER, secs.to_string()))
                .insert_header((header::PRAGMA, "no-cache"))
                .json(OAuthErrorBody {
                    error: "invalid_client",
                    error_description: format!(
                        "Too many failed attempts for this client; try again in {secs} seconds."
                    ),
                });
        }
        OAuthError::Server(api) => return actix_web::ResponseError::error_response(&api),
    };
    let mut resp = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
    );
    resp.insert_header((header::PRAGMA, "no-cache"));
    if status == 401 {
        resp.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"aftercare\""));
    }
    resp.json(OAuthErrorBody {
        error: code,
        error_description: description,
    })
}

/// A `application/x-www-form-urlencoded` credential component (RFC 6749 §2.3.1).
fn form_decoded(s: &str) -> String {
    url::form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The client id and secret of an `Authorization: Basic` header.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::InvalidClient("The Authorization header is not HTTP Basic.".into());
    let value = value.to_str().map_err(|_| bad())?;
    let (scheme, rest) = value.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    Ok(Some((form_decoded(id), form_decoded(secret))))
}

/// Reads the token request from the form and the headers.
fn read_request(req: &HttpRequest, body: &[u8]) -> Result<TokenRequest, OAuthError> {
    let form_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if form_type.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(OAuthError::InvalidRequest(
            "The body must be application/x-www-form-urlencoded.".into(),
        ));
    }
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if k.contains('\0') || v.contains('\0') {
            return Err(OAuthError::InvalidRequest(format!(
                "The parameter `{}` holds a NUL character.",
                k.replace('\0', "\\u0000")
            )));
        }
        if params.iter().any(|(seen, _)| *seen == k) {
            return Err(OAuthError::InvalidRequest(format!(
                "The parameter `{k}` appears more than once."
            )));
        }
        params.push((k.into_owned(), v.into_owned()));
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let basic = basic_credentials(req)?;
    let assertion = get("client_assertion");
    let credentials = match (basic, assertion) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::InvalidRequest(
                "Use one client authentication method: HTTP Basic or a client assertion, not both."
                    .into(),
            ))
        }
        (Some((client_id, secret)), None) => ClientCredentials::Basic { client_id, secret },
        (None, Some(assertion)) => {
            if get("client_assertion_type").as_deref() != Some(service::JWT_BEARER) {
                return Err(OAuthError::InvalidRequest(format!(
                    "client_assertion_type must be {}.",
                    service::JWT_BEARER
                )));
            }
            ClientCredentials::Assertion {
                assertion,
                client_id: get("client_id"),
            }
        }
        (None, None) => {
            if get("client_secret").is_some() {
                return Err(OAuthError::InvalidRequest(
                    "Send the client secret with HTTP Basic (client_secret_basic), not in the body.".into(),
                ));
            }
            return Err(OAuthError::InvalidClient(
                "Client authentication is required: HTTP Basic or a client assertion.".into(),
            ));
        }
    };
    Ok(TokenRequest {
        grant_type: get("grant_type"),
        scope: get("scope"),
        credentials,
        client_ip: String::new(),
        request_id: None,
    })
}

/// Get an access token for an integration (OAuth 2.0 client credentials).
///
/// Authenticate with HTTP Basic (`client_secret_basic`) or an RFC 7523 client assertion
/// (`private_key_jwt`, as SMART Backend Services). Errors are RFC 6749 §5.2 JSON; failed
/// attempts are throttled per client and network like sign-ins.
#[utoipa::path(
    tag = "integrations",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A token", body = OAuthToken),
        (status = 400, description = "invalid_request, invalid_scope or unsupported_grant_type", body = OAuthErrorBody),
        (status = 401, description = "invalid_client: client authentication failed", body = OAuthErrorBody,
            headers(("WWW-Authenticate" = String, description = "Basic realm=\"aftercare\""))),
        (status = 429, description = "Too many failed attempts", body = OAuthErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 503, description = "Storage unavailable", body = crate::error::Problem),
    )
)]
#[post("/oauth/token")]
pub async fn token(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let mut request = match read_request(&req, &body) {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    request.client_ip = client_address(&req, &state.settings.trusted_proxies);
    request.request_id = request_id(&req);
    match service::token(&state, request).await {
        Ok(t) => HttpResponse::Ok()
            .insert_header((header::PRAGMA, "no-cache"))
            .json(OAuthToken {
                access_token: t.access_token,
                token_type: "Bearer",
                expires_in: t.expires_in,
                scope: t.scope,
            }),
        Err(e) => error(e),
    }
}

/// RFC 8414 authorization server metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerMetadata {
    /// This server.
    pub issuer: String,
    /// `POST` here for tokens.
    pub token_endpoint: String,
    /// The keys that sign access tokens.
    pub jwks_uri: String,
    /// `client_credentials` only.
    pub grant_types_supported: Vec<&'static str>,
    /// None: there is no authorization endpoint.
    pub response_types_supported: Vec<&'static str>,
    /// `client_secret_basic` and `private_key_jwt`.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Algorithms accepted for client assertions.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// Every scope (`<category>.read`).
    pub scopes_supported: Vec<String>,
    /// Where integrators read about the API.
    pub service_documentation: String,
}

/// The OAuth 2.0 authorization server's metadata (RFC 8414), for integrators' libraries.
#[utoipa::path(
    tag = "integrations",
    responses((status = 200, description = "Server metadata", body = ServerMetadata))
)]
#[get("/.well-known/oauth-authorization-server")]
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let base = state.public_url();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(ServerMetadata {
            issuer: base.clone(),
            token_endpoint: state.token_url(),
            jwks_uri: format!("{base}/.well-known/jwks.json"),
            grant_types_supported: vec![service::CLIENT_CREDENTIALS],
            response_types_supported: Vec::new(),
            token_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
            token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS.to_vec(),
            scopes_supported: categories::ALL.iter().map(|c| c.scope()).collect(),
            service_documentation: format!("{base}/docs/"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decoded("ac_1"), "ac_1");
        assert_eq!(form_decoded("a%3Ab+c"), "a:b c");
    }
}
