//! One alert per episode. A counsellor acts on a patient, not on a rule: the first finding
//! opens the patient's alert, every later finding (of any rule) joins it until it is resolved.
//! Each rule appears once among the findings; a repeat updates that finding. The alert's
//! severity is the highest of its findings, and its headline is that of the leading finding
//! (the most severe, then the earliest).
//!
//! Pure: the live check-in path, the missed-check-in sweep and the backtest replay all run
//! these same functions, so a replay raises exactly the episodes live traffic would.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use super::policy::{RuleId, Severity};
use super::risk::{DayRecord, Finding};

/// One rule's part in an episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeFinding {
    /// The rule.
    pub rule: RuleId,
    /// The most serious severity this rule reached in the episode.
    pub severity: Severity,
    /// Headline of the most serious occurrence.
    pub title: String,
    /// Explanation of the most serious occurrence.
    pub explanation: String,
    /// Evidence of the most serious occurrence (the latest one among equals).
    pub evidence: serde_json::Value,
    /// The first local date the rule fired in this episode.
    pub first_seen_on: NaiveDate,
    /// The latest local date the rule fired in this episode.
    pub last_seen_on: NaiveDate,
    /// How many times it fired in this episode.
    pub occurrences: i32,
    /// When a correction by the patient made it stop holding (null while it holds).
    pub corrected_at: Option<NaiveDateTime>,
    /// The corrected answers, beside the original evidence (null while it holds).
    pub corrected_values: Option<serde_json::Value>,
    /// What the finding said before a correction by the patient made it less serious (null
    /// unless one did). The first account is kept: nothing the patient reported is lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_correction: Option<Superseded>,
    /// The account of each date the rule fired on (the latest evaluation of that date): a
    /// correction of one date re-judges the finding from the dates that remain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<Account>,
}

/// What a rule said about one date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// The local date.
    pub on: NaiveDate,
    /// Its severity.
    pub severity: Severity,
    /// Its headline.
    pub title: String,
    /// Its explanation.
    pub explanation: String,
    /// Its evidence.
    pub evidence: serde_json::Value,
}

impl Account {
    fn of(f: &Finding, on: NaiveDate) -> Self {
        Self {
            on,
            severity: f.severity,
            title: f.title.clone(),
            explanation: f.explanation.clone(),
            evidence: f.evidence.clone(),
        }
    }
}

/// A finding's account before a correction lowered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Superseded {
    /// The severity it had.
    pub severity: Severity,
    /// Its headline then.
    pub title: String,
    /// Its explanation then.
    pub explanation: String,
    /// Its evidence then.
    pub evidence: serde_json::Value,
    /// When the correction lowered it.
    pub corrected_at: NaiveDateTime,
}

/// What a correction did to a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corrected {
    /// It no longer holds at all: marked `corrected_at`, its evidence kept.
    Retracted,
    /// It still holds, less seriously: the new account leads, the old one is kept in
    /// `before_correction`.
    Lowered,
}

impl EpisodeFinding {
    fn new(f: &Finding, on: NaiveDate) -> Self {
        Self {
            rule: f.rule,
            severity: f.severity,
            title: f.title.clone(),
            explanation: f.explanation.clone(),
            evidence: f.evidence.clone(),
            first_seen_on: on,
            last_seen_on: on,
            occurrences: 1,
            corrected_at: None,
            corrected_values: None,
            before_correction: None,
            days: vec![Account::of(f, on)],
        }
    }

    /// Whether the finding still holds (no correction took it back).
    pub fn holds(&self) -> bool {
        self.corrected_at.is_none()
    }

    /// Findings stored before per-date accounts existed: their one account stands for the
    /// latest date they fired on.
    fn with_days(mut self) -> Self {
        if self.days.is_empty() && self.holds() && self.rule != RuleId::Sos {
            self.days.push(Account {
                on: self.last_seen_on,
                severity: self.severity,
                title: self.title.clone(),
                explanation: self.explanation.clone(),
                evidence: self.evidence.clone(),
            });
        }
        self
    }

    /// Takes the account of the most serious date (the latest among equals) as the finding's.
    fn lead_from_days(&mut self) {
        let mut best: Option<&Account> = None;
        for a in &self.days {
            best = match best {
                Some(b) if b.severity > a.severity || (b.severity == a.severity && b.on > a.on) => {
                    Some(b)
                }
                _ => Some(a),
            };
        }
        if let Some(b) = best.cloned() {
            self.severity = b.severity;
            self.title = b.title;
            self.explanation = b.explanation;
            self.evidence = b.evidence;
        }
    }
}

/// What joining a finding did to the episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    /// The episode's severity went up: it is delivered again, re-opened if acknowledged, and
    /// its escalation timer restarts.
    pub severity_rose: bool,
    /// The rule was not yet among the findings.
    pub new_rule: bool,
}

/// The findings of one unresolved alert.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Episode {
    /// Findings in the order their rules first joined.
    pub findings: Vec<EpisodeFinding>,
}

impl Episode {
    /// Opens an episode with its first finding, seen on `on`.
    pub fn open(f: &Finding, on: NaiveDate) -> Self {
        Self {
            findings: vec![EpisodeFinding::new(f, on)],
        }
    }

    /// Rebuilds an episode from stored findings, folding any duplicates of one rule together
    /// (alerts carried over from before episodes could hold several SOS presses).
    pub fn from_findings(stored: Vec<EpisodeFinding>) -> Self {
        let mut e = Episode::default();
        for f in stored {
            let f = f.with_days();
            match e.findings.iter_mut().find(|x| x.rule == f.rule) {
                None => e.findings.push(f),
                Some(x) => {
                    for a in f.days.iter() {
                        if !x.days.iter().any(|d| d.on == a.on) {
                            x.days.push(a.clone());
                        }
                    }
                    x.occurrences += f.occurrences;
                    x.first_seen_on = x.first_seen_on.min(f.first_seen_on);
                    x.last_seen_on = x.last_seen_on.max(f.last_seen_on);
                    let holds = f.holds();
                    if f.severity > x.severity {
                        x.severity = f.severity;
                        x.title = f.title;
                        x.explanation = f.explanation;
                        x.evidence = f.evidence;
                    }
                    if holds {
                        x.corrected_at = None;
                        x.corrected_values = None;
                    }
                }
            }
        }
        e
    }

    /// The episode's severity: the highest of its findings.
    pub fn severity(&self) -> Severity {
        self.findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Info)
    }

    /// The leading finding: the most severe, then the earliest (then the first to join).
    pub fn leading(&self) -> Option<&EpisodeFinding> {
        let mut best: Option<&EpisodeFinding> = None;
        for f in &self.findings {
            best = match best {
                Some(b)
                    if b.severity > f.severity
                        || (b.severity == f.severity && b.first_seen_on <= f.first_seen_on) =>
                {
                    Some(b)
                }
                _ => Some(f),
            };
        }
        best
    }

    /// The rules involved, in joining order.
    pub fn rules(&self) -> Vec<RuleId> {
        self.findings.iter().map(|f| f.rule).collect()
    }

    /// Whether any finding still holds; when none does the alert stops escalating (it stays
    /// until a counsellor resolves it).
    pub fn holds(&self) -> bool {
        self.findings.iter().any(EpisodeFinding::holds)
    }

    /// The highest severity among the findings that still hold (what escalation is timed
    /// by), if any holds.
    pub fn holding_severity(&self) -> Option<Severity> {
        self.findings
            .iter()
            .filter(|f| f.holds())
            .map(|f| f.severity)
            .max()
    }

    /// Total occurrences across findings.
    pub fn occurrences(&self) -> i32 {
        self.findings.iter().map(|f| f.occurrences).sum()
    }

    /// A finding seen on `on` joins the episode. A repeat of a rule updates its finding: the
    /// evidence is replaced unless the repeat is less severe (a lesser repeat does not replace
    /// the more serious account), and a rule that fires again holds again.
    pub fn join(&mut self, f: &Finding, on: NaiveDate) -> Joined {
        let before = self.severity();
        let new_rule = match self.findings.iter_mut().find(|x| x.rule == f.rule) {
            None => {
                self.findings.push(EpisodeFinding::new(f, on));
                true
            }
            Some(x) => {
                x.occurrences += 1;
                x.first_seen_on = x.first_seen_on.min(on);
                x.last_seen_on = x.last_seen_on.max(on);
                if f.rule == RuleId::Sos {
                    // Every press is the patient's own words: the latest leads, the earlier
                    // ones stay beside it.
                    let mut earlier = match x.evidence.get_mut("earlier_presses") {
                        Some(serde_json::Value::Array(a)) => std::mem::take(a),
                        _ => Vec::new(),
                    };
                    let mut previous = x.evidence.clone();
                    if let Some(o) = previous.as_object_mut() {
                        o.remove("earlier_presses");
                    }
                    earlier.push(previous);
                    let mut evidence = f.evidence.clone();
                    if let Some(o) = evidence.as_object_mut() {
                        o.insert("earlier_presses".into(), serde_json::Value::Array(earlier));
                    }
                    x.evidence = evidence;
                } else {
                    if !x.holds() {
                        // A rule corrected away that fires again is told by its new firing.
                        x.days.clear();
                    }
                    // The latest reading of a date replaces the earlier one, but never lowers
                    // it: only a correction does that, and says so.
                    match x.days.iter_mut().find(|a| a.on == on) {
                        Some(a) if a.severity > f.severity => {}
                        Some(a) => *a = Account::of(f, on),
                        None => x.days.push(Account::of(f, on)),
                    }
                    x.lead_from_days();
                }
                x.corrected_at = None;
                x.corrected_values = None;
                false
            }
        };
        Joined {
            severity_rose: self.severity() > before,
            new_rule,
        }
    }

    /// The patient corrected a check-in, and the date `on` (that check-in's date, or a later
    /// one whose pattern it was part of) was judged again: `still` is what `rule` says about
    /// `on` now (None: it no longer fires). The finding is re-judged from the dates that remain:
    /// when none does, it is marked corrected with the corrected answers beside its evidence;
    /// when it holds less seriously, the new account leads and the old one is kept in
    /// `before_correction`. A rule that fires as seriously from other dates is unchanged.
    pub fn correct(
        &mut self,
        rule: RuleId,
        on: NaiveDate,
        still: Option<&Finding>,
        corrected: &DayRecord,
        at: NaiveDateTime,
    ) -> Option<Corrected> {
        let x = self
            .findings
            .iter_mut()
            .find(|x| x.rule == rule && x.holds() && rule != RuleId::Sos)?;
        let i = x.days.iter().position(|a| a.on == on)?;
        match still {
            None => {
                x.days.remove(i);
            }
            Some(f) if f.severity < x.days[i].severity => x.days[i] = Account::of(f, on),
            Some(_) => return None,
        }
        if x.days.is_empty() {
            x.corrected_at = Some(at);
            x.corrected_values = Some(rule_values(rule, corrected));
            return Some(Corrected::Retracted);
        }
        let before = Superseded {
            severity: x.severity,
            title: x.title.clone(),
            explanation: x.explanation.clone(),
            evidence: x.evidence.clone(),
            corrected_at: at,
        };
        x.lead_from_days();
        if x.severity < before.severity {
            if x.before_correction.is_none() {
                x.before_correction = Some(before);
            }
            Some(Corrected::Lowered)
        } else {
            None
        }
    }
}

/// The answers a rule reads, from one check-in: what a correction shows beside the evidence.
pub fn rule_values(rule: RuleId, d: &DayRecord) -> serde_json::Value {
    use serde_json::json;
    let v = match rule {
        RuleId::SelfHarm => json!({"self_harm_thoughts": d.self_harm_thoughts}),
        RuleId::SubstanceUse => {
            json!({"used_substance": d.used_substance, "substances": d.substances})
        }
        RuleId::CravingHigh | RuleId::CravingRising => json!({"craving": d.craving}),
        RuleId::WithdrawalSevere => json!({"withdrawal_score": d.withdrawal_score}),
        RuleId::MoodLow => json!({"mood": d.mood}),
        RuleId::SleepPoor => json!({"sleep_hours": d.sleep_hours}),
        RuleId::MealsSkipped => json!({"meals": d.meals}),
        RuleId::Halt => json!({
            "meals": d.meals, "irritability": d.irritability,
            "loneliness": d.loneliness, "sleep_hours": d.sleep_hours
        }),
        RuleId::ExerciseLapsed => json!({"exercise_minutes": d.exercise_minutes}),
        RuleId::MedicationMissed => json!({"took_medication": d.took_medication}),
        RuleId::SupportDisengaged => json!({"attended_support": d.attended_support}),
        RuleId::Slide => json!({
            "craving": d.craving, "mood": d.mood, "sleep_hours": d.sleep_hours
        }),
        RuleId::Sos | RuleId::MissedCheckIns => json!({}),
    };
    let mut v = v;
    if let Some(o) = v.as_object_mut() {
        o.insert("date".into(), json!(d.date));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn finding(rule: RuleId, severity: Severity, tag: &str) -> Finding {
        Finding {
            rule,
            severity,
            title: format!("{} {tag}", rule.as_str()),
            explanation: tag.into(),
            evidence: serde_json::json!({"tag": tag}),
        }
    }

    #[test]
    fn later_findings_of_any_rule_join_one_episode() {
        let mut e = Episode::open(&finding(RuleId::MoodLow, Severity::Warning, "a"), day(3));
        let j = e.join(&finding(RuleId::SleepPoor, Severity::Warning, "b"), day(4));
        assert_eq!(
            j,
            Joined {
                severity_rose: false,
                new_rule: true
            }
        );
        let j = e.join(&finding(RuleId::MoodLow, Severity::Warning, "c"), day(4));
        assert!(!j.severity_rose && !j.new_rule);
        assert_eq!(e.findings.len(), 2);
        assert_eq!(e.findings[0].occurrences, 2);
        assert_eq!(e.findings[0].first_seen_on, day(3));
        assert_eq!(e.findings[0].last_seen_on, day(4));
        assert_eq!(e.findings[0].evidence["tag"], "c");
        assert_eq!(e.occurrences(), 3);
        // Equal severity: the earliest leads.
        assert_eq!(e.leading().map(|f| f.rule), Some(RuleId::MoodLow));
    }

    #[test]
    fn a_more_severe_finding_raises_and_leads() {
        let mut e = Episode::open(&finding(RuleId::MoodLow, Severity::Warning, "a"), day(3));
        let j = e.join(&finding(RuleId::SubstanceUse, Severity::High, "b"), day(5));
        assert!(j.severity_rose && j.new_rule);
        assert_eq!(e.severity(), Severity::High);
        assert_eq!(e.leading().map(|f| f.rule), Some(RuleId::SubstanceUse));
        // Same severity again: no rise.
        let j = e.join(&finding(RuleId::Halt, Severity::High, "c"), day(6));
        assert!(!j.severity_rose);
        assert_eq!(e.leading().map(|f| f.rule), Some(RuleId::SubstanceUse));
    }

    #[test]
    fn a_lesser_repeat_keeps_the_more_serious_account() {
        let mut e = Episode::open(
            &finding(RuleId::CravingHigh, Severity::High, "two days"),
            day(3),
        );
        e.join(
            &finding(RuleId::CravingHigh, Severity::Warning, "one day"),
            day(5),
        );
        assert_eq!(e.findings[0].severity, Severity::High);
        assert_eq!(e.findings[0].evidence["tag"], "two days");
        assert_eq!(e.findings[0].last_seen_on, day(5));
    }

    #[test]
    fn a_correction_marks_the_finding_and_a_new_firing_takes_it_back() {
        let mut e = Episode::open(
            &finding(RuleId::SubstanceUse, Severity::Critical, "a"),
            day(3),
        );
        let corrected = DayRecord {
            date: day(3),
            ..Default::default()
        };
        let at = day(3).and_hms_opt(10, 0, 0).unwrap();
        assert_eq!(
            e.correct(RuleId::SubstanceUse, day(2), None, &corrected, at),
            None
        );
        assert_eq!(
            e.correct(RuleId::SubstanceUse, day(3), None, &corrected, at),
            Some(Corrected::Retracted)
        );
        assert!(!e.holds());
        let f = &e.findings[0];
        assert_eq!(f.corrected_at, Some(at));
        assert_eq!(
            f.corrected_values,
            Some(
                serde_json::json!({"date": "2026-11-03", "used_substance": false, "substances": []})
            )
        );
        // The original evidence stays beside the correction.
        assert_eq!(f.evidence["tag"], "a");
        assert_eq!(e.severity(), Severity::Critical);
        e.join(&finding(RuleId::SubstanceUse, Severity::High, "b"), day(4));
        assert!(e.holds());
    }

    #[test]
    fn every_sos_press_is_kept() {
        let press = |m: &str| crate::domain::risk::sos_finding(Some(m));
        let mut e = Episode::open(&press("first"), day(3));
        e.join(&press("second"), day(3));
        e.join(&press("third"), day(4));
        let ev = &e.findings[0].evidence;
        assert_eq!(ev["message"], "third");
        assert_eq!(
            ev["earlier_presses"],
            serde_json::json!([{"message": "first"}, {"message": "second"}])
        );
        assert_eq!(e.findings[0].occurrences, 3);
    }

    #[test]
    fn a_rule_that_also_fired_on_another_day_still_holds_after_one_day_is_corrected() {
        let mut e = Episode::open(
            &finding(RuleId::SubstanceUse, Severity::Critical, "mon"),
            day(2),
        );
        e.join(
            &finding(RuleId::SubstanceUse, Severity::High, "wed"),
            day(4),
        );
        let wednesday = DayRecord {
            date: day(4),
            ..Default::default()
        };
        let at = day(4).and_hms_opt(10, 0, 0).unwrap();
        assert_eq!(
            e.correct(RuleId::SubstanceUse, day(4), None, &wednesday, at),
            None
        );
        assert!(e.holds());
        assert_eq!(e.holding_severity(), Some(Severity::Critical));
    }

    #[test]
    fn a_corrected_rule_firing_again_is_told_by_the_new_firing() {
        let mut e = Episode::open(&finding(RuleId::CravingHigh, Severity::High, "tue"), day(3));
        e.join(&finding(RuleId::MoodLow, Severity::Warning, "mood"), day(3));
        let at = day(3).and_hms_opt(10, 0, 0).unwrap();
        let tuesday = DayRecord {
            date: day(3),
            ..Default::default()
        };
        assert_eq!(
            e.correct(RuleId::CravingHigh, day(3), None, &tuesday, at),
            Some(Corrected::Retracted)
        );
        // What still holds times the escalation: the warning.
        assert_eq!(e.holding_severity(), Some(Severity::Warning));
        e.join(
            &finding(RuleId::CravingHigh, Severity::Warning, "fri"),
            day(6),
        );
        let f = &e.findings[0];
        assert!(f.holds());
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.evidence["tag"], "fri");
    }

    #[test]
    fn stored_duplicates_fold_into_one_finding() {
        let a = EpisodeFinding::new(&finding(RuleId::Sos, Severity::Critical, "1"), day(3));
        let b = EpisodeFinding::new(&finding(RuleId::Sos, Severity::Critical, "2"), day(5));
        let e = Episode::from_findings(vec![a, b]);
        assert_eq!(e.findings.len(), 1);
        assert_eq!(e.findings[0].occurrences, 2);
        assert_eq!(e.findings[0].last_seen_on, day(5));
    }
    #[test]
    fn a_correction_that_lowers_a_later_date_lowers_the_finding_and_keeps_the_old_account() {
        // Monday's craving made Tuesday's a run (high); Monday corrected, Tuesday alone is a
        // warning.
        let mut e = Episode::open(
            &finding(RuleId::CravingHigh, Severity::Warning, "mon"),
            day(2),
        );
        e.join(
            &finding(RuleId::CravingHigh, Severity::High, "mon+tue"),
            day(3),
        );
        assert_eq!(e.severity(), Severity::High);
        let monday = DayRecord {
            date: day(2),
            craving: 3,
            ..Default::default()
        };
        let at = day(3).and_hms_opt(12, 0, 0).unwrap();
        // Monday no longer fires: Tuesday still holds it, as seriously as before.
        assert_eq!(
            e.correct(RuleId::CravingHigh, day(2), None, &monday, at),
            None
        );
        assert_eq!(e.severity(), Severity::High);
        // Tuesday judged again: a warning now.
        let tuesday_alone = finding(RuleId::CravingHigh, Severity::Warning, "tue");
        assert_eq!(
            e.correct(
                RuleId::CravingHigh,
                day(3),
                Some(&tuesday_alone),
                &monday,
                at
            ),
            Some(Corrected::Lowered)
        );
        let f = &e.findings[0];
        assert!(f.holds());
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.evidence["tag"], "tue");
        let old = f.before_correction.as_ref().unwrap();
        assert_eq!(old.severity, Severity::High);
        assert_eq!(old.evidence["tag"], "mon+tue");
        assert_eq!(old.corrected_at, at);
        assert_eq!(e.severity(), Severity::Warning);
        assert_eq!(e.holding_severity(), Some(Severity::Warning));
    }

    #[test]
    fn a_correction_that_still_fires_as_seriously_changes_nothing() {
        let mut e = Episode::open(&finding(RuleId::CravingHigh, Severity::High, "a"), day(3));
        let at = day(3).and_hms_opt(12, 0, 0).unwrap();
        let same = finding(RuleId::CravingHigh, Severity::High, "b");
        let rec = DayRecord {
            date: day(3),
            ..Default::default()
        };
        assert_eq!(
            e.correct(RuleId::CravingHigh, day(3), Some(&same), &rec, at),
            None
        );
        assert_eq!(e.findings[0].evidence["tag"], "a");
        assert!(e.findings[0].before_correction.is_none());
        // A lesser reading of the same date never lowers it by joining.
        e.join(
            &finding(RuleId::CravingHigh, Severity::Warning, "c"),
            day(3),
        );
        assert_eq!(e.severity(), Severity::High);
        assert_eq!(e.findings[0].evidence["tag"], "a");
    }

    #[test]
    fn findings_stored_without_dates_are_judged_by_their_latest_date() {
        let mut legacy = EpisodeFinding::new(
            &finding(RuleId::SubstanceUse, Severity::Critical, "x"),
            day(3),
        );
        legacy.days.clear();
        let stored = serde_json::to_string(&vec![legacy]).unwrap();
        assert!(!stored.contains("\"days\""));
        let mut e = Episode::from_findings(serde_json::from_str(&stored).unwrap());
        let rec = DayRecord {
            date: day(3),
            ..Default::default()
        };
        let at = day(3).and_hms_opt(12, 0, 0).unwrap();
        assert_eq!(
            e.correct(RuleId::SubstanceUse, day(3), None, &rec, at),
            Some(Corrected::Retracted)
        );
    }
}
