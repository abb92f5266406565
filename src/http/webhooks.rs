//! Webhook subscriptions (admins): register, list, delete, and read the delivery log.

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{IdempotentJson, Query};
use super::pagination::{Page, PageParams};
use super::types::utc;
use crate::auth::{Caller, Role};
use crate::delivery::{signing, ssrf};
use crate::domain::validation::FieldError;
use crate::error::{ApiError, Problem};
use crate::service::alerts::events;
use crate::service::audit;
use crate::state::AppState;
use crate::store::deliveries::{self, WebhookRow};
use crate::store::{self};

/// A webhook to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where to POST events: `https://` (or `http://`) on a public address. Loopback,
    /// private, link-local and similar addresses are refused.
    #[schema(
        pattern = "^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][!-~]*)?$",
        max_length = 2048
    )]
    pub url: String,
    /// Event types to receive: `alert.created`, `alert.updated`, `alert.escalated`.
    #[schema(value_type = Vec<super::vocabulary::AlertEventType>, min_items = 1)]
    pub events: Vec<String>,
}

/// A webhook subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    /// Webhook id.
    pub id: String,
    /// The receiver's URL.
    pub url: String,
    /// Subscribed event types.
    #[schema(value_type = Vec<super::vocabulary::IntegrationEventType>)]
    pub events: Vec<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it was disabled (the receiver answered 410 Gone), if it was.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
}

/// A newly registered webhook with its signing secret, shown only this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    /// The webhook.
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The Standard Webhooks signing secret (`whsec_…`). Store it now: it is not shown again.
    pub secret: String,
}

/// A webhook as the API shows it.
pub fn view(w: WebhookRow) -> Webhook {
    Webhook {
        id: w.id,
        url: w.url,
        events: serde_json::from_str(&w.events).unwrap_or_default(),
        created_at: utc(w.created_at),
        disabled_at: w.disabled_at.map(utc),
        disabled_reason: w.disabled_reason,
    }
}

/// Checks a webhook subscription: a URL the server may call (syntax, and where it resolves:
/// no private or loopback address unless allowed) and event types among `allowed`. The events
/// sorted, without duplicates, on success.
pub async fn check_subscription(
    url: &str,
    mut evs: Vec<String>,
    allowed: &[&str],
    allow_private: bool,
) -> Result<Vec<String>, ApiError> {
    let mut errors = Vec::new();
    match ssrf::check_url_syntax(url, allow_private) {
        Ok(u) => {
            if let Err(why) = ssrf::resolve_checked(&u, allow_private).await {
                errors.push(FieldError::new("url", why));
            }
        }
        Err(why) => errors.push(FieldError::new("url", why)),
    }
    if evs.is_empty() {
        errors.push(FieldError::new("events", "must name at least one event"));
    }
    for (i, e) in evs.iter().enumerate() {
        if !allowed.contains(&e.as_str()) {
            errors.push(FieldError::new(
                format!("events[{i}]"),
                format!("must be one of {}", allowed.join(", ")),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    evs.sort();
    evs.dedup();
    Ok(evs)
}

/// Register a webhook (admins only). Deliveries are signed per Standard Webhooks
/// (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`), carry
/// ids, rule and severity only, are retried with backoff and dead-lettered after the last
/// attempt. A 410 answer disables the webhook; redirects are not followed.
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    request_body = CreateWebhook,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and body return the first response (the same webhook and secret) instead of registering another; the same key with another body is a 422")),
    responses(
        (status = 201, description = "Registered; the secret is shown once", body = CreatedWebhook),
        (status = 401, description = "Not signed in, or (type ending reauthentication-required) not signed in within the last 10 minutes", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 422, description = "A refused URL or unknown event", body = Problem),
    )
)]
#[post("/organisation/webhooks")]
pub async fn create_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    body: IdempotentJson<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    // A new receiver of alert events is a sensitive change (SPEC §12).
    caller.require_recent_sign_in()?;
    let (b, key) = (body.body, body.key);
    let evs = check_subscription(
        &b.url,
        b.events,
        &events::ALL,
        state.settings.webhook_allow_private_networks,
    )
    .await?;
    let secret = signing::generate_secret();
    let row = WebhookRow {
        id: store::new_id(),
        organisation_id: caller.organisation_id.clone(),
        url: b.url,
        events: serde_json::to_string(&evs).map_err(ApiError::internal)?,
        secret: secret.clone(),
        disabled_at: None,
        disabled_reason: None,
        created_by: caller.user_id.clone(),
        created_at: store::now(),
        deleted_at: None,
        integration_id: None,
    };
    let c = caller.clone();
    let response = serde_json::to_string(&CreatedWebhook {
        webhook: view(row.clone()),
        secret,
    })
    .map_err(ApiError::internal)?;
    // The secret is kept in clear in the webhook row anyway (it signs every delivery), so
    // remembering the response for a retry keeps nothing that was not already there.
    let body = state
        .store
        .transaction(move |conn| -> Result<String, ApiError> {
            if let Some(k) = &key {
                if let Some(first) = crate::service::idempotency::replay(conn, &c.user_id, k)? {
                    return Ok(first);
                }
            }
            deliveries::insert_webhook(conn, &row)?;
            audit::record(
                conn,
                &c,
                audit::Event::other("webhook.created", "webhook", Some(&row.id)),
            )?;
            if let Some(k) = &key {
                crate::service::idempotency::remember(conn, &c.user_id, k, 201, &response)?;
            }
            Ok(response)
        })
        .await?;
    Ok(HttpResponse::Created()
        .content_type("application/json")
        .body(body))
}

/// The organisation's webhooks (admins only).
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "All webhooks", body = Page<Webhook>),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
    )
)]
#[get("/organisation/webhooks")]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let org = caller.organisation_id.clone();
    let rows = state
        .store
        .run(move |conn| deliveries::list_webhooks(conn, &org).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(Page {
        items: rows.into_iter().map(view).collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

/// One webhook (admins only).
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The webhook", body = Webhook),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 404, description = "No such webhook in your organisation", body = Problem),
    )
)]
#[get("/organisation/webhooks/{id}")]
pub async fn get_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let (org, id) = (caller.organisation_id.clone(), path.into_inner());
    let row = state
        .store
        .run(move |conn| deliveries::find_webhook(conn, &org, &id).map_err(ApiError::from))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(view(row)))
}

/// Delete a webhook (admins only); its pending deliveries are dropped.
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 404, description = "No such webhook in your organisation", body = Problem),
    )
)]
#[delete("/organisation/webhooks/{id}")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let id = path.into_inner();
    let c = caller.clone();
    state
        .store
        .transaction(move |conn| -> Result<(), ApiError> {
            deliveries::find_webhook(conn, &c.organisation_id, &id)?.ok_or(ApiError::NotFound)?;
            deliveries::delete_webhook(conn, &id, store::now())?;
            audit::record(
                conn,
                &c,
                audit::Event::other("webhook.deleted", "webhook", Some(&id)),
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One attempt at a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub attempt: i32,
    /// The receiver's status code, if it answered.
    pub status_code: Option<i32>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// How long the attempt took.
    pub duration_ms: i32,
    /// When.
    pub at: DateTime<Utc>,
}

/// A delivery of one event to one webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    /// Delivery id; also the `webhook-id` header, the same on every attempt.
    pub id: String,
    /// The event type.
    #[schema(value_type = super::vocabulary::IntegrationEventType)]
    pub event_type: String,
    /// The alert it concerns; null for a `check_in.submitted` event (integrations' webhooks).
    pub alert_id: Option<String>,
    /// `pending` (will be attempted or retried), `delivered` or `dead` (dead-lettered).
    #[schema(value_type = super::vocabulary::DeliveryStatus)]
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last status code received.
    pub last_status_code: Option<i32>,
    /// The last error.
    pub last_error: Option<String>,
    /// When the event was queued.
    pub created_at: DateTime<Utc>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<Attempt>,
}

/// A webhook's delivery log, newest first (admins only): attempts, status codes, next retry,
/// dead letters.
#[utoipa::path(
    tag = "organisation",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook id"), PageParams),
    responses(
        (status = 200, description = "A page of deliveries", body = Page<Delivery>),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Admins only", body = Problem),
        (status = 404, description = "No such webhook in your organisation", body = Problem),
    )
)]
#[get("/organisation/webhooks/{id}/deliveries")]
pub async fn list_deliveries(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    q: Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let limit = q.0.limit()?;
    let before = q.0.position()?;
    let (org, id) = (caller.organisation_id.clone(), path.into_inner());
    let page = state
        .store
        .run(move |conn| -> Result<Page<Delivery>, ApiError> {
            deliveries::find_webhook(conn, &org, &id)?.ok_or(ApiError::NotFound)?;
            delivery_page(conn, &id, before.as_deref(), limit)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// A page of a webhook's deliveries, newest first, each with its attempts.
pub fn delivery_page(
    conn: &mut crate::store::DbConnection,
    id: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Page<Delivery>, ApiError> {
    let (rows, attempts) = deliveries::page_with_attempts(conn, id, before, limit + 1)?;
    Ok(deliveries_view(rows, attempts, limit))
}

/// Shapes up to `limit + 1` deliveries and their attempts as a page.
pub fn deliveries_view(
    rows: Vec<crate::store::alerts::OutboxRow>,
    attempts: Vec<deliveries::AttemptRow>,
    limit: i64,
) -> Page<Delivery> {
    Page::from_rows(
        rows,
        limit,
        |r| r.id.clone(),
        |r| Delivery {
            attempt_log: attempts
                .iter()
                .filter(|a| a.outbox_id == r.id)
                .map(|a| Attempt {
                    attempt: a.attempt,
                    status_code: a.status_code,
                    error: a.error.clone(),
                    duration_ms: a.duration_ms,
                    at: utc(a.created_at),
                })
                .collect(),
            next_attempt_at: (r.status == "pending").then(|| utc(r.next_attempt_at)),
            id: r.id,
            event_type: r.event_type,
            alert_id: r.alert_id,
            status: r.status,
            attempts: r.attempts,
            last_status_code: r.last_status_code,
            last_error: r.last_error,
            created_at: utc(r.created_at),
            delivered_at: r.delivered_at.map(utc),
        },
    )
}
