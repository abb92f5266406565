//! `mood_low`: mood at most the threshold on consecutive days.

use super::{evidence_of, DayRecord, Days, Finding};
use crate::domain::policy::{AtMostRun, RuleId, Severity};

pub(super) fn check(d: &DayRecord, days: &Days<'_>, p: &AtMostRun) -> Option<Finding> {
    let t = i32::try_from(p.at_most).unwrap_or(i32::MAX);
    let run = days.run(d.date, p.consecutive_days, |r| r.mood <= t)?;
    Some(Finding {
        rule: RuleId::MoodLow,
        severity: Severity::Warning,
        title: "Low mood on consecutive days".into(),
        explanation: format!(
            "Mood was at most {}/10 on {} consecutive days ({} to {}).",
            p.at_most,
            run.len(),
            run.first().map(|r| r.date)?,
            d.date
        ),
        evidence: serde_json::json!({"check_ins": evidence_of(&run, "mood", |r| r.mood.into()), "at_most": p.at_most}),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::domain::policy::{RuleId, Severity};

    #[test]
    fn three_consecutive_low_days() {
        let low = |d: u32, m: i32| with(d, move |r| r.mood = m);
        assert_eq!(
            fired(&[low(3, 2), low(4, 2), low(5, 2)], RuleId::MoodLow),
            Some(Severity::Warning)
        );
        assert_eq!(
            fired(&[low(3, 3), low(4, 2), low(5, 2)], RuleId::MoodLow),
            None
        );
        assert_eq!(fired(&[low(4, 1), low(5, 1)], RuleId::MoodLow), None);
        assert_eq!(
            fired(&[low(2, 1), low(4, 1), low(5, 1)], RuleId::MoodLow),
            None,
            "a gap breaks the run"
        );
        assert_eq!(
            fired(&[low(3, 0), low(4, 1), low(5, 3)], RuleId::MoodLow),
            None
        );
    }
}
