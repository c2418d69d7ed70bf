//! The engine on the PostgreSQL store: the same scenarios as on SQLite, and two engines
//! sharing one database.

mod engine;
mod pg;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use engine::scenarios::{self, fast_config, jobs_in, wait_until};
use engine::{Change, Svc, send};
use hookbridge_core::{Event, RuleError, RuleOutcome, SyncRule};
use hookbridge_sync_engine::engine::{Engine, RuleContext};
use hookbridge_sync_engine::store::{JobState, Store};
use pg::TestSchema;

macro_rules! scenario {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(schema) = TestSchema::new() else { return };
            let store: Arc<dyn Store> = Arc::new(schema.store().await);
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

/// Counts applications per delivery, and which engine applied each.
struct Counter {
    engine: &'static str,
    applied: Arc<Mutex<HashMap<String, Vec<&'static str>>>>,
}

#[async_trait]
impl SyncRule<RuleContext> for Counter {
    fn name(&self) -> &str {
        "count"
    }
    fn matches(&self, _: &Event) -> bool {
        true
    }
    async fn apply(&self, _ctx: &RuleContext, event: &Event) -> Result<RuleOutcome, RuleError> {
        let change = event.payload::<Change>().expect("svc payload");
        tokio::time::sleep(Duration::from_millis(1)).await;
        self.applied
            .lock()
            .unwrap()
            .entry(change.id.clone())
            .or_default()
            .push(self.engine);
        Ok(RuleOutcome::Applied { actions: vec![] })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_apply_each_of_1000_deliveries_once() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let a: Arc<dyn Store> = Arc::new(schema.store().await);
    let b: Arc<dyn Store> = Arc::new(schema.store().await);
    let applied = Arc::new(Mutex::new(HashMap::new()));
    let engine = |store: &Arc<dyn Store>, name: &'static str| {
        Engine::builder(store.clone())
            .endpoint("a", Arc::new(Svc))
            .rule(Arc::new(Counter {
                engine: name,
                applied: applied.clone(),
            }))
            .config(fast_config())
            .worker_id(name)
            .build()
            .start()
    };
    let first = engine(&a, "first");
    let second = engine(&b, "second");
    // Deliveries arrive on both instances, on 100 objects, concurrently.
    let mut senders = Vec::new();
    for part in 0..4 {
        let store = if part % 2 == 0 { a.clone() } else { b.clone() };
        senders.push(tokio::spawn(async move {
            for i in 0..250 {
                let n = part * 250 + i;
                send(
                    store.as_ref(),
                    "a",
                    &format!("d{n}"),
                    &format!("o{}", n % 100),
                    "n",
                    &n.to_string(),
                    "alice",
                )
                .await;
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    wait_until("1000 jobs done", Duration::from_secs(60), || async {
        jobs_in(a.as_ref(), JobState::Done).await.len() == 1000
    })
    .await;
    first.shutdown().await;
    second.shutdown().await;

    let applied = applied.lock().unwrap().clone();
    assert_eq!(applied.len(), 1000);
    let twice: Vec<_> = applied.iter().filter(|(_, by)| by.len() != 1).collect();
    assert!(twice.is_empty(), "applied more than once: {twice:?}");
    let by_second = applied.values().filter(|by| by[0] == "second").count();
    assert!(
        by_second > 50 && by_second < 950,
        "both engines took work: second applied {by_second}"
    );
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_events_over_fifty_objects_in_order() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(schema.store().await);
    engine::ops::thousand_events_over_fifty_objects_in_order(store.clone(), "postgres").await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_pauses_a_failing_target() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(schema.store().await);
    engine::ops::circuit_breaker_pauses_a_failing_target(store.clone()).await;
    store.close().await;
}
