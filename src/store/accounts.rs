//! Organisations and users.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{email_changes, organisations, users};
use super::{DbConnection, StoreResult};

/// An organisation (clinic).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = organisations)]
pub struct OrganisationRow {
    pub id: String,
    pub name: String,
    pub risk_policy: String,
    pub crisis_resources: Option<String>,
    pub created_at: NaiveDateTime,
}

/// A user of any role.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub organisation_id: String,
    pub role: String,
    pub email: String,
    pub password_hash: String,
    pub display_name: String,
    pub timezone: String,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub password_changed_at: NaiveDateTime,
}

/// Inserts an organisation.
pub fn insert_organisation(conn: &mut DbConnection, row: &OrganisationRow) -> StoreResult<()> {
    diesel::insert_into(organisations::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Finds an organisation.
pub fn find_organisation(conn: &mut DbConnection, id: &str) -> StoreResult<OrganisationRow> {
    Ok(organisations::table
        .find(id)
        .select(OrganisationRow::as_select())
        .first(conn)?)
}

/// Replaces an organisation's default risk policy (JSON).
pub fn set_organisation_policy(
    conn: &mut DbConnection,
    id: &str,
    policy_json: &str,
) -> StoreResult<()> {
    diesel::update(organisations::table.find(id))
        .set(organisations::risk_policy.eq(policy_json))
        .execute(conn)?;
    Ok(())
}

/// Inserts a user.
pub fn insert_user(conn: &mut DbConnection, row: &UserRow) -> StoreResult<()> {
    diesel::insert_into(users::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Finds a user by id.
pub fn find_user(conn: &mut DbConnection, id: &str) -> StoreResult<Option<UserRow>> {
    Ok(users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

/// Finds several users in one query (missing ids are simply absent).
pub fn find_users(conn: &mut DbConnection, ids: &[String]) -> StoreResult<Vec<UserRow>> {
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .select(UserRow::as_select())
        .load(conn)?)
}

/// Finds several organisations in one query.
pub fn find_organisations(
    conn: &mut DbConnection,
    ids: &[String],
) -> StoreResult<Vec<OrganisationRow>> {
    Ok(organisations::table
        .filter(organisations::id.eq_any(ids))
        .select(OrganisationRow::as_select())
        .load(conn)?)
}

/// Finds a user by (normalised) email.
pub fn find_user_by_email(conn: &mut DbConnection, email: &str) -> StoreResult<Option<UserRow>> {
    Ok(users::table
        .filter(users::email.eq(email))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

/// Whether an email is taken.
pub fn email_taken(
    conn: &mut DbConnection,
    email: &str,
    except_user: Option<&str>,
) -> StoreResult<bool> {
    let mut q = users::table.filter(users::email.eq(email)).into_boxed();
    if let Some(id) = except_user {
        q = q.filter(users::id.ne(id));
    }
    Ok(q.select(users::id)
        .first::<String>(conn)
        .optional()?
        .is_some())
}

/// Profile changes; `None` leaves a field as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub timezone: Option<String>,
    pub disabled: Option<bool>,
    pub updated_at: Option<NaiveDateTime>,
}

/// Applies profile changes.
pub fn update_user(conn: &mut DbConnection, id: &str, changes: &UserChanges) -> StoreResult<()> {
    diesel::update(users::table.find(id))
        .set(changes)
        .execute(conn)?;
    Ok(())
}

/// Stores a new password hash.
pub fn set_password(
    conn: &mut DbConnection,
    id: &str,
    hash: &str,
    now: NaiveDateTime,
) -> StoreResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::password_changed_at.eq(now),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Users of an organisation, optionally of one role, ordered by id, after `after`.
pub fn list_users(
    conn: &mut DbConnection,
    organisation_id: &str,
    role: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<UserRow>> {
    let mut q = users::table
        .filter(users::organisation_id.eq(organisation_id))
        .into_boxed();
    if let Some(r) = role {
        q = q.filter(users::role.eq(r.to_owned()));
    }
    if let Some(a) = after {
        q = q.filter(users::id.gt(a.to_owned()));
    }
    Ok(q.order(users::id.asc())
        .limit(limit)
        .select(UserRow::as_select())
        .load(conn)?)
}

/// Users of an organisation with one role (e.g. its admins), for notifications.
pub fn users_with_role(
    conn: &mut DbConnection,
    organisation_id: &str,
    role: &str,
) -> StoreResult<Vec<UserRow>> {
    Ok(users::table
        .filter(users::organisation_id.eq(organisation_id))
        .filter(users::role.eq(role))
        .filter(users::disabled.eq(false))
        .select(UserRow::as_select())
        .load(conn)?)
}

/// Replaces an organisation's crisis resources (JSON), or clears them back to the defaults.
pub fn set_crisis_resources(
    conn: &mut DbConnection,
    id: &str,
    json: Option<&str>,
) -> StoreResult<()> {
    diesel::update(organisations::table.find(id))
        .set(organisations::crisis_resources.eq(json))
        .execute(conn)?;
    Ok(())
}

/// An email change waiting for its new address to be confirmed (the code as a hash).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = email_changes)]
pub struct EmailChangeRow {
    pub user_id: String,
    pub new_email: String,
    pub code_hash: String,
    pub attempts: i32,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

/// Replaces the user's pending email change with `row`.
pub fn put_email_change(conn: &mut DbConnection, row: &EmailChangeRow) -> StoreResult<()> {
    drop_email_change(conn, &row.user_id)?;
    diesel::insert_into(email_changes::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The user's pending email change, if any (expired or not).
pub fn find_email_change(
    conn: &mut DbConnection,
    user_id: &str,
) -> StoreResult<Option<EmailChangeRow>> {
    Ok(email_changes::table
        .find(user_id)
        .select(EmailChangeRow::as_select())
        .first(conn)
        .optional()?)
}

/// Counts one wrong code against the user's pending email change.
pub fn count_email_change_attempt(conn: &mut DbConnection, user_id: &str) -> StoreResult<()> {
    diesel::update(email_changes::table.find(user_id))
        .set(email_changes::attempts.eq(email_changes::attempts + 1))
        .execute(conn)?;
    Ok(())
}

/// Forgets the user's pending email change.
pub fn drop_email_change(conn: &mut DbConnection, user_id: &str) -> StoreResult<()> {
    diesel::delete(email_changes::table.find(user_id)).execute(conn)?;
    Ok(())
}
