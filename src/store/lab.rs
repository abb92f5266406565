//! Reads for the policy lab's backtest: a batch of patients' check-ins, phases and what came
//! before, and how the real alerts of a stretch were resolved. Each is one query per batch.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::max;
use diesel::prelude::*;

use super::check_ins::CheckInRow;
use super::patients::PhaseChangeRow;
use super::schema::{alerts, check_ins, phase_changes};
use super::{DbConnection, StoreResult};

/// Check-ins of `ids` with `from <= date <= to`, by patient then date.
pub fn check_ins_of(
    conn: &mut DbConnection,
    ids: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> StoreResult<Vec<CheckInRow>> {
    Ok(check_ins::table
        .filter(check_ins::patient_id.eq_any(ids))
        .filter(check_ins::date.ge(from))
        .filter(check_ins::date.le(to))
        .order((check_ins::patient_id.asc(), check_ins::date.asc()))
        .select(CheckInRow::as_select())
        .load(conn)?)
}

/// Per patient of `ids`, the latest check-in date before `before`.
pub fn last_check_in_before(
    conn: &mut DbConnection,
    ids: &[String],
    before: NaiveDate,
) -> StoreResult<Vec<(String, Option<NaiveDate>)>> {
    Ok(check_ins::table
        .filter(check_ins::patient_id.eq_any(ids))
        .filter(check_ins::date.lt(before))
        .group_by(check_ins::patient_id)
        .select((check_ins::patient_id, max(check_ins::date)))
        .load(conn)?)
}

/// Per patient of `ids`, the latest check-in reporting use before `before`.
pub fn last_use_before(
    conn: &mut DbConnection,
    ids: &[String],
    before: NaiveDate,
) -> StoreResult<Vec<(String, Option<NaiveDate>)>> {
    Ok(check_ins::table
        .filter(check_ins::patient_id.eq_any(ids))
        .filter(check_ins::used_substance.eq(true))
        .filter(check_ins::date.lt(before))
        .group_by(check_ins::patient_id)
        .select((check_ins::patient_id, max(check_ins::date)))
        .load(conn)?)
}

/// The phase histories of `ids`, by patient, oldest first.
pub fn phase_histories(
    conn: &mut DbConnection,
    ids: &[String],
) -> StoreResult<Vec<PhaseChangeRow>> {
    Ok(phase_changes::table
        .filter(phase_changes::patient_id.eq_any(ids))
        .order((
            phase_changes::patient_id.asc(),
            phase_changes::started_on.asc(),
            phase_changes::created_at.asc(),
        ))
        .select(PhaseChangeRow::as_select())
        .load(conn)?)
}

/// The (leading rule, status, outcome) of the organisation's alerts created in
/// `from <= created_at < until`, for the patients `ids` when given.
pub fn alert_outcomes(
    conn: &mut DbConnection,
    organisation_id: &str,
    ids: Option<&[String]>,
    from: NaiveDateTime,
    until: NaiveDateTime,
) -> StoreResult<Vec<(String, String, Option<String>)>> {
    let mut q = alerts::table
        .filter(alerts::organisation_id.eq(organisation_id.to_owned()))
        .filter(alerts::created_at.ge(from))
        .filter(alerts::created_at.lt(until))
        // Alerts carried over into another episode by the upgrade were resolved by no one:
        // they are not a counsellor's judgement.
        .filter(
            alerts::status
                .ne("resolved")
                .or(alerts::resolved_by.is_not_null()),
        )
        .into_boxed();
    if let Some(ids) = ids {
        q = q.filter(alerts::patient_id.eq_any(ids.to_vec()));
    }
    Ok(q.select((alerts::rule, alerts::status, alerts::outcome))
        .load(conn)?)
}
