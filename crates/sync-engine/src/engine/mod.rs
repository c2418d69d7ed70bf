//! The engine: turns stored deliveries into jobs (one per matching rule), runs them with
//! leases, retries and dead letters, skips hookbridge's own echoes, and runs pollers.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn hookbridge_sync_engine::store::Store>,
//! #               github: std::sync::Arc<dyn hookbridge_core::Provider>,
//! #               rule: std::sync::Arc<dyn hookbridge_sync_engine::engine::Rule>) {
//! use hookbridge_sync_engine::engine::Engine;
//! let engine = Engine::builder(store)
//!     .endpoint("github", github)
//!     .rule(rule)
//!     .concurrency(8)
//!     .build();
//! let running = engine.start();
//! // ... later, on shutdown: finish what is running, then stop.
//! running.shutdown().await;
//! # }
//! ```

mod backoff;
mod circuit;
mod context;
mod declarative;
mod dispatch;
mod ratelimit;
mod replay;
mod source;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hookbridge_core::{EndpointName, Event, Provider, RawDelivery, SyncRule};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::store::{Dispatch, Store};

pub use backoff::Backoff;
pub use circuit::{CircuitConfig, CircuitState, CircuitStatus};
pub use context::{Call, Clients, RuleContext, report_status};
pub use declarative::{
    ActionSpec, DeclarativeRule, OneOrMany, RuleSpec, RuleSpecError, Scalar, When,
};
pub use dispatch::{DryRun, DryRunError, RuleDryRun};
pub use ratelimit::{RateLimit, RateLimiter};
pub use replay::{
    DiffLine, DiffSide, ReplayDiff, ReplayError, ReplayFilter, ReplayReport, ReplayStatus,
    RuleDiff, replay, select_deliveries,
};
pub use source::{Poll, PollError, Source};

/// A sync rule as the engine runs it: with a [`RuleContext`].
pub trait Rule: SyncRule<RuleContext> {}
impl<T: SyncRule<RuleContext> + ?Sized> Rule for T {}

/// An account of hookbridge's own at a provider: events it caused are skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelfActor {
    /// The provider kind, e.g. `github`.
    pub provider: String,
    /// The login, account id or name as the provider reports the actor.
    pub name: String,
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Jobs run at once.
    pub concurrency: usize,
    /// Attempts before a job is dead-lettered.
    pub max_attempts: u32,
    /// Retry spacing.
    pub backoff: Backoff,
    /// How long a claimed job is held; a worker that dies releases it when this expires.
    /// A rule running longer than half of it is cancelled and retried.
    pub lease: Duration,
    /// How often the engine looks for work it was not woken for (retries coming due, other
    /// instances' deliveries).
    pub poll_interval: Duration,
    /// How long an echo mark counts.
    pub echo_ttl: Duration,
    /// Accounts whose events are skipped.
    pub self_actors: Vec<SelfActor>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            max_attempts: 8,
            backoff: Backoff::default(),
            lease: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            echo_ttl: Duration::from_secs(600),
            self_actors: Vec::new(),
        }
    }
}

/// Builds an [`Engine`].
pub struct EngineBuilder {
    store: Arc<dyn Store>,
    providers: HashMap<EndpointName, Arc<dyn Provider>>,
    rules: Vec<Arc<dyn Rule>>,
    sources: Vec<Arc<dyn Source>>,
    clients: Clients,
    limits: Vec<(String, RateLimit)>,
    config: EngineConfig,
    worker_id: Option<String>,
    circuit: Option<CircuitConfig>,
}

impl EngineBuilder {
    /// Parses deliveries of `endpoint` with `provider` (the same provider the server
    /// verifies that endpoint with).
    pub fn endpoint(
        mut self,
        endpoint: impl Into<EndpointName>,
        provider: Arc<dyn Provider>,
    ) -> Self {
        self.providers.insert(endpoint.into(), provider);
        self
    }

    /// Adds a rule. Rule names must be unique.
    pub fn rule(mut self, rule: Arc<dyn Rule>) -> Self {
        self.rules.push(rule);
        self
    }

    /// Adds a poller.
    pub fn source(mut self, source: Arc<dyn Source>) -> Self {
        self.sources.push(source);
        self
    }

    /// API clients for rules.
    pub fn clients(mut self, clients: Clients) -> Self {
        self.clients = clients;
        self
    }

    /// Limits the calls rules make to `target` through [`RuleContext::perform`].
    pub fn rate_limit(mut self, target: impl Into<String>, limit: RateLimit) -> Self {
        self.limits.push((target.into(), limit));
        self
    }

    /// Jobs run at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.config.concurrency = n.max(1);
        self
    }

    /// All settings at once.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// This instance's worker id (default: host-pid-random), recorded on claimed jobs.
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// Turns on circuit breakers per target (the services rules call through
    /// [`RuleContext::perform`] and [`RuleContext::perform_call`]): see [`CircuitConfig`].
    /// Off unless called (`failures = 0` also turns them off).
    pub fn circuit_breaker(mut self, config: CircuitConfig) -> Self {
        self.circuit = Some(config);
        self
    }

    /// The engine.
    pub fn build(self) -> Engine {
        let worker_id = self.worker_id.unwrap_or_else(default_worker_id);
        let downstream = Arc::new(circuit::Downstream::new(self.circuit));
        Engine {
            inner: Arc::new(Inner {
                store: self.store,
                providers: self.providers,
                rules: self.rules,
                sources: self.sources,
                // Rule contexts find the circuit breakers and their job's notes here.
                clients: self
                    .clients
                    .with(circuit::DownstreamHandle(downstream.clone())),
                downstream,
                limiter: Arc::new(RateLimiter::new(self.limits)),
                config: self.config,
                worker_id,
            }),
        }
    }
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) providers: HashMap<EndpointName, Arc<dyn Provider>>,
    pub(crate) rules: Vec<Arc<dyn Rule>>,
    pub(crate) sources: Vec<Arc<dyn Source>>,
    pub(crate) clients: Clients,
    pub(crate) downstream: Arc<circuit::Downstream>,
    pub(crate) limiter: Arc<RateLimiter>,
    pub(crate) config: EngineConfig,
    pub(crate) worker_id: String,
}

impl Inner {
    pub(crate) fn rule(&self, name: &str) -> Option<&Arc<dyn Rule>> {
        self.rules.iter().find(|r| r.name() == name)
    }

    pub(crate) fn is_self_actor(&self, event: &Event) -> bool {
        let Some(actor) = event.actor() else {
            return false;
        };
        self.config.self_actors.iter().any(|me| {
            me.provider == event.provider().as_str()
                && (me.name == actor.name || actor.id.as_deref() == Some(me.name.as_str()))
        })
    }

    pub(crate) fn context(
        &self,
        rule: &str,
        job: Option<crate::store::JobId>,
        dry_run: bool,
    ) -> RuleContext {
        RuleContext {
            store: self.store.clone(),
            rule: rule.to_owned(),
            job,
            dry_run,
            echo_ttl: self.config.echo_ttl,
            clients: self.clients.clone(),
            limiter: self.limiter.clone(),
            actions: std::sync::Mutex::new(Vec::new()),
        }
    }
}

/// Turns deliveries into applied rules. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// A builder over `store`.
    pub fn builder(store: Arc<dyn Store>) -> EngineBuilder {
        EngineBuilder {
            store,
            providers: HashMap::new(),
            rules: Vec::new(),
            sources: Vec::new(),
            clients: Clients::default(),
            limits: Vec::new(),
            config: EngineConfig::default(),
            worker_id: None,
            circuit: None,
        }
    }

    /// The names of the rules, in registration order.
    pub fn rule_names(&self) -> Vec<String> {
        self.inner
            .rules
            .iter()
            .map(|r| r.name().to_owned())
            .collect()
    }

    /// Starts the dispatcher, the workers and the pollers on the current tokio runtime.
    pub fn start(&self) -> RunningEngine {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(dispatch::run(self.inner.clone(), stopped.clone()));
        tasks.spawn(worker::run(self.inner.clone(), stopped.clone()));
        for source in &self.inner.sources {
            tasks.spawn(worker::run_source(
                self.inner.clone(),
                source.clone(),
                stopped.clone(),
            ));
        }
        tracing::info!(
            worker = %self.inner.worker_id,
            rules = self.inner.rules.len(),
            sources = self.inner.sources.len(),
            concurrency = self.inner.config.concurrency,
            "engine started"
        );
        RunningEngine { stop, tasks }
    }

    /// Decides the dispatch of a delivery being received: parses it with its endpoint's
    /// provider and creates a job for each rule that matches, or says why there is none.
    ///
    /// The server stores the delivery with this plan in one transaction
    /// ([`Store::insert_dispatched`]), which saves the dispatcher reading the delivery back
    /// and writing it a second time. A delivery stored without one is planned by the
    /// dispatcher the same way.
    pub fn plan(&self, raw: &RawDelivery, provider_kind: &str) -> Dispatch {
        dispatch::plan(&self.inner, raw, provider_kind)
    }

    /// What the rules would do with a stored delivery, without doing it.
    pub async fn dry_run(&self, seq: i64) -> Result<DryRun, DryRunError> {
        dispatch::dry_run(&self.inner, seq).await
    }

    /// The circuit of every target called since the engine started, by target (empty when
    /// the circuit breaker is off).
    pub fn circuits(&self) -> Vec<CircuitStatus> {
        self.inner
            .downstream
            .circuits
            .as_ref()
            .map(|c| c.snapshot())
            .unwrap_or_default()
    }

    /// The circuit breaker's settings, when it is on.
    pub fn circuit_config(&self) -> Option<CircuitConfig> {
        self.inner.downstream.circuits.as_ref().map(|c| c.config())
    }

    /// This instance's worker id.
    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }
}

/// A started engine; [`shutdown`](RunningEngine::shutdown) stops it.
pub struct RunningEngine {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningEngine {
    /// Stops taking work, waits for running jobs to finish, and returns.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        tracing::info!("engine stopped");
    }
}

fn default_worker_id() -> String {
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

/// Waits until woken, the interval passes, or the engine stops. `true` when stopping.
pub(crate) async fn idle(
    notified: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    interval: Duration,
    stopped: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        () = notified => false,
        () = tokio::time::sleep(interval) => false,
        _ = stopped.wait_for(|stop| *stop) => true,
    }
}
