//! The PostgreSQL store against the shared conformance suite, plus what only a store shared
//! by several instances has: concurrent claims, dispatches and migrations, wake-ups across
//! instances, and connection errors without the password.
//!
//! Runs against the database at `HOOKBRIDGE_TEST_PG_URL`, each test in a fresh schema that
//! is dropped afterwards. Without that variable the tests are skipped, unless
//! `HOOKBRIDGE_REQUIRE_PG=1`, which makes them fail.

mod conformance;
mod pg;

use std::collections::{HashMap, HashSet};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookbridge_core::DeliveryId;
use hookbridge_sync_engine::store::{
    Attempt, DeliveryStatus, EchoMark, InsertOutcome, JobFilter, JobId, JobNext, JobState, NewJob,
    PostgresOptions, PostgresStore, Store, StoreError,
};
use pg::TestSchema;
use time::OffsetDateTime;

// ---- the conformance suite ----

#[tokio::test]
async fn insert_is_idempotent_per_endpoint() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    conformance::insert_is_idempotent_per_endpoint(&store).await;
    store.close().await;
}

#[tokio::test]
async fn concurrent_inserts_each_land_once() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = Arc::new(schema.store().await);
    conformance::concurrent_inserts_each_land_once(store.clone()).await;
    store.close().await;
}

#[tokio::test]
async fn list_pages_newest_first() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    conformance::list_pages_newest_first(&store).await;
    store.close().await;
}

#[tokio::test]
async fn health_then_closed() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    conformance::health_then_closed(&store).await;
}

#[tokio::test]
async fn dispatch_creates_jobs_once() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    conformance::dispatch_creates_jobs_once(&store).await;
    store.close().await;
}

#[tokio::test]
async fn jobs_claim_finish_retry_dead_replay() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    conformance::jobs_claim_finish_retry_dead_replay(&store).await;
    store.close().await;
}

#[tokio::test]
async fn expired_lease_is_taken_again() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    conformance::expired_lease_is_taken_again(&store).await;
    store.close().await;
}

#[tokio::test]
async fn one_subject_runs_in_order() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    conformance::one_subject_runs_in_order(&store).await;
    store.close().await;
}

#[tokio::test]
async fn links_marks_cursors_leases_state_tokens_secrets() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    conformance::links_marks_cursors_leases_state_tokens_secrets(&store).await;
    store.close().await;
}

#[tokio::test]
async fn notifier_wakes_on_insert() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = Arc::new(schema.store().await);
    conformance::notifier_wakes_on_insert(store.clone()).await;
    store.close().await;
}

// ---- what only PostgreSQL has ----

fn t(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).unwrap()
}

fn attempt(number: u32) -> Attempt {
    Attempt {
        number,
        started_at: t(0),
        finished_at: t(1),
        outcome: "applied".into(),
        error: None,
        actions: Vec::new(),
        calls: Vec::new(),
    }
}

async fn inserted(store: &dyn Store, endpoint: &str, id: &str) -> i64 {
    match store
        .insert_delivery(conformance::delivery(endpoint, id))
        .await
        .unwrap()
    {
        InsertOutcome::Inserted { seq } => seq,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn data_survives_reconnect_and_migrations_run_once() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    inserted(&store, "a", "kept").await;
    store.close().await;

    let store = schema.store().await;
    assert_eq!(store.schema(), schema.name);
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
    let mut conn = schema.raw().await;
    let versions: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM \"{}\".schema_migrations ORDER BY version",
        schema.name
    )))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(versions, [1, 2, 3]);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    schema.store().await.close().await;
    let mut conn = schema.raw().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{}\".schema_migrations (version, applied_at) VALUES (999, 0)",
        schema.name
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let err = PostgresStore::connect(&schema.url, schema.options())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 999, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_startup_migrates_once() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let schema = Arc::new(schema);
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let schema = schema.clone();
            tokio::spawn(async move { PostgresStore::connect(&schema.url, schema.options()).await })
        })
        .collect();
    let mut stores = Vec::new();
    for start in starts {
        stores.push(start.await.unwrap().expect("every instance starts"));
    }
    for store in &stores {
        store.check_health().await.unwrap();
    }
    inserted(&stores[0], "m", "1").await;
    assert_eq!(
        stores[3]
            .find_deliveries(&DeliveryId::new("1"), None)
            .await
            .unwrap()
            .len(),
        1
    );
    for store in &stores {
        store.close().await;
    }
    let mut conn = schema.raw().await;
    let applied: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM \"{}\".schema_migrations",
        schema.name
    )))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(applied, 3);
}

#[derive(Default)]
struct ClaimLog {
    /// Every claimed job id, in claim order (duplicates would show here).
    claimed: Vec<JobId>,
    /// Subjects whose job is running now.
    running: HashSet<String>,
    /// Per subject, the job ids in the order they were claimed.
    order: HashMap<String, Vec<JobId>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_claim_each_job_once() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let a: Arc<dyn Store> = Arc::new(schema.store().await);
    let b: Arc<dyn Store> = Arc::new(schema.store().await);
    // 200 jobs: 100 without a subject, 100 in 5 subjects that must run one at a time, in order.
    for i in 0..100 {
        let seq = inserted(&*a, "w", &i.to_string()).await;
        let jobs = [
            NewJob {
                rule: "free".into(),
                subject: None,
                max_attempts: 3,
            },
            NewJob {
                rule: "ordered".into(),
                subject: Some(format!("subject-{}", i % 5)),
                max_attempts: 3,
            },
        ];
        assert!(
            a.dispatch(seq, DeliveryStatus::Dispatched, &jobs, t(0))
                .await
                .unwrap()
        );
    }

    let log = Arc::new(Mutex::new(ClaimLog::default()));
    let mut workers = Vec::new();
    for n in 0..16 {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        let log = log.clone();
        workers.push(tokio::spawn(async move {
            let worker = format!("worker-{n}");
            loop {
                let claimed = store
                    .claim_jobs(&worker, 3, Duration::from_secs(600), t(1))
                    .await
                    .unwrap();
                if claimed.is_empty() {
                    break;
                }
                {
                    let mut log = log.lock().unwrap();
                    for c in &claimed {
                        log.claimed.push(c.job.id);
                        if let Some(subject) = &c.job.subject {
                            assert!(
                                log.running.insert(subject.clone()),
                                "two jobs of {subject} running at once"
                            );
                            log.order.entry(subject.clone()).or_default().push(c.job.id);
                        }
                    }
                }
                tokio::task::yield_now().await;
                for c in claimed {
                    assert_eq!(c.job.attempts, 1);
                    if let Some(subject) = &c.job.subject {
                        // Cleared before the job is finished: the next one of the subject
                        // cannot be claimed before that commits.
                        log.lock().unwrap().running.remove(subject);
                    }
                    assert!(
                        store
                            .finish_job(c.job.id, &worker, &attempt(1), JobNext::Done, t(2))
                            .await
                            .unwrap(),
                        "the claimer finishes its job"
                    );
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }

    let log = std::mem::take(&mut *log.lock().unwrap());
    let unique: HashSet<_> = log.claimed.iter().collect();
    assert_eq!(log.claimed.len(), 200, "every job claimed exactly once");
    assert_eq!(unique.len(), 200);
    assert_eq!(log.order.len(), 5);
    for (subject, ids) in &log.order {
        assert_eq!(ids.len(), 20);
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{subject} out of order"
        );
    }
    assert!(
        a.claim_jobs("late", 10, Duration::from_secs(60), t(3))
            .await
            .unwrap()
            .is_empty()
    );
    let counts = b.job_counts().await.unwrap();
    assert_eq!(counts, [(JobState::Done, 200)]);
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_dispatch_creates_jobs_once() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let a = Arc::new(schema.store().await);
    let b = Arc::new(schema.store().await);
    let jobs = vec![
        NewJob {
            rule: "r1".into(),
            subject: Some("s".into()),
            max_attempts: 3,
        },
        NewJob {
            rule: "r2".into(),
            subject: None,
            max_attempts: 3,
        },
    ];
    let mut seqs = Vec::new();
    for i in 0..20 {
        seqs.push(inserted(&*a, "d", &i.to_string()).await);
    }
    for &seq in &seqs {
        let (a2, b2, j1, j2) = (a.clone(), b.clone(), jobs.clone(), jobs.clone());
        let first = tokio::spawn(async move {
            a2.dispatch(seq, DeliveryStatus::Dispatched, &j1, t(0))
                .await
                .unwrap()
        });
        let second = tokio::spawn(async move {
            b2.dispatch(seq, DeliveryStatus::Dispatched, &j2, t(0))
                .await
                .unwrap()
        });
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        assert!(first ^ second, "exactly one dispatch of {seq} wins");
        let created = a
            .list_jobs(&JobFilter {
                delivery_seq: Some(seq),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(created.len(), 2, "jobs of {seq} created once");
    }
    assert!(b.undispatched(100).await.unwrap().is_empty());
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn echo_marks_and_leases_hold_across_instances() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let a: Arc<dyn Store> = Arc::new(schema.store().await);
    let b: Arc<dyn Store> = Arc::new(schema.store().await);
    for _ in 0..5 {
        a.put_echo_mark(&EchoMark {
            target: "jira:P-1".into(),
            field: "status".into(),
            value: "Done".into(),
            expires_at: t(600),
        })
        .await
        .unwrap();
    }
    let takers: Vec<_> = (0..20)
        .map(|n| {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                store
                    .take_echo_mark("jira:P-1", "status", "Done", t(1))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut taken = 0;
    for taker in takers {
        taken += usize::from(taker.await.unwrap());
    }
    assert_eq!(taken, 5, "each mark consumed exactly once");

    let ttl = Duration::from_secs(30);
    let (first, second) = tokio::join!(
        a.try_lease("poller", "instance-a", ttl, t(0)),
        b.try_lease("poller", "instance-b", ttl, t(0)),
    );
    assert!(
        first.unwrap() ^ second.unwrap(),
        "one holder of a new lease"
    );
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_wakes_the_other_instance() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let a = schema.store().await;
    // A long poll interval: only the notification can wake it in time.
    let b = PostgresStore::connect(
        &schema.url,
        PostgresOptions {
            poll_interval: Duration::from_secs(3600),
            ..schema.options()
        },
    )
    .await
    .unwrap();
    for round in 0..2 {
        let notify = b.notifier();
        let waiter = tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(2), notify.notified())
                .await
                .is_ok()
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        inserted(&a, "n", &round.to_string()).await;
        assert!(
            waiter.await.unwrap(),
            "round {round}: the other instance slept on"
        );
    }
    a.close().await;
    b.close().await;
}

/// The backends listening for wake-ups with this application name.
async fn listener_pids(conn: &mut sqlx::PgConnection, application_name: &str) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity
         WHERE application_name = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(application_name)
    .fetch_all(conn)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wake_up_listener_survives_a_lost_connection() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    // Tagged connections, to find this store's listener among other tests' connections.
    let separator = if schema.url.contains('?') { '&' } else { '?' };
    let url = format!("{}{separator}application_name={}", schema.url, schema.name);
    let a = schema.store().await;
    let b = PostgresStore::connect(
        &url,
        PostgresOptions {
            poll_interval: Duration::from_secs(3600),
            ..schema.options()
        },
    )
    .await
    .unwrap();
    let mut conn = schema.raw().await;
    let before = listener_pids(&mut conn, &schema.name).await;
    assert_eq!(before.len(), 1, "one listener: {before:?}");
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(before[0])
        .execute(&mut conn)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = listener_pids(&mut conn, &schema.name).await;
        if now.len() == 1 && now != before {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not listening again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let notify = b.notifier();
    let waiter = tokio::spawn(async move {
        tokio::time::timeout(Duration::from_secs(2), notify.notified())
            .await
            .is_ok()
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    inserted(&a, "n", "after-reconnect").await;
    assert!(
        waiter.await.unwrap(),
        "not woken after the listener reconnected"
    );
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn worker_lost_on_the_last_attempt_dead_letters_the_job() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    conformance::worker_lost_on_the_last_attempt_dead_letters_the_job(&store).await;
    store.close().await;
}

#[tokio::test]
async fn connect_errors_never_show_the_password() {
    // Nothing listens on port 1: the connection is refused.
    for url in [
        "postgres://hookbridge:Sup3r-S3cret%21pw@127.0.0.1:1/test",
        "postgres://hookbridge:Sup3r-S3cret!pw@127.0.0.1:1/test?sslmode=disable",
        "postgres://hookbridge:Sup3r-S3cret!pw@127.0.0.1:notaport/test",
        "postgres://hookbridge@127.0.0.1:1/test?password=Sup3r-S3cret",
    ] {
        let started = std::time::Instant::now();
        let err = PostgresStore::connect(url, PostgresOptions::default())
            .await
            .unwrap_err();
        let shown = format!("{err} | {err:?}");
        assert!(!shown.contains("S3cret"), "password leaked: {shown}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a refused connection is reported at once"
        );
        eprintln!("{url} -> {err}");
    }
}

#[tokio::test]
async fn dashboard_search_buckets_and_oldest_unfinished() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    conformance::dashboard_search_buckets_and_oldest_unfinished(&store).await;
    store.close().await;
}

#[tokio::test]
async fn a_job_that_kills_its_worker_every_time_is_dead_lettered() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    conformance::a_job_that_kills_its_worker_every_time_is_dead_lettered(&store).await;
    store.close().await;
}

#[tokio::test]
async fn unfinished_replay_selection_pause_and_calls() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = schema.store().await;
    conformance::unfinished_replay_selection_pause_and_calls(&store).await;
    store.close().await;
}

#[tokio::test]
async fn state_if_absent_is_won_once() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    // Two pools on one schema: two instances.
    let a: Arc<dyn Store> = Arc::new(schema.store().await);
    let b: Arc<dyn Store> = Arc::new(schema.store().await);
    conformance::state_if_absent_is_won_once(a.clone(), b.clone()).await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn planned_deliveries_commit_with_their_jobs() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let store = Arc::new(schema.store().await);
    conformance::planned_deliveries_commit_with_their_jobs(store.clone()).await;
    store.close().await;
}
