//! `self_harm`: thoughts of self-harm are always critical.

use super::{DayRecord, Finding};
use crate::domain::policy::{RuleId, Severity};

pub(super) fn check(d: &DayRecord) -> Option<Finding> {
    (d.self_harm_thoughts == Some(true)).then(|| Finding {
        rule: RuleId::SelfHarm,
        severity: Severity::Critical,
        title: "Thoughts of self-harm".into(),
        explanation: format!(
            "The patient reported thoughts of harming or killing themselves on {}.",
            d.date
        ),
        evidence: serde_json::json!({"check_ins": [{"date": d.date, "self_harm_thoughts": true}]}),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::domain::policy::{RuleId, Severity};

    #[test]
    fn fires_only_when_true() {
        assert_eq!(
            fired(
                &[with(5, |d| d.self_harm_thoughts = Some(true))],
                RuleId::SelfHarm
            ),
            Some(Severity::Critical)
        );
        assert_eq!(
            fired(
                &[with(5, |d| d.self_harm_thoughts = Some(false))],
                RuleId::SelfHarm
            ),
            None
        );
        assert_eq!(fired(&[day(5)], RuleId::SelfHarm), None);
    }
}
