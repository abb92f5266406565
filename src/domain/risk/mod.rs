//! The risk engine: pure functions from (recent check-ins, phase history, effective policy)
//! to findings. One module per rule; each finding carries the rule's id, a human explanation
//! and the evidence (dates and values) so a counsellor can always answer "why did this fire?".

mod context;
mod craving_high;
mod craving_rising;
mod exercise_lapsed;
mod halt;
mod meals_skipped;
mod medication_missed;
mod missed_check_ins;
mod mood_low;
mod self_harm;
mod sleep_poor;
mod slide;
mod sos;
mod substance_use;
mod support;
mod support_disengaged;
mod withdrawal_severe;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use super::policy::{Phase, RiskPolicy, RuleId, Severity};

pub use super::crisis::CrisisResource;
pub use context::{patient_context_on, silence_since_on, streak_origin};
pub use missed_check_ins::{
    missed_check_ins_finding, next_missed_check_in_due, next_missed_check_in_due_after,
};
pub use sos::sos_finding;
pub use support::{needs_crisis_resources, support_messages, SupportMessage};

/// One check-in's facts, as the rules read them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DayRecord {
    /// The local date.
    pub date: NaiveDate,
    /// 0–10.
    pub craving: i32,
    /// 0–10.
    pub mood: i32,
    /// Minutes.
    pub exercise_minutes: i32,
    /// Meals.
    pub meals: i32,
    /// Any use.
    pub used_substance: bool,
    /// What was used, as the patient named it.
    pub substances: Vec<String>,
    /// Hours.
    pub sleep_hours: Option<f64>,
    /// 0–10.
    pub anxiety: Option<i32>,
    /// 0–10.
    pub irritability: Option<i32>,
    /// 0–10.
    pub loneliness: Option<i32>,
    /// MOUD taken (None: not prescribed).
    pub took_medication: Option<bool>,
    /// Support attended.
    pub attended_support: Option<bool>,
    /// SOWS total.
    pub withdrawal_score: Option<i32>,
    /// Self-harm thoughts.
    pub self_harm_thoughts: Option<bool>,
}

/// A phase and the local date it started.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseSpan {
    /// The phase.
    pub phase: Phase,
    /// Its first day.
    pub started_on: NaiveDate,
}

/// What the rules know about the patient beyond recent check-ins.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PatientContext {
    /// Phases, oldest first; the last is current.
    pub phase_history: Vec<PhaseSpan>,
    /// The most recent use before the check-in's date (a check-in, or the enrolment date).
    pub last_use_before: Option<NaiveDate>,
    /// Where an abstinent streak starts when no use was ever reported: the first check-in, or
    /// the day after the last use given at enrolment.
    pub streak_origin: Option<NaiveDate>,
}

impl PatientContext {
    /// The current phase.
    pub fn current_phase(&self) -> Option<Phase> {
        self.phase_history.last().map(|p| p.phase)
    }

    /// The day the patient most recently left detox, if they did.
    pub fn left_detox_on(&self) -> Option<NaiveDate> {
        self.phase_history
            .windows(2)
            .filter(|w| w[0].phase == Phase::Detox && w[1].phase != Phase::Detox)
            .map(|w| w[1].started_on)
            .next_back()
    }
}

/// A rule that fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The rule.
    pub rule: RuleId,
    /// How urgent.
    pub severity: Severity,
    /// A short headline.
    pub title: String,
    /// Why it fired, for a person.
    pub explanation: String,
    /// The dates and values that made it fire.
    pub evidence: serde_json::Value,
}

/// Days of abstinence before `on`: from the day after the last use, or from the streak origin.
pub fn abstinent_days(on: NaiveDate, ctx: &PatientContext) -> Option<i64> {
    let start = match ctx.last_use_before {
        Some(u) => u.succ_opt()?,
        None => ctx.streak_origin?,
    };
    Some((on - start).num_days().max(0))
}

/// The check-ins of a window, by date.
pub(crate) struct Days<'a> {
    by_date: BTreeMap<NaiveDate, &'a DayRecord>,
}

impl<'a> Days<'a> {
    pub(crate) fn new(current: &'a DayRecord, history: &'a [DayRecord]) -> Self {
        let mut by_date: BTreeMap<NaiveDate, &DayRecord> = history
            .iter()
            .filter(|d| d.date < current.date)
            .map(|d| (d.date, d))
            .collect();
        by_date.insert(current.date, current);
        Self { by_date }
    }

    /// The `n` check-ins on the consecutive dates ending at `end`, if every date has one and
    /// every one satisfies `pred`; oldest first.
    pub(crate) fn run(
        &self,
        end: NaiveDate,
        n: u32,
        pred: impl Fn(&DayRecord) -> bool,
    ) -> Option<Vec<&'a DayRecord>> {
        let mut out = Vec::new();
        let mut d = end;
        for _ in 0..n {
            let rec = *self.by_date.get(&d)?;
            if !pred(rec) {
                return None;
            }
            out.push(rec);
            d = d.pred_opt()?;
        }
        out.reverse();
        Some(out)
    }

    /// Check-ins with `from <= date <= to`, oldest first.
    pub(crate) fn between(&self, from: NaiveDate, to: NaiveDate) -> Vec<&'a DayRecord> {
        self.by_date.range(from..=to).map(|(_, d)| *d).collect()
    }
}

/// Evidence listing one value per date.
pub(crate) fn evidence_of(
    days: &[&DayRecord],
    key: &str,
    value: impl Fn(&DayRecord) -> serde_json::Value,
) -> serde_json::Value {
    serde_json::Value::Array(
        days.iter()
            .map(|d| serde_json::json!({"date": d.date, key: value(d)}))
            .collect(),
    )
}

/// Runs every enabled rule over a check-in (except `sos`, a button, and `missed_check_ins`,
/// found by the sweep). `history` holds earlier check-ins within the policy's window.
pub fn evaluate_check_in(
    current: &DayRecord,
    history: &[DayRecord],
    ctx: &PatientContext,
    policy: &RiskPolicy,
) -> Vec<Finding> {
    let days = Days::new(current, history);
    let r = &policy.rules;
    let mut out = Vec::new();
    let mut push = |f: Option<Finding>| out.extend(f);
    // Never switched off, whatever a stored policy says: validation refuses it, and this
    // keeps a policy that slipped past validation from silencing it.
    push(self_harm::check(current));
    if r.substance_use.enabled {
        push(substance_use::check(current, ctx, &r.substance_use));
    }
    if r.craving_high.enabled {
        push(craving_high::check(current, &days, &r.craving_high));
    }
    if r.craving_rising.enabled {
        push(craving_rising::check(current, &days, &r.craving_rising));
    }
    if r.withdrawal_severe.enabled {
        push(withdrawal_severe::check(current, &r.withdrawal_severe));
    }
    if r.mood_low.enabled {
        push(mood_low::check(current, &days, &r.mood_low));
    }
    if r.sleep_poor.enabled {
        push(sleep_poor::check(current, &days, &r.sleep_poor));
    }
    if r.meals_skipped.enabled {
        push(meals_skipped::check(current, &days, &r.meals_skipped));
    }
    if r.halt.enabled {
        push(halt::check(current, &r.halt));
    }
    if r.exercise_lapsed.enabled {
        push(exercise_lapsed::check(current, &days, &r.exercise_lapsed));
    }
    if r.medication_missed.enabled {
        push(medication_missed::check(
            current,
            &days,
            &r.medication_missed,
        ));
    }
    if r.support_disengaged.enabled {
        push(support_disengaged::check(
            current,
            &days,
            ctx,
            &r.support_disengaged,
        ));
    }
    if r.slide.enabled {
        push(slide::check(current, &days, &r.slide));
    }
    out
}

#[cfg(test)]
pub(crate) mod testing {
    //! Concise check-in sequences for rule tests.
    use super::*;

    pub fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    /// A calm day: nothing fires.
    pub fn day(d: u32) -> DayRecord {
        DayRecord {
            date: date(d),
            craving: 2,
            mood: 6,
            exercise_minutes: 30,
            meals: 3,
            used_substance: false,
            sleep_hours: Some(7.5),
            ..Default::default()
        }
    }

    pub fn with(d: u32, f: impl FnOnce(&mut DayRecord)) -> DayRecord {
        let mut r = day(d);
        f(&mut r);
        r
    }

    /// Runs the engine on the last record with the others as history.
    pub fn eval(records: &[DayRecord], ctx: &PatientContext, policy: &RiskPolicy) -> Vec<Finding> {
        let (current, history) = records.split_last().unwrap();
        evaluate_check_in(current, history, ctx, policy)
    }

    pub fn fired(records: &[DayRecord], rule: RuleId) -> Option<Severity> {
        eval(records, &PatientContext::default(), &RiskPolicy::default())
            .into_iter()
            .find(|f| f.rule == rule)
            .map(|f| f.severity)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn a_calm_day_raises_nothing() {
        let records: Vec<DayRecord> = (1..=20).map(day).collect();
        assert!(eval(&records, &PatientContext::default(), &RiskPolicy::default()).is_empty());
    }

    #[test]
    fn disabled_rules_do_not_fire() {
        let mut p = RiskPolicy::default();
        p.rules.craving_high.enabled = false;
        let f = eval(
            &[with(5, |d| d.craving = 10)],
            &PatientContext::default(),
            &p,
        );
        assert!(f.iter().all(|f| f.rule != RuleId::CravingHigh));
    }

    #[test]
    fn abstinence_counts_from_the_day_after_last_use() {
        let ctx = PatientContext {
            last_use_before: Some(date(1)),
            streak_origin: Some(date(1)),
            ..Default::default()
        };
        assert_eq!(abstinent_days(date(9), &ctx), Some(7));
        let ctx = PatientContext {
            streak_origin: Some(date(3)),
            ..Default::default()
        };
        assert_eq!(abstinent_days(date(9), &ctx), Some(6));
        assert_eq!(abstinent_days(date(9), &PatientContext::default()), None);
    }
}
