//! `halt`: hungry, angry, lonely, tired — several at once in one check-in. Only signals whose
//! fields were answered count.

use super::{DayRecord, Finding};
use crate::domain::policy::{Halt, RuleId, Severity};

pub(super) fn check(d: &DayRecord, p: &Halt) -> Option<Finding> {
    let at_least = |v: Option<i32>, t: u32| v.is_some_and(|x| i64::from(x) >= i64::from(t));
    let mut signals = Vec::new();
    if i64::from(d.meals) <= i64::from(p.hungry_meals_at_most) {
        signals.push(("hungry", serde_json::json!({"meals": d.meals})));
    }
    if at_least(d.irritability, p.angry_irritability_at_least) {
        signals.push(("angry", serde_json::json!({"irritability": d.irritability})));
    }
    if at_least(d.loneliness, p.lonely_loneliness_at_least) {
        signals.push(("lonely", serde_json::json!({"loneliness": d.loneliness})));
    }
    if d.sleep_hours.is_some_and(|h| h < p.tired_sleep_below_hours) {
        signals.push(("tired", serde_json::json!({"sleep_hours": d.sleep_hours})));
    }
    if signals.len() < usize::try_from(p.signals).unwrap_or(usize::MAX) {
        return None;
    }
    let names: Vec<&str> = signals.iter().map(|(n, _)| *n).collect();
    Some(Finding {
        rule: RuleId::Halt,
        severity: Severity::High,
        title: "HALT: several relapse warning signs at once".into(),
        explanation: format!(
            "On {} the patient was {} — {} of the HALT signs at once.",
            d.date,
            names.join(", "),
            names.len()
        ),
        evidence: serde_json::json!({
            "date": d.date,
            "signals": signals.into_iter().map(|(n, v)| serde_json::json!({"signal": n, "values": v})).collect::<Vec<_>>(),
            "needed": p.signals,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::domain::policy::{RuleId, Severity};

    #[test]
    fn three_of_four_signals() {
        let two = with(5, |d| {
            d.meals = 1;
            d.irritability = Some(7);
        });
        assert_eq!(fired(&[two], RuleId::Halt), None);
        let three = with(5, |d| {
            d.meals = 1;
            d.irritability = Some(7);
            d.loneliness = Some(7);
        });
        assert_eq!(fired(&[three], RuleId::Halt), Some(Severity::High));
        let just_below = with(5, |d| {
            d.meals = 2;
            d.irritability = Some(6);
            d.loneliness = Some(7);
            d.sleep_hours = Some(4.9);
        });
        assert_eq!(fired(&[just_below], RuleId::Halt), None);
        let four = with(5, |d| {
            d.meals = 0;
            d.irritability = Some(10);
            d.loneliness = Some(8);
            d.sleep_hours = Some(3.0);
        });
        assert_eq!(fired(&[four], RuleId::Halt), Some(Severity::High));
    }
}
