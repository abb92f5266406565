//! Integrations: the other systems a clinic connects (SPEC §9), and the single use of their
//! signed client assertions.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{client_assertions, integrations};
use super::{DbConnection, StoreResult};

/// One registered integration.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = integrations)]
pub struct IntegrationRow {
    pub id: String,
    pub organisation_id: String,
    pub client_id: String,
    pub name: String,
    pub description: String,
    /// Granted scopes, space-separated.
    pub scopes: String,
    /// `client_secret_basic` or `private_key_jwt`.
    pub token_endpoint_auth_method: String,
    /// SHA-256 of the client secret (see `auth::tokens::hash_secret`).
    pub secret_hash: Option<String>,
    /// The registered JWK Set, as JSON.
    pub jwks: Option<String>,
    /// Tokens issued before this are refused.
    pub credentials_changed_at: NaiveDateTime,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub disabled_at: Option<NaiveDateTime>,
    pub deleted_at: Option<NaiveDateTime>,
}

impl IntegrationRow {
    /// Neither disabled nor deleted.
    pub fn is_active(&self) -> bool {
        self.disabled_at.is_none() && self.deleted_at.is_none()
    }
}

/// Registers an integration.
pub fn insert(conn: &mut DbConnection, row: &IntegrationRow) -> StoreResult<()> {
    diesel::insert_into(integrations::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// An integration by id, deleted ones included (callers decide what a deleted one means).
pub fn find(conn: &mut DbConnection, id: &str) -> StoreResult<Option<IntegrationRow>> {
    Ok(integrations::table
        .find(id)
        .select(IntegrationRow::as_select())
        .first(conn)
        .optional()?)
}

/// A not-deleted integration by its OAuth client id.
pub fn find_by_client_id(
    conn: &mut DbConnection,
    client_id: &str,
) -> StoreResult<Option<IntegrationRow>> {
    Ok(integrations::table
        .filter(integrations::client_id.eq(client_id))
        .filter(integrations::deleted_at.is_null())
        .select(IntegrationRow::as_select())
        .first(conn)
        .optional()?)
}

/// An organisation's not-deleted integrations, oldest first.
pub fn for_organisation(
    conn: &mut DbConnection,
    organisation_id: &str,
) -> StoreResult<Vec<IntegrationRow>> {
    Ok(integrations::table
        .filter(integrations::organisation_id.eq(organisation_id))
        .filter(integrations::deleted_at.is_null())
        .order((integrations::created_at.asc(), integrations::id.asc()))
        .select(IntegrationRow::as_select())
        .load(conn)?)
}

/// Writes back an integration's changeable columns.
pub fn update(conn: &mut DbConnection, row: &IntegrationRow) -> StoreResult<()> {
    diesel::update(integrations::table.find(&row.id))
        .set((
            integrations::name.eq(&row.name),
            integrations::description.eq(&row.description),
            integrations::scopes.eq(&row.scopes),
            integrations::secret_hash.eq(&row.secret_hash),
            integrations::jwks.eq(&row.jwks),
            integrations::credentials_changed_at.eq(row.credentials_changed_at),
            integrations::updated_at.eq(row.updated_at),
            integrations::disabled_at.eq(row.disabled_at),
            integrations::deleted_at.eq(row.deleted_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records a client assertion's `jti` as used; `false` when it was used before (a replay).
/// Expired records are pruned on the way.
pub fn use_assertion(
    conn: &mut DbConnection,
    integration_id: &str,
    jti: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    diesel::delete(client_assertions::table.filter(client_assertions::expires_at.lt(now)))
        .execute(conn)?;
    let insert = diesel::insert_into(client_assertions::table).values((
        client_assertions::integration_id.eq(integration_id),
        client_assertions::jti.eq(jti),
        client_assertions::expires_at.eq(expires_at),
    ));
    // ON CONFLICT DO NOTHING rather than a caught unique violation, which would abort the
    // surrounding transaction on PostgreSQL.
    let inserted = match conn {
        DbConnection::Postgresql(pg) => insert.on_conflict_do_nothing().execute(pg)?,
        DbConnection::Sqlite(lite) => insert.on_conflict_do_nothing().execute(lite)?,
    };
    Ok(inserted == 1)
}
