//! The router mounted inside another axum application, as the embedding docs show.

use std::sync::Arc;
use std::time::Duration;

use hookbridge_core::{EndpointName, Event, Provider, RuleError, RuleOutcome, Secret, SyncRule};
use hookbridge_providers::github::{Github, GithubOptions};
use hookbridge_server::{AppState, Endpoint, router};
use hookbridge_sync_engine::engine::{Engine, RuleContext};
use hookbridge_sync_engine::store::{JobFilter, JobState, SqliteStore, Store};

#[tokio::test]
async fn nested_router_receives_and_stores() {
    let dir = tempfile::tempdir().unwrap();
    let github = Github::new(vec![Secret::new("embed-secret")], GithubOptions::default()).unwrap();
    let signed = github
        .sign(
            "ping",
            br#"{"zen":"z","hook_id":7}"#,
            "embed-1",
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
    let endpoint = Endpoint {
        name: EndpointName::new("github"),
        provider: Arc::new(github),
        max_body_bytes: 1 << 20,
    };
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path().join("hb.db"), Default::default())
            .await
            .unwrap(),
    );
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "app" }))
        .nest(
            "/webhooks",
            router(AppState::new(
                store.clone(),
                [endpoint],
                Duration::from_secs(5),
            )),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "app"
    );
    let r = client
        .post(format!("http://{addr}/webhooks/hooks/github"))
        .headers(signed.headers)
        .body(signed.body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let found = store
        .find_deliveries(&"embed-1".into(), None)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        client
            .get(format!("http://{addr}/webhooks/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// A rule that wants every event and does nothing: enough to get jobs planned.
struct Everything;

#[async_trait::async_trait]
impl SyncRule<RuleContext> for Everything {
    fn name(&self) -> &str {
        "everything"
    }

    fn matches(&self, _event: &Event) -> bool {
        true
    }

    async fn apply(&self, _ctx: &RuleContext, _event: &Event) -> Result<RuleOutcome, RuleError> {
        Ok(RuleOutcome::Applied {
            actions: Vec::new(),
        })
    }
}

/// With an engine, the server stores a delivery with its jobs in the same transaction: by
/// the time the sender has its `202`, the delivery is dispatched and its job is waiting,
/// though the engine (and so its dispatcher) was never started. Without one, the delivery
/// waits, `received`, for a dispatcher.
#[tokio::test]
async fn a_delivery_is_stored_with_its_jobs_when_the_router_has_an_engine() {
    for with_engine in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let github =
            Arc::new(Github::new(vec![Secret::new("s")], GithubOptions::default()).unwrap());
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(dir.path().join("hb.db"), Default::default())
                .await
                .unwrap(),
        );
        let endpoint = Endpoint {
            name: EndpointName::new("github"),
            provider: github.clone(),
            max_body_bytes: 1 << 20,
        };
        let mut state = AppState::new(store.clone(), [endpoint], Duration::from_secs(5));
        if with_engine {
            let engine = Engine::builder(store.clone())
                .endpoint(EndpointName::new("github"), github.clone())
                .rule(Arc::new(Everything))
                .build();
            state = state.with_engine(engine);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(state);
        tokio::spawn(async move { axum::serve(listener, app).await });

        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../providers/samples/github/issues.opened.json"
        ))
        .unwrap();
        let signed = github
            .sign("issues", &body, "plan-1", time::OffsetDateTime::now_utc())
            .unwrap();
        let r = reqwest::Client::new()
            .post(format!("http://{addr}/hooks/github"))
            .headers(signed.headers)
            .body(signed.body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let stored = store.find_deliveries(&"plan-1".into(), None).await.unwrap();
        assert_eq!(stored.len(), 1);
        let jobs = store
            .list_jobs(&JobFilter {
                delivery_seq: Some(stored[0].seq),
                ..Default::default()
            })
            .await
            .unwrap();
        if with_engine {
            assert_eq!(stored[0].status, "dispatched");
            assert_eq!(jobs.len(), 1);
            assert_eq!(jobs[0].rule, "everything");
            assert_eq!(jobs[0].state, JobState::Pending);
            assert!(
                jobs[0]
                    .subject
                    .as_deref()
                    .is_some_and(|s| s.starts_with("github:")),
                "{:?}",
                jobs[0].subject
            );
        } else {
            assert_eq!(stored[0].status, "received");
            assert!(jobs.is_empty());
        }
        store.close().await;
    }
}
