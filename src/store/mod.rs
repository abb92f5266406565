//! Persistence with diesel: one connection type over SQLite and PostgreSQL, a pool, the
//! embedded migrations, and one module per aggregate.
//!
//! Queries are written once against [`DbConnection`] and so must only use what both backends
//! share; where they differ (row locking, advisory locks), a function matches on the variant.

pub mod schema;

use std::path::Path;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
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
                // instead of failing them.
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
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
        self.establish().map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
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
        // A cheap `SELECT 1` per checkout: after a database restart, dead pooled connections
        // are replaced instead of failing request after request.
        .test_on_check_out(true)
        .build_unchecked(Manager {
            url: url.clone(),
            limits: Some(limits),
        })
}

/// Handle to the database used by handlers and workers.
#[derive(Clone)]
pub struct Store {
    pool: DbPool,
}

impl Store {
    /// Wraps a pool.
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
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
    /// async workers must never wait on it.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + From<actix_web::error::BlockingError> + Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::web::block(move || {
            let mut conn = pool
                .get()
                .map_err(|e| E::from(StoreError::Unavailable(e.to_string())))?;
            f(&mut conn)
        })
        .await?
    }

    /// Like [`Store::run`], inside one transaction: all of `f`'s writes commit or none do.
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
        self.run(move |conn| {
            if !matches!(conn, DbConnection::Sqlite(_)) {
                return conn.transaction(f);
            }
            // SQLite: take the write lock at BEGIN. A deferred transaction that reads first
            // and writes later fails at once with "database is locked" when another
            // connection committed in between (busy_timeout cannot help it); an immediate one
            // waits for the lock instead.
            if let DbConnection::Sqlite(c) = &mut *conn {
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
            }
            let result = f(&mut *conn);
            if let DbConnection::Sqlite(c) = &mut *conn {
                match &result {
                    Ok(_) => AnsiTransactionManager::commit_transaction(c)?,
                    Err(_) => AnsiTransactionManager::rollback_transaction(c)?,
                }
            }
            result
        })
        .await
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

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod check_ins;
pub mod deliveries;
pub mod disclosures;
pub mod idempotency;
pub mod invitations;
pub mod lab;
pub mod mfa;
pub mod patients;
pub mod sessions;

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
