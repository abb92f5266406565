//! `support_disengaged`: in aftercare, checking in regularly but no support meeting lately.

use chrono::TimeDelta;

use super::{DayRecord, Days, Finding, PatientContext};
use crate::domain::policy::{Phase, RuleId, Severity, SupportDisengaged};

pub(super) fn check(
    d: &DayRecord,
    days: &Days<'_>,
    ctx: &PatientContext,
    p: &SupportDisengaged,
) -> Option<Finding> {
    if ctx.current_phase() != Some(Phase::Aftercare) {
        return None;
    }
    let from = d.date - TimeDelta::days(i64::from(p.days) - 1);
    let window = days.between(from, d.date);
    if window.len() < usize::try_from(p.min_check_ins).unwrap_or(usize::MAX) {
        return None;
    }
    if window.iter().any(|r| r.attended_support == Some(true)) {
        return None;
    }
    Some(Finding {
        rule: RuleId::SupportDisengaged,
        severity: Severity::Info,
        title: "No support meetings lately".into(),
        explanation: format!(
            "No support group, NA meeting or therapy session reported in {} days ({} to {}), across {} check-ins.",
            p.days,
            from,
            d.date,
            window.len()
        ),
        evidence: serde_json::json!({"from": from, "to": d.date, "check_ins": window.len(), "days": p.days}),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{PatientContext, PhaseSpan};
    use crate::domain::policy::{Phase, RiskPolicy, RuleId};

    fn ctx(phase: Phase) -> PatientContext {
        PatientContext {
            phase_history: vec![PhaseSpan {
                phase,
                started_on: date(1),
            }],
            ..Default::default()
        }
    }

    fn fires(records: &[super::DayRecord], phase: Phase) -> bool {
        eval(records, &ctx(phase), &RiskPolicy::default())
            .iter()
            .any(|f| f.rule == RuleId::SupportDisengaged)
    }

    #[test]
    fn seven_check_ins_in_fourteen_days_without_support() {
        let seven: Vec<_> = (14..=20).map(day).collect();
        assert!(fires(&seven, Phase::Aftercare));
        assert!(!fires(&seven, Phase::Treatment), "only in aftercare");
        let six: Vec<_> = (15..=20).map(day).collect();
        assert!(!fires(&six, Phase::Aftercare));
        let mut went = seven.clone();
        went[0].attended_support = Some(true);
        assert!(!fires(&went, Phase::Aftercare));
        let mut long_ago: Vec<_> = (14..=20).map(day).collect();
        long_ago.insert(0, with(6, |d| d.attended_support = Some(true)));
        assert!(
            fires(&long_ago, Phase::Aftercare),
            "support 14 days before today is outside the window"
        );
    }
}
