//! The embedded SQLite store (WAL), the default.
//!
//! All writes go through one connection owned by a writer task, which commits inserts in
//! batches: while one transaction is being made durable, the next deliveries queue up and
//! are committed together. Every delivery is acknowledged only after its batch commits, so
//! `synchronous = FULL` (fsync on every commit) costs one fsync per batch, not per delivery.
//! Reads use a separate small pool of read-only connections, which WAL lets run beside the
//! writer.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hookbridge_core::{DeliveryId, EndpointName};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection as _, Row as _};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{DeliveryFilter, InsertOutcome, NewDelivery, Store, StoreError, StoredDelivery};

/// Migrations, in order. A migration is never edited once released; add a new one.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("migrations/sqlite/0001_inbox.sql"))];

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

type Reply = oneshot::Sender<Result<InsertOutcome, StoreError>>;

/// The embedded SQLite store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    writes: Mutex<Option<mpsc::Sender<(NewDelivery, Reply)>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    reads: SqlitePool,
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

        let mut writer = SqliteConnection::connect_with(&connect)
            .await
            .map_err(StoreError::db("open"))?;
        migrate(&mut writer).await?;

        let reads = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .connect_with(connect.read_only(true))
            .await
            .map_err(StoreError::db("open read pool"))?;

        let (tx, rx) = mpsc::channel(MAX_BATCH * 16);
        let handle = tokio::spawn(write_loop(writer, rx));
        tracing::info!(path = %path.display(), "sqlite store open");
        Ok(Self {
            path,
            writes: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            reads,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sender(&self) -> Option<mpsc::Sender<(NewDelivery, Reply)>> {
        self.writes.lock().ok().and_then(|guard| guard.clone())
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
            source: std::sync::Arc::new(source),
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

async fn write_loop(mut conn: SqliteConnection, mut rx: mpsc::Receiver<(NewDelivery, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match insert_batch(&mut conn, &batch).await {
            Ok(outcomes) => {
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
    if let Err(error) = conn.close().await {
        tracing::warn!(%error, "closing the sqlite writer failed");
    }
}

async fn insert_batch(
    conn: &mut SqliteConnection,
    batch: &[(NewDelivery, Reply)],
) -> Result<Vec<InsertOutcome>, StoreError> {
    let mut tx = conn.begin().await.map_err(StoreError::db("begin"))?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for (d, _) in batch {
        let headers = serde_json::to_string(&d.headers).unwrap_or_else(|_| "[]".into());
        let row = sqlx::query(
            "INSERT INTO deliveries
                (endpoint, provider, delivery_id, event_type, headers, body, received_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (endpoint, delivery_id) DO NOTHING
             RETURNING seq",
        )
        .bind(d.endpoint.as_str())
        .bind(d.provider.as_str())
        .bind(d.delivery_id.as_str())
        .bind(d.event_type.as_str())
        .bind(headers)
        .bind(&d.body[..])
        .bind(unix_micros(d.received_at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db("insert delivery"))?;
        outcomes.push(match row {
            Some(row) => InsertOutcome::Inserted { seq: row.get(0) },
            None => InsertOutcome::Duplicate,
        });
    }
    tx.commit().await.map_err(StoreError::db("commit"))?;
    Ok(outcomes)
}

fn unix_micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

fn from_unix_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

const SELECT_DELIVERY: &str = "SELECT seq, endpoint, provider, delivery_id, event_type, headers, body, received_at, status FROM deliveries";

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
        let sender = self.writes.lock().ok().and_then(|mut g| g.take());
        drop(sender);
        let handle = self.writer.lock().ok().and_then(|mut g| g.take());
        if let Some(handle) = handle {
            let _ = handle.await;
        }
        self.reads.close().await;
    }
}
