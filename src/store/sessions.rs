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

/// A user and whether their session (refresh-token family) is still open, in one statement:
/// what every authenticated request checks.
pub fn user_and_session(
    conn: &mut DbConnection,
    user_id: &str,
    family_id: &str,
) -> StoreResult<Option<(super::accounts::UserRow, bool)>> {
    use super::schema::users;
    let open = diesel::dsl::exists(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id.to_owned()))
            .filter(refresh_tokens::user_id.eq(user_id.to_owned()))
            .filter(refresh_tokens::revoked_at.is_null()),
    );
    Ok(users::table
        .find(user_id.to_owned())
        .select((super::accounts::UserRow::as_select(), open))
        .first(conn)
        .optional()?)
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

/// Reads a throttling counter and, on PostgreSQL, locks it until the transaction ends, creating
/// it first if need be, so concurrent attempts on one key are counted one after another (SQLite
/// transactions already hold the single write lock from their start).
pub fn lock_throttle(
    conn: &mut DbConnection,
    key: &str,
    now: NaiveDateTime,
) -> StoreResult<ThrottleRow> {
    let fresh = ThrottleRow {
        key: key.to_owned(),
        failures: 0,
        window_started_at: now,
        blocked_until: None,
    };
    let q = login_throttles::table.find(key.to_owned());
    let row = match conn {
        DbConnection::Postgresql(pg) => {
            diesel::insert_into(login_throttles::table)
                .values(&fresh)
                .on_conflict_do_nothing()
                .execute(pg)?;
            q.select(ThrottleRow::as_select()).for_update().first(pg)?
        }
        DbConnection::Sqlite(lite) => {
            diesel::insert_into(login_throttles::table)
                .values(&fresh)
                .on_conflict_do_nothing()
                .execute(lite)?;
            q.select(ThrottleRow::as_select()).first(lite)?
        }
    };
    Ok(row)
}

/// Writes a throttling counter that [`lock_throttle`] returned.
pub fn put_throttle(conn: &mut DbConnection, row: &ThrottleRow) -> StoreResult<()> {
    diesel::update(login_throttles::table.find(&row.key))
        .set((
            login_throttles::failures.eq(row.failures),
            login_throttles::window_started_at.eq(row.window_started_at),
            login_throttles::blocked_until.eq(row.blocked_until),
        ))
        .execute(conn)?;
    Ok(())
}

/// Forgets refresh tokens that expired before `before` (kept a while after expiry so a
/// copied token presented late still revokes its family).
pub fn prune_refresh_tokens(conn: &mut DbConnection, before: NaiveDateTime) -> StoreResult<usize> {
    Ok(
        diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.lt(before)))
            .execute(conn)?,
    )
}

/// Forgets throttling counters whose window and block are both over.
pub fn prune_throttles(
    conn: &mut DbConnection,
    window_started_before: NaiveDateTime,
    now: NaiveDateTime,
) -> StoreResult<usize> {
    Ok(diesel::delete(
        login_throttles::table
            .filter(login_throttles::window_started_at.lt(window_started_before))
            .filter(
                login_throttles::blocked_until
                    .is_null()
                    .or(login_throttles::blocked_until.lt(now)),
            ),
    )
    .execute(conn)?)
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
