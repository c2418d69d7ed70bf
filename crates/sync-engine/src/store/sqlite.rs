//! The embedded SQLite store (WAL), the default.
//!
//! SQLite has one writer at a time, so all writes go through one connection behind an async
//! mutex. Delivery inserts, the hot path, go through a batching task: while one transaction
//! is being made durable, the next deliveries queue up and are committed together, and each
//! is acknowledged only after its batch commits. With `synchronous = FULL` (fsync on every
//! commit) that costs one fsync per batch, not per delivery. Reads use a separate pool of
//! read-only connections, which WAL lets run beside the writer.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hookbridge_core::{DeliveryId, EndpointName, Secret};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection as _, Row as _};
use time::OffsetDateTime;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{
    Attempt, ClaimedJob, DeliveryFilter, DeliveryStatus, EchoMark, InsertOutcome, Job, JobFilter,
    JobId, JobNext, JobState, Link, NewDelivery, NewJob, Store, StoreError, StoredDelivery,
    TokenRecord, from_unix_micros, micros, unix_micros,
};
use super::{DeliveryBucket, DeliverySearch};
use super::{JobSearch, UnfinishedDelivery, UnfinishedFilter};

/// Migrations, in order. A migration is never edited once released; add a new one.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/sqlite/0001_inbox.sql")),
    (2, include_str!("migrations/sqlite/0002_engine.sql")),
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
type Writer = Arc<Mutex<Option<SqliteConnection>>>;

/// The embedded SQLite store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    inserts: StdMutex<Option<mpsc::Sender<(NewDelivery, Reply)>>>,
    batcher: StdMutex<Option<JoinHandle<()>>>,
    reads: SqlitePool,
    notify: Arc<Notify>,
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
            .foreign_keys(true);

        let mut conn = SqliteConnection::connect_with(&connect)
            .await
            .map_err(StoreError::db("open"))?;
        migrate(&mut conn).await?;

        let reads = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .connect_with(connect.read_only(true))
            .await
            .map_err(StoreError::db("open read pool"))?;

        let writer: Writer = Arc::new(Mutex::new(Some(conn)));
        let notify = Arc::new(Notify::new());
        let (tx, rx) = mpsc::channel(MAX_BATCH * 16);
        let handle = tokio::spawn(insert_loop(writer.clone(), rx, notify.clone()));
        tracing::info!(path = %path.display(), "sqlite store open");
        Ok(Self {
            path,
            writer,
            inserts: StdMutex::new(Some(tx)),
            batcher: StdMutex::new(Some(handle)),
            reads,
            notify,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sender(&self) -> Option<mpsc::Sender<(NewDelivery, Reply)>> {
        self.inserts.lock().ok().and_then(|guard| guard.clone())
    }

    /// Runs `f` in a write transaction on the writer connection.
    async fn write<T, F>(&self, operation: &'static str, f: F) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(
                &'c mut sqlx::Transaction<'_, sqlx::Sqlite>,
            ) -> BoxFuture<'c, Result<T, sqlx::Error>>
            + Send,
    {
        let mut guard = self.writer.lock().await;
        let conn = guard.as_mut().ok_or(StoreError::Closed)?;
        let mut tx = conn.begin().await.map_err(StoreError::db(operation))?;
        let value = f(&mut tx).await.map_err(StoreError::db(operation))?;
        tx.commit().await.map_err(StoreError::db(operation))?;
        Ok(value)
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

async fn insert_loop(
    writer: Writer,
    mut rx: mpsc::Receiver<(NewDelivery, Reply)>,
    notify: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let result = {
            let mut guard = writer.lock().await;
            match guard.as_mut() {
                Some(conn) => insert_batch(conn, batch.iter().map(|(d, _)| d)).await,
                None => Err(StoreError::Closed),
            }
        };
        match result {
            Ok(outcomes) => {
                if outcomes
                    .iter()
                    .any(|o| matches!(o, InsertOutcome::Inserted { .. }))
                {
                    notify.notify_waiters();
                }
                for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                tracing::error!(%error, batch = batch.len(), "inbox batch insert failed");
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

async fn insert_batch<'a>(
    conn: &mut SqliteConnection,
    batch: impl Iterator<Item = &'a NewDelivery>,
) -> Result<Vec<InsertOutcome>, StoreError> {
    let mut tx = conn.begin().await.map_err(StoreError::db("begin"))?;
    let outcomes = insert_deliveries(&mut tx, batch)
        .await
        .map_err(StoreError::db("insert delivery"))?;
    tx.commit().await.map_err(StoreError::db("commit"))?;
    Ok(outcomes)
}

/// Rows per `INSERT` statement: 7 parameters each, well under SQLite's variable limit.
const ROWS_PER_STATEMENT: usize = 64;

/// Inserts deliveries with multi-row statements (one round trip to SQLite's thread per 64
/// rows instead of one per row), and tells each one whether it was new.
async fn insert_deliveries<'a>(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    batch: impl Iterator<Item = &'a NewDelivery>,
) -> Result<Vec<InsertOutcome>, sqlx::Error> {
    let batch: Vec<&NewDelivery> = batch.collect();
    let mut outcomes = Vec::with_capacity(batch.len());
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from(
            "INSERT INTO deliveries
                (endpoint, provider, delivery_id, event_type, headers, body, received_at) VALUES ",
        );
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 {
                "(?, ?, ?, ?, ?, ?, ?)"
            } else {
                ", (?, ?, ?, ?, ?, ?, ?)"
            });
        }
        sql.push_str(
            " ON CONFLICT (endpoint, delivery_id) DO NOTHING RETURNING seq, endpoint, delivery_id",
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for d in chunk {
            let headers = serde_json::to_string(&d.headers).unwrap_or_else(|_| "[]".into());
            query = query
                .bind(d.endpoint.as_str())
                .bind(d.provider.as_str())
                .bind(d.delivery_id.as_str())
                .bind(d.event_type.as_str())
                .bind(headers)
                .bind(&d.body[..])
                .bind(unix_micros(d.received_at));
        }
        let rows = query.fetch_all(&mut **tx).await?;
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
        for d in chunk {
            let key = (
                d.endpoint.as_str().to_owned(),
                d.delivery_id.as_str().to_owned(),
            );
            outcomes.push(match inserted.remove(&key) {
                Some(seq) => InsertOutcome::Inserted { seq },
                None => InsertOutcome::Duplicate,
            });
        }
    }
    Ok(outcomes)
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
        let sender = self.sender().ok_or(StoreError::Closed)?;
        let (reply, outcome) = oneshot::channel();
        sender
            .send((delivery, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        outcome.await.map_err(|_| StoreError::Closed)?
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
        let jobs = jobs.to_vec();
        let now = unix_micros(now);
        let created = self
            .write("dispatch", move |tx| {
                Box::pin(async move {
                    let updated = sqlx::query(
                        "UPDATE deliveries SET status = ? WHERE seq = ? AND status = 'received'",
                    )
                    .bind(status.as_str())
                    .bind(seq)
                    .execute(&mut **tx)
                    .await?;
                    if updated.rows_affected() == 0 {
                        return Ok(false);
                    }
                    for job in &jobs {
                        sqlx::query(
                            "INSERT INTO jobs (delivery_seq, rule, subject, state, max_attempts,
                                run_at, created_at, updated_at)
                             VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)",
                        )
                        .bind(seq)
                        .bind(&job.rule)
                        .bind(&job.subject)
                        .bind(i64::from(job.max_attempts))
                        .bind(now)
                        .bind(now)
                        .bind(now)
                        .execute(&mut **tx)
                        .await?;
                    }
                    Ok(true)
                })
            })
            .await?;
        if created && status == DeliveryStatus::Dispatched {
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
                            SELECT j.id FROM jobs j
                            WHERE ((j.state = 'pending' AND j.run_at <= ?3)
                                   OR (j.state = 'running' AND j.lease_until < ?3))
                              AND (j.subject IS NULL OR NOT EXISTS (
                                    SELECT 1 FROM jobs k
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
        let now = unix_micros(now);
        let replayed = self
            .write("replay job", move |tx| {
                Box::pin(async move {
                    // Attempts keep counting (their records stay); the job gets a fresh budget.
                    let r = sqlx::query(
                        "UPDATE jobs SET state = 'pending', run_at = ?, updated_at = ?,
                            max_attempts = attempts + max_attempts
                         WHERE id = ? AND state IN ('dead', 'skipped')",
                    )
                    .bind(now)
                    .bind(now)
                    .bind(id.0)
                    .execute(&mut **tx)
                    .await?;
                    Ok(r.rows_affected() > 0)
                })
            })
            .await?;
        if replayed {
            self.notify.notify_waiters();
        }
        Ok(replayed)
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
                    let outcomes = insert_deliveries(tx, deliveries.iter()).await?;
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
        // Dropping the sender lets the batcher drain what is queued, commit it, and stop.
        let sender = self.inserts.lock().ok().and_then(|mut g| g.take());
        drop(sender);
        let handle = self.batcher.lock().ok().and_then(|mut g| g.take());
        if let Some(handle) = handle {
            let _ = handle.await;
        }
        if let Some(conn) = self.writer.lock().await.take()
            && let Err(error) = conn.close().await
        {
            tracing::warn!(%error, "closing the sqlite writer failed");
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
        let now = unix_micros(now);
        let rerun = self
            .write("rerun job", move |tx| {
                Box::pin(async move {
                    // As `replay_job`: attempts keep counting, the job gets a fresh budget.
                    let r = sqlx::query(
                        "UPDATE jobs SET state = 'pending', run_at = ?1, updated_at = ?1,
                            max_attempts = attempts + max_attempts
                         WHERE id = ?2 AND state IN ('done', 'skipped', 'dead')",
                    )
                    .bind(now)
                    .bind(id.0)
                    .execute(&mut **tx)
                    .await?;
                    Ok(r.rows_affected() > 0)
                })
            })
            .await?;
        if rerun {
            self.notify.notify_waiters();
        }
        Ok(rerun)
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
