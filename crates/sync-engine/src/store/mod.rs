//! Durable storage. [`Store`] is what the server and the engine need; each backend is a
//! sibling module implementing it (`sqlite` today).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use hookbridge_sync_engine::store::{InsertOutcome, NewDelivery, SqliteStore, Store};
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(dir.path().join("hb.db"), Default::default()).await.unwrap();
//! let delivery = NewDelivery {
//!     endpoint: "github".into(),
//!     provider: "github".into(),
//!     delivery_id: "72d3162e".into(),
//!     event_type: "ping".into(),
//!     headers: vec![("x-github-event".into(), "ping".into())],
//!     body: bytes::Bytes::from_static(b"{}"),
//!     received_at: time::OffsetDateTime::now_utc(),
//! };
//! assert!(matches!(store.insert_delivery(delivery.clone()).await.unwrap(), InsertOutcome::Inserted { .. }));
//! assert_eq!(store.insert_delivery(delivery).await.unwrap(), InsertOutcome::Duplicate);
//! store.close().await;
//! # });
//! ```

mod postgres;
mod records;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hookbridge_core::{DeliveryId, EndpointName, Secret};
use time::OffsetDateTime;
use tokio::sync::Notify;

pub use postgres::{PostgresOptions, PostgresStore};
pub use records::{
    Attempt, ClaimedJob, DeliveryFilter, DeliveryStatus, Dispatch, EchoMark, InsertOutcome, Job,
    JobFilter, JobId, JobNext, JobState, Link, NewDelivery, NewJob, StoredDelivery, TokenRecord,
};
pub use records::{CallRecord, JobSearch, UnfinishedDelivery, UnfinishedFilter};
pub use records::{DeliveryBucket, DeliverySearch};
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};

/// A storage failure. Messages never contain delivery bodies or secrets.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error during {operation}: {source}")]
    Database {
        /// What the store was doing.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: Arc<sqlx::Error>,
    },
    /// A schema migration failed; the store was not opened.
    #[error("migration {version} failed: {source}")]
    Migration {
        /// The migration that failed.
        version: i64,
        /// The driver's error.
        #[source]
        source: Arc<sqlx::Error>,
    },
    /// The database was written by a newer hookbridge.
    #[error(
        "database schema version {found} is newer than this build knows ({known}); upgrade hookbridge"
    )]
    SchemaTooNew {
        /// The version in the database.
        found: i64,
        /// The newest version this build has.
        known: i64,
    },
    /// The store's storage location could not be prepared.
    #[error("cannot prepare the store at {path}: {message}")]
    Location {
        /// The path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The store is shut down and accepts no more writes.
    #[error("the store is closed")]
    Closed,
    /// A write was abandoned before it could commit: another operation in its batch failed
    /// beyond recovery (or panicked), so the whole batch was rolled back. Nothing of it was
    /// written; retrying is safe.
    #[error("the store abandoned the write ({operation}) with its batch; nothing was written")]
    Aborted {
        /// The operation that was abandoned, or the one that made the batch fail.
        operation: &'static str,
    },
}

/// Times are stored as unix microseconds in every backend.
pub(crate) fn unix_micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

pub(crate) fn from_unix_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The error recorded when a job is dead-lettered because its worker was lost (crashed,
/// killed or hung past its lease) during the job's last attempt.
pub(crate) const LOST_LAST_ATTEMPT: &str =
    "the worker was lost during the last attempt (lease expired): dead-lettered";

pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl StoreError {
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Database {
            operation,
            source: Arc::new(source),
        }
    }
}

/// Durable storage for hookbridge: the delivery inbox, the job queue, links between
/// objects, echo marks, poller cursors and leases, rule state, OAuth tokens and secrets
/// learned in handshakes.
///
/// Every backend passes the same conformance suite (`crates/sync-engine/tests/conformance`).
/// Writes are durable when the call returns `Ok`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- inbox ----

    /// Inserts a delivery unless one with the same (endpoint, delivery id) exists.
    async fn insert_delivery(&self, delivery: NewDelivery) -> Result<InsertOutcome, StoreError>;

    /// Inserts a delivery with its dispatch already decided (see
    /// [`Engine::plan`](crate::engine::Engine::plan)) unless one with the same (endpoint,
    /// delivery id) exists: the delivery, its status and its jobs commit together, and the
    /// dispatcher never sees it. A duplicate changes nothing, as with
    /// [`insert_delivery`](Store::insert_delivery).
    ///
    /// The default inserts the delivery as `received` and leaves it to the dispatcher, which
    /// decides the same thing a moment later.
    async fn insert_dispatched(
        &self,
        delivery: NewDelivery,
        dispatch: Dispatch,
    ) -> Result<InsertOutcome, StoreError> {
        let _ = dispatch;
        self.insert_delivery(delivery).await
    }

    /// The deliveries with this delivery id, on any endpoint or on the given one.
    async fn find_deliveries(
        &self,
        delivery_id: &DeliveryId,
        endpoint: Option<&EndpointName>,
    ) -> Result<Vec<StoredDelivery>, StoreError>;

    /// One delivery by its inbox sequence number.
    async fn delivery(&self, seq: i64) -> Result<Option<StoredDelivery>, StoreError>;

    /// Deliveries matching the filter, newest first.
    async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<StoredDelivery>, StoreError>;

    /// Woken after deliveries are inserted or jobs become ready, so that the engine reacts
    /// at once instead of polling. Backends shared by several processes also poll.
    fn notifier(&self) -> Arc<Notify>;

    // ---- dispatch ----

    /// Up to `limit` deliveries still `received`, oldest first, for the dispatcher.
    async fn undispatched(&self, limit: u32) -> Result<Vec<StoredDelivery>, StoreError>;

    /// Records the dispatch of a `received` delivery: creates its jobs and sets its status,
    /// in one transaction. Returns `false` (and changes nothing) if the delivery was no
    /// longer `received` (another dispatcher took it).
    async fn dispatch(
        &self,
        seq: i64,
        status: DeliveryStatus,
        jobs: &[NewJob],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Records the dispatch of several `received` deliveries, in order, in one transaction
    /// where the backend can: one flag per item, `false` where the delivery was no longer
    /// `received`. The default calls [`dispatch`](Store::dispatch) for each.
    async fn dispatch_many(
        &self,
        items: &[(i64, Dispatch)],
        now: OffsetDateTime,
    ) -> Result<Vec<bool>, StoreError> {
        let mut created = Vec::with_capacity(items.len());
        for (seq, dispatch) in items {
            created.push(
                self.dispatch(*seq, dispatch.status, &dispatch.jobs, now)
                    .await?,
            );
        }
        Ok(created)
    }

    /// Sets a delivery back to `received`, so it is dispatched again through the current
    /// rules. Returns `false` if there is no such delivery.
    async fn replay_delivery(&self, seq: i64) -> Result<bool, StoreError>;

    // ---- jobs ----

    /// Claims up to `limit` runnable jobs for `worker`, each with a lease until
    /// `now + lease`: pending jobs whose time has come and running jobs whose lease expired
    /// (their worker died). A job is not runnable while an earlier job of the same rule and
    /// subject is pending or running.
    async fn claim_jobs(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<ClaimedJob>, StoreError>;

    /// Records an attempt and moves the job on. Returns `false` if `worker` no longer holds
    /// the job (its lease expired and another worker took it): the result is then dropped.
    async fn finish_job(
        &self,
        id: JobId,
        worker: &str,
        attempt: &Attempt,
        next: JobNext,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// One job with its attempts.
    async fn job(&self, id: JobId) -> Result<Option<(Job, Vec<Attempt>)>, StoreError>;

    /// Jobs matching the filter, newest first.
    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError>;

    /// Moves a dead (or skipped) job back to pending with fresh attempts. Returns `false` if
    /// the job is not dead or skipped.
    async fn replay_job(&self, id: JobId, now: OffsetDateTime) -> Result<bool, StoreError>;

    /// Counts jobs by state, for metrics and the overview.
    async fn job_counts(&self) -> Result<Vec<(JobState, u64)>, StoreError>;

    // ---- links ----

    /// Creates or replaces the link of (`rule`, `a`).
    async fn put_link(&self, link: &Link) -> Result<(), StoreError>;

    /// The link of `rule` from object `a`.
    async fn link_from(&self, rule: &str, a: &str) -> Result<Option<Link>, StoreError>;

    /// The link of `rule` to object `b`.
    async fn link_to(&self, rule: &str, b: &str) -> Result<Option<Link>, StoreError>;

    /// Links of `rule` (or all), by `a`, after `after_a` (paging).
    async fn list_links(
        &self,
        rule: Option<&str>,
        after_a: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Link>, StoreError>;

    // ---- echo marks ----

    /// Records a write, so that its echo is recognised until the mark expires.
    async fn put_echo_mark(&self, mark: &EchoMark) -> Result<(), StoreError>;

    /// Consumes an unexpired mark of (`target`, `field`, `value`); `true` if there was one,
    /// i.e. the change is hookbridge's own write coming back.
    async fn take_echo_mark(
        &self,
        target: &str,
        field: &str,
        value: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    // ---- pollers and leases ----

    /// A poller's cursor.
    async fn cursor(&self, source: &str) -> Result<Option<String>, StoreError>;

    /// Inserts the deliveries a poller produced and moves its cursor, in one transaction,
    /// so a crash between the two can neither lose nor duplicate events.
    async fn commit_poll(
        &self,
        source: &str,
        cursor: &str,
        deliveries: Vec<NewDelivery>,
    ) -> Result<Vec<InsertOutcome>, StoreError>;

    /// Takes or renews the named lease for `holder` until `now + ttl`. `true` if `holder`
    /// holds it now; `false` if another holder's lease is still valid.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Gives up the lease if `holder` holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    // ---- rule state, tokens, learned secrets ----

    /// A rule's stored value for `key`.
    async fn state(&self, rule: &str, key: &str) -> Result<Option<serde_json::Value>, StoreError>;

    /// Stores a rule's value for `key`.
    async fn put_state(
        &self,
        rule: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), StoreError>;

    /// Stores `value` for (`rule`, `key`) only if nothing is stored there yet: `true` if it
    /// was stored, `false` (and nothing changes) if a value already was. Atomic across the
    /// instances sharing the store: of concurrent calls for one key, exactly one gets `true`.
    /// The healers record each redelivery they ask for this way, so that no two runs (nor
    /// two instances) ask twice.
    async fn put_state_if_absent(
        &self,
        rule: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<bool, StoreError>;

    /// The OAuth tokens of a connection.
    async fn token(&self, connection: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Stores the OAuth tokens of a connection.
    async fn put_token(&self, connection: &str, token: &TokenRecord) -> Result<(), StoreError>;

    /// The secret an endpoint learned in a handshake (Asana).
    async fn learned_secret(&self, endpoint: &EndpointName) -> Result<Option<Secret>, StoreError>;

    /// Stores the secret an endpoint learned in a handshake, only if it has none: `false`
    /// (and nothing changes) if one is already stored. A handshake never replaces a secret.
    async fn store_learned_secret(
        &self,
        endpoint: &EndpointName,
        secret: &Secret,
    ) -> Result<bool, StoreError>;

    // ---- lifecycle ----

    /// Whether the store can serve requests now (for `/readyz`).
    async fn check_health(&self) -> Result<(), StoreError>;

    /// Finishes pending writes and closes the store.
    async fn close(&self);

    // ---- dashboard ----

    /// Deliveries matching the search, newest first (the dashboard's filtered list).
    async fn search_deliveries(
        &self,
        search: &DeliverySearch,
    ) -> Result<Vec<StoredDelivery>, StoreError>;

    /// Deliveries received since `since`, counted per endpoint and per `bucket` of time
    /// (buckets aligned to multiples of `bucket` since the epoch), with their failures.
    /// Ordered by bucket, then endpoint; empty buckets are left out.
    async fn delivery_buckets(
        &self,
        since: OffsetDateTime,
        bucket: Duration,
    ) -> Result<Vec<DeliveryBucket>, StoreError>;

    /// The oldest delivery whose processing is not finished: not yet dispatched, or with a
    /// job pending or running.
    async fn oldest_unfinished_delivery(&self) -> Result<Option<StoredDelivery>, StoreError>;

    // ---- operations: what never succeeded, bulk replay, circuit pauses ----

    /// Deliveries whose processing is unfinished: with a job pending (first run or retry),
    /// running or dead, or not dispatched yet; oldest first, with those jobs.
    async fn unfinished_deliveries(
        &self,
        filter: &UnfinishedFilter,
    ) -> Result<Vec<UnfinishedDelivery>, StoreError>;

    /// Jobs matching the search (by their delivery's time and endpoint, their rule and
    /// state), by id: what a bulk replay selects.
    async fn search_jobs(&self, search: &JobSearch) -> Result<Vec<Job>, StoreError>;

    /// Moves a finished job (done, skipped or dead) back to pending with fresh attempts, so
    /// its rule runs on its delivery again. Returns `false` if the job is not finished.
    async fn rerun_job(&self, id: JobId, now: OffsetDateTime) -> Result<bool, StoreError>;

    /// Puts a running job back to pending until `until` without counting the attempt it
    /// was claimed for (a circuit breaker paused it before it could call its service), with
    /// `reason` as its last error. Fenced like [`finish_job`](Store::finish_job): `false` if
    /// `worker` no longer holds attempt `attempt`.
    async fn pause_job(
        &self,
        id: JobId,
        worker: &str,
        attempt: u32,
        until: OffsetDateTime,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}

/// Puts unfinished jobs under their deliveries (both ordered), for `unfinished_deliveries`.
pub(crate) fn group_unfinished(
    deliveries: Vec<StoredDelivery>,
    jobs: Vec<Job>,
) -> Vec<UnfinishedDelivery> {
    let mut by_seq: std::collections::HashMap<i64, Vec<Job>> = std::collections::HashMap::new();
    for job in jobs {
        by_seq.entry(job.delivery_seq).or_default().push(job);
    }
    deliveries
        .into_iter()
        .map(|delivery| UnfinishedDelivery {
            jobs: by_seq.remove(&delivery.seq).unwrap_or_default(),
            delivery,
        })
        .collect()
}

/// An SQL condition on `state` for a list of states (any, if empty). The states are the
/// store's own spellings, never input text.
pub(crate) fn state_list(states: &[JobState]) -> String {
    if states.is_empty() {
        return "1 = 1".into();
    }
    let quoted: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!("state IN ({})", quoted.join(", "))
}
