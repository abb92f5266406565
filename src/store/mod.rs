//! Persistence with diesel: one connection type over SQLite and PostgreSQL, a pool, the
//! embedded migrations, and one module per aggregate.
//!
//! Queries are written once against [`DbConnection`] and so must only use what both backends
//! share; where they differ (row locking, advisory locks), a function matches on the variant.

pub mod schema;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::config::DatabaseUrl;

/// SQLite migrations, embedded in the binary.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// PostgreSQL migrations, embedded in the binary.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL.
    Postgresql(diesel::PgConnection),
    /// Embedded SQLite.
    Sqlite(diesel::SqliteConnection),
}

impl DbConnection {
    /// Whether this is a PostgreSQL connection.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgresql(_))
    }
}

/// Failures of the storage layer, as the layers above need to tell them apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (pool timeout, connection refused).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// No such row.
    #[error("not found")]
    NotFound,
    /// A uniqueness constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => Self::NotFound,
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                Self::Conflict(info.constraint_name().unwrap_or("unique").to_owned())
            }
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Self::Unavailable(info.message().to_owned())
            }
            Error::DatabaseError(DatabaseErrorKind::UnableToSendCommand, info) => {
                Self::Unavailable(info.message().to_owned())
            }
            Error::BrokenTransactionManager => {
                Self::Unavailable("connection lost mid-transaction".into())
            }
            // Transient contention the client should simply retry (503 with Retry-After): the
            // SQLite writer lock still held after busy_timeout, a PostgreSQL serialization
            // failure or deadlock victim.
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, info) => {
                Self::Unavailable(info.message().to_owned())
            }
            Error::DatabaseError(_, info)
                if [
                    "database is locked",
                    "database is busy",
                    "deadlock detected",
                    // lock_timeout and statement_timeout (see `Limits`): one stuck table
                    // answers 503 and frees its connection instead of hanging the pool.
                    "canceling statement due to lock timeout",
                    "canceling statement due to statement timeout",
                ]
                .iter()
                .any(|m| info.message().contains(m)) =>
            {
                Self::Unavailable(info.message().to_owned())
            }
            other => Self::Other(anyhow::Error::new(other)),
        }
    }
}

/// Result of a storage operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Per-connection bounds on waiting, set on every pooled PostgreSQL connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `statement_timeout`: no statement runs longer.
    pub statement_timeout: Duration,
    /// `lock_timeout`: no statement waits longer for a lock.
    pub lock_timeout: Duration,
}

/// Opens connections of the configured backend; never falls back from one to the other.
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
    /// `None` for the migration connection, whose statements may rightly take long.
    limits: Option<Limits>,
    /// Bumped whenever a connection finds the server gone: every connection opened before
    /// then is stale (see [`Health`]).
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Manager {
    fn establish(&self) -> Result<DbConnection, diesel::ConnectionError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                let mut conn = diesel::PgConnection::establish(&with_connect_timeout(url))?;
                // Timestamps are stored without zone and always in UTC.
                conn.batch_execute("SET TIME ZONE 'UTC'")
                    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                // A lock held elsewhere (a stuck transaction, a manual session) must cost a
                // request a bounded wait and a 503, not its connection for as long as the lock
                // is held: otherwise the pool drains and every route waits with it.
                if let Some(limits) = self.limits {
                    conn.batch_execute(&format!(
                        "SET statement_timeout = {}; SET lock_timeout = {}",
                        limits.statement_timeout.as_millis().max(1),
                        limits.lock_timeout.as_millis().max(1)
                    ))
                    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                }
                Ok(DbConnection::Postgresql(conn))
            }
            DatabaseUrl::Sqlite(path) => {
                let path = path.to_string_lossy();
                let mut conn = diesel::SqliteConnection::establish(&path)?;
                // Durability over speed: a saved check-in must survive power loss. WAL lets
                // readers proceed during the single writer; busy_timeout queues writers
                // instead of failing them. secure_delete overwrites deleted content, so an
                // erased patient's check-ins do not linger in the file's free pages.
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                     PRAGMA secure_delete = ON;",
                )
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

/// A connection attempt to an unreachable server must fail quickly (503), not hang.
fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&connect_timeout=5")
    } else {
        format!("{url}?connect_timeout=5")
    }
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        let mut conn = self.establish().map_err(r2d2::Error::ConnectionError)?;
        conn.set_instrumentation(Health {
            born: self.generation.load(Ordering::Acquire),
            generation: self.generation.clone(),
            lost: false,
        });
        Ok(conn)
    }

    /// Runs at every checkout, without a query: a connection that saw the server go away, or
    /// that was opened before another connection saw it go away (a database restart kills
    /// them all at once), is not handed out again; the pool opens a fresh one instead.
    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        let current = self.generation.load(Ordering::Acquire);
        match conn.instrumentation().downcast_ref::<Health>() {
            Some(h) if h.lost || h.born < current => Err(r2d2::Error::ConnectionError(
                diesel::ConnectionError::BadConnection("the server went away".into()),
            )),
            _ => Ok(()),
        }
    }

    /// Checked when a connection comes back to the pool, instead of a query before every
    /// checkout: a connection is discarded when its holder panicked, when it is still inside
    /// a transaction or its transaction manager is broken (a SQLite connection would still
    /// hold the write lock), or when the server went away under it (the database restarted:
    /// the next checkout opens a fresh connection).
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || Self::unsound(conn)
    }
}

impl Manager {
    /// Inside a transaction, a broken transaction manager, or the server gone away.
    fn unsound(conn: &mut DbConnection) -> bool {
        use diesel::r2d2::R2D2Connection;
        conn.is_broken()
            || conn
                .instrumentation()
                .downcast_ref::<Health>()
                .is_some_and(|h| h.lost)
    }
}

tokio::task_local! {
    /// The connection a request's statements share (PostgreSQL).
    static HELD: std::cell::RefCell<Option<PooledConn>>;
}

/// Runs a request's handling (its extractors and handler) so that all of its statements share
/// one pooled connection on PostgreSQL: the caller check's connection is the action's. It goes
/// back to the pool when the handling ends.
pub async fn one_connection_per_request<F: std::future::Future>(handling: F) -> F::Output {
    HELD.scope(std::cell::RefCell::new(None), handling).await
}

/// Watches a pooled connection's queries for signs that the server is gone.
#[derive(Debug)]
struct Health {
    /// The pool's generation when this connection was opened.
    born: u64,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// This connection saw the server go away.
    lost: bool,
}

impl diesel::connection::Instrumentation for Health {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        use diesel::result::{DatabaseErrorKind, Error};
        if let diesel::connection::InstrumentationEvent::FinishQuery {
            error: Some(error), ..
        } = event
        {
            if matches!(
                error,
                Error::DatabaseError(
                    DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                    _
                ) | Error::BrokenTransactionManager
            ) {
                self.lost = true;
                self.generation.fetch_max(self.born + 1, Ordering::AcqRel);
            }
        }
    }
}

/// The connection pool.
pub type DbPool = Pool<Manager>;
/// A connection checked out of the pool.
pub type PooledConn = PooledConnection<Manager>;

/// Runs pending migrations on a dedicated connection, before the pool exists.
///
/// On PostgreSQL several processes may start at once; an advisory lock makes them take turns.
pub fn migrate(url: &DatabaseUrl) -> anyhow::Result<()> {
    let manager = Manager {
        url: url.clone(),
        limits: None,
        generation: Default::default(),
    };
    if let DatabaseUrl::Sqlite(path) = url {
        if let Some(dir) = Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
    }
    let conn = manager
        .establish()
        .map_err(|e| anyhow::anyhow!("cannot connect to the {} database: {e}", url.backend()))?;
    match conn {
        DbConnection::Postgresql(mut pg) => {
            pg.batch_execute("SELECT pg_advisory_lock(4711001)")?;
            let result = pg
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("migration failed: {e}"));
            pg.batch_execute("SELECT pg_advisory_unlock(4711001)")?;
            result
        }
        DbConnection::Sqlite(mut lite) => lite
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("migration failed: {e}")),
    }
}

/// Builds the pool. Connections are opened lazily so a database outage after start shows as
/// 503s and a failing readiness probe rather than a crash. A request waits at most `timeout`
/// for a connection (then 503), and on PostgreSQL each connection carries `limits`.
pub fn build_pool(url: &DatabaseUrl, max_size: u32, timeout: Duration, limits: Limits) -> DbPool {
    let max_size = match url {
        // One writer at a time anyway; a few readers are plenty.
        DatabaseUrl::Sqlite(_) => max_size.min(8),
        DatabaseUrl::Postgres(_) => max_size,
    };
    Pool::builder()
        .max_size(max_size)
        .min_idle(Some(0))
        .connection_timeout(timeout)
        // No query per checkout: `Manager::is_valid` only looks at what the connection's
        // own queries saw, and a connection that failed is discarded when it comes back
        // (`Manager::has_broken`). After a database restart, the request that finds the
        // server gone fails with a 503; the other stale connections are then replaced
        // without failing anyone.
        .test_on_check_out(true)
        .build_unchecked(Manager {
            url: url.clone(),
            limits: Some(limits),
            generation: Default::default(),
        })
}

/// Handle to the database used by handlers and workers.
#[derive(Clone)]
pub struct Store {
    pool: DbPool,
    /// SQLite's single writer (group commit); none on PostgreSQL, which coalesces commits
    /// across sessions by itself.
    writer: Option<writer::Writer>,
}

impl Store {
    /// Wraps a pool of `url`'s backend; on SQLite also starts the writer thread.
    pub fn new(pool: DbPool, url: &DatabaseUrl) -> std::io::Result<Self> {
        let writer = match url {
            DatabaseUrl::Sqlite(_) => Some(writer::Writer::start(pool.clone())?),
            DatabaseUrl::Postgres(_) => None,
        };
        Ok(Self { pool, writer })
    }

    /// The pool's current state, for metrics.
    pub fn pool_state(&self) -> (u32, u32, u32) {
        let s = self.pool.state();
        (self.pool.max_size(), s.connections, s.idle_connections)
    }

    /// Checks out a connection, blocking; call only from a blocking context.
    pub fn conn(&self) -> StoreResult<PooledConn> {
        self.pool
            .get()
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Runs `f` with a connection on the blocking thread pool: diesel is synchronous and the
    /// async workers must never wait on it. Outside a transaction each statement commits by
    /// itself, except on SQLite for audit records (`audit::insert`): those are collected and
    /// appended in the writer's next group commit, which this awaits before answering, so an
    /// audited read costs no commit of its own and is still answered only once its audit
    /// record is durable.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + From<actix_web::error::BlockingError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let defer = self.writer.is_some();
        // On PostgreSQL a request keeps the connection its first statement used (see
        // [`one_connection_per_request`]); SQLite's writes go to the writer anyway, and a
        // reader held while the request waits for a commit would only shrink the batches.
        let held = if defer {
            None
        } else {
            HELD.try_with(|h| h.borrow_mut().take()).ok().flatten()
        };
        let (result, deferred, conn) = actix_web::web::block(move || {
            let mut conn = match held.map_or_else(|| pool.get(), Ok) {
                Ok(c) => c,
                Err(e) => {
                    let e = E::from(StoreError::Unavailable(e.to_string()));
                    return (Err(e), None, None);
                }
            };
            if !defer {
                let result = f(&mut conn);
                return (result, None, Some(conn));
            }
            let scope = audit::Deferred::collect();
            let result = f(&mut conn);
            (result, Some(scope.finish()), None)
        })
        .await?;
        if let Some(mut conn) = conn {
            // Kept for the request's next statement only while it is sound; otherwise it
            // goes back to the pool, which judges it (`Manager::has_broken`).
            if !Manager::unsound(&mut conn) {
                let _ = HELD.try_with(|h| *h.borrow_mut() = Some(conn));
            }
        }
        if let (Some(rows), Some(writer)) = (deferred, &self.writer) {
            if !rows.is_empty() {
                let appended = writer
                    .submit(move |conn| audit::insert_many(conn, &rows))
                    .await;
                // The read's own failure is the better answer; without it, a read whose
                // audit record could not be kept is not answered.
                if let (Ok(_), Err(e)) = (&result, appended) {
                    return Err(E::from(e));
                }
            }
        }
        result
    }

    /// Like [`Store::run`], inside one transaction: all of `f`'s writes commit or none do.
    ///
    /// On SQLite `f` runs on the writer thread inside its own savepoint of the next group
    /// commit (see [`writer`]); the answer comes once that commit is durable. On PostgreSQL
    /// it is one transaction on a pooled connection.
    pub async fn transaction<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError>
            + From<diesel::result::Error>
            + From<actix_web::error::BlockingError>
            + Send
            + 'static,
    {
        if let Some(writer) = &self.writer {
            return writer.submit(f).await;
        }
        self.run(move |conn| conn.transaction(f)).await
    }

    /// Whether the database answers, for the readiness probe.
    pub async fn ping(&self) -> bool {
        self.run(|conn| {
            conn.batch_execute("SELECT 1")
                .map_err(StoreError::from)
                .map_err(crate::error::ApiError::from)
        })
        .await
        .is_ok()
    }
}

/// Runs a diesel query on the backend's own connection instead of through the
/// multi-connection: `on_backend!(conn, |c| query.first(c))`. Through [`DbConnection`] every
/// execution renders the statement's SQL twice (for the cache key and again while binding)
/// and converts each bind value; on the backend's connection a statement of static shape is
/// found in the cache by its type and bound directly. For the queries of every check-in and
/// every authenticated request; the body is compiled once per backend.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match &mut *$conn {
            DbConnection::Postgresql($c) => $body,
            DbConnection::Sqlite($c) => $body,
        }
    };
}

/// Rows per multi-row `INSERT` on PostgreSQL: at most 28 columns × 500 stay under its 65,535
/// bound parameters.
const INSERT_CHUNK: usize = 500;

/// Inserts `rows` into `table`: on PostgreSQL in multi-row statements (one round trip per 500
/// rows; diesel's multi-connection cannot build them, hence the match), on SQLite one row at a
/// time through the single-row statement, which diesel prepares once per connection — a
/// multi-row statement is never cached and costs a fresh prepare each time, while in-process
/// SQLite has no round trips to save.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {{
        match &mut *$conn {
            DbConnection::Postgresql(c) => {
                for chunk in $rows.chunks($crate::store::INSERT_CHUNK) {
                    diesel::insert_into($table).values(chunk).execute(c)?;
                }
            }
            DbConnection::Sqlite(c) => {
                for row in $rows.iter() {
                    diesel::insert_into($table).values(row).execute(c)?;
                }
            }
        }
    }};
}

/// An `UPDATE table SET … WHERE …` that the connection keeps prepared.
///
/// diesel marks every `UPDATE` it builds as unsafe to cache (a changeset of `Option`s can skip
/// columns, so one Rust type can render different SQL) and prepares it afresh at each
/// execution — on SQLite the parse was a fifth of the writer's time per check-in. This
/// statement renders the same parts in the same order but leaves the decision to them: diesel
/// keys it in the cache by its rendered SQL text (it declares no static query id), so a
/// changeset that renders differently gets its own entry and can never be matched to another's
/// statement. Use it for changesets of fixed shape (`treat_none_as_null = true` rows, tuples
/// of `eq`).
pub struct CachedUpdate<F, V, W> {
    from: F,
    values: V,
    filter: W,
}

/// `UPDATE table SET values WHERE filter`, prepared once per connection; see [`CachedUpdate`].
pub fn cached_update<T, V, W>(
    table: T,
    values: V,
    filter: W,
) -> CachedUpdate<T::FromClause, V::Changeset, W>
where
    T: diesel::Table,
    V: AsChangeset<Target = T>,
    W: diesel::Expression<SqlType = diesel::sql_types::Bool> + diesel::AppearsOnTable<T>,
{
    CachedUpdate {
        from: diesel::QuerySource::from_clause(&table),
        values: values.as_changeset(),
        filter,
    }
}

impl<F, V, W, DB> diesel::query_builder::QueryFragment<DB> for CachedUpdate<F, V, W>
where
    DB: diesel::backend::Backend,
    F: diesel::query_builder::QueryFragment<DB>,
    V: diesel::query_builder::QueryFragment<DB>,
    W: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        out.push_sql("UPDATE ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" SET ");
        self.values.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        self.filter.walk_ast(out.reborrow())?;
        Ok(())
    }
}

impl<T, V, W> diesel::query_builder::QueryId for CachedUpdate<T, V, W> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T, V, W, C> RunQueryDsl<C> for CachedUpdate<T, V, W> {}

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod check_ins;
pub mod consents;
pub mod deliveries;
pub mod disclosures;
pub mod erasure;
pub mod idempotency;
pub mod integrations;
pub mod invitations;
pub mod lab;
pub mod mfa;
pub mod patients;
pub mod sessions;
pub mod writer;

/// The current time as stored: UTC, microsecond precision (what PostgreSQL keeps), so a value
/// read back equals the value written on both backends.
pub fn now() -> chrono::NaiveDateTime {
    let t = chrono::Utc::now().naive_utc();
    chrono::DurationRound::duration_trunc(t, chrono::TimeDelta::microseconds(1)).unwrap_or(t)
}

/// A new time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl From<actix_web::error::BlockingError> for StoreError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        Self::Other(anyhow::anyhow!("blocking task was cancelled"))
    }
}

#[cfg(test)]
mod statement_cache_tests {
    use std::sync::{Arc, Mutex};

    use chrono::Utc;
    use diesel::connection::InstrumentationEvent;

    use super::alerts::{AlertChangeRow, OutboxRow};
    use super::audit::AuditRow;
    use super::*;

    /// A connection to a new, migrated SQLite database (kept while the directory lives).
    fn migrated_sqlite() -> (tempfile::TempDir, diesel::SqliteConnection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        migrate(&DatabaseUrl::Sqlite(path.clone())).unwrap();
        let lite = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        (dir, lite)
    }

    /// The SQL of every statement the connection adds to its prepared-statement cache.
    fn record_cached_statements(lite: &mut diesel::SqliteConnection) -> Arc<Mutex<Vec<String>>> {
        let cached: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = cached.clone();
        lite.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                seen.lock().unwrap().push(sql.to_owned());
            }
        });
        cached
    }

    /// The inserts of a check-in's alert changes and deliveries and of read audits must reuse
    /// one prepared statement per connection, whichever optional values a row has: diesel
    /// never caches a multi-row `INSERT`, leaves out `None` columns (one statement text per
    /// combination on SQLite, none cached at all on PostgreSQL) unless the row says
    /// `treat_none_as_default_value = false`, and says nothing when it declines.
    #[test]
    fn sqlite_prepares_the_hot_inserts_once_per_connection() {
        let (_dir, mut lite) = migrated_sqlite();
        // The rows below have no parents.
        lite.batch_execute("PRAGMA foreign_keys = OFF").unwrap();
        let cached = record_cached_statements(&mut lite);
        let mut conn = DbConnection::Sqlite(lite);
        let now = Utc::now().naive_utc();
        let audit = |i: usize| AuditRow {
            id: format!("a{i}"),
            organisation_id: None,
            actor_id: (i % 2 == 0).then(|| "someone".into()),
            actor_role: None,
            action: "patient.read".into(),
            patient_id: None,
            target_type: None,
            target_id: None,
            outcome: "success".into(),
            request_id: None,
            created_at: now,
        };
        let change = |i: usize| AlertChangeRow {
            id: format!("c{i}"),
            alert_id: "alert".into(),
            change: "opened".into(),
            actor_id: None,
            severity: (i % 2 == 0).then(|| "warning".into()),
            status: None,
            detail: None,
            created_at: now,
        };
        let outbox = |i: usize| OutboxRow {
            id: format!("o{i}"),
            organisation_id: "org".into(),
            alert_id: Some("alert".into()),
            patient_id: None,
            event_type: "alert.opened".into(),
            channel: "webhook".into(),
            target: "w".into(),
            payload: "{}".into(),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: now,
            locked_until: None,
            locked_by: None,
            last_status_code: None,
            last_error: (i % 2 == 0).then(|| "refused".into()),
            created_at: now,
            updated_at: now,
            delivered_at: None,
        };
        for round in 0..3 {
            let ids = [round * 2, round * 2 + 1];
            audit::insert_many(&mut conn, &ids.map(audit)).unwrap();
            audit::insert(&mut conn, &audit(100 + round)).unwrap();
            alerts::insert_changes(&mut conn, &ids.map(change)).unwrap();
            alerts::enqueue_many(&mut conn, &ids.map(outbox)).unwrap();
        }
        let cached = cached.lock().unwrap();
        for prefix in [
            "INSERT INTO `audit_events`",
            "INSERT INTO `alert_changes`",
            "INSERT INTO `outbox`",
        ] {
            let n = cached.iter().filter(|sql| sql.starts_with(prefix)).count();
            assert_eq!(n, 1, "{prefix}: statements cached {cached:#?}");
        }
    }

    /// The check-in's three UPDATEs (the check-in itself, its alert, the patient's dates) are
    /// prepared once per connection, and each execution still writes exactly its own values:
    /// a `None` clears the column, whatever the previous execution set.
    #[test]
    fn sqlite_prepares_the_check_in_updates_once_and_writes_each_ones_values() {
        let (_dir, mut lite) = migrated_sqlite();
        lite.batch_execute(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO patients (user_id, organisation_id, phase, phase_started_on, created_at)
               VALUES ('p', 'org', 'aftercare', '2026-11-01', '2026-11-01 00:00:00');
             INSERT INTO check_ins (id, patient_id, date, craving, mood, exercise_minutes, meals,
               used_substance, substances, triggers, received_at, created_at, updated_at,
               version, source)
               VALUES ('c', 'p', '2026-11-20', 3, 6, 0, 3, 0, '[]', '[]',
               '2026-11-20 08:00:00', '2026-11-20 08:00:00', '2026-11-20 08:00:00', 1, 'app');
             INSERT INTO alerts (id, organisation_id, patient_id, rule, severity, severity_rank,
               status, title, explanation, evidence, occurrences, created_at, updated_at,
               last_seen_at, findings, rules)
               VALUES ('a', 'org', 'p', 'craving_spike', 'warning', 1, 'open', 't', 'e', '{}', 1,
               '2026-11-20 08:00:00', '2026-11-20 08:00:00', '2026-11-20 08:00:00', '[]', '[]');",
        )
        .unwrap();
        let cached = record_cached_statements(&mut lite);
        let mut conn = DbConnection::Sqlite(lite);
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        for round in 0..4 {
            let note = (round % 2 == 0).then(|| format!("note {round}"));
            let existing = check_ins::find(&mut conn, "p", day).unwrap().unwrap();
            let mut row = existing.clone();
            row.craving = round;
            row.note = note.clone();
            check_ins::upsert_over(&mut conn, row, Some(&existing)).unwrap();
            let stored = check_ins::find(&mut conn, "p", day).unwrap().unwrap();
            assert_eq!((stored.craving, stored.note), (round, note.clone()));
            assert_eq!(stored.version, existing.version + 1);

            let mut alert = alerts::find(&mut conn, "a").unwrap().unwrap();
            alert.note = note.clone();
            alert.occurrences = round + 1;
            alerts::save(&mut conn, &alert).unwrap();
            let stored = alerts::find(&mut conn, "a").unwrap().unwrap();
            assert_eq!((stored.note, stored.occurrences), (note.clone(), round + 1));

            let last_use = (round % 2 == 1).then_some(day);
            check_ins::update_patient_dates(&mut conn, "p", Some(day), Some(day), last_use, None)
                .unwrap();
            let stored = patients::find(&mut conn, "p").unwrap().unwrap();
            assert_eq!(stored.last_use_on, last_use);
        }
        // A stale version matches nothing and says so.
        let existing = check_ins::find(&mut conn, "p", day).unwrap().unwrap();
        let mut stale = existing.clone();
        stale.version -= 1;
        assert!(matches!(
            check_ins::upsert_over(&mut conn, existing.clone(), Some(&stale)),
            Err(StoreError::Conflict(ref c)) if c == "check_ins_version"
        ));

        let cached = cached.lock().unwrap();
        for prefix in ["UPDATE `check_ins`", "UPDATE `alerts`", "UPDATE `patients`"] {
            let n = cached.iter().filter(|sql| sql.starts_with(prefix)).count();
            assert_eq!(n, 1, "{prefix}: statements cached {cached:#?}");
        }
    }
}
