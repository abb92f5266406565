//! `missed_check_ins`: silence is a signal. Found by the background sweep, not by a request.

use chrono::{NaiveDate, TimeDelta};

use super::Finding;
use crate::domain::policy::{RiskPolicy, RuleId, Severity};

/// Whole local days with no check-in between the last one and today (today is not over yet).
fn missed(last: NaiveDate, today: NaiveDate) -> i64 {
    ((today - last).num_days() - 1).max(0)
}

/// The finding for a patient last seen on `last`, as of the local `today`.
pub fn missed_check_ins_finding(
    last: NaiveDate,
    today: NaiveDate,
    policy: &RiskPolicy,
) -> Option<Finding> {
    let p = &policy.rules.missed_check_ins;
    if !p.enabled {
        return None;
    }
    let n = missed(last, today);
    let severity = if n >= i64::from(p.high_after_days) {
        Severity::High
    } else if n >= i64::from(p.warning_after_days) {
        Severity::Warning
    } else {
        return None;
    };
    Some(Finding {
        rule: RuleId::MissedCheckIns,
        severity,
        title: format!("No check-in for {n} days"),
        explanation: format!(
            "The patient has not checked in for {n} days; the last check-in was on {last}."
        ),
        evidence: serde_json::json!({"last_check_in_date": last, "missed_days": n, "as_of": today}),
    })
}

/// The local date on which the next level would first fire, for the sweep's schedule.
pub fn next_missed_check_in_due(last: NaiveDate, policy: &RiskPolicy) -> Option<NaiveDate> {
    let p = &policy.rules.missed_check_ins;
    if !p.enabled {
        return None;
    }
    Some(last + TimeDelta::days(i64::from(p.warning_after_days) + 1))
}

/// After the sweep raised `severity`, when to look again (None: nothing more to raise).
pub fn next_missed_check_in_due_after(
    last: NaiveDate,
    severity: Severity,
    policy: &RiskPolicy,
) -> Option<NaiveDate> {
    let p = &policy.rules.missed_check_ins;
    match severity {
        Severity::Warning if p.high_after_days > p.warning_after_days => {
            Some(last + TimeDelta::days(i64::from(p.high_after_days) + 1))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::risk::testing::date;

    #[test]
    fn warning_at_two_missed_days_high_at_four() {
        let p = RiskPolicy::default();
        let sev = |today| missed_check_ins_finding(date(20), date(today), &p).map(|f| f.severity);
        assert_eq!(sev(22), None); // 21 missed: 1 day
        assert_eq!(sev(23), Some(Severity::Warning)); // 21, 22
        assert_eq!(sev(24), Some(Severity::Warning)); // 3 days
        assert_eq!(sev(25), Some(Severity::High)); // 4 days
        assert_eq!(sev(26), Some(Severity::High));
        assert_eq!(next_missed_check_in_due(date(20), &p), Some(date(23)));
        assert_eq!(
            next_missed_check_in_due_after(date(20), Severity::Warning, &p),
            Some(date(25))
        );
        assert_eq!(
            next_missed_check_in_due_after(date(20), Severity::High, &p),
            None
        );
    }
}
