//! Healing gaps: deliveries a service logged as failed that never reached the inbox are
//! fetched back, at start-up and on an interval, per configured endpoint.
//!
//! - [`GithubHealer`] reads a webhook's delivery log (GitHub keeps 3 days of it, 7 on
//!   GitHub Enterprise Server), compares each delivery's GUID (its `X-GitHub-Delivery`,
//!   shared by redeliveries) with the inbox, and asks GitHub to redeliver those hookbridge
//!   never stored; GitHub then sends them to the endpoint again, signed, like any delivery.
//! - [`JiraHealer`] reads the webhooks Jira Cloud gave up delivering to the app (kept about
//!   72 hours) and puts those addressed to the endpoint in the inbox itself, with the id Jira
//!   sent them with, so that a later real delivery of the same webhook is a duplicate.
//! - [`TrelloMonitor`] reports the Trello webhooks of the endpoint whose deliveries keep
//!   failing (Trello counts them), and sets a gauge per hook; Trello offers no redelivery.
//!
//! **Once per delivery.** Before it asks GitHub for a redelivery, a healer records the
//! request with [`Store::put_state_if_absent`] (key `redeliver:<guid>:<n>`), which one caller
//! only can win: two runs, or two instances sharing a PostgreSQL store, never ask twice for
//! the same GUID. A delivery is asked again (n + 1, at most [`MAX_ASKS`] times in all) only
//! when a later run sees that GitHub made the redelivery and that it failed in a way worth
//! repeating (the receiver unreachable, 5xx, 408 or 429), or that GitHub refused the request.
//!
//! **One run at a time.** A run holds the store lease named after the healer, so on
//! PostgreSQL one instance runs a given healer at a time; scheduled runs skip when another
//! instance ran it less than an interval ago (the time is kept in the store).
//!
//! **Cursor.** Each healer keeps its position in the store (`Store::cursor`, written with
//! `commit_poll`, in the same transaction as the deliveries the Jira healer ingests).
//!
//! Healers run as their own tasks ([`Healers::start`]), not as engine
//! [`Source`](crate::engine::Source)s: a GitHub run produces no delivery (GitHub sends the
//! redeliveries to the endpoint), and a run must also serve `hookbridge heal` once, with its
//! report, a dry run and a per-run maximum. They use the same store primitives as sources:
//! a lease per healer and a cursor committed with `commit_poll`.

mod github;
mod jira;
mod trello;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hookbridge_core::EndpointName;
use hookbridge_providers::api::ApiError;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::integrations::Connections;
use crate::store::{Store, StoreError};

pub use github::{GithubHealer, GithubHook};
pub use jira::JiraHealer;
pub use trello::TrelloMonitor;

/// The most times one delivery is asked for (the first request included).
pub const MAX_ASKS: u32 = 3;

/// How long a run may hold its lease; a run that dies releases it when this expires.
const LEASE_TTL: Duration = Duration::from_secs(15 * 60);

/// How long [`Healers::run_once`] waits for another instance's run of a healer to end.
const BUSY_WAIT: Duration = Duration::from_secs(15);

/// The state namespace (`Store::state`) of the healers' bookkeeping besides their markers.
const STATE_RULE: &str = "heal";

/// Counters and gauges (registered with the process's `metrics` recorder).
pub mod metric_names {
    /// Deliveries found missing from the inbox (each counted once), by endpoint.
    pub const MISSING: &str = "hookbridge_heal_missing_total";
    /// Redeliveries GitHub accepted, and Jira failed webhooks put in the inbox, by endpoint.
    pub const REDELIVERED: &str = "hookbridge_heal_redelivered_total";
    /// Redelivery requests that failed and deliveries given up on, by endpoint.
    pub const FAILED: &str = "hookbridge_heal_failed_total";
    /// Healer runs, by endpoint and outcome (`ok`, `error`).
    pub const RUNS: &str = "hookbridge_heal_runs_total";
    /// Consecutive failed deliveries a service reports for a hook (Trello), by endpoint and
    /// hook.
    pub const HOOK_FAILURES: &str = "hookbridge_hook_consecutive_failures";
}

/// Why a healer could not be built or run. Messages never carry a secret.
#[derive(Debug, thiserror::Error)]
pub enum HealError {
    /// A setting is wrong (unknown connection, unsupported deployment).
    #[error("healing endpoint {endpoint}: {message}")]
    Config {
        /// The endpoint.
        endpoint: String,
        /// What is wrong.
        message: String,
    },
    /// A call to the service failed.
    #[error("{healer}: {source}")]
    Api {
        /// The healer.
        healer: String,
        /// The API error.
        #[source]
        source: ApiError,
    },
    /// The store failed.
    #[error("{healer}: {source}")]
    Store {
        /// The healer.
        healer: String,
        /// The store error.
        #[source]
        source: StoreError,
    },
    /// The webhook to read the log of was not found.
    #[error(
        "{healer}: no webhook delivering to {url} in {location}; set hook_id, or check the URL"
    )]
    HookNotFound {
        /// The healer.
        healer: String,
        /// Where it was looked for.
        location: String,
        /// The URL looked for.
        url: String,
    },
    /// Another run of this healer holds its lease.
    #[error("{healer}: another instance is running it now")]
    Busy {
        /// The healer.
        healer: String,
    },
}

/// The settings of one endpoint's healer, as a configuration gives them.
#[derive(Clone, Debug)]
pub struct HealSettings {
    /// The endpoint healed.
    pub endpoint: EndpointName,
    /// The connection (`[connections.<name>]`) whose client reads the service.
    pub connection: String,
    /// What to read.
    pub target: HealTarget,
    /// Time between scheduled runs.
    pub interval: Duration,
    /// The most deliveries asked for (or ingested) per run.
    pub max_per_run: u32,
    /// Where the service delivers to (`<public_url>/hooks/<endpoint>`): finds the GitHub
    /// hook when no id is given, and keeps only the endpoint's Jira failures and Trello
    /// hooks.
    pub url: Option<String>,
}

/// Which service log a healer reads.
#[derive(Clone, Debug)]
pub enum HealTarget {
    /// A GitHub webhook's delivery log.
    Github(GithubHook),
    /// Jira Cloud's failed webhooks.
    Jira,
    /// The Trello webhooks' failure counts.
    Trello,
}

/// How one run goes.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Say what would be done; ask for nothing, store nothing, move no cursor.
    pub dry_run: bool,
    /// The most deliveries asked for in this run (instead of the healer's `max_per_run`).
    pub max: Option<u32>,
    /// Look back to this time instead of the stored cursor (a manual backfill).
    pub since: Option<OffsetDateTime>,
}

/// What became of one missing delivery (or one failing hook) in a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum HealOutcome {
    /// GitHub accepted the redelivery request.
    Redelivered,
    /// Dry run: it would be asked for.
    WouldRedeliver,
    /// Put in the inbox (Jira).
    Ingested,
    /// Dry run: it would be put in the inbox.
    WouldIngest,
    /// Asked for before (this many times); waiting for the service's redelivery.
    AlreadyRequested(u32),
    /// Over this run's maximum: left for the next run.
    Deferred,
    /// The request failed (it counts as an ask if the service may have acted on it).
    Failed(String),
    /// Not asked for again, and why.
    GaveUp(String),
    /// The service reports this many failed deliveries in a row to the hook (Trello).
    Failing(u64),
}

impl std::fmt::Display for HealOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HealOutcome::Redelivered => f.write_str("redelivered"),
            HealOutcome::WouldRedeliver => f.write_str("would redeliver"),
            HealOutcome::Ingested => f.write_str("ingested"),
            HealOutcome::WouldIngest => f.write_str("would ingest"),
            HealOutcome::AlreadyRequested(n) => {
                let s = if *n == 1 { "" } else { "s" };
                write!(f, "asked {n} time{s} already; waiting for the redelivery")
            }
            HealOutcome::Deferred => f.write_str("deferred to the next run (per-run maximum)"),
            HealOutcome::Failed(error) => write!(f, "failed: {error}"),
            HealOutcome::GaveUp(why) => write!(f, "gave up: {why}"),
            HealOutcome::Failing(1) => f.write_str("failing: the last delivery failed"),
            HealOutcome::Failing(n) => write!(f, "failing: the last {n} deliveries failed"),
        }
    }
}

/// One missing delivery (or failing hook) and what the run did about it.
#[derive(Clone, Debug, Serialize)]
pub struct HealItem {
    /// The delivery's id at the service (GitHub's GUID, Jira's webhook id) or the hook's id.
    pub id: String,
    /// What it is, for people: event, time, the service's last status.
    pub summary: String,
    /// What the run did.
    pub outcome: HealOutcome,
    /// Whether this run found the gap for the first time (counted as missing once).
    pub new_gap: bool,
    /// Whether this run failed to heal it: a request that failed, or a delivery given up on
    /// for the first time (counted as failed once).
    pub new_failure: bool,
}

/// What one run of a healer found and did.
#[derive(Clone, Debug, Serialize)]
pub struct HealReport {
    /// The healer (`heal:<provider>:<endpoint>`).
    pub healer: String,
    /// The endpoint healed.
    pub endpoint: EndpointName,
    /// What was read, for people (`repository o/r hook 7`).
    pub source: String,
    /// Entries read from the service's log.
    pub scanned: u64,
    /// The missing deliveries and failing hooks, oldest first.
    pub items: Vec<HealItem>,
    /// Anything else worth saying (a first run, a log longer than one run reads).
    pub notes: Vec<String>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

impl HealReport {
    fn new(healer: &str, endpoint: &EndpointName, source: String, dry_run: bool) -> Self {
        Self {
            healer: healer.to_owned(),
            endpoint: endpoint.clone(),
            source,
            scanned: 0,
            items: Vec::new(),
            notes: Vec::new(),
            dry_run,
        }
    }

    fn count(&self, pick: impl Fn(&HealItem) -> bool) -> u64 {
        self.items.iter().filter(|i| pick(i)).count() as u64
    }

    /// Gaps found for the first time.
    pub fn missing(&self) -> u64 {
        self.count(|i| i.new_gap)
    }

    /// Redeliveries asked for and accepted, or deliveries ingested.
    pub fn redelivered(&self) -> u64 {
        self.count(|i| matches!(i.outcome, HealOutcome::Redelivered | HealOutcome::Ingested))
    }

    /// Requests that failed in this run, and deliveries given up on for the first time.
    pub fn failed(&self) -> u64 {
        self.count(|i| i.new_failure)
    }
}

/// One endpoint's healer.
#[async_trait]
pub trait Healer: Send + Sync {
    /// A stable name (`heal:<provider>:<endpoint>`): its lease, cursor and records are
    /// stored under it.
    fn name(&self) -> &str;

    /// The endpoint healed.
    fn endpoint(&self) -> &EndpointName;

    /// Time between scheduled runs.
    fn interval(&self) -> Duration;

    /// One run. Callers hold the healer's lease ([`run_guarded`] does).
    async fn run(&self, store: &dyn Store, options: &RunOptions) -> Result<HealReport, HealError>;
}

/// The healers of a configuration.
#[derive(Clone, Default)]
pub struct Healers {
    healers: Vec<Arc<dyn Healer>>,
}

impl std::fmt::Debug for Healers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.healers.iter().map(|h| h.name()))
            .finish()
    }
}

impl Healers {
    /// Builds one healer per settings entry with the named connections' clients. Calls no
    /// service.
    pub fn build(settings: &[HealSettings], connections: &Connections) -> Result<Self, HealError> {
        let mut healers: Vec<Arc<dyn Healer>> = Vec::new();
        for s in settings {
            let config = |message: String| HealError::Config {
                endpoint: s.endpoint.to_string(),
                message,
            };
            let healer: Arc<dyn Healer> = match &s.target {
                HealTarget::Github(hook) => {
                    let client = connections
                        .github("heal", &s.connection)
                        .map_err(|e| config(e.to_string()))?;
                    Arc::new(
                        GithubHealer::new(s, client, hook.clone())
                            .map_err(|e| config(e.to_string()))?,
                    )
                }
                HealTarget::Jira => {
                    let client = connections
                        .jira("heal", &s.connection)
                        .map_err(|e| config(e.to_string()))?;
                    Arc::new(JiraHealer::new(s, client).map_err(config)?)
                }
                HealTarget::Trello => {
                    let client = connections
                        .trello("heal", &s.connection)
                        .map_err(|e| config(e.to_string()))?;
                    Arc::new(TrelloMonitor::new(s, client).map_err(config)?)
                }
            };
            healers.push(healer);
        }
        Ok(Self { healers })
    }

    /// A set of the given healers.
    pub fn from_healers(healers: Vec<Arc<dyn Healer>>) -> Self {
        Self { healers }
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.healers.is_empty()
    }

    /// The healers.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Healer>> {
        self.healers.iter()
    }

    /// Runs each healer (of `endpoint`, or all) once, now, holding its lease as `holder`:
    /// for `hookbridge heal`. A healer another instance is running is waited for a while,
    /// then reports [`HealError::Busy`].
    pub async fn run_once(
        &self,
        store: &dyn Store,
        holder: &str,
        endpoint: Option<&EndpointName>,
        options: &RunOptions,
    ) -> Vec<(String, Result<HealReport, HealError>)> {
        let mut out = Vec::new();
        for healer in &self.healers {
            if endpoint.is_some_and(|e| e != healer.endpoint()) {
                continue;
            }
            // A server's run is short: wait for it rather than fail at once.
            let deadline = tokio::time::Instant::now() + BUSY_WAIT;
            let result = loop {
                match run_guarded(healer.as_ref(), store, holder, options).await {
                    Err(HealError::Busy { .. }) if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    other => break other,
                }
            };
            out.push((healer.name().to_owned(), result));
        }
        out
    }

    /// Runs every healer at once and then every interval, until
    /// [`RunningHealers::shutdown`].
    pub fn start(&self, store: Arc<dyn Store>, holder: impl Into<String>) -> RunningHealers {
        let holder: Arc<str> = Arc::from(holder.into());
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for healer in &self.healers {
            tasks.spawn(run_loop(
                healer.clone(),
                store.clone(),
                holder.clone(),
                stopped.clone(),
            ));
        }
        if !self.healers.is_empty() {
            tracing::info!(healers = ?self, "healers started");
        }
        RunningHealers { stop, tasks }
    }
}

/// Started healers.
pub struct RunningHealers {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningHealers {
    /// Stops them. A run in progress stops where it is and gives its lease back: what it
    /// had not recorded, the next run does again (a redelivery request sent but not yet
    /// recorded as answered is not repeated unless GitHub's log shows it failed).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn run_loop(
    healer: Arc<dyn Healer>,
    store: Arc<dyn Store>,
    holder: Arc<str>,
    mut stopped: watch::Receiver<bool>,
) {
    let interval = healer.interval();
    // The first run is at start-up, whoever ran last: a restart is when gaps are likely.
    let mut recent_window = None;
    let options = RunOptions::default();
    loop {
        let run = run_with_lease(
            healer.as_ref(),
            store.as_ref(),
            &holder,
            &options,
            recent_window,
        );
        let result = tokio::select! {
            result = run => Some(result),
            _ = stopped.wait_for(|stop| *stop) => None,
        };
        match result {
            None => {
                // Stopped mid-run: give the lease back now rather than when it expires.
                let _ = store.release_lease(healer.name(), &holder).await;
                return;
            }
            Some(Ok(Some(report))) => log_report(&report),
            Some(Ok(None)) => {
                tracing::debug!(
                    healer = healer.name(),
                    "another instance ran this healer recently"
                )
            }
            Some(Err(HealError::Busy { .. })) => {
                tracing::debug!(
                    healer = healer.name(),
                    "another instance is running this healer"
                )
            }
            Some(Err(error)) => tracing::warn!(healer = healer.name(), %error, "healer run failed"),
        }
        recent_window = Some(interval);
        let wait = interval + jitter(interval);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

/// Up to a tenth of the interval, so instances started together spread their runs.
fn jitter(interval: Duration) -> Duration {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        OffsetDateTime::now_utc()
            .unix_timestamp_nanos()
            .unsigned_abs(),
    );
    let tenth = (interval / 10).as_millis().max(1);
    Duration::from_millis(u64::try_from(u128::from(hasher.finish()) % tenth).unwrap_or(0))
}

fn log_report(report: &HealReport) {
    if report.items.is_empty() && report.notes.is_empty() {
        tracing::debug!(healer = %report.healer, scanned = report.scanned, "no gap found");
        return;
    }
    tracing::info!(
        healer = %report.healer,
        endpoint = %report.endpoint,
        scanned = report.scanned,
        missing = report.missing(),
        redelivered = report.redelivered(),
        failed = report.failed(),
        "healer run"
    );
    for item in &report.items {
        tracing::info!(healer = %report.healer, id = %item.id, summary = %item.summary, outcome = %item.outcome, "gap");
    }
    for note in &report.notes {
        tracing::info!(healer = %report.healer, "{note}");
    }
}

/// Runs `healer` once, now, while holding its lease as `holder` (released after); fails
/// with [`HealError::Busy`] if another holder has it. Counts the run in metrics unless it is
/// a dry run.
pub async fn run_guarded(
    healer: &dyn Healer,
    store: &dyn Store,
    holder: &str,
    options: &RunOptions,
) -> Result<HealReport, HealError> {
    match run_with_lease(healer, store, holder, options, None).await? {
        Some(report) => Ok(report),
        // Without a window a run is never skipped.
        None => Err(HealError::Busy {
            healer: healer.name().to_owned(),
        }),
    }
}

/// [`run_guarded`]; with `skip_if_ran_within`, a run is skipped (`Ok(None)`) when the
/// healer ran (on any instance) less than 90 % of that long ago.
async fn run_with_lease(
    healer: &dyn Healer,
    store: &dyn Store,
    holder: &str,
    options: &RunOptions,
    skip_if_ran_within: Option<Duration>,
) -> Result<Option<HealReport>, HealError> {
    let name = healer.name();
    let store_error = |source| HealError::Store {
        healer: name.to_owned(),
        source,
    };
    let now = OffsetDateTime::now_utc();
    if !store
        .try_lease(name, holder, LEASE_TTL, now)
        .await
        .map_err(store_error)?
    {
        return Err(HealError::Busy {
            healer: name.to_owned(),
        });
    }
    let last_run_key = format!("{name}:last_run");
    if let Some(window) = skip_if_ran_within {
        let last = store
            .state(STATE_RULE, &last_run_key)
            .await
            .map_err(store_error)?
            .and_then(|v| v.as_i64());
        let recent = window.mul_f64(0.9);
        let ran_recently = last.is_some_and(|last| {
            let age = now.unix_timestamp() - last;
            age >= 0 && u64::try_from(age).is_ok_and(|age| age < recent.as_secs())
        });
        if ran_recently {
            let _ = store.release_lease(name, holder).await;
            return Ok(None);
        }
    }
    let result = healer.run(store, options).await;
    if !options.dry_run {
        let stamp = serde_json::json!(OffsetDateTime::now_utc().unix_timestamp());
        if let Err(error) = store.put_state(STATE_RULE, &last_run_key, &stamp).await {
            tracing::warn!(healer = name, %error, "cannot record the healer's run");
        }
        let endpoint = healer.endpoint().to_string();
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!(metric_names::RUNS, "endpoint" => endpoint.clone(), "outcome" => outcome)
            .increment(1);
        if let Ok(report) = &result {
            metrics::counter!(metric_names::MISSING, "endpoint" => endpoint.clone())
                .increment(report.missing());
            metrics::counter!(metric_names::REDELIVERED, "endpoint" => endpoint.clone())
                .increment(report.redelivered());
            metrics::counter!(metric_names::FAILED, "endpoint" => endpoint)
                .increment(report.failed());
        }
    }
    if let Err(error) = store.release_lease(name, holder).await {
        tracing::warn!(healer = name, %error, "cannot release the healer's lease");
    }
    result.map(Some)
}

/// A holder name for this process's leases: host, process id and a random part.
pub fn instance_holder() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!(
        "{host}-{}-{:06x}",
        std::process::id(),
        hasher.finish() & 0xff_ffff
    )
}

/// `endpoint`'s delivery URL matches `url`: the same text, ignoring a trailing `/`.
pub(crate) fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// A time for people: RFC 3339 in UTC, whole seconds.
pub(crate) fn when(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
