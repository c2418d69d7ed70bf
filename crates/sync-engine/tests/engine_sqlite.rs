//! The engine on the SQLite store.

mod engine;

use std::sync::Arc;

use engine::scenarios;
use hookbridge_sync_engine::store::{SqliteStore, Store};

async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("hb.db"), Default::default())
        .await
        .unwrap();
    (dir, Arc::new(store))
}

macro_rules! scenario {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_dir, store) = store().await;
            scenarios::$name(store.clone()).await;
            store.close().await;
        }
    )*};
}

scenario!(
    failing_then_succeeding_rule_is_retried,
    exhausted_attempts_dead_letter_and_replay,
    two_way_sync_stops_after_one_hop,
    own_actor_events_are_skipped,
    dry_run_records_without_acting,
    dead_worker_job_is_retried_and_applied_once,
    one_object_at_a_time_in_order,
    poller_feeds_the_inbox_without_duplicates,
    out_of_order_events_converge,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_events_over_fifty_objects_in_order() {
    let (_dir, store) = store().await;
    engine::ops::thousand_events_over_fifty_objects_in_order(store.clone(), "sqlite").await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_pauses_a_failing_target() {
    let (_dir, store) = store().await;
    engine::ops::circuit_breaker_pauses_a_failing_target(store.clone()).await;
    store.close().await;
}
