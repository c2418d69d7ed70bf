//! Engine scenarios, run against every store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookbridge_sync_engine::engine::{
    Backoff, Engine, EngineConfig, Poll, PollError, SelfActor, Source,
};
use hookbridge_sync_engine::store::{DeliveryStatus, JobFilter, JobState, NewJob, Store};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::*;

pub fn fast_config() -> EngineConfig {
    EngineConfig {
        concurrency: 8,
        max_attempts: 4,
        backoff: Backoff {
            base: Duration::from_millis(20),
            max: Duration::from_millis(200),
        },
        lease: Duration::from_secs(4),
        poll_interval: Duration::from_millis(50),
        echo_ttl: Duration::from_secs(60),
        self_actors: vec![SelfActor {
            provider: "svc".into(),
            name: "hookbridge-bot".into(),
        }],
    }
}

pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn jobs_in(
    store: &dyn Store,
    state: JobState,
) -> Vec<hookbridge_sync_engine::store::Job> {
    store
        .list_jobs(&JobFilter {
            state: Some(state),
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Answers 500 `fail` times per idempotency key, then 200; counts successes per key.
struct Flaky {
    fail: u32,
    seen: Mutex<HashMap<String, u32>>,
    applied: Arc<Mutex<HashMap<String, u32>>>,
}

impl Respond for Flaky {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let key = request
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let mut seen = self.seen.lock().unwrap();
        let n = seen.entry(key.clone()).or_insert(0);
        *n += 1;
        if *n <= self.fail {
            ResponseTemplate::new(500)
        } else {
            *self.applied.lock().unwrap().entry(key).or_insert(0) += 1;
            ResponseTemplate::new(200)
        }
    }
}

pub async fn failing_then_succeeding_rule_is_retried(store: Arc<dyn Store>) {
    let mock = MockServer::start().await;
    let applied = Arc::new(Mutex::new(HashMap::new()));
    Mock::given(method("POST"))
        .and(path("/apply"))
        .respond_with(Flaky {
            fail: 2,
            seen: Mutex::default(),
            applied: applied.clone(),
        })
        .mount(&mock)
        .await;
    let engine = Engine::builder(store.clone())
        .endpoint("a", Arc::new(Svc))
        .rule(Arc::new(Poster {
            name: "post".into(),
            url: format!("{}/apply", mock.uri()),
            client: reqwest::Client::new(),
        }))
        .config(fast_config())
        .build();
    let running = engine.start();
    send(store.as_ref(), "a", "r1", "o1", "status", "open", "alice").await;
    wait_until("the job is done", Duration::from_secs(10), || async {
        jobs_in(store.as_ref(), JobState::Done).await.len() == 1
    })
    .await;
    running.shutdown().await;

    let job = &jobs_in(store.as_ref(), JobState::Done).await[0];
    let (job, attempts) = store.job(job.id).await.unwrap().unwrap();
    assert_eq!(job.attempts, 3);
    assert_eq!(
        attempts
            .iter()
            .map(|a| a.outcome.as_str())
            .collect::<Vec<_>>(),
        ["retry", "retry", "applied"]
    );
    assert_eq!(
        attempts[0].error.as_deref(),
        Some("transient failure: HTTP 500 Internal Server Error")
    );
    // Backoff spaced the retries.
    assert!(attempts[1].started_at - attempts[0].finished_at >= time::Duration::milliseconds(10));
    assert_eq!(applied.lock().unwrap().values().sum::<u32>(), 1);
}

pub async fn exhausted_attempts_dead_letter_and_replay(store: Arc<dyn Store>) {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/apply"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(4)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/apply"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&mock)
        .await;
    let engine = Engine::builder(store.clone())
        .endpoint("a", Arc::new(Svc))
        .rule(Arc::new(Poster {
            name: "post".into(),
            url: format!("{}/apply", mock.uri()),
            client: reqwest::Client::new(),
        }))
        .config(fast_config())
        .build();
    let running = engine.start();
    send(store.as_ref(), "a", "d1", "o1", "status", "open", "alice").await;
    wait_until("a dead letter", Duration::from_secs(10), || async {
        jobs_in(store.as_ref(), JobState::Dead).await.len() == 1
    })
    .await;
    let dead = jobs_in(store.as_ref(), JobState::Dead).await.remove(0);
    assert_eq!(dead.attempts, 4);
    assert_eq!(
        dead.last_error.as_deref(),
        Some("transient failure: HTTP 503 Service Unavailable")
    );

    // The service is back: replaying the dead letter applies it.
    assert!(
        store
            .replay_job(dead.id, time::OffsetDateTime::now_utc())
            .await
            .unwrap()
    );
    wait_until(
        "the replayed job is done",
        Duration::from_secs(10),
        || async { jobs_in(store.as_ref(), JobState::Done).await.len() == 1 },
    )
    .await;
    running.shutdown().await;
    assert_eq!(mock.received_requests().await.unwrap().len(), 5);

    // A permanent failure is dead at once.
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400))
        .mount(&mock)
        .await;
    let engine = Engine::builder(store.clone())
        .endpoint("b", Arc::new(Svc))
        .rule(Arc::new(Poster {
            name: "post-b".into(),
            url: format!("{}/apply", mock.uri()),
            client: reqwest::Client::new(),
        }))
        .config(fast_config())
        .build();
    let running = engine.start();
    send(store.as_ref(), "b", "p1", "o1", "status", "open", "alice").await;
    wait_until("a second dead letter", Duration::from_secs(10), || async {
        jobs_in(store.as_ref(), JobState::Dead).await.len() == 1
    })
    .await;
    running.shutdown().await;
    let dead = jobs_in(store.as_ref(), JobState::Dead).await.remove(0);
    assert_eq!(dead.attempts, 1);
    assert_eq!(dead.rule, "post-b");
}

pub async fn two_way_sync_stops_after_one_hop(store: Arc<dyn Store>) {
    let a = Arc::new(FakeService {
        name: "a".into(),
        ..Default::default()
    });
    let b = Arc::new(FakeService {
        name: "b".into(),
        ..Default::default()
    });
    let engine = Engine::builder(store.clone())
        .endpoint("a", Arc::new(Svc))
        .endpoint("b", Arc::new(Svc))
        .rule(Arc::new(Mirror {
            name: "a-to-b".into(),
            from: "a".into(),
            to: b.clone(),
            store: store.clone(),
            writer: "integration".into(),
        }))
        .rule(Arc::new(Mirror {
            name: "b-to-a".into(),
            from: "b".into(),
            to: a.clone(),
            store: store.clone(),
            writer: "integration".into(),
        }))
        .config(fast_config())
        .build();
    let running = engine.start();

    // A human changes A: B gets it once; B's webhook about our write is recognised.
    send(store.as_ref(), "a", "h1", "x", "status", "done", "alice").await;
    wait_until("the echo is skipped", Duration::from_secs(10), || async {
        jobs_in(store.as_ref(), JobState::Skipped).await.len() == 1
    })
    .await;
    // Then a human changes B: A gets it once, and the echo from A stops there too.
    send(store.as_ref(), "b", "h2", "x", "status", "reopened", "bob").await;
    wait_until(
        "the second echo is skipped",
        Duration::from_secs(10),
        || async { jobs_in(store.as_ref(), JobState::Skipped).await.len() == 2 },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.shutdown().await;

    assert_eq!(
        *b.writes.lock().unwrap(),
        [("x".to_owned(), "status".to_owned(), "done".to_owned())]
    );
    assert_eq!(
        *a.writes.lock().unwrap(),
        [("x".to_owned(), "status".to_owned(), "reopened".to_owned())]
    );
    assert_eq!(jobs_in(store.as_ref(), JobState::Done).await.len(), 2);
    assert!(jobs_in(store.as_ref(), JobState::Pending).await.is_empty());
}

pub async fn own_actor_events_are_skipped(store: Arc<dyn Store>) {
    let b = Arc::new(FakeService {
        name: "b".into(),
        ..Default::default()
    });
    let engine = Engine::builder(store.clone())
        .endpoint("a", Arc::new(Svc))
        .rule(Arc::new(Mirror {
            name: "a-to-b".into(),
            from: "a".into(),
            to: b.clone(),
            store: store.clone(),
            writer: "hookbridge-bot".into(),
        }))
        .config(fast_config())
        .build();
    let running = engine.start();
    send(
        store.as_ref(),
        "a",
        "bot1",
        "x",
        "status",
        "done",
        "hookbridge-bot",
    )
    .await;
    wait_until("skipped", Duration::from_secs(10), || async {
        jobs_in(store.as_ref(), JobState::Skipped).await.len() == 1
    })
    .await;
    running.shutdown().await;
    assert!(b.writes.lock().unwrap().is_empty());
    let job = jobs_in(store.as_ref(), JobState::Skipped).await.remove(0);
    let (_, attempts) = store.job(job.id).await.unwrap().unwrap();
    assert_eq!(
        attempts[0].error.as_deref(),
        Some("caused by hookbridge's own account")
    );
}

pub async fn dry_run_records_without_acting(store: Arc<dyn Store>) {
    let b = Arc::new(FakeService {
        name: "b".into(),
        ..Default::default()
    });
    let engine = Engine::builder(store.clone())
        .endpoint("a", Arc::new(Svc))
        .rule(Arc::new(Mirror {
            name: "a-to-b".into(),
            from: "a".into(),
            to: b.clone(),
            store: store.clone(),
            writer: "integration".into(),
        }))
        .rule(Arc::new(Mirror {
            name: "c-to-b".into(),
            from: "c".into(),
            to: b.clone(),
            store: store.clone(),
            writer: "integration".into(),
        }))
        .config(fast_config())
        .build();
    // Not started: the delivery stays in the inbox.
    let seq = send(store.as_ref(), "a", "dr1", "x", "status", "done", "alice").await;
    let report = engine.dry_run(seq).await.unwrap();
    assert_eq!(report.event, "change");
    assert_eq!(report.rules.len(), 2);
    assert_eq!(report.rules[0].outcome, "applied");
    assert_eq!(report.rules[0].actions, ["would: set b:x status = done"]);
    assert!(!report.rules[1].matched);
    assert!(b.writes.lock().unwrap().is_empty());
    assert!(
        !store
            .take_echo_mark("b:x", "status", "done", time::OffsetDateTime::now_utc())
            .await
            .unwrap(),
        "a dry run leaves no echo mark"
    );
    assert!(engine.dry_run(987_654).await.is_err());
}

pub async fn dead_worker_job_is_retried_and_applied_once(store: Arc<dyn Store>) {
    let mock = MockServer::start().await;
    let applied = Arc::new(Mutex::new(HashMap::new()));
    Mock::given(method("POST"))
        .respond_with(Flaky {
            fail: 0,
            seen: Mutex::default(),
            applied: applied.clone(),
        })
        .mount(&mock)
        .await;
    let make = |worker: &str| {
        Engine::builder(store.clone())
            .endpoint("a", Arc::new(Svc))
            .rule(Arc::new(Poster {
                name: "post".into(),
                url: format!("{}/apply", mock.uri()),
                client: reqwest::Client::new(),
            }))
            .config(EngineConfig {
                lease: Duration::from_millis(600),
                ..fast_config()
            })
            .worker_id(worker)
            .build()
    };
    let seq = send(store.as_ref(), "a", "k1", "o1", "status", "open", "alice").await;
    // The job exists and a worker claims it, then dies without finishing.
    let job = NewJob {
        rule: "post".into(),
        subject: Some("a:o1".into()),
        max_attempts: 4,
    };
    assert!(
        store
            .dispatch(
                seq,
                DeliveryStatus::Dispatched,
                &[job],
                time::OffsetDateTime::now_utc()
            )
            .await
            .unwrap()
    );
    let claimed = store
        .claim_jobs(
            "ghost",
            1,
            Duration::from_millis(600),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // A live worker takes it over once the lease expires, and applies it once.
    let running = make("survivor").start();
    wait_until("taken over and done", Duration::from_secs(10), || async {
        jobs_in(store.as_ref(), JobState::Done).await.len() == 1
    })
    .await;
    running.shutdown().await;
    let (job, attempts) = store.job(claimed[0].job.id).await.unwrap().unwrap();
    assert_eq!(job.attempts, 2);
    assert_eq!(attempts.len(), 1, "only the survivor's attempt is recorded");
    assert_eq!(attempts[0].number, 2);
    // The ghost's late result is refused.
    let late = hookbridge_sync_engine::store::Attempt {
        number: 1,
        started_at: job.created_at,
        finished_at: job.created_at,
        outcome: "applied".into(),
        error: None,
        actions: vec![],
        calls: vec![],
    };
    assert!(
        !store
            .finish_job(
                job.id,
                "ghost",
                &late,
                hookbridge_sync_engine::store::JobNext::Done,
                time::OffsetDateTime::now_utc()
            )
            .await
            .unwrap()
    );
    assert_eq!(applied.lock().unwrap().values().sum::<u32>(), 1);
}

pub async fn one_object_at_a_time_in_order(store: Arc<dyn Store>) {
    let recorder = Arc::new(Recorder {
        name: "rec".into(),
        seen: Mutex::default(),
        running: Mutex::default(),
        overlaps: Mutex::new(0),
    });
    let engine = Engine::builder(store.clone())
        .endpoint("a", Arc::new(Svc))
        .rule(recorder.clone())
        .config(fast_config())
        .build();
    let running = engine.start();
    for i in 0..60 {
        let object = format!("obj{}", i % 3);
        send(
            store.as_ref(),
            "a",
            &format!("o{i}"),
            &object,
            "n",
            &format!("{i:03}"),
            "alice",
        )
        .await;
    }
    wait_until("all applied", Duration::from_secs(20), || async {
        jobs_in(store.as_ref(), JobState::Done).await.len() == 60
    })
    .await;
    running.shutdown().await;
    assert_eq!(
        *recorder.overlaps.lock().unwrap(),
        0,
        "two jobs of one object ran at once"
    );
    let seen = recorder.seen.lock().unwrap().clone();
    for object in ["obj0", "obj1", "obj2"] {
        let values: Vec<_> = seen
            .iter()
            .filter(|(o, _)| o == object)
            .map(|(_, v)| v.clone())
            .collect();
        let mut sorted = values.clone();
        sorted.sort();
        assert_eq!(values, sorted, "{object} out of order");
        assert_eq!(values.len(), 20);
    }
}

struct Pages {
    polls: Mutex<u32>,
}

#[async_trait::async_trait]
impl Source for Pages {
    fn name(&self) -> &str {
        "pages"
    }
    fn interval(&self) -> Duration {
        Duration::from_millis(50)
    }
    async fn poll(&self, cursor: Option<String>) -> Result<Poll, PollError> {
        *self.polls.lock().unwrap() += 1;
        // Overlapping windows: each poll returns the last entry again.
        let from: u32 = cursor.as_deref().unwrap_or("0").parse().unwrap();
        let to = (from + 3).min(9);
        let deliveries = (from.saturating_sub(1)..to)
            .map(|i| {
                change_delivery(
                    "a",
                    &format!("log-{i}"),
                    "inc",
                    "note",
                    &i.to_string(),
                    "pagerduty",
                )
            })
            .collect();
        Ok(Poll {
            deliveries,
            cursor: to.to_string(),
        })
    }
}

pub async fn poller_feeds_the_inbox_without_duplicates(store: Arc<dyn Store>) {
    let recorder = Arc::new(Recorder {
        name: "rec".into(),
        seen: Mutex::default(),
        running: Mutex::default(),
        overlaps: Mutex::new(0),
    });
    let engine = Engine::builder(store.clone())
        .endpoint("a", Arc::new(Svc))
        .rule(recorder.clone())
        .source(Arc::new(Pages {
            polls: Mutex::new(0),
        }))
        .config(fast_config())
        .build();
    let running = engine.start();
    wait_until("9 entries applied", Duration::from_secs(10), || async {
        jobs_in(store.as_ref(), JobState::Done).await.len() == 9
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    running.shutdown().await;
    assert_eq!(store.cursor("pages").await.unwrap().as_deref(), Some("9"));
    assert_eq!(recorder.seen.lock().unwrap().len(), 9);
}

/// `updated` arrives before `created`: the older state is recognised as stale, not applied
/// over the newer one.
pub async fn out_of_order_events_converge(store: Arc<dyn Store>) {
    let recorder = Arc::new(Recorder {
        name: "rec".into(),
        seen: Mutex::default(),
        running: Mutex::default(),
        overlaps: Mutex::new(0),
    });
    let engine = Engine::builder(store.clone())
        .endpoint("a", Arc::new(Svc))
        .rule(recorder.clone())
        .config(fast_config())
        .build();
    let mut newer = change_delivery("a", "upd", "x", "status", "updated", "alice");
    let mut older = change_delivery("a", "cre", "x", "status", "created", "alice");
    for (d, at) in [(&mut newer, 200), (&mut older, 100)] {
        let mut c: Change = serde_json::from_slice(&d.body).unwrap();
        c.at = Some(1_800_000_000 + at);
        d.body = serde_json::to_vec(&c).unwrap().into();
    }
    store.insert_delivery(newer).await.unwrap();
    store.insert_delivery(older).await.unwrap();
    let running = engine.start();
    wait_until("both handled", Duration::from_secs(10), || async {
        jobs_in(store.as_ref(), JobState::Done).await.len()
            + jobs_in(store.as_ref(), JobState::Skipped).await.len()
            == 2
    })
    .await;
    running.shutdown().await;
    assert_eq!(
        *recorder.seen.lock().unwrap(),
        [("x".to_owned(), "updated".to_owned())]
    );
    let skipped = jobs_in(store.as_ref(), JobState::Skipped).await.remove(0);
    let (_, attempts) = store.job(skipped.id).await.unwrap().unwrap();
    assert!(
        attempts[0].error.as_deref().unwrap().starts_with("stale"),
        "{attempts:?}"
    );
}
