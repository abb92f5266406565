//! SQLite's single writer: group commit.
//!
//! SQLite has one write lock and `synchronous = FULL` pays one fsync per commit, so one
//! transaction per commit caps durable writes at the disk's fsync rate. Here one thread owns
//! the write connection; write transactions are handed to it as closures, and it runs every
//! one waiting at that moment inside its own `SAVEPOINT` within one `BEGIN IMMEDIATE …
//! COMMIT`. A closure that fails (or panics) rolls back to its savepoint alone; the others
//! commit together, and each caller is answered only after that shared `COMMIT` returned —
//! nothing is acknowledged before it is on disk.
//!
//! Transactions of one batch run one after another on one connection, so a later one sees an
//! earlier one's writes as if they had committed (an idempotency key remembered by one is
//! replayed by the next, a row one inserted is a conflict for the next); as every answer waits
//! for the shared commit, none rests on writes that might still be lost. If the write lock
//! stays taken by another process past `busy_timeout`, the whole batch is a retryable 503 and
//! the next batch tries again.
//!
//! Callers never block: they send the closure over a channel and await a oneshot answer, so
//! the async runtime goes on serving while the writer works.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::SqliteConnection;

use super::{DbConnection, DbPool, PooledConn, StoreError};

/// The most transactions one commit carries: enough to ride out a burst, few enough that a
/// batch's slowest member does not hold the others back for long.
const MAX_BATCH: usize = 128;

/// One write transaction waiting for the writer.
trait Job: Send {
    /// Runs the transaction's body on the writer's connection (inside its savepoint);
    /// returns whether it succeeded, i.e. whether its writes are to be kept.
    fn run(&mut self, conn: &mut DbConnection) -> bool;
    /// Answers the caller once the batch's fate is known: `Ok` when the commit carrying its
    /// writes returned, else why they were not kept.
    fn answer(self: Box<Self>, batch: Result<(), &StoreError>);
    /// Turns a success into `why`: its writes were rolled back after all.
    fn discard(&mut self, why: StoreError);
}

struct Task<T, E, F> {
    body: Option<F>,
    outcome: Option<Result<T, E>>,
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> Job for Task<T, E, F>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send,
    T: Send,
    E: From<StoreError> + Send,
{
    fn run(&mut self, conn: &mut DbConnection) -> bool {
        let Some(body) = self.body.take() else {
            return false;
        };
        let outcome = match catch_unwind(AssertUnwindSafe(|| body(conn))) {
            Ok(outcome) => outcome,
            // The panic message went to the log through the panic hook; the caller sees a
            // 500, and only this transaction's writes are rolled back.
            Err(_) => Err(E::from(StoreError::Other(anyhow::anyhow!(
                "a write transaction panicked"
            )))),
        };
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn answer(self: Box<Self>, batch: Result<(), &StoreError>) {
        let this = *self;
        let outcome = match (this.outcome, batch) {
            // A failed transaction's own error stands, whatever became of the others.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (Some(Ok(_)), Err(why)) | (None, Err(why)) => Err(E::from(again(why))),
            (None, Ok(())) => Err(E::from(StoreError::Other(anyhow::anyhow!(
                "a write transaction was never run"
            )))),
        };
        // The caller may have gone away (its request was cancelled): nothing to tell.
        let _ = this.reply.send(outcome);
    }

    fn discard(&mut self, why: StoreError) {
        if !matches!(self.outcome, Some(Err(_))) {
            self.outcome = Some(Err(E::from(why)));
        }
    }
}

/// A copy of a batch's error for each of its callers.
fn again(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Conflict(c) => StoreError::Conflict(c.clone()),
        StoreError::Other(e) => StoreError::Other(anyhow::anyhow!("{e:#}")),
    }
}

/// Handle to the writer thread; cheap to clone. The thread ends when the last handle is
/// dropped.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer thread; it takes its connection from `pool` when the first
    /// transaction arrives (and a fresh one after a failure).
    pub fn start(pool: DbPool) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(pool, queue))?;
        Ok(Self { jobs })
    }

    /// Runs `f` in the next commit and answers after it is durable.
    pub async fn submit<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let task = Task {
            body: Some(f),
            outcome: None,
            reply,
        };
        if self.jobs.send(Box::new(task)).is_err() {
            return Err(E::from(StoreError::Unavailable(
                "the database writer has stopped".into(),
            )));
        }
        answer.await.unwrap_or_else(|_| {
            Err(E::from(StoreError::Unavailable(
                "the database writer has stopped".into(),
            )))
        })
    }
}

fn run(pool: DbPool, queue: mpsc::Receiver<Box<dyn Job>>) {
    let mut conn: Option<PooledConn> = None;
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut c = match conn.take() {
            Some(c) => c,
            None => match pool.get() {
                Ok(c) => c,
                Err(e) => {
                    let why = StoreError::Unavailable(e.to_string());
                    for job in batch {
                        job.answer(Err(&why));
                    }
                    continue;
                }
            },
        };
        if commit(&mut c, batch) {
            conn = Some(c);
        }
        // Otherwise the connection is dropped: the pool's `has_broken` sees a transaction
        // left open or a broken transaction manager and discards it.
    }
}

fn depth(c: &mut SqliteConnection) -> Result<u32, diesel::result::Error> {
    Ok(
        <AnsiTransactionManager as TransactionManager<SqliteConnection>>::transaction_manager_status_mut(c)
            .transaction_depth()?
            .map_or(0, std::num::NonZeroU32::get),
    )
}

/// Runs one batch in one transaction; returns whether the connection may be used again.
fn commit(conn: &mut DbConnection, batch: Vec<Box<dyn Job>>) -> bool {
    let n = batch.len();
    let DbConnection::Sqlite(_) = conn else {
        let why = StoreError::Other(anyhow::anyhow!("the writer serves SQLite only"));
        for job in batch {
            job.answer(Err(&why));
        }
        return false;
    };
    // Takes the write lock now, waiting up to busy_timeout for another process to let go;
    // if it does not, every transaction of the batch is a retryable 503.
    if let Err(e) = sqlite(conn)
        .and_then(|c| AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"))
    {
        let why = StoreError::from(e);
        for job in batch {
            job.answer(Err(&why));
        }
        return sqlite(conn).and_then(depth).is_ok_and(|d| d == 0);
    }
    let mut ran = Vec::with_capacity(n);
    let mut poisoned: Option<StoreError> = None;
    for mut job in batch {
        if poisoned.is_some() {
            ran.push(job);
            continue;
        }
        if let Err(e) = sqlite(conn).and_then(AnsiTransactionManager::begin_transaction) {
            poisoned = Some(StoreError::from(e));
            ran.push(job);
            continue;
        }
        let ok = job.run(conn);
        match settle(conn, ok) {
            Ok(true) => {}
            Ok(false) => job.discard(StoreError::Other(anyhow::anyhow!(
                "a write transaction left a nested transaction open"
            ))),
            Err(e) => poisoned = Some(e),
        }
        ran.push(job);
    }
    if let Some(why) = poisoned {
        // The transaction can no longer be trusted: none of the batch is kept.
        let _ = sqlite(conn).map(|c| {
            let _ = c.batch_execute("ROLLBACK");
        });
        for job in ran {
            job.answer(Err(&why));
        }
        return false;
    }
    match sqlite(conn).and_then(AnsiTransactionManager::commit_transaction) {
        Ok(()) => {
            metrics::histogram!("db_group_commit_transactions").record(n as f64);
            for job in ran {
                job.answer(Ok(()));
            }
            true
        }
        Err(e) => {
            let why = StoreError::from(e);
            for job in ran {
                job.answer(Err(&why));
            }
            sqlite(conn).and_then(depth).is_ok_and(|d| d == 0)
        }
    }
}

fn sqlite(conn: &mut DbConnection) -> Result<&mut SqliteConnection, diesel::result::Error> {
    match conn {
        DbConnection::Sqlite(c) => Ok(c),
        DbConnection::Postgresql(_) => Err(diesel::result::Error::NotInTransaction),
    }
}

/// After a job: back to the batch's own level (a panic, or a body that forgot to close a
/// nested transaction, may have left deeper levels open), then its savepoint released when it
/// succeeded, rolled back when it did not. `Ok(false)`: a successful body's writes had to be
/// rolled back after all. An error means the batch itself can no longer be trusted.
fn settle(conn: &mut DbConnection, ok: bool) -> Result<bool, StoreError> {
    let c = sqlite(conn)?;
    let mut kept = ok;
    while depth(c)? > 2 {
        kept = false;
        AnsiTransactionManager::rollback_transaction(c)?;
    }
    if depth(c)? != 2 {
        return Err(StoreError::Other(anyhow::anyhow!(
            "a write transaction closed its savepoint"
        )));
    }
    if kept {
        AnsiTransactionManager::commit_transaction(c)?;
    } else {
        AnsiTransactionManager::rollback_transaction(c)?;
    }
    if depth(c)? != 1 {
        return Err(StoreError::Other(anyhow::anyhow!(
            "the batch's transaction was lost"
        )));
    }
    Ok(kept || !ok)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;

    use crate::config::DatabaseUrl;
    use crate::store::{build_pool, Store, StoreError};

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn store(dir: &tempfile::TempDir) -> Store {
        let url = DatabaseUrl::Sqlite(dir.path().join("w.db"));
        let limits = crate::store::Limits {
            statement_timeout: Duration::from_secs(15),
            lock_timeout: Duration::from_secs(2),
        };
        let pool = build_pool(&url, 4, Duration::from_secs(5), limits);
        let store = Store::new(pool, &url).unwrap();
        store
            .conn()
            .unwrap()
            .batch_execute("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)")
            .unwrap();
        store
    }

    async fn insert(store: &Store, v: i64) -> Result<(), StoreError> {
        store
            .transaction(move |conn| -> Result<(), StoreError> {
                conn.batch_execute(&format!("INSERT INTO t (v) VALUES ({v})"))?;
                Ok(())
            })
            .await
    }

    async fn values(store: &Store) -> i64 {
        store
            .run(|conn| -> Result<i64, StoreError> {
                Ok(diesel::sql_query("SELECT count(*) AS n FROM t")
                    .get_result::<Count>(conn)?
                    .n)
            })
            .await
            .unwrap()
    }

    #[derive(QueryableByName)]
    struct CompileOption {
        #[diesel(sql_type = diesel::sql_types::Text)]
        compile_options: String,
    }

    /// `.cargo/config.toml` builds the bundled SQLite with the query planner stability
    /// guarantee: without it every statement with `LIMIT ?` (diesel's `.first()`) is prepared
    /// again from its text at each execution, a fifth of the writer's time per check-in.
    #[test]
    fn sqlite_keeps_prepared_statements_whatever_is_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let options: Vec<String> = diesel::sql_query("PRAGMA compile_options")
            .load::<CompileOption>(&mut *store.conn().unwrap())
            .unwrap()
            .into_iter()
            .map(|o| o.compile_options)
            .collect();
        assert!(
            options.iter().any(|o| o == "ENABLE_QPSG"),
            "SQLite built without SQLITE_ENABLE_QPSG: {options:?}"
        );
    }

    #[tokio::test]
    async fn a_failing_or_panicking_transaction_rolls_back_alone_and_the_others_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut tasks = Vec::new();
        for v in 0..40_i64 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                match v % 10 {
                    // Writes, then fails: its row must not survive.
                    3 => {
                        s.transaction(move |conn| -> Result<(), StoreError> {
                            conn.batch_execute(&format!("INSERT INTO t (v) VALUES ({v})"))?;
                            Err(StoreError::NotFound)
                        })
                        .await
                    }
                    // Writes, then panics inside a nested transaction.
                    7 => {
                        s.transaction(move |conn| -> Result<(), StoreError> {
                            conn.batch_execute(&format!("INSERT INTO t (v) VALUES ({v})"))?;
                            conn.transaction(|_| -> Result<(), StoreError> {
                                panic!("a bug in one action")
                            })
                        })
                        .await
                    }
                    _ => insert(&s, v).await,
                }
            }));
        }
        let mut ok = 0;
        for t in tasks {
            if t.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 32);
        assert_eq!(values(&store).await, 32);
        // The writer goes on, and a constraint failure is the caller's own error.
        insert(&store, 100).await.unwrap();
        assert!(matches!(
            insert(&store, 100).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(values(&store).await, 33);
    }

    #[tokio::test]
    async fn a_connection_that_panicked_mid_transaction_does_not_keep_the_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        // A reader connection opens a write transaction by hand and its holder panics.
        let s = store.clone();
        let crashed = tokio::spawn(async move {
            s.run(|conn| -> Result<(), StoreError> {
                conn.batch_execute("BEGIN IMMEDIATE; INSERT INTO t (v) VALUES (1)")?;
                panic!("a bug while holding the write lock")
            })
            .await
        })
        .await
        .unwrap();
        assert!(crashed.is_err());
        // Were that connection back in the pool, every write would now wait for its lock.
        let started = std::time::Instant::now();
        insert(&store, 2).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(values(&store).await, 1);
    }
}
