//! The `serve` loop: open the store, bind, serve until SIGINT/SIGTERM, drain, close.

use std::io::Write as _;
use std::sync::Arc;

use hookbridge_sync_engine::store::{SqliteOptions, SqliteStore, Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::{AppState, Config, router};

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
    let options = SqliteOptions {
        synchronous: config.synchronous,
        ..SqliteOptions::default()
    };
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.store_path, options).await?);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    let endpoints: Vec<_> = config.endpoints.keys().map(|n| n.to_string()).collect();
    let state = AppState::new(
        store.clone(),
        config.endpoints.into_values(),
        config.body_timeout,
    );
    let app = router(state.clone());

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut graceful = stop_rx.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = graceful.wait_for(|stop| *stop).await;
    });
    let mut server = tokio::spawn(async move { server.await });

    tracing::info!(%addr, endpoints = ?endpoints, store = %config.store_path.display(), "hookbridge ready");
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "hookbridge listening on http://{addr}");
        let _ = out.flush();
    }

    let result = tokio::select! {
        joined = &mut server => Some(joined),
        () = shutdown_signal() => None,
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
    store.close().await;
    tracing::info!("hookbridge stopped");
    result.map_err(ServeError::Io)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
