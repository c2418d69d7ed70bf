//! A rule on Trello actions, written in Rust: hookbridge receives Trello's callbacks
//! (answering its `HEAD` check, verifying `X-Trello-Webhook`, keeping every callback), and
//! hands each action, typed, to `ShipWhenDone`. An `updateCard` arrives typed by what
//! changed, so the handler matches "moved to the Done list" directly.
//!
//! ```sh
//! export TRELLO_APP_SECRET=s3cret TRELLO_CALLBACK_URL=http://127.0.0.1:3000/webhooks/hooks/trello
//! cargo run -p hookbridge-examples --example trello_rule
//! # in another shell: sign the sample `updateCard` (a card moved between lists) as Trello
//! # does, over the body and the callback URL, and send it
//! printf '[endpoints.trello]\nprovider = "trello"\nsecret = { env = "TRELLO_APP_SECRET" }\ncallback_url = "%s"\n' \
//!     "$TRELLO_CALLBACK_URL" > trello-send.toml
//! cargo run -p hookbridge-server -- send --endpoint trello --config trello-send.toml \
//!     --event updateCard --to "$TRELLO_CALLBACK_URL"
//! ```
//!
//! The sample moves a card from "To Do" to "Doing": the handler does not want it. Edit
//! `listAfter.name` to "Done" in a copy and send it with `--body copy.json --event-type
//! updateCard` to see it ship. The same handler can be added to a configured `trello-hooks`
//! integration: take its `Handle::TrelloHooks` and call `add_handler`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use hookbridge_core::{EndpointName, RuleError, Secret};
use hookbridge_providers::trello::events::CardUpdate;
use hookbridge_providers::trello::{Trello, TrelloOptions};
use hookbridge_server::{AppState, Endpoint, router};
use hookbridge_sync_engine::engine::{Engine, RuleContext};
use hookbridge_sync_engine::integrations::trello_hooks::{
    TrelloAction, TrelloHandler, TrelloHooks,
};
use hookbridge_sync_engine::store::{SqliteOptions, SqliteStore, Store};

/// When a card reaches the "Done" list, ships it (here: logs it), once per card.
struct ShipWhenDone;

#[async_trait]
impl TrelloHandler for ShipWhenDone {
    fn name(&self) -> &str {
        "ship-when-done"
    }

    fn wants(&self, action: &TrelloAction<'_>) -> bool {
        matches!(
            action.card_update(),
            Some(CardUpdate::MovedBetweenLists { to, .. }) if to.name.as_deref() == Some("Done")
        )
    }

    async fn handle(&self, ctx: &RuleContext, action: &TrelloAction<'_>) -> Result<(), RuleError> {
        let Some(card) = action.card() else {
            return Ok(());
        };
        // Desired state: a replayed or repeated move ships nothing twice.
        let key = format!("shipped:{}", card.id);
        if ctx.state(&key).await?.is_some() {
            ctx.record(format!("card {} already shipped", card.id));
            return Ok(());
        }
        let name = card.name.clone().unwrap_or_else(|| card.id.clone());
        let who = action.member_name().unwrap_or_else(|| "someone".into());
        ctx.perform(
            "release",
            format!("ship {name} (moved to Done by {who})"),
            async {
                // A real handler calls a deploy API or a Trello client here, with
                // ctx.idempotency_key() where the service accepts one.
                tracing::info!(card = %name, by = %who, "shipping");
                Ok(())
            },
        )
        .await?;
        ctx.put_state(&key, &serde_json::json!(true)).await?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();

    let secret = std::env::var("TRELLO_APP_SECRET")
        .map_err(|_| "set TRELLO_APP_SECRET to the Trello application's secret")?;
    let callback_url = std::env::var("TRELLO_CALLBACK_URL").map_err(
        |_| "set TRELLO_CALLBACK_URL to the callback URL exactly as registered with Trello",
    )?;
    let trello = Arc::new(Trello::new(
        vec![Secret::new(secret)],
        TrelloOptions { callback_url },
    )?);
    let endpoint = Endpoint {
        name: EndpointName::new("trello"),
        provider: trello.clone(),
        max_body_bytes: 1024 * 1024,
    };

    // The hooks manager, with the Rust handler; more can be added while it runs.
    let hooks = TrelloHooks::new("trello");
    hooks.add_handler(ShipWhenDone);

    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open("trello-rule-data/hookbridge.db", SqliteOptions::default()).await?,
    );
    let running = Engine::builder(store.clone())
        .endpoint("trello", trello)
        .rule(hooks.rule())
        .build()
        .start();
    let state = AppState::new(store.clone(), [endpoint], Duration::from_secs(10));
    let app = Router::new().nest("/webhooks", router(state));

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
