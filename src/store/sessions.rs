//! Refresh-token families, login throttling and the token-signing key.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{login_throttles, refresh_tokens, sign_in_networks, signing_keys};
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
    /// When the session's sign-in happened; the same on every token of a family.
    pub authenticated_at: Option<NaiveDateTime>,
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

/// What a request's caller check needs, read in one statement: the user, whether the session
/// (refresh-token family) is still open and when it signed in (`None` for a session from
/// before sign-in times were kept), the organisation's `staff_mfa` setting and whether the
/// user has a confirmed second factor.
pub struct CallerRow {
    pub user: super::accounts::UserRow,
    pub session_open: bool,
    pub signed_in_at: Option<NaiveDateTime>,
    pub staff_mfa: String,
    pub totp_enabled: bool,
}

/// Reads a [`CallerRow`] in one statement; `None` when the user does not exist.
pub fn user_and_session(
    conn: &mut DbConnection,
    user_id: &str,
    family_id: &str,
) -> StoreResult<Option<CallerRow>> {
    use super::schema::{organisations, totp_credentials, users};
    let open = diesel::dsl::exists(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id.to_owned()))
            .filter(refresh_tokens::user_id.eq(user_id.to_owned()))
            .filter(refresh_tokens::revoked_at.is_null()),
    );
    let signed_in = refresh_tokens::table
        .filter(refresh_tokens::family_id.eq(family_id.to_owned()))
        .filter(refresh_tokens::user_id.eq(user_id.to_owned()))
        .filter(refresh_tokens::revoked_at.is_null())
        .order(refresh_tokens::created_at.desc())
        .select(refresh_tokens::authenticated_at)
        .limit(1)
        .single_value();
    let totp = diesel::dsl::exists(
        totp_credentials::table
            .filter(totp_credentials::user_id.eq(user_id.to_owned()))
            .filter(totp_credentials::confirmed_at.is_not_null()),
    );
    let row: Option<(
        super::accounts::UserRow,
        bool,
        Option<NaiveDateTime>,
        String,
        bool,
    )> = on_backend!(conn, |c| users::table
        .inner_join(organisations::table)
        .filter(users::id.eq(user_id.to_owned()))
        .select((
            super::accounts::UserRow::as_select(),
            open,
            signed_in,
            organisations::staff_mfa,
            totp,
        ))
        .first(c)
        .optional())?;
    Ok(row.map(
        |(user, session_open, signed_in_at, staff_mfa, totp_enabled)| CallerRow {
            user,
            session_open,
            signed_in_at,
            staff_mfa,
            totp_enabled,
        },
    ))
}

/// The sign-in time of a session (refresh-token family): `None` when the family has no token
/// yet (a new sign-in), `Some(None)` for a session from before sign-in times were kept.
pub fn family_signed_in_at(
    conn: &mut DbConnection,
    family_id: &str,
) -> StoreResult<Option<Option<NaiveDateTime>>> {
    Ok(refresh_tokens::table
        .filter(refresh_tokens::family_id.eq(family_id))
        .order(refresh_tokens::created_at.desc())
        .select(refresh_tokens::authenticated_at)
        .first(conn)
        .optional()?)
}

/// Whether a user's session is still open (as [`session_open`]) and, if so, when it signed
/// in (`None` for a session from before sign-in times were kept): one query per request.
pub fn open_session(
    conn: &mut DbConnection,
    user_id: &str,
    family_id: &str,
) -> StoreResult<Option<Option<NaiveDateTime>>> {
    Ok(refresh_tokens::table
        .filter(refresh_tokens::family_id.eq(family_id))
        .filter(refresh_tokens::user_id.eq(user_id))
        .filter(refresh_tokens::revoked_at.is_null())
        .order(refresh_tokens::created_at.desc())
        .select(refresh_tokens::authenticated_at)
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

/// When the account and network a key names last signed in successfully, if ever.
pub fn network_known_since(
    conn: &mut DbConnection,
    key: &str,
) -> StoreResult<Option<NaiveDateTime>> {
    Ok(sign_in_networks::table
        .find(key)
        .select(sign_in_networks::last_success_at)
        .first(conn)
        .optional()?)
}

/// Remembers a successful sign-in from an account and network (by their key).
pub fn remember_network(conn: &mut DbConnection, key: &str, now: NaiveDateTime) -> StoreResult<()> {
    let updated = diesel::update(sign_in_networks::table.find(key))
        .set(sign_in_networks::last_success_at.eq(now))
        .execute(conn)?;
    if updated == 0 {
        let insert = diesel::insert_into(sign_in_networks::table).values((
            sign_in_networks::key.eq(key),
            sign_in_networks::last_success_at.eq(now),
        ));
        match conn {
            DbConnection::Postgresql(pg) => insert.on_conflict_do_nothing().execute(pg)?,
            DbConnection::Sqlite(lite) => insert.on_conflict_do_nothing().execute(lite)?,
        };
    }
    Ok(())
}

/// Forgets networks not signed in from since `before`.
pub fn prune_networks(conn: &mut DbConnection, before: NaiveDateTime) -> StoreResult<usize> {
    Ok(
        diesel::delete(
            sign_in_networks::table.filter(sign_in_networks::last_success_at.lt(before)),
        )
        .execute(conn)?,
    )
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
