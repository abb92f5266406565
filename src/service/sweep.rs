//! Background sweeps: missed check-ins, escalation of unacknowledged alerts, housekeeping.
//!
//! Each sweep reads only what is due (indexed `*_due_at` columns), so its cost follows the
//! patients and alerts that need attention, not all of them. Work is claimed under row locks
//! (PostgreSQL `FOR UPDATE SKIP LOCKED`), so every process behind the load balancer can run
//! the sweeps safely: the missed-check-in sweep claims a batch of patients per transaction,
//! the escalation sweep one alert per transaction.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};

use crate::config::Settings;
use crate::domain::policy::{Phase, RiskPolicy};
use crate::domain::risk::{self, missed_check_ins_finding, PhaseSpan};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::accounts::UserRow;
use crate::store::audit::{self, AuditRow};
use crate::store::{self, accounts, alerts, deliveries, patients, sessions, DbConnection};

use super::check_ins::{
    local_midnight_utc, local_today, organisation_policy, patient_overrides, silence_since_in,
};

/// How many due items one pass handles at most; the rest wait for the next pass.
const BATCH: i64 = 500;

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Missed-check-in findings raised.
    pub missed_check_ins: usize,
    /// Alerts escalated.
    pub escalated: usize,
}

/// Runs both sweeps once.
pub async fn run_once(state: &AppState) -> Result<SweepReport, ApiError> {
    let missed_check_ins = missed_check_ins_once(state).await?;
    let escalated = escalations_once(state).await?;
    let report = SweepReport {
        missed_check_ins,
        escalated,
    };
    if report != SweepReport::default() {
        tracing::info!(missed_check_ins, escalated, "sweep");
    }
    Ok(report)
}

/// Raises `missed_check_ins` for the patients who are due; returns how many.
///
/// It works through everyone due now in batches of [`MISSED_BATCH`], each one transaction:
/// the batch is claimed in one statement, its users, organisations and phase histories read
/// in one statement each, the next reviews of the patients who need no finding written in one
/// statement per distinct time; the new alerts of patients who had none, their changes, feed
/// entries, deliveries and audit records in one multi-row statement each. Only a finding that
/// joins an ongoing episode costs statements of its own. The time taken goes to
/// `sweep_duration_seconds{sweep="missed_check_ins"}`.
pub async fn missed_check_ins_once(state: &AppState) -> Result<usize, ApiError> {
    let started = std::time::Instant::now();
    let mut count = 0;
    loop {
        let settings = state.settings.clone();
        let (claimed, raised) = state
            .store
            .transaction(move |conn| missed_check_ins_batch(conn, &settings, store::now()))
            .await?;
        count += raised;
        if claimed < MISSED_BATCH {
            break;
        }
    }
    crate::metrics::record_sweep("missed_check_ins", started.elapsed().as_secs_f64());
    Ok(count)
}

/// Patients one missed-check-in transaction reviews at most: enough that commits are rare,
/// few enough that SQLite's single writer is not held from check-ins for long.
const MISSED_BATCH: usize = 200;

/// Reviews one batch of due patients; returns (claimed, findings raised).
fn missed_check_ins_batch(
    conn: &mut DbConnection,
    settings: &Settings,
    now: NaiveDateTime,
) -> Result<(usize, usize), ApiError> {
    let due = patients::claim_due(conn, now, MISSED_BATCH as i64)?;
    if due.is_empty() {
        return Ok((0, 0));
    }
    let ids: Vec<String> = due.iter().map(|p| p.user_id.clone()).collect();
    let users: HashMap<String, UserRow> = accounts::find_users(conn, &ids)?
        .into_iter()
        .map(|u| (u.id.clone(), u))
        .collect();
    let mut org_ids: Vec<String> = due.iter().map(|p| p.organisation_id.clone()).collect();
    org_ids.sort();
    org_ids.dedup();
    let org_policies: HashMap<String, RiskPolicy> = accounts::find_organisations(conn, &org_ids)?
        .iter()
        .map(|o| (o.id.clone(), organisation_policy(o)))
        .collect();
    let mut histories: HashMap<String, Vec<PhaseSpan>> = HashMap::new();
    for h in patients::phase_histories(conn, &ids)? {
        if let Some(phase) = Phase::parse(&h.phase) {
            histories.entry(h.patient_id).or_default().push(PhaseSpan {
                phase,
                started_on: h.started_on,
            });
        }
    }

    // Patients without an unresolved alert get a new one, all written together; the others'
    // episodes take the finding one by one.
    let ongoing: HashSet<String> = alerts::with_unresolved(conn, &ids)?.into_iter().collect();
    let mut opened = Vec::new();
    let mut audit_rows = Vec::new();

    let mut next_reviews: BTreeMap<Option<NaiveDateTime>, Vec<String>> = BTreeMap::new();
    let mut raised = 0;
    for p in &due {
        let (Some(user), Some(org_policy)) =
            (users.get(&p.user_id), org_policies.get(&p.organisation_id))
        else {
            continue;
        };
        let policy = org_policy.merged(&patient_overrides(p));
        let today = local_today(&user.timezone);
        let history = histories.get(&p.user_id).map_or(&[][..], Vec::as_slice);
        let last = silence_since_in(p, &user.timezone, history);
        let finding = if user.disabled || p.phase == "discharged" {
            None
        } else {
            missed_check_ins_finding(last, today, &policy)
        };
        let next = match &finding {
            Some(f) => risk::next_missed_check_in_due_after(last, f.severity, &policy),
            None => risk::next_missed_check_in_due(last, &policy).filter(|d| *d > today),
        };
        next_reviews
            .entry(next.map(|d| local_midnight_utc(&user.timezone, d)))
            .or_default()
            .push(p.user_id.clone());
        let Some(f) = &finding else {
            continue;
        };
        if ongoing.contains(&p.user_id) {
            super::alerts::raise(conn, settings, p, f, today, &policy, now)?;
        } else {
            let seen = [super::alerts::Seen {
                finding: f,
                on: today,
            }];
            opened.extend(super::alerts::new_alert(p, &seen, None, &policy, now)?);
        }
        audit_rows.push(AuditRow {
            id: store::new_id(),
            organisation_id: Some(p.organisation_id.clone()),
            actor_id: None,
            actor_role: None,
            action: "missed_check_ins.raised".into(),
            patient_id: None,
            target_type: None,
            target_id: None,
            outcome: "success".into(),
            request_id: None,
            created_at: now,
        });
        raised += 1;
    }
    super::alerts::open_many(conn, settings, &opened, now)?;
    audit::insert_many(conn, &audit_rows)?;
    for (next, ids) in next_reviews {
        patients::set_missed_due_many(conn, &ids, next)?;
    }
    Ok((due.len(), raised))
}

/// Escalates the open alerts whose acknowledgement deadline passed; returns how many.
pub async fn escalations_once(state: &AppState) -> Result<usize, ApiError> {
    let started = std::time::Instant::now();
    let mut count = 0;
    let now = store::now();
    let due = state
        .store
        .run(move |conn| alerts::due_escalations(conn, now, BATCH).map_err(ApiError::from))
        .await?;
    for id in due {
        let settings = state.settings.clone();
        let escalated = state
            .store
            .transaction(move |conn| super::alerts::escalate(conn, &settings, &id, store::now()))
            .await?;
        count += usize::from(escalated);
    }
    crate::metrics::record_sweep("escalations", started.elapsed().as_secs_f64());
    Ok(count)
}

/// How long live-feed entries are kept for reconnecting streams.
const FEED_RETENTION: TimeDelta = TimeDelta::days(7);

/// Deletes what has outlived its use: spent login-throttle counters, refresh tokens long
/// expired, old live-feed entries, expired two-step sign-ins; and erases the clinical content
/// of closed accounts whose retention delay has run out. Returns how many rows (and patients)
/// went.
pub async fn housekeeping_once(state: &AppState) -> Result<usize, ApiError> {
    let erased = super::erasure::erase_due_once(state, store::now()).await?;
    let window = TimeDelta::from_std(state.settings.login_window).unwrap_or(TimeDelta::hours(1));
    let refresh_ttl =
        TimeDelta::from_std(state.settings.refresh_token_ttl).unwrap_or(TimeDelta::days(30));
    state
        .store
        .transaction(move |conn| -> Result<usize, ApiError> {
            let now = store::now();
            let known_for = chrono::TimeDelta::days(super::sign_in_throttle::KNOWN_NETWORK_DAYS);
            Ok(sessions::prune_throttles(conn, now - window, now)?
                + sessions::prune_networks(conn, now - known_for)?
                + sessions::prune_refresh_tokens(conn, now - refresh_ttl)?
                + deliveries::prune_feed(conn, now - FEED_RETENTION)?
                + crate::store::mfa::prune_challenges(conn, now)?)
        })
        .await
        .map(|pruned| pruned + erased)
}

/// Runs the missed-check-in sweep every `interval`, and the escalation sweep at least every
/// ten seconds (a critical alert's deadline is minutes, not a sweep interval, away).
pub async fn run_forever(state: AppState, interval: Duration) {
    let escalation_every = interval.min(Duration::from_secs(10));
    let s = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(escalation_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = escalations_once(&s).await {
                tracing::warn!(error = %e, "escalation sweep failed; will retry");
            }
        }
    });
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match missed_check_ins_once(&state).await {
            Ok(n) if n > 0 => tracing::info!(missed_check_ins = n, "sweep"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "missed-check-in sweep failed; will retry"),
        }
        if let Err(e) = housekeeping_once(&state).await {
            tracing::warn!(error = %e, "housekeeping failed; will retry");
        }
    }
}
