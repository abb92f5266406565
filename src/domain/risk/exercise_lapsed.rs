//! `exercise_lapsed`: no exercise on consecutive days after the patient had been exercising.

use chrono::TimeDelta;

use super::{DayRecord, Days, Finding};
use crate::domain::policy::{ExerciseLapsed, RuleId, Severity};

pub(super) fn check(d: &DayRecord, days: &Days<'_>, p: &ExerciseLapsed) -> Option<Finding> {
    let run = days.run(d.date, p.consecutive_days, |r| r.exercise_minutes == 0)?;
    let run_start = run.first()?.date;
    let from = d.date - TimeDelta::days(i64::from(p.lookback_days) - 1);
    let earlier = days
        .between(from, run_start.pred_opt()?)
        .into_iter()
        .rfind(|r| r.exercise_minutes > 0)?;
    Some(Finding {
        rule: RuleId::ExerciseLapsed,
        severity: Severity::Info,
        title: "Exercise has stopped".into(),
        explanation: format!(
            "No exercise on {} consecutive days ({} to {}); the patient exercised {} minutes on {}.",
            run.len(),
            run_start,
            d.date,
            earlier.exercise_minutes,
            earlier.date
        ),
        evidence: serde_json::json!({
            "run": {"from": run_start, "to": d.date, "days": run.len()},
            "last_exercise": {"date": earlier.date, "exercise_minutes": earlier.exercise_minutes},
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::domain::policy::{RuleId, Severity};

    fn lazy(d: u32) -> super::DayRecord {
        with(d, |r| r.exercise_minutes = 0)
    }

    #[test]
    fn seven_idle_days_after_exercising() {
        let mut seq = vec![day(3)];
        seq.extend((4..=10).map(lazy));
        assert_eq!(fired(&seq, RuleId::ExerciseLapsed), Some(Severity::Info));
        let six: Vec<_> = std::iter::once(day(4)).chain((5..=10).map(lazy)).collect();
        assert_eq!(fired(&six[..], RuleId::ExerciseLapsed), None, "6 idle days");
        let never: Vec<_> = (4..=10).map(lazy).collect();
        assert_eq!(
            fired(&never, RuleId::ExerciseLapsed),
            None,
            "never exercised"
        );
        let gap: Vec<_> = [day(3)]
            .into_iter()
            .chain((4..=10).filter(|d| *d != 7).map(lazy))
            .collect();
        assert_eq!(
            fired(&gap, RuleId::ExerciseLapsed),
            None,
            "a missing day breaks the run"
        );
    }
}
