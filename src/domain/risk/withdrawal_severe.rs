//! `withdrawal_severe`: a SOWS total at or above the threshold.

use super::{DayRecord, Finding};
use crate::domain::policy::{RuleId, Severity, WithdrawalSevere};

pub(super) fn check(d: &DayRecord, p: &WithdrawalSevere) -> Option<Finding> {
    let score = d.withdrawal_score?;
    if i64::from(score) < i64::from(p.threshold) {
        return None;
    }
    Some(Finding {
        rule: RuleId::WithdrawalSevere,
        severity: Severity::High,
        title: "Severe withdrawal".into(),
        explanation: format!(
            "Withdrawal (SOWS) scored {score}/64 on {} (threshold {}).",
            d.date, p.threshold
        ),
        evidence: serde_json::json!({"check_ins": [{"date": d.date, "withdrawal_score": score}], "threshold": p.threshold}),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::domain::policy::{RuleId, Severity};

    #[test]
    fn threshold_boundaries() {
        assert_eq!(
            fired(
                &[with(5, |d| d.withdrawal_score = Some(20))],
                RuleId::WithdrawalSevere
            ),
            None
        );
        assert_eq!(
            fired(
                &[with(5, |d| d.withdrawal_score = Some(21))],
                RuleId::WithdrawalSevere
            ),
            Some(Severity::High)
        );
        assert_eq!(
            fired(
                &[with(5, |d| d.withdrawal_score = Some(22))],
                RuleId::WithdrawalSevere
            ),
            Some(Severity::High)
        );
        assert_eq!(fired(&[day(5)], RuleId::WithdrawalSevere), None);
    }
}
