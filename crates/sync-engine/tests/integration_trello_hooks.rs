//! The `trello-hooks` integration on a real engine and SQLite store: the default and
//! configured templates posted to a wiremock Slack, Rust handlers given the typed action
//! (an `updateCard` typed by what changed), retries that repeat no step that succeeded,
//! replays that run only what had not run, and the board and action filters.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hookbridge_core::{DeliveryId, EndpointName, RuleError, Secret};
use hookbridge_providers::api::RetryPolicy;
use hookbridge_providers::sinks::SinkOptions;
use hookbridge_providers::sinks::slack::SlackWebhook;
use hookbridge_providers::trello::events::CardUpdate;
use hookbridge_sync_engine::engine::{Backoff, Engine, EngineConfig, RuleContext, RunningEngine};
use hookbridge_sync_engine::integrations::trello_hooks::{
    TrelloAction, TrelloHandler, TrelloHooks,
};
use hookbridge_sync_engine::integrations::{self, Connections, Handle, IntegrationConfig};
use hookbridge_sync_engine::store::{
    InsertOutcome, JobFilter, JobState, NewDelivery, SqliteStore, Store,
};
use time::OffsetDateTime;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    running: Option<RunningEngine>,
    hooks: Arc<TrelloHooks>,
    slack: MockServer,
}

impl Setup {
    async fn start(config: serde_json::Value) -> Setup {
        let slack = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/services/T0/B0/TRELLO"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&slack)
            .await;
        let options = SinkOptions {
            retry: RetryPolicy {
                attempts: 1,
                base: Duration::from_millis(10),
                max_wait: Duration::from_secs(1),
            },
            timeout: Duration::from_secs(5),
        };
        let connections = Connections::default().with_notifier(
            "team",
            Arc::new(
                SlackWebhook::with_options(
                    Secret::new(format!("{}/services/T0/B0/TRELLO", slack.uri())),
                    options,
                )
                .unwrap(),
            ),
        );
        let config: IntegrationConfig = serde_json::from_value(config).unwrap();
        let integration = integrations::build("trello", config, &connections).unwrap();
        let Handle::TrelloHooks(hooks) = integration.handle.clone() else {
            panic!("not a trello-hooks handle")
        };
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(dir.path().join("hb.db"), Default::default())
                .await
                .unwrap(),
        );
        let mut builder = Engine::builder(store.clone())
            .endpoint("trello", hookbridge_providers::parser("trello").unwrap())
            .config(EngineConfig {
                max_attempts: 5,
                backoff: Backoff {
                    base: Duration::from_millis(20),
                    max: Duration::from_millis(200),
                },
                poll_interval: Duration::from_millis(50),
                ..EngineConfig::default()
            });
        for rule in integration.rules {
            builder = builder.rule(rule);
        }
        Setup {
            _dir: dir,
            running: Some(builder.build().start()),
            store,
            hooks,
            slack,
        }
    }

    async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
        self.store.close().await;
    }

    async fn deliver(&self, json: &serde_json::Value) -> i64 {
        let delivery = NewDelivery {
            endpoint: EndpointName::new("trello"),
            provider: "trello".into(),
            delivery_id: DeliveryId::new(json["action"]["id"].as_str().unwrap()),
            event_type: json["action"]["type"].as_str().unwrap().into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(serde_json::to_vec(json).unwrap()),
            received_at: OffsetDateTime::now_utc(),
        };
        match self.store.insert_delivery(delivery).await.unwrap() {
            InsertOutcome::Inserted { seq } => seq,
            InsertOutcome::Duplicate => panic!("duplicate delivery"),
        }
    }

    /// Waits until every job of the delivery is finished; the last one's state and actions.
    async fn finished(&self, seq: i64, jobs_expected: usize) -> (JobState, Vec<String>) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let jobs = self
                .store
                .list_jobs(&JobFilter {
                    delivery_seq: Some(seq),
                    ..Default::default()
                })
                .await
                .unwrap();
            if jobs.len() == jobs_expected
                && jobs
                    .iter()
                    .all(|j| matches!(j.state, JobState::Done | JobState::Skipped | JobState::Dead))
            {
                // Newest first.
                let job = &jobs[0];
                let (_, attempts) = self.store.job(job.id).await.unwrap().unwrap();
                let mut actions = attempts
                    .last()
                    .map(|a| a.actions.clone())
                    .unwrap_or_default();
                if let Some(error) = attempts.last().and_then(|a| a.error.clone()) {
                    actions.push(format!("error: {error}"));
                }
                return (job.state, actions);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "delivery {seq} not processed: {jobs:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn slack_texts(&self) -> Vec<String> {
        self.slack
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| {
                serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }
}

fn sample(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../providers/samples/trello/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn with_id(mut json: serde_json::Value, id: &str) -> serde_json::Value {
    json["action"]["id"] = id.into();
    json
}

/// Records what it was given; fails transiently the first `fail` times.
struct Recorder {
    name: String,
    seen: Arc<Mutex<Vec<String>>>,
    fail: Mutex<u32>,
}

impl Recorder {
    fn new(name: &str, fail: u32) -> (Recorder, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        (
            Recorder {
                name: name.into(),
                seen: seen.clone(),
                fail: Mutex::new(fail),
            },
            seen,
        )
    }
}

#[async_trait]
impl TrelloHandler for Recorder {
    fn name(&self) -> &str {
        &self.name
    }

    fn wants(&self, action: &TrelloAction<'_>) -> bool {
        action.card().is_some()
    }

    async fn handle(&self, ctx: &RuleContext, action: &TrelloAction<'_>) -> Result<(), RuleError> {
        {
            let mut fail = self.fail.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err(RuleError::Transient {
                    message: "downstream busy".into(),
                    retry_after: None,
                });
            }
        }
        let seen = match action.card_update() {
            Some(CardUpdate::MovedBetweenLists { from, to }) => format!(
                "moved {} -> {}",
                from.name.as_deref().unwrap_or("?"),
                to.name.as_deref().unwrap_or("?")
            ),
            Some(other) => format!("updated: {}", other.name()),
            None => action.key(),
        };
        ctx.perform("recorder", seen.clone(), async { Ok(()) })
            .await?;
        self.seen.lock().unwrap().push(seen);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_and_configured_templates_reach_chat() {
    let setup = Setup::start(serde_json::json!({
        "kind": "trello-hooks",
        "notify": [{
            "targets": ["team"],
            "templates": {"createCard": "New card {card} ({card_url}) in {list} by {member}"},
        }],
    }))
    .await;
    // In the order they happened: an older action of a card after a newer one is stale.
    for name in [
        "createCard",
        "updateCard",
        "commentCard",
        "addLabelToCard",
        "updateCheckItemStateOnCard",
    ] {
        let (state, actions) = setup.finished(setup.deliver(&sample(name)).await, 1).await;
        assert_eq!(state, JobState::Done, "{name}: {actions:?}");
    }
    let texts = setup.slack_texts().await;
    assert!(
        texts[0].starts_with("New card Fix login redirect loop (https://trello.com/c/"),
        "{}",
        texts[0]
    );
    assert_eq!(
        texts[1],
        "Alice Martin moved Fix login redirect loop from To Do to Doing"
    );
    assert!(
        texts[2].starts_with("Alice Martin commented on Fix login redirect loop: "),
        "{}",
        texts[2]
    );
    assert!(
        texts[3].starts_with("Alice Martin added label "),
        "{}",
        texts[3]
    );
    assert!(
        texts[4].contains(" marked ") && texts[4].contains(" complete on Fix login"),
        "{}",
        texts[4]
    );
    assert!(
        texts.iter().all(|t| !t.contains(" - ")),
        "no placeholder left empty: {texts:?}"
    );

    // updateBoard has no template and `*` is not listed: kept in history, nothing posted.
    let (state, actions) = setup
        .finished(setup.deliver(&sample("updateBoard")).await, 1)
        .await;
    assert_eq!(state, JobState::Skipped, "{actions:?}");
    assert_eq!(setup.slack_texts().await.len(), 5);
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_by_action_key_and_board() {
    let setup = Setup::start(serde_json::json!({
        "kind": "trello-hooks",
        "boards": ["65e9a0b1c2d3e4f5a6b7c000"],
        "notify": [{"targets": ["team"], "actions": ["updateCard:moved", "updateCard:archived", "createList"]}],
    }))
    .await;
    let mut archived = with_id(sample("updateCard"), "a0000000000000000000000a");
    let data = &mut archived["action"]["data"];
    data.as_object_mut().unwrap().remove("listBefore");
    data.as_object_mut().unwrap().remove("listAfter");
    data["old"] = serde_json::json!({"closed": false});
    data["card"]["closed"] = true.into();
    let mut renamed = with_id(sample("updateCard"), "a0000000000000000000000b");
    let data = &mut renamed["action"]["data"];
    data.as_object_mut().unwrap().remove("listBefore");
    data.as_object_mut().unwrap().remove("listAfter");
    data["old"] = serde_json::json!({"name": "Fix login"});
    let mut elsewhere = with_id(sample("updateCard"), "a0000000000000000000000c");
    elsewhere["action"]["data"]["board"]["id"] = "ffffffffffffffffffffffff".into();

    setup
        .finished(setup.deliver(&sample("updateCard")).await, 1)
        .await;
    setup.finished(setup.deliver(&archived).await, 1).await;
    let (state, _) = setup.finished(setup.deliver(&renamed).await, 1).await;
    assert_eq!(state, JobState::Skipped, "renamed is not listed");
    let (state, actions) = setup.finished(setup.deliver(&elsewhere).await, 1).await;
    assert_eq!(state, JobState::Skipped, "{actions:?}");
    // createList has no card but a board: in.
    setup
        .finished(setup.deliver(&sample("createList")).await, 1)
        .await;
    let texts = setup.slack_texts().await;
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert_eq!(texts[1], "Alice Martin archived Fix login redirect loop");
    assert!(
        texts[2].starts_with("Alice Martin created list "),
        "{}",
        texts[2]
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_handlers_get_typed_actions_and_no_step_runs_twice() {
    let setup = Setup::start(serde_json::json!({
        "kind": "trello-hooks",
        "notify": [{"targets": ["team"], "actions": ["updateCard"]}],
    }))
    .await;
    let (flaky, flaky_seen) = Recorder::new("flaky", 2);
    setup.hooks.add_handler(flaky);
    assert_eq!(setup.hooks.handler_names(), ["flaky"]);

    let seq = setup.deliver(&sample("updateCard")).await;
    let (state, actions) = setup.finished(seq, 1).await;
    assert_eq!(state, JobState::Done, "{actions:?}");
    assert_eq!(actions, ["already notified team", "moved To Do -> Doing"]);
    assert_eq!(*flaky_seen.lock().unwrap(), ["moved To Do -> Doing"]);
    assert_eq!(
        setup.slack_texts().await.len(),
        1,
        "posted once across three attempts"
    );
    let jobs = setup.store.list_jobs(&JobFilter::default()).await.unwrap();
    assert_eq!(jobs[0].attempts, 3);

    // A handler added later runs when the history is replayed; what already ran does not.
    let (late, late_seen) = Recorder::new("late", 0);
    setup.hooks.add_handler(late);
    assert!(setup.store.replay_delivery(seq).await.unwrap());
    let (state, actions) = setup.finished(seq, 2).await;
    assert_eq!(state, JobState::Done, "{actions:?}");
    assert_eq!(*late_seen.lock().unwrap(), ["moved To Do -> Doing"]);
    assert_eq!(flaky_seen.lock().unwrap().len(), 1);
    assert_eq!(setup.slack_texts().await.len(), 1);
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_with_a_star_and_handlers_without_config() {
    let setup = Setup::start(serde_json::json!({
        "kind": "trello-hooks",
        "notify": [{"targets": ["team"], "actions": ["*"]}],
    }))
    .await;
    setup
        .finished(setup.deliver(&sample("updateBoard")).await, 1)
        .await;
    let texts = setup.slack_texts().await;
    assert_eq!(texts.len(), 1);
    assert!(
        texts[0].starts_with("Alice Martin: updateBoard on "),
        "{}",
        texts[0]
    );
    setup.stop().await;

    // A hooks manager built in code, with no configuration at all.
    let hooks = TrelloHooks::new("embedded");
    let (recorder, seen) = Recorder::new("rec", 0);
    hooks.add_handler(recorder);
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path().join("hb.db"), Default::default())
            .await
            .unwrap(),
    );
    let running = Engine::builder(store.clone())
        .endpoint("trello", hookbridge_providers::parser("trello").unwrap())
        .rule(hooks.rule())
        .config(EngineConfig {
            poll_interval: Duration::from_millis(50),
            ..EngineConfig::default()
        })
        .build()
        .start();
    let embedded = Setup {
        _dir: dir,
        store,
        running: Some(running),
        hooks,
        slack: MockServer::start().await,
    };
    let seq = embedded.deliver(&sample("commentCard")).await;
    embedded.finished(seq, 1).await;
    assert_eq!(*seen.lock().unwrap(), ["commentCard"]);
    embedded.stop().await;
}
