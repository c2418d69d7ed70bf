//! The PostgreSQL store, for several hookbridge instances sharing one database.
//!
//! Every instance talks to the same tables through its own pool. What keeps them apart:
//!
//! - deliveries are unique on (endpoint, delivery id), so a delivery sent to two instances
//!   is stored once (`INSERT ... ON CONFLICT DO NOTHING`);
//! - [`Store::dispatch`] changes a delivery only while it is still `received`, so two
//!   dispatchers create its jobs once;
//! - [`Store::claim_jobs`] picks jobs with `FOR UPDATE SKIP LOCKED` in the same statement
//!   that leases them, so a job is claimed by one worker at a time, and [`Store::finish_job`]
//!   is fenced by the worker and attempt number;
//! - pollers run where [`Store::try_lease`] says, one instance at a time;
//! - migrations run under a transaction-level advisory lock, so instances starting together
//!   do not race.
//!
//! Inserts, dispatches, retries and replays wake the local [`Store::notifier`] at once and
//! the other instances through `NOTIFY hookbridge_wake`, sent by a background task after the
//! change committed, several wake-ups coalesced into one (notifying in every insert's own
//! transaction would serialize their commits). Another task `LISTEN`s for them; if it loses
//! its connection and cannot get it back, it wakes the notifier every `poll_interval` until
//! it can. A lost wake-up only delays the other instances until their engine polls.
//!
//! Commits are durable when they return: PostgreSQL's `synchronous_commit` is left as
//! configured, except that `off` (which acknowledges commits before they are flushed) is
//! raised to `on` on the store's connections.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hookbridge_core::{DeliveryId, EndpointName, Secret};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection as _, Row as _};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
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
    (1, include_str!("migrations/postgres/0001_inbox.sql")),
    (2, include_str!("migrations/postgres/0002_engine.sql")),
    (3, include_str!("migrations/postgres/0003_open_jobs.sql")),
];

/// The channel instances wake each other on. The payload is the store's schema, so that
/// deployments in other schemas of the same database do not wake this one.
const WAKE_CHANNEL: &str = "hookbridge_wake";

/// The first key of the advisory lock migrations take (the second is the schema's hash).
const MIGRATION_LOCK_CLASS: i32 = 0x6862_6d67;

/// How long the listener waits for a connection before it falls back to polling.
const LISTEN_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a failed listener tries to listen again (it polls meanwhile).
const LISTEN_RETRY: Duration = Duration::from_secs(30);

/// How long `close` waits for each background task.
const TASK_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Most expired echo marks removed by one `put_echo_mark`.
const ECHO_GC_BATCH: i64 = 1000;

/// Options of the PostgreSQL store.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Connections in the pool (besides the one that listens for wake-ups).
    pub max_connections: u32,
    /// The schema the tables live in, created if missing; `None` uses the first schema of the
    /// connection's default `search_path` (usually `public`).
    pub schema: Option<String>,
    /// How often to wake the engine when notifications from other instances cannot be
    /// received (the listener's connection is lost).
    pub poll_interval: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            schema: None,
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// The store's background tasks and the switch that stops them.
struct Tasks {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

/// The PostgreSQL store. Cheap to share behind an `Arc`; several processes may use the same
/// database and schema at once.
pub struct PostgresStore {
    pool: PgPool,
    schema: String,
    closed: AtomicBool,
    notify: Arc<Notify>,
    announce: Arc<Notify>,
    tasks: StdMutex<Option<Tasks>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the pool: its connect options hold the password.
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`), creates
    /// the schema if needed and runs pending migrations. Errors never contain the URL's
    /// password.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let secrets = url_secrets(url);
        let mut connect = PgConnectOptions::from_str(url)
            .map_err(|e| scrubbed("connection URL parsing", e, &secrets))?;
        if connect.get_application_name().is_none() {
            connect = connect.application_name("hookbridge");
        }
        if let Some(schema) = options.schema.as_deref() {
            check_schema_name(schema)?;
        }

        // A plain connection first: it reports a refused connection at once, where a pool
        // retries until its acquire timeout.
        let mut conn = PgConnection::connect_with(&connect)
            .await
            .map_err(|e| scrubbed("connect", e, &secrets))?;
        let migrated = migrate(&mut conn, options.schema.as_deref()).await;
        if let Err(error) = conn.close().await {
            tracing::debug!(%error, "closing the migration connection failed");
        }
        let schema = migrated?;

        let search_path = schema.clone();
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .after_connect(move |conn, _meta| {
                let search_path = search_path.clone();
                Box::pin(async move {
                    sqlx::query(
                        "SELECT set_config('search_path', quote_ident($1), false),
                            CASE WHEN current_setting('synchronous_commit') = 'off'
                                 THEN set_config('synchronous_commit', 'on', false) END",
                    )
                    .bind(search_path)
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            })
            .connect_with(connect.clone())
            .await
            .map_err(|e| scrubbed("connect", e, &secrets))?;

        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(LISTEN_CONNECT_TIMEOUT)
            .connect_lazy_with(if connect.get_application_name() == Some("hookbridge") {
                connect.application_name("hookbridge-listener")
            } else {
                connect
            });
        let listener = match listen(&listen_pool).await {
            Ok(listener) => Some(listener),
            Err(error) => {
                tracing::warn!(
                    error = %redact(&error, &secrets),
                    poll_interval = ?options.poll_interval,
                    "cannot listen for wake-ups from other instances; polling instead"
                );
                None
            }
        };
        let notify = Arc::new(Notify::new());
        let announce = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let listening = tokio::spawn(wake_loop(WakeLoop {
            listener,
            pool: listen_pool,
            schema: schema.clone(),
            notify: notify.clone(),
            poll_interval: options.poll_interval.max(Duration::from_millis(10)),
            secrets,
            stop: stopped.clone(),
        }));
        let announcing = tokio::spawn(announce_loop(
            pool.clone(),
            schema.clone(),
            announce.clone(),
            stopped,
        ));
        tracing::info!(schema = %schema, "postgres store open");
        Ok(Self {
            pool,
            schema,
            closed: AtomicBool::new(false),
            notify,
            announce,
            tasks: StdMutex::new(Some(Tasks {
                stop,
                handles: vec![listening, announcing],
            })),
        })
    }

    /// The schema the store's tables are in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    fn pool(&self) -> Result<&PgPool, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            Err(StoreError::Closed)
        } else {
            Ok(&self.pool)
        }
    }

    /// Wakes the local engine at once, and the other instances through a `NOTIFY` sent
    /// after this (committed) change by the announcing task.
    fn wake(&self) {
        self.notify.notify_waiters();
        self.announce.notify_one();
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
        let requeued = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET state = 'pending', run_at = $1, updated_at = $1,
                max_attempts = attempts + max_attempts
             WHERE id = $2 AND state IN ({states})"
        )))
        .bind(unix_micros(now))
        .bind(id.0)
        .execute(self.pool()?)
        .await
        .map_err(StoreError::db(operation))?
        .rows_affected()
            > 0;
        if requeued {
            self.wake();
        }
        Ok(requeued)
    }
}

// ---- connecting, migrations ----

/// The password of a connection URL as written and as decoded, to keep it out of errors.
fn url_secrets(url: &str) -> Vec<String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let mut raw = Vec::new();
    // The authority ends at the first '/', '?' or '#'; a password with one of those
    // unescaped is malformed, so also try up to the last '@' anywhere.
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    for candidate in [authority, rest] {
        if let Some((userinfo, _)) = candidate.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
            && !password.is_empty()
        {
            raw.push(password.to_owned());
        }
    }
    // `?password=...` is accepted too.
    if let Some((_, query)) = rest.split_once('?') {
        let query = query.split('#').next().unwrap_or(query);
        for pair in query.split('&') {
            if let Some(("password", value)) = pair.split_once('=')
                && !value.is_empty()
            {
                raw.push(value.to_owned());
                raw.push(value.replace('+', " "));
            }
        }
    }
    let mut secrets = raw.clone();
    secrets.extend(raw.iter().map(|p| percent_decode(p)));
    secrets.retain(|s| !s.is_empty());
    secrets.sort();
    secrets.dedup();
    secrets
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            // Two hex digits make one byte; the cast cannot truncate.
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'%'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The error, unless its text quotes one of `secrets`.
fn redact(error: &sqlx::Error, secrets: &[String]) -> String {
    let text = format!("{error} {error:?}");
    if secrets.iter().any(|s| text.contains(s.as_str())) {
        "error details withheld: they quoted the connection password".to_owned()
    } else {
        error.to_string()
    }
}

/// A store error for a connect-phase failure, with the driver's error replaced if it quotes
/// the password.
fn scrubbed(operation: &'static str, error: sqlx::Error, secrets: &[String]) -> StoreError {
    let text = format!("{error} {error:?}");
    let source = if secrets.iter().any(|s| text.contains(s.as_str())) {
        sqlx::Error::Configuration(
            "error details withheld: they quoted the connection password".into(),
        )
    } else {
        error
    };
    StoreError::Database {
        operation,
        source: Arc::new(source),
    }
}

fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let problem = if schema.is_empty() {
        Some("the schema name is empty")
    } else if schema.contains('\0') {
        Some("the schema name contains a NUL character")
    } else if schema.len() > 63 {
        Some("the schema name is longer than PostgreSQL's 63 bytes")
    } else {
        None
    };
    match problem {
        Some(message) => Err(StoreError::Location {
            path: format!("postgres schema {schema:?}"),
            message: message.to_owned(),
        }),
        None => Ok(()),
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the schema if needed and applies pending migrations, all in one transaction
/// under an advisory lock on the schema, so that instances starting together take turns.
/// Returns the schema the tables are in.
async fn migrate(conn: &mut PgConnection, schema: Option<&str>) -> Result<String, StoreError> {
    let mut tx = conn
        .begin()
        .await
        .map_err(StoreError::db("begin migrations"))?;
    match schema {
        Some(schema) => {
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(MIGRATION_LOCK_CLASS)
                .bind(schema)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("lock for migrations"))?;
            // Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the
            // database even when the schema exists.
            let exists: bool =
                sqlx::query("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                    .bind(schema)
                    .fetch_one(&mut *tx)
                    .await
                    .and_then(|r| r.try_get(0))
                    .map_err(StoreError::db("look up schema"))?;
            if !exists {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE SCHEMA {}",
                    quote_ident(schema)
                )))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("create schema"))?;
                tracing::info!(schema, "created postgres schema");
            }
            sqlx::query("SELECT set_config('search_path', quote_ident($1), true)")
                .bind(schema)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("set search_path"))?;
        }
        None => {
            sqlx::query(
                "SELECT pg_advisory_xact_lock($1, hashtext(COALESCE(current_schema(), '')))",
            )
            .bind(MIGRATION_LOCK_CLASS)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("lock for migrations"))?;
        }
    }
    let effective: Option<String> = sqlx::query("SELECT current_schema()::text")
        .fetch_one(&mut *tx)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(StoreError::db("read current schema"))?;
    let effective = effective.ok_or_else(|| StoreError::Location {
        path: "postgres search_path".to_owned(),
        message: "no schema of the search_path exists; set the store's schema option".to_owned(),
    })?;

    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    BIGINT PRIMARY KEY,
            applied_at BIGINT NOT NULL
        )",
    )
    .execute(&mut *tx)
    .await
    .map_err(StoreError::db("create schema_migrations"))?;
    let current: i64 =
        sqlx::query("SELECT COALESCE(MAX(version), 0)::bigint FROM schema_migrations")
            .fetch_one(&mut *tx)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(StoreError::db("read schema version"))?;
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
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(OffsetDateTime::now_utc().unix_timestamp())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tracing::info!(version, schema = %effective, "applied postgres migration");
    }
    tx.commit()
        .await
        .map_err(StoreError::db("commit migrations"))?;
    Ok(effective)
}

// ---- waking other instances ----

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(WAKE_CHANNEL).await?;
    Ok(listener)
}

type Connecting = Pin<Box<dyn Future<Output = Result<PgListener, sqlx::Error>> + Send>>;

struct WakeLoop {
    listener: Option<PgListener>,
    pool: PgPool,
    schema: String,
    notify: Arc<Notify>,
    poll_interval: Duration,
    secrets: Vec<String>,
    stop: watch::Receiver<bool>,
}

/// Wakes the local notifier on notifications from any instance; while it cannot listen, on
/// every `poll_interval`, trying to listen again every [`LISTEN_RETRY`].
async fn wake_loop(state: WakeLoop) {
    let WakeLoop {
        mut listener,
        pool,
        schema,
        notify,
        poll_interval,
        secrets,
        mut stop,
    } = state;
    let mut ticker = tokio::time::interval(poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut connecting: Option<Connecting> = None;
    let mut retry_at = tokio::time::Instant::now() + LISTEN_RETRY;
    // The failure to listen at startup was logged by `connect`.
    let mut warned = listener.is_none();
    loop {
        if let Some(active) = listener.as_mut() {
            tokio::select! {
                () = stopped(&mut stop) => break,
                received = active.try_recv() => match received {
                    Ok(Some(notification)) => {
                        // Another schema's deployment is not ours to wake; an empty
                        // payload (a hand-made `NOTIFY hookbridge_wake`) wakes every one.
                        let payload = notification.payload();
                        if payload == schema || payload.is_empty() {
                            notify.notify_waiters();
                        }
                    }
                    // The connection dropped and was re-established: wake-ups sent meanwhile
                    // are lost, so wake now.
                    Ok(None) => notify.notify_waiters(),
                    Err(error) => {
                        if !warned {
                            tracing::warn!(
                                error = %redact(&error, &secrets),
                                ?poll_interval,
                                "lost the wake-up listener; polling until it is back"
                            );
                            warned = true;
                        }
                        listener = None;
                        // Try again at once (a restarted server, a terminated backend);
                        // after that, every LISTEN_RETRY.
                        retry_at = tokio::time::Instant::now();
                        ticker.reset();
                        notify.notify_waiters();
                    }
                },
            }
            continue;
        }
        tokio::select! {
            () = stopped(&mut stop) => break,
            _ = ticker.tick() => notify.notify_waiters(),
            _ = tokio::time::sleep_until(retry_at), if connecting.is_none() => {
                let pool = pool.clone();
                connecting = Some(Box::pin(async move { listen(&pool).await }));
            }
            attempt = async {
                match connecting.as_mut() {
                    Some(future) => future.await,
                    None => std::future::pending().await,
                }
            } => {
                connecting = None;
                match attempt {
                    Ok(restored) => {
                        tracing::info!("listening for wake-ups from other instances again");
                        listener = Some(restored);
                        warned = false;
                        notify.notify_waiters();
                    }
                    Err(error) => {
                        tracing::debug!(error = %redact(&error, &secrets), "listening again failed");
                        retry_at = tokio::time::Instant::now() + LISTEN_RETRY;
                    }
                }
            }
        }
    }
    drop(connecting);
    drop(listener);
    pool.close().await;
}

/// Resolves when the store stops (or is dropped without `close`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Sends `NOTIFY hookbridge_wake` for each wake-up asked for, after the change that asked
/// committed. Wake-ups asked for while one is being sent are coalesced into the next one,
/// so a burst of inserts costs a couple of notifications, not one each: PostgreSQL
/// serializes the commits of notifying transactions, which would undo its group commit if
/// every insert notified.
async fn announce_loop(
    pool: PgPool,
    schema: String,
    announce: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            () = announce.notified() => {
                let sent = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(WAKE_CHANNEL)
                    .bind(&schema)
                    .execute(&pool)
                    .await;
                if let Err(error) = sent {
                    // The others poll; a lost wake-up only delays them.
                    tracing::debug!(%error, "cannot wake the other instances");
                }
            }
        }
    }
}

// ---- rows ----

const DELIVERY_COLUMNS: &str =
    "seq, endpoint, provider, delivery_id, event_type, headers, body, received_at, status";
const JOB_COLUMNS: &str = "id, delivery_seq, rule, subject, state, attempts, max_attempts, run_at, last_error, created_at, updated_at";

fn row_to_delivery(row: &PgRow) -> Result<StoredDelivery, sqlx::Error> {
    let headers: &str = row.try_get("headers")?;
    Ok(StoredDelivery {
        seq: row.try_get("seq")?,
        endpoint: EndpointName::new(row.try_get::<String, _>("endpoint")?),
        provider: row.try_get("provider")?,
        delivery_id: DeliveryId::new(row.try_get::<String, _>("delivery_id")?),
        event_type: row.try_get("event_type")?,
        headers: serde_json::from_str(headers).unwrap_or_default(),
        body: Bytes::from(row.try_get::<Vec<u8>, _>("body")?),
        received_at: from_unix_micros(row.try_get("received_at")?),
        status: row.try_get("status")?,
    })
}

fn row_to_job(row: &PgRow) -> Result<Job, sqlx::Error> {
    Ok(Job {
        id: JobId(row.try_get("id")?),
        delivery_seq: row.try_get("delivery_seq")?,
        rule: row.try_get("rule")?,
        subject: row.try_get("subject")?,
        state: JobState::parse(row.try_get::<&str, _>("state")?).unwrap_or(JobState::Dead),
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(0),
        max_attempts: u32::try_from(row.try_get::<i64, _>("max_attempts")?).unwrap_or(0),
        run_at: from_unix_micros(row.try_get("run_at")?),
        last_error: row.try_get("last_error")?,
        created_at: from_unix_micros(row.try_get("created_at")?),
        updated_at: from_unix_micros(row.try_get("updated_at")?),
    })
}

fn row_to_attempt(row: &PgRow) -> Result<Attempt, sqlx::Error> {
    let (actions, calls) = super::records::decode_actions(row.try_get::<&str, _>("actions")?);
    Ok(Attempt {
        number: u32::try_from(row.try_get::<i64, _>("number")?).unwrap_or(0),
        started_at: from_unix_micros(row.try_get("started_at")?),
        finished_at: from_unix_micros(row.try_get("finished_at")?),
        outcome: row.try_get("outcome")?,
        error: row.try_get("error")?,
        actions,
        calls,
    })
}

fn row_to_link(row: &PgRow) -> Result<Link, sqlx::Error> {
    let data: &str = row.try_get("data")?;
    Ok(Link {
        rule: row.try_get("rule")?,
        a: row.try_get("a")?,
        b: row.try_get("b")?,
        data: serde_json::from_str(data).unwrap_or(serde_json::Value::Null),
    })
}

fn rows<T>(
    rows: &[PgRow],
    convert: fn(&PgRow) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, sqlx::Error> {
    rows.iter().map(convert).collect()
}

async fn insert_one<'e, E>(executor: E, d: &NewDelivery) -> Result<InsertOutcome, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    let headers = serde_json::to_string(&d.headers).unwrap_or_else(|_| "[]".into());
    let row = sqlx::query(
        "INSERT INTO deliveries
            (endpoint, provider, delivery_id, event_type, headers, body, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
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
    .fetch_optional(executor)
    .await?;
    Ok(match row {
        Some(row) => InsertOutcome::Inserted {
            seq: row.try_get("seq")?,
        },
        None => InsertOutcome::Duplicate,
    })
}

#[async_trait]
impl Store for PostgresStore {
    async fn insert_delivery(&self, delivery: NewDelivery) -> Result<InsertOutcome, StoreError> {
        let outcome = insert_one(self.pool()?, &delivery)
            .await
            .map_err(StoreError::db("insert delivery"))?;
        if matches!(outcome, InsertOutcome::Inserted { .. }) {
            self.wake();
        }
        Ok(outcome)
    }

    async fn insert_dispatched(
        &self,
        delivery: NewDelivery,
        dispatch: Dispatch,
    ) -> Result<InsertOutcome, StoreError> {
        let d = &delivery;
        let headers = serde_json::to_string(&d.headers).unwrap_or_else(|_| "[]".into());
        let rules: Vec<&str> = dispatch.jobs.iter().map(|j| j.rule.as_str()).collect();
        let subjects: Vec<Option<&str>> =
            dispatch.jobs.iter().map(|j| j.subject.as_deref()).collect();
        let max_attempts: Vec<i64> = dispatch
            .jobs
            .iter()
            .map(|j| i64::from(j.max_attempts))
            .collect();
        // One statement, so one round trip and one (group) commit: the jobs are created only
        // when the delivery row is, from the row the insert returned.
        let row = sqlx::query(
            "WITH d AS (
                INSERT INTO deliveries
                    (endpoint, provider, delivery_id, event_type, headers, body, received_at,
                     status)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (endpoint, delivery_id) DO NOTHING
                RETURNING seq
             ), j AS (
                INSERT INTO jobs (delivery_seq, rule, subject, state, max_attempts,
                    run_at, created_at, updated_at)
                SELECT d.seq, t.rule, t.subject, 'pending', t.max_attempts, $12, $12, $12
                FROM d, UNNEST($9::text[], $10::text[], $11::bigint[])
                    WITH ORDINALITY AS t (rule, subject, max_attempts, ord)
                ORDER BY t.ord
             )
             SELECT seq FROM d",
        )
        .bind(d.endpoint.as_str())
        .bind(d.provider.as_str())
        .bind(d.delivery_id.as_str())
        .bind(d.event_type.as_str())
        .bind(headers)
        .bind(&d.body[..])
        .bind(unix_micros(d.received_at))
        .bind(dispatch.status.as_str())
        .bind(rules)
        .bind(subjects)
        .bind(max_attempts)
        .bind(unix_micros(OffsetDateTime::now_utc()))
        .fetch_optional(self.pool()?)
        .await
        .map_err(StoreError::db("insert delivery"))?;
        let Some(row) = row else {
            return Ok(InsertOutcome::Duplicate);
        };
        let seq = row
            .try_get("seq")
            .map_err(StoreError::db("insert delivery"))?;
        if !dispatch.jobs.is_empty() {
            self.wake();
        }
        Ok(InsertOutcome::Inserted { seq })
    }

    async fn find_deliveries(
        &self,
        delivery_id: &DeliveryId,
        endpoint: Option<&EndpointName>,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let found = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries
             WHERE delivery_id = $1 AND ($2::text IS NULL OR endpoint = $2) ORDER BY seq"
        )))
        .bind(delivery_id.as_str())
        .bind(endpoint.map(EndpointName::as_str))
        .fetch_all(self.pool()?)
        .await
        .and_then(|r| rows(&r, row_to_delivery))
        .map_err(StoreError::db("find deliveries"))?;
        Ok(found)
    }

    async fn delivery(&self, seq: i64) -> Result<Option<StoredDelivery>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE seq = $1"
        )))
        .bind(seq)
        .fetch_optional(self.pool()?)
        .await
        .map_err(StoreError::db("read delivery"))?;
        row.as_ref()
            .map(row_to_delivery)
            .transpose()
            .map_err(StoreError::db("read delivery"))
    }

    async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let listed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries
             WHERE ($1::text IS NULL OR endpoint = $1) AND ($2::bigint IS NULL OR seq < $2)
             ORDER BY seq DESC LIMIT $3"
        )))
        .bind(filter.endpoint.as_ref().map(EndpointName::as_str))
        .bind(filter.before_seq)
        .bind(i64::from(filter.limit))
        .fetch_all(self.pool()?)
        .await
        .and_then(|r| rows(&r, row_to_delivery))
        .map_err(StoreError::db("list deliveries"))?;
        Ok(listed)
    }

    fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    async fn undispatched(&self, limit: u32) -> Result<Vec<StoredDelivery>, StoreError> {
        // No locking: two instances may read the same delivery; `dispatch` lets one win.
        let pending = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE status = 'received'
             ORDER BY seq LIMIT $1"
        )))
        .bind(i64::from(limit))
        .fetch_all(self.pool()?)
        .await
        .and_then(|r| rows(&r, row_to_delivery))
        .map_err(StoreError::db("list undispatched"))?;
        Ok(pending)
    }

    async fn dispatch(
        &self,
        seq: i64,
        status: DeliveryStatus,
        jobs: &[NewJob],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let now = unix_micros(now);
        let wake = status == DeliveryStatus::Dispatched;
        let run = async {
            let mut tx = self.pool()?.begin().await?;
            // Concurrent dispatchers of one delivery queue on its row lock; the later ones
            // then see it no longer `received` and change nothing.
            let updated = sqlx::query(
                "UPDATE deliveries SET status = $1 WHERE seq = $2 AND status = 'received'",
            )
            .bind(status.as_str())
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            if !jobs.is_empty() {
                let rules: Vec<&str> = jobs.iter().map(|j| j.rule.as_str()).collect();
                let subjects: Vec<Option<&str>> =
                    jobs.iter().map(|j| j.subject.as_deref()).collect();
                let max_attempts: Vec<i64> =
                    jobs.iter().map(|j| i64::from(j.max_attempts)).collect();
                sqlx::query(
                    "INSERT INTO jobs (delivery_seq, rule, subject, state, max_attempts,
                        run_at, created_at, updated_at)
                     SELECT $1, t.rule, t.subject, 'pending', t.max_attempts, $5, $5, $5
                     FROM UNNEST($2::text[], $3::text[], $4::bigint[])
                        WITH ORDINALITY AS t (rule, subject, max_attempts, ord)
                     ORDER BY t.ord",
                )
                .bind(seq)
                .bind(rules)
                .bind(subjects)
                .bind(max_attempts)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<_, TxError>(true)
        };
        let created = run.await.map_err(db_or("dispatch"))?;
        if created && wake {
            self.wake();
        }
        Ok(created)
    }

    async fn replay_delivery(&self, seq: i64) -> Result<bool, StoreError> {
        let changed = sqlx::query("UPDATE deliveries SET status = 'received' WHERE seq = $1")
            .bind(seq)
            .execute(self.pool()?)
            .await
            .map_err(StoreError::db("replay delivery"))?
            .rows_affected()
            > 0;
        if changed {
            self.wake();
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
        let now = unix_micros(now);
        let lease_until = now.saturating_add(micros(lease));
        // First, jobs whose worker died (or hung) during their last attempt: each lost
        // attempt counted, so they are dead letters now, with the lost attempt on record.
        // Without this, a job that kills its worker every time would be taken again forever.
        // A separate statement, so that the claim below sees them finished and can take the
        // next job of the same subject.
        let lost = sqlx::query(
            "WITH lost AS (
                SELECT id, updated_at AS started_at FROM jobs
                WHERE state = 'running' AND lease_until < $1 AND attempts >= max_attempts
                FOR UPDATE SKIP LOCKED
             ), dead AS (
                UPDATE jobs SET state = 'dead', lease_until = NULL, locked_by = NULL,
                    last_error = $2, updated_at = $1
                FROM lost WHERE jobs.id = lost.id
                RETURNING jobs.id, jobs.rule, jobs.attempts, lost.started_at
             ), recorded AS (
                INSERT INTO job_attempts
                    (job_id, number, started_at, finished_at, outcome, error, actions)
                SELECT id, attempts, started_at, $1, 'failed', $2, '[]' FROM dead
                ON CONFLICT (job_id, number) DO NOTHING
             )
             SELECT id, rule, attempts FROM dead",
        )
        .bind(now)
        .bind(super::LOST_LAST_ATTEMPT)
        .fetch_all(self.pool()?)
        .await
        .map_err(StoreError::db("dead-letter lost jobs"))?;
        for row in &lost {
            let (job, rule, attempts) = (
                row.try_get::<i64, _>("id").unwrap_or_default(),
                row.try_get::<String, _>("rule").unwrap_or_default(),
                row.try_get::<i64, _>("attempts").unwrap_or_default(),
            );
            tracing::warn!(
                job,
                rule,
                attempts,
                "the worker was lost during the job's last attempt; dead-lettered"
            );
        }
        // One statement: pick runnable jobs, skipping rows other claimers hold locked, lease
        // them, and return them with their deliveries.
        //
        // `attempts` counts this attempt, including a re-claim after a lost worker's lease
        // expired (lost attempts count: see above). `LEAST` only guards the count should a
        // runnable job ever have none left. The count stored is the count returned, so
        // `finish_job`'s fence (`locked_by` and `attempts`) accepts the new holder's result
        // and refuses the old one's (another `locked_by`).
        let claimed = sqlx::query(
            "WITH picked AS (
                SELECT j.id FROM jobs j
                WHERE j.state IN ('pending', 'running')
                  AND ((j.state = 'pending' AND j.run_at <= $3)
                       OR (j.state = 'running' AND j.lease_until < $3))
                  AND (j.subject IS NULL OR NOT EXISTS (
                        SELECT 1 FROM jobs k
                        WHERE k.rule = j.rule AND k.subject = j.subject
                          AND k.id < j.id AND k.state IN ('pending', 'running')))
                ORDER BY j.id
                LIMIT $4
                FOR UPDATE SKIP LOCKED
             ), claimed AS (
                UPDATE jobs SET state = 'running',
                    attempts = LEAST(jobs.attempts + 1, jobs.max_attempts),
                    lease_until = $1, locked_by = $2, updated_at = $3
                FROM picked WHERE jobs.id = picked.id
                RETURNING jobs.id, jobs.delivery_seq, jobs.rule, jobs.subject, jobs.state,
                    jobs.attempts, jobs.max_attempts, jobs.run_at, jobs.last_error,
                    jobs.created_at, jobs.updated_at
             )
             SELECT c.id, c.delivery_seq, c.rule, c.subject, c.state, c.attempts,
                c.max_attempts, c.run_at, c.last_error, c.created_at, c.updated_at,
                d.seq, d.endpoint, d.provider, d.delivery_id, d.event_type, d.headers, d.body,
                d.received_at, d.status
             FROM claimed c JOIN deliveries d ON d.seq = c.delivery_seq
             ORDER BY c.id",
        )
        .bind(lease_until)
        .bind(worker)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(self.pool()?)
        .await
        .and_then(|rows| {
            rows.iter()
                .map(|row| {
                    Ok(ClaimedJob {
                        job: row_to_job(row)?,
                        delivery: row_to_delivery(row)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })
        .map_err(StoreError::db("claim jobs"))?;
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
        let now = unix_micros(now);
        let (state, run_at) = match next {
            JobNext::Done => (JobState::Done, None),
            JobNext::Skipped => (JobState::Skipped, None),
            JobNext::RetryAt(at) => (JobState::Pending, Some(unix_micros(at))),
            JobNext::Dead => (JobState::Dead, None),
        };
        let run = async {
            let mut tx = self.pool()?.begin().await?;
            // Fenced: only the worker holding this attempt's lease may finish it.
            let r = sqlx::query(
                "UPDATE jobs SET state = $1, run_at = COALESCE($2, run_at), lease_until = NULL,
                    locked_by = NULL, last_error = COALESCE($3, last_error), updated_at = $4
                 WHERE id = $5 AND state = 'running' AND locked_by = $6 AND attempts = $7",
            )
            .bind(state.as_str())
            .bind(run_at)
            .bind(&attempt.error)
            .bind(now)
            .bind(id.0)
            .bind(worker)
            .bind(i64::from(attempt.number))
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO job_attempts
                    (job_id, number, started_at, finished_at, outcome, error, actions)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (job_id, number) DO NOTHING",
            )
            .bind(id.0)
            .bind(i64::from(attempt.number))
            .bind(unix_micros(attempt.started_at))
            .bind(unix_micros(attempt.finished_at))
            .bind(&attempt.outcome)
            .bind(&attempt.error)
            .bind(super::records::encode_actions(
                &attempt.actions,
                &attempt.calls,
            ))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, TxError>(true)
        };
        let finished = run.await.map_err(db_or("finish job"))?;
        if finished && run_at.is_some() {
            self.wake();
        }
        Ok(finished)
    }

    async fn job(&self, id: JobId) -> Result<Option<(Job, Vec<Attempt>)>, StoreError> {
        let pool = self.pool()?;
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::db("read job"))?
        else {
            return Ok(None);
        };
        let job = row_to_job(&row).map_err(StoreError::db("read job"))?;
        let attempts = sqlx::query(
            "SELECT number, started_at, finished_at, outcome, error, actions
             FROM job_attempts WHERE job_id = $1 ORDER BY number",
        )
        .bind(id.0)
        .fetch_all(pool)
        .await
        .and_then(|r| rows(&r, row_to_attempt))
        .map_err(StoreError::db("read attempts"))?;
        Ok(Some((job, attempts)))
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        let listed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR rule = $2)
               AND ($3::bigint IS NULL OR delivery_seq = $3) AND ($4::bigint IS NULL OR id < $4)
             ORDER BY id DESC LIMIT $5"
        )))
        .bind(filter.state.map(JobState::as_str))
        .bind(filter.rule.as_deref())
        .bind(filter.delivery_seq)
        .bind(filter.before_id)
        .bind(i64::from(filter.limit))
        .fetch_all(self.pool()?)
        .await
        .and_then(|r| rows(&r, row_to_job))
        .map_err(StoreError::db("list jobs"))?;
        Ok(listed)
    }

    async fn replay_job(&self, id: JobId, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.requeue_job("replay job", id, "'dead', 'skipped'", now)
            .await
    }

    async fn job_counts(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        let counted = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            .fetch_all(self.pool()?)
            .await
            .and_then(|rows| {
                rows.iter()
                    .map(|r| {
                        let state = JobState::parse(r.try_get::<&str, _>("state")?);
                        let n = u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0);
                        Ok(state.map(|s| (s, n)))
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            })
            .map_err(StoreError::db("count jobs"))?;
        Ok(counted.into_iter().flatten().collect())
    }

    async fn put_link(&self, link: &Link) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO links (rule, a, b, data, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (rule, a) DO UPDATE SET b = excluded.b, data = excluded.data,
                updated_at = excluded.updated_at",
        )
        .bind(&link.rule)
        .bind(&link.a)
        .bind(&link.b)
        .bind(link.data.to_string())
        .bind(unix_micros(OffsetDateTime::now_utc()))
        .execute(self.pool()?)
        .await
        .map_err(StoreError::db("put link"))?;
        Ok(())
    }

    async fn link_from(&self, rule: &str, a: &str) -> Result<Option<Link>, StoreError> {
        sqlx::query("SELECT rule, a, b, data FROM links WHERE rule = $1 AND a = $2")
            .bind(rule)
            .bind(a)
            .fetch_optional(self.pool()?)
            .await
            .and_then(|row| row.as_ref().map(row_to_link).transpose())
            .map_err(StoreError::db("read link"))
    }

    async fn link_to(&self, rule: &str, b: &str) -> Result<Option<Link>, StoreError> {
        sqlx::query(
            "SELECT rule, a, b, data FROM links WHERE rule = $1 AND b = $2 ORDER BY a LIMIT 1",
        )
        .bind(rule)
        .bind(b)
        .fetch_optional(self.pool()?)
        .await
        .and_then(|row| row.as_ref().map(row_to_link).transpose())
        .map_err(StoreError::db("read link"))
    }

    async fn list_links(
        &self,
        rule: Option<&str>,
        after_a: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Link>, StoreError> {
        sqlx::query(
            "SELECT rule, a, b, data FROM links
             WHERE ($1::text IS NULL OR rule = $1) AND ($2::text IS NULL OR a > $2)
             ORDER BY a, rule LIMIT $3",
        )
        .bind(rule)
        .bind(after_a)
        .bind(i64::from(limit))
        .fetch_all(self.pool()?)
        .await
        .and_then(|r| rows(&r, row_to_link))
        .map_err(StoreError::db("list links"))
    }

    async fn put_echo_mark(&self, mark: &EchoMark) -> Result<(), StoreError> {
        // Expired marks are removed on the way, skipping any another instance is removing
        // (no waiting, no deadlock between two collectors).
        sqlx::query(
            "WITH expired AS (
                DELETE FROM echo_marks WHERE id IN (
                    SELECT id FROM echo_marks WHERE expires_at <= $5
                    LIMIT $6 FOR UPDATE SKIP LOCKED))
             INSERT INTO echo_marks (target, field, value, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&mark.target)
        .bind(&mark.field)
        .bind(&mark.value)
        .bind(unix_micros(mark.expires_at))
        .bind(unix_micros(OffsetDateTime::now_utc()))
        .bind(ECHO_GC_BATCH)
        .execute(self.pool()?)
        .await
        .map_err(StoreError::db("put echo mark"))?;
        Ok(())
    }

    async fn take_echo_mark(
        &self,
        target: &str,
        field: &str,
        value: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // A mark locked by a concurrent taker is skipped: that taker consumes it.
        let r = sqlx::query(
            "DELETE FROM echo_marks WHERE id = (
                SELECT id FROM echo_marks
                WHERE target = $1 AND field = $2 AND value = $3 AND expires_at > $4
                ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)",
        )
        .bind(target)
        .bind(field)
        .bind(value)
        .bind(unix_micros(now))
        .execute(self.pool()?)
        .await
        .map_err(StoreError::db("take echo mark"))?;
        Ok(r.rows_affected() > 0)
    }

    async fn cursor(&self, source: &str) -> Result<Option<String>, StoreError> {
        sqlx::query("SELECT cursor FROM cursors WHERE source = $1")
            .bind(source)
            .fetch_optional(self.pool()?)
            .await
            .and_then(|row| row.map(|r| r.try_get("cursor")).transpose())
            .map_err(StoreError::db("read cursor"))
    }

    async fn commit_poll(
        &self,
        source: &str,
        cursor: &str,
        deliveries: Vec<NewDelivery>,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let run = async {
            let mut tx = self.pool()?.begin().await?;
            let mut outcomes = Vec::with_capacity(deliveries.len());
            for delivery in &deliveries {
                outcomes.push(insert_one(&mut *tx, delivery).await?);
            }
            sqlx::query(
                "INSERT INTO cursors (source, cursor, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor,
                    updated_at = excluded.updated_at",
            )
            .bind(source)
            .bind(cursor)
            .bind(unix_micros(OffsetDateTime::now_utc()))
            .execute(&mut *tx)
            .await?;
            let inserted = outcomes
                .iter()
                .any(|o| matches!(o, InsertOutcome::Inserted { .. }));
            tx.commit().await?;
            Ok::<_, TxError>((outcomes, inserted))
        };
        let (outcomes, inserted) = run.await.map_err(db_or("commit poll"))?;
        if inserted {
            self.wake();
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
        let now = unix_micros(now);
        let until = now.saturating_add(micros(ttl));
        let r = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(self.pool()?)
        .await
        .map_err(StoreError::db("take lease"))?;
        Ok(r.rows_affected() > 0)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(self.pool()?)
            .await
            .map_err(StoreError::db("release lease"))?;
        Ok(())
    }

    async fn state(&self, rule: &str, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let value: Option<String> =
            sqlx::query("SELECT value FROM rule_state WHERE rule = $1 AND key = $2")
                .bind(rule)
                .bind(key)
                .fetch_optional(self.pool()?)
                .await
                .and_then(|row| row.map(|r| r.try_get("value")).transpose())
                .map_err(StoreError::db("read rule state"))?;
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
    }

    async fn put_state(
        &self,
        rule: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO rule_state (rule, key, value, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (rule, key) DO UPDATE SET value = excluded.value,
                updated_at = excluded.updated_at",
        )
        .bind(rule)
        .bind(key)
        .bind(value.to_string())
        .bind(unix_micros(OffsetDateTime::now_utc()))
        .execute(self.pool()?)
        .await
        .map_err(StoreError::db("put rule state"))?;
        Ok(())
    }

    async fn put_state_if_absent(
        &self,
        rule: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        // One statement: PostgreSQL's unique index decides between concurrent inserts.
        let r = sqlx::query(
            "INSERT INTO rule_state (rule, key, value, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (rule, key) DO NOTHING",
        )
        .bind(rule)
        .bind(key)
        .bind(value.to_string())
        .bind(unix_micros(OffsetDateTime::now_utc()))
        .execute(self.pool()?)
        .await
        .map_err(StoreError::db("put rule state if absent"))?;
        Ok(r.rows_affected() > 0)
    }

    async fn token(&self, connection: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT access_token, refresh_token, expires_at, scopes FROM oauth_tokens
             WHERE connection = $1",
        )
        .bind(connection)
        .fetch_optional(self.pool()?)
        .await
        .map_err(StoreError::db("read token"))?;
        let Some(r) = row else {
            return Ok(None);
        };
        let token = (|| {
            Ok::<_, sqlx::Error>(TokenRecord {
                access_token: Secret::new(r.try_get::<Vec<u8>, _>("access_token")?),
                refresh_token: r
                    .try_get::<Option<Vec<u8>>, _>("refresh_token")?
                    .map(Secret::new),
                expires_at: r
                    .try_get::<Option<i64>, _>("expires_at")?
                    .map(from_unix_micros),
                scopes: r.try_get("scopes")?,
            })
        })()
        .map_err(StoreError::db("read token"))?;
        Ok(Some(token))
    }

    async fn put_token(&self, connection: &str, token: &TokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_tokens
                (connection, access_token, refresh_token, expires_at, scopes, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (connection) DO UPDATE SET access_token = excluded.access_token,
                refresh_token = excluded.refresh_token, expires_at = excluded.expires_at,
                scopes = excluded.scopes, updated_at = excluded.updated_at",
        )
        .bind(connection)
        .bind(token.access_token.expose())
        .bind(token.refresh_token.as_ref().map(Secret::expose))
        .bind(token.expires_at.map(unix_micros))
        .bind(&token.scopes)
        .bind(unix_micros(OffsetDateTime::now_utc()))
        .execute(self.pool()?)
        .await
        .map_err(StoreError::db("put token"))?;
        Ok(())
    }

    async fn learned_secret(&self, endpoint: &EndpointName) -> Result<Option<Secret>, StoreError> {
        let secret: Option<Vec<u8>> =
            sqlx::query("SELECT secret FROM learned_secrets WHERE endpoint = $1")
                .bind(endpoint.as_str())
                .fetch_optional(self.pool()?)
                .await
                .and_then(|row| row.map(|r| r.try_get("secret")).transpose())
                .map_err(StoreError::db("read learned secret"))?;
        Ok(secret.map(Secret::new))
    }

    async fn store_learned_secret(
        &self,
        endpoint: &EndpointName,
        secret: &Secret,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO learned_secrets (endpoint, secret, learned_at) VALUES ($1, $2, $3)
             ON CONFLICT (endpoint) DO NOTHING",
        )
        .bind(endpoint.as_str())
        .bind(secret.expose())
        .bind(unix_micros(OffsetDateTime::now_utc()))
        .execute(self.pool()?)
        .await
        .map_err(StoreError::db("store learned secret"))?;
        Ok(r.rows_affected() > 0)
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(self.pool()?)
            .await
            .map_err(StoreError::db("health check"))?;
        Ok(())
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let tasks = self.tasks.lock().ok().and_then(|mut g| g.take());
        if let Some(Tasks { stop, handles }) = tasks {
            let _ = stop.send(true);
            for mut handle in handles {
                if tokio::time::timeout(TASK_STOP_TIMEOUT, &mut handle)
                    .await
                    .is_err()
                {
                    tracing::warn!("a background task of the store did not stop in time");
                    handle.abort();
                }
            }
        }
        // Waits for connections in use (writes in flight) to come back, then closes them.
        self.pool.close().await;
    }

    async fn search_deliveries(
        &self,
        search: &DeliverySearch,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let found = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries
             WHERE ($1::text IS NULL OR endpoint = $1) AND ($2::text IS NULL OR event_type = $2)
               AND ($3::text IS NULL OR status = $3)
               AND (NOT $4::boolean OR EXISTS (SELECT 1 FROM jobs j
                    WHERE j.delivery_seq = deliveries.seq AND j.state = 'dead'))
               AND ($5::bigint IS NULL OR received_at >= $5)
               AND ($6::bigint IS NULL OR received_at < $6)
               AND ($7::text IS NULL OR delivery_id = $7 OR EXISTS (SELECT 1 FROM jobs j
                    WHERE j.delivery_seq = deliveries.seq AND strpos(j.subject, $7) > 0))
               AND ($8::bigint IS NULL OR seq < $8)
             ORDER BY seq DESC LIMIT $9"
        )))
        .bind(search.endpoint.as_ref().map(EndpointName::as_str))
        .bind(search.event_type.as_deref())
        .bind(search.status.map(DeliveryStatus::as_str))
        .bind(search.failed)
        .bind(search.since.map(unix_micros))
        .bind(search.until.map(unix_micros))
        .bind(search.text.as_deref())
        .bind(search.before_seq)
        .bind(i64::from(search.limit))
        .fetch_all(self.pool()?)
        .await
        .and_then(|r| rows(&r, row_to_delivery))
        .map_err(StoreError::db("search deliveries"))?;
        Ok(found)
    }

    async fn delivery_buckets(
        &self,
        since: OffsetDateTime,
        bucket: Duration,
    ) -> Result<Vec<DeliveryBucket>, StoreError> {
        let width = micros(bucket).max(1);
        let counted = sqlx::query(
            "SELECT endpoint, (received_at / $2) * $2 AS bucket, COUNT(*) AS n,
                SUM(CASE WHEN status = 'unparseable' OR EXISTS (SELECT 1 FROM jobs j
                    WHERE j.delivery_seq = deliveries.seq AND j.state = 'dead')
                    THEN 1 ELSE 0 END) AS failed
             FROM deliveries WHERE received_at >= $1
             GROUP BY endpoint, bucket ORDER BY bucket, endpoint",
        )
        .bind(unix_micros(since))
        .bind(width)
        .fetch_all(self.pool()?)
        .await
        .and_then(|rows| {
            rows.iter()
                .map(|r| {
                    Ok(DeliveryBucket {
                        endpoint: EndpointName::new(r.try_get::<String, _>("endpoint")?),
                        start: from_unix_micros(r.try_get("bucket")?),
                        deliveries: u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                        failed: u64::try_from(r.try_get::<i64, _>("failed")?).unwrap_or(0),
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })
        .map_err(StoreError::db("count deliveries"))?;
        Ok(counted)
    }

    async fn oldest_unfinished_delivery(&self) -> Result<Option<StoredDelivery>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE seq = (SELECT MIN(s) FROM (
                SELECT MIN(seq) AS s FROM deliveries WHERE status = 'received'
                UNION ALL
                SELECT MIN(delivery_seq) AS s FROM jobs WHERE state IN ('pending', 'running')
             ) AS m)"
        )))
        .fetch_optional(self.pool()?)
        .await
        .map_err(StoreError::db("find oldest unfinished delivery"))?;
        row.as_ref()
            .map(row_to_delivery)
            .transpose()
            .map_err(StoreError::db("find oldest unfinished delivery"))
    }

    // ---- operations: unfinished deliveries, bulk replay, circuit pauses ----

    async fn unfinished_deliveries(
        &self,
        filter: &UnfinishedFilter,
    ) -> Result<Vec<UnfinishedDelivery>, StoreError> {
        let pool = self.pool()?;
        let deliveries = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries
             WHERE seq IN (
                SELECT delivery_seq FROM jobs
                WHERE state IN ('pending', 'running', 'dead') AND ($4::text IS NULL OR rule = $4)
                UNION
                SELECT seq FROM deliveries WHERE status = 'received' AND $4::text IS NULL)
               AND ($1::bigint IS NULL OR received_at < $1)
               AND ($2::text IS NULL OR endpoint = $2)
               AND ($3::bigint IS NULL OR seq > $3)
             ORDER BY seq LIMIT $5"
        )))
        .bind(filter.received_before.map(unix_micros))
        .bind(filter.endpoint.as_ref().map(EndpointName::as_str))
        .bind(filter.after_seq)
        .bind(filter.rule.as_deref())
        .bind(i64::from(filter.limit))
        .fetch_all(pool)
        .await
        .and_then(|r| rows(&r, row_to_delivery))
        .map_err(StoreError::db("list unfinished deliveries"))?;
        let (Some(first), Some(last)) = (deliveries.first(), deliveries.last()) else {
            return Ok(Vec::new());
        };
        let jobs = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE delivery_seq BETWEEN $1 AND $2 AND state IN ('pending', 'running', 'dead')
               AND ($3::text IS NULL OR rule = $3)
             ORDER BY id"
        )))
        .bind(first.seq)
        .bind(last.seq)
        .bind(filter.rule.as_deref())
        .fetch_all(pool)
        .await
        .and_then(|r| rows(&r, row_to_job))
        .map_err(StoreError::db("list unfinished jobs"))?;
        Ok(super::group_unfinished(deliveries, jobs))
    }

    async fn search_jobs(&self, search: &JobSearch) -> Result<Vec<Job>, StoreError> {
        let states = super::state_list(&search.states);
        let found = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE ({states}) AND ($4::text IS NULL OR rule = $4)
               AND ($5::bigint IS NULL OR id > $5)
               AND (($1::bigint IS NULL AND $2::bigint IS NULL AND $3::text IS NULL) OR EXISTS (
                    SELECT 1 FROM deliveries d WHERE d.seq = jobs.delivery_seq
                      AND ($1::bigint IS NULL OR d.received_at >= $1)
                      AND ($2::bigint IS NULL OR d.received_at < $2)
                      AND ($3::text IS NULL OR d.endpoint = $3)))
             ORDER BY id LIMIT $6"
        )))
        .bind(search.since.map(unix_micros))
        .bind(search.until.map(unix_micros))
        .bind(search.endpoint.as_ref().map(EndpointName::as_str))
        .bind(search.rule.as_deref())
        .bind(search.after_id)
        .bind(i64::from(search.limit))
        .fetch_all(self.pool()?)
        .await
        .and_then(|r| rows(&r, row_to_job))
        .map_err(StoreError::db("search jobs"))?;
        Ok(found)
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
        // Fenced like `finish_job`; the claim's attempt is given back.
        let paused = sqlx::query(
            "UPDATE jobs SET state = 'pending', run_at = $1, attempts = GREATEST(attempts - 1, 0),
                lease_until = NULL, locked_by = NULL, last_error = $2, updated_at = $3
             WHERE id = $4 AND state = 'running' AND locked_by = $5 AND attempts = $6",
        )
        .bind(unix_micros(until))
        .bind(reason)
        .bind(unix_micros(now))
        .bind(id.0)
        .bind(worker)
        .bind(i64::from(attempt))
        .execute(self.pool()?)
        .await
        .map_err(StoreError::db("pause job"))?
        .rows_affected()
            > 0;
        Ok(paused)
    }
}

/// Maps a transaction's error: a `sqlx` error becomes [`StoreError::Database`] for
/// `operation`; a store error (the store was closed) is kept.
fn db_or(operation: &'static str) -> impl FnOnce(TxError) -> StoreError {
    move |error| match error {
        TxError::Store(error) => error,
        TxError::Sqlx(source) => StoreError::Database {
            operation,
            source: Arc::new(source),
        },
    }
}

/// What can fail inside one of the store's transactions.
enum TxError {
    Sqlx(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for TxError {
    fn from(error: sqlx::Error) -> Self {
        TxError::Sqlx(error)
    }
}

impl From<StoreError> for TxError {
    fn from(error: StoreError) -> Self {
        TxError::Store(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_found_in_every_spelling() {
        let secrets = url_secrets("postgres://u:p%40ss%2Fw0rd@db:5432/x?sslmode=disable");
        assert!(secrets.contains(&"p%40ss%2Fw0rd".to_owned()));
        assert!(secrets.contains(&"p@ss/w0rd".to_owned()));
        let secrets = url_secrets("postgres://u@db/x?application_name=a&password=hunter+2");
        assert!(secrets.contains(&"hunter 2".to_owned()));
        assert!(url_secrets("postgres://u@db/x").is_empty());
        assert!(url_secrets("not a url").is_empty());
    }

    #[test]
    fn an_error_quoting_the_password_is_withheld() {
        let secrets = url_secrets("postgres://u:hunter2@db/x");
        let leaky = sqlx::Error::Configuration("cannot use hunter2 here".into());
        let err = scrubbed("connect", leaky, &secrets);
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
        let clean = sqlx::Error::Configuration("invalid port number".into());
        assert!(
            scrubbed("connect", clean, &secrets)
                .to_string()
                .contains("invalid port")
        );
        let leaky = sqlx::Error::Protocol("hunter2".into());
        assert!(!redact(&leaky, &secrets).contains("hunter2"));
    }

    #[test]
    fn schema_names_are_checked_and_quoted() {
        assert!(check_schema_name("hb_prod").is_ok());
        assert!(check_schema_name("").is_err());
        assert!(check_schema_name("a\0b").is_err());
        assert!(check_schema_name(&"x".repeat(64)).is_err());
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
