//! `substance_use`: any use is high; critical after an abstinent stretch or soon after detox,
//! because tolerance falls while the craving stays — the overdose risk is highest then.

use super::{abstinent_days, DayRecord, Finding, PatientContext};
use crate::domain::policy::{RuleId, Severity, SubstanceUse};

pub(super) fn check(d: &DayRecord, ctx: &PatientContext, p: &SubstanceUse) -> Option<Finding> {
    if !d.used_substance {
        return None;
    }
    let abstinent = abstinent_days(d.date, ctx);
    let since_detox = ctx
        .left_detox_on()
        .map(|left| (d.date - left).num_days())
        .filter(|n| *n >= 0);
    let mut reasons = Vec::new();
    if let Some(n) = abstinent.filter(|n| *n >= i64::from(p.tolerance_loss_days)) {
        reasons.push(format!("after {n} abstinent days"));
    }
    if let Some(n) = since_detox.filter(|n| *n <= i64::from(p.post_detox_days)) {
        reasons.push(format!("{n} days after leaving detox"));
    }
    let critical = !reasons.is_empty();
    let explanation = if critical {
        format!(
            "The patient reported use on {} {}. Tolerance falls during abstinence while the craving stays: \
             the overdose risk is high. Contact them now; make sure they have naloxone and do not use alone.",
            d.date,
            reasons.join(" and ")
        )
    } else {
        format!("The patient reported use on {}.", d.date)
    };
    Some(Finding {
        rule: RuleId::SubstanceUse,
        severity: if critical {
            Severity::Critical
        } else {
            Severity::High
        },
        title: if critical {
            "Use after abstinence: overdose risk".into()
        } else {
            "Substance use reported".into()
        },
        explanation,
        evidence: serde_json::json!({
            "check_ins": [{"date": d.date, "used_substance": true, "substances": d.substances}],
            "abstinent_days_before": abstinent,
            "days_since_detox": since_detox,
            "tolerance_loss_days": p.tolerance_loss_days,
            "post_detox_days": p.post_detox_days,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{PatientContext, PhaseSpan};
    use crate::domain::policy::{Phase, RiskPolicy, RuleId, Severity};

    fn severity(ctx: PatientContext) -> Option<Severity> {
        eval(
            &[with(20, |d| d.used_substance = true)],
            &ctx,
            &RiskPolicy::default(),
        )
        .into_iter()
        .find(|f| f.rule == RuleId::SubstanceUse)
        .map(|f| f.severity)
    }

    fn after_use_on(day: u32) -> PatientContext {
        PatientContext {
            last_use_before: Some(date(day)),
            streak_origin: Some(date(1)),
            ..Default::default()
        }
    }

    #[test]
    fn use_is_high_and_critical_from_seven_abstinent_days() {
        assert_eq!(severity(after_use_on(13)), Some(Severity::High)); // 6 days: 14..19
        assert_eq!(severity(after_use_on(12)), Some(Severity::Critical)); // 7 days
        assert_eq!(severity(after_use_on(11)), Some(Severity::Critical)); // 8 days
        assert_eq!(fired(&[day(20)], RuleId::SubstanceUse), None);
    }

    #[test]
    fn use_within_thirty_days_of_leaving_detox_is_critical() {
        let ctx = |left: u32| PatientContext {
            phase_history: vec![
                PhaseSpan {
                    phase: Phase::Detox,
                    started_on: date(1),
                },
                PhaseSpan {
                    phase: Phase::Treatment,
                    started_on: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
                        - chrono::TimeDelta::days(left.into()),
                },
            ],
            last_use_before: Some(date(19)),
            ..Default::default()
        };
        assert_eq!(severity(ctx(30)), Some(Severity::Critical));
        assert_eq!(severity(ctx(29)), Some(Severity::Critical));
        let f = eval(
            &[with(20, |d| d.used_substance = true)],
            &ctx(31),
            &RiskPolicy::default(),
        );
        assert_eq!(f[0].severity, Severity::High);
        let crit = eval(
            &[with(20, |d| d.used_substance = true)],
            &ctx(5),
            &RiskPolicy::default(),
        );
        assert!(
            crit[0].explanation.contains("overdose"),
            "{}",
            crit[0].explanation
        );
    }
}
