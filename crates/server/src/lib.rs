//! The hookbridge server: the webhook router, its configuration, metrics and the `serve`
//! loop. The `hookbridge` binary is a thin CLI over this crate.
//!
//! Mount [`router`] in your own axum application to receive webhooks there:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use hookbridge_server::{AppState, Config, router};
//! use hookbridge_sync_engine::store::Store;
//!
//! let config = Config::load("hookbridge.toml".as_ref())?;
//! let store: Arc<dyn Store> = config.store.open().await?;
//! let state = AppState::new(store, config.endpoints.into_values(), config.body_timeout);
//! let app = axum::Router::new().nest("/webhooks", router(state));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod admin;
pub mod config;
pub mod connections;
pub mod hooks;
mod ingest;
pub mod metrics;
pub mod oauth;
mod serve;
pub mod services;
pub mod telemetry;
pub mod ui;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use hookbridge_sync_engine::engine::Engine;
use hookbridge_sync_engine::store::Store;

pub use config::{Config, ConfigError, Endpoint};
pub use serve::{ServeError, build_engine, serve};

/// What the router's handlers share: the endpoints and the store.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    endpoints: HashMap<String, Endpoint>,
    store: Arc<dyn Store>,
    engine: Option<Engine>,
    admin_token: Option<hookbridge_core::Secret>,
    oauth: Option<Arc<oauth::OAuth>>,
    services: Option<Arc<services::Services>>,
    ui: ui::Ui,
    body_timeout: Duration,
    shutting_down: AtomicBool,
}

impl AppState {
    /// State for a router serving `endpoints`, storing into `store`, and giving each client
    /// `body_timeout` to send a whole body.
    pub fn new(
        store: Arc<dyn Store>,
        endpoints: impl IntoIterator<Item = Endpoint>,
        body_timeout: Duration,
    ) -> Self {
        let endpoints = endpoints
            .into_iter()
            .map(|ep| (ep.name.as_str().to_owned(), ep))
            .collect();
        Self {
            inner: Arc::new(Inner {
                endpoints,
                store,
                engine: None,
                admin_token: None,
                oauth: None,
                services: None,
                ui: ui::Ui::new(ui::UiSettings::default()),
                body_timeout,
                shutting_down: AtomicBool::new(false),
            }),
        }
    }

    /// Plans each delivery's dispatch with `engine` as it is received ([`Engine::plan`]):
    /// the delivery is stored with its status and its jobs in one transaction
    /// ([`Store::insert_dispatched`]), so the engine's dispatcher never has to read it back.
    /// Without an engine, deliveries are stored `received` and a running engine's dispatcher
    /// plans them. Call before the state is cloned into a router.
    pub fn with_engine(mut self, engine: Engine) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.engine = Some(engine);
        }
        self
    }

    /// Serves the admin API under `/admin`, authenticated with `token`, and lets it dry-run
    /// `engine`'s rules; the engine also plans deliveries as they are received (see
    /// [`with_engine`](AppState::with_engine)). Call before the state is cloned into a router.
    pub fn with_admin(
        mut self,
        engine: Option<Engine>,
        token: Option<hookbridge_core::Secret>,
    ) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.engine = engine;
            inner.admin_token = token;
        }
        self
    }

    /// Serves the OAuth logins of `oauth` under `/oauth/{connection}/login|callback`. Call
    /// before the state is cloned into a router.
    pub fn with_oauth(mut self, oauth: Option<Arc<oauth::OAuth>>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.oauth = oauth;
        }
        self
    }

    /// Gives the admin API the configuration's clients and integrations (their operations,
    /// such as Travis routes). Call before the state is cloned into a router.
    pub fn with_services(mut self, services: Arc<services::Services>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.services = Some(services);
        }
        self
    }

    /// The configuration's clients and integrations, when given.
    pub fn services(&self) -> Option<&Arc<services::Services>> {
        self.inner.services.as_ref()
    }

    /// Gives the dashboard (`/ui`, on with an admin token) what it shows beyond the store:
    /// connections and declared hooks, and whether its cookie needs `Secure`. Call before
    /// the state is cloned into a router.
    pub fn with_ui(mut self, settings: ui::UiSettings) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.ui = ui::Ui::new(settings);
        }
        self
    }

    pub(crate) fn ui(&self) -> &ui::Ui {
        &self.inner.ui
    }

    pub(crate) fn admin_token(&self) -> Option<&hookbridge_core::Secret> {
        self.inner.admin_token.as_ref()
    }

    pub(crate) fn oauth(&self) -> Option<&oauth::OAuth> {
        self.inner.oauth.as_deref()
    }

    pub(crate) fn engine(&self) -> Option<&Engine> {
        self.inner.engine.as_ref()
    }

    /// The store deliveries go to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Marks the server as shutting down: `/readyz` starts failing so load balancers stop
    /// sending, while in-flight requests finish.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }

    /// The endpoints served.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.inner.endpoints.values()
    }

    pub(crate) fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.inner.endpoints.get(name)
    }

    pub(crate) fn body_timeout(&self) -> Duration {
        self.inner.body_timeout
    }
}

/// The HTTP routes: `/hooks/{endpoint}`, `/healthz`, `/readyz` and `/metrics`; `/admin/...`
/// and the dashboard `/ui/...` with an admin token, `/oauth/{connection}/...` with OAuth
/// login connections.
pub fn router(state: AppState) -> Router {
    // Install the recorder now rather than on the first scrape, so the first deliveries
    // are counted.
    let _ = metrics::handle();
    let admin = state
        .inner
        .admin_token
        .clone()
        .map(|token| admin::router(state.clone(), token));
    let oauth = state
        .inner
        .oauth
        .is_some()
        .then(|| oauth::router(state.clone()));
    let ui = state
        .inner
        .admin_token
        .is_some()
        .then(|| ui::router(state.clone()));
    let router = Router::new()
        .route("/hooks/{endpoint}", any(ingest::receive))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(state);
    let router = match admin {
        Some(admin) => router.nest("/admin", admin),
        None => router,
    };
    let router = match oauth {
        Some(oauth) => router.nest("/oauth", oauth),
        None => router,
    };
    // The dashboard signs in with the admin token: without one, /ui does not exist.
    match ui {
        Some(ui) => router.merge(ui),
        None => router,
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.inner.shutting_down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    if let Some(ep) = state
        .inner
        .endpoints
        .values()
        .find(|ep| !ep.provider.is_ready())
    {
        let message = format!("endpoint {} cannot verify deliveries yet\n", ep.name);
        return (StatusCode::SERVICE_UNAVAILABLE, message).into_response();
    }
    match state.store().check_health().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    // Queue depth by state is read at scrape time: it is the store's truth, shared by every
    // instance, not a per-process count.
    if let Ok(counts) = state.store().job_counts().await {
        for (job_state, n) in counts {
            ::metrics::gauge!("hookbridge_jobs", "state" => job_state.as_str()).set(n as f64);
        }
    }
    match metrics::handle() {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "metrics go to the application's own recorder\n",
        )
            .into_response(),
    }
}
