//! Background sweeps: missed check-ins, escalation of unacknowledged alerts, housekeeping.
//!
//! Each sweep reads only what is due (indexed `*_due_at` columns), so its cost follows the
//! patients and alerts that need attention, not all of them. Every item is handled in its own
//! transaction under a row lock (PostgreSQL `FOR UPDATE SKIP LOCKED`), so every process
//! behind the load balancer can run the sweeps safely.

use std::time::Duration;

use chrono::TimeDelta;

use crate::domain::risk::{self, missed_check_ins_finding};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{self, accounts, alerts, deliveries, patients, sessions};

use super::check_ins::{local_midnight_utc, local_today, organisation_policy, patient_overrides};

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
pub async fn missed_check_ins_once(state: &AppState) -> Result<usize, ApiError> {
    let mut count = 0;
    let now = store::now();
    let due = state
        .store
        .run(move |conn| patients::due_for_missed_check(conn, now, BATCH).map_err(ApiError::from))
        .await?;
    for id in due {
        let settings = state.settings.clone();
        let raised = state
            .store
            .transaction(move |conn| -> Result<bool, ApiError> {
                let now = store::now();
                let Some(p) = patients::lock_due(conn, &id, now)? else {
                    return Ok(false);
                };
                let Some(user) = accounts::find_user(conn, &id)? else {
                    return Ok(false);
                };
                let org = accounts::find_organisation(conn, &p.organisation_id)?;
                let policy = organisation_policy(&org).merged(&patient_overrides(&p));
                let today = local_today(&user.timezone);
                let last = super::check_ins::silence_since(conn, &p, &user.timezone)?;
                let finding = if user.disabled || p.phase == "discharged" {
                    None
                } else {
                    missed_check_ins_finding(last, today, &policy)
                };
                let next = match &finding {
                    Some(f) => risk::next_missed_check_in_due_after(last, f.severity, &policy),
                    None => risk::next_missed_check_in_due(last, &policy).filter(|d| *d > today),
                };
                patients::set_missed_due(
                    conn,
                    &id,
                    next.map(|d| local_midnight_utc(&user.timezone, d)),
                )?;
                if let Some(f) = &finding {
                    super::alerts::raise(conn, &settings, &p, f, today, &policy, now)?;
                    super::audit::record_anonymous(
                        conn,
                        Some(&p.organisation_id),
                        None,
                        "missed_check_ins.raised",
                        "success",
                        None,
                    )?;
                }
                Ok(finding.is_some())
            })
            .await?;
        count += usize::from(raised);
    }
    Ok(count)
}

/// Escalates the open alerts whose acknowledgement deadline passed; returns how many.
pub async fn escalations_once(state: &AppState) -> Result<usize, ApiError> {
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
    Ok(count)
}

/// How long live-feed entries are kept for reconnecting streams.
const FEED_RETENTION: TimeDelta = TimeDelta::days(7);

/// Deletes what has outlived its use: spent login-throttle counters, refresh tokens long
/// expired, old live-feed entries. Returns how many rows went.
pub async fn housekeeping_once(state: &AppState) -> Result<usize, ApiError> {
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
                + deliveries::prune_feed(conn, now - FEED_RETENTION)?)
        })
        .await
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
