//! Patients as their care team sees them: dates given at enrolment and on phase changes, the
//! caseload and its order, the abstinent streak, and chart data.
//!
//! The rules live here so that every view computes them the same way: the caseload, the
//! patient's own summary and the staff summary all count `days_since_last_use` through
//! `domain::risk::patient_context_on`, which the risk engine's context uses too.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};

use crate::auth::{Caller, Role};
use crate::domain::risk;
use crate::domain::validation::FieldError;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::accounts::UserRow;
use crate::store::alerts::CaseloadAlert;
use crate::store::check_ins::{CheckInRow, LatestValues};
use crate::store::patients::{self as store, PatientRow};

use super::audit;
use super::check_ins::local_today;

/// How far back a date before enrolment (or of a phase change) may lie.
pub const MAX_DAYS_BACK: i64 = 365;

/// Checks a date that must lie within the last year and not after `today`.
///
/// `slack_days` allows dates a little after `today` when `today` is someone else's (an
/// invitation is checked in the inviter's timezone, the patient's may be a day ahead).
pub fn check_past_date(
    field: &str,
    date: NaiveDate,
    today: NaiveDate,
    slack_days: i64,
) -> Result<(), FieldError> {
    if date > today + TimeDelta::days(slack_days) {
        Err(FieldError::new(field, "must not be in the future"))
    } else if date < today - TimeDelta::days(MAX_DAYS_BACK) {
        Err(FieldError::new(field, "must be within the last year"))
    } else {
        Ok(())
    }
}

/// Checks the dates of a patient invitation against each other and the inviter's `today`:
/// each within the last year and not in the future, `detox_ended_on` only for a patient past
/// detox and not after the current phase started.
pub fn check_enrolment_dates(
    phase: &str,
    phase_started_on: Option<NaiveDate>,
    detox_ended_on: Option<NaiveDate>,
    today: NaiveDate,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (field, date) in [
        ("phase_started_on", phase_started_on),
        ("detox_ended_on", detox_ended_on),
    ] {
        if let Some(d) = date {
            if let Err(e) = check_past_date(field, d, today, 1) {
                errors.push(e);
            }
        }
    }
    if let Some(ended) = detox_ended_on {
        if phase == "detox" {
            errors.push(FieldError::new(
                "detox_ended_on",
                "does not apply to a patient who is still in detox",
            ));
        } else if let Some(started) = phase_started_on {
            if ended > started {
                errors.push(FieldError::new(
                    "detox_ended_on",
                    "must not be after phase_started_on",
                ));
            } else if phase == "treatment" && started > ended {
                // Treatment is the phase that follows detox: a treatment that started later
                // would leave days in no phase at all.
                errors.push(FieldError::new(
                    "phase_started_on",
                    "for treatment, must be the day detox ended (or be left out)",
                ));
            }
        }
    }
    errors
}

/// The phase history a patient starts with: `(phase, started_on)`, oldest first.
///
/// With `detox_ended_on`, a `detox` span ends that day (so the overdose window counts from
/// it); the current phase starts on `phase_started_on`, else when detox ended, else `today`.
/// An aftercare (or discharged) patient whose phase began after detox ended spent the days
/// between in treatment, the phase that follows detox. Dates after `today` (an inviter a day
/// ahead) are brought back to `today`.
pub fn enrolment_history(
    phase: &str,
    phase_started_on: Option<NaiveDate>,
    detox_ended_on: Option<NaiveDate>,
    today: NaiveDate,
) -> Vec<(String, NaiveDate)> {
    let ended = detox_ended_on.map(|d| d.min(today));
    let started = phase_started_on
        .map(|d| d.min(today))
        .or(ended)
        .unwrap_or(today);
    let mut history = Vec::new();
    if let Some(ended) = ended.filter(|_| phase != "detox") {
        // When detox began is not known; the span records when it ended.
        history.push(("detox".to_owned(), ended));
        if started > ended && phase != "treatment" {
            history.push(("treatment".to_owned(), ended));
        }
    }
    history.push((phase.to_owned(), started));
    history
}

/// Days of the current abstinent streak on the patient's local `today`, today included (null
/// before any check-in or known last use).
///
/// `reported_use_on` must be the most recent reported use on or before `today`: a use
/// reported for tomorrow's date (travel across the date line) does not end today's streak.
pub fn days_since_last_use(
    today: NaiveDate,
    reported_use_on: Option<NaiveDate>,
    enrolment_last_use_on: Option<NaiveDate>,
    first_check_in_on: Option<NaiveDate>,
) -> Option<i64> {
    let tomorrow = today + TimeDelta::days(1);
    let ctx = risk::patient_context_on(
        tomorrow,
        Vec::new(),
        first_check_in_on,
        enrolment_last_use_on,
        reported_use_on.filter(|d| *d <= today),
    );
    risk::abstinent_days(tomorrow, &ctx).map(|d| d.max(0))
}

/// What the caseload ranks a patient by.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Urgency {
    /// The highest unresolved severity rank (0 when none; 4 critical).
    pub severity_rank: i32,
    /// Whether an unresolved alert was escalated.
    pub escalated: bool,
    /// When the oldest alert still waiting for acknowledgement (status `open`) was raised.
    pub oldest_unacknowledged: Option<NaiveDateTime>,
    /// Local days since the last check-in; `None` when the patient never checked in.
    pub days_silent: Option<i64>,
}

/// The caseload order: the highest open severity first, then escalated ones, then the one
/// waiting longest for acknowledgement (any waiting before none), then the longest silence
/// (never checked in is the longest). Ties are left to the caller's stable key.
pub fn by_urgency(a: &Urgency, b: &Urgency) -> Ordering {
    b.severity_rank
        .cmp(&a.severity_rank)
        .then(b.escalated.cmp(&a.escalated))
        .then(match (a.oldest_unacknowledged, b.oldest_unacknowledged) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then(match (a.days_silent, b.days_silent) {
            (Some(x), Some(y)) => y.cmp(&x),
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
}

/// One patient of a caseload, with what the dashboard row shows.
#[derive(Debug, Clone)]
pub struct CaseloadEntry {
    /// The patient's record.
    pub patient: PatientRow,
    /// The patient's account.
    pub user: UserRow,
    /// The patient's local today.
    pub today: NaiveDate,
    /// Whether today's check-in is in.
    pub checked_in_today: bool,
    /// The most recent check-in's headline values.
    pub latest: Option<LatestValues>,
    /// Unresolved alerts.
    pub open_alerts: usize,
    /// What the order is decided by.
    pub urgency: Urgency,
    /// The abstinent streak.
    pub days_since_last_use: Option<i64>,
}

/// The caller's caseload in order: a counsellor's care teams, or an admin's whole
/// organisation. A handful of set-based queries, whatever the number of patients.
pub async fn caseload(state: &AppState, caller: &Caller) -> Result<Vec<CaseloadEntry>, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let c = caller.clone();
    state
        .store
        .run(move |conn| -> Result<Vec<CaseloadEntry>, ApiError> {
            let counsellor = (c.role == Role::Counsellor).then_some(c.user_id.as_str());
            let only = match counsellor {
                Some(id) => Some(store::ids_for_counsellor(conn, id)?),
                None => None,
            };
            let rows = store::list_with_users(conn, &c.organisation_id, only.clone())?;
            let only = only.as_deref();
            let alerts = crate::store::alerts::caseload_alerts(conn, &c.organisation_id, only)?;
            let latest = crate::store::check_ins::latest_values(conn, &c.organisation_id, only)?;
            let todays: HashMap<String, NaiveDate> = rows
                .iter()
                .map(|(p, u)| (p.user_id.clone(), local_today(&u.timezone)))
                .collect();
            let mut dates: Vec<NaiveDate> = todays.values().copied().collect();
            dates.sort();
            dates.dedup();
            let checked_today =
                crate::store::check_ins::dates_in(conn, &c.organisation_id, only, &dates)?;
            // A use reported for a date after the patient's today (across the date line) must
            // not end today's streak: look up the use before it for those few patients.
            let ahead: Vec<String> = rows
                .iter()
                .filter(|(p, _)| {
                    p.last_use_on
                        .zip(todays.get(&p.user_id))
                        .is_some_and(|(u, t)| u > *t)
                })
                .map(|(p, _)| p.user_id.clone())
                .collect();
            let earlier_uses = if ahead.is_empty() {
                Vec::new()
            } else {
                crate::store::check_ins::use_dates(conn, &ahead)?
            };
            let mut entries = assemble(
                rows,
                &todays,
                &alerts,
                &latest,
                &checked_today,
                &earlier_uses,
            );
            entries.sort_by(|a, b| {
                by_urgency(&a.urgency, &b.urgency)
                    .then(a.user.display_name.cmp(&b.user.display_name))
                    .then(a.patient.user_id.cmp(&b.patient.user_id))
            });
            // Each listed patient's access log shows that this caller saw their row.
            let listed: Vec<&str> = entries.iter().map(|e| e.patient.user_id.as_str()).collect();
            audit::record_reads(conn, &c, "caseload.read", "patient", &listed)?;
            Ok(entries)
        })
        .await
}

fn assemble(
    rows: Vec<(PatientRow, UserRow)>,
    todays: &HashMap<String, NaiveDate>,
    alerts: &[CaseloadAlert],
    latest: &[LatestValues],
    checked_today: &[(String, NaiveDate)],
    earlier_uses: &[(String, NaiveDate)],
) -> Vec<CaseloadEntry> {
    let mut by_patient: HashMap<&str, Vec<&CaseloadAlert>> = HashMap::new();
    for a in alerts {
        by_patient.entry(a.patient_id.as_str()).or_default().push(a);
    }
    let latest: HashMap<&str, &LatestValues> =
        latest.iter().map(|l| (l.patient_id.as_str(), l)).collect();
    let checked_today: HashSet<(&str, NaiveDate)> = checked_today
        .iter()
        .map(|(id, d)| (id.as_str(), *d))
        .collect();
    rows.into_iter()
        .map(|(p, u)| {
            let today = todays
                .get(&p.user_id)
                .copied()
                .unwrap_or_else(|| local_today(&u.timezone));
            let mine = by_patient
                .get(p.user_id.as_str())
                .cloned()
                .unwrap_or_default();
            let urgency = Urgency {
                severity_rank: mine.iter().map(|a| a.severity_rank).max().unwrap_or(0),
                escalated: mine.iter().any(|a| a.escalated_at.is_some()),
                oldest_unacknowledged: mine
                    .iter()
                    .filter(|a| a.status == "open")
                    .map(|a| a.created_at)
                    .min(),
                days_silent: p.last_check_in_on.map(|d| (today - d).num_days().max(0)),
            };
            let reported_use = match p.last_use_on {
                Some(d) if d > today => earlier_uses
                    .iter()
                    .filter(|(id, u)| *id == p.user_id && *u <= today)
                    .map(|(_, u)| *u)
                    .max(),
                other => other,
            };
            let days = days_since_last_use(
                today,
                reported_use,
                p.enrolment_last_use_on,
                p.first_check_in_on,
            );
            CaseloadEntry {
                checked_in_today: checked_today.contains(&(p.user_id.as_str(), today)),
                latest: latest.get(p.user_id.as_str()).map(|l| (*l).clone()),
                open_alerts: mine.len(),
                urgency,
                days_since_last_use: days,
                today,
                patient: p,
                user: u,
            }
        })
        .collect()
}

/// One local date of a patient's chart; `None` where no check-in (or no answer).
#[derive(Debug, Clone, PartialEq)]
pub struct TrendDay {
    /// The local date.
    pub date: NaiveDate,
    /// The check-in of that date, if any.
    pub check_in: Option<TrendValues>,
}

/// The charted values of one check-in.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendValues {
    /// Craving, 0–10.
    pub craving: i32,
    /// Mood, 0–10.
    pub mood: i32,
    /// Hours slept, if answered.
    pub sleep_hours: Option<f64>,
    /// Minutes of exercise.
    pub exercise_minutes: i32,
    /// Meals eaten.
    pub meals: i32,
    /// SOWS total, if answered.
    pub withdrawal_score: Option<i32>,
}

/// The largest chart window, in days.
pub const MAX_TREND_DAYS: i64 = 365;
/// The chart window when none is asked for.
pub const DEFAULT_TREND_DAYS: i64 = 35;

/// Checks the chart window.
pub fn trend_days(days: Option<i64>) -> Result<i64, FieldError> {
    match days {
        None => Ok(DEFAULT_TREND_DAYS),
        Some(d) if (1..=MAX_TREND_DAYS).contains(&d) => Ok(d),
        Some(_) => Err(FieldError::new("days", "must be from 1 to 365")),
    }
}

/// One entry per local date from `today - (days - 1)` to `today`, oldest first, filled from
/// `rows` (check-ins of that range, any order).
pub fn trend(today: NaiveDate, days: i64, rows: &[CheckInRow]) -> Vec<TrendDay> {
    let from = today - TimeDelta::days(days - 1);
    let by_date: HashMap<NaiveDate, &CheckInRow> = rows.iter().map(|r| (r.date, r)).collect();
    from.iter_days()
        .take_while(|d| *d <= today)
        .map(|date| TrendDay {
            date,
            check_in: by_date.get(&date).map(|r| TrendValues {
                craving: r.craving,
                mood: r.mood,
                sleep_hours: r.sleep_hours,
                exercise_minutes: r.exercise_minutes,
                meals: r.meals,
                withdrawal_score: r.withdrawal_score,
            }),
        })
        .collect()
}

/// A patient's chart data for the last `days` local days (counsellors on the care team and
/// admins); audited.
pub async fn trends(
    state: &AppState,
    caller: &Caller,
    patient_id: String,
    days: i64,
) -> Result<Vec<TrendDay>, ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let c = caller.clone();
    state
        .store
        .run(move |conn| -> Result<Vec<TrendDay>, ApiError> {
            crate::auth::policy::reachable_patient(conn, &c, &patient_id)?;
            let tz = crate::store::accounts::find_user(conn, &patient_id)?
                .map(|u| u.timezone)
                .unwrap_or_default();
            let today = local_today(&tz);
            let rows = crate::store::check_ins::range(
                conn,
                &patient_id,
                today - TimeDelta::days(days - 1),
                today,
            )?;
            audit::record(
                conn,
                &c,
                audit::Event::patient("trends.read", &patient_id, "patient", Some(&patient_id)),
            )?;
            Ok(trend(today, days, &rows))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn past_dates_reach_back_one_year_and_not_past_today() {
        let today = d("2026-06-30");
        assert!(check_past_date("f", today, today, 0).is_ok());
        assert!(check_past_date("f", d("2026-07-01"), today, 0).is_err());
        assert!(check_past_date("f", d("2026-07-01"), today, 1).is_ok());
        assert!(check_past_date("f", d("2026-07-02"), today, 1).is_err());
        assert!(check_past_date("f", d("2025-06-30"), today, 0).is_ok());
        let e = check_past_date("started_on", d("2025-06-29"), today, 0).unwrap_err();
        assert_eq!(e.field, "started_on");
    }

    #[test]
    fn enrolment_dates_must_be_coherent() {
        let today = d("2026-06-30");
        let fields = |phase, s: Option<&str>, e: Option<&str>| -> Vec<String> {
            check_enrolment_dates(phase, s.map(d), e.map(d), today)
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert!(fields("treatment", None, Some("2026-06-20")).is_empty());
        assert!(fields("aftercare", Some("2026-06-25"), Some("2026-06-20")).is_empty());
        assert!(fields("aftercare", Some("2026-06-20"), Some("2026-06-20")).is_empty());
        assert_eq!(
            fields("aftercare", Some("2026-06-19"), Some("2026-06-20")),
            vec!["detox_ended_on"]
        );
        assert_eq!(
            fields("detox", None, Some("2026-06-20")),
            vec!["detox_ended_on"]
        );
        assert_eq!(
            fields("treatment", Some("2026-06-25"), Some("2026-06-20")),
            vec!["phase_started_on"]
        );
        assert_eq!(
            fields("aftercare", Some("2026-07-02"), None),
            vec!["phase_started_on"]
        );
        assert_eq!(
            fields("aftercare", None, Some("2025-06-01")),
            vec!["detox_ended_on"]
        );
    }

    #[test]
    fn enrolment_history_ends_detox_when_it_ended() {
        let today = d("2026-06-30");
        let h = |phase, s: Option<&str>, e: Option<&str>| -> Vec<(String, String)> {
            enrolment_history(phase, s.map(d), e.map(d), today)
                .into_iter()
                .map(|(p, on)| (p, on.to_string()))
                .collect()
        };
        let pair = |p: &str, on: &str| (p.to_owned(), on.to_owned());
        assert_eq!(
            h("aftercare", None, None),
            vec![pair("aftercare", "2026-06-30")]
        );
        assert_eq!(
            h("detox", Some("2026-06-28"), None),
            vec![pair("detox", "2026-06-28")]
        );
        assert_eq!(
            h("treatment", None, Some("2026-06-20")),
            vec![pair("detox", "2026-06-20"), pair("treatment", "2026-06-20")]
        );
        assert_eq!(
            h("aftercare", Some("2026-06-25"), Some("2026-06-20")),
            vec![
                pair("detox", "2026-06-20"),
                pair("treatment", "2026-06-20"),
                pair("aftercare", "2026-06-25")
            ]
        );
        // An inviter a day ahead: nothing starts after the patient's today.
        assert_eq!(
            h("aftercare", Some("2026-07-01"), None),
            vec![pair("aftercare", "2026-06-30")]
        );
    }

    #[test]
    fn a_use_reported_for_tomorrow_does_not_end_todays_streak() {
        let today = d("2026-06-30");
        // First check-in five days ago, no use: six days, today included.
        assert_eq!(
            days_since_last_use(today, None, None, Some(d("2026-06-25"))),
            Some(6)
        );
        assert_eq!(
            days_since_last_use(today, Some(d("2026-07-01")), None, Some(d("2026-06-25"))),
            Some(6)
        );
        // A use yesterday: today is the first abstinent day; a use today: none yet.
        assert_eq!(
            days_since_last_use(today, Some(d("2026-06-29")), None, Some(d("2026-06-25"))),
            Some(1)
        );
        assert_eq!(
            days_since_last_use(today, Some(today), None, Some(d("2026-06-25"))),
            Some(0)
        );
        // Last use given at enrolment, no check-in yet.
        assert_eq!(
            days_since_last_use(today, None, Some(d("2026-06-27")), None),
            Some(3)
        );
        assert_eq!(days_since_last_use(today, None, None, None), None);
    }

    fn urgency(rank: i32, escalated: bool, waiting: Option<i64>, silent: Option<i64>) -> Urgency {
        let base = d("2026-06-30").and_hms_opt(0, 0, 0).unwrap();
        Urgency {
            severity_rank: rank,
            escalated,
            oldest_unacknowledged: waiting.map(|m| base + TimeDelta::minutes(m)),
            days_silent: silent,
        }
    }

    #[test]
    fn the_caseload_order_follows_severity_escalation_waiting_and_silence() {
        use Ordering::{Greater, Less};
        let cmp = |a: &Urgency, b: &Urgency| by_urgency(a, b);
        // Severity beats everything else.
        assert_eq!(
            cmp(
                &urgency(4, false, None, Some(0)),
                &urgency(3, true, Some(0), None)
            ),
            Less
        );
        // Escalated first at equal severity.
        assert_eq!(
            cmp(
                &urgency(3, true, None, Some(0)),
                &urgency(3, false, Some(0), None)
            ),
            Less
        );
        // The alert waiting longer for acknowledgement first; any waiting before none.
        assert_eq!(
            cmp(
                &urgency(3, false, Some(1), Some(0)),
                &urgency(3, false, Some(2), None)
            ),
            Less
        );
        assert_eq!(
            cmp(
                &urgency(3, false, None, None),
                &urgency(3, false, Some(2), Some(0))
            ),
            Greater
        );
        // The longer silence first; never checked in is the longest.
        assert_eq!(
            cmp(
                &urgency(0, false, None, Some(3)),
                &urgency(0, false, None, Some(2))
            ),
            Less
        );
        assert_eq!(
            cmp(
                &urgency(0, false, None, None),
                &urgency(0, false, None, Some(300))
            ),
            Less
        );
        assert_eq!(
            cmp(
                &urgency(0, false, None, Some(2)),
                &urgency(0, false, None, Some(2))
            ),
            Ordering::Equal
        );
    }

    #[test]
    fn the_trend_has_one_entry_per_day_oldest_first() {
        let today = d("2026-06-30");
        let t = trend(today, 3, &[]);
        let dates: Vec<String> = t.iter().map(|x| x.date.to_string()).collect();
        assert_eq!(dates, vec!["2026-06-28", "2026-06-29", "2026-06-30"]);
        assert!(t.iter().all(|x| x.check_in.is_none()));
        assert_eq!(trend(today, 1, &[]).len(), 1);
        assert_eq!(trend_days(None).unwrap(), 35);
        assert_eq!(trend_days(Some(1)).unwrap(), 1);
        assert_eq!(trend_days(Some(365)).unwrap(), 365);
        assert!(trend_days(Some(0)).is_err());
        assert!(trend_days(Some(366)).is_err());
    }
}
