//! Refresh-token families, login throttling and the token-signing key.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{login_throttles, refresh_tokens, signing_keys};
use super::{DbConnection, StoreResult};

/// A stored refresh token (hash only).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub id: String,
    pub family_id: String,
    pub user_id: String,
    pub token_hash: String,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// Stores a refresh token.
pub fn insert_refresh(conn: &mut DbConnection, row: &RefreshTokenRow) -> StoreResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Finds a refresh token by its hash.
pub fn find_refresh(conn: &mut DbConnection, hash: &str) -> StoreResult<Option<RefreshTokenRow>> {
    Ok(refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash))
        .select(RefreshTokenRow::as_select())
        .first(conn)
        .optional()?)
}

/// Marks a token used, only if nobody else did first: returns whether this caller won.
pub fn claim_refresh(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> StoreResult<bool> {
    let n = diesel::update(
        refresh_tokens::table
            .find(id)
            .filter(refresh_tokens::used_at.is_null())
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

/// Revokes every token of a family (a login session).
pub fn revoke_family(
    conn: &mut DbConnection,
    family_id: &str,
    now: NaiveDateTime,
) -> StoreResult<()> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)?;
    Ok(())
}

/// Revokes every session of a user.
pub fn revoke_user(conn: &mut DbConnection, user_id: &str, now: NaiveDateTime) -> StoreResult<()> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)?;
    Ok(())
}

/// A throttling counter.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_throttles)]
pub struct ThrottleRow {
    pub key: String,
    pub failures: i32,
    pub window_started_at: NaiveDateTime,
    pub blocked_until: Option<NaiveDateTime>,
}

/// Reads a throttling counter.
pub fn get_throttle(conn: &mut DbConnection, key: &str) -> StoreResult<Option<ThrottleRow>> {
    Ok(login_throttles::table
        .find(key)
        .select(ThrottleRow::as_select())
        .first(conn)
        .optional()?)
}

/// Writes a throttling counter (insert or replace).
pub fn put_throttle(conn: &mut DbConnection, row: &ThrottleRow) -> StoreResult<()> {
    let n = diesel::update(login_throttles::table.find(&row.key))
        .set((
            login_throttles::failures.eq(row.failures),
            login_throttles::window_started_at.eq(row.window_started_at),
            login_throttles::blocked_until.eq(row.blocked_until),
        ))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(login_throttles::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Forgets a throttling counter (after a successful login).
pub fn clear_throttle(conn: &mut DbConnection, key: &str) -> StoreResult<()> {
    diesel::delete(login_throttles::table.find(key)).execute(conn)?;
    Ok(())
}

/// The shared signing key, created by whichever process gets there first.
pub fn shared_signing_key(
    conn: &mut DbConnection,
    make: impl FnOnce() -> anyhow::Result<String>,
) -> StoreResult<String> {
    let existing = signing_keys::table
        .order(signing_keys::created_at.asc())
        .select(signing_keys::private_key_pem)
        .first::<String>(conn)
        .optional()?;
    if let Some(pem) = existing {
        return Ok(pem);
    }
    let pem = make()?;
    let inserted = diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::kid.eq("primary"),
            signing_keys::private_key_pem.eq(&pem),
            signing_keys::created_at.eq(super::now()),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(pem),
        // Another process won the race: use its key.
        Err(_) => Ok(signing_keys::table
            .select(signing_keys::private_key_pem)
            .first::<String>(conn)?),
    }
}
