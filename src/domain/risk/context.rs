//! The patient context the rules read on a date, and the date a silence counts from: pure, so
//! the live check-in path, the sweep and the backtest replay build them the same way.

use chrono::{NaiveDate, TimeDelta};

use super::{PatientContext, PhaseSpan};
use crate::domain::policy::Phase;

/// The context for a check-in dated `date`.
///
/// - `phase_history`: the patient's phases, oldest first.
/// - `first_check_in`: the patient's earliest check-in date, if any.
/// - `enrolment_last_use`: the last use given at enrolment, if any.
/// - `reported_use_before`: the latest check-in before `date` that reported use, if any.
pub fn patient_context_on(
    date: NaiveDate,
    phase_history: Vec<PhaseSpan>,
    first_check_in: Option<NaiveDate>,
    enrolment_last_use: Option<NaiveDate>,
    reported_use_before: Option<NaiveDate>,
) -> PatientContext {
    let last_use_before = match (reported_use_before, enrolment_last_use) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b.filter(|d| *d < date)),
    };
    PatientContext {
        phase_history,
        last_use_before,
        streak_origin: streak_origin(first_check_in, enrolment_last_use),
    }
}

/// Where an abstinent streak starts when no use was reported: the first check-in, or the day
/// after the last use given at enrolment, whichever is earlier.
pub fn streak_origin(
    first_check_in: Option<NaiveDate>,
    enrolment_last_use: Option<NaiveDate>,
) -> Option<NaiveDate> {
    match (first_check_in, enrolment_last_use) {
        (Some(f), Some(e)) => Some(f.min(e + TimeDelta::days(1))),
        (Some(f), None) => Some(f),
        (None, Some(e)) => Some(e + TimeDelta::days(1)),
        (None, None) => None,
    }
}

/// The date the silence clock starts from: the last check-in, but never before the patient
/// enrolled (history imported from a clinic's earlier system, or check-ins sent for the days
/// before joining, are not days the patient went quiet on aftercare), or the return to care
/// when the latest phase change brought the patient back from discharge (a patient back in
/// care is not "missing" the months they were discharged).
pub fn silence_since_on(
    last_check_in: Option<NaiveDate>,
    enrolled_on: NaiveDate,
    phase_history: &[PhaseSpan],
) -> NaiveDate {
    let last = last_check_in.map_or(enrolled_on, |l| l.max(enrolled_on));
    let readmitted = match phase_history {
        [.., before, now]
            if before.phase == Phase::Discharged && now.phase != Phase::Discharged =>
        {
            Some(now.started_on)
        }
        _ => None,
    };
    readmitted.map_or(last, |r| last.max(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::risk::testing::date;

    fn span(phase: Phase, d: u32) -> PhaseSpan {
        PhaseSpan {
            phase,
            started_on: date(d),
        }
    }

    #[test]
    fn last_use_is_the_later_of_reported_and_enrolment() {
        let c = patient_context_on(
            date(10),
            vec![],
            Some(date(3)),
            Some(date(1)),
            Some(date(5)),
        );
        assert_eq!(c.last_use_before, Some(date(5)));
        assert_eq!(c.streak_origin, Some(date(2)));
        let c = patient_context_on(
            date(10),
            vec![],
            Some(date(3)),
            Some(date(6)),
            Some(date(5)),
        );
        assert_eq!(c.last_use_before, Some(date(6)));
        // An enrolment last-use on the check-in's own date is not "before" it.
        let c = patient_context_on(date(10), vec![], None, Some(date(10)), None);
        assert_eq!(c.last_use_before, None);
        let c = patient_context_on(date(10), vec![], None, Some(date(9)), None);
        assert_eq!(c.last_use_before, Some(date(9)));
        assert_eq!(c.streak_origin, Some(date(10)));
        assert_eq!(streak_origin(Some(date(4)), None), Some(date(4)));
        assert_eq!(streak_origin(None, None), None);
    }

    #[test]
    fn silence_counts_from_readmission_after_discharge() {
        let h = [span(Phase::Aftercare, 1), span(Phase::Discharged, 5)];
        assert_eq!(silence_since_on(Some(date(4)), date(1), &h), date(4));
        assert_eq!(silence_since_on(None, date(2), &h), date(2));
        // History from before enrolment does not start the clock early.
        assert_eq!(silence_since_on(Some(date(1)), date(3), &h), date(3));
        let h = [
            span(Phase::Aftercare, 1),
            span(Phase::Discharged, 5),
            span(Phase::Treatment, 20),
        ];
        assert_eq!(silence_since_on(Some(date(4)), date(1), &h), date(20));
        assert_eq!(silence_since_on(Some(date(22)), date(1), &h), date(22));
    }
}
