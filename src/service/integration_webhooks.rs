//! Webhooks an integration registers for itself (SPEC §9). It hears only about patients who
//! consented to it: of their alerts with the `alerts` category, of their check-ins with a
//! check-in category. The consent is checked when each delivery is queued and again when it
//! is sent, and a delivery whose consent lapsed is dropped.

use chrono::{NaiveDate, NaiveDateTime};

use crate::auth::IntegrationCaller;
use crate::delivery::signing;
use crate::error::ApiError;
use crate::service::alerts::events;
use crate::service::audit;
use crate::service::integration_reads::{event_categories, event_delivery_consent};
use crate::state::AppState;
use crate::store::alerts::{self, OutboxRow};
use crate::store::deliveries::{self, WebhookRow};
use crate::store::{self as db, DbConnection};

/// An integration may subscribe to something: its token holds `alerts.read` or the scope of a
/// check-in category.
pub fn require_some_event(integration: &IntegrationCaller) -> Result<(), ApiError> {
    let any = events::INTEGRATION
        .iter()
        .any(|e| !event_categories(e, &integration.categories).is_empty());
    if any {
        Ok(())
    } else {
        Err(ApiError::ForbiddenBecause(
            "Webhook events carry alerts or check-ins: the token needs alerts.read or the scope \
             of a check-in category."
                .into(),
        ))
    }
}

/// Each event subscribed to is one the token's scopes cover: alert events `alerts.read`,
/// `check_in.submitted` a check-in category's scope.
pub fn require_events(
    integration: &IntegrationCaller,
    subscribed: &[String],
) -> Result<(), ApiError> {
    for e in subscribed {
        if event_categories(e, &integration.categories).is_empty() {
            let needs = if e == events::CHECK_IN_SUBMITTED {
                "the scope of a check-in category (wellbeing.read, substance_use.read, \
                 withdrawal.read, medication.read, support.read or safety.read)"
            } else {
                "alerts.read"
            };
            return Err(ApiError::ForbiddenBecause(format!(
                "{e} needs {needs}, which this token does not hold."
            )));
        }
    }
    Ok(())
}

/// Queues `check_in.submitted` about the patient's check-in of `date` for each integration
/// webhook subscribed to it whose integration the patient consented to with a check-in
/// category (checked again when each is sent). Part of the check-in's own transaction. The
/// body carries ids and the date only: the answers are read, filtered by the consent, through
/// the integration's check-in route.
pub fn queue_check_in(
    conn: &mut DbConnection,
    organisation_id: &str,
    patient_id: &str,
    date: NaiveDate,
    correction: bool,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    let hooks = deliveries::active_integration_webhooks(conn, organisation_id)?;
    let mut decided: Vec<(String, bool)> = Vec::new();
    let mut rows = Vec::new();
    for (hook_id, events_json, integration) in hooks {
        let subscribed: Vec<String> = serde_json::from_str(&events_json).unwrap_or_default();
        let Some(integration) =
            integration.filter(|_| subscribed.iter().any(|e| e == events::CHECK_IN_SUBMITTED))
        else {
            continue;
        };
        let ok = match decided.iter().find(|(i, _)| *i == integration) {
            Some((_, ok)) => *ok,
            None => {
                let ok = event_delivery_consent(
                    conn,
                    &integration,
                    patient_id,
                    events::CHECK_IN_SUBMITTED,
                )?
                .is_some();
                decided.push((integration, ok));
                ok
            }
        };
        if !ok {
            continue;
        }
        let body = serde_json::json!({
            "type": events::CHECK_IN_SUBMITTED,
            "timestamp": now.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "data": {
                "organisation_id": organisation_id,
                "patient_id": patient_id,
                "check_in_date": date,
                "correction": correction,
            }
        });
        rows.push(OutboxRow::pending(
            alerts::NewDelivery {
                organisation_id,
                alert_id: None,
                patient_id,
                event_type: events::CHECK_IN_SUBMITTED,
                channel: "webhook",
                target: &hook_id,
                payload: &body.to_string(),
            },
            now,
        ));
    }
    alerts::enqueue_many(conn, &rows)?;
    Ok(())
}

/// Registers a webhook for the integration (`url` and `events` already checked); the row,
/// with its signing secret. Audited.
pub async fn create(
    state: &AppState,
    integration: &IntegrationCaller,
    url: String,
    events: Vec<String>,
) -> Result<WebhookRow, ApiError> {
    require_some_event(integration)?;
    require_events(integration, &events)?;
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
