//! Embedding hookbridge in an existing axum application, with a custom rule.
//!
//! The application keeps its own routes; hookbridge's router is nested under `/webhooks`,
//! so GitHub delivers to `POST /webhooks/hooks/github`. The engine runs beside it and
//! applies `LabelNewIssues` to every opened issue: a desired-state rule that records which
//! issues it has seen in the rule state and would label them through an API client.
//!
//! ```sh
//! GITHUB_WEBHOOK_SECRET=s3cret cargo run -p hookbridge-examples --example embed
//! # in another shell: sign and send a sample delivery
//! GITHUB_WEBHOOK_SECRET=s3cret cargo run -p hookbridge-server -- send --provider github \
//!     --secret-env GITHUB_WEBHOOK_SECRET --event issues.opened --to http://127.0.0.1:3000/webhooks/hooks/github
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::routing::get;
use hookbridge_core::{EndpointName, Event, RuleError, RuleOutcome, Secret, SyncRule};
use hookbridge_providers::github::events::GithubEvent;
use hookbridge_providers::github::{Github, GithubOptions};
use hookbridge_server::{AppState, Endpoint, router};
use hookbridge_sync_engine::engine::{Engine, RuleContext};
use hookbridge_sync_engine::store::{SqliteOptions, SqliteStore, Store};

/// Triages every newly opened issue once.
struct LabelNewIssues;

#[async_trait]
impl SyncRule<RuleContext> for LabelNewIssues {
    fn name(&self) -> &str {
        "label-new-issues"
    }

    fn matches(&self, event: &Event) -> bool {
        event.name().as_str() == "issues.opened"
    }

    async fn apply(&self, ctx: &RuleContext, event: &Event) -> Result<RuleOutcome, RuleError> {
        let Some(GithubEvent::Issues(issues)) = event.payload::<GithubEvent>() else {
            return Ok(RuleOutcome::Skipped {
                reason: "not an issues event".into(),
            });
        };
        let key = format!("triaged:{}", issues.issue.number);
        // Desired state: a second run for the same issue changes nothing.
        if ctx.state(&key).await?.is_some() {
            return Ok(RuleOutcome::Skipped {
                reason: "already triaged".into(),
            });
        }
        let title = issues.issue.title.clone();
        ctx.perform(
            "github",
            format!("add label needs-triage to #{}", issues.issue.number),
            async move {
                // A real rule calls the GitHub API client here (with ctx.idempotency_key()).
                tracing::info!(%title, "labelling");
                Ok(())
            },
        )
        .await?;
        ctx.put_state(&key, &serde_json::json!(true)).await?;
        Ok(RuleOutcome::Applied { actions: vec![] })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();

    let secret = std::env::var("GITHUB_WEBHOOK_SECRET")
        .map_err(|_| "set GITHUB_WEBHOOK_SECRET to the webhook's secret")?;
    let github = Arc::new(Github::new(
        vec![Secret::new(secret)],
        GithubOptions::default(),
    )?);
    let endpoint = Endpoint {
        name: EndpointName::new("github"),
        provider: github.clone(),
        max_body_bytes: 25 * 1024 * 1024,
    };

    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open("embed-data/hookbridge.db", SqliteOptions::default()).await?);
    let engine = Engine::builder(store.clone())
        .endpoint("github", github)
        .rule(Arc::new(LabelNewIssues))
        .build();
    let running = engine.start();
    // With the engine, each delivery is stored with its jobs in one transaction.
    let state =
        AppState::new(store.clone(), [endpoint], Duration::from_secs(10)).with_engine(engine);

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
    running.shutdown().await;
    store.close().await;
    Ok(())
}
