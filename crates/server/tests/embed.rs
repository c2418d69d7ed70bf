//! The router mounted inside another axum application, as the embedding docs show.

use std::sync::Arc;
use std::time::Duration;

use hookbridge_core::{EndpointName, Provider, Secret};
use hookbridge_providers::github::{Github, GithubOptions};
use hookbridge_server::{AppState, Endpoint, router};
use hookbridge_sync_engine::store::{SqliteStore, Store};

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
