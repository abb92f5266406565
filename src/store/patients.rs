//! Patients, their phase history and care teams.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::schema::{care_team_members, patients, phase_changes, users};
use super::{DbConnection, StoreResult};

/// A patient's clinical record header.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = patients)]
pub struct PatientRow {
    pub user_id: String,
    pub organisation_id: String,
    pub phase: String,
    pub phase_started_on: NaiveDate,
    pub enrolment_last_use_on: Option<NaiveDate>,
    pub risk_overrides: Option<String>,
    pub first_check_in_on: Option<NaiveDate>,
    pub last_check_in_on: Option<NaiveDate>,
    pub last_use_on: Option<NaiveDate>,
    pub missed_check_due_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    /// ISO 3166-1 alpha-2, for crisis resources; `None`: the country of the timezone.
    pub country: Option<String>,
    /// When the account was closed (erasure asked for); `None` while it is open.
    pub closed_at: Option<NaiveDateTime>,
    /// Who closed it: the patient, or the admin who erased them.
    pub closed_by: Option<String>,
    /// When the housekeeping erases the clinical content (closure + the retention delay).
    pub erasure_due_at: Option<NaiveDateTime>,
    /// When the clinical content was erased; the patient is then out of everyone's reach.
    pub erased_at: Option<NaiveDateTime>,
}

/// One entry of the phase history.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = phase_changes)]
pub struct PhaseChangeRow {
    pub id: String,
    pub patient_id: String,
    pub phase: String,
    pub started_on: NaiveDate,
    pub changed_by: Option<String>,
    pub created_at: NaiveDateTime,
}

/// A care-team membership.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = care_team_members)]
pub struct CareTeamRow {
    pub patient_id: String,
    pub counsellor_id: String,
    pub is_primary: bool,
    pub added_at: NaiveDateTime,
}

/// Inserts a patient and the first phase-history entry.
pub fn insert(
    conn: &mut DbConnection,
    row: &PatientRow,
    first_phase: &PhaseChangeRow,
) -> StoreResult<()> {
    diesel::insert_into(patients::table)
        .values(row)
        .execute(conn)?;
    diesel::insert_into(phase_changes::table)
        .values(first_phase)
        .execute(conn)?;
    Ok(())
}

/// Finds a patient.
pub fn find(conn: &mut DbConnection, user_id: &str) -> StoreResult<Option<PatientRow>> {
    Ok(on_backend!(conn, |c| patients::table
        .find(user_id)
        .select(PatientRow::as_select())
        .first(c)
        .optional())?)
}

/// Finds a patient with its user row.
pub fn find_with_user(
    conn: &mut DbConnection,
    user_id: &str,
) -> StoreResult<Option<(PatientRow, super::accounts::UserRow)>> {
    Ok(patients::table
        .inner_join(users::table)
        .filter(patients::user_id.eq(user_id))
        .select((
            PatientRow::as_select(),
            super::accounts::UserRow::as_select(),
        ))
        .first(conn)
        .optional()?)
}

/// Whether `counsellor_id` is on the patient's care team.
pub fn on_care_team(
    conn: &mut DbConnection,
    patient_id: &str,
    counsellor_id: &str,
) -> StoreResult<bool> {
    Ok(care_team_members::table
        .find((patient_id, counsellor_id))
        .select(care_team_members::is_primary)
        .first::<bool>(conn)
        .optional()?
        .is_some())
}

/// The care team of a patient.
pub fn care_team(conn: &mut DbConnection, patient_id: &str) -> StoreResult<Vec<CareTeamRow>> {
    Ok(care_team_members::table
        .filter(care_team_members::patient_id.eq(patient_id))
        .order(care_team_members::added_at.asc())
        .select(CareTeamRow::as_select())
        .load(conn)?)
}

/// The active counsellors on a patient's care team (for delivery).
pub fn care_team_users(
    conn: &mut DbConnection,
    patient_id: &str,
) -> StoreResult<Vec<super::accounts::UserRow>> {
    Ok(care_team_members::table
        .inner_join(users::table.on(users::id.eq(care_team_members::counsellor_id)))
        .filter(care_team_members::patient_id.eq(patient_id))
        .filter(users::disabled.eq(false))
        .select(super::accounts::UserRow::as_select())
        .load(conn)?)
}

/// Replaces the care team.
pub fn replace_care_team(
    conn: &mut DbConnection,
    patient_id: &str,
    members: &[CareTeamRow],
) -> StoreResult<()> {
    diesel::delete(care_team_members::table.filter(care_team_members::patient_id.eq(patient_id)))
        .execute(conn)?;
    // MultiConnection has no batch insert; care teams are a handful of rows.
    for m in members {
        diesel::insert_into(care_team_members::table)
            .values(m)
            .execute(conn)?;
    }
    Ok(())
}

/// Adds one member (used when a counsellor's invitation is redeemed).
pub fn add_care_team_member(conn: &mut DbConnection, member: &CareTeamRow) -> StoreResult<()> {
    diesel::insert_into(care_team_members::table)
        .values(member)
        .execute(conn)?;
    Ok(())
}

/// The phase history, oldest first.
pub fn phase_history(
    conn: &mut DbConnection,
    patient_id: &str,
) -> StoreResult<Vec<PhaseChangeRow>> {
    Ok(on_backend!(conn, |c| phase_changes::table
        .filter(phase_changes::patient_id.eq(patient_id))
        .order((
            phase_changes::started_on.asc(),
            phase_changes::created_at.asc(),
        ))
        .select(PhaseChangeRow::as_select())
        .load(c))?)
}

/// Moves a patient to a new phase, keeping history.
pub fn change_phase(conn: &mut DbConnection, change: &PhaseChangeRow) -> StoreResult<()> {
    diesel::insert_into(phase_changes::table)
        .values(change)
        .execute(conn)?;
    diesel::update(patients::table.find(&change.patient_id))
        .set((
            patients::phase.eq(&change.phase),
            patients::phase_started_on.eq(change.started_on),
        ))
        .execute(conn)?;
    Ok(())
}

/// Sets or clears the per-patient risk-policy overrides (JSON).
pub fn set_overrides(
    conn: &mut DbConnection,
    patient_id: &str,
    overrides: Option<&str>,
) -> StoreResult<()> {
    diesel::update(patients::table.find(patient_id))
        .set(patients::risk_overrides.eq(overrides))
        .execute(conn)?;
    Ok(())
}

/// Ids of the patients a counsellor may read (their care teams).
pub fn ids_for_counsellor(
    conn: &mut DbConnection,
    counsellor_id: &str,
) -> StoreResult<Vec<String>> {
    Ok(care_team_members::table
        .filter(care_team_members::counsellor_id.eq(counsellor_id))
        .select(care_team_members::patient_id)
        .load(conn)?)
}

/// The open accounts among an organisation's patients with their user rows, optionally only
/// these ids (closed accounts are in no caseload, sweep or backtest).
pub fn list_with_users(
    conn: &mut DbConnection,
    organisation_id: &str,
    only: Option<Vec<String>>,
) -> StoreResult<Vec<(PatientRow, super::accounts::UserRow)>> {
    let mut q = patients::table
        .inner_join(users::table)
        .filter(patients::organisation_id.eq(organisation_id.to_owned()))
        .filter(patients::closed_at.is_null())
        .into_boxed();
    if let Some(ids) = only {
        q = q.filter(patients::user_id.eq_any(ids));
    }
    Ok(q.select((
        PatientRow::as_select(),
        super::accounts::UserRow::as_select(),
    ))
    .load(conn)?)
}

/// Claims up to `limit` patients whose missed-check-in review is due, oldest first, in one
/// statement: on PostgreSQL their rows are locked until the transaction ends (skipping rows
/// another process holds), so several processes never review one patient at once; SQLite has
/// a single writer and needs no lock.
pub fn claim_due(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    limit: i64,
) -> StoreResult<Vec<PatientRow>> {
    let q = patients::table
        .filter(patients::missed_check_due_at.le(now))
        .filter(patients::closed_at.is_null())
        .order(patients::missed_check_due_at.asc())
        .limit(limit);
    Ok(match conn {
        DbConnection::Postgresql(pg) => q
            .select(PatientRow::as_select())
            .for_update()
            .skip_locked()
            .load(pg)?,
        DbConnection::Sqlite(lite) => q.select(PatientRow::as_select()).load(lite)?,
    })
}

/// The phase histories of several patients in one query, each patient's oldest first.
pub fn phase_histories(
    conn: &mut DbConnection,
    patient_ids: &[String],
) -> StoreResult<Vec<PhaseChangeRow>> {
    Ok(phase_changes::table
        .filter(phase_changes::patient_id.eq_any(patient_ids))
        .order((
            phase_changes::patient_id.asc(),
            phase_changes::started_on.asc(),
            phase_changes::created_at.asc(),
        ))
        .select(PhaseChangeRow::as_select())
        .load(conn)?)
}

/// Sets one next missed-check-in review for several patients in one statement.
pub fn set_missed_due_many(
    conn: &mut DbConnection,
    patient_ids: &[String],
    due: Option<NaiveDateTime>,
) -> StoreResult<usize> {
    Ok(
        diesel::update(patients::table.filter(patients::user_id.eq_any(patient_ids)))
            .set(patients::missed_check_due_at.eq(due))
            .execute(conn)?,
    )
}

/// Sets when the sweep should next look at a patient.
pub fn set_missed_due(
    conn: &mut DbConnection,
    patient_id: &str,
    due: Option<NaiveDateTime>,
) -> StoreResult<()> {
    diesel::update(patients::table.find(patient_id))
        .set(patients::missed_check_due_at.eq(due))
        .execute(conn)?;
    Ok(())
}

/// Reads a patient and, on PostgreSQL, locks the row until the transaction ends, so one
/// patient's check-ins are evaluated one at a time (SQLite already has a single writer).
pub fn find_for_update(conn: &mut DbConnection, user_id: &str) -> StoreResult<Option<PatientRow>> {
    let q = patients::table.filter(patients::user_id.eq(user_id.to_owned()));
    Ok(match conn {
        DbConnection::Postgresql(pg) => q
            .select(PatientRow::as_select())
            .for_update()
            .first(pg)
            .optional()?,
        DbConnection::Sqlite(lite) => q.select(PatientRow::as_select()).first(lite).optional()?,
    })
}

/// Sets (or, with `None`, clears) a patient's country.
pub fn set_country(
    conn: &mut DbConnection,
    user_id: &str,
    country: Option<&str>,
) -> StoreResult<()> {
    diesel::update(patients::table.find(user_id))
        .set(patients::country.eq(country))
        .execute(conn)?;
    Ok(())
}
