//! The SQLite store against the shared conformance suite, plus what only SQLite has.

mod conformance;

use std::sync::Arc;

use hookbridge_core::DeliveryId;
use hookbridge_sync_engine::store::{InsertOutcome, SqliteOptions, SqliteStore, Store, StoreError};

async fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("nested/dir/hb.db"),
        SqliteOptions::default(),
    )
    .await
    .unwrap();
    (dir, store)
}

#[tokio::test]
async fn insert_is_idempotent_per_endpoint() {
    let (_dir, store) = fresh().await;
    conformance::insert_is_idempotent_per_endpoint(&store).await;
}

#[tokio::test]
async fn concurrent_inserts_each_land_once() {
    let (_dir, store) = fresh().await;
    conformance::concurrent_inserts_each_land_once(Arc::new(store)).await;
}

#[tokio::test]
async fn list_pages_newest_first() {
    let (_dir, store) = fresh().await;
    conformance::list_pages_newest_first(&store).await;
}

#[tokio::test]
async fn health_then_closed() {
    let (_dir, store) = fresh().await;
    conformance::health_then_closed(&store).await;
}

#[tokio::test]
async fn data_survives_reopen_and_migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hb.db");
    let store = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    store
        .insert_delivery(conformance::delivery("a", "kept"))
        .await
        .unwrap();
    store.close().await;

    let store = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    assert_eq!(
        store
            .insert_delivery(conformance::delivery("a", "kept"))
            .await
            .unwrap(),
        InsertOutcome::Duplicate
    );
    assert_eq!(
        store
            .find_deliveries(&DeliveryId::new("kept"), None)
            .await
            .unwrap()
            .len(),
        1
    );
    store.close().await;
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hb.db");
    SqliteStore::open(&path, SqliteOptions::default())
        .await
        .unwrap()
        .close()
        .await;
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let err = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 999, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn an_unusable_location_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = SqliteStore::open(file.join("hb.db"), SqliteOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot prepare the store"),
        "{err}"
    );
}

#[tokio::test]
async fn dispatch_creates_jobs_once() {
    let (_dir, store) = fresh().await;
    conformance::dispatch_creates_jobs_once(&store).await;
}

#[tokio::test]
async fn jobs_claim_finish_retry_dead_replay() {
    let (_dir, store) = fresh().await;
    conformance::jobs_claim_finish_retry_dead_replay(&store).await;
}

#[tokio::test]
async fn expired_lease_is_taken_again() {
    let (_dir, store) = fresh().await;
    conformance::expired_lease_is_taken_again(&store).await;
}

#[tokio::test]
async fn one_subject_runs_in_order() {
    let (_dir, store) = fresh().await;
    conformance::one_subject_runs_in_order(&store).await;
}

#[tokio::test]
async fn links_marks_cursors_leases_state_tokens_secrets() {
    let (_dir, store) = fresh().await;
    conformance::links_marks_cursors_leases_state_tokens_secrets(&store).await;
}

#[tokio::test]
async fn notifier_wakes_on_insert() {
    let (_dir, store) = fresh().await;
    conformance::notifier_wakes_on_insert(Arc::new(store)).await;
}

#[tokio::test]
async fn worker_lost_on_the_last_attempt_dead_letters_the_job() {
    let (_dir, store) = fresh().await;
    conformance::worker_lost_on_the_last_attempt_dead_letters_the_job(&store).await;
}

#[tokio::test]
async fn dashboard_search_buckets_and_oldest_unfinished() {
    let (_dir, store) = fresh().await;
    conformance::dashboard_search_buckets_and_oldest_unfinished(&store).await;
}

#[tokio::test]
async fn a_job_that_kills_its_worker_every_time_is_dead_lettered() {
    let (_dir, store) = fresh().await;
    conformance::a_job_that_kills_its_worker_every_time_is_dead_lettered(&store).await;
}

#[tokio::test]
async fn unfinished_replay_selection_pause_and_calls() {
    let (_dir, store) = fresh().await;
    conformance::unfinished_replay_selection_pause_and_calls(&store).await;
}

#[tokio::test]
async fn state_if_absent_is_won_once() {
    let (_dir, store) = fresh().await;
    let store: Arc<dyn Store> = Arc::new(store);
    conformance::state_if_absent_is_won_once(store.clone(), store).await;
}

#[tokio::test]
async fn planned_deliveries_commit_with_their_jobs() {
    let (_dir, store) = fresh().await;
    conformance::planned_deliveries_commit_with_their_jobs(Arc::new(store)).await;
}
