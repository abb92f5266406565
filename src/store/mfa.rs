//! Second factors: TOTP credentials, recovery codes, pending two-step sign-ins, and the
//! organisation's `staff_mfa` setting.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{mfa_challenges, organisations, recovery_codes, totp_credentials};
use super::{DbConnection, StoreResult};

/// A user's TOTP credential; pending until `confirmed_at` is set.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = totp_credentials)]
pub struct TotpRow {
    pub user_id: String,
    pub secret_sealed: String,
    pub confirmed_at: Option<NaiveDateTime>,
    pub last_step: Option<i64>,
    pub created_at: NaiveDateTime,
}

/// A recovery code (hash only).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = recovery_codes)]
pub struct RecoveryCodeRow {
    pub id: String,
    pub user_id: String,
    pub code_hash: String,
    pub used_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// A sign-in waiting for its second factor.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = mfa_challenges)]
pub struct ChallengeRow {
    pub token_hash: String,
    pub user_id: String,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// The user's TOTP credential, pending or confirmed.
pub fn find_totp(conn: &mut DbConnection, user_id: &str) -> StoreResult<Option<TotpRow>> {
    Ok(totp_credentials::table
        .find(user_id)
        .select(TotpRow::as_select())
        .first(conn)
        .optional()?)
}

/// Whether the user has a confirmed TOTP credential.
pub fn totp_enabled(conn: &mut DbConnection, user_id: &str) -> StoreResult<bool> {
    let n: i64 = totp_credentials::table
        .filter(totp_credentials::user_id.eq(user_id))
        .filter(totp_credentials::confirmed_at.is_not_null())
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Replaces the user's credential (a new pending enrolment).
pub fn put_pending_totp(conn: &mut DbConnection, row: &TotpRow) -> StoreResult<()> {
    diesel::delete(totp_credentials::table.find(&row.user_id)).execute(conn)?;
    diesel::insert_into(totp_credentials::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Marks the pending credential confirmed, with the step of the code that confirmed it.
pub fn confirm_totp(
    conn: &mut DbConnection,
    user_id: &str,
    step: i64,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    let n = diesel::update(
        totp_credentials::table
            .find(user_id)
            .filter(totp_credentials::confirmed_at.is_null()),
    )
    .set((
        totp_credentials::confirmed_at.eq(now),
        totp_credentials::last_step.eq(step),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Records that the code of `step` was used, only if no code of that step or a later one was
/// used first: returns whether this caller won (a replayed code loses).
pub fn claim_step(conn: &mut DbConnection, user_id: &str, step: i64) -> StoreResult<bool> {
    let n = diesel::update(
        totp_credentials::table.find(user_id).filter(
            totp_credentials::last_step
                .is_null()
                .or(totp_credentials::last_step.lt(step)),
        ),
    )
    .set(totp_credentials::last_step.eq(step))
    .execute(conn)?;
    Ok(n == 1)
}

/// Removes the user's credential and recovery codes.
pub fn delete_totp(conn: &mut DbConnection, user_id: &str) -> StoreResult<()> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    diesel::delete(totp_credentials::table.find(user_id)).execute(conn)?;
    Ok(())
}

/// Replaces the user's recovery codes.
pub fn replace_recovery_codes(
    conn: &mut DbConnection,
    user_id: &str,
    rows: &[RecoveryCodeRow],
) -> StoreResult<()> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    // One row at a time: diesel's batch insert is not available across both backends.
    for row in rows {
        diesel::insert_into(recovery_codes::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Uses one of the user's recovery codes, if it is theirs and unused: returns whether it was.
pub fn use_recovery_code(
    conn: &mut DbConnection,
    user_id: &str,
    code_hash: &str,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    let n = diesel::update(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::code_hash.eq(code_hash))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

/// How many of the user's recovery codes are unused.
pub fn recovery_codes_left(conn: &mut DbConnection, user_id: &str) -> StoreResult<i64> {
    Ok(recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?)
}

/// Stores a pending two-step sign-in.
pub fn insert_challenge(conn: &mut DbConnection, row: &ChallengeRow) -> StoreResult<()> {
    diesel::insert_into(mfa_challenges::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Finds a pending sign-in by its token's hash.
pub fn find_challenge(conn: &mut DbConnection, hash: &str) -> StoreResult<Option<ChallengeRow>> {
    Ok(mfa_challenges::table
        .find(hash)
        .select(ChallengeRow::as_select())
        .first(conn)
        .optional()?)
}

/// Uses a pending sign-in, only if nobody did first: returns whether this caller won.
pub fn claim_challenge(
    conn: &mut DbConnection,
    hash: &str,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    let n = diesel::update(
        mfa_challenges::table
            .find(hash)
            .filter(mfa_challenges::used_at.is_null()),
    )
    .set(mfa_challenges::used_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

/// Forgets pending sign-ins that expired before `before`.
pub fn prune_challenges(conn: &mut DbConnection, before: NaiveDateTime) -> StoreResult<usize> {
    Ok(
        diesel::delete(mfa_challenges::table.filter(mfa_challenges::expires_at.lt(before)))
            .execute(conn)?,
    )
}

/// The organisation's `staff_mfa` setting: `optional` or `required`.
pub fn staff_mfa(conn: &mut DbConnection, organisation_id: &str) -> StoreResult<String> {
    Ok(organisations::table
        .find(organisation_id)
        .select(organisations::staff_mfa)
        .first(conn)?)
}

/// Sets the organisation's `staff_mfa` setting.
pub fn set_staff_mfa(
    conn: &mut DbConnection,
    organisation_id: &str,
    value: &str,
) -> StoreResult<()> {
    diesel::update(organisations::table.find(organisation_id))
        .set(organisations::staff_mfa.eq(value))
        .execute(conn)?;
    Ok(())
}
