//! `medication_missed`: medication for opioid use disorder not taken on consecutive days.

use super::{evidence_of, DayRecord, Days, Finding};
use crate::domain::policy::{MedicationMissed, RuleId, Severity};

pub(super) fn check(d: &DayRecord, days: &Days<'_>, p: &MedicationMissed) -> Option<Finding> {
    let run = days.run(d.date, p.consecutive_days, |r| {
        r.took_medication == Some(false)
    })?;
    Some(Finding {
        rule: RuleId::MedicationMissed,
        severity: Severity::Warning,
        title: "Medication missed".into(),
        explanation: format!(
            "Medication was not taken as prescribed on {} consecutive days, up to {}.",
            run.len(),
            d.date
        ),
        evidence: serde_json::json!({"check_ins": evidence_of(&run, "took_medication", |r| r.took_medication.into())}),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::domain::policy::{RuleId, Severity};

    #[test]
    fn two_days_missed_in_a_row() {
        let m = |d: u32, v: Option<bool>| with(d, move |r| r.took_medication = v);
        assert_eq!(
            fired(
                &[m(4, Some(false)), m(5, Some(false))],
                RuleId::MedicationMissed
            ),
            Some(Severity::Warning)
        );
        assert_eq!(
            fired(
                &[m(4, Some(true)), m(5, Some(false))],
                RuleId::MedicationMissed
            ),
            None
        );
        assert_eq!(
            fired(&[m(4, None), m(5, Some(false))], RuleId::MedicationMissed),
            None
        );
        assert_eq!(
            fired(
                &[m(3, Some(false)), m(5, Some(false))],
                RuleId::MedicationMissed
            ),
            None
        );
    }
}
