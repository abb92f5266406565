//! Raising alerts from findings (with deduplication and severity raise), the counsellor's
//! lifecycle actions, and queueing every delivery in the same transaction (the outbox).

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};

use crate::auth::Caller;
use crate::config::Settings;
use crate::domain::episode::Episode;
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
    /// A patient submitted (or corrected) a check-in: for integrations' webhooks only.
    pub const CHECK_IN_SUBMITTED: &str = "check_in.submitted";
    /// The alert events (the live stream and the organisation's webhooks).
    pub const ALL: [&str; 3] = [CREATED, UPDATED, ESCALATED];
    /// What an integration's webhook may subscribe to.
    pub const INTEGRATION: [&str; 4] = [CREATED, UPDATED, ESCALATED, CHECK_IN_SUBMITTED];
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

/// What recording findings did to the patient's episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    /// A new alert was opened.
    Created,
    /// The unresolved alert took the findings without getting more serious: the inbox shows
    /// them, nobody is notified again.
    Joined,
    /// The unresolved alert's severity went up (or the patient pressed SOS); it is delivered
    /// again.
    Delivered,
    /// Only corrections: findings marked as no longer holding; delivered as `alert.updated`.
    Corrected,
}

/// The episode stored on an alert.
///
/// Findings that cannot be read (a damaged row) are never taken for "none": the alert's own
/// headline stands in for them, so the next finding joins it instead of overwriting it.
pub fn episode_of(alert: &AlertRow) -> Episode {
    match serde_json::from_str(&alert.findings) {
        Ok(findings) => Episode::from_findings(findings),
        Err(_) => headline_episode(alert),
    }
}

fn headline_episode(alert: &AlertRow) -> Episode {
    let (Some(rule), Some(severity)) =
        (RuleId::parse(&alert.rule), Severity::parse(&alert.severity))
    else {
        return Episode::default();
    };
    let finding = Finding {
        rule,
        severity,
        title: alert.title.clone(),
        explanation: alert.explanation.clone(),
        evidence: serde_json::from_str(&alert.evidence).unwrap_or(serde_json::Value::Null),
    };
    let on = alert
        .check_in_date
        .unwrap_or_else(|| alert.created_at.date());
    let mut episode = Episode::open(&finding, on);
    if let Some(f) = episode.findings.first_mut() {
        f.occurrences = alert.occurrences.max(1);
    }
    episode
}

/// Writes an episode's findings and its leading finding's account onto the alert row.
fn apply_episode(alert: &mut AlertRow, episode: &Episode) -> Result<(), ApiError> {
    let severity = episode.severity();
    alert.severity = severity.as_str().to_owned();
    alert.severity_rank = rank(severity);
    if let Some(lead) = episode.leading() {
        alert.rule = lead.rule.as_str().to_owned();
        alert.title = lead.title.clone();
        alert.explanation = lead.explanation.clone();
        alert.evidence = serde_json::to_string(&lead.evidence).map_err(ApiError::internal)?;
    }
    alert.occurrences = episode.occurrences();
    alert.findings = serde_json::to_string(&episode.findings).map_err(ApiError::internal)?;
    let rules: Vec<&str> = episode.rules().iter().map(|r| r.as_str()).collect();
    alert.rules = format!(",{},", rules.join(","));
    Ok(())
}

/// Findings seen for a patient, each with the local date it was seen on.
pub struct Seen<'a> {
    /// What fired.
    pub finding: &'a Finding,
    /// The local date it describes (the check-in's date, or today for SOS and silences).
    pub on: NaiveDate,
}

/// A correction as one date sees it: the findings of that date that no longer fire are
/// marked (the corrected check-in itself, or a later one whose pattern it no longer completes).
pub struct Correction {
    /// The date whose findings are judged again.
    pub on: NaiveDate,
    /// The corrected check-in, as the engine reads it (its answers are shown beside the
    /// evidence; its date may be earlier than `on`).
    pub record: crate::domain::risk::DayRecord,
    /// What still fires for it after the correction.
    pub still_firing: Vec<Finding>,
}

/// Records findings (and a correction) on the patient's episode: opens the one unresolved
/// alert, or joins every finding to it. Deliveries — live feed, webhooks, email — go out when
/// the alert is new, when its severity rises (which also re-opens an acknowledged alert and
/// restarts its escalation timer), on every SOS press, and as `alert.updated` for corrections;
/// a finding that only joins does not notify anyone again. All in the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub fn record(
    conn: &mut DbConnection,
    settings: &Settings,
    patient: &crate::store::patients::PatientRow,
    seen: &[Seen<'_>],
    corrections: &[Correction],
    check_in_date: Option<NaiveDate>,
    policy: &RiskPolicy,
    now: NaiveDateTime,
) -> Result<Option<(AlertRow, Raised)>, ApiError> {
    let patient_id = patient.user_id.as_str();
    let existing = alerts::find_unresolved(conn, patient_id)?;
    let sos = seen.iter().any(|s| s.finding.rule == RuleId::Sos);
    let Some(mut alert) = existing else {
        let Some(alert) = new_alert(patient, seen, check_in_date, policy, now)? else {
            return Ok(None);
        };
        alerts::insert(conn, &alert)?;
        // An SOS is the patient's own act; other alerts are the risk engine's reading.
        let actor = sos.then_some(patient_id);
        alerts::insert_changes(conn, &[change_row(&alert, "created", actor, None, now)])?;
        queue(conn, settings, &alert, events::CREATED, true, now)?;
        return Ok(Some((alert, Raised::Created)));
    };

    let mut episode = episode_of(&alert);
    let before = episode.severity();
    let mut corrected = Vec::new();
    for c in corrections {
        let rules: Vec<RuleId> = episode
            .findings
            .iter()
            .map(|f| f.rule)
            .filter(|r| !matches!(r, RuleId::Sos | RuleId::MissedCheckIns))
            .collect();
        for r in rules {
            let still = c.still_firing.iter().find(|f| f.rule == r);
            if episode.correct(r, c.on, still, &c.record, now).is_some()
                && !corrected.contains(&r.as_str())
            {
                corrected.push(r.as_str());
            }
        }
    }
    let mut new_rules = Vec::new();
    for s in seen {
        if episode.join(s.finding, s.on).new_rule {
            new_rules.push(s.finding.rule.as_str());
        }
    }
    if seen.is_empty() && corrected.is_empty() {
        return Ok(Some((alert, Raised::Joined)));
    }
    let rose = episode.severity() > before;
    apply_episode(&mut alert, &episode)?;
    alert.check_in_date = check_in_date.or(alert.check_in_date);
    if !seen.is_empty() {
        alert.last_seen_at = now;
    }
    alert.updated_at = now;
    let severity = episode.severity();
    let holding = episode.holding_severity();
    if rose || (sos && alert.status == "acknowledged") {
        // More serious than what the counsellor acknowledged, or the patient pressed SOS
        // again: it needs them again, and the escalation clock starts over from this moment.
        if alert.status == "acknowledged" {
            alert.status = "open".into();
            alert.acknowledged_at = None;
            alert.acknowledged_by = None;
        }
        alert.escalation_due_at = escalation_due(severity, policy, now);
    } else if alert.status == "open"
        && alert.escalated_at.is_none()
        && alert.escalation_due_at.is_none()
        && !seen.is_empty()
    {
        // Corrected away earlier (or only lesser findings held), and something more
        // serious holds again: timed by what holds.
        alert.escalation_due_at = holding.and_then(|h| escalation_due(h, policy, now));
    }
    if !corrected.is_empty()
        && alert.status == "open"
        && alert.escalated_at.is_none()
        && (holding < Some(severity) || severity < before)
    {
        // The most serious finding was corrected away: what still holds sets the clock (a
        // retracted report of use no longer pages the team in 15 minutes for a warning).
        alert.escalation_due_at = holding.and_then(|h| escalation_due(h, policy, now));
    }
    if !episode.holds() {
        // Nothing the patient now says supports it: it stops escalating, but stays for a
        // counsellor to resolve — a retracted report is itself worth seeing.
        alert.escalation_due_at = None;
    }
    alerts::save(conn, &alert)?;
    // Every change this recording makes, in one statement (ids are time-ordered, so the
    // history keeps this order).
    let mut changes = Vec::new();
    if !corrected.is_empty() {
        changes.push(change_row(
            &alert,
            "corrected",
            Some(patient_id),
            Some(corrected.join(",")),
            now,
        ));
    }
    if rose {
        changes.push(change_row(&alert, "severity_raised", None, None, now));
    }
    if sos {
        changes.push(change_row(
            &alert,
            "sos_pressed",
            Some(patient_id),
            None,
            now,
        ));
    }
    if !new_rules.is_empty() {
        changes.push(change_row(
            &alert,
            "findings_added",
            None,
            Some(new_rules.join(",")),
            now,
        ));
    } else if !seen.is_empty() && !rose && !sos {
        changes.push(change_row(&alert, "repeated", None, None, now));
    }
    alerts::insert_changes(conn, &changes)?;
    let raised = if rose || sos {
        queue(conn, settings, &alert, events::UPDATED, true, now)?;
        Raised::Delivered
    } else if !corrected.is_empty() {
        queue(conn, settings, &alert, events::UPDATED, false, now)?;
        Raised::Corrected
    } else {
        Raised::Joined
    };
    Ok(Some((alert, raised)))
}

/// The alert a patient's first findings open (nothing written yet); `None` without findings.
pub fn new_alert(
    patient: &crate::store::patients::PatientRow,
    seen: &[Seen<'_>],
    check_in_date: Option<NaiveDate>,
    policy: &RiskPolicy,
    now: NaiveDateTime,
) -> Result<Option<AlertRow>, ApiError> {
    let (organisation_id, patient_id) =
        (patient.organisation_id.as_str(), patient.user_id.as_str());
    let Some((first, rest)) = seen.split_first() else {
        return Ok(None);
    };
    let mut episode = Episode::open(first.finding, first.on);
    for s in rest {
        episode.join(s.finding, s.on);
    }
    let severity = episode.severity();
    let mut alert = AlertRow {
        id: store::new_id(),
        organisation_id: organisation_id.to_owned(),
        patient_id: patient_id.to_owned(),
        rule: String::new(),
        severity: String::new(),
        severity_rank: 0,
        status: "open".into(),
        title: String::new(),
        explanation: String::new(),
        evidence: String::new(),
        check_in_date,
        occurrences: 0,
        created_at: now,
        updated_at: now,
        last_seen_at: now,
        escalation_due_at: escalation_due(severity, policy, now),
        escalated_at: None,
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_at: None,
        resolved_by: None,
        outcome: None,
        note: None,
        findings: String::new(),
        rules: String::new(),
    };
    apply_episode(&mut alert, &episode)?;
    Ok(Some(alert))
}

/// Raises one finding (an SOS press, a silence found by the sweep) on the patient's episode.
pub fn raise(
    conn: &mut DbConnection,
    settings: &Settings,
    patient: &crate::store::patients::PatientRow,
    finding: &Finding,
    on: NaiveDate,
    policy: &RiskPolicy,
    now: NaiveDateTime,
) -> Result<(AlertRow, Raised), ApiError> {
    let seen = [Seen { finding, on }];
    record(conn, settings, patient, &seen, &[], None, policy, now)?
        .ok_or_else(|| ApiError::internal("a finding raised no alert"))
}

fn change(
    conn: &mut DbConnection,
    alert: &AlertRow,
    what: &str,
    actor: Option<&str>,
    detail: Option<String>,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    alerts::insert_change(conn, &change_row(alert, what, actor, detail, now))?;
    Ok(())
}

fn change_row(
    alert: &AlertRow,
    what: &str,
    actor: Option<&str>,
    detail: Option<String>,
    now: NaiveDateTime,
) -> AlertChangeRow {
    AlertChangeRow {
        id: store::new_id(),
        alert_id: alert.id.clone(),
        change: what.to_owned(),
        actor_id: actor.map(str::to_owned),
        severity: Some(alert.severity.clone()),
        status: Some(alert.status.clone()),
        detail,
        created_at: now,
    }
}

/// Opens alerts for several patients at once, as [`record`] does for a patient without an
/// unresolved alert (each row from [`new_alert`]): the alerts, their `created` changes, feed
/// entries and deliveries go in one multi-row statement each. The caller holds the patients'
/// rows and has seen that none of them has an unresolved alert.
pub fn open_many(
    conn: &mut DbConnection,
    settings: &Settings,
    opened: &[AlertRow],
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    if opened.is_empty() {
        return Ok(());
    }
    alerts::insert_many(conn, opened)?;
    let changes: Vec<AlertChangeRow> = opened
        .iter()
        .map(|a| change_row(a, "created", None, None, now))
        .collect();
    alerts::insert_changes(conn, &changes)?;
    let feed: Vec<(&str, &str)> = opened
        .iter()
        .map(|a| (a.organisation_id.as_str(), a.id.as_str()))
        .collect();
    alerts::feed_many(conn, &feed, events::CREATED, now)?;
    let mut hooks: std::collections::HashMap<String, Vec<(String, String)>> =
        std::collections::HashMap::new();
    let mut rows = Vec::new();
    for alert in opened {
        if !hooks.contains_key(&alert.organisation_id) {
            let active = alerts::active_webhooks(conn, &alert.organisation_id)?;
            hooks.insert(alert.organisation_id.clone(), active);
        }
        let recipients = email_recipients(conn, settings, alert, events::CREATED, true)?;
        let mut alert_hooks = hooks
            .get(&alert.organisation_id)
            .cloned()
            .unwrap_or_default();
        alert_hooks.extend(consented_integration_hooks(conn, alert)?);
        rows.extend(outbox_rows(
            alert,
            events::CREATED,
            &alert_hooks,
            &recipients,
            now,
        ));
    }
    alerts::enqueue_many(conn, &rows)?;
    Ok(())
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
    let mut hooks = alerts::active_webhooks(conn, &alert.organisation_id)?;
    hooks.extend(consented_integration_hooks(conn, alert)?);
    let recipients = email_recipients(conn, settings, alert, event_type, email)?;
    // Every delivery of this event, in one statement.
    let deliveries = outbox_rows(alert, event_type, &hooks, &recipients, now);
    alerts::enqueue_many(conn, &deliveries)?;
    Ok(())
}

/// The integrations' webhooks that may hear about this alert: those of integrations the
/// patient consented to with the `alerts` category (SPEC §9). The consent is checked again
/// when each delivery is sent. (id, events JSON).
fn consented_integration_hooks(
    conn: &mut DbConnection,
    alert: &AlertRow,
) -> Result<Vec<(String, String)>, ApiError> {
    let hooks =
        crate::store::deliveries::active_integration_webhooks(conn, &alert.organisation_id)?;
    let mut out = Vec::new();
    let mut decided: Vec<(String, bool)> = Vec::new();
    for (id, events_json, integration) in hooks {
        let Some(integration) = integration else {
            continue;
        };
        let ok = match decided.iter().find(|(i, _)| *i == integration) {
            Some((_, ok)) => *ok,
            None => {
                let ok = crate::service::integration_reads::event_delivery_consent(
                    conn,
                    &integration,
                    &alert.patient_id,
                    events::CREATED,
                )?
                .is_some();
                decided.push((integration, ok));
                ok
            }
        };
        if ok {
            out.push((id, events_json));
        }
    }
    Ok(out)
}

/// Who is emailed about an event: with `email`, SMTP configured and a high or critical alert,
/// the care team (and for escalations the organisation's admins); else nobody.
fn email_recipients(
    conn: &mut DbConnection,
    settings: &Settings,
    alert: &AlertRow,
    event_type: &str,
    email: bool,
) -> Result<Vec<String>, ApiError> {
    if !(email && settings.smtp.is_some() && alert.severity_rank >= rank(Severity::High)) {
        return Ok(Vec::new());
    }
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
    Ok(recipients)
}

/// An event's pending deliveries: one per webhook of `hooks` (id, events JSON) subscribed to
/// its type, one per email recipient.
fn outbox_rows(
    alert: &AlertRow,
    event_type: &str,
    hooks: &[(String, String)],
    recipients: &[String],
    now: NaiveDateTime,
) -> Vec<OutboxRow> {
    let mut rows = Vec::new();
    let body = webhook_body(alert, event_type, now).to_string();
    for (hook_id, events_json) in hooks {
        let subscribed: Vec<String> = serde_json::from_str(events_json).unwrap_or_default();
        if subscribed.iter().any(|e| e == event_type) {
            rows.push(outbox_row(
                alert, event_type, "webhook", hook_id, &body, now,
            ));
        }
    }
    if !recipients.is_empty() {
        let notice = serde_json::json!({"severity": alert.severity, "escalated": event_type == events::ESCALATED}).to_string();
        for to in recipients {
            rows.push(outbox_row(alert, event_type, "email", to, &notice, now));
        }
    }
    rows
}

fn outbox_row(
    alert: &AlertRow,
    event_type: &str,
    channel: &str,
    target: &str,
    payload: &str,
    now: NaiveDateTime,
) -> OutboxRow {
    OutboxRow::pending(
        alerts::NewDelivery {
            organisation_id: &alert.organisation_id,
            alert_id: Some(&alert.id),
            patient_id: &alert.patient_id,
            event_type,
            channel,
            target,
            payload,
        },
        now,
    )
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
    mark_resolved(conn, &mut alert, &caller.user_id, outcome, note, now)?;
    queue(conn, settings, &alert, events::UPDATED, false, now)?;
    Ok(alert)
}

/// The note an alert gets when it is closed with its patient's account.
pub const CLOSED_WITH_ACCOUNT: &str = "Resolved when the patient's account was closed.";

/// Resolves an unresolved alert because its patient's account was closed (by `actor`): the
/// change is recorded and the live feed told, so dashboards drop it, but nothing is sent out
/// (the patient's pending deliveries are dropped with the account).
pub fn close_with_account(
    conn: &mut DbConnection,
    mut alert: AlertRow,
    actor: &str,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    mark_resolved(
        conn,
        &mut alert,
        actor,
        "other".into(),
        CLOSED_WITH_ACCOUNT.into(),
        now,
    )?;
    alerts::feed(
        conn,
        &alert.organisation_id,
        &alert.id,
        events::UPDATED,
        now,
    )?;
    Ok(())
}

/// Marks the alert resolved by `actor` with `outcome` and `note`, stops its escalation, stores
/// it and records the change.
fn mark_resolved(
    conn: &mut DbConnection,
    alert: &mut AlertRow,
    actor: &str,
    outcome: String,
    note: String,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    alert.status = "resolved".into();
    alert.resolved_at = Some(now);
    alert.resolved_by = Some(actor.to_owned());
    alert.outcome = Some(outcome.clone());
    alert.note = Some(note);
    alert.escalation_due_at = None;
    alert.updated_at = now;
    alerts::save(conn, alert)?;
    change(conn, alert, "resolved", Some(actor), Some(outcome), now)
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
    // An alert escalates again when its severity rose after an earlier escalation (the
    // timer restarted then); otherwise once.
    let due = alert.escalation_due_at.is_some_and(|d| d <= now);
    if alert.status != "open" || !due || !episode_of(&alert).holds() {
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
