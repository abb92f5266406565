//! `meals_skipped`: meals at most the threshold on consecutive days.

use super::{evidence_of, DayRecord, Days, Finding};
use crate::domain::policy::{AtMostRun, RuleId, Severity};

pub(super) fn check(d: &DayRecord, days: &Days<'_>, p: &AtMostRun) -> Option<Finding> {
    let t = i32::try_from(p.at_most).unwrap_or(i32::MAX);
    let run = days.run(d.date, p.consecutive_days, |r| r.meals <= t)?;
    Some(Finding {
        rule: RuleId::MealsSkipped,
        severity: Severity::Warning,
        title: "Skipping meals".into(),
        explanation: format!(
            "At most {} meal(s) a day on {} consecutive days, up to {}.",
            p.at_most,
            run.len(),
            d.date
        ),
        evidence: serde_json::json!({"check_ins": evidence_of(&run, "meals", |r| r.meals.into()), "at_most": p.at_most}),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::domain::policy::{RuleId, Severity};

    #[test]
    fn two_consecutive_days_of_at_most_one_meal() {
        let m = |d: u32, n: i32| with(d, move |r| r.meals = n);
        assert_eq!(
            fired(&[m(4, 1), m(5, 1)], RuleId::MealsSkipped),
            Some(Severity::Warning)
        );
        assert_eq!(fired(&[m(4, 0), m(5, 2)], RuleId::MealsSkipped), None);
        assert_eq!(fired(&[m(4, 2), m(5, 0)], RuleId::MealsSkipped), None);
        assert_eq!(fired(&[m(3, 0), m(5, 0)], RuleId::MealsSkipped), None);
    }
}
