//! The append-only audit trail.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::audit_events;
use super::{DbConnection, StoreResult};

/// One audit record.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events, treat_none_as_default_value = false)]
pub struct AuditRow {
    pub id: String,
    pub organisation_id: Option<String>,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub patient_id: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub outcome: String,
    pub request_id: Option<String>,
    pub created_at: NaiveDateTime,
}

/// Appends a record. On SQLite outside a transaction (an audited read in `Store::run`), the
/// record is handed to the writer's next group commit instead of paying a commit (an fsync)
/// of its own; `Store::run` answers only after that commit.
pub fn insert(conn: &mut DbConnection, row: &AuditRow) -> StoreResult<()> {
    if let DbConnection::Sqlite(lite) = conn {
        if outside_transaction(lite) && Deferred::push(row) {
            return Ok(());
        }
    }
    on_backend!(conn, |c| diesel::insert_into(audit_events::table)
        .values(row)
        .execute(c))?;
    Ok(())
}

/// Appends records (see `insert_rows!`).
pub fn insert_many(conn: &mut DbConnection, rows: &[AuditRow]) -> StoreResult<()> {
    if let DbConnection::Sqlite(c) = conn {
        if outside_transaction(c) && rows.iter().all(Deferred::push) {
            return Ok(());
        }
    }
    insert_rows!(conn, audit_events::table, rows);
    Ok(())
}

fn outside_transaction(conn: &mut diesel::SqliteConnection) -> bool {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    matches!(
        <AnsiTransactionManager as TransactionManager<diesel::SqliteConnection>>::transaction_manager_status_mut(conn)
            .transaction_depth(),
        Ok(None)
    )
}

thread_local! {
    static DEFERRED: std::cell::RefCell<Option<Vec<AuditRow>>> =
        const { std::cell::RefCell::new(None) };
}

/// While alive, audit records written outside a transaction on this thread are collected
/// instead of inserted (see [`insert`]); `Store::run` holds one around its closure.
pub(crate) struct Deferred(());

impl Deferred {
    /// Starts collecting on this thread.
    pub(crate) fn collect() -> Self {
        DEFERRED.with(|d| *d.borrow_mut() = Some(Vec::new()));
        Self(())
    }

    /// Stops collecting and returns what was collected.
    pub(crate) fn finish(self) -> Vec<AuditRow> {
        DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default()
    }

    /// Collects `row` if collecting; returns whether it did.
    fn push(row: &AuditRow) -> bool {
        DEFERRED.with(|d| match d.borrow_mut().as_mut() {
            Some(rows) => {
                rows.push(row.clone());
                true
            }
            None => false,
        })
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        // A closure that panicked must not leave this thread collecting.
        DEFERRED.with(|d| *d.borrow_mut() = None);
    }
}

/// Filters for listing.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub actor_id: Option<String>,
    pub patient_id: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
}

/// Newest first, before the cursor id.
pub fn list(
    conn: &mut DbConnection,
    organisation_id: &str,
    filter: &AuditFilter,
    before: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<AuditRow>> {
    let mut q = audit_events::table
        .filter(audit_events::organisation_id.eq(organisation_id))
        .into_boxed();
    if let Some(v) = &filter.actor_id {
        q = q.filter(audit_events::actor_id.eq(v.clone()));
    }
    if let Some(v) = &filter.patient_id {
        q = q.filter(audit_events::patient_id.eq(v.clone()));
    }
    if let Some(v) = &filter.action {
        q = q.filter(audit_events::action.eq(v.clone()));
    }
    if let Some(v) = &filter.outcome {
        q = q.filter(audit_events::outcome.eq(v.clone()));
    }
    if let Some(b) = before {
        q = q.filter(audit_events::id.lt(b.to_owned()));
    }
    Ok(q.order(audit_events::id.desc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?)
}

/// Successful reads of one patient's data by anyone other than the patient (`actions` are the
/// read actions), newest first before the cursor id, each with the reader's current display
/// name (None for a reader no longer on record).
pub fn reads_of_patient(
    conn: &mut DbConnection,
    patient_id: &str,
    actions: &[&str],
    before: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<(AuditRow, Option<String>)>> {
    use super::schema::users;
    let mut q = audit_events::table
        .left_join(users::table.on(audit_events::actor_id.eq(users::id.nullable())))
        .filter(audit_events::patient_id.eq(patient_id))
        .filter(audit_events::actor_id.ne(patient_id))
        .filter(audit_events::outcome.eq("success"))
        .filter(audit_events::action.eq_any(actions.iter().map(|a| (*a).to_owned())))
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(audit_events::id.lt(b.to_owned()));
    }
    Ok(q.order(audit_events::id.desc())
        .limit(limit)
        .select((AuditRow::as_select(), users::display_name.nullable()))
        .load(conn)?)
}
