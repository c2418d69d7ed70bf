//! The `serve` loop: open the store, bind, serve until SIGINT/SIGTERM, drain, close.

use std::io::Write as _;
use std::sync::Arc;

use std::time::Duration;

use hookbridge_sync_engine::engine::Engine;
use hookbridge_sync_engine::store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::{AppState, Config, Endpoint, router};

/// How long start-up waits for a provider's first refresh (e.g. Travis CI's public key)
/// before serving anyway; `/readyz` stays unready until it succeeds.
const FIRST_REFRESH_WAIT: Duration = Duration::from_secs(10);

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration's rules are invalid.
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    /// The server failed while running.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the server with `config` until SIGINT or SIGTERM, then stops accepting, lets
/// in-flight deliveries finish (up to the configured grace period), and closes the store so
/// that everything acknowledged is committed.
///
/// Prints `hookbridge listening on http://ADDR` on stdout once ready to serve.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    // Built once: the `/oauth/` routes and the connections using the logins share it.
    let oauth = crate::oauth::OAuth::from_connections(&config.connections)?.map(Arc::new);
    let store = config.store.open().await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    let endpoints: Vec<_> = config.endpoints.keys().map(|n| n.to_string()).collect();
    prepare_endpoints(store.as_ref(), config.endpoints.values()).await?;
    let services = Arc::new(crate::services::Services::build_with_oauth(
        &config,
        store.clone(),
        oauth.clone(),
    )?);
    let engine = build_engine(&config, store.clone(), &services)?;
    let running = engine.start();
    let healers = start_healers(&config, store.clone(), &services)?;
    let monitor = start_monitor(&config, store.clone(), &engine, &services)?;
    let ui = crate::ui::UiSettings::from_config(&config);
    let state = AppState::new(
        store.clone(),
        config.endpoints.into_values(),
        config.body_timeout,
    )
    .with_admin(Some(engine), config.admin_token)
    .with_oauth(oauth)
    .with_services(services)
    .with_ui(ui);
    let (mut refreshers, first_round) = spawn_refreshers(&state);
    let app = router(state.clone());
    wait_ready(&state, first_round).await;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut server = tokio::spawn(accept_loop(
        listener,
        app,
        stop_rx,
        config.header_timeout,
        config.max_connections,
    ));

    let shutdown = shutdown_signal();
    tracing::info!(%addr, endpoints = ?endpoints, store = %config.store, "hookbridge ready");
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "hookbridge listening on http://{addr}");
        let _ = out.flush();
    }

    let result = tokio::select! {
        joined = &mut server => Some(joined),
        () = shutdown => None,
    };
    let result = match result {
        Some(joined) => joined.map_err(|e| ServeError::Io(std::io::Error::other(e)))?,
        None => {
            tracing::info!(grace = ?config.shutdown_grace, "shutting down: finishing in-flight requests");
            state.begin_shutdown();
            let _ = stop_tx.send(true);
            match tokio::time::timeout(config.shutdown_grace, &mut server).await {
                Ok(joined) => joined.map_err(|e| ServeError::Io(std::io::Error::other(e)))?,
                Err(_) => {
                    tracing::warn!("grace period over: closing remaining connections");
                    server.abort();
                    Ok(())
                }
            }
        }
    };
    refreshers.abort_all();
    healers.shutdown().await;
    monitor.abort();
    running.shutdown().await;
    store.close().await;
    tracing::info!("hookbridge stopped");
    result.map_err(ServeError::Io)
}

/// Accepts connections until told to stop, then waits for the open ones to finish their
/// requests. Served with hyper-util directly rather than `axum::serve`, for the timeout
/// on reading request headers: without it, a client that sends headers one byte at a time
/// (slowloris) holds a connection forever.
///
/// At most `max_connections` connections are served at once. The loop takes a permit before
/// it accepts, so beyond the cap new connections wait in the kernel's accept queue (their
/// clients' connect timeouts apply) instead of being accepted and dropped; each closed
/// connection lets one more in.
async fn accept_loop(
    listener: TcpListener,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
    header_timeout: Duration,
    max_connections: usize,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(
        max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut saturated = false;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                saturated = false;
                permit
            }
            Err(_) => {
                if !saturated {
                    // Once per episode, not per waiting connection.
                    tracing::warn!(
                        max_connections,
                        "connection limit reached: new connections wait to be accepted"
                    );
                    saturated = true;
                }
                tokio::select! {
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    _ = stop.wait_for(|stop| *stop) => break,
                }
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let (stream, _peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The engine of a configuration: its endpoints' providers, its rules and settings.
pub fn build_engine(
    config: &Config,
    store: Arc<dyn Store>,
    services: &crate::services::Services,
) -> Result<Engine, ServeError> {
    // An HTTP client loads the system's root certificates: only for declarative rules.
    let declarative = if config.rules.is_empty() {
        Vec::new()
    } else {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ServeError::Io(std::io::Error::other(e)))?;
        config.build_rules(&http)?
    };
    let mut builder = Engine::builder(store).config(config.engine.clone());
    for endpoint in config.endpoints.values() {
        builder = builder.endpoint(endpoint.name.clone(), endpoint.provider.clone());
    }
    let mut names = std::collections::BTreeSet::new();
    let integration_rules = services
        .integrations()
        .iter()
        .flat_map(|i| i.rules.iter().cloned());
    for rule in declarative.into_iter().chain(integration_rules) {
        if !names.insert(rule.name().to_owned()) {
            return Err(crate::ConfigError::Invalid {
                key: "rules",
                message: format!("two rules are named {:?}", rule.name()),
            }
            .into());
        }
        builder = builder.rule(rule);
    }
    for integration in services.integrations() {
        for (endpoint, provider) in &integration.endpoints {
            builder = builder.endpoint(endpoint.clone(), provider.clone());
        }
        for source in &integration.sources {
            builder = builder.source(source.clone());
        }
    }
    // Rules written in Rust find the configured clients here.
    builder = builder.clients(
        hookbridge_sync_engine::engine::Clients::default().with(services.connections().clone()),
    );
    for (target, limit) in &config.rate_limits {
        builder = builder.rate_limit(target.clone(), *limit);
    }
    builder = builder.circuit_breaker(config.circuit);
    Ok(builder.build())
}

/// Starts the operations monitor: the gauges read from the store, and the alerts of
/// `[alerts]` (see [`crate::metrics::alerts`]).
fn start_monitor(
    config: &Config,
    store: Arc<dyn Store>,
    engine: &Engine,
    services: &crate::services::Services,
) -> Result<tokio::task::JoinHandle<()>, ServeError> {
    crate::metrics::alerts::start(&config.alerts, store, engine.clone(), services).map_err(|e| {
        crate::ConfigError::Invalid {
            key: "alerts.target",
            message: e.to_string(),
        }
        .into()
    })
}

/// Restores the secrets endpoints learned in handshakes.
async fn prepare_endpoints<'a>(
    store: &dyn Store,
    endpoints: impl Iterator<Item = &'a Endpoint>,
) -> Result<(), StoreError> {
    for endpoint in endpoints {
        if let Some(secret) = store.learned_secret(&endpoint.name).await?
            && endpoint.provider.learn_secret(secret)
        {
            tracing::info!(endpoint = %endpoint.name, "restored the secret learned in its handshake");
        }
    }
    Ok(())
}

/// Runs each provider's refresh (fetching keys) now and then on its interval, retrying
/// failures with backoff. Waits up to [`FIRST_REFRESH_WAIT`] for the first round.
fn spawn_refreshers(state: &AppState) -> (JoinSet<()>, mpsc::Receiver<()>) {
    let mut tasks = JoinSet::new();
    let (first_round, done) = mpsc::channel(state.endpoints().count().max(1));
    for endpoint in state.endpoints() {
        if endpoint.provider.refresh().is_none() {
            continue;
        }
        let endpoint = endpoint.clone();
        let first_round = first_round.clone();
        tasks.spawn(async move {
            let mut backoff = Duration::from_secs(1);
            let mut first_round = Some(first_round);
            loop {
                let Some(refresh) = endpoint.provider.refresh() else {
                    return;
                };
                let result = refresh.await;
                if let Some(tx) = first_round.take() {
                    let _ = tx.send(()).await;
                }
                match result {
                    Ok(()) => {
                        tracing::info!(endpoint = %endpoint.name, "provider refreshed");
                        backoff = Duration::from_secs(1);
                        tokio::time::sleep(endpoint.provider.refresh_interval()).await;
                    }
                    Err(error) => {
                        tracing::warn!(endpoint = %endpoint.name, %error, ?backoff, "provider refresh failed; deliveries are refused until it succeeds");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(300));
                    }
                }
            }
        });
    }
    (tasks, done)
}

/// Waits until every refresher has made its first attempt, or the time is up.
async fn wait_ready(state: &AppState, mut first_round: mpsc::Receiver<()>) {
    let deadline = tokio::time::Instant::now() + FIRST_REFRESH_WAIT;
    // Every refresher holds a sender until its first attempt; `None` once all are done.
    while tokio::time::timeout_at(deadline, first_round.recv())
        .await
        .is_ok_and(|r| r.is_some())
    {}
    if let Some(ep) = state.endpoints().find(|ep| !ep.provider.is_ready()) {
        tracing::warn!(endpoint = %ep.name, "serving before every endpoint can verify: its deliveries get 503 until then; see /readyz");
    }
}

/// SIGINT or SIGTERM. The handlers are installed when this is created, so create it
/// before announcing readiness: a signal sent right after would otherwise kill the process
/// with the default action instead of shutting it down gracefully.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                _ => {
                    tracing::warn!("cannot install signal handlers; stop with SIGKILL");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Starts the endpoints' healers (`heal = { ... }`): each runs now, then on its interval,
/// one instance at a time. See `hookbridge_sync_engine::heal`.
fn start_healers(
    config: &Config,
    store: Arc<dyn Store>,
    services: &crate::services::Services,
) -> Result<hookbridge_sync_engine::heal::RunningHealers, ServeError> {
    let healers = config.build_healers(services.connections())?;
    Ok(healers.start(store, hookbridge_sync_engine::heal::instance_holder()))
}
