//! Invitations: single-use codes, stored only as hashes.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::schema::invitations;
use super::{DbConnection, StoreResult};

/// An invitation.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = invitations)]
pub struct InvitationRow {
    pub id: String,
    pub organisation_id: String,
    pub code_hash: String,
    pub role: String,
    pub email: Option<String>,
    pub counsellor_id: Option<String>,
    pub phase: Option<String>,
    pub last_use_on: Option<NaiveDate>,
    pub created_by: String,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub used_by: Option<String>,
    pub created_at: NaiveDateTime,
    /// Patients only: when the current phase started, if before enrolment.
    pub phase_started_on: Option<NaiveDate>,
    /// Patients only: when the patient left detox, if before enrolment.
    pub detox_ended_on: Option<NaiveDate>,
}

/// Stores an invitation.
pub fn insert(conn: &mut DbConnection, row: &InvitationRow) -> StoreResult<()> {
    diesel::insert_into(invitations::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Finds an invitation by id.
pub fn find(conn: &mut DbConnection, id: &str) -> StoreResult<Option<InvitationRow>> {
    Ok(invitations::table
        .find(id)
        .select(InvitationRow::as_select())
        .first(conn)
        .optional()?)
}

/// Gives an unused invitation a new code (the old one stops working); returns whether it was
/// still unused.
pub fn replace_code(conn: &mut DbConnection, id: &str, code_hash: &str) -> StoreResult<bool> {
    let n = diesel::update(
        invitations::table
            .find(id)
            .filter(invitations::used_at.is_null()),
    )
    .set(invitations::code_hash.eq(code_hash))
    .execute(conn)?;
    Ok(n == 1)
}

/// Finds an invitation by the hash of its code.
pub fn find_by_code_hash(
    conn: &mut DbConnection,
    hash: &str,
) -> StoreResult<Option<InvitationRow>> {
    Ok(invitations::table
        .filter(invitations::code_hash.eq(hash))
        .select(InvitationRow::as_select())
        .first(conn)
        .optional()?)
}

/// Marks an invitation used, if nobody did first; returns whether this caller won.
pub fn redeem(
    conn: &mut DbConnection,
    id: &str,
    user_id: &str,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    let n = diesel::update(
        invitations::table
            .find(id)
            .filter(invitations::used_at.is_null()),
    )
    .set((
        invitations::used_at.eq(now),
        invitations::used_by.eq(user_id),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
