//! The outbox worker: drains deliveries written in the same transaction as the alerts that
//! caused them, so a crash between "alert saved" and "counsellor told" loses nothing.
//!
//! Work is claimed under a lease (PostgreSQL `FOR UPDATE SKIP LOCKED`, then a conditional
//! update the database re-checks), so several processes never deliver one item twice, and an
//! item whose worker died is retaken when its lease runs out. Every attempt is recorded.

use std::time::Duration;

use chrono::TimeDelta;

use super::backoff;
use super::email::{alert_notice_text, Mailer};
use super::webhook::{Verdict, WebhookClient};
use crate::error::ApiError;
use crate::service::integration_reads::{
    event_delivery_consent, record_webhook_disclosure, EventConsent,
};
use crate::state::AppState;
use crate::store::alerts::OutboxRow;
use crate::store::deliveries::{self, AttemptRow, Finish};
use crate::store::{self};

/// How long a claimed item stays reserved for its worker: longer than the slowest send can
/// take (DNS, connect and total timeouts of a webhook; the SMTP send timeout).
const LEASE: TimeDelta = TimeDelta::seconds(60);
/// How many items one pass claims.
const BATCH: i64 = 20;
/// How often the worker looks for new work when idle.
pub const POLL: Duration = Duration::from_millis(200);

/// A webhook body with the Part 2 notice and the consent id added.
fn with_notice(payload: &str, consent_id: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(payload) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.insert(
                "notice".into(),
                crate::domain::part2::REDISCLOSURE_NOTICE.into(),
            );
            m.insert("consent_id".into(), consent_id.into());
            serde_json::Value::Object(m).to_string()
        }
        _ => payload.to_owned(),
    }
}

/// The worker's tools.
pub struct Worker {
    state: AppState,
    id: String,
    webhooks: WebhookClient,
    mailer: Option<Mailer>,
}

struct Result3 {
    verdict: Verdict,
    status: Option<u16>,
    error: Option<String>,
    duration_ms: u64,
    /// For an integration's webhook, the integration, the consent the delivery relied on and
    /// what it disclosed: recorded as a disclosure once delivered.
    disclosure: Option<EventConsent>,
}

impl Worker {
    /// A worker for this process.
    pub fn new(state: AppState) -> anyhow::Result<Self> {
        let mailer = match &state.settings.smtp {
            Some(s) => Some(
                Mailer::new(&s.url, &s.from)
                    .map_err(|e| anyhow::anyhow!("AFTERCARE_SMTP_URL: {e}"))?,
            ),
            None => None,
        };
        Ok(Self {
            id: format!("worker-{}", uuid::Uuid::new_v4()),
            state,
            webhooks: WebhookClient::new(),
            mailer,
        })
    }

    /// Claims and delivers what is due; returns how many items were attempted.
    pub async fn run_once(&self) -> Result<usize, ApiError> {
        let worker = self.id.clone();
        let claimed: Vec<OutboxRow> = self
            .state
            .store
            .transaction(move |conn| -> Result<Vec<OutboxRow>, ApiError> {
                let now = store::now();
                let mut out = Vec::new();
                for id in deliveries::due(conn, now, BATCH)? {
                    if deliveries::claim(conn, &id, &worker, now, now + LEASE)? {
                        if let Some(item) = deliveries::find(conn, &id)? {
                            out.push(item);
                        }
                    }
                }
                Ok(out)
            })
            .await?;
        let n = claimed.len();
        // All at once: the pass then takes as long as its slowest send (bounded by the client
        // timeouts, well inside the lease), not the sum of them, so no claim runs out while
        // its item waits its turn and another process retakes it.
        let results =
            futures_util::future::join_all(claimed.into_iter().map(|item| self.deliver(item)))
                .await;
        for r in results {
            r?;
        }
        Ok(n)
    }

    async fn deliver(&self, item: OutboxRow) -> Result<(), ApiError> {
        let outcome = match item.channel.as_str() {
            "webhook" => self.send_webhook(&item).await?,
            _ => self.send_email(&item).await,
        };
        let attempt_no = item.attempts + 1;
        let max = i32::try_from(self.state.settings.delivery_max_attempts).unwrap_or(8);
        let now = store::now();
        let (status, next) = match outcome.verdict {
            Verdict::Delivered => ("delivered", now),
            Verdict::Gone | Verdict::Refused => ("dead", now),
            _ if attempt_no >= max => ("dead", now),
            _ => {
                let delay = backoff::next_delay(
                    self.state.settings.delivery_retry_base,
                    u32::try_from(attempt_no).unwrap_or(1),
                );
                (
                    "pending",
                    now + TimeDelta::from_std(delay).unwrap_or(TimeDelta::hours(1)),
                )
            }
        };
        metrics::counter!("deliveries_total", "channel" => item.channel.clone(), "outcome" => outcome.verdict.as_str()).increment(1);
        if status == "dead" {
            tracing::warn!(channel = %item.channel, outbox_id = %item.id, attempts = attempt_no, "delivery dead-lettered");
        }
        let worker = self.id.clone();
        let gone = outcome.verdict == Verdict::Gone && item.channel == "webhook";
        self.state
            .store
            .transaction(move |conn| -> Result<(), ApiError> {
                let attempt = AttemptRow {
                    id: store::new_id(),
                    outbox_id: item.id.clone(),
                    attempt: attempt_no,
                    status_code: outcome.status.map(i32::from),
                    error: outcome.error.clone(),
                    duration_ms: i32::try_from(outcome.duration_ms).unwrap_or(i32::MAX),
                    created_at: now,
                };
                let f = Finish {
                    status,
                    next_attempt_at: next,
                    status_code: outcome.status.map(i32::from),
                    error: outcome.error.clone(),
                };
                deliveries::finish(conn, &item, &worker, &f, &attempt, now)?;
                if status == "delivered" {
                    if let Some(sent) = &outcome.disclosure {
                        record_webhook_disclosure(conn, sent, &item.event_type)?;
                    }
                }
                if gone {
                    deliveries::disable_webhook(
                        conn,
                        &item.target,
                        "the receiver answered 410 Gone",
                        now,
                    )?;
                }
                Ok(())
            })
            .await
    }

    async fn send_webhook(&self, item: &OutboxRow) -> Result<Result3, ApiError> {
        let (target, patient, event) = (
            item.target.clone(),
            item.patient_id.clone(),
            item.event_type.clone(),
        );
        let (hook, consent) = self
            .state
            .store
            .run(move |conn| -> Result<_, ApiError> {
                let hook = deliveries::webhook_by_id(conn, &target)?;
                // An integration's: the patient's consent is checked again now (SPEC §9).
                let consent = match hook.as_ref().and_then(|h| h.integration_id.clone()) {
                    None => None,
                    Some(integration) => match patient {
                        Some(p) => Some(event_delivery_consent(conn, &integration, &p, &event)?),
                        None => Some(None),
                    },
                };
                Ok((hook, consent))
            })
            .await?;
        let Some(hook) = hook.filter(|h| h.deleted_at.is_none() && h.disabled_at.is_none()) else {
            return Ok(Result3 {
                verdict: Verdict::Refused,
                status: None,
                error: Some("the webhook was deleted or disabled".into()),
                duration_ms: 0,
                disclosure: None,
            });
        };
        if let Some(None) = consent {
            return Ok(Result3 {
                verdict: Verdict::Refused,
                status: None,
                error: Some(
                    "not sent: the patient's consent to this integration (or the integration) is no longer active"
                        .into(),
                ),
                duration_ms: 0,
                disclosure: None,
            });
        }
        // A disclosure to an integration carries the prohibition on redisclosure and the
        // consent it relied on (42 CFR 2.32), like every answer of its read routes.
        let body = match consent.as_ref().and_then(|c| c.as_ref()) {
            Some(c) => with_notice(&item.payload, &c.consent.id),
            None => item.payload.clone(),
        };
        // The same webhook-id on every attempt lets receivers drop duplicates.
        let o = self
            .webhooks
            .send(
                &hook.url,
                &hook.secret,
                &item.id,
                body.as_bytes(),
                self.state.settings.webhook_allow_private_networks,
            )
            .await;
        Ok(Result3 {
            verdict: o.verdict,
            status: o.status,
            error: o.error,
            duration_ms: o.duration_ms,
            disclosure: consent.flatten(),
        })
    }

    async fn send_email(&self, item: &OutboxRow) -> Result3 {
        let started = std::time::Instant::now();
        let Some(mailer) = &self.mailer else {
            return Result3 {
                verdict: Verdict::Retry,
                status: None,
                error: Some("email is not configured in this process".into()),
                duration_ms: 0,
                disclosure: None,
            };
        };
        let payload: serde_json::Value = serde_json::from_str(&item.payload).unwrap_or_default();
        let severity = payload["severity"].as_str().unwrap_or("high");
        let escalated = payload["escalated"].as_bool().unwrap_or(false);
        let (subject, body) =
            alert_notice_text(severity, escalated, &self.state.settings.dashboard_url);
        let result = mailer.send_notice(&item.target, &subject, &body).await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(()) => Result3 {
                verdict: Verdict::Delivered,
                status: None,
                error: None,
                duration_ms,
                disclosure: None,
            },
            Err(e) => Result3 {
                verdict: Verdict::Retry,
                status: None,
                error: Some(e),
                duration_ms,
                disclosure: None,
            },
        }
    }

    /// Delivers until the process stops, polling briefly when idle.
    pub async fn run_forever(self) {
        loop {
            match self.run_once().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "delivery pass failed; will retry"),
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
