//! Daily check-ins: one per patient per local date.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::schema::{check_ins, patients};
use super::{DbConnection, StoreResult};

/// A stored check-in.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = check_ins, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct CheckInRow {
    pub id: String,
    pub patient_id: String,
    pub date: NaiveDate,
    pub craving: i32,
    pub mood: i32,
    pub exercise_minutes: i32,
    pub meals: i32,
    pub used_substance: bool,
    /// JSON array of strings.
    pub substances: String,
    pub sleep_hours: Option<f64>,
    pub anxiety: Option<i32>,
    pub irritability: Option<i32>,
    pub loneliness: Option<i32>,
    /// JSON array of trigger names.
    pub triggers: String,
    pub took_medication: Option<bool>,
    pub attended_support: Option<bool>,
    /// JSON object of SOWS items.
    pub withdrawal: Option<String>,
    pub withdrawal_score: Option<i32>,
    pub self_harm_thoughts: Option<bool>,
    pub note: Option<String>,
    pub answered_at: Option<NaiveDateTime>,
    pub received_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i32,
    /// `app` (the patient's phone) or `import` (history from the clinic's earlier system).
    pub source: String,
    /// For imported check-ins, the label of the system they came from.
    pub imported_from: Option<String>,
}

/// Finds the check-in of one date.
pub fn find(
    conn: &mut DbConnection,
    patient_id: &str,
    date: NaiveDate,
) -> StoreResult<Option<CheckInRow>> {
    Ok(on_backend!(conn, |c| check_ins::table
        .filter(check_ins::patient_id.eq(patient_id))
        .filter(check_ins::date.eq(date))
        .select(CheckInRow::as_select())
        .first(c)
        .optional())?)
}

/// Inserts or replaces the check-in of `row.date`, keeping its id and creation time and
/// counting versions. Returns the stored row and whether it was new.
pub fn upsert(conn: &mut DbConnection, row: CheckInRow) -> StoreResult<(CheckInRow, bool)> {
    let existing = find(conn, &row.patient_id, row.date)?;
    upsert_over(conn, row, existing.as_ref())
}

/// [`upsert`] when the caller has just read the date's check-in (`existing`) in this
/// transaction.
pub fn upsert_over(
    conn: &mut DbConnection,
    mut row: CheckInRow,
    existing: Option<&CheckInRow>,
) -> StoreResult<(CheckInRow, bool)> {
    match existing {
        Some(existing) => {
            row.id = existing.id.clone();
            row.created_at = existing.created_at;
            row.version = existing.version + 1;
            // Optimistic: if another submission for this date committed since we read it,
            // nothing matches and the caller retries on the newer version.
            let n = on_backend!(conn, |c| super::cached_update(
                check_ins::table,
                &row,
                check_ins::id
                    .eq(&row.id)
                    .and(check_ins::version.eq(existing.version)),
            )
            .execute(c))?;
            if n != 1 {
                return Err(super::StoreError::Conflict("check_ins_version".into()));
            }
            Ok((row, false))
        }
        None => {
            row.version = 1;
            on_backend!(conn, |c| diesel::insert_into(check_ins::table)
                .values(&row)
                .execute(c))?;
            Ok((row, true))
        }
    }
}

/// Check-ins with `from <= date <= to`, oldest first. Served by the (patient, date) index, so
/// the cost follows the range, not the length of the history.
pub fn range(
    conn: &mut DbConnection,
    patient_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> StoreResult<Vec<CheckInRow>> {
    Ok(on_backend!(conn, |c| check_ins::table
        .filter(check_ins::patient_id.eq(patient_id))
        .filter(check_ins::date.ge(from))
        .filter(check_ins::date.le(to))
        .order(check_ins::date.asc())
        .select(CheckInRow::as_select())
        .load(c))?)
}

/// A page of check-ins, newest first, strictly before `before` when given.
pub fn page(
    conn: &mut DbConnection,
    patient_id: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    before: Option<NaiveDate>,
    limit: i64,
) -> StoreResult<Vec<CheckInRow>> {
    let mut q = check_ins::table
        .filter(check_ins::patient_id.eq(patient_id))
        .into_boxed();
    if let Some(f) = from {
        q = q.filter(check_ins::date.ge(f));
    }
    if let Some(t) = to {
        q = q.filter(check_ins::date.le(t));
    }
    if let Some(b) = before {
        q = q.filter(check_ins::date.lt(b));
    }
    Ok(q.order(check_ins::date.desc())
        .limit(limit)
        .select(CheckInRow::as_select())
        .load(conn)?)
}

/// The most recent date before `before` on which the patient reported use (index-served).
pub fn last_use_before(
    conn: &mut DbConnection,
    patient_id: &str,
    before: NaiveDate,
) -> StoreResult<Option<NaiveDate>> {
    Ok(on_backend!(conn, |c| check_ins::table
        .filter(check_ins::patient_id.eq(patient_id))
        .filter(check_ins::used_substance.eq(true))
        .filter(check_ins::date.lt(before))
        .order(check_ins::date.desc())
        .select(check_ins::date)
        .first(c)
        .optional())?)
}

/// The earliest check-in date.
pub fn first_date(conn: &mut DbConnection, patient_id: &str) -> StoreResult<Option<NaiveDate>> {
    Ok(on_backend!(conn, |c| check_ins::table
        .filter(check_ins::patient_id.eq(patient_id))
        .order(check_ins::date.asc())
        .select(check_ins::date)
        .first(c)
        .optional())?)
}

/// Dates of check-ins on or before `until`, newest first, at most `limit` (for streaks).
pub fn dates_back_from(
    conn: &mut DbConnection,
    patient_id: &str,
    until: NaiveDate,
    limit: i64,
) -> StoreResult<Vec<NaiveDate>> {
    Ok(on_backend!(conn, |c| check_ins::table
        .filter(check_ins::patient_id.eq(patient_id))
        .filter(check_ins::date.le(until))
        .order(check_ins::date.desc())
        .limit(limit)
        .select(check_ins::date)
        .load(c))?)
}

/// Records the denormalised dates on the patient after a check-in.
pub fn update_patient_dates(
    conn: &mut DbConnection,
    patient_id: &str,
    first: Option<NaiveDate>,
    last: Option<NaiveDate>,
    last_use: Option<NaiveDate>,
    missed_due: Option<NaiveDateTime>,
) -> StoreResult<()> {
    on_backend!(conn, |c| super::cached_update(
        patients::table,
        (
            patients::first_check_in_on.eq(first),
            patients::last_check_in_on.eq(last),
            patients::last_use_on.eq(last_use),
            patients::missed_check_due_at.eq(missed_due),
        ),
        patients::user_id.eq(patient_id),
    )
    .execute(c))?;
    Ok(())
}

/// The (date, id, created_at, version) of the check-ins with `from <= date <= to`, oldest
/// first, for deciding which dates of an import already have one (index-served, no values read).
pub fn keys_in_range(
    conn: &mut DbConnection,
    patient_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> StoreResult<Vec<(NaiveDate, String, NaiveDateTime, i32)>> {
    Ok(check_ins::table
        .filter(check_ins::patient_id.eq(patient_id))
        .filter(check_ins::date.ge(from))
        .filter(check_ins::date.le(to))
        .order(check_ins::date.asc())
        .select((
            check_ins::date,
            check_ins::id,
            check_ins::created_at,
            check_ins::version,
        ))
        .load(conn)?)
}

/// Deletes check-ins by id, in chunks.
pub fn delete_ids(conn: &mut DbConnection, ids: &[String]) -> StoreResult<usize> {
    let mut n = 0;
    for chunk in ids.chunks(super::INSERT_CHUNK) {
        n += diesel::delete(check_ins::table.filter(check_ins::id.eq_any(chunk))).execute(conn)?;
    }
    Ok(n)
}

/// Inserts many check-ins: multi-row statements on PostgreSQL, the cached single-row
/// statement on SQLite (see `insert_rows!`).
pub fn insert_many(conn: &mut DbConnection, rows: &[CheckInRow]) -> StoreResult<usize> {
    insert_rows!(conn, check_ins::table, rows);
    Ok(rows.len())
}

/// The headline values of a patient's most recent check-in.
#[derive(Debug, Clone, Queryable)]
pub struct LatestValues {
    pub patient_id: String,
    pub date: NaiveDate,
    pub craving: i32,
    pub mood: i32,
    pub sleep_hours: Option<f64>,
}

/// The most recent check-in of each of an organisation's patients (optionally only these),
/// in one query: each patient row already names its last check-in date.
pub fn latest_values(
    conn: &mut DbConnection,
    organisation_id: &str,
    only: Option<&[String]>,
) -> StoreResult<Vec<LatestValues>> {
    let mut q = check_ins::table
        .inner_join(
            patients::table.on(patients::user_id
                .eq(check_ins::patient_id)
                .and(patients::last_check_in_on.eq(check_ins::date.nullable()))),
        )
        .filter(patients::organisation_id.eq(organisation_id.to_owned()))
        .into_boxed();
    if let Some(ids) = only {
        q = q.filter(check_ins::patient_id.eq_any(ids.to_vec()));
    }
    Ok(q.select((
        check_ins::patient_id,
        check_ins::date,
        check_ins::craving,
        check_ins::mood,
        check_ins::sleep_hours,
    ))
    .load(conn)?)
}

/// (patient, date) of the check-ins an organisation's patients (optionally only these) made
/// on any of `dates`: with the handful of local todays of a caseload, who checked in today.
pub fn dates_in(
    conn: &mut DbConnection,
    organisation_id: &str,
    only: Option<&[String]>,
    dates: &[NaiveDate],
) -> StoreResult<Vec<(String, NaiveDate)>> {
    let mut q = check_ins::table
        .inner_join(patients::table)
        .filter(patients::organisation_id.eq(organisation_id.to_owned()))
        .filter(check_ins::date.eq_any(dates.to_vec()))
        .into_boxed();
    if let Some(ids) = only {
        q = q.filter(check_ins::patient_id.eq_any(ids.to_vec()));
    }
    Ok(q.select((check_ins::patient_id, check_ins::date))
        .load(conn)?)
}

/// (patient, date) of every check-in of these patients that reported use.
pub fn use_dates(
    conn: &mut DbConnection,
    patient_ids: &[String],
) -> StoreResult<Vec<(String, NaiveDate)>> {
    Ok(check_ins::table
        .filter(check_ins::patient_id.eq_any(patient_ids.to_vec()))
        .filter(check_ins::used_substance.eq(true))
        .select((check_ins::patient_id, check_ins::date))
        .load(conn)?)
}
