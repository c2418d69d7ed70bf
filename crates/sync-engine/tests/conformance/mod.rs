//! The behaviour every `Store` must have, run against each backend.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use hookbridge_core::{DeliveryId, EndpointName};
use hookbridge_sync_engine::store::{DeliveryFilter, InsertOutcome, NewDelivery, Store};
use time::OffsetDateTime;

pub fn delivery(endpoint: &str, id: &str) -> NewDelivery {
    NewDelivery {
        endpoint: EndpointName::new(endpoint),
        provider: "github".into(),
        delivery_id: DeliveryId::new(id),
        event_type: "issues".into(),
        headers: vec![
            ("x-github-event".into(), "issues".into()),
            ("x-github-delivery".into(), id.into()),
        ],
        body: Bytes::from(format!("{{\"id\":\"{id}\",\"bytes\":\"\\u0000\u{e9}\"}}")),
        received_at: OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_000).unwrap(),
    }
}

pub async fn insert_is_idempotent_per_endpoint(store: &dyn Store) {
    let first = store.insert_delivery(delivery("a", "1")).await.unwrap();
    let InsertOutcome::Inserted { seq } = first else {
        panic!("first insert: {first:?}")
    };
    assert_eq!(
        store.insert_delivery(delivery("a", "1")).await.unwrap(),
        InsertOutcome::Duplicate
    );
    // The same delivery id on another endpoint is another delivery.
    let other = store.insert_delivery(delivery("b", "1")).await.unwrap();
    assert!(matches!(other, InsertOutcome::Inserted { seq: s } if s > seq));

    let found = store
        .find_deliveries(&DeliveryId::new("1"), None)
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    let only_a = store
        .find_deliveries(&DeliveryId::new("1"), Some(&EndpointName::new("a")))
        .await
        .unwrap();
    assert_eq!(only_a.len(), 1);
    let stored = &only_a[0];
    let original = delivery("a", "1");
    assert_eq!(stored.seq, seq);
    assert_eq!(stored.body, original.body, "body bytes kept exactly");
    assert_eq!(stored.headers, original.headers);
    assert_eq!(stored.received_at, original.received_at);
    assert_eq!(stored.event_type, "issues");
    assert_eq!(stored.status, "received");
    let raw = stored.to_raw();
    assert_eq!(raw.header("x-github-delivery"), Some("1"));
}

pub async fn concurrent_inserts_each_land_once(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for t in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..40 {
                // Every id is sent by two tasks: exactly one insert must win.
                let id = format!("c-{}-{i}", t / 2);
                outcomes.push((
                    id.clone(),
                    store.insert_delivery(delivery("c", &id)).await.unwrap(),
                ));
            }
            outcomes
        }));
    }
    let mut inserted = HashSet::new();
    let mut seqs = HashSet::new();
    let mut duplicates = 0;
    for task in tasks {
        for (id, outcome) in task.await.unwrap() {
            match outcome {
                InsertOutcome::Inserted { seq } => {
                    assert!(inserted.insert(id), "inserted twice");
                    assert!(seqs.insert(seq), "seq reused");
                }
                InsertOutcome::Duplicate => duplicates += 1,
            }
        }
    }
    assert_eq!(inserted.len(), 16 * 40);
    assert_eq!(duplicates, 16 * 40);
    let listed = store
        .list_deliveries(&DeliveryFilter {
            endpoint: Some(EndpointName::new("c")),
            limit: 10_000,
            before_seq: None,
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 16 * 40);
}

pub async fn list_pages_newest_first(store: &dyn Store) {
    for i in 0..5 {
        store
            .insert_delivery(delivery("p", &format!("p{i}")))
            .await
            .unwrap();
    }
    store.insert_delivery(delivery("q", "q0")).await.unwrap();
    let page1 = store
        .list_deliveries(&DeliveryFilter {
            endpoint: Some(EndpointName::new("p")),
            limit: 3,
            before_seq: None,
        })
        .await
        .unwrap();
    let ids: Vec<_> = page1.iter().map(|d| d.delivery_id.as_str()).collect();
    assert_eq!(ids, ["p4", "p3", "p2"]);
    let page2 = store
        .list_deliveries(&DeliveryFilter {
            endpoint: Some(EndpointName::new("p")),
            limit: 3,
            before_seq: Some(page1.last().unwrap().seq),
        })
        .await
        .unwrap();
    let ids: Vec<_> = page2.iter().map(|d| d.delivery_id.as_str()).collect();
    assert_eq!(ids, ["p1", "p0"]);
    let all = store
        .list_deliveries(&DeliveryFilter::default())
        .await
        .unwrap();
    assert_eq!(all[0].delivery_id.as_str(), "q0");
}

pub async fn health_then_closed(store: &dyn Store) {
    store.check_health().await.unwrap();
    store.close().await;
    assert!(store.check_health().await.is_err());
    assert!(
        store
            .insert_delivery(delivery("z", "after-close"))
            .await
            .is_err()
    );
}

// ---- the engine's tables ----

use std::time::Duration;

use hookbridge_core::Secret;
use hookbridge_sync_engine::store::{
    Attempt, DeliveryStatus, Dispatch, EchoMark, Job, JobFilter, JobId, JobNext, JobState, Link,
    NewJob, TokenRecord,
};

fn t(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).unwrap()
}

fn job(rule: &str, subject: Option<&str>) -> NewJob {
    NewJob {
        rule: rule.into(),
        subject: subject.map(Into::into),
        max_attempts: 3,
    }
}

fn attempt(number: u32, outcome: &str, error: Option<&str>) -> Attempt {
    Attempt {
        number,
        started_at: t(0),
        finished_at: t(1),
        outcome: outcome.into(),
        error: error.map(Into::into),
        actions: vec!["POST /thing".into()],
        calls: Vec::new(),
    }
}

/// The jobs of one delivery.
async fn jobs_of(store: &dyn Store, seq: i64) -> Vec<Job> {
    store
        .list_jobs(&JobFilter {
            delivery_seq: Some(seq),
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn inserted(store: &dyn Store, endpoint: &str, id: &str) -> i64 {
    match store.insert_delivery(delivery(endpoint, id)).await.unwrap() {
        InsertOutcome::Inserted { seq } => seq,
        other => panic!("{other:?}"),
    }
}

pub async fn dispatch_creates_jobs_once(store: &dyn Store) {
    let seq = inserted(store, "d", "1").await;
    let other = inserted(store, "d", "2").await;
    let pending = store.undispatched(10).await.unwrap();
    assert_eq!(
        pending.iter().map(|d| d.seq).collect::<Vec<_>>(),
        [seq, other]
    );

    let jobs = [job("r1", Some("s")), job("r2", None)];
    assert!(
        store
            .dispatch(seq, DeliveryStatus::Dispatched, &jobs, t(0))
            .await
            .unwrap()
    );
    // A second dispatcher racing for the same delivery changes nothing.
    assert!(
        !store
            .dispatch(seq, DeliveryStatus::Dispatched, &jobs, t(0))
            .await
            .unwrap()
    );
    assert!(
        store
            .dispatch(other, DeliveryStatus::NoRules, &[], t(0))
            .await
            .unwrap()
    );
    assert!(store.undispatched(10).await.unwrap().is_empty());
    assert_eq!(
        store.delivery(seq).await.unwrap().unwrap().status,
        "dispatched"
    );
    assert_eq!(
        store.delivery(other).await.unwrap().unwrap().status,
        "no_rules"
    );
    let listed = jobs_of(store, seq).await;
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|j| j.state == JobState::Pending && j.attempts == 0)
    );

    // Replay puts it back for the dispatcher.
    assert!(store.replay_delivery(other).await.unwrap());
    assert_eq!(store.undispatched(10).await.unwrap()[0].seq, other);
    assert!(!store.replay_delivery(987_654).await.unwrap());
}

pub async fn planned_deliveries_commit_with_their_jobs(store: Arc<dyn Store>) {
    // Planned at receipt: the delivery, its status and its jobs land together.
    let planned = Dispatch {
        status: DeliveryStatus::Dispatched,
        jobs: vec![job("r1", Some("github:o/r#7")), job("r2", None)],
    };
    let seq = match store
        .insert_dispatched(delivery("p", "1"), planned.clone())
        .await
        .unwrap()
    {
        InsertOutcome::Inserted { seq } => seq,
        other => panic!("{other:?}"),
    };
    // The same delivery again is a duplicate and creates no second set of jobs.
    assert_eq!(
        store
            .insert_dispatched(delivery("p", "1"), planned.clone())
            .await
            .unwrap(),
        InsertOutcome::Duplicate
    );
    let none = Dispatch {
        status: DeliveryStatus::NoRules,
        jobs: Vec::new(),
    };
    let quiet = match store
        .insert_dispatched(delivery("p", "2"), none)
        .await
        .unwrap()
    {
        InsertOutcome::Inserted { seq } => seq,
        other => panic!("{other:?}"),
    };
    assert!(
        store.undispatched(10).await.unwrap().is_empty(),
        "planned deliveries never reach the dispatcher"
    );
    assert_eq!(
        store.delivery(seq).await.unwrap().unwrap().status,
        "dispatched"
    );
    assert_eq!(
        store.delivery(quiet).await.unwrap().unwrap().status,
        "no_rules"
    );
    let mut jobs = jobs_of(&*store, seq).await;
    jobs.sort_by_key(|j| j.id);
    assert_eq!(
        jobs.iter()
            .map(|j| (j.rule.as_str(), j.subject.as_deref(), j.state))
            .collect::<Vec<_>>(),
        [
            ("r1", Some("github:o/r#7"), JobState::Pending),
            ("r2", None, JobState::Pending)
        ]
    );

    // Concurrent planned inserts, many per subject: each lands once, and the subject's jobs
    // are claimable one at a time, in the order their deliveries were stored.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let plan = Dispatch {
                status: DeliveryStatus::Dispatched,
                jobs: vec![job("o", Some(&format!("subject-{}", i % 4)))],
            };
            store
                .insert_dispatched(delivery("c", &i.to_string()), plan)
                .await
                .unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            InsertOutcome::Inserted { seq } => seqs.push(seq),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seqs.iter().collect::<HashSet<_>>().len(), 40);
    let lease = Duration::from_secs(60);
    let mut order: Vec<(String, i64)> = Vec::new();
    for round in 0..20 {
        let claimed = store.claim_jobs("w", 100, lease, t(round)).await.unwrap();
        let ours: Vec<_> = claimed.iter().filter(|c| c.job.rule == "o").collect();
        assert!(ours.len() <= 4, "one job per subject at a time");
        for c in &claimed {
            if c.job.rule == "o" {
                order.push((c.job.subject.clone().unwrap(), c.delivery.seq));
            }
            store
                .finish_job(
                    c.job.id,
                    "w",
                    &attempt(1, "applied", None),
                    JobNext::Done,
                    t(round),
                )
                .await
                .unwrap();
        }
    }
    assert_eq!(order.len(), 40);
    for subject in 0..4 {
        let name = format!("subject-{subject}");
        let mine: Vec<i64> = order
            .iter()
            .filter(|(s, _)| *s == name)
            .map(|(_, q)| *q)
            .collect();
        let mut sorted = mine.clone();
        sorted.sort_unstable();
        assert_eq!(mine, sorted, "jobs of {name} ran in inbox order");
    }

    // The dispatcher's batch form: several `received` deliveries at once, skipping one that
    // is no longer `received`.
    let a = inserted(&*store, "m", "1").await;
    let b = inserted(&*store, "m", "2").await;
    let done = store
        .dispatch_many(
            &[
                (a, planned.clone()),
                (
                    b,
                    Dispatch {
                        status: DeliveryStatus::Unparseable,
                        jobs: Vec::new(),
                    },
                ),
                (seq, planned.clone()),
            ],
            t(0),
        )
        .await
        .unwrap();
    assert_eq!(done, [true, true, false]);
    assert_eq!(
        store.delivery(b).await.unwrap().unwrap().status,
        "unparseable"
    );
    assert_eq!(jobs_of(&*store, a).await.len(), 2);
    assert_eq!(
        jobs_of(&*store, seq).await.len(),
        2,
        "no second set of jobs"
    );
}

pub async fn jobs_claim_finish_retry_dead_replay(store: &dyn Store) {
    let seq = inserted(store, "j", "1").await;
    store
        .dispatch(seq, DeliveryStatus::Dispatched, &[job("r", None)], t(0))
        .await
        .unwrap();
    let lease = Duration::from_secs(30);

    let claimed = store.claim_jobs("w1", 10, lease, t(1)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let id = claimed[0].job.id;
    assert_eq!(claimed[0].job.attempts, 1);
    assert_eq!(claimed[0].job.state, JobState::Running);
    assert_eq!(claimed[0].delivery.seq, seq);
    // Held: nobody else gets it.
    assert!(
        store
            .claim_jobs("w2", 10, lease, t(2))
            .await
            .unwrap()
            .is_empty()
    );

    // Attempt 1 fails, retry at t(100): not runnable before.
    let retry = JobNext::RetryAt(t(100));
    assert!(
        store
            .finish_job(
                id,
                "w1",
                &attempt(1, "retry", Some("HTTP 500")),
                retry,
                t(3)
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_jobs("w2", 10, lease, t(50))
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_jobs("w2", 10, lease, t(100)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].job.attempts, 2);
    assert_eq!(again[0].job.last_error.as_deref(), Some("HTTP 500"));

    // The old worker cannot finish a job it no longer holds.
    assert!(
        !store
            .finish_job(
                id,
                "w1",
                &attempt(2, "applied", None),
                JobNext::Done,
                t(101)
            )
            .await
            .unwrap()
    );
    // Attempt 2 fails for good: dead letter.
    assert!(
        store
            .finish_job(
                id,
                "w2",
                &attempt(2, "failed", Some("HTTP 400")),
                JobNext::Dead,
                t(102)
            )
            .await
            .unwrap()
    );
    let dead = store
        .list_jobs(&JobFilter {
            state: Some(JobState::Dead),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(dead.iter().map(|j| j.id).collect::<Vec<_>>(), [id]);
    let (stored, attempts) = store.job(id).await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Dead);
    assert_eq!(stored.last_error.as_deref(), Some("HTTP 400"));
    assert_eq!(
        attempts.iter().map(|a| a.number).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(attempts[0].error.as_deref(), Some("HTTP 500"));
    assert_eq!(attempts[1].actions, ["POST /thing"]);

    // Replay: pending again with a fresh budget; attempts keep their numbers.
    assert!(store.replay_job(id, t(200)).await.unwrap());
    assert!(
        !store.replay_job(id, t(200)).await.unwrap(),
        "only dead or skipped jobs replay"
    );
    let replayed = store.claim_jobs("w3", 10, lease, t(201)).await.unwrap();
    assert_eq!(replayed[0].job.attempts, 3);
    assert!(replayed[0].job.max_attempts >= 5);
    assert!(
        store
            .finish_job(
                id,
                "w3",
                &attempt(3, "applied", None),
                JobNext::Done,
                t(202)
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store.job(id).await.unwrap().unwrap().0.state,
        JobState::Done
    );
    let counts = store.job_counts().await.unwrap();
    assert!(counts.contains(&(JobState::Done, 1)), "{counts:?}");
    assert!(store.job(JobId(999_999)).await.unwrap().is_none());
}

pub async fn expired_lease_is_taken_again(store: &dyn Store) {
    let seq = inserted(store, "l", "1").await;
    store
        .dispatch(seq, DeliveryStatus::Dispatched, &[job("r", None)], t(0))
        .await
        .unwrap();
    let first = store
        .claim_jobs("dies", 1, Duration::from_secs(10), t(0))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        store
            .claim_jobs("w2", 1, Duration::from_secs(10), t(9))
            .await
            .unwrap()
            .is_empty()
    );
    let taken = store
        .claim_jobs("w2", 1, Duration::from_secs(10), t(11))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].job.id, first[0].job.id);
    assert_eq!(taken[0].job.attempts, 2);
    // The dead worker's late result is refused.
    assert!(
        !store
            .finish_job(
                first[0].job.id,
                "dies",
                &attempt(1, "applied", None),
                JobNext::Done,
                t(12)
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_job(
                taken[0].job.id,
                "w2",
                &attempt(2, "applied", None),
                JobNext::Done,
                t(12)
            )
            .await
            .unwrap()
    );
}

pub async fn one_subject_runs_in_order(store: &dyn Store) {
    let mut seqs = Vec::new();
    for i in 0..3 {
        let seq = inserted(store, "o", &i.to_string()).await;
        let jobs = [
            job("r", Some("github:o/r#1")),
            job("r", Some(&format!("other-{i}"))),
        ];
        store
            .dispatch(seq, DeliveryStatus::Dispatched, &jobs, t(0))
            .await
            .unwrap();
        seqs.push(seq);
    }
    let lease = Duration::from_secs(60);
    // Only the first job of the shared subject is runnable, beside every other subject.
    let claimed = store.claim_jobs("w", 10, lease, t(1)).await.unwrap();
    let shared: Vec<_> = claimed
        .iter()
        .filter(|c| c.job.subject.as_deref() == Some("github:o/r#1"))
        .collect();
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0].delivery.seq, seqs[0]);
    assert_eq!(claimed.len(), 4);
    // While it runs (or waits for a retry), the next one waits.
    assert!(
        store
            .claim_jobs("w", 10, lease, t(2))
            .await
            .unwrap()
            .is_empty()
    );
    let id = shared[0].job.id;
    store
        .finish_job(
            id,
            "w",
            &attempt(1, "retry", Some("429")),
            JobNext::RetryAt(t(10)),
            t(3),
        )
        .await
        .unwrap();
    assert!(
        store
            .claim_jobs("w", 10, lease, t(5))
            .await
            .unwrap()
            .is_empty()
    );
    let retried = store.claim_jobs("w", 10, lease, t(10)).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].job.id, id);
    store
        .finish_job(id, "w", &attempt(2, "applied", None), JobNext::Done, t(11))
        .await
        .unwrap();
    let next = store.claim_jobs("w", 10, lease, t(12)).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].delivery.seq, seqs[1]);
    // Other rules on the same subject are independent.
    let seq = inserted(store, "o", "x").await;
    store
        .dispatch(
            seq,
            DeliveryStatus::Dispatched,
            &[job("other-rule", Some("github:o/r#1"))],
            t(0),
        )
        .await
        .unwrap();
    assert_eq!(
        store.claim_jobs("w", 10, lease, t(13)).await.unwrap().len(),
        1
    );
}

pub async fn links_marks_cursors_leases_state_tokens_secrets(store: &dyn Store) {
    // Links, both directions, replace on the same (rule, a).
    let link = Link {
        rule: "gh-jira".into(),
        a: "github:o/r#1".into(),
        b: "jira:P-1".into(),
        data: serde_json::json!({"status": "Open"}),
    };
    store.put_link(&link).await.unwrap();
    assert_eq!(
        store.link_from("gh-jira", "github:o/r#1").await.unwrap(),
        Some(link.clone())
    );
    assert_eq!(
        store.link_to("gh-jira", "jira:P-1").await.unwrap(),
        Some(link.clone())
    );
    assert!(
        store
            .link_from("other", "github:o/r#1")
            .await
            .unwrap()
            .is_none()
    );
    let moved = Link {
        b: "jira:P-2".into(),
        ..link.clone()
    };
    store.put_link(&moved).await.unwrap();
    assert!(
        store
            .link_to("gh-jira", "jira:P-1")
            .await
            .unwrap()
            .is_none()
    );
    store
        .put_link(&Link {
            a: "github:o/r#2".into(),
            b: "jira:P-3".into(),
            ..link.clone()
        })
        .await
        .unwrap();
    let page = store.list_links(Some("gh-jira"), None, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    let rest = store
        .list_links(Some("gh-jira"), Some(&page[0].a), 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);

    // Echo marks: consumed once, not after expiry, exact values only.
    let mark = EchoMark {
        target: "jira:P-2".into(),
        field: "status".into(),
        value: "Done".into(),
        expires_at: t(60),
    };
    store.put_echo_mark(&mark).await.unwrap();
    assert!(
        !store
            .take_echo_mark("jira:P-2", "status", "Open", t(1))
            .await
            .unwrap()
    );
    assert!(
        store
            .take_echo_mark("jira:P-2", "status", "Done", t(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .take_echo_mark("jira:P-2", "status", "Done", t(2))
            .await
            .unwrap()
    );
    store.put_echo_mark(&mark).await.unwrap();
    assert!(
        !store
            .take_echo_mark("jira:P-2", "status", "Done", t(61))
            .await
            .unwrap()
    );

    // Poll commits: deliveries and cursor together; re-polling a window duplicates nothing.
    assert_eq!(store.cursor("pd-log").await.unwrap(), None);
    let out = store
        .commit_poll(
            "pd-log",
            "c1",
            vec![delivery("pd", "e1"), delivery("pd", "e2")],
        )
        .await
        .unwrap();
    assert!(
        out.iter()
            .all(|o| matches!(o, InsertOutcome::Inserted { .. }))
    );
    let out = store
        .commit_poll(
            "pd-log",
            "c2",
            vec![delivery("pd", "e2"), delivery("pd", "e3")],
        )
        .await
        .unwrap();
    assert_eq!(out[0], InsertOutcome::Duplicate);
    assert!(matches!(out[1], InsertOutcome::Inserted { .. }));
    assert_eq!(store.cursor("pd-log").await.unwrap().as_deref(), Some("c2"));
    // The same delivery twice in one batch: the first occurrence is new, the second is not.
    let out = store
        .commit_poll(
            "pd-log",
            "c3",
            vec![
                delivery("pd", "e4"),
                delivery("pd", "e4"),
                delivery("pd", "e5"),
            ],
        )
        .await
        .unwrap();
    assert!(matches!(out[0], InsertOutcome::Inserted { .. }));
    assert_eq!(out[1], InsertOutcome::Duplicate);
    assert!(matches!(out[2], InsertOutcome::Inserted { .. }));

    // Leases: one holder at a time, renewable, taken over after expiry, releasable.
    let ttl = Duration::from_secs(30);
    assert!(store.try_lease("poller", "a", ttl, t(0)).await.unwrap());
    assert!(!store.try_lease("poller", "b", ttl, t(10)).await.unwrap());
    assert!(store.try_lease("poller", "a", ttl, t(20)).await.unwrap());
    assert!(!store.try_lease("poller", "b", ttl, t(40)).await.unwrap());
    assert!(store.try_lease("poller", "b", ttl, t(51)).await.unwrap());
    store.release_lease("poller", "a").await.unwrap();
    assert!(!store.try_lease("poller", "a", ttl, t(52)).await.unwrap());
    store.release_lease("poller", "b").await.unwrap();
    assert!(store.try_lease("poller", "a", ttl, t(53)).await.unwrap());

    // Rule state.
    assert_eq!(store.state("r", "k").await.unwrap(), None);
    store
        .put_state("r", "k", &serde_json::json!({"n": 1}))
        .await
        .unwrap();
    store
        .put_state("r", "k", &serde_json::json!({"n": 2}))
        .await
        .unwrap();
    assert_eq!(
        store.state("r", "k").await.unwrap(),
        Some(serde_json::json!({"n": 2}))
    );

    // Tokens.
    let token = TokenRecord {
        access_token: Secret::new("at-1"),
        refresh_token: Some(Secret::new("rt-1")),
        expires_at: Some(t(3600)),
        scopes: "read write".into(),
    };
    store.put_token("jira", &token).await.unwrap();
    assert_eq!(store.token("jira").await.unwrap(), Some(token));
    assert!(!format!("{:?}", store.token("jira").await.unwrap()).contains("at-1"));

    // Learned secrets: the first one sticks.
    let ep = EndpointName::new("asana");
    assert!(store.learned_secret(&ep).await.unwrap().is_none());
    assert!(
        store
            .store_learned_secret(&ep, &Secret::new("first"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .store_learned_secret(&ep, &Secret::new("second"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.learned_secret(&ep).await.unwrap(),
        Some(Secret::new("first"))
    );
}

pub async fn notifier_wakes_on_insert(store: Arc<dyn Store>) {
    let notify = store.notifier();
    let waiter = tokio::spawn(async move {
        tokio::time::timeout(Duration::from_secs(5), notify.notified())
            .await
            .is_ok()
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.insert_delivery(delivery("n", "1")).await.unwrap();
    assert!(waiter.await.unwrap(), "not woken by an insert");
}

pub async fn worker_lost_on_the_last_attempt_dead_letters_the_job(store: &dyn Store) {
    let seq = inserted(store, "l", "1").await;
    let last_chance = NewJob {
        rule: "r".into(),
        subject: None,
        max_attempts: 1,
    };
    store
        .dispatch(seq, DeliveryStatus::Dispatched, &[last_chance], t(0))
        .await
        .unwrap();
    let lease = Duration::from_secs(10);
    let first = store.claim_jobs("dies", 1, lease, t(0)).await.unwrap();
    assert_eq!(first[0].job.attempts, 1);
    let id = first[0].job.id;
    // Its lease expires: the lost run was its only attempt, so it is a dead letter, not run
    // again.
    assert!(
        store
            .claim_jobs("w2", 1, lease, t(11))
            .await
            .unwrap()
            .is_empty()
    );
    let (job, attempts) = store.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(job.attempts, 1);
    assert!(
        job.last_error
            .as_deref()
            .is_some_and(|e| e.contains("lost")),
        "{:?}",
        job.last_error
    );
    assert_eq!(attempts.len(), 1, "the lost attempt is on record");
    assert_eq!(attempts[0].number, 1);
    assert_eq!(attempts[0].outcome, "failed");
    assert_eq!(attempts[0].started_at, t(0));
    assert_eq!(attempts[0].finished_at, t(11));
    // The dead worker's late result is refused.
    assert!(
        !store
            .finish_job(
                id,
                "dies",
                &attempt(1, "applied", None),
                JobNext::Done,
                t(12)
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store.job(id).await.unwrap().unwrap().0.state,
        JobState::Dead
    );
    // Like any dead letter, it can be replayed.
    assert!(store.replay_job(id, t(20)).await.unwrap());
    assert_eq!(
        store.claim_jobs("w3", 1, lease, t(21)).await.unwrap().len(),
        1
    );
}

// ---- the dashboard's queries ----

use hookbridge_sync_engine::store::{DeliveryBucket, DeliverySearch};

async fn inserted_at(store: &dyn Store, endpoint: &str, id: &str, event: &str, at: i64) -> i64 {
    let mut d = delivery(endpoint, id);
    d.event_type = event.into();
    d.received_at = t(at);
    match store.insert_delivery(d).await.unwrap() {
        InsertOutcome::Inserted { seq } => seq,
        other => panic!("{other:?}"),
    }
}

pub async fn dashboard_search_buckets_and_oldest_unfinished(store: &dyn Store) {
    assert!(store.oldest_unfinished_delivery().await.unwrap().is_none());
    // t(0) is the start of an hour.
    let x1 = inserted_at(store, "x", "x1", "issues", 10).await;
    let x2 = inserted_at(store, "x", "x2", "push", 20).await;
    let y1 = inserted_at(store, "y", "y1", "issues", 3605).await;
    let y2 = inserted_at(store, "y", "y2", "issues", 3606).await;
    for (seq, subject) in [(x1, "github:o/r#1"), (x2, "github:o/r#2")] {
        store
            .dispatch(
                seq,
                DeliveryStatus::Dispatched,
                &[job("r1", Some(subject))],
                t(25),
            )
            .await
            .unwrap();
    }
    store
        .dispatch(y1, DeliveryStatus::Unparseable, &[], t(3607))
        .await
        .unwrap();
    // x1's job is dead-lettered; x2's stays pending.
    let claimed = store
        .claim_jobs("w", 1, Duration::from_secs(30), t(30))
        .await
        .unwrap();
    assert_eq!(claimed[0].delivery.seq, x1);
    assert!(
        store
            .finish_job(
                claimed[0].job.id,
                "w",
                &attempt(1, "failed", Some("HTTP 400")),
                JobNext::Dead,
                t(31)
            )
            .await
            .unwrap()
    );

    let search = |s: DeliverySearch| async move {
        store
            .search_deliveries(&s)
            .await
            .unwrap()
            .iter()
            .map(|d| d.seq)
            .collect::<Vec<_>>()
    };
    assert_eq!(search(DeliverySearch::default()).await, [y2, y1, x2, x1]);
    let on_x = DeliverySearch {
        endpoint: Some(EndpointName::new("x")),
        ..Default::default()
    };
    assert_eq!(search(on_x).await, [x2, x1]);
    let issues = DeliverySearch {
        event_type: Some("issues".into()),
        ..Default::default()
    };
    assert_eq!(search(issues).await, [y2, y1, x1]);
    let unparseable = DeliverySearch {
        status: Some(DeliveryStatus::Unparseable),
        ..Default::default()
    };
    assert_eq!(search(unparseable).await, [y1]);
    let received = DeliverySearch {
        status: Some(DeliveryStatus::Received),
        ..Default::default()
    };
    assert_eq!(search(received).await, [y2]);
    let failed = DeliverySearch {
        failed: true,
        ..Default::default()
    };
    assert_eq!(search(failed).await, [x1]);
    let window = DeliverySearch {
        since: Some(t(15)),
        until: Some(t(3606)),
        ..Default::default()
    };
    assert_eq!(search(window).await, [y1, x2]);
    for (text, expected) in [
        ("x2", vec![x2]),
        ("o/r#1", vec![x1]),
        ("github:o/r", vec![x2, x1]),
        ("nothing", vec![]),
    ] {
        let by_text = DeliverySearch {
            text: Some(text.into()),
            ..Default::default()
        };
        assert_eq!(search(by_text).await, expected, "text {text:?}");
    }
    let first_page = DeliverySearch {
        limit: 2,
        ..Default::default()
    };
    assert_eq!(search(first_page).await, [y2, y1]);
    let second_page = DeliverySearch {
        limit: 2,
        before_seq: Some(y1),
        ..Default::default()
    };
    assert_eq!(search(second_page).await, [x2, x1]);
    let combined = DeliverySearch {
        endpoint: Some(EndpointName::new("y")),
        event_type: Some("issues".into()),
        since: Some(t(3600)),
        ..Default::default()
    };
    assert_eq!(search(combined).await, [y2, y1]);

    let hour = Duration::from_secs(3600);
    assert_eq!(
        store.delivery_buckets(t(0), hour).await.unwrap(),
        [
            DeliveryBucket {
                endpoint: EndpointName::new("x"),
                start: t(0),
                deliveries: 2,
                failed: 1,
            },
            DeliveryBucket {
                endpoint: EndpointName::new("y"),
                start: t(3600),
                deliveries: 2,
                failed: 1,
            },
        ]
    );
    let recent = store.delivery_buckets(t(15), hour).await.unwrap();
    assert_eq!(recent[0].deliveries, 1, "{recent:?}");
    assert_eq!(recent[0].failed, 0, "{recent:?}");
    assert!(
        store
            .delivery_buckets(t(4000), hour)
            .await
            .unwrap()
            .is_empty()
    );

    // x2 has a pending job: it is the oldest unfinished (x1's job is dead, i.e. finished).
    let oldest = store.oldest_unfinished_delivery().await.unwrap().unwrap();
    assert_eq!(oldest.seq, x2);
    let claimed = store
        .claim_jobs("w", 1, Duration::from_secs(30), t(40))
        .await
        .unwrap();
    assert_eq!(claimed[0].delivery.seq, x2);
    // Running is unfinished too.
    assert_eq!(
        store
            .oldest_unfinished_delivery()
            .await
            .unwrap()
            .unwrap()
            .seq,
        x2
    );
    store
        .finish_job(
            claimed[0].job.id,
            "w",
            &attempt(1, "applied", None),
            JobNext::Done,
            t(41),
        )
        .await
        .unwrap();
    // y2 was never dispatched.
    assert_eq!(
        store
            .oldest_unfinished_delivery()
            .await
            .unwrap()
            .unwrap()
            .seq,
        y2
    );
    store
        .dispatch(y2, DeliveryStatus::NoRules, &[], t(3610))
        .await
        .unwrap();
    assert!(store.oldest_unfinished_delivery().await.unwrap().is_none());
}

// ---- poison jobs ----

/// A job whose run kills its worker every time (or hangs it past its lease): each lost run
/// counts as an attempt, a lost run with attempts left is run again, and the job is a dead
/// letter once all are used, freeing the jobs queued behind it on the same subject.
pub async fn a_job_that_kills_its_worker_every_time_is_dead_lettered(store: &dyn Store) {
    let seq = inserted(store, "poison", "1").await;
    let next = inserted(store, "poison", "2").await;
    let subject = Some("github:o/r#7");
    for seq in [seq, next] {
        store
            .dispatch(seq, DeliveryStatus::Dispatched, &[job("r", subject)], t(0))
            .await
            .unwrap();
    }
    let lease = Duration::from_secs(10);
    let mut id = None;
    // max_attempts = 3: three runs, each lost (nobody finishes them).
    for (round, at) in [(1, 0), (2, 11), (3, 22)] {
        let claimed = store
            .claim_jobs(&format!("w{round}"), 10, lease, t(at))
            .await
            .unwrap();
        assert_eq!(
            claimed.len(),
            1,
            "round {round}: only the head of the subject"
        );
        assert_eq!(claimed[0].delivery.seq, seq);
        assert_eq!(claimed[0].job.attempts, round, "a lost run counts");
        assert_eq!(*id.get_or_insert(claimed[0].job.id), claimed[0].job.id);
        // Not before the lease expires.
        assert!(
            store
                .claim_jobs("early", 10, lease, t(at + 9))
                .await
                .unwrap()
                .is_empty()
        );
    }
    let id = id.unwrap();
    // The third lease expires: no fourth run. The job is dead and the next one of the
    // subject is taken in the same claim.
    let claimed = store.claim_jobs("w4", 10, lease, t(33)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].delivery.seq, next);
    assert_eq!(claimed[0].job.attempts, 1);
    let (job, attempts) = store.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(job.attempts, 3);
    assert!(
        job.last_error
            .as_deref()
            .is_some_and(|e| e.contains("lost")),
        "{:?}",
        job.last_error
    );
    assert_eq!(attempts.len(), 1);
    assert_eq!((attempts[0].number, attempts[0].started_at), (3, t(22)));
    assert!(
        store
            .list_jobs(&JobFilter {
                state: Some(JobState::Dead),
                ..Default::default()
            })
            .await
            .unwrap()
            .iter()
            .any(|j| j.id == id),
        "listed among the dead letters"
    );
    assert!(
        store
            .finish_job(
                claimed[0].job.id,
                "w4",
                &attempt(1, "applied", None),
                JobNext::Done,
                t(34)
            )
            .await
            .unwrap()
    );
    // Claiming again changes nothing: dead-lettered once, its attempt recorded once.
    assert!(
        store
            .claim_jobs("w5", 10, lease, t(60))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.job(id).await.unwrap().unwrap().1.len(), 1);
}

// ---- operations: unfinished deliveries, bulk replay selection, circuit pauses, calls ----

use hookbridge_sync_engine::store::{CallRecord, JobSearch, UnfinishedFilter};

pub async fn unfinished_replay_selection_pause_and_calls(store: &dyn Store) {
    let lease = Duration::from_secs(1000);
    let u1 = inserted_at(store, "u", "u1", "issues", 10).await;
    let u2 = inserted_at(store, "u", "u2", "issues", 20).await;
    let v1 = inserted_at(store, "v", "v1", "issues", 30).await;
    let u3 = inserted_at(store, "u", "u3", "issues", 40).await;
    let u4 = inserted_at(store, "u", "u4", "issues", 50).await;
    let d = DeliveryStatus::Dispatched;
    for (seq, jobs) in [
        (u1, vec![job("r1", Some("s1")), job("r2", None)]),
        (u2, vec![job("r1", Some("s2"))]),
        (v1, vec![job("r2", None)]),
        (u4, vec![job("r1", Some("s4"))]),
    ] {
        assert!(store.dispatch(seq, d, &jobs, t(100)).await.unwrap());
    }
    // u3 stays undispatched.
    let claimed = store.claim_jobs("w", 10, lease, t(101)).await.unwrap();
    let ids: Vec<JobId> = claimed.iter().map(|c| c.job.id).collect();
    assert_eq!(ids.len(), 5);
    let [u1_r1, u1_r2, u2_r1, v1_r2, u4_r1] = ids[..] else {
        unreachable!()
    };
    let finish = |id, outcome: &'static str, next| async move {
        let error = (outcome != "applied").then_some("HTTP 503");
        assert!(
            store
                .finish_job(id, "w", &attempt(1, outcome, error), next, t(102))
                .await
                .unwrap()
        );
    };
    finish(u1_r1, "failed", JobNext::Dead).await;
    finish(u1_r2, "applied", JobNext::Done).await;
    finish(u2_r1, "retry", JobNext::RetryAt(t(200))).await;
    // v1_r2 stays running.

    // A job paused by an open circuit goes back to pending, its attempt given back; only
    // its holder may pause it.
    assert!(
        !store
            .pause_job(u4_r1, "other", 1, t(150), "paused", t(103))
            .await
            .unwrap()
    );
    assert!(
        store
            .pause_job(
                u4_r1,
                "w",
                1,
                t(150),
                "paused: the circuit of x is open",
                t(103)
            )
            .await
            .unwrap()
    );
    let (paused, attempts) = store.job(u4_r1).await.unwrap().unwrap();
    assert_eq!(paused.state, JobState::Pending);
    assert_eq!(paused.attempts, 0, "the paused attempt is not counted");
    assert_eq!(paused.run_at, t(150));
    assert_eq!(
        paused.last_error.as_deref(),
        Some("paused: the circuit of x is open")
    );
    assert!(attempts.is_empty());
    assert!(
        !store
            .pause_job(u4_r1, "w", 1, t(150), "again", t(104))
            .await
            .unwrap(),
        "no longer running"
    );
    assert!(
        store
            .claim_jobs("w", 10, lease, t(149))
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_jobs("w", 10, lease, t(150)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].job.id, again[0].job.attempts), (u4_r1, 1));

    // Structured calls are stored with the attempt's lines, and read back.
    let call = CallRecord {
        service: "jira".into(),
        method: "POST".into(),
        target: "/rest/api/3/issue".into(),
        summary: "create the issue of s4".into(),
        status: Some(201),
        error: None,
    };
    let failed_call = CallRecord {
        service: "slack".into(),
        summary: "post".into(),
        error: Some("transient failure: HTTP 503".into()),
        ..CallRecord::default()
    };
    let mut with_calls = attempt(1, "applied", None);
    with_calls.calls = vec![call.clone(), failed_call.clone()];
    assert!(
        store
            .finish_job(u4_r1, "w", &with_calls, JobNext::Done, t(151))
            .await
            .unwrap()
    );
    let (_, attempts) = store.job(u4_r1).await.unwrap().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].actions, ["POST /thing"]);
    assert_eq!(attempts[0].calls, [call, failed_call]);
    // Attempts stored with lines only read back without calls.
    let (_, attempts) = store.job(u1_r1).await.unwrap().unwrap();
    assert_eq!(attempts[0].actions, ["POST /thing"]);
    assert!(attempts[0].calls.is_empty());

    // Unfinished: a job dead, retrying or running, or not dispatched yet; oldest first.
    let unfinished = |filter: UnfinishedFilter| async move {
        store
            .unfinished_deliveries(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|u| {
                let jobs: Vec<(JobId, &'static str)> =
                    u.jobs.iter().map(|j| (j.id, j.progress())).collect();
                (u.delivery.seq, jobs)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        unfinished(UnfinishedFilter::default()).await,
        [
            (u1, vec![(u1_r1, "dead")]),
            (u2, vec![(u2_r1, "retrying")]),
            (v1, vec![(v1_r2, "running")]),
            (u3, vec![]),
        ]
    );
    let seqs = |rows: Vec<(i64, Vec<(JobId, &'static str)>)>| {
        rows.into_iter().map(|(seq, _)| seq).collect::<Vec<_>>()
    };
    let filter = |f: fn(&mut UnfinishedFilter)| {
        let mut filter = UnfinishedFilter::default();
        f(&mut filter);
        filter
    };
    assert_eq!(
        seqs(unfinished(filter(|f| f.endpoint = Some("u".into()))).await),
        [u1, u2, u3]
    );
    assert_eq!(
        unfinished(filter(|f| f.rule = Some("r2".into()))).await,
        [(v1, vec![(v1_r2, "running")])],
        "u1's r2 job is done; an undispatched delivery has no job of r2"
    );
    assert_eq!(
        seqs(unfinished(filter(|f| f.received_before = Some(t(25)))).await),
        [u1, u2]
    );
    let mut paged = UnfinishedFilter {
        limit: 2,
        ..UnfinishedFilter::default()
    };
    assert_eq!(seqs(unfinished(paged.clone()).await), [u1, u2]);
    paged.after_seq = Some(u2);
    assert_eq!(seqs(unfinished(paged).await), [v1, u3]);

    // Bulk replay selection: by state, rule, endpoint and the delivery's time.
    let found = |search: JobSearch| async move {
        store
            .search_jobs(&search)
            .await
            .unwrap()
            .iter()
            .map(|j| j.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        found(JobSearch {
            states: vec![JobState::Dead],
            ..JobSearch::default()
        })
        .await,
        [u1_r1]
    );
    assert_eq!(
        found(JobSearch {
            states: vec![JobState::Done],
            endpoint: Some("u".into()),
            ..JobSearch::default()
        })
        .await,
        [u1_r2, u4_r1]
    );
    assert_eq!(
        found(JobSearch {
            rule: Some("r1".into()),
            since: Some(t(15)),
            until: Some(t(50)),
            ..JobSearch::default()
        })
        .await,
        [u2_r1],
        "until is exclusive"
    );
    assert_eq!(
        found(JobSearch {
            after_id: Some(u1_r2.0),
            limit: 2,
            ..JobSearch::default()
        })
        .await,
        [u2_r1, v1_r2]
    );

    // A finished job runs again with a fresh budget; an unfinished one is left alone.
    assert!(store.rerun_job(u4_r1, t(160)).await.unwrap());
    let (rerun, _) = store.job(u4_r1).await.unwrap().unwrap();
    assert_eq!(rerun.state, JobState::Pending);
    assert_eq!(rerun.max_attempts, 4);
    assert!(!store.rerun_job(u2_r1, t(160)).await.unwrap());
    assert!(!store.rerun_job(JobId(999_999), t(160)).await.unwrap());
    assert!(
        seqs(unfinished(UnfinishedFilter::default()).await).contains(&u4),
        "a rerun job is unfinished again"
    );
}

/// `put_state_if_absent`: the first value stays; of many concurrent calls for one key (on
/// two handles of the store, as two instances), exactly one wins; keys and rules are apart;
/// `put_state` still overwrites.
pub async fn state_if_absent_is_won_once(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let first = serde_json::json!({"asked": 1});
    assert!(
        a.put_state_if_absent("heal:gh", "g1", &first)
            .await
            .unwrap()
    );
    assert!(
        !b.put_state_if_absent("heal:gh", "g1", &serde_json::json!({"asked": 2}))
            .await
            .unwrap()
    );
    assert_eq!(a.state("heal:gh", "g1").await.unwrap(), Some(first));
    assert!(
        b.put_state_if_absent("heal:gh", "g2", &serde_json::json!(1))
            .await
            .unwrap()
    );
    assert!(
        b.put_state_if_absent("heal:other", "g1", &serde_json::json!(1))
            .await
            .unwrap()
    );
    a.put_state("heal:gh", "g1", &serde_json::json!("replaced"))
        .await
        .unwrap();
    assert_eq!(
        b.state("heal:gh", "g1").await.unwrap(),
        Some(serde_json::json!("replaced"))
    );
    // 20 keys, each claimed by 8 racing callers split over both handles.
    let mut tasks = tokio::task::JoinSet::new();
    for key in 0..20 {
        for caller in 0..8 {
            let store = if caller % 2 == 0 {
                a.clone()
            } else {
                b.clone()
            };
            tasks.spawn(async move {
                let won = store
                    .put_state_if_absent(
                        "heal:race",
                        &format!("k{key}"),
                        &serde_json::json!(caller),
                    )
                    .await
                    .unwrap();
                (key, won)
            });
        }
    }
    let mut wins = [0u32; 20];
    while let Some(joined) = tasks.join_next().await {
        let (key, won) = joined.unwrap();
        wins[key] += u32::from(won);
    }
    assert_eq!(wins, [1; 20], "each key is won exactly once");
}
