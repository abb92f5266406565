//! Closing a patient's account and erasing its clinical content (SPEC §10).
//!
//! Closing ends access at once; erasing removes the clinical content: check-ins, the alerts'
//! titles, explanations, evidence, findings and notes (SOS messages live there), the details of
//! their changes, idempotency replays (they hold check-in answers), last-use dates and policy
//! overrides, and the sign-in address. Kept, because the law requires them and they hold no
//! clinical values: the audit trail, the accounting of disclosures, the consent records, the
//! alerts' ids, rules, severities, statuses and times, and the phase history.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{
    alert_changes, alerts, check_ins, idempotency_keys, invitations, organisations, outbox,
    patients, users,
};
use super::{DbConnection, StoreResult};

/// What an erased alert's title becomes (titles can carry values, e.g. a number of days).
pub const ERASED_TITLE: &str = "Erased";

/// The organisation's retention delay in days.
pub fn delay_days(conn: &mut DbConnection, organisation_id: &str) -> StoreResult<i32> {
    Ok(organisations::table
        .find(organisation_id)
        .select(organisations::erasure_delay_days)
        .first(conn)?)
}

/// Sets the organisation's retention delay in days.
pub fn set_delay_days(
    conn: &mut DbConnection,
    organisation_id: &str,
    days: i32,
) -> StoreResult<()> {
    diesel::update(organisations::table.find(organisation_id))
        .set(organisations::erasure_delay_days.eq(days))
        .execute(conn)?;
    Ok(())
}

/// Marks the patient's account closed, due for erasure at `due`, and takes it out of the
/// missed-check-in sweep.
pub fn close(
    conn: &mut DbConnection,
    patient_id: &str,
    by: &str,
    now: NaiveDateTime,
    due: NaiveDateTime,
) -> StoreResult<()> {
    diesel::update(patients::table.find(patient_id))
        .set((
            patients::closed_at.eq(Some(now)),
            patients::closed_by.eq(Some(by)),
            patients::erasure_due_at.eq(Some(due)),
            patients::missed_check_due_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Disables the user and makes their password unusable: no sign-in, no way back in. (The
/// stored value is no PHC string, so no password ever verifies against it.)
pub fn lock_out(conn: &mut DbConnection, user_id: &str, now: NaiveDateTime) -> StoreResult<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::disabled.eq(true),
            users::password_hash.eq("!closed"),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Drops the undelivered deliveries about the patient (alerts and check-ins); returns how many.
pub fn drop_pending_deliveries(
    conn: &mut DbConnection,
    patient_id: &str,
    now: NaiveDateTime,
) -> StoreResult<usize> {
    Ok(diesel::update(
        outbox::table
            .filter(outbox::status.eq("pending"))
            .filter(outbox::patient_id.eq(patient_id)),
    )
    .set((
        outbox::status.eq("dead"),
        outbox::last_error.eq("dropped: the patient's account was closed"),
        outbox::locked_until.eq(None::<NaiveDateTime>),
        outbox::locked_by.eq(None::<String>),
        outbox::updated_at.eq(now),
    ))
    .execute(conn)?)
}

/// Closed patients whose erasure is due, oldest first. On PostgreSQL their rows are locked
/// (skipping rows another process holds), so two processes never erase one patient at once.
pub fn due(conn: &mut DbConnection, now: NaiveDateTime, limit: i64) -> StoreResult<Vec<String>> {
    let q = patients::table
        .filter(patients::erasure_due_at.le(now))
        .filter(patients::erased_at.is_null())
        .order(patients::erasure_due_at.asc())
        .limit(limit)
        .select(patients::user_id);
    Ok(match conn {
        DbConnection::Postgresql(pg) => q.for_update().skip_locked().load(pg)?,
        DbConnection::Sqlite(lite) => q.load(lite)?,
    })
}

/// Erases the patient's clinical content and marks them erased at `now`.
pub fn erase(conn: &mut DbConnection, patient_id: &str, now: NaiveDateTime) -> StoreResult<()> {
    let of_patient = || {
        alerts::table
            .filter(alerts::patient_id.eq(patient_id.to_owned()))
            .select(alerts::id)
    };
    diesel::delete(check_ins::table.filter(check_ins::patient_id.eq(patient_id))).execute(conn)?;
    diesel::update(alerts::table.filter(alerts::patient_id.eq(patient_id)))
        .set((
            alerts::title.eq(ERASED_TITLE),
            alerts::explanation.eq(""),
            alerts::evidence.eq("{}"),
            alerts::findings.eq("[]"),
            alerts::note.eq(None::<String>),
            alerts::escalation_due_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    // A resolution's detail is its outcome (no clinical value); every other change's detail
    // can name what the patient answered.
    diesel::update(
        alert_changes::table
            .filter(alert_changes::alert_id.eq_any(of_patient()))
            .filter(alert_changes::change.ne("resolved")),
    )
    .set(alert_changes::detail.eq(None::<String>))
    .execute(conn)?;
    diesel::update(outbox::table.filter(outbox::patient_id.eq(patient_id)))
        .set(outbox::payload.eq("{}"))
        .execute(conn)?;
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::user_id.eq(patient_id)))
        .execute(conn)?;
    super::accounts::drop_email_change(conn, patient_id)?;
    diesel::update(invitations::table.filter(invitations::used_by.eq(patient_id)))
        .set(invitations::email.eq(None::<String>))
        .execute(conn)?;
    diesel::update(patients::table.find(patient_id))
        .set((
            patients::enrolment_last_use_on.eq(None::<chrono::NaiveDate>),
            patients::last_use_on.eq(None::<chrono::NaiveDate>),
            patients::first_check_in_on.eq(None::<chrono::NaiveDate>),
            patients::last_check_in_on.eq(None::<chrono::NaiveDate>),
            patients::risk_overrides.eq(None::<String>),
            patients::missed_check_due_at.eq(None::<NaiveDateTime>),
            patients::erasure_due_at.eq(None::<NaiveDateTime>),
            patients::erased_at.eq(Some(now)),
        ))
        .execute(conn)?;
    // The address is free for a new account; the name stays, as the consent records and the
    // audit trail name the patient.
    diesel::update(users::table.find(patient_id))
        .set((
            users::email.eq(format!("erased-{patient_id}@erased.invalid")),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Ids of the organisation's erased patients (for leaving them out of lists).
pub fn erased_ids(conn: &mut DbConnection, organisation_id: &str) -> StoreResult<Vec<String>> {
    Ok(patients::table
        .filter(patients::organisation_id.eq(organisation_id))
        .filter(patients::erased_at.is_not_null())
        .select(patients::user_id)
        .load(conn)?)
}
