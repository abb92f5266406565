//! Raising alerts from findings (with deduplication and severity raise), the counsellor's
//! lifecycle actions, and queueing every delivery in the same transaction (the outbox).

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};

use crate::auth::Caller;
use crate::config::Settings;
use crate::domain::policy::{RiskPolicy, RuleId, Severity};
use crate::domain::risk::Finding;
use crate::error::ApiError;
use crate::store::alerts::{self, AlertChangeRow, AlertRow, OutboxRow};
use crate::store::{self, accounts, patients, DbConnection};

/// Live-stream and webhook event types.
pub mod events {
    /// A new alert.
    pub const CREATED: &str = "alert.created";
    /// An alert changed (repeat finding, severity raised, acknowledged, resolved).
    pub const UPDATED: &str = "alert.updated";
    /// An alert went unacknowledged too long and was escalated.
    pub const ESCALATED: &str = "alert.escalated";
    /// All of them.
    pub const ALL: [&str; 3] = [CREATED, UPDATED, ESCALATED];
}

/// The stored rank of a severity, so the database can order by it.
pub fn rank(s: Severity) -> i32 {
    match s {
        Severity::Info => 1,
        Severity::Warning => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

/// When an open alert of this severity must be acknowledged by, before it escalates.
pub fn escalation_due(
    severity: Severity,
    policy: &RiskPolicy,
    from: NaiveDateTime,
) -> Option<NaiveDateTime> {
    let minutes = match severity {
        Severity::Critical => policy.escalate_critical_after_minutes,
        Severity::High => policy.escalate_high_after_minutes,
        _ => return None,
    };
    Some(from + TimeDelta::minutes(i64::from(minutes)))
}

/// What raising a finding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    /// A new alert was opened.
    Created,
    /// An unresolved alert saw the finding again at the same or a lower severity.
    Repeated,
    /// An unresolved alert's severity went up; it is delivered again.
    SeverityRaised,
}

fn change(
    conn: &mut DbConnection,
    alert: &AlertRow,
    what: &str,
    actor: Option<&str>,
    detail: Option<String>,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    alerts::insert_change(
        conn,
        &AlertChangeRow {
            id: store::new_id(),
            alert_id: alert.id.clone(),
            change: what.to_owned(),
            actor_id: actor.map(str::to_owned),
            severity: Some(alert.severity.clone()),
            status: Some(alert.status.clone()),
            detail,
            created_at: now,
        },
    )?;
    Ok(())
}

/// Raises a finding for a patient: opens an alert, or updates the unresolved one of the same
/// rule (SOS: every press is its own alert). Deliveries are queued in the caller's
/// transaction.
pub fn raise(
    conn: &mut DbConnection,
    settings: &Settings,
    patient: &crate::store::patients::PatientRow,
    finding: &Finding,
    check_in_date: Option<NaiveDate>,
    policy: &RiskPolicy,
    now: NaiveDateTime,
) -> Result<(AlertRow, Raised), ApiError> {
    let (organisation_id, patient_id) =
        (patient.organisation_id.as_str(), patient.user_id.as_str());
    let evidence = serde_json::to_string(&finding.evidence).map_err(ApiError::internal)?;
    let existing = if finding.rule == RuleId::Sos {
        None
    } else {
        alerts::find_unresolved(conn, patient_id, finding.rule.as_str())?
    };
    match existing {
        None => {
            let alert = AlertRow {
                id: store::new_id(),
                organisation_id: organisation_id.to_owned(),
                patient_id: patient_id.to_owned(),
                rule: finding.rule.as_str().to_owned(),
                severity: finding.severity.as_str().to_owned(),
                severity_rank: rank(finding.severity),
                status: "open".into(),
                title: finding.title.clone(),
                explanation: finding.explanation.clone(),
                evidence,
                check_in_date,
                occurrences: 1,
                created_at: now,
                updated_at: now,
                last_seen_at: now,
                escalation_due_at: escalation_due(finding.severity, policy, now),
                escalated_at: None,
                acknowledged_at: None,
                acknowledged_by: None,
                resolved_at: None,
                resolved_by: None,
                outcome: None,
                note: None,
            };
            alerts::insert(conn, &alert)?;
            // An SOS is the patient's own act; other alerts are the risk engine's reading.
            let actor = (finding.rule == RuleId::Sos).then_some(patient_id);
            change(conn, &alert, "created", actor, None, now)?;
            queue(conn, settings, &alert, events::CREATED, true, now)?;
            Ok((alert, Raised::Created))
        }
        Some(mut alert) => {
            let raised = rank(finding.severity) > alert.severity_rank;
            alert.occurrences += 1;
            // The title, explanation and evidence describe the alert's severity: a repeat at
            // a lower severity does not replace the more serious account of it.
            if rank(finding.severity) >= alert.severity_rank {
                alert.title = finding.title.clone();
                alert.explanation = finding.explanation.clone();
                alert.evidence = evidence;
            }
            alert.check_in_date = check_in_date.or(alert.check_in_date);
            alert.last_seen_at = now;
            alert.updated_at = now;
            if raised {
                alert.severity = finding.severity.as_str().to_owned();
                alert.severity_rank = rank(finding.severity);
                if alert.status == "open" && alert.escalated_at.is_none() {
                    alert.escalation_due_at = escalation_due(finding.severity, policy, now);
                }
            }
            alerts::save(conn, &alert)?;
            let what = if raised {
                "severity_raised"
            } else {
                "repeated"
            };
            change(conn, &alert, what, None, None, now)?;
            queue(conn, settings, &alert, events::UPDATED, raised, now)?;
            Ok((
                alert,
                if raised {
                    Raised::SeverityRaised
                } else {
                    Raised::Repeated
                },
            ))
        }
    }
}

/// The webhook body: ids, rule and severity only — never check-in values or free text.
pub fn webhook_body(alert: &AlertRow, event_type: &str, now: NaiveDateTime) -> serde_json::Value {
    serde_json::json!({
        "type": event_type,
        "timestamp": now.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": {
            "alert_id": alert.id,
            "organisation_id": alert.organisation_id,
            "patient_id": alert.patient_id,
            "rule": alert.rule,
            "severity": alert.severity,
            "status": alert.status,
            "check_in_date": alert.check_in_date,
            "created_at": alert.created_at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "escalated_at": alert.escalated_at.map(|t| t.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        }
    })
}

/// Queues an event: always onto the live feed and every webhook subscribed to its type; as
/// counsellor email only when `email` is set (new, more severe or escalated alerts of high or
/// critical severity: a person's inbox is not a change log).
pub fn queue(
    conn: &mut DbConnection,
    settings: &Settings,
    alert: &AlertRow,
    event_type: &str,
    email: bool,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    alerts::feed(conn, &alert.organisation_id, &alert.id, event_type, now)?;
    let body = webhook_body(alert, event_type, now).to_string();
    for (hook_id, events_json) in alerts::active_webhooks(conn, &alert.organisation_id)? {
        let subscribed: Vec<String> = serde_json::from_str(&events_json).unwrap_or_default();
        if subscribed.iter().any(|e| e == event_type) {
            enqueue(conn, alert, event_type, "webhook", &hook_id, &body, now)?;
        }
    }
    if email && settings.smtp.is_some() && alert.severity_rank >= rank(Severity::High) {
        let mut recipients: Vec<String> = patients::care_team_users(conn, &alert.patient_id)?
            .into_iter()
            .map(|u| u.email)
            .collect();
        if event_type == events::ESCALATED {
            recipients.extend(
                accounts::users_with_role(conn, &alert.organisation_id, "admin")?
                    .into_iter()
                    .map(|u| u.email),
            );
        }
        recipients.sort();
        recipients.dedup();
        let notice = serde_json::json!({"severity": alert.severity, "escalated": event_type == events::ESCALATED}).to_string();
        for to in recipients {
            enqueue(conn, alert, event_type, "email", &to, &notice, now)?;
        }
    }
    Ok(())
}

fn enqueue(
    conn: &mut DbConnection,
    alert: &AlertRow,
    event_type: &str,
    channel: &str,
    target: &str,
    payload: &str,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    alerts::enqueue(
        conn,
        &OutboxRow {
            id: store::new_id(),
            organisation_id: alert.organisation_id.clone(),
            alert_id: alert.id.clone(),
            event_type: event_type.to_owned(),
            channel: channel.to_owned(),
            target: target.to_owned(),
            payload: payload.to_owned(),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: now,
            locked_until: None,
            locked_by: None,
            last_status_code: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            delivered_at: None,
        },
    )?;
    Ok(())
}

/// Acknowledges an open alert.
pub fn acknowledge(
    conn: &mut DbConnection,
    settings: &Settings,
    caller: &Caller,
    mut alert: AlertRow,
) -> Result<AlertRow, ApiError> {
    match alert.status.as_str() {
        "open" => {}
        "acknowledged" => return Ok(alert),
        _ => {
            return Err(ApiError::Conflict(
                "The alert is resolved; it cannot be acknowledged.".into(),
            ))
        }
    }
    let now = store::now();
    alert.status = "acknowledged".into();
    alert.acknowledged_at = Some(now);
    alert.acknowledged_by = Some(caller.user_id.clone());
    alert.escalation_due_at = None;
    alert.updated_at = now;
    alerts::save(conn, &alert)?;
    change(
        conn,
        &alert,
        "acknowledged",
        Some(&caller.user_id),
        None,
        now,
    )?;
    queue(conn, settings, &alert, events::UPDATED, false, now)?;
    Ok(alert)
}

/// Resolution outcomes.
pub const OUTCOMES: [&str; 5] = [
    "contacted",
    "no_contact",
    "false_alarm",
    "emergency_services",
    "other",
];

/// Resolves an alert with an outcome and a note.
pub fn resolve(
    conn: &mut DbConnection,
    settings: &Settings,
    caller: &Caller,
    mut alert: AlertRow,
    outcome: String,
    note: String,
) -> Result<AlertRow, ApiError> {
    if alert.status == "resolved" {
        return Err(ApiError::Conflict("The alert is already resolved.".into()));
    }
    let now = store::now();
    if alert.acknowledged_at.is_none() {
        alert.acknowledged_at = Some(now);
        alert.acknowledged_by = Some(caller.user_id.clone());
    }
    alert.status = "resolved".into();
    alert.resolved_at = Some(now);
    alert.resolved_by = Some(caller.user_id.clone());
    alert.outcome = Some(outcome.clone());
    alert.note = Some(note);
    alert.escalation_due_at = None;
    alert.updated_at = now;
    alerts::save(conn, &alert)?;
    change(
        conn,
        &alert,
        "resolved",
        Some(&caller.user_id),
        Some(outcome),
        now,
    )?;
    queue(conn, settings, &alert, events::UPDATED, false, now)?;
    Ok(alert)
}

/// Escalates one alert if it is still open and due; returns whether it did.
pub fn escalate(
    conn: &mut DbConnection,
    settings: &Settings,
    alert_id: &str,
    now: NaiveDateTime,
) -> Result<bool, ApiError> {
    let Some(mut alert) = alerts::lock(conn, alert_id)? else {
        return Ok(false);
    };
    let due = alert.escalation_due_at.is_some_and(|d| d <= now);
    if alert.status != "open" || alert.escalated_at.is_some() || !due {
        return Ok(false);
    }
    alert.escalated_at = Some(now);
    alert.escalation_due_at = None;
    alert.updated_at = now;
    alerts::save(conn, &alert)?;
    change(conn, &alert, "escalated", None, None, now)?;
    queue(conn, settings, &alert, events::ESCALATED, true, now)?;
    Ok(true)
}
