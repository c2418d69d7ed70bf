//! The `travis-chat` integration on a real engine and SQLite store, with wiremock chat
//! services: routes with event filters and defaults, fan-out, dropping repositories
//! without routes, runtime routes whose secrets are never shown, retries that never post
//! twice, events derived as Travis CI derives them, restarts, the endpoint filter.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hookbridge_core::{DeliveryId, EndpointName, Secret};
use hookbridge_providers::api::RetryPolicy;
use hookbridge_providers::sinks::SinkOptions;
use hookbridge_providers::sinks::matrix::MatrixRoom;
use hookbridge_providers::sinks::slack::SlackWebhook;
use hookbridge_sync_engine::engine::{Backoff, Engine, EngineConfig, RunningEngine};
use hookbridge_sync_engine::integrations::travis_chat::{NewRoute, RouteSink, TravisChat};
use hookbridge_sync_engine::integrations::{self, Connections, Handle, IntegrationConfig};
use hookbridge_sync_engine::store::{
    InsertOutcome, JobFilter, JobState, NewDelivery, SqliteStore, Store,
};
use time::OffsetDateTime;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const WEBHOOK_SECRET: &str = "whsec_dGVzdC1yb3V0ZS1zaWduaW5nLXNlY3JldA==";

fn options() -> SinkOptions {
    SinkOptions {
        retry: RetryPolicy {
            attempts: 1,
            base: Duration::from_millis(10),
            max_wait: Duration::from_secs(1),
        },
        timeout: Duration::from_secs(5),
    }
}

fn fast_config() -> EngineConfig {
    EngineConfig {
        max_attempts: 5,
        backoff: Backoff {
            base: Duration::from_millis(20),
            max: Duration::from_millis(200),
        },
        lease: Duration::from_secs(10),
        poll_interval: Duration::from_millis(50),
        ..EngineConfig::default()
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    running: Option<RunningEngine>,
    chat: Arc<TravisChat>,
    slack: MockServer,
    matrix: MockServer,
}

impl Setup {
    async fn start(config: serde_json::Value) -> Setup {
        Setup::start_with(config, 200).await
    }

    /// Slack answers `slack_status` the first two times, then 200.
    async fn start_with(config: serde_json::Value, slack_status: u16) -> Setup {
        let slack = MockServer::start().await;
        if slack_status != 200 {
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(slack_status))
                .up_to_n_times(2)
                .mount(&slack)
                .await;
        }
        Mock::given(method("POST"))
            .and(path("/services/T0/B0/SLACKSECRET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&slack)
            .await;
        let matrix = MockServer::start().await;
        Mock::given(method("PUT"))
            .and(path_regex(
                "^/_matrix/client/v3/rooms/.*/send/m.room.message/.*$",
            ))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!({"event_id": "$e"})),
            )
            .mount(&matrix)
            .await;
        let connections = Connections::default()
            .with_notifier(
                "slack",
                Arc::new(
                    SlackWebhook::with_options(
                        Secret::new(format!("{}/services/T0/B0/SLACKSECRET", slack.uri())),
                        options(),
                    )
                    .unwrap(),
                ),
            )
            .with_notifier(
                "matrix",
                Arc::new(
                    MatrixRoom::with_options(
                        &matrix.uri(),
                        "!ops:example.org",
                        Secret::new("matrix-token"),
                        options(),
                    )
                    .unwrap(),
                ),
            );
        let config: IntegrationConfig = serde_json::from_value(config).unwrap();
        let integration = integrations::build("travis", config, &connections).unwrap();
        let Handle::TravisChat(chat) = integration.handle.clone() else {
            panic!("not a travis-chat handle")
        };
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(dir.path().join("hb.db"), Default::default())
                .await
                .unwrap(),
        );
        let parser = hookbridge_providers::parser("travis").unwrap();
        let mut builder = Engine::builder(store.clone())
            .endpoint("travis", parser.clone())
            .endpoint("travis-other", parser)
            .config(fast_config());
        for rule in integration.rules {
            builder = builder.rule(rule);
        }
        let running = builder.build().start();
        Setup {
            _dir: dir,
            store,
            running: Some(running),
            chat,
            slack,
            matrix,
        }
    }

    async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
        self.store.close().await;
    }

    /// Stores a notification as the server would, on `endpoint`; returns its sequence.
    async fn deliver_on(&self, endpoint: &str, json: &serde_json::Value) -> i64 {
        let payload = serde_json::to_string(json).unwrap();
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload)
            .finish();
        let at = json["finished_at"].as_str().unwrap_or("none").to_owned();
        let delivery = NewDelivery {
            endpoint: EndpointName::new(endpoint),
            provider: "travis".into(),
            delivery_id: DeliveryId::new(format!(
                "{}:{}:{at}",
                json["id"],
                json["state"].as_str().unwrap()
            )),
            event_type: "build".into(),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: Bytes::from(body),
            received_at: OffsetDateTime::now_utc(),
        };
        match self.store.insert_delivery(delivery).await.unwrap() {
            InsertOutcome::Inserted { seq } => seq,
            InsertOutcome::Duplicate => panic!("duplicate delivery"),
        }
    }

    async fn deliver(&self, json: &serde_json::Value) -> i64 {
        self.deliver_on("travis", json).await
    }

    /// Waits until the delivery's job is finished (done, skipped or dead); its state and
    /// the actions of its last attempt.
    async fn finished(&self, seq: i64) -> (JobState, Vec<String>) {
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
            if let [job] = jobs.as_slice()
                && matches!(
                    job.state,
                    JobState::Done | JobState::Skipped | JobState::Dead
                )
            {
                let (_, attempts) = self.store.job(job.id).await.unwrap().unwrap();
                let actions = attempts
                    .last()
                    .map(|a| a.actions.clone())
                    .unwrap_or_default();
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
            .filter(|r| r.url.path() == "/services/T0/B0/SLACKSECRET")
            .map(|r| {
                serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    async fn matrix_requests(&self) -> Vec<(String, String)> {
        self.matrix
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| {
                let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                (
                    r.url.path().rsplit('/').next().unwrap().to_owned(),
                    body["body"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

fn sample(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../providers/samples/travis/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn in_repo(mut json: serde_json::Value, owner: &str, name: &str) -> serde_json::Value {
    json["repository"]["owner_name"] = owner.into();
    json["repository"]["name"] = name.into();
    json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_filter_fan_out_and_drop_unrouted_repositories() {
    let setup = Setup::start(serde_json::json!({
        "kind": "travis-chat",
        "targets": ["slack"],
        "routes": [
            {"repo": "acme/*"},
            {"repo": "acme/billing-service", "targets": ["matrix"], "events": ["failed", "broken", "still_failing"]},
        ],
    }))
    .await;

    // Fixed: in the defaults (slack), not in the matrix route's filter.
    let (state, _) = setup
        .finished(setup.deliver(&sample("build.fixed")).await)
        .await;
    assert_eq!(state, JobState::Done);
    assert_eq!(setup.slack_texts().await.len(), 1);
    assert!(setup.matrix_requests().await.is_empty());
    assert!(setup.slack_texts().await[0].starts_with(
        "[Travis CI] acme/billing-service #1187 (main) fixed · Grace Hopper: Fix flaky clock"
    ));

    // Broken: both.
    setup
        .finished(setup.deliver(&sample("build.broken")).await)
        .await;
    assert_eq!(setup.slack_texts().await.len(), 2);
    let matrix = setup.matrix_requests().await;
    assert_eq!(matrix.len(), 1);
    assert!(
        matrix[0]
            .1
            .starts_with("[Travis CI] acme/billing-service #1186 (main) broken"),
        "{}",
        matrix[0].1
    );

    // Pending: routed, but no route wants it.
    let (state, actions) = setup
        .finished(setup.deliver(&sample("build.pending")).await)
        .await;
    assert_eq!(state, JobState::Done);
    assert_eq!(
        actions,
        ["dropped: no route of acme/billing-service wants `pending`"]
    );

    // Another owner: no route at all; accepted, done, dropped.
    let other = in_repo(sample("build.failed"), "octo", "tools");
    let (state, actions) = setup.finished(setup.deliver(&other).await).await;
    assert_eq!(state, JobState::Done);
    assert_eq!(actions, ["dropped: no route for octo/tools"]);
    assert_eq!(setup.slack_texts().await.len(), 2);
    assert_eq!(setup.matrix_requests().await.len(), 1);
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_routes_and_defaults_are_stored_and_never_show_secrets() {
    let sink = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/in/team-token"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&sink)
        .await;
    let setup = Setup::start(serde_json::json!({
        "kind": "travis-chat",
        "routes": [{"repo": "acme/billing-service", "targets": ["slack"]}],
    }))
    .await;
    let store = setup.store.as_ref();
    let chat = &setup.chat;

    // Unknown targets and events are refused, naming them.
    let bad = chat
        .add_route(
            store,
            NewRoute {
                repo: "octo/app".into(),
                targets: vec!["nowhere".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(bad.contains("nowhere"), "{bad}");
    let bad = chat
        .add_route(
            store,
            NewRoute {
                repo: "octo/app".into(),
                targets: vec!["slack".into()],
                events: Some(vec!["exploded".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(bad.contains("exploded"), "{bad}");

    // A route with a signed webhook of its own, every event.
    let added = chat
        .add_route(
            store,
            NewRoute {
                repo: "octo/*".into(),
                targets: vec!["team-hook".into()],
                events: Some(vec!["*".into()]),
                sink: Some(RouteSink::Webhook {
                    url: format!("{}/in/team-token", sink.uri()),
                    secret: Secret::new(WEBHOOK_SECRET),
                }),
            },
        )
        .await
        .unwrap();
    assert_eq!(added.len(), 1);
    let listed = chat.routes(store, None).await.unwrap();
    assert_eq!(listed.len(), 2);
    let shown = format!(
        "{} {:?} {}",
        serde_json::to_string(&listed).unwrap(),
        listed,
        listed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    for secret in [WEBHOOK_SECRET, "team-token", "SLACKSECRET"] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
    assert!(
        shown.contains("signed webhook to http://127.0.0.1"),
        "{shown}"
    );

    // A build of octo/app reaches the route's own webhook, signed.
    let octo = in_repo(sample("build.pending"), "octo", "app");
    setup.finished(setup.deliver(&octo).await).await;
    let received = sink.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    assert!(received[0].headers.get("webhook-signature").is_some());
    let body: serde_json::Value = serde_json::from_slice(&received[0].body).unwrap();
    assert!(
        body["data"]["text"]
            .as_str()
            .unwrap()
            .contains("octo/app #1184 (main) pending")
    );

    // Defaults set at runtime apply to routes without their own events; reset goes back.
    let defaults = chat
        .set_defaults(store, Some(vec!["canceled".into()]), None)
        .await
        .unwrap();
    assert_eq!(defaults.events, ["canceled"]);
    assert!(defaults.events_set_at_runtime);
    setup
        .finished(setup.deliver(&sample("build.canceled")).await)
        .await;
    assert_eq!(setup.slack_texts().await.len(), 1);
    let (_, actions) = setup
        .finished(setup.deliver(&sample("build.broken")).await)
        .await;
    assert_eq!(
        actions,
        ["dropped: no route of acme/billing-service wants `broken`"]
    );
    let defaults = chat.reset_defaults(store).await.unwrap();
    assert!(!defaults.events_set_at_runtime && defaults.events.contains(&"broken".to_owned()));

    // Configuration routes are not removed here; runtime ones are, and stay removed.
    let refused = chat
        .remove_routes(store, "acme/billing-service", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("configuration"), "{refused}");
    assert!(
        chat.remove_routes(store, "nobody/*", None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        chat.remove_routes(store, "octo/*", Some("team-hook"))
            .await
            .unwrap()
            .len(),
        1
    );
    let (_, actions) = setup
        .finished(
            setup
                .deliver(&in_repo(sample("build.failed"), "octo", "app"))
                .await,
        )
        .await;
    assert_eq!(actions, ["dropped: no route for octo/app"]);
    assert_eq!(sink.received_requests().await.unwrap().len(), 1);

    // The store is the source of truth: the stored routes hold the secret (to send with),
    // the listing never does.
    let stored = store.state("travis", "routes").await.unwrap().unwrap();
    assert_eq!(stored["routes"].as_array().unwrap().len(), 0);
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_target_is_retried_without_posting_twice_elsewhere() {
    let setup = Setup::start_with(
        serde_json::json!({
            "kind": "travis-chat",
            "routes": [{"repo": "acme/billing-service", "targets": ["matrix", "slack"], "events": ["*"]}],
        }),
        503,
    )
    .await;
    let (state, _) = setup
        .finished(setup.deliver(&sample("build.failed")).await)
        .await;
    assert_eq!(state, JobState::Done);
    let jobs = setup.store.list_jobs(&JobFilter::default()).await.unwrap();
    assert_eq!(jobs[0].attempts, 3, "two 503s, then success");
    assert_eq!(setup.matrix_requests().await.len(), 1, "matrix got it once");
    assert_eq!(
        setup.slack_texts().await.len(),
        3,
        "two refused, one accepted"
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_derived_like_travis_when_the_message_is_missing() {
    let setup = Setup::start(serde_json::json!({
        "kind": "travis-chat",
        "targets": ["slack"],
        "events": ["*"],
        "routes": [{"repo": "acme/*"}],
    }))
    .await;
    let base = sample("build.fixed");
    let steps = [
        ("passed", "passed"),
        ("failed", "broken"),
        ("failed", "still failing"),
        ("passed", "fixed"),
    ];
    for (i, (state, _)) in steps.iter().enumerate() {
        let mut build = base.clone();
        build["id"] = (1000 + i).into();
        build["number"] = format!("{}", 10 + i).into();
        build["state"] = (*state).into();
        build["status_message"] = serde_json::Value::Null;
        build["result_message"] = serde_json::Value::Null;
        setup.finished(setup.deliver(&build).await).await;
    }
    let texts = setup.slack_texts().await;
    assert_eq!(texts.len(), 4);
    for (i, (_, label)) in steps.iter().enumerate() {
        assert!(
            texts[i].contains(&format!("#{} (main) {label} ", 10 + i)),
            "{}",
            texts[i]
        );
    }
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_build_notifies_again() {
    let setup = Setup::start(serde_json::json!({
        "kind": "travis-chat",
        "routes": [{"repo": "acme/*", "targets": ["matrix"]}],
    }))
    .await;
    let first = sample("build.failed");
    let mut restart = first.clone();
    restart["started_at"] = "2024-05-17T13:00:00Z".into();
    restart["finished_at"] = "2024-05-17T13:04:00Z".into();
    restart["status_message"] = "Still Failing".into();
    setup.finished(setup.deliver(&first).await).await;
    setup.finished(setup.deliver(&restart).await).await;
    let sent = setup.matrix_requests().await;
    assert_eq!(sent.len(), 2);
    assert_ne!(sent[0].0, sent[1].0, "each run has its own transaction id");
    assert!(
        sent[1]
            .1
            .contains("#1188 (feature/ledger-export) still failing"),
        "{}",
        sent[1].1
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_configured_endpoint_is_served() {
    let setup = Setup::start(serde_json::json!({
        "kind": "travis-chat",
        "endpoint": "travis",
        "targets": ["slack"],
        "routes": [{"repo": "*"}],
    }))
    .await;
    let (state, _) = setup
        .finished(
            setup
                .deliver_on("travis-other", &sample("build.fixed"))
                .await,
        )
        .await;
    assert_eq!(state, JobState::Skipped);
    assert!(setup.slack_texts().await.is_empty());
    let (state, _) = setup
        .finished(setup.deliver(&sample("build.fixed")).await)
        .await;
    assert_eq!(state, JobState::Done);
    assert_eq!(setup.slack_texts().await.len(), 1);
    setup.stop().await;
}

#[test]
fn configuration_errors_name_the_key() {
    let connections = Connections::default();
    let error = |config: serde_json::Value| {
        let config: IntegrationConfig = serde_json::from_value(config).unwrap();
        integrations::build("travis", config, &connections)
            .unwrap_err()
            .to_string()
    };
    assert!(
        error(serde_json::json!({"kind": "travis-chat", "events": ["success"]})).contains("events")
    );
    assert!(
        error(serde_json::json!({"kind": "travis-chat", "targets": ["ops"]})).contains("`ops`")
    );
    let e = error(serde_json::json!({"kind": "travis-chat", "routes": [{"repo": "acme"}]}));
    assert!(e.contains("routes[0]"), "{e}");
    let e = error(serde_json::json!({"kind": "travis-chat", "routes": [
        {"repo": "acme/app", "slack_url": {"env": "HOOKBRIDGE_TEST_UNSET_SLACK_URL"}, "targets": ["team"]}
    ]}));
    assert!(
        e.contains("routes[0]") && e.contains("HOOKBRIDGE_TEST_UNSET_SLACK_URL"),
        "{e}"
    );
    let unknown = serde_json::from_value::<IntegrationConfig>(
        serde_json::json!({"kind": "travis-chat", "route": []}),
    );
    assert!(unknown.is_err());
}
