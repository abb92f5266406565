//! The integration principal (SPEC §9): another system acting as itself with an OAuth 2.0
//! client-credentials token. Like a user's token, the token proves identity only: the
//! integration is re-read on every request, so disabling, deleting, narrowing its scopes or
//! rotating its credentials takes effect on its very next request.

use std::collections::BTreeSet;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::future::{ready, Ready};

use crate::auth::tokens::IntegrationClaims;
use crate::domain::categories::{self, Category};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::integrations;

/// An authenticated integration.
#[derive(Debug, Clone)]
pub struct IntegrationCaller {
    /// The integration's id.
    pub integration_id: String,
    /// Its organisation: it sees nothing of any other.
    pub organisation_id: String,
    /// Its name, as patients and the accounting of disclosures know it.
    pub name: String,
    /// What it may read now: the token's scopes that the integration still holds.
    pub categories: BTreeSet<Category>,
    /// The request id, for the audit trail.
    pub request_id: Option<String>,
}

impl IntegrationCaller {
    /// The audit trail's actor for this integration.
    pub fn actor(&self) -> String {
        format!("integration:{}", self.integration_id)
    }
}

/// Checks an integration's verified token against the integration as it is now.
pub async fn authenticate(
    state: &AppState,
    claims: IntegrationClaims,
    request_id: Option<String>,
) -> Result<IntegrationCaller, ApiError> {
    let id = claims.sub.clone();
    let row = state
        .store
        .run(move |conn| -> Result<_, ApiError> { Ok(integrations::find(conn, &id)?) })
        .await?;
    let invalid =
        || ApiError::Unauthorized("The access token is no longer valid; request a new one.".into());
    let row = row.ok_or_else(invalid)?;
    if !row.is_active() || row.organisation_id != claims.org {
        return Err(invalid());
    }
    // Rotated secret or replaced keys: tokens issued before stop at once.
    if claims.iat_ms < row.credentials_changed_at.and_utc().timestamp_millis() {
        return Err(invalid());
    }
    let granted = categories::parse_scopes(&row.scopes).unwrap_or_default();
    let asked = categories::parse_scopes(&claims.scope).map_err(|_| invalid())?;
    Ok(IntegrationCaller {
        integration_id: row.id,
        organisation_id: row.organisation_id,
        name: row.name,
        categories: asked.intersection(&granted).copied().collect(),
        request_id,
    })
}

impl FromRequest for IntegrationCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    /// Authenticated by the gate in front of every integration route (`http::guard`).
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<IntegrationCaller>()
                .cloned()
                .ok_or_else(|| {
                    ApiError::Unauthorized(
                        "An integration's access token is required (Authorization: Bearer …)."
                            .into(),
                    )
                }),
        )
    }
}
