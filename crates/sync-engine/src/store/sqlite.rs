//! The embedded SQLite store (WAL), the default.
//!
//! SQLite has one writer at a time, so every write (delivery inserts, the hot path, and the
//! engine's claims, job results, links, leases and state) goes to one task that owns the
//! write connection. While one transaction is being made durable the next writes queue up,
//! and the task commits them together: each caller hears back only after its batch commits.
//! With `synchronous = FULL` (fsync on every commit) that costs one fsync per batch, not per
//! write. Each write runs in a savepoint of the batch, so one that fails undoes only itself.
//! WAL checkpoints run on a connection of their own, off the commit path. Reads use a
//! separate pool of read-only connections, which WAL lets run beside the writer.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::FutureExt as _;
use hookbridge_core::{DeliveryId, EndpointName, Secret};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection as _, Row as _};
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{
    Attempt, ClaimedJob, DeliveryFilter, DeliveryStatus, Dispatch, EchoMark, InsertOutcome, Job,
    JobFilter, JobId, JobNext, JobState, Link, NewDelivery, NewJob, Store, StoreError,
    StoredDelivery, TokenRecord, from_unix_micros, micros, unix_micros,
};
use super::{DeliveryBucket, DeliverySearch};
use super::{JobSearch, UnfinishedDelivery, UnfinishedFilter};

/// Migrations, in order. A migration is never edited once released; add a new one.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/sqlite/0001_inbox.sql")),
    (2, include_str!("migrations/sqlite/0002_engine.sql")),
    (3, include_str!("migrations/sqlite/0003_open_jobs.sql")),
];

/// Most deliveries committed in one transaction.
const MAX_BATCH: usize = 256;

/// How durable a commit is before the store acknowledges it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// fsync on every commit: an acknowledged delivery survives a power loss. The default.
    #[default]
    Full,
    /// fsync at checkpoints only: survives a crash of hookbridge, not of the machine.
    Normal,
}

/// Options of the SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// Durability of commits.
    pub synchronous: Synchronous,
    /// Read connections kept open.
    pub read_connections: u32,
    /// How long a statement waits on a lock before failing.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            read_connections: 2,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
type Reply = oneshot::Sender<Result<InsertOutcome, StoreError>>;

/// Hands an operation's result to its caller once the batch it ran in has committed (or
/// failed to): nothing is reported durable before it is.
type Deferred = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

type RunOp = Box<
    dyn for<'c, 't> FnOnce(
            &'c mut sqlx::Transaction<'t, sqlx::Sqlite>,
            bool,
        ) -> BoxFuture<'c, (Deferred, bool)>
        + Send,
>;

/// One write operation, run inside the writer's batch transaction (in its own savepoint when
/// the batch holds anything else).
struct WriteOp {
    operation: &'static str,
    /// Runs the operation (in a savepoint when told to isolate it); `false` beside the result
    /// when the batch transaction holds part of a failed operation's writes and must not
    /// commit.
    run: RunOp,
}

/// What the writer task is asked to do.
enum Request {
    /// A delivery for the inbox, with its dispatch when the engine planned it.
    Insert {
        delivery: NewDelivery,
        dispatch: Option<Dispatch>,
        reply: Reply,
    },
    /// Any other write.
    Write(WriteOp),
}

/// The embedded SQLite store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    requests: StdMutex<Option<mpsc::Sender<Request>>>,
    tasks: StdMutex<Option<Tasks>>,
    reads: SqlitePool,
    notify: Arc<Notify>,
}

/// The store's background tasks, stopped by `close`.
#[derive(Debug)]
struct Tasks {
    writer: JoinHandle<()>,
    checkpointer: JoinHandle<()>,
    stop_checkpoints: watch::Sender<bool>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and runs pending migrations.
    pub async fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Location {
                path: parent.display().to_string(),
                message: e.to_string(),
            })?;
        }
        let connect = SqliteConnectOptions::from_str("sqlite:")
            .map_err(StoreError::db("configure"))?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match options.synchronous {
                Synchronous::Full => SqliteSynchronous::Full,
                Synchronous::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true)
            // Inserts of 1 to 64 rows are 64 statements of their own: keep them all prepared.
            .statement_cache_capacity(256)
            // Checkpoints run in their own task (`checkpoint_loop`), not inside the commit
            // that happens to cross the threshold, which would make that batch wait.
            .pragma("wal_autocheckpoint", "0")
            .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string())
            // Statement journals (a multi-row insert inside a savepoint has one) in memory,
            // not in a temporary file created and deleted for every batch.
            .pragma("temp_store", "memory");

        let mut conn = SqliteConnection::connect_with(&connect)
            .await
            .map_err(StoreError::db("open"))?;
        migrate(&mut conn).await?;
        let checkpoints = SqliteConnection::connect_with(&connect)
            .await
            .map_err(StoreError::db("open checkpointer"))?;

        let reads = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .connect_with(connect.read_only(true))
            .await
            .map_err(StoreError::db("open read pool"))?;

        let notify = Arc::new(Notify::new());
        let committed = Arc::new(Notify::new());
        let (tx, rx) = mpsc::channel(MAX_BATCH * 16);
        let (stop_checkpoints, stopped) = watch::channel(false);
        let tasks = Tasks {
            writer: tokio::spawn(writer_loop(
                conn,
                rx,
                notify.clone(),
                committed.clone(),
                wal_path(&path),
            )),
            checkpointer: tokio::spawn(checkpoint_loop(checkpoints, committed, stopped)),
            stop_checkpoints,
        };
        tracing::info!(path = %path.display(), "sqlite store open");
        Ok(Self {
            path,
            requests: StdMutex::new(Some(tx)),
            tasks: StdMutex::new(Some(tasks)),
            reads,
            notify,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sender(&self) -> Option<mpsc::Sender<Request>> {
        self.requests.lock().ok().and_then(|guard| guard.clone())
    }

    async fn insert(
        &self,
        delivery: NewDelivery,
        dispatch: Option<Dispatch>,
    ) -> Result<InsertOutcome, StoreError> {
        let sender = self.sender().ok_or(StoreError::Closed)?;
        let (reply, outcome) = oneshot::channel();
        sender
            .send(Request::Insert {
                delivery,
                dispatch,
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        outcome.await.map_err(|_| StoreError::Aborted {
            operation: "insert delivery",
        })?
    }

    /// Puts a job whose state is one of `states` (an SQL list of literals) back to pending
    /// with a fresh budget of attempts: `replay_job` and `rerun_job`. Attempts keep counting
    /// (their records stay).
    async fn requeue_job(
        &self,
        operation: &'static str,
        id: JobId,
        states: &'static str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let now = unix_micros(now);
        let requeued = self
            .write(operation, move |tx| {
                Box::pin(async move {
                    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE jobs SET state = 'pending', run_at = ?1, updated_at = ?1,
                            max_attempts = attempts + max_attempts
                         WHERE id = ?2 AND state IN ({states})"
                    )))
                    .bind(now)
                    .bind(id.0)
                    .execute(&mut **tx)
                    .await?;
                    Ok(r.rows_affected() > 0)
                })
            })
            .await?;
        if requeued {
            self.notify.notify_waiters();
        }
        Ok(requeued)
    }

    /// Runs `f` on the writer, in the writer's current batch transaction (in a savepoint of
    /// its own when the batch holds other writes), and returns its result once that batch has
    /// committed. Writes from concurrent callers share one commit (one fsync) instead of
    /// queueing for one each; a failing `f` undoes only its own writes.
    async fn write<T, F>(&self, operation: &'static str, f: F) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(
                &'c mut sqlx::Transaction<'_, sqlx::Sqlite>,
            ) -> BoxFuture<'c, Result<T, sqlx::Error>>
            + Send
            + 'static,
        T: Send + 'static,
    {
        let sender = self.sender().ok_or(StoreError::Closed)?;
        let (reply, result) = oneshot::channel::<Result<T, StoreError>>();
        let run = write_op(
            move |tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, isolate| {
                Box::pin(async move {
                    let (outcome, clean) = run_unit(tx, isolate, operation, f).await;
                    let deferred = Box::new(move |committed: Result<(), &StoreError>| {
                        let _ = reply.send(match committed {
                            Ok(()) => outcome,
                            Err(error) => outcome.and(Err(error.clone())),
                        });
                    }) as Deferred;
                    (deferred, clean)
                }) as BoxFuture<'_, (Deferred, bool)>
            },
        );
        sender
            .send(Request::Write(WriteOp { operation, run }))
            .await
            .map_err(|_| StoreError::Closed)?;
        result
            .await
            .map_err(|_| StoreError::Aborted { operation })?
    }
}

/// Gives a write operation's closure the higher-ranked type the writer calls it with.
fn write_op<F>(f: F) -> RunOp
where
    F: for<'c, 't> FnOnce(
            &'c mut sqlx::Transaction<'t, sqlx::Sqlite>,
            bool,
        ) -> BoxFuture<'c, (Deferred, bool)>
        + Send
        + 'static,
{
    Box::new(f)
}

/// Past this size the writer completes the checkpoint itself so that the WAL starts over
/// (see `writer_loop`).
const WAL_RESET_SIZE: u64 = 32 * 1024 * 1024;

/// Bytes the WAL file is cut back to when it starts over: above the reset size, so that in
/// steady state the file is reused, not truncated and grown again.
const JOURNAL_SIZE_LIMIT: u64 = 2 * WAL_RESET_SIZE;

/// How long after a commit the next background checkpoint runs: commits in between share it.
const CHECKPOINT_DELAY: Duration = Duration::from_millis(50);

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Runs one unit of a batch (an operation, or the batch's inserts) in the batch transaction
/// `tx`: in a savepoint of its own when `isolate`, so that its failure undoes only its own
/// writes. The flag is `false` when the transaction holds an unknown part of a failed unit's
/// writes (a failure outside a savepoint, or a savepoint that could not be rolled back) and
/// must not commit. A unit alone in its batch runs without a savepoint, which saves two
/// round trips to SQLite's thread on every write made without concurrency: should it fail,
/// the whole transaction (its own writes only) is rolled back.
async fn run_unit<T, F>(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    isolate: bool,
    operation: &'static str,
    f: F,
) -> (Result<T, StoreError>, bool)
where
    F: for<'c> FnOnce(
        &'c mut sqlx::Transaction<'_, sqlx::Sqlite>,
    ) -> BoxFuture<'c, Result<T, sqlx::Error>>,
{
    if !isolate {
        return match f(tx).await {
            Ok(value) => (Ok(value), true),
            Err(error) => (Err(StoreError::db(operation)(error)), false),
        };
    }
    let conn: &mut SqliteConnection = tx;
    let mut sp = match conn.begin().await {
        Ok(sp) => sp,
        Err(error) => return (Err(StoreError::db(operation)(error)), false),
    };
    match f(&mut sp).await {
        Ok(value) => match sp.commit().await {
            Ok(()) => (Ok(value), true),
            Err(error) => (Err(StoreError::db(operation)(error)), false),
        },
        Err(error) => {
            let clean = match sp.rollback().await {
                Ok(()) => true,
                Err(rollback) => {
                    tracing::error!(operation, error = %rollback, "rolling back a savepoint failed");
                    false
                }
            };
            (Err(StoreError::db(operation)(error)), clean)
        }
    }
}

async fn migrate(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            applied_at INTEGER NOT NULL
        )",
    )
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("create schema_migrations"))?;
    let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::db("read schema version"))?
        .get(0);
    let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > known {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let fail = |source| StoreError::Migration {
            version: *version,
            source: Arc::new(source),
        };
        let mut tx = conn.begin().await.map_err(fail)?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
            .bind(*version)
            .bind(OffsetDateTime::now_utc().unix_timestamp())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        tracing::info!(version, "applied sqlite migration");
    }
    Ok(())
}

/// The writer task: owns the one write connection and commits whatever is queued, inserts
/// and other writes alike, in one transaction per batch. While a batch is being made durable
/// the next one queues up, so under load each fsync covers many operations; each caller hears
/// back only after its batch committed. Returns when every sender is gone, after committing
/// what was queued, and closes the connection.
async fn writer_loop(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Request>,
    notify: Arc<Notify>,
    committed: Arc<Notify>,
    wal: PathBuf,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let wake = commit_batch(&mut conn, &mut batch).await;
        committed.notify_one();
        if wake {
            notify.notify_waiters();
        }
        // The background checkpointer copies frames while the writer appends more, so under
        // sustained load it never catches up with the end of the WAL, and only a fully
        // checkpointed WAL starts over. Past a size, the writer finishes the checkpoint
        // itself between two batches (callers already answered): little is left to copy, and
        // the next transaction then rewrites the WAL from its start.
        if std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_RESET_SIZE)
            && let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&mut conn)
                .await
        {
            tracing::warn!(%error, "sqlite checkpoint failed");
        }
    }
    if let Err(error) = conn.close().await {
        tracing::warn!(%error, "closing the sqlite writer failed");
    }
}

/// Commits one batch; `true` when it inserted something the engine has to look at (a
/// delivery left to the dispatcher, or jobs).
async fn commit_batch(conn: &mut SqliteConnection, batch: &mut Vec<Request>) -> bool {
    let mut rows = Vec::new();
    let mut replies = Vec::new();
    let mut writes = Vec::new();
    for request in batch.drain(..) {
        match request {
            Request::Insert {
                delivery,
                dispatch,
                reply,
            } => {
                // The engine has work when the dispatcher must plan the delivery or when
                // it comes with jobs.
                let engine_work = dispatch.as_ref().is_none_or(|d| !d.jobs.is_empty());
                rows.push((delivery, dispatch));
                replies.push((reply, engine_work));
            }
            Request::Write(op) => writes.push(op),
        }
    }
    let mut tx = match conn.begin().await {
        Ok(tx) => tx,
        Err(error) => {
            let error = StoreError::db("begin")(error);
            tracing::error!(%error, "sqlite write batch not started");
            for (reply, _) in replies {
                let _ = reply.send(Err(error.clone()));
            }
            // Dropping the operations drops their reply channels: their callers hear
            // `Aborted`, and nothing was written.
            return false;
        }
    };
    let isolate = usize::from(!rows.is_empty()) + writes.len() > 1;
    let mut clean = true;
    let mut inserted = Ok(Vec::new());
    if !rows.is_empty() {
        let now = unix_micros(OffsetDateTime::now_utc());
        let (outcome, ok) = run_unit(&mut tx, isolate, "insert delivery", move |tx| {
            Box::pin(async move { insert_deliveries(tx, &rows, now).await })
        })
        .await;
        inserted = outcome;
        clean &= ok;
    }
    let mut deferred = Vec::with_capacity(writes.len());
    let mut failed_op = None;
    for op in writes {
        if !clean {
            break;
        }
        let operation = op.operation;
        match std::panic::AssertUnwindSafe((op.run)(&mut tx, isolate))
            .catch_unwind()
            .await
        {
            Ok((reply, ok)) => {
                deferred.push(reply);
                clean &= ok;
            }
            Err(_) => {
                tracing::error!(
                    operation,
                    "a store write panicked; its batch is rolled back"
                );
                failed_op = Some(operation);
                clean = false;
            }
        }
    }
    let committed = if clean {
        tx.commit().await.map_err(StoreError::db("commit"))
    } else {
        if let Err(error) = tx.rollback().await {
            tracing::error!(%error, "rolling back a sqlite write batch failed");
        }
        Err(StoreError::Aborted {
            operation: failed_op.unwrap_or("write batch"),
        })
    };
    if let Err(error) = &committed {
        tracing::error!(%error, inserts = replies.len(), writes = deferred.len(), "sqlite write batch not committed");
    }
    for reply in deferred {
        reply(committed.as_ref().map(|_| ()));
    }
    let mut wake = false;
    match inserted.and_then(|outcomes| committed.clone().map(|()| outcomes)) {
        Ok(outcomes) => {
            for ((reply, engine_work), outcome) in replies.into_iter().zip(outcomes) {
                wake |= engine_work && matches!(outcome, InsertOutcome::Inserted { .. });
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(error) => {
            for (reply, _) in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
    wake
}

/// Checkpoints the WAL into the database file shortly after commits, on its own connection,
/// so that commits do not do it. A passive checkpoint blocks neither the writer nor readers.
/// While there is work it runs every [`CHECKPOINT_DELAY`] (rewrites of one page in between are
/// copied once); idle, it waits for the next commit.
async fn checkpoint_loop(
    mut conn: SqliteConnection,
    committed: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            () = committed.notified() => {}
        }
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            () = tokio::time::sleep(CHECKPOINT_DELAY) => {}
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            tracing::warn!(%error, "sqlite checkpoint failed; the next commit retries");
        }
    }
    if let Err(error) = conn.close().await {
        tracing::warn!(%error, "closing the sqlite checkpointer failed");
    }
}

/// Rows per `INSERT` statement: 8 parameters each, well under SQLite's variable limit.
const ROWS_PER_STATEMENT: usize = 64;

/// Inserts deliveries with multi-row statements (one round trip to SQLite's thread per 64
/// rows instead of one per row), each with its dispatch's status and jobs when it has one,
/// and tells each one whether it was new.
async fn insert_deliveries(
    conn: &mut SqliteConnection,
    batch: &[(NewDelivery, Option<Dispatch>)],
    now: i64,
) -> Result<Vec<InsertOutcome>, sqlx::Error> {
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut jobs = Vec::new();
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from(
            "INSERT INTO deliveries
                (endpoint, provider, delivery_id, event_type, headers, body, received_at, status)
             VALUES ",
        );
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 {
                "(?, ?, ?, ?, ?, ?, ?, ?)"
            } else {
                ", (?, ?, ?, ?, ?, ?, ?, ?)"
            });
        }
        sql.push_str(
            " ON CONFLICT (endpoint, delivery_id) DO NOTHING RETURNING seq, endpoint, delivery_id",
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (d, dispatch) in chunk {
            let headers = serde_json::to_string(&d.headers).unwrap_or_else(|_| "[]".into());
            let status = dispatch
                .as_ref()
                .map_or(DeliveryStatus::Received, |p| p.status);
            query = query
                .bind(d.endpoint.as_str())
                .bind(d.provider.as_str())
                .bind(d.delivery_id.as_str())
                .bind(d.event_type.as_str())
                .bind(headers)
                .bind(&d.body[..])
                .bind(unix_micros(d.received_at))
                .bind(status.as_str());
        }
        let rows = query.fetch_all(&mut *conn).await?;
        // Only new rows come back. A delivery sent twice in one chunk is inserted by its
        // first occurrence (rows are inserted in order); the later one is the duplicate.
        let mut inserted: std::collections::HashMap<(String, String), i64> = rows
            .iter()
            .map(|row| {
                (
                    (row.get("endpoint"), row.get("delivery_id")),
                    row.get("seq"),
                )
            })
            .collect();
        for (d, dispatch) in chunk {
            let key = (
                d.endpoint.as_str().to_owned(),
                d.delivery_id.as_str().to_owned(),
            );
            outcomes.push(match inserted.remove(&key) {
                Some(seq) => {
                    if let Some(dispatch) = dispatch {
                        jobs.extend(dispatch.jobs.iter().map(|job| (seq, job)));
                    }
                    InsertOutcome::Inserted { seq }
                }
                None => InsertOutcome::Duplicate,
            });
        }
    }
    insert_jobs(conn, &jobs, now).await?;
    Ok(outcomes)
}

/// Creates pending jobs, in the order given (job ids are what orders the jobs of one
/// subject), with multi-row statements.
async fn insert_jobs(
    conn: &mut SqliteConnection,
    jobs: &[(i64, &NewJob)],
    now: i64,
) -> Result<(), sqlx::Error> {
    for chunk in jobs.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from(
            "INSERT INTO jobs (delivery_seq, rule, subject, state, max_attempts, run_at,
                created_at, updated_at) VALUES ",
        );
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 {
                "(?, ?, ?, 'pending', ?, ?, ?, ?)"
            } else {
                ", (?, ?, ?, 'pending', ?, ?, ?, ?)"
            });
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (seq, job) in chunk {
            query = query
                .bind(*seq)
                .bind(&job.rule)
                .bind(&job.subject)
                .bind(i64::from(job.max_attempts))
                .bind(now)
                .bind(now)
                .bind(now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

const SELECT_DELIVERY: &str = "SELECT seq, endpoint, provider, delivery_id, event_type, headers, body, received_at, status FROM deliveries";
const JOB_COLUMNS: &str = "id, delivery_seq, rule, subject, state, attempts, max_attempts, run_at, last_error, created_at, updated_at";

fn row_to_delivery(row: &SqliteRow) -> StoredDelivery {
    let headers: String = row.get("headers");
    StoredDelivery {
        seq: row.get("seq"),
        endpoint: EndpointName::new(row.get::<String, _>("endpoint")),
        provider: row.get("provider"),
        delivery_id: DeliveryId::new(row.get::<String, _>("delivery_id")),
        event_type: row.get("event_type"),
        headers: serde_json::from_str(&headers).unwrap_or_default(),
        body: Bytes::from(row.get::<Vec<u8>, _>("body")),
        received_at: from_unix_micros(row.get("received_at")),
        status: row.get("status"),
    }
}

fn row_to_job(row: &SqliteRow) -> Job {
    Job {
        id: JobId(row.get("id")),
        delivery_seq: row.get("delivery_seq"),
        rule: row.get("rule"),
        subject: row.get("subject"),
        state: JobState::parse(row.get::<&str, _>("state")).unwrap_or(JobState::Dead),
        attempts: u32::try_from(row.get::<i64, _>("attempts")).unwrap_or(0),
        max_attempts: u32::try_from(row.get::<i64, _>("max_attempts")).unwrap_or(0),
        run_at: from_unix_micros(row.get("run_at")),
        last_error: row.get("last_error"),
        created_at: from_unix_micros(row.get("created_at")),
        updated_at: from_unix_micros(row.get("updated_at")),
    }
}

fn row_to_attempt(row: &SqliteRow) -> Attempt {
    let (actions, calls) = super::records::decode_actions(row.get::<&str, _>("actions"));
    Attempt {
        number: u32::try_from(row.get::<i64, _>("number")).unwrap_or(0),
        started_at: from_unix_micros(row.get("started_at")),
        finished_at: from_unix_micros(row.get("finished_at")),
        outcome: row.get("outcome"),
        error: row.get("error"),
        actions,
        calls,
    }
}

fn row_to_link(row: &SqliteRow) -> Link {
    let data: String = row.get("data");
    Link {
        rule: row.get("rule"),
        a: row.get("a"),
        b: row.get("b"),
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_delivery(&self, delivery: NewDelivery) -> Result<InsertOutcome, StoreError> {
        self.insert(delivery, None).await
    }

    async fn insert_dispatched(
        &self,
        delivery: NewDelivery,
        dispatch: Dispatch,
    ) -> Result<InsertOutcome, StoreError> {
        self.insert(delivery, Some(dispatch)).await
    }

    async fn find_deliveries(
        &self,
        delivery_id: &DeliveryId,
        endpoint: Option<&EndpointName>,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_DELIVERY} WHERE delivery_id = ? AND (? IS NULL OR endpoint = ?) ORDER BY seq"
        )))
        .bind(delivery_id.as_str())
        .bind(endpoint.map(EndpointName::as_str))
        .bind(endpoint.map(EndpointName::as_str))
        .fetch_all(&self.reads)
        .await
        .map_err(StoreError::db("find deliveries"))?;
        Ok(rows.iter().map(row_to_delivery).collect())
    }

    async fn delivery(&self, seq: i64) -> Result<Option<StoredDelivery>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_DELIVERY} WHERE seq = ?"
        )))
        .bind(seq)
        .fetch_optional(&self.reads)
        .await
        .map_err(StoreError::db("read delivery"))?;
        Ok(row.as_ref().map(row_to_delivery))
    }

    async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let endpoint = filter.endpoint.as_ref().map(EndpointName::as_str);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_DELIVERY} WHERE (? IS NULL OR endpoint = ?) AND (? IS NULL OR seq < ?)
             ORDER BY seq DESC LIMIT ?"
        )))
        .bind(endpoint)
        .bind(endpoint)
        .bind(filter.before_seq)
        .bind(filter.before_seq)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.reads)
        .await
        .map_err(StoreError::db("list deliveries"))?;
        Ok(rows.iter().map(row_to_delivery).collect())
    }

    fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    async fn undispatched(&self, limit: u32) -> Result<Vec<StoredDelivery>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_DELIVERY} WHERE status = 'received' ORDER BY seq LIMIT ?"
        )))
        .bind(i64::from(limit))
        .fetch_all(&self.reads)
        .await
        .map_err(StoreError::db("list undispatched"))?;
        Ok(rows.iter().map(row_to_delivery).collect())
    }

    async fn dispatch(
        &self,
        seq: i64,
        status: DeliveryStatus,
        jobs: &[NewJob],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let dispatch = Dispatch {
            status,
            jobs: jobs.to_vec(),
        };
        let created = self.dispatch_many(&[(seq, dispatch)], now).await?;
        Ok(created.first().copied().unwrap_or(false))
    }

    async fn dispatch_many(
        &self,
        items: &[(i64, Dispatch)],
        now: OffsetDateTime,
    ) -> Result<Vec<bool>, StoreError> {
        let owned = items.to_vec();
        let now = unix_micros(now);
        let created = self
            .write("dispatch", move |tx| {
                Box::pin(async move {
                    let mut created = Vec::with_capacity(owned.len());
                    let mut jobs = Vec::new();
                    for (seq, dispatch) in &owned {
                        let updated = sqlx::query(
                            "UPDATE deliveries SET status = ? WHERE seq = ? AND status = 'received'",
                        )
                        .bind(dispatch.status.as_str())
                        .bind(*seq)
                        .execute(&mut **tx)
                        .await?;
                        let done = updated.rows_affected() > 0;
                        if done {
                            jobs.extend(dispatch.jobs.iter().map(|job| (*seq, job)));
                        }
                        created.push(done);
                    }
                    insert_jobs(tx, &jobs, now).await?;
                    Ok(created)
                })
            })
            .await?;
        if created
            .iter()
            .zip(items)
            .any(|(done, (_, d))| *done && d.status == DeliveryStatus::Dispatched)
        {
            self.notify.notify_waiters();
        }
        Ok(created)
    }

    async fn replay_delivery(&self, seq: i64) -> Result<bool, StoreError> {
        let changed = self
            .write("replay delivery", move |tx| {
                Box::pin(async move {
                    let r = sqlx::query("UPDATE deliveries SET status = 'received' WHERE seq = ?")
                        .bind(seq)
                        .execute(&mut **tx)
                        .await?;
                    Ok(r.rows_affected() > 0)
                })
            })
            .await?;
        if changed {
            self.notify.notify_waiters();
        }
        Ok(changed)
    }

    async fn claim_jobs(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let worker = worker.to_owned();
        let now = unix_micros(now);
        let lease_until = now.saturating_add(micros(lease));
        let (jobs, lost) = self
            .write("claim jobs", move |tx| {
                Box::pin(async move {
                    // First, jobs whose worker died (or hung) during their last attempt: each
                    // lost attempt counted, so they are dead letters now, with the lost
                    // attempt on record. Without this, a job that kills its worker every time
                    // would be taken again forever.
                    sqlx::query(
                        "INSERT INTO job_attempts
                            (job_id, number, started_at, finished_at, outcome, error, actions)
                         SELECT id, attempts, updated_at, ?1, 'failed', ?2, '[]' FROM jobs
                         WHERE state = 'running' AND lease_until < ?1 AND attempts >= max_attempts
                         ON CONFLICT (job_id, number) DO NOTHING",
                    )
                    .bind(now)
                    .bind(super::LOST_LAST_ATTEMPT)
                    .execute(&mut **tx)
                    .await?;
                    let lost = sqlx::query(
                        "UPDATE jobs SET state = 'dead', lease_until = NULL, locked_by = NULL,
                            last_error = ?2, updated_at = ?1
                         WHERE state = 'running' AND lease_until < ?1 AND attempts >= max_attempts
                         RETURNING id, rule, attempts",
                    )
                    .bind(now)
                    .bind(super::LOST_LAST_ATTEMPT)
                    .fetch_all(&mut **tx)
                    .await?
                    .iter()
                    .map(|row| {
                        Ok::<_, sqlx::Error>((
                            row.try_get::<i64, _>("id")?,
                            row.try_get::<String, _>("rule")?,
                            row.try_get::<i64, _>("attempts")?,
                        ))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE jobs SET state = 'running', attempts = MIN(attempts + 1, max_attempts),
                            lease_until = ?1, locked_by = ?2, updated_at = ?3
                         WHERE id IN (
                            SELECT j.id FROM jobs j INDEXED BY jobs_open
                            WHERE j.state IN ('pending', 'running')
                              AND ((j.state = 'pending' AND j.run_at <= ?3)
                                   OR (j.state = 'running' AND j.lease_until < ?3))
                              AND (j.subject IS NULL OR NOT EXISTS (
                                    SELECT 1 FROM jobs k INDEXED BY jobs_open_by_subject
                                    WHERE k.rule = j.rule AND k.subject = j.subject
                                      AND k.id < j.id AND k.state IN ('pending', 'running')))
                            ORDER BY j.id LIMIT ?4)
                         RETURNING {JOB_COLUMNS}"
                    )))
                    .bind(lease_until)
                    .bind(&worker)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(&mut **tx)
                    .await?;
                    Ok((rows.iter().map(row_to_job).collect::<Vec<_>>(), lost))
                })
            })
            .await?;
        for (job, rule, attempts) in lost {
            tracing::warn!(
                job,
                rule,
                attempts,
                "the worker was lost during the job's last attempt; dead-lettered"
            );
        }
        let mut claimed = Vec::with_capacity(jobs.len());
        // A job whose lease expired with attempts left is taken again as its next attempt;
        // `MIN` only guards the count should a runnable job ever have none left.
        for job in jobs {
            let delivery =
                self.delivery(job.delivery_seq)
                    .await?
                    .ok_or_else(|| StoreError::Database {
                        operation: "claim jobs",
                        source: Arc::new(sqlx::Error::RowNotFound),
                    })?;
            claimed.push(ClaimedJob { job, delivery });
        }
        claimed.sort_by_key(|c| c.job.id);
        Ok(claimed)
    }

    async fn finish_job(
        &self,
        id: JobId,
        worker: &str,
        attempt: &Attempt,
        next: JobNext,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let worker = worker.to_owned();
        let attempt = attempt.clone();
        let now = unix_micros(now);
        let (state, run_at) = match next {
            JobNext::Done => (JobState::Done, None),
            JobNext::Skipped => (JobState::Skipped, None),
            JobNext::RetryAt(at) => (JobState::Pending, Some(unix_micros(at))),
            JobNext::Dead => (JobState::Dead, None),
        };
        let finished = self
            .write("finish job", move |tx| {
                Box::pin(async move {
                    let r = sqlx::query(
                        "UPDATE jobs SET state = ?, run_at = COALESCE(?, run_at), lease_until = NULL,
                            locked_by = NULL, last_error = COALESCE(?, last_error), updated_at = ?
                         WHERE id = ? AND state = 'running' AND locked_by = ? AND attempts = ?",
                    )
                    .bind(state.as_str())
                    .bind(run_at)
                    .bind(&attempt.error)
                    .bind(now)
                    .bind(id.0)
                    .bind(&worker)
                    .bind(i64::from(attempt.number))
                    .execute(&mut **tx)
                    .await?;
                    if r.rows_affected() == 0 {
                        return Ok(false);
                    }
                    sqlx::query(
                        "INSERT INTO job_attempts
                            (job_id, number, started_at, finished_at, outcome, error, actions)
                         VALUES (?, ?, ?, ?, ?, ?, ?)
                         ON CONFLICT (job_id, number) DO NOTHING",
                    )
                    .bind(id.0)
                    .bind(i64::from(attempt.number))
                    .bind(unix_micros(attempt.started_at))
                    .bind(unix_micros(attempt.finished_at))
                    .bind(&attempt.outcome)
                    .bind(&attempt.error)
                    .bind(super::records::encode_actions(&attempt.actions, &attempt.calls))
                    .execute(&mut **tx)
                    .await?;
                    Ok(true)
                })
            })
            .await?;
        if finished && run_at.is_some() {
            self.notify.notify_waiters();
        }
        Ok(finished)
    }

    async fn job(&self, id: JobId) -> Result<Option<(Job, Vec<Attempt>)>, StoreError> {
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"
        )))
        .bind(id.0)
        .fetch_optional(&self.reads)
        .await
        .map_err(StoreError::db("read job"))?
        else {
            return Ok(None);
        };
        let attempts = sqlx::query("SELECT * FROM job_attempts WHERE job_id = ? ORDER BY number")
            .bind(id.0)
            .fetch_all(&self.reads)
            .await
            .map_err(StoreError::db("read attempts"))?;
        Ok(Some((
            row_to_job(&row),
            attempts.iter().map(row_to_attempt).collect(),
        )))
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        let state = filter.state.map(JobState::as_str);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR rule = ?2)
               AND (?3 IS NULL OR delivery_seq = ?3) AND (?4 IS NULL OR id < ?4)
             ORDER BY id DESC LIMIT ?5"
        )))
        .bind(state)
        .bind(filter.rule.as_deref())
        .bind(filter.delivery_seq)
        .bind(filter.before_id)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.reads)
        .await
        .map_err(StoreError::db("list jobs"))?;
        Ok(rows.iter().map(row_to_job).collect())
    }

    async fn replay_job(&self, id: JobId, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.requeue_job("replay job", id, "'dead', 'skipped'", now)
            .await
    }

    async fn job_counts(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            .fetch_all(&self.reads)
            .await
            .map_err(StoreError::db("count jobs"))?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let state = JobState::parse(r.get::<&str, _>("state"))?;
                Some((state, u64::try_from(r.get::<i64, _>("n")).unwrap_or(0)))
            })
            .collect())
    }

    async fn put_link(&self, link: &Link) -> Result<(), StoreError> {
        let link = link.clone();
        let now = unix_micros(OffsetDateTime::now_utc());
        self.write("put link", move |tx| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO links (rule, a, b, data, updated_at) VALUES (?, ?, ?, ?, ?)
                     ON CONFLICT (rule, a) DO UPDATE SET b = excluded.b, data = excluded.data,
                        updated_at = excluded.updated_at",
                )
                .bind(&link.rule)
                .bind(&link.a)
                .bind(&link.b)
                .bind(link.data.to_string())
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn link_from(&self, rule: &str, a: &str) -> Result<Option<Link>, StoreError> {
        let row = sqlx::query("SELECT rule, a, b, data FROM links WHERE rule = ? AND a = ?")
            .bind(rule)
            .bind(a)
            .fetch_optional(&self.reads)
            .await
            .map_err(StoreError::db("read link"))?;
        Ok(row.as_ref().map(row_to_link))
    }

    async fn link_to(&self, rule: &str, b: &str) -> Result<Option<Link>, StoreError> {
        let row = sqlx::query(
            "SELECT rule, a, b, data FROM links WHERE rule = ? AND b = ? ORDER BY a LIMIT 1",
        )
        .bind(rule)
        .bind(b)
        .fetch_optional(&self.reads)
        .await
        .map_err(StoreError::db("read link"))?;
        Ok(row.as_ref().map(row_to_link))
    }

    async fn list_links(
        &self,
        rule: Option<&str>,
        after_a: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Link>, StoreError> {
        let rows = sqlx::query(
            "SELECT rule, a, b, data FROM links
             WHERE (?1 IS NULL OR rule = ?1) AND (?2 IS NULL OR a > ?2)
             ORDER BY a, rule LIMIT ?3",
        )
        .bind(rule)
        .bind(after_a)
        .bind(i64::from(limit))
        .fetch_all(&self.reads)
        .await
        .map_err(StoreError::db("list links"))?;
        Ok(rows.iter().map(row_to_link).collect())
    }

    async fn put_echo_mark(&self, mark: &EchoMark) -> Result<(), StoreError> {
        let mark = mark.clone();
        let now = unix_micros(OffsetDateTime::now_utc());
        self.write("put echo mark", move |tx| {
            Box::pin(async move {
                sqlx::query("DELETE FROM echo_marks WHERE expires_at <= ?")
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO echo_marks (target, field, value, expires_at) VALUES (?, ?, ?, ?)",
                )
                .bind(&mark.target)
                .bind(&mark.field)
                .bind(&mark.value)
                .bind(unix_micros(mark.expires_at))
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn take_echo_mark(
        &self,
        target: &str,
        field: &str,
        value: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (target, field, value) = (target.to_owned(), field.to_owned(), value.to_owned());
        let now = unix_micros(now);
        self.write("take echo mark", move |tx| {
            Box::pin(async move {
                let r = sqlx::query(
                    "DELETE FROM echo_marks WHERE id = (
                        SELECT id FROM echo_marks
                        WHERE target = ? AND field = ? AND value = ? AND expires_at > ?
                        ORDER BY id LIMIT 1)",
                )
                .bind(&target)
                .bind(&field)
                .bind(&value)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(r.rows_affected() > 0)
            })
        })
        .await
    }

    async fn cursor(&self, source: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT cursor FROM cursors WHERE source = ?")
            .bind(source)
            .fetch_optional(&self.reads)
            .await
            .map_err(StoreError::db("read cursor"))?;
        Ok(row.map(|r| r.get("cursor")))
    }

    async fn commit_poll(
        &self,
        source: &str,
        cursor: &str,
        deliveries: Vec<NewDelivery>,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let (source, cursor) = (source.to_owned(), cursor.to_owned());
        let now = unix_micros(OffsetDateTime::now_utc());
        let outcomes = self
            .write("commit poll", move |tx| {
                Box::pin(async move {
                    let rows: Vec<(NewDelivery, Option<Dispatch>)> =
                        deliveries.into_iter().map(|d| (d, None)).collect();
                    let outcomes = insert_deliveries(tx, &rows, now).await?;
                    sqlx::query(
                        "INSERT INTO cursors (source, cursor, updated_at) VALUES (?, ?, ?)
                         ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor,
                            updated_at = excluded.updated_at",
                    )
                    .bind(&source)
                    .bind(&cursor)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                    Ok(outcomes)
                })
            })
            .await?;
        if outcomes
            .iter()
            .any(|o| matches!(o, InsertOutcome::Inserted { .. }))
        {
            self.notify.notify_waiters();
        }
        Ok(outcomes)
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        let now = unix_micros(now);
        let until = now.saturating_add(micros(ttl));
        self.write("take lease", move |tx| {
            Box::pin(async move {
                let r = sqlx::query(
                    "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                        expires_at = excluded.expires_at
                     WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4",
                )
                .bind(&name)
                .bind(&holder)
                .bind(until)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(r.rows_affected() > 0)
            })
        })
        .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write("release lease", move |tx| {
            Box::pin(async move {
                sqlx::query("DELETE FROM leases WHERE name = ? AND holder = ?")
                    .bind(&name)
                    .bind(&holder)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn state(&self, rule: &str, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let row = sqlx::query("SELECT value FROM rule_state WHERE rule = ? AND key = ?")
            .bind(rule)
            .bind(key)
            .fetch_optional(&self.reads)
            .await
            .map_err(StoreError::db("read rule state"))?;
        Ok(row.and_then(|r| serde_json::from_str(r.get::<&str, _>("value")).ok()))
    }

    async fn put_state(
        &self,
        rule: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let (rule, key, value) = (rule.to_owned(), key.to_owned(), value.to_string());
        let now = unix_micros(OffsetDateTime::now_utc());
        self.write("put rule state", move |tx| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO rule_state (rule, key, value, updated_at) VALUES (?, ?, ?, ?)
                     ON CONFLICT (rule, key) DO UPDATE SET value = excluded.value,
                        updated_at = excluded.updated_at",
                )
                .bind(&rule)
                .bind(&key)
                .bind(&value)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn put_state_if_absent(
        &self,
        rule: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let (rule, key, value) = (rule.to_owned(), key.to_owned(), value.to_string());
        let now = unix_micros(OffsetDateTime::now_utc());
        self.write("put rule state if absent", move |tx| {
            Box::pin(async move {
                let r = sqlx::query(
                    "INSERT INTO rule_state (rule, key, value, updated_at) VALUES (?, ?, ?, ?)
                     ON CONFLICT (rule, key) DO NOTHING",
                )
                .bind(&rule)
                .bind(&key)
                .bind(&value)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(r.rows_affected() > 0)
            })
        })
        .await
    }

    async fn token(&self, connection: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT access_token, refresh_token, expires_at, scopes FROM oauth_tokens
             WHERE connection = ?",
        )
        .bind(connection)
        .fetch_optional(&self.reads)
        .await
        .map_err(StoreError::db("read token"))?;
        Ok(row.map(|r| TokenRecord {
            access_token: Secret::new(r.get::<Vec<u8>, _>("access_token")),
            refresh_token: r
                .get::<Option<Vec<u8>>, _>("refresh_token")
                .map(Secret::new),
            expires_at: r.get::<Option<i64>, _>("expires_at").map(from_unix_micros),
            scopes: r.get("scopes"),
        }))
    }

    async fn put_token(&self, connection: &str, token: &TokenRecord) -> Result<(), StoreError> {
        let connection = connection.to_owned();
        let token = token.clone();
        let now = unix_micros(OffsetDateTime::now_utc());
        self.write("put token", move |tx| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO oauth_tokens
                        (connection, access_token, refresh_token, expires_at, scopes, updated_at)
                     VALUES (?, ?, ?, ?, ?, ?)
                     ON CONFLICT (connection) DO UPDATE SET access_token = excluded.access_token,
                        refresh_token = excluded.refresh_token, expires_at = excluded.expires_at,
                        scopes = excluded.scopes, updated_at = excluded.updated_at",
                )
                .bind(&connection)
                .bind(token.access_token.expose())
                .bind(token.refresh_token.as_ref().map(Secret::expose))
                .bind(token.expires_at.map(unix_micros))
                .bind(&token.scopes)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn learned_secret(&self, endpoint: &EndpointName) -> Result<Option<Secret>, StoreError> {
        let row = sqlx::query("SELECT secret FROM learned_secrets WHERE endpoint = ?")
            .bind(endpoint.as_str())
            .fetch_optional(&self.reads)
            .await
            .map_err(StoreError::db("read learned secret"))?;
        Ok(row.map(|r| Secret::new(r.get::<Vec<u8>, _>("secret"))))
    }

    async fn store_learned_secret(
        &self,
        endpoint: &EndpointName,
        secret: &Secret,
    ) -> Result<bool, StoreError> {
        let endpoint = endpoint.as_str().to_owned();
        let secret = secret.clone();
        let now = unix_micros(OffsetDateTime::now_utc());
        self.write("store learned secret", move |tx| {
            Box::pin(async move {
                let r = sqlx::query(
                    "INSERT INTO learned_secrets (endpoint, secret, learned_at) VALUES (?, ?, ?)
                     ON CONFLICT (endpoint) DO NOTHING",
                )
                .bind(&endpoint)
                .bind(secret.expose())
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(r.rows_affected() > 0)
            })
        })
        .await
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        if self.sender().is_none() {
            return Err(StoreError::Closed);
        }
        sqlx::query("SELECT 1")
            .execute(&self.reads)
            .await
            .map_err(StoreError::db("health check"))?;
        Ok(())
    }

    async fn close(&self) {
        // Dropping the sender lets the writer drain what is queued, commit it, and stop.
        let sender = self.requests.lock().ok().and_then(|mut g| g.take());
        drop(sender);
        let tasks = self.tasks.lock().ok().and_then(|mut g| g.take());
        if let Some(tasks) = tasks {
            let _ = tasks.writer.await;
            let _ = tasks.stop_checkpoints.send(true);
            let _ = tasks.checkpointer.await;
        }
        self.reads.close().await;
    }

    async fn search_deliveries(
        &self,
        search: &DeliverySearch,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_DELIVERY}
             WHERE (?1 IS NULL OR endpoint = ?1) AND (?2 IS NULL OR event_type = ?2)
               AND (?3 IS NULL OR status = ?3)
               AND (?4 = 0 OR EXISTS (SELECT 1 FROM jobs j
                    WHERE j.delivery_seq = deliveries.seq AND j.state = 'dead'))
               AND (?5 IS NULL OR received_at >= ?5) AND (?6 IS NULL OR received_at < ?6)
               AND (?7 IS NULL OR delivery_id = ?7 OR EXISTS (SELECT 1 FROM jobs j
                    WHERE j.delivery_seq = deliveries.seq AND instr(j.subject, ?7) > 0))
               AND (?8 IS NULL OR seq < ?8)
             ORDER BY seq DESC LIMIT ?9"
        )))
        .bind(search.endpoint.as_ref().map(EndpointName::as_str))
        .bind(search.event_type.as_deref())
        .bind(search.status.map(DeliveryStatus::as_str))
        .bind(i64::from(search.failed))
        .bind(search.since.map(unix_micros))
        .bind(search.until.map(unix_micros))
        .bind(search.text.as_deref())
        .bind(search.before_seq)
        .bind(i64::from(search.limit))
        .fetch_all(&self.reads)
        .await
        .map_err(StoreError::db("search deliveries"))?;
        Ok(rows.iter().map(row_to_delivery).collect())
    }

    async fn delivery_buckets(
        &self,
        since: OffsetDateTime,
        bucket: Duration,
    ) -> Result<Vec<DeliveryBucket>, StoreError> {
        let width = micros(bucket).max(1);
        let rows = sqlx::query(
            "SELECT endpoint, (received_at / ?2) * ?2 AS bucket, COUNT(*) AS n,
                SUM(CASE WHEN status = 'unparseable' OR EXISTS (SELECT 1 FROM jobs j
                    WHERE j.delivery_seq = deliveries.seq AND j.state = 'dead')
                    THEN 1 ELSE 0 END) AS failed
             FROM deliveries WHERE received_at >= ?1
             GROUP BY endpoint, bucket ORDER BY bucket, endpoint",
        )
        .bind(unix_micros(since))
        .bind(width)
        .fetch_all(&self.reads)
        .await
        .map_err(StoreError::db("count deliveries"))?;
        Ok(rows
            .iter()
            .map(|r| DeliveryBucket {
                endpoint: EndpointName::new(r.get::<String, _>("endpoint")),
                start: from_unix_micros(r.get("bucket")),
                deliveries: u64::try_from(r.get::<i64, _>("n")).unwrap_or(0),
                failed: u64::try_from(r.get::<i64, _>("failed")).unwrap_or(0),
            })
            .collect())
    }

    async fn oldest_unfinished_delivery(&self) -> Result<Option<StoredDelivery>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_DELIVERY} WHERE seq = (SELECT MIN(s) FROM (
                SELECT MIN(seq) AS s FROM deliveries WHERE status = 'received'
                UNION ALL
                SELECT MIN(delivery_seq) AS s FROM jobs WHERE state IN ('pending', 'running')
             ) AS m)"
        )))
        .fetch_optional(&self.reads)
        .await
        .map_err(StoreError::db("find oldest unfinished delivery"))?;
        Ok(row.as_ref().map(row_to_delivery))
    }

    // ---- operations: unfinished deliveries, bulk replay, circuit pauses ----

    async fn unfinished_deliveries(
        &self,
        filter: &UnfinishedFilter,
    ) -> Result<Vec<UnfinishedDelivery>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_DELIVERY}
             WHERE seq IN (
                SELECT delivery_seq FROM jobs
                WHERE state IN ('pending', 'running', 'dead') AND (?4 IS NULL OR rule = ?4)
                UNION
                SELECT seq FROM deliveries WHERE status = 'received' AND ?4 IS NULL)
               AND (?1 IS NULL OR received_at < ?1) AND (?2 IS NULL OR endpoint = ?2)
               AND (?3 IS NULL OR seq > ?3)
             ORDER BY seq LIMIT ?5"
        )))
        .bind(filter.received_before.map(unix_micros))
        .bind(filter.endpoint.as_ref().map(EndpointName::as_str))
        .bind(filter.after_seq)
        .bind(filter.rule.as_deref())
        .bind(i64::from(filter.limit))
        .fetch_all(&self.reads)
        .await
        .map_err(StoreError::db("list unfinished deliveries"))?;
        let deliveries: Vec<StoredDelivery> = rows.iter().map(row_to_delivery).collect();
        let (Some(first), Some(last)) = (deliveries.first(), deliveries.last()) else {
            return Ok(Vec::new());
        };
        let jobs = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE delivery_seq BETWEEN ?1 AND ?2 AND state IN ('pending', 'running', 'dead')
               AND (?3 IS NULL OR rule = ?3)
             ORDER BY id"
        )))
        .bind(first.seq)
        .bind(last.seq)
        .bind(filter.rule.as_deref())
        .fetch_all(&self.reads)
        .await
        .map_err(StoreError::db("list unfinished jobs"))?;
        Ok(super::group_unfinished(
            deliveries,
            jobs.iter().map(row_to_job).collect(),
        ))
    }

    async fn search_jobs(&self, search: &JobSearch) -> Result<Vec<Job>, StoreError> {
        let states = super::state_list(&search.states);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE ({states}) AND (?4 IS NULL OR rule = ?4) AND (?5 IS NULL OR id > ?5)
               AND ((?1 IS NULL AND ?2 IS NULL AND ?3 IS NULL) OR EXISTS (
                    SELECT 1 FROM deliveries d WHERE d.seq = jobs.delivery_seq
                      AND (?1 IS NULL OR d.received_at >= ?1)
                      AND (?2 IS NULL OR d.received_at < ?2)
                      AND (?3 IS NULL OR d.endpoint = ?3)))
             ORDER BY id LIMIT ?6"
        )))
        .bind(search.since.map(unix_micros))
        .bind(search.until.map(unix_micros))
        .bind(search.endpoint.as_ref().map(EndpointName::as_str))
        .bind(search.rule.as_deref())
        .bind(search.after_id)
        .bind(i64::from(search.limit))
        .fetch_all(&self.reads)
        .await
        .map_err(StoreError::db("search jobs"))?;
        Ok(rows.iter().map(row_to_job).collect())
    }

    async fn rerun_job(&self, id: JobId, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.requeue_job("rerun job", id, "'done', 'skipped', 'dead'", now)
            .await
    }

    async fn pause_job(
        &self,
        id: JobId,
        worker: &str,
        attempt: u32,
        until: OffsetDateTime,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let worker = worker.to_owned();
        let reason = reason.to_owned();
        let (until, now) = (unix_micros(until), unix_micros(now));
        self.write("pause job", move |tx| {
            Box::pin(async move {
                // Fenced like `finish_job`; the claim's attempt is given back.
                let r = sqlx::query(
                    "UPDATE jobs SET state = 'pending', run_at = ?1, attempts = MAX(attempts - 1, 0),
                        lease_until = NULL, locked_by = NULL, last_error = ?2, updated_at = ?3
                     WHERE id = ?4 AND state = 'running' AND locked_by = ?5 AND attempts = ?6",
                )
                .bind(until)
                .bind(&reason)
                .bind(now)
                .bind(id.0)
                .bind(&worker)
                .bind(i64::from(attempt))
                .execute(&mut **tx)
                .await?;
                Ok(r.rows_affected() > 0)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes queued together share a transaction, but one that fails is undone alone: its
    /// savepoint rolls back what it had written, the others commit.
    #[tokio::test]
    async fn a_failing_write_rolls_back_alone_in_a_shared_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            SqliteStore::open(dir.path().join("hb.db"), SqliteOptions::default())
                .await
                .unwrap(),
        );
        let mut tasks = Vec::new();
        for i in 0..32_i64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .write("test write", move |tx| {
                        Box::pin(async move {
                            sqlx::query(
                                "INSERT INTO rule_state (rule, key, value, updated_at)
                                 VALUES ('t', ?, '1', 0)",
                            )
                            .bind(i.to_string())
                            .execute(&mut **tx)
                            .await?;
                            if i % 8 == 3 {
                                // Written above, then failing: none of it may remain.
                                sqlx::query("INSERT INTO no_such_table VALUES (1)")
                                    .execute(&mut **tx)
                                    .await?;
                            }
                            Ok(i)
                        })
                    })
                    .await
            }));
        }
        let mut failed = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => {}
                Err(StoreError::Database { operation, .. }) => {
                    assert_eq!(operation, "test write");
                    failed.push(());
                }
                Err(other) => panic!("{other}"),
            }
        }
        assert_eq!(failed.len(), 4);
        let kept: Vec<String> = sqlx::query("SELECT key FROM rule_state WHERE rule = 't'")
            .fetch_all(&store.reads)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get("key"))
            .collect();
        assert_eq!(kept.len(), 28);
        assert!(
            kept.iter().all(|k| k.parse::<i64>().unwrap() % 8 != 3),
            "{kept:?}"
        );
        // The store goes on writing after failures.
        store
            .put_state("t", "after", &serde_json::json!(1))
            .await
            .unwrap();
        store.close().await;
    }

    /// Checkpoints happen off the commit path: after a burst of commits the WAL is folded
    /// back into the database file shortly, without any commit doing it.
    #[tokio::test]
    async fn the_checkpointer_folds_the_wal_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hb.db");
        let store = SqliteStore::open(&path, SqliteOptions::default())
            .await
            .unwrap();
        for i in 0..50 {
            store
                .put_state("t", &i.to_string(), &serde_json::json!("x".repeat(4000)))
                .await
                .unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            // Until a checkpoint, the rows are in the WAL only and the database file holds
            // little more than the schema.
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if size > 50 * 4000 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "database file still {size} bytes: the WAL was not checkpointed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        store.close().await;
    }
}
