//! Integrations as admins manage them (SPEC §9): register, list, read, change, delete and
//! rotate the secret of the other systems the clinic connects.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::Json;
use super::types::utc;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::service::integrations::{self as service, Changes, Registration, WithSecret};
use crate::state::AppState;
use crate::store::integrations::IntegrationRow;

/// An integration to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterIntegration {
    /// Shown to patients when they decide on consent, and in their accounting of
    /// disclosures (1–100 printable characters, not only blanks).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x1f\x7f-\x9f]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        example = "Pillbox pharmacy reminders"
    )]
    pub name: String,
    /// What the app does with the data, for patients deciding on consent (up to 1000
    /// printable characters).
    #[schema(
        max_length = 1000,
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x1f\x7f-\x9f]*[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        example = "Sends medication reminders and refill notices."
    )]
    pub description: String,
    /// Granted scopes, `<category>.read`: what the app may ever read, and only of patients
    /// who consent to those categories.
    #[schema(value_type = Vec<super::vocabulary::DataScope>, min_items = 1, example = json!(["medication.read", "alerts.read"]))]
    pub scopes: Vec<String>,
    /// `client_secret_basic` (a secret is issued, shown once) or `private_key_jwt` (signed
    /// assertions, verified with `jwks`; SMART Backend Services).
    #[schema(example = "client_secret_basic")]
    pub token_endpoint_auth_method: AuthMethod,
    /// The app's public signing keys, a JWK Set (RSA, EC P-256/P-384 or OKP Ed25519; no
    /// private members), for `private_key_jwt` only.
    #[schema(value_type = Option<JwkSet>)]
    pub jwks: Option<serde_json::Value>,
}

/// A JWK Set (RFC 7517 §5): an app's public keys.
// For the document only: the handlers read the JSON itself, so that each key's fault is a
// 422 naming it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct JwkSet {
    /// The public keys (1–10): each an RFC 7517 JWK with `kty` (`RSA`, `EC` on P-256/P-384,
    /// `OKP` Ed25519) and no private members; a `kid` on each when there are several.
    #[schema(value_type = Vec<Object>, min_items = 1, max_items = 10)]
    keys: Vec<serde_json::Value>,
}

/// How an integration authenticates at `POST /oauth/token`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// RFC 7523 JWT client assertions signed with a registered key.
    PrivateKeyJwt,
}

impl AuthMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// Changes to an integration; each field optional. Disabling, narrowing scopes and replacing
/// keys take effect on the integration's very next request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIntegration {
    /// New name (1–100 printable characters, not only blanks).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x1f\x7f-\x9f]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: Option<String>,
    /// New description (up to 1000 printable characters).
    #[schema(
        max_length = 1000,
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x1f\x7f-\x9f]*[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub description: Option<String>,
    /// New granted scopes.
    #[schema(value_type = Option<Vec<super::vocabulary::DataScope>>, min_items = 1)]
    pub scopes: Option<Vec<String>>,
    /// `true` disables the integration (its tokens stop at once), `false` enables it again.
    pub disabled: Option<bool>,
    /// Replacement public keys (`private_key_jwt` only); tokens issued before stop working.
    #[schema(value_type = Option<JwkSet>)]
    pub jwks: Option<serde_json::Value>,
}

/// A registered integration.
#[derive(Debug, Serialize, ToSchema)]
pub struct Integration {
    /// Integration id.
    pub id: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The client secret: only in the answer that registered it or rotated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Granted scopes.
    #[schema(value_type = Vec<super::vocabulary::DataScope>)]
    pub scopes: Vec<String>,
    /// How it authenticates.
    pub token_endpoint_auth_method: AuthMethod,
    /// Its registered public keys (`private_key_jwt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<JwkSet>)]
    pub jwks: Option<serde_json::Value>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was disabled; null while enabled.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// The organisation's integrations.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationList {
    /// Oldest first.
    pub items: Vec<Integration>,
    /// Always null: every integration is in one answer.
    pub next_cursor: Option<String>,
}

fn view(row: IntegrationRow, client_secret: Option<String>) -> Integration {
    Integration {
        id: row.id,
        client_id: row.client_id,
        client_secret,
        name: row.name,
        description: row.description,
        scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
        token_endpoint_auth_method: if row.token_endpoint_auth_method == "private_key_jwt" {
            AuthMethod::PrivateKeyJwt
        } else {
            AuthMethod::ClientSecretBasic
        },
        jwks: row
            .jwks
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok()),
        created_at: utc(row.created_at),
        updated_at: utc(row.updated_at),
        disabled_at: row.disabled_at.map(utc),
    }
}

fn with_secret(w: WithSecret) -> Integration {
    view(w.row, w.client_secret)
}

/// Register an integration (admins; a sign-in within the last 10 minutes). A
/// `client_secret_basic` integration's secret is in this answer only.
#[utoipa::path(
    tag = "integrations",
    security(("bearer" = [])),
    request_body = RegisterIntegration,
    responses(
        (status = 201, description = "Registered", body = Integration),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 401, description = "Not signed in, or (type ending reauthentication-required) not signed in within the last 10 minutes", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 422, description = "An invalid field, named (unknown scope, keys missing or private)", body = Problem),
    )
)]
#[post("/organisation/integrations")]
pub async fn register_integration(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<RegisterIntegration>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let saved = service::register(
        &state,
        &caller,
        Registration {
            name: b.name,
            description: b.description,
            scopes: b.scopes,
            token_endpoint_auth_method: b.token_endpoint_auth_method.as_str().to_owned(),
            jwks: b.jwks,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(with_secret(saved)))
}

/// The organisation's integrations (admins), oldest first; secrets are never shown here.
#[utoipa::path(
    tag = "integrations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Integrations", body = IntegrationList),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
    )
)]
#[get("/organisation/integrations")]
pub async fn list_integrations(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let rows = service::list(&state, &caller).await?;
    Ok(HttpResponse::Ok().json(IntegrationList {
        items: rows.into_iter().map(|r| view(r, None)).collect(),
        next_cursor: None,
    }))
}

/// One integration (admins).
#[utoipa::path(
    tag = "integrations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Integration id")),
    responses(
        (status = 200, description = "The integration", body = Integration),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 404, description = "No such integration in your organisation", body = Problem),
    )
)]
#[get("/organisation/integrations/{id}")]
pub async fn get_integration(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = service::get(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view(row, None)))
}

/// Change an integration (admins): name, description, scopes, keys, or disable it. Widening
/// scopes, replacing keys or enabling it again needs a sign-in within the last 10 minutes.
#[utoipa::path(
    tag = "integrations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Integration id")),
    request_body = UpdateIntegration,
    responses(
        (status = 200, description = "Changed", body = Integration),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 401, description = "Not signed in, or not recently", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 404, description = "No such integration in your organisation", body = Problem),
        (status = 422, description = "An invalid field, named", body = Problem),
    )
)]
#[patch("/organisation/integrations/{id}")]
pub async fn update_integration(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<UpdateIntegration>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let row = service::update(
        &state,
        &caller,
        path.into_inner(),
        Changes {
            name: b.name,
            description: b.description,
            scopes: b.scopes,
            disabled: b.disabled,
            jwks: b.jwks,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(view(row, None)))
}

/// Delete an integration (admins): its tokens stop at once and patients are no longer
/// offered it. Its consents and the accounting of its disclosures stay on record.
#[utoipa::path(
    tag = "integrations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Integration id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 404, description = "No such integration in your organisation", body = Problem),
    )
)]
#[delete("/organisation/integrations/{id}")]
pub async fn delete_integration(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    service::delete(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Rotate a `client_secret_basic` integration's secret (admins; a sign-in within the last
/// 10 minutes): the new secret is in this answer only; the old one, and every token issued
/// under it, stop working at once.
#[utoipa::path(
    tag = "integrations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Integration id")),
    responses(
        (status = 200, description = "Rotated; the new secret is shown once", body = Integration),
        (status = 401, description = "Not signed in, or not recently", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 404, description = "No such integration in your organisation", body = Problem),
        (status = 409, description = "The integration uses private_key_jwt and has no secret", body = Problem),
    )
)]
#[post("/organisation/integrations/{id}/secret")]
pub async fn rotate_integration_secret(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let saved = service::rotate_secret(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(with_secret(saved)))
}

/// The webhooks an integration registered for itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationWebhookList {
    /// Oldest first.
    pub items: Vec<super::webhooks::Webhook>,
    /// Always null: every webhook is in one answer.
    pub next_cursor: Option<String>,
}

/// The webhooks an integration registered for itself (admins): where it receives events about
/// consenting patients, and which events. Each delivery is in the patient's accounting of
/// disclosures; disabling or deleting the integration stops them all.
#[utoipa::path(
    tag = "integrations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Integration id")),
    responses(
        (status = 200, description = "Its webhooks", body = IntegrationWebhookList),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 404, description = "No such integration in your organisation", body = Problem),
    )
)]
#[get("/organisation/integrations/{id}/webhooks")]
pub async fn integration_webhooks(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rows = service::webhooks(&state, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(IntegrationWebhookList {
        items: rows.into_iter().map(super::webhooks::view).collect(),
        next_cursor: None,
    }))
}
