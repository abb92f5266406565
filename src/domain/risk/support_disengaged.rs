//! `support_disengaged`: in aftercare long enough for the window to mean something, answering
//! the support question, and no meeting lately.
//!
//! It fires only when the whole window (`days` local days ending today) lies inside the current
//! aftercare phase — a patient who joined aftercare last week has not yet had the chance — and
//! at least `min_check_ins` check-ins of that window *answered* `attended_support`, none of them
//! yes. A check-in that left the question unanswered says nothing about meetings, so it is not
//! counted: a patient who was never asked is never flagged.

use chrono::TimeDelta;

use super::{DayRecord, Days, Finding, PatientContext};
use crate::domain::policy::{Phase, RuleId, Severity, SupportDisengaged};

pub(super) fn check(
    d: &DayRecord,
    days: &Days<'_>,
    ctx: &PatientContext,
    p: &SupportDisengaged,
) -> Option<Finding> {
    let phase = ctx.phase_history.last()?;
    if phase.phase != Phase::Aftercare {
        return None;
    }
    let from = d.date - TimeDelta::days(i64::from(p.days) - 1);
    if phase.started_on > from {
        return None;
    }
    let answered: Vec<&DayRecord> = days
        .between(from, d.date)
        .into_iter()
        .filter(|r| r.attended_support.is_some())
        .collect();
    if answered.len() < usize::try_from(p.min_check_ins).unwrap_or(usize::MAX) {
        return None;
    }
    if answered.iter().any(|r| r.attended_support == Some(true)) {
        return None;
    }
    Some(Finding {
        rule: RuleId::SupportDisengaged,
        severity: Severity::Info,
        title: "No support meetings lately".into(),
        explanation: format!(
            "No support group, NA meeting or therapy session reported in {} days ({} to {}): {} check-ins answered the question, each with no. In aftercare since {}.",
            p.days,
            from,
            d.date,
            answered.len(),
            phase.started_on
        ),
        evidence: serde_json::json!({
            "from": from,
            "to": d.date,
            "check_ins": answered.len(),
            "days": p.days,
            "aftercare_since": phase.started_on,
            "answered": super::evidence_of(&answered, "attended_support", |r| r.attended_support.into()),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{DayRecord, PatientContext, PhaseSpan};
    use crate::domain::policy::{Phase, RiskPolicy, RuleId};

    fn ctx(phase: Phase, started: u32) -> PatientContext {
        PatientContext {
            phase_history: vec![PhaseSpan {
                phase,
                started_on: date(started),
            }],
            ..Default::default()
        }
    }

    fn fires_in(records: &[DayRecord], ctx: &PatientContext) -> bool {
        eval(records, ctx, &RiskPolicy::default())
            .iter()
            .any(|f| f.rule == RuleId::SupportDisengaged)
    }

    fn fires(records: &[DayRecord], phase: Phase) -> bool {
        fires_in(records, &ctx(phase, 1))
    }

    fn no_meeting(d: u32) -> DayRecord {
        with(d, |r| r.attended_support = Some(false))
    }

    #[test]
    fn seven_answered_check_ins_in_fourteen_days_without_support() {
        let seven: Vec<_> = (14..=20).map(no_meeting).collect();
        assert!(fires(&seven, Phase::Aftercare));
        assert!(!fires(&seven, Phase::Treatment), "only in aftercare");
        let six: Vec<_> = (15..=20).map(no_meeting).collect();
        assert!(!fires(&six, Phase::Aftercare), "six answers: one short");
        let eight: Vec<_> = (13..=20).map(no_meeting).collect();
        assert!(fires(&eight, Phase::Aftercare));
        let mut went = seven.clone();
        went[0].attended_support = Some(true);
        assert!(!fires(&went, Phase::Aftercare));
        let mut long_ago = seven.clone();
        long_ago.insert(0, with(6, |d| d.attended_support = Some(true)));
        assert!(
            fires(&long_ago, Phase::Aftercare),
            "support 14 days before today is outside the window"
        );
    }

    #[test]
    fn unanswered_check_ins_are_not_counted() {
        // Fourteen check-ins, six answering no and eight leaving the question out.
        let mut days: Vec<_> = (7..=20).map(day).collect();
        for r in days.iter_mut().take(6) {
            r.attended_support = Some(false);
        }
        assert!(!fires(&days, Phase::Aftercare), "six answers");
        days[6].attended_support = Some(false);
        assert!(fires(&days, Phase::Aftercare), "seven answers");
        let never_asked: Vec<_> = (7..=20).map(day).collect();
        assert!(!fires(&never_asked, Phase::Aftercare));
    }

    #[test]
    fn the_whole_window_must_lie_in_aftercare() {
        // Today is the 20th: the 14-day window starts on the 7th.
        let seven: Vec<_> = (14..=20).map(no_meeting).collect();
        assert!(fires_in(&seven, &ctx(Phase::Aftercare, 6)), "15 days in");
        assert!(fires_in(&seven, &ctx(Phase::Aftercare, 7)), "14 days in");
        assert!(!fires_in(&seven, &ctx(Phase::Aftercare, 8)), "13 days in");
        assert!(
            !fires_in(&seven, &ctx(Phase::Aftercare, 20)),
            "enrolled in aftercare today"
        );
    }
}
