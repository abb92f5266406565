//! `craving_rising`: today's craving well above the mean of the patient's own recent
//! check-ins — a personal baseline catches a climb that an absolute threshold misses.

use chrono::TimeDelta;

use super::{evidence_of, DayRecord, Days, Finding};
use crate::domain::policy::{CravingRising, RuleId, Severity};

pub(super) fn check(d: &DayRecord, days: &Days<'_>, p: &CravingRising) -> Option<Finding> {
    let from = d.date - TimeDelta::days(i64::from(p.window_days));
    let to = d.date.pred_opt()?;
    let previous = days.between(from, to);
    let n = usize::try_from(p.baseline_check_ins).ok()?;
    if n == 0 || previous.len() < n {
        return None;
    }
    let baseline = &previous[previous.len() - n..];
    let mean = f64::from(baseline.iter().map(|r| r.craving).sum::<i32>()) / n as f64;
    let rise = f64::from(d.craving) - mean;
    if rise < f64::from(p.rise) {
        return None;
    }
    Some(Finding {
        rule: RuleId::CravingRising,
        severity: Severity::Warning,
        title: "Craving rising".into(),
        explanation: format!(
            "Craving was {}/10 on {}, {:.1} points above the mean of the previous {} check-ins ({:.1}).",
            d.craving, d.date, rise, n, mean
        ),
        evidence: serde_json::json!({
            "check_ins": evidence_of(&[d], "craving", |r| r.craving.into()),
            "baseline": evidence_of(baseline, "craving", |r| r.craving.into()),
            "baseline_mean": (mean * 10.0).round() / 10.0,
            "rise": p.rise,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::domain::policy::{RuleId, Severity};

    fn seq(today: i32) -> Vec<super::DayRecord> {
        vec![
            with(2, |d| d.craving = 2),
            with(3, |d| d.craving = 3),
            with(4, |d| d.craving = 4),
            with(5, |d| d.craving = today),
        ]
    }

    #[test]
    fn rise_boundaries_against_the_mean_of_three() {
        // mean 3: 5 is +2, 6 is +3, 7 is +4
        assert_eq!(fired(&seq(5), RuleId::CravingRising), None);
        assert_eq!(
            fired(&seq(6), RuleId::CravingRising),
            Some(Severity::Warning)
        );
        assert_eq!(
            fired(&seq(7), RuleId::CravingRising),
            Some(Severity::Warning)
        );
    }

    #[test]
    fn needs_three_check_ins_within_seven_days() {
        let few = [
            with(3, |d| d.craving = 1),
            with(4, |d| d.craving = 1),
            with(5, |d| d.craving = 7),
        ];
        assert_eq!(fired(&few, RuleId::CravingRising), None);
        let old = [
            with(1, |d| d.craving = 1),
            with(2, |d| d.craving = 1),
            with(9, |d| d.craving = 1),
            with(10, |d| d.craving = 7),
        ];
        assert_eq!(fired(&old, RuleId::CravingRising), None);
    }
}
