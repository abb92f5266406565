//! Webhooks an integration registers for itself (SPEC §9). It hears only about patients who
//! consented to it with the `alerts` category; the consent is checked when each delivery is
//! queued and again when it is sent, and a delivery whose consent lapsed is dropped.

use crate::auth::IntegrationCaller;
use crate::delivery::signing;
use crate::domain::categories::Category;
use crate::error::ApiError;
use crate::service::audit;
use crate::state::AppState;
use crate::store::alerts::OutboxRow;
use crate::store::deliveries::{self, WebhookRow};
use crate::store::{self as db};

/// Webhook events carry alerts: the token must hold `alerts.read`.
pub fn require_alerts(integration: &IntegrationCaller) -> Result<(), ApiError> {
    if integration.categories.contains(&Category::Alerts) {
        Ok(())
    } else {
        Err(ApiError::ForbiddenBecause(
            "Webhook events carry alerts: the token needs the alerts.read scope.".into(),
        ))
    }
}

/// Registers a webhook for the integration (`url` and `events` already checked); the row,
/// with its signing secret. Audited.
pub async fn create(
    state: &AppState,
    integration: &IntegrationCaller,
    url: String,
    events: Vec<String>,
) -> Result<WebhookRow, ApiError> {
    require_alerts(integration)?;
    let row = WebhookRow {
        id: db::new_id(),
        organisation_id: integration.organisation_id.clone(),
        url,
        events: serde_json::to_string(&events).map_err(ApiError::internal)?,
        secret: signing::generate_secret(),
        disabled_at: None,
        disabled_reason: None,
        created_by: integration.integration_id.clone(),
        created_at: db::now(),
        deleted_at: None,
        integration_id: Some(integration.integration_id.clone()),
    };
    let (i, saved) = (integration.clone(), row.clone());
    state
        .store
        .transaction(move |conn| -> Result<(), ApiError> {
            deliveries::insert_webhook(conn, &saved)?;
            audit::record_integration(
                conn,
                &i.organisation_id,
                &i.integration_id,
                i.request_id.as_deref(),
                audit::Event::other("webhook.created", "webhook", Some(&saved.id)),
            )?;
            Ok(())
        })
        .await?;
    Ok(row)
}

/// The integration's webhooks.
pub async fn list(
    state: &AppState,
    integration: &IntegrationCaller,
) -> Result<Vec<WebhookRow>, ApiError> {
    let id = integration.integration_id.clone();
    state
        .store
        .run(move |conn| -> Result<_, ApiError> {
            Ok(deliveries::integration_webhooks(conn, &id)?)
        })
        .await
}

/// Up to `limit + 1` of one of the integration's webhooks' deliveries, newest first, with
/// their attempts (another's webhook is a 404).
pub async fn deliveries(
    state: &AppState,
    integration: &IntegrationCaller,
    id: String,
    before: Option<String>,
    limit: i64,
) -> Result<(Vec<OutboxRow>, Vec<deliveries::AttemptRow>), ApiError> {
    let i = integration.clone();
    state
        .store
        .run(move |conn| {
            deliveries::webhook_by_id(conn, &id)?
                .filter(|w| {
                    w.deleted_at.is_none()
                        && w.integration_id.as_deref() == Some(i.integration_id.as_str())
                })
                .ok_or(ApiError::NotFound)?;
            Ok(deliveries::page_with_attempts(
                conn,
                &id,
                before.as_deref(),
                limit + 1,
            )?)
        })
        .await
}

/// Deletes one of the integration's webhooks; its pending deliveries are dropped. Audited.
pub async fn delete(
    state: &AppState,
    integration: &IntegrationCaller,
    id: String,
) -> Result<(), ApiError> {
    let i = integration.clone();
    state
        .store
        .transaction(move |conn| -> Result<(), ApiError> {
            deliveries::webhook_by_id(conn, &id)?
                .filter(|w| {
                    w.deleted_at.is_none()
                        && w.integration_id.as_deref() == Some(i.integration_id.as_str())
                })
                .ok_or(ApiError::NotFound)?;
            deliveries::delete_webhook(conn, &id, db::now())?;
            audit::record_integration(
                conn,
                &i.organisation_id,
                &i.integration_id,
                i.request_id.as_deref(),
                audit::Event::other("webhook.deleted", "webhook", Some(&id)),
            )?;
            Ok(())
        })
        .await
}
