//! Day-by-day replay of a policy over a patient's history.
//!
//! Each local date is replayed as it happened live: first the missed-check-in sweep (which
//! runs at local midnight, so before that day's check-in), then the day's check-in evaluated
//! by [`risk::evaluate_check_in`] over the policy's history window. Findings go through
//! [`Episode`], as live: at most one unresolved alert per patient, which every later finding
//! joins. No counsellor acts in a replay, so an alert counts as resolved
//! `assume_resolved_after_days` after the date it opened; the next finding opens a new one.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeDelta};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::episode::Episode;
use crate::domain::policy::{Phase, RiskPolicy, RuleId, Severity};
use crate::domain::risk::{self, DayRecord, Finding, PhaseSpan};

/// One patient's history, as the replay reads it.
#[derive(Debug, Clone)]
pub struct ReplayPatient {
    /// The patient's id.
    pub patient_id: String,
    /// The effective policy (organisation policy with the patient's overrides merged).
    pub policy: RiskPolicy,
    /// Phases, oldest first.
    pub phase_history: Vec<PhaseSpan>,
    /// The first local date the patient is in care for the replay (enrolment, or an earlier
    /// imported check-in).
    pub enrolled_on: NaiveDate,
    /// The local date the patient joined aftercare: as live, a silence never counts from
    /// before it (imported history that ended before enrolment is not a silence).
    pub joined_on: NaiveDate,
    /// The last use given at enrolment.
    pub enrolment_last_use: Option<NaiveDate>,
    /// Check-ins by local date, one per date, oldest first. They need only reach back the
    /// policy's history window before the range; [`Prior`] tells what came before them.
    pub check_ins: Vec<DayRecord>,
    /// What is known of the history before `check_ins` (all None when it is complete).
    pub prior: Prior,
}

/// The facts of the history before the check-ins given, which the engine and the sweep read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prior {
    /// The patient's first check-in ever.
    pub first_check_in: Option<NaiveDate>,
    /// The last check-in before those given.
    pub last_check_in: Option<NaiveDate>,
    /// The last check-in reporting use before those given.
    pub last_use: Option<NaiveDate>,
}

/// One firing of a rule within a replayed alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReplayFinding {
    /// The rule.
    pub rule: RuleId,
    /// Its severity that day.
    pub severity: Severity,
    /// The local date it fired.
    pub date: NaiveDate,
}

/// An alert the policy would have raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReplayAlert {
    /// The patient.
    #[schema(format = Uuid)]
    pub patient_id: String,
    /// The local date its first finding fired.
    pub opened_on: NaiveDate,
    /// The highest severity of its findings.
    pub severity: Severity,
    /// The rules involved, in the order they joined.
    pub rules: Vec<RuleId>,
    /// Every firing that opened or joined it, oldest first.
    pub findings: Vec<ReplayFinding>,
}

/// Counts of findings by severity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct BySeverity {
    /// Critical findings.
    pub critical: u64,
    /// High findings.
    pub high: u64,
    /// Warning findings.
    pub warning: u64,
    /// Info findings.
    pub info: u64,
}

impl BySeverity {
    fn add(&mut self, s: Severity) {
        match s {
            Severity::Critical => self.critical += 1,
            Severity::High => self.high += 1,
            Severity::Warning => self.warning += 1,
            Severity::Info => self.info += 1,
        }
    }
}

/// What one rule contributed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RuleStats {
    /// How many times it fired.
    pub findings: u64,
    /// How many patients it fired for.
    pub patients: u64,
    /// Firings per patient-week replayed.
    pub per_patient_week: f64,
    /// Firings by severity.
    pub by_severity: BySeverity,
}

/// The outcome of a replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replay {
    /// Patients replayed.
    pub patients: u64,
    /// Patient-weeks replayed: days enrolled and not discharged within the range, over 7.
    pub patient_weeks: f64,
    /// Alerts per patient-week.
    pub alerts_per_patient_week: f64,
    /// The alerts, by patient then date.
    pub alerts: Vec<ReplayAlert>,
    /// Per rule (by wire name), the rules that fired.
    pub per_rule: BTreeMap<String, RuleStats>,
}

/// The one unresolved alert of a patient during the replay.
struct Open {
    episode: Episode,
    opened_on: NaiveDate,
    findings: Vec<ReplayFinding>,
}

impl Open {
    fn close(self, patient_id: &str) -> ReplayAlert {
        ReplayAlert {
            patient_id: patient_id.to_string(),
            opened_on: self.opened_on,
            severity: self.episode.severity(),
            rules: self.episode.rules(),
            findings: self.findings,
        }
    }
}

/// A patient's alert as the replay goes: findings join it until it counts as resolved.
struct Episodes<'a> {
    patient_id: &'a str,
    resolve_after: TimeDelta,
    open: Option<Open>,
    alerts: Vec<ReplayAlert>,
}

impl Episodes<'_> {
    fn record(&mut self, f: &Finding, on: NaiveDate) {
        if let Some(o) = self.open.take() {
            if on >= o.opened_on + self.resolve_after {
                self.alerts.push(o.close(self.patient_id));
            } else {
                self.open = Some(o);
            }
        }
        let hit = ReplayFinding {
            rule: f.rule,
            severity: f.severity,
            date: on,
        };
        match &mut self.open {
            Some(o) => {
                o.episode.join(f, on);
                o.findings.push(hit);
            }
            None => {
                self.open = Some(Open {
                    episode: Episode::open(f, on),
                    opened_on: on,
                    findings: vec![hit],
                })
            }
        }
    }

    fn finish(mut self) -> Vec<ReplayAlert> {
        if let Some(o) = self.open.take() {
            self.alerts.push(o.close(self.patient_id));
        }
        self.alerts
    }
}

/// The phase a date falls in, from a history sorted oldest first.
fn spans_until(history: &[PhaseSpan], on: NaiveDate) -> usize {
    history.partition_point(|s| s.started_on <= on)
}

/// Replays one patient over `from..=to`; returns the alerts and the active days replayed.
pub fn replay_patient(
    p: &ReplayPatient,
    from: NaiveDate,
    to: NaiveDate,
    assume_resolved_after_days: u32,
) -> (Vec<ReplayAlert>, u64) {
    let policy = &p.policy;
    let window = policy.history_window_days();
    let recs = &p.check_ins;
    let mut eps = Episodes {
        patient_id: &p.patient_id,
        resolve_after: TimeDelta::days(i64::from(assume_resolved_after_days.max(1))),
        open: None,
        alerts: Vec::new(),
    };
    let start = from.max(p.enrolled_on);
    if start > to {
        return (Vec::new(), 0);
    }
    let first_check_in = match (p.prior.first_check_in, recs.first().map(|r| r.date)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };

    // Where the replay starts in the history.
    let mut i = recs.partition_point(|r| r.date < start);
    let mut lo = recs.partition_point(|r| r.date < start - TimeDelta::days(window));
    let mut last_check_in = i
        .checked_sub(1)
        .map(|k| recs[k].date)
        .or(p.prior.last_check_in);
    let mut reported_use = recs[..i]
        .iter()
        .rev()
        .find(|r| r.used_substance)
        .map(|r| r.date)
        .or(p.prior.last_use);
    let mut n_spans = spans_until(&p.phase_history, start);

    // The sweep's schedule as it stood the day before the replay starts: planned after the
    // last check-in (or enrolment), then stepped as the sweep stepped it, unrecorded.
    let discharged = |n: usize| n > 0 && p.phase_history[n - 1].phase == Phase::Discharged;
    let silence = |last: Option<NaiveDate>, n: usize| {
        risk::silence_since_on(last, p.joined_on, &p.phase_history[..n])
    };
    let sweep = |last: NaiveDate, today: NaiveDate| {
        let finding = risk::missed_check_ins_finding(last, today, policy);
        let next = match &finding {
            Some(f) => risk::next_missed_check_in_due_after(last, f.severity, policy),
            None => risk::next_missed_check_in_due(last, policy).filter(|d| *d > today),
        };
        (finding, next)
    };
    let mut next_due = if discharged(n_spans) {
        None
    } else {
        risk::next_missed_check_in_due(silence(last_check_in, n_spans), policy)
    };
    while let Some(due) = next_due.filter(|d| *d < start) {
        next_due = sweep(silence(last_check_in, n_spans), due).1;
    }

    let mut active_days = 0u64;
    let mut day = start;
    while day <= to {
        // A phase that starts today.
        let n = spans_until(&p.phase_history, day);
        if n != n_spans {
            let was_discharged = discharged(n_spans);
            n_spans = n;
            if was_discharged && !discharged(n) {
                // Back in care: the review is planned again from the return.
                next_due = risk::next_missed_check_in_due(silence(last_check_in, n), policy);
            }
        }
        let is_discharged = discharged(n_spans);
        if !is_discharged {
            active_days += 1;
        }
        // The sweep, at local midnight.
        if next_due.is_some_and(|d| d <= day) {
            let last = silence(last_check_in, n_spans);
            let (finding, next) = if is_discharged {
                (None, None)
            } else {
                sweep(last, day)
            };
            next_due = next;
            if let Some(f) = finding {
                eps.record(&f, day);
            }
        }
        // The day's check-in.
        if let Some(current) = recs.get(i).filter(|r| r.date == day) {
            let since = day - TimeDelta::days(window);
            while recs[lo].date < since {
                lo += 1;
            }
            let ctx = risk::patient_context_on(
                day,
                p.phase_history[..n_spans].to_vec(),
                first_check_in,
                p.enrolment_last_use,
                reported_use,
            );
            for f in risk::evaluate_check_in(current, &recs[lo..i], &ctx, policy) {
                eps.record(&f, day);
            }
            if current.used_substance {
                reported_use = Some(day);
            }
            last_check_in = Some(day);
            next_due = risk::next_missed_check_in_due(day, policy);
            i += 1;
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    (eps.finish(), active_days)
}

/// Replays every patient over `from..=to` and sums up per rule.
pub fn replay(
    patients: &[ReplayPatient],
    from: NaiveDate,
    to: NaiveDate,
    assume_resolved_after_days: u32,
) -> Replay {
    let mut alerts = Vec::new();
    let mut days = 0u64;
    for p in patients {
        let (a, d) = replay_patient(p, from, to, assume_resolved_after_days);
        alerts.extend(a);
        days += d;
    }
    summarise(patients.len() as u64, days, alerts)
}

/// The per-rule figures of a set of replayed alerts.
pub fn summarise(patients: u64, active_days: u64, alerts: Vec<ReplayAlert>) -> Replay {
    let patient_weeks = active_days as f64 / 7.0;
    let per_week = |n: u64| {
        if patient_weeks > 0.0 {
            n as f64 / patient_weeks
        } else {
            0.0
        }
    };
    // Every rule is listed, those that never fired with zeros, so policies compare side by side.
    let mut counts: BTreeMap<&'static str, (u64, BySeverity, Vec<&str>)> = RuleId::ALL
        .iter()
        .map(|r| (r.as_str(), Default::default()))
        .collect();
    for a in &alerts {
        for f in &a.findings {
            let e = counts.entry(f.rule.as_str()).or_default();
            e.0 += 1;
            e.1.add(f.severity);
            if e.2.last() != Some(&a.patient_id.as_str()) {
                e.2.push(&a.patient_id);
            }
        }
    }
    let per_rule = counts
        .into_iter()
        .map(|(rule, (findings, by_severity, mut ids))| {
            ids.sort_unstable();
            ids.dedup();
            (
                rule.to_string(),
                RuleStats {
                    findings,
                    patients: ids.len() as u64,
                    per_patient_week: per_week(findings),
                    by_severity,
                },
            )
        })
        .collect();
    Replay {
        patients,
        patient_weeks,
        alerts_per_patient_week: per_week(alerts.len() as u64),
        alerts,
        per_rule,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::risk::testing::{date, day, with};

    fn patient(check_ins: Vec<DayRecord>) -> ReplayPatient {
        ReplayPatient {
            patient_id: "p".into(),
            policy: RiskPolicy::default(),
            phase_history: vec![PhaseSpan {
                phase: Phase::Treatment,
                started_on: date(1),
            }],
            enrolled_on: date(1),
            joined_on: date(1),
            enrolment_last_use: None,
            check_ins,
            prior: Prior::default(),
        }
    }

    fn days(from: u32, to: u32) -> Vec<DayRecord> {
        (from..=to).map(day).collect()
    }

    fn rules(a: &ReplayAlert) -> Vec<&'static str> {
        a.rules.iter().map(|r| r.as_str()).collect()
    }

    #[test]
    fn a_calm_month_raises_nothing_and_counts_its_weeks() {
        let r = replay(&[patient(days(1, 28))], date(1), date(28), 1);
        assert!(r.alerts.is_empty());
        assert_eq!(r.patient_weeks, 4.0);
        assert_eq!(r.alerts_per_patient_week, 0.0);
        assert_eq!(r.per_rule.len(), RuleId::ALL.len());
        assert!(r
            .per_rule
            .values()
            .all(|s| s.findings == 0 && s.patients == 0));
    }

    #[test]
    fn one_bad_day_is_one_alert_with_every_rule_that_fired() {
        let mut h = days(1, 14);
        h[9] = with(10, |d| {
            d.craving = 9;
            d.meals = 1;
            d.irritability = Some(8);
            d.sleep_hours = Some(4.0);
        });
        let r = replay(&[patient(h)], date(1), date(10), 1);
        assert_eq!(r.alerts.len(), 1);
        let a = &r.alerts[0];
        assert_eq!(a.opened_on, date(10));
        assert_eq!(a.severity, Severity::High);
        // (A one-day spike at the end of the window also reads as a least-squares slide.)
        assert_eq!(
            rules(a),
            ["craving_high", "craving_rising", "halt", "slide"]
        );
        assert!(a.findings.iter().all(|f| f.date == date(10)));
        assert_eq!(r.per_rule["halt"].by_severity.high, 1);
        assert_eq!(r.per_rule["craving_high"].findings, 1);
        assert_eq!(r.per_rule["craving_high"].patients, 1);
        assert_eq!(r.per_rule["craving_high"].per_patient_week, 0.7);
    }

    #[test]
    fn an_alert_counts_as_resolved_after_the_given_days() {
        let mut h = days(1, 14);
        h[9] = with(10, |d| d.craving = 9);
        h[10] = with(11, |d| d.craving = 9);
        // Resolved the day after it opened: the second day opens a new alert.
        let r = replay(&[patient(h.clone())], date(1), date(11), 1);
        assert_eq!(r.alerts.len(), 2);
        assert_eq!(r.alerts[1].opened_on, date(11));
        assert_eq!(r.alerts[1].severity, Severity::High);
        // Still open on the second day: it joins and raises the severity.
        let r = replay(&[patient(h)], date(1), date(11), 2);
        assert_eq!(r.alerts.len(), 1);
        let a = &r.alerts[0];
        assert_eq!(a.severity, Severity::High);
        assert_eq!(
            a.findings
                .iter()
                .map(|f| (f.rule.as_str(), f.severity, f.date))
                .collect::<Vec<_>>(),
            [
                ("craving_high", Severity::Warning, date(10)),
                ("craving_rising", Severity::Warning, date(10)),
                ("slide", Severity::Warning, date(10)),
                ("craving_high", Severity::High, date(11)),
                ("craving_rising", Severity::Warning, date(11)),
                ("slide", Severity::Warning, date(11)),
            ]
        );
        assert_eq!(r.per_rule["craving_high"].findings, 2);
        assert_eq!(r.per_rule["craving_high"].patients, 1);
    }

    #[test]
    fn silence_is_found_as_the_sweep_finds_it() {
        // Last check-in on the 10th, back on the 16th.
        let mut h = days(1, 10);
        h.push(day(16));
        let r = replay(&[patient(h)], date(1), date(17), 1);
        let found: Vec<_> = r
            .alerts
            .iter()
            .flat_map(|a| a.findings.iter().map(|f| (f.severity, f.date)))
            .collect();
        // Two missed days by the 13th (11, 12): warning; four by the 15th: high.
        assert_eq!(
            found,
            [(Severity::Warning, date(13)), (Severity::High, date(15))]
        );
        // One missed day is no finding.
        let mut h = days(1, 10);
        h.extend(days(12, 20));
        assert!(replay(&[patient(h)], date(1), date(20), 1)
            .alerts
            .is_empty());
    }

    #[test]
    fn the_sweep_runs_before_the_days_check_in() {
        // The sweep finds the 11th and 12th missed at midnight, before the check-in of the 13th.
        let mut h = days(1, 10);
        h.extend(days(13, 20));
        let r = replay(&[patient(h)], date(1), date(20), 1);
        assert_eq!(r.alerts.len(), 1);
        assert_eq!(rules(&r.alerts[0]), ["missed_check_ins"]);
        assert_eq!(r.alerts[0].opened_on, date(13));
    }

    #[test]
    fn a_silence_before_the_range_is_not_found_again_inside_it() {
        // Silent from the 3rd; the sweep found it (warning on the 5th, high on the 7th) before
        // the replay starts on the 20th: nothing more to find.
        let r = replay(&[patient(days(1, 2))], date(20), date(25), 1);
        assert!(r.alerts.is_empty());
        // Starting on the 6th, only the high of the 7th is left to find.
        let r = replay(&[patient(days(1, 2))], date(6), date(25), 1);
        assert_eq!(r.alerts.len(), 1);
        assert_eq!(r.alerts[0].opened_on, date(7));
        assert_eq!(r.alerts[0].severity, Severity::High);
    }

    #[test]
    fn a_discharged_patient_is_not_missing_until_back_in_care() {
        let mut p = patient(days(1, 5));
        p.phase_history.push(PhaseSpan {
            phase: Phase::Discharged,
            started_on: date(6),
        });
        p.phase_history.push(PhaseSpan {
            phase: Phase::Aftercare,
            started_on: date(20),
        });
        let r = replay(&[p.clone()], date(1), date(22), 1);
        assert!(r.alerts.is_empty(), "{:?}", r.alerts);
        // 5 days in care before the discharge, 3 after the return.
        assert_eq!(r.patient_weeks, 8.0 / 7.0);
        // Back on the 20th and silent since: two missed days by the 23rd.
        let r = replay(&[p], date(1), date(23), 1);
        assert_eq!(r.alerts.len(), 1);
        assert_eq!(r.alerts[0].opened_on, date(23));
        assert_eq!(r.alerts[0].findings[0].rule, RuleId::MissedCheckIns);
    }

    #[test]
    fn history_and_abstinence_read_as_live() {
        // Mood low three days running fires on the third, as the engine does live.
        let mut h = days(1, 20);
        for k in 14..=16 {
            h[k - 1].mood = 2;
        }
        // A use after two weeks of abstinence since the first check-in is critical.
        h[19].used_substance = true;
        let r = replay(&[patient(h.clone())], date(1), date(20), 1);
        let found: Vec<_> = r
            .alerts
            .iter()
            .flat_map(|a| {
                a.findings
                    .iter()
                    .map(|f| (f.rule.as_str(), f.severity, f.date))
            })
            .collect();
        assert_eq!(
            found,
            [
                // Mood down from 6 to 2: the slide sees the fall before three low days do.
                ("slide", Severity::Warning, date(15)),
                ("mood_low", Severity::Warning, date(16)),
                ("slide", Severity::Warning, date(16)),
                ("substance_use", Severity::Critical, date(20)),
            ]
        );
        // The same check-ins through the engine directly, as the live path calls it.
        let policy = RiskPolicy::default();
        let ctx = risk::patient_context_on(
            date(20),
            patient(Vec::new()).phase_history,
            Some(date(1)),
            None,
            None,
        );
        let live = risk::evaluate_check_in(&h[19], &h[5..19], &ctx, &policy);
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].severity, Severity::Critical);
        // Use the day before: the streak restarts and the second use is high.
        h[18].used_substance = true;
        let r = replay(&[patient(h)], date(19), date(20), 1);
        assert_eq!(r.alerts[0].severity, Severity::Critical);
        assert_eq!(r.alerts[1].severity, Severity::High);
    }

    #[test]
    fn history_before_the_given_check_ins_is_read_from_prior() {
        // Only the last week is given; the use on the 2nd and the first check-in on the 1st
        // are known from before: the use on the 20th follows 17 abstinent days (critical).
        let mut h = days(13, 20);
        h[7].used_substance = true;
        let mut p = patient(h);
        p.prior = Prior {
            first_check_in: Some(date(1)),
            last_check_in: Some(date(12)),
            last_use: Some(date(2)),
        };
        let r = replay(&[p.clone()], date(20), date(20), 1);
        assert_eq!(r.alerts[0].severity, Severity::Critical);
        // A use five days before: high.
        p.prior.last_use = Some(date(15));
        p.check_ins.retain(|d| d.date >= date(16));
        p.prior.last_check_in = Some(date(15));
        let r = replay(&[p], date(20), date(20), 1);
        assert_eq!(r.alerts[0].severity, Severity::High);
    }

    #[test]
    fn nothing_before_enrolment_or_outside_the_range() {
        let mut p = patient(days(10, 20));
        p.enrolled_on = date(10);
        p.joined_on = date(10);
        p.check_ins[2].craving = 9;
        let r = replay(&[p.clone()], date(1), date(11), 1);
        assert!(r.alerts.is_empty());
        assert_eq!(r.patient_weeks, 2.0 / 7.0);
        let r = replay(&[p], date(1), date(12), 1);
        assert_eq!(r.alerts.len(), 1);
    }
}
