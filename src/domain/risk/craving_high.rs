//! `craving_high`: craving at or above the threshold; high when it has been so on several
//! consecutive days.

use super::{evidence_of, DayRecord, Days, Finding};
use crate::domain::policy::{CravingHigh, RuleId, Severity};

pub(super) fn check(d: &DayRecord, days: &Days<'_>, p: &CravingHigh) -> Option<Finding> {
    let t = i32::try_from(p.threshold).unwrap_or(i32::MAX);
    if d.craving < t {
        return None;
    }
    let run = days.run(d.date, p.consecutive_days_for_high, |r| r.craving >= t);
    let (severity, shown) = match &run {
        Some(run) => (Severity::High, run.clone()),
        _ => (Severity::Warning, vec![d]),
    };
    let values: Vec<String> = shown
        .iter()
        .map(|r| format!("{}/10 on {}", r.craving, r.date))
        .collect();
    Some(Finding {
        rule: RuleId::CravingHigh,
        severity,
        title: if severity == Severity::High {
            "Craving high on consecutive days".into()
        } else {
            "High craving".into()
        },
        explanation: format!(
            "Craving was {} (threshold {}).",
            values.join(" and "),
            p.threshold
        ),
        evidence: serde_json::json!({
            "check_ins": evidence_of(&shown, "craving", |r| r.craving.into()),
            "threshold": p.threshold,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::domain::policy::{RuleId, Severity};

    #[test]
    fn threshold_boundaries() {
        assert_eq!(
            fired(&[with(5, |d| d.craving = 7)], RuleId::CravingHigh),
            None
        );
        assert_eq!(
            fired(&[with(5, |d| d.craving = 8)], RuleId::CravingHigh),
            Some(Severity::Warning)
        );
        assert_eq!(
            fired(&[with(5, |d| d.craving = 9)], RuleId::CravingHigh),
            Some(Severity::Warning)
        );
    }

    #[test]
    fn two_consecutive_days_make_it_high_but_a_gap_does_not() {
        let high = [with(4, |d| d.craving = 8), with(5, |d| d.craving = 9)];
        assert_eq!(fired(&high, RuleId::CravingHigh), Some(Severity::High));
        let gap = [with(3, |d| d.craving = 8), with(5, |d| d.craving = 9)];
        assert_eq!(fired(&gap, RuleId::CravingHigh), Some(Severity::Warning));
        let below = [with(4, |d| d.craving = 7), with(5, |d| d.craving = 9)];
        assert_eq!(fired(&below, RuleId::CravingHigh), Some(Severity::Warning));
    }

    #[test]
    fn one_day_for_high_makes_every_high_craving_high() {
        use super::super::PatientContext;
        use crate::domain::policy::RiskPolicy;
        let mut p = RiskPolicy::default();
        p.rules.craving_high.consecutive_days_for_high = 1;
        let severity = |craving| {
            eval(
                &[with(5, |d| d.craving = craving)],
                &PatientContext::default(),
                &p,
            )
            .into_iter()
            .find(|f| f.rule == RuleId::CravingHigh)
            .map(|f| f.severity)
        };
        assert_eq!(severity(7), None);
        assert_eq!(severity(8), Some(Severity::High));
        assert_eq!(severity(9), Some(Severity::High));
    }
}
