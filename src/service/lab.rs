//! The policy lab's backtests: a policy replayed over recorded history, through the same
//! engine, sweep and episode code as live traffic ([`crate::lab::replay`]), beside how
//! counsellors resolved the real alerts of the same stretch.
//!
//! The history of a batch of patients is read with one query per kind (check-ins, phases,
//! what came before), never one per patient; the replay itself runs off the async runtime.

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, TimeDelta};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{policy as access, Caller};
use crate::domain::policy::{Phase, PolicyOverrides, RiskPolicy, RuleId};
use crate::domain::risk::PhaseSpan;
use crate::domain::validation::FieldError;
use crate::error::ApiError;
use crate::lab::replay::{self, Prior, ReplayAlert, ReplayPatient, RuleStats};
use crate::state::AppState;
use crate::store::accounts::UserRow;
use crate::store::patients::{self, PatientRow};
use crate::store::{accounts, lab as lab_store, DbConnection};

use super::audit;
use super::check_ins::{day_record, local_today, organisation_policy, patient_overrides, tz};

/// The longest stretch one backtest replays (five years).
pub const MAX_RANGE_DAYS: i64 = 5 * 366;
/// The most patients one backtest names.
pub const MAX_PATIENT_IDS: usize = 1000;
/// The most patient-days one backtest replays (2,000 patient-years).
pub const MAX_PATIENT_DAYS: i64 = 2000 * 365;
/// The longest an alert may be assumed to stay open.
pub const MAX_RESOLVED_AFTER_DAYS: u32 = 90;
/// Patients per batch read.
const BATCH: usize = 500;

/// How counsellors resolved the real alerts a rule led.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Outcomes {
    /// Resolved after contacting the patient.
    pub contacted: u64,
    /// Resolved without reaching the patient.
    pub no_contact: u64,
    /// Resolved as a false alarm.
    pub false_alarm: u64,
    /// Resolved by calling emergency services.
    pub emergency_services: u64,
    /// Resolved otherwise.
    pub other: u64,
    /// Not resolved (open or acknowledged).
    pub unresolved: u64,
}

/// What a policy would have raised over a stretch of history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Backtest {
    /// The first local date replayed.
    pub from: NaiveDate,
    /// The last local date replayed.
    pub to: NaiveDate,
    /// Patients replayed.
    pub patients: u64,
    /// Patient-weeks replayed (days enrolled and not discharged, over 7).
    pub patient_weeks: f64,
    /// Alerts per patient-week.
    pub alerts_per_patient_week: f64,
    /// The alerts the policy would have raised, by patient then date.
    pub alerts: Vec<ReplayAlert>,
    /// Per rule: its findings, the patients it fired for, findings per patient-week and by
    /// severity. Every rule is listed.
    pub per_rule: BTreeMap<String, RuleStats>,
    /// Per rule: how counsellors resolved the real alerts it led that were created in the
    /// stretch (UTC dates). Every rule is listed.
    pub outcomes: BTreeMap<String, Outcomes>,
}

/// An organisation backtest's parameters, validated by [`organisation_backtest`].
#[derive(Debug, Clone)]
pub struct OrganisationBacktest {
    /// The candidate policy (None: the current one).
    pub policy: Option<RiskPolicy>,
    /// First local date.
    pub from: NaiveDate,
    /// Last local date.
    pub to: NaiveDate,
    /// Only these patients (None: all of the organisation's).
    pub patient_ids: Option<Vec<String>>,
    /// Days after opening an alert counts as resolved (default 1).
    pub assume_resolved_after_days: Option<u32>,
}

fn check_range(from: NaiveDate, to: NaiveDate) -> Result<(), ApiError> {
    if to < from {
        return Err(ApiError::field("to", "must not be before from"));
    }
    if (to - from).num_days() + 1 > MAX_RANGE_DAYS {
        return Err(ApiError::field(
            "to",
            format!("a backtest covers at most {MAX_RANGE_DAYS} days"),
        ));
    }
    Ok(())
}

fn prefixed(prefix: &str, errors: Vec<FieldError>) -> ApiError {
    ApiError::Validation(
        errors
            .into_iter()
            .map(|e| FieldError::new(format!("{prefix}.{}", e.field), e.message))
            .collect(),
    )
}

/// Replays a policy (default: the organisation's current one; each patient's overrides
/// merged over it) over the organisation's history, or that of the patients named.
pub async fn organisation_backtest(
    state: &AppState,
    caller: &Caller,
    req: OrganisationBacktest,
) -> Result<Backtest, ApiError> {
    check_range(req.from, req.to)?;
    if let Some(p) = &req.policy {
        p.validate().map_err(|e| prefixed("policy", e))?;
    }
    let resolve = req.assume_resolved_after_days.unwrap_or(1);
    if !(1..=MAX_RESOLVED_AFTER_DAYS).contains(&resolve) {
        return Err(ApiError::field(
            "assume_resolved_after_days",
            format!("must be 1 to {MAX_RESOLVED_AFTER_DAYS}"),
        ));
    }
    if let Some(ids) = &req.patient_ids {
        if ids.len() > MAX_PATIENT_IDS {
            return Err(ApiError::field(
                "patient_ids",
                format!("at most {MAX_PATIENT_IDS} patients"),
            ));
        }
    }
    let c = caller.clone();
    let (from, to) = (req.from, req.to);
    let (patients, outcomes) = state
        .store
        .transaction(move |conn| -> Result<_, ApiError> {
            let org = accounts::find_organisation(conn, &c.organisation_id)?;
            let base = req.policy.unwrap_or_else(|| organisation_policy(&org));
            let rows = patients::list_with_users(conn, &c.organisation_id, req.patient_ids.clone())?;
            if let Some(ids) = &req.patient_ids {
                if let Some(i) = ids
                    .iter()
                    .position(|id| !rows.iter().any(|(p, _)| &p.user_id == id))
                {
                    return Err(ApiError::field(
                        format!("patient_ids[{i}]"),
                        "no such patient in your organisation",
                    ));
                }
            }
            let days = (to - from).num_days() + 1;
            if days.saturating_mul(rows.len() as i64) > MAX_PATIENT_DAYS {
                return Err(ApiError::field(
                    "patient_ids",
                    format!(
                        "{} patients over {days} days is more than a backtest replays \
                         ({MAX_PATIENT_DAYS} patient-days): name fewer patients or a shorter stretch",
                        rows.len()
                    ),
                ));
            }
            audit::record(
                conn,
                &c,
                audit::Event::other(
                    "risk_policy.backtest",
                    "organisation",
                    Some(&c.organisation_id),
                ),
            )?;
            // The replay reads each patient's history: each one's access log shows it.
            let replayed: Vec<&str> = rows.iter().map(|(p, _)| p.user_id.as_str()).collect();
            audit::record_reads(conn, &c, "risk_policy.backtest", "patient", &replayed)?;
            let patients = load(conn, rows, &base, None, from, to)?;
            let outcomes = outcomes(conn, &c.organisation_id, req.patient_ids.as_deref(), from, to)?;
            Ok((patients, outcomes))
        })
        .await?;
    run(patients, outcomes, from, to, resolve).await
}

/// Previews a patient's overrides on that patient's history (default: the last 90 days).
pub async fn patient_backtest(
    state: &AppState,
    caller: &Caller,
    patient_id: String,
    overrides: PolicyOverrides,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Backtest, ApiError> {
    let c = caller.clone();
    let (patients, outcomes, from, to) = state
        .store
        .transaction(move |conn| -> Result<_, ApiError> {
            let p = access::reachable_patient(conn, &c, &patient_id)?;
            let Some((p, user)) = patients::find_with_user(conn, &p.user_id)? else {
                return Err(ApiError::NotFound);
            };
            let to = to.unwrap_or_else(|| local_today(&user.timezone));
            let from = from.unwrap_or(to - TimeDelta::days(89));
            check_range(from, to)?;
            let org = accounts::find_organisation(conn, &p.organisation_id)?;
            let base = organisation_policy(&org);
            base.merged(&overrides)
                .validate()
                .map_err(|e| prefixed("overrides", e))?;
            audit::record(
                conn,
                &c,
                audit::Event::patient(
                    "risk_policy.backtest",
                    &patient_id,
                    "patient",
                    Some(&patient_id),
                ),
            )?;
            let ids = [patient_id.clone()];
            let patients = load(conn, vec![(p, user)], &base, Some(&overrides), from, to)?;
            let outcomes = outcomes(conn, &org.id, Some(&ids), from, to)?;
            Ok((patients, outcomes, from, to))
        })
        .await?;
    run(patients, outcomes, from, to, 1).await
}

async fn run(
    patients: Vec<ReplayPatient>,
    outcomes: BTreeMap<String, Outcomes>,
    from: NaiveDate,
    to: NaiveDate,
    resolve: u32,
) -> Result<Backtest, ApiError> {
    let r = actix_web::web::block(move || replay::replay(&patients, from, to, resolve)).await?;
    Ok(Backtest {
        from,
        to,
        patients: r.patients,
        patient_weeks: r.patient_weeks,
        alerts_per_patient_week: r.alerts_per_patient_week,
        alerts: r.alerts,
        per_rule: r.per_rule,
        outcomes,
    })
}

/// The replay's view of a batch of patients: their check-ins from the policy's history window
/// before `from` up to `to`, their phases and what came before, a few queries per batch.
/// `overrides` replaces each patient's stored overrides when given (a preview).
fn load(
    conn: &mut DbConnection,
    rows: Vec<(PatientRow, UserRow)>,
    base: &RiskPolicy,
    overrides: Option<&PolicyOverrides>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<ReplayPatient>, ApiError> {
    let mut out = Vec::with_capacity(rows.len());
    for batch in rows.chunks(BATCH) {
        let policies: Vec<RiskPolicy> = batch
            .iter()
            .map(|(p, _)| match overrides {
                Some(o) => base.merged(o),
                None => base.merged(&patient_overrides(p)),
            })
            .collect();
        let window = policies
            .iter()
            .map(RiskPolicy::history_window_days)
            .max()
            .unwrap_or(14);
        let start = from - TimeDelta::days(window);
        let ids: Vec<String> = batch.iter().map(|(p, _)| p.user_id.clone()).collect();
        let mut check_ins: HashMap<String, Vec<_>> = HashMap::new();
        for r in lab_store::check_ins_of(conn, &ids, start, to)? {
            check_ins
                .entry(r.patient_id.clone())
                .or_default()
                .push(day_record(&r));
        }
        let mut phases: HashMap<String, Vec<PhaseSpan>> = HashMap::new();
        for h in lab_store::phase_histories(conn, &ids)? {
            if let Some(phase) = Phase::parse(&h.phase) {
                phases.entry(h.patient_id).or_default().push(PhaseSpan {
                    phase,
                    started_on: h.started_on,
                });
            }
        }
        let last: HashMap<String, Option<NaiveDate>> =
            lab_store::last_check_in_before(conn, &ids, start)?
                .into_iter()
                .collect();
        let used: HashMap<String, Option<NaiveDate>> =
            lab_store::last_use_before(conn, &ids, start)?
                .into_iter()
                .collect();
        for ((p, user), policy) in batch.iter().zip(policies) {
            let id = &p.user_id;
            let joined = p
                .created_at
                .and_utc()
                .with_timezone(&tz(&user.timezone))
                .date_naive();
            out.push(ReplayPatient {
                patient_id: id.clone(),
                policy,
                phase_history: phases.remove(id).unwrap_or_default(),
                // In care from enrolment, or from the first check-in imported from the
                // clinic's earlier system when that is earlier.
                enrolled_on: p.first_check_in_on.map_or(joined, |f| f.min(joined)),
                joined_on: joined,
                enrolment_last_use: p.enrolment_last_use_on,
                check_ins: check_ins.remove(id).unwrap_or_default(),
                prior: Prior {
                    first_check_in: p.first_check_in_on,
                    last_check_in: last.get(id).copied().flatten(),
                    last_use: used.get(id).copied().flatten(),
                },
            });
        }
    }
    Ok(out)
}

/// How the real alerts created in the stretch (UTC dates) were resolved, by leading rule.
fn outcomes(
    conn: &mut DbConnection,
    organisation_id: &str,
    ids: Option<&[String]>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BTreeMap<String, Outcomes>, ApiError> {
    let mut out: BTreeMap<String, Outcomes> = RuleId::ALL
        .iter()
        .map(|r| (r.as_str().to_string(), Outcomes::default()))
        .collect();
    let start = from.and_hms_opt(0, 0, 0).unwrap_or_default();
    let until = (to + TimeDelta::days(1))
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default();
    for (rule, status, outcome) in
        lab_store::alert_outcomes(conn, organisation_id, ids, start, until)?
    {
        let o = out.entry(rule).or_default();
        if status != "resolved" {
            o.unresolved += 1;
            continue;
        }
        match outcome.as_deref() {
            Some("contacted") => o.contacted += 1,
            Some("no_contact") => o.no_contact += 1,
            Some("false_alarm") => o.false_alarm += 1,
            Some("emergency_services") => o.emergency_services += 1,
            _ => o.other += 1,
        }
    }
    Ok(out)
}
