//! The gate every request passes before a handler's extractors read it.
//!
//! Extractors run together: a body that does not parse could answer 422 before the caller's
//! role was known, and a query 400, telling a caller without the role the route's rules. So
//! the route's access rule ([`crate::auth::policy::ROUTES`]) is applied here first: 401 without
//! a valid token, 403 with the wrong role; the caller found is kept for the handler's `Caller`
//! extractor. And a path or query holding a NUL character (`%00`), which no stored value can
//! contain, is answered here for every route: 404 for a path (it names nothing), 400 naming
//! the query parameter.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use crate::auth::policy::{route_access, Access};
use crate::auth::tokens::Verified;
use crate::domain::validation::FieldError;
use crate::error::ApiError;
use crate::state::AppState;
use crate::telemetry::RequestId;

/// The first query parameter whose name or value decodes to text holding a NUL.
fn nul_query_parameter(query: &str) -> Option<String> {
    if !query.contains("%00") {
        return None;
    }
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        .map(|(k, _)| {
            if k.contains('\0') {
                k.replace('\0', "\\u0000")
            } else {
                k.into_owned()
            }
        })
}

async fn check(req: &ServiceRequest) -> Result<(), ApiError> {
    // `%00` is the only way a URI carries a NUL (a raw one is refused by the HTTP parser).
    if req.uri().path().contains("%00") {
        return Err(ApiError::NotFound);
    }
    // The query is the route's business: a caller it does not admit learns nothing of it.
    admit(req).await?;
    if let Some(param) = nul_query_parameter(req.query_string()) {
        return Err(ApiError::BadQuery(vec![FieldError::new(
            param,
            "must not contain the NUL character (%00)",
        )]));
    }
    Ok(())
}

/// The route's access rule: 401 without a valid token, 403 with the wrong role.
async fn admit(req: &ServiceRequest) -> Result<(), ApiError> {
    let Some(pattern) = super::route_pattern(req.request()) else {
        return Ok(());
    };
    let access = match route_access(req.method().as_str(), &pattern) {
        // Not a documented route (the fallback answers), or no token needed.
        None | Some(Access::Public) => return Ok(()),
        Some(access) => access,
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let token = crate::auth::caller::bearer_token(req.request())?;
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let verified = state
        .keys
        .verify_any(&token)
        .map_err(|why| ApiError::Unauthorized(format!("The access token is not valid: {why}.")))?;
    let claims = match verified {
        // An integration reaches integration routes only.
        Verified::Integration(claims) => {
            if access != Access::Integration {
                return Err(ApiError::Forbidden);
            }
            let integration =
                crate::auth::integration::authenticate(&state, claims, request_id).await?;
            req.extensions_mut().insert(integration);
            return Ok(());
        }
        Verified::User(claims) => claims,
    };
    let caller = crate::auth::caller::authenticate_claims(&state, claims, request_id).await?;
    // Kept for the handler's `Caller` and for the audit of a denial.
    req.extensions_mut().insert(caller.clone());
    // Staff who must enrol a second factor reach nothing else until they have.
    if caller.must_enrol_mfa && !crate::auth::caller::mfa_enrolment_open(req.path()) {
        return Err(ApiError::MfaEnrolmentRequired);
    }
    match access {
        Access::Roles(roles) => caller.require(roles),
        // No user reaches the integration routes.
        Access::Integration => Err(ApiError::Forbidden),
        Access::SignedIn | Access::Public => Ok(()),
    }
}

/// Middleware: the access rule and the NUL checks, before any extractor runs.
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    match check(&req).await {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(e) => Ok(req.error_response(e).map_into_right_body()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_in_the_query_names_its_parameter() {
        assert_eq!(
            nul_query_parameter("limit=5&cursor=a%00b"),
            Some("cursor".into())
        );
        assert_eq!(nul_query_parameter("a%00=1"), Some("a\\u0000".into()));
        assert_eq!(nul_query_parameter("limit=5&cursor=%2500"), None);
        assert_eq!(nul_query_parameter(""), None);
    }
}
