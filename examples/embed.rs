//! Embedding hookbridge in an existing axum application.
//!
//! The application keeps its own routes; hookbridge's router is nested under `/webhooks`,
//! so GitHub delivers to `POST /webhooks/hooks/github`. Endpoints are built in code here
//! instead of read from a TOML file.
//!
//! ```sh
//! GITHUB_WEBHOOK_SECRET=s3cret cargo run -p hookbridge-examples --example embed
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hookbridge_core::{EndpointName, Secret};
use hookbridge_providers::github::{Github, GithubOptions};
use hookbridge_server::{AppState, Endpoint, router};
use hookbridge_sync_engine::store::{SqliteOptions, SqliteStore, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();

    let secret = std::env::var("GITHUB_WEBHOOK_SECRET")
        .map_err(|_| "set GITHUB_WEBHOOK_SECRET to the webhook's secret")?;
    let github = Github::new(vec![Secret::new(secret)], GithubOptions::default())?;
    let endpoint = Endpoint {
        name: EndpointName::new("github"),
        provider: Arc::new(github),
        max_body_bytes: 25 * 1024 * 1024,
    };

    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open("embed-data/hookbridge.db", SqliteOptions::default()).await?);
    let state = AppState::new(store.clone(), [endpoint], Duration::from_secs(10));

    let app = Router::new()
        .route("/", get(|| async { "my application\n" }))
        .nest("/webhooks", router(state));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    store.close().await;
    Ok(())
}
