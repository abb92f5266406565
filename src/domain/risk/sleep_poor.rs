//! `sleep_poor`: sleep below the threshold on consecutive days.

use super::{evidence_of, DayRecord, Days, Finding};
use crate::domain::policy::{RuleId, Severity, SleepPoor};

pub(super) fn check(d: &DayRecord, days: &Days<'_>, p: &SleepPoor) -> Option<Finding> {
    let run = days.run(d.date, p.consecutive_days, |r| {
        r.sleep_hours.is_some_and(|h| h < p.below_hours)
    })?;
    Some(Finding {
        rule: RuleId::SleepPoor,
        severity: Severity::Warning,
        title: "Poor sleep on consecutive nights".into(),
        explanation: format!(
            "Slept under {} hours on {} consecutive nights, up to {}.",
            p.below_hours,
            run.len(),
            d.date
        ),
        evidence: serde_json::json!({
            "check_ins": evidence_of(&run, "sleep_hours", |r| r.sleep_hours.into()),
            "below_hours": p.below_hours,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::domain::policy::{RuleId, Severity};

    #[test]
    fn under_five_hours_three_nights_running() {
        let s = |d: u32, h: f64| with(d, move |r| r.sleep_hours = Some(h));
        assert_eq!(
            fired(&[s(3, 4.9), s(4, 4.0), s(5, 3.5)], RuleId::SleepPoor),
            Some(Severity::Warning)
        );
        assert_eq!(
            fired(&[s(3, 5.0), s(4, 4.0), s(5, 3.5)], RuleId::SleepPoor),
            None,
            "5.0 is not below 5"
        );
        let missing = with(4, |r| r.sleep_hours = None);
        assert_eq!(
            fired(&[s(3, 4.0), missing, s(5, 3.5)], RuleId::SleepPoor),
            None
        );
    }
}
