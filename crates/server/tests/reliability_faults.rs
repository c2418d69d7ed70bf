//! Downstream faults and duplicate deliveries, through a real `hookbridge serve` process
//! applying a declarative HTTP rule to a scripted mock service: 500, 503, 429 with
//! `Retry-After`, answers slower than the rule's time budget, hangs and TCP resets, for a
//! while, then recovery. Nothing is lost, retries are spaced as `[engine] backoff_base_ms`
//! says (never sooner), the last attempt dead-letters, and a replay after recovery succeeds.
//! The same delivery sent five times at once makes one job and one side effect; events of
//! one object arriving out of order converge to its newest state.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

const ADMIN: &str = "admin-token-faults-0123456789";
const RULE: &str = "issues-to-service";
const BASE: Duration = Duration::from_millis(200);
const MAX_ATTEMPTS: u32 = 4;
/// `lease_secs = 2`: a rule gets half its lease, 1 s, before it counts as timed out.
const BUDGET: Duration = Duration::from_secs(1);
/// Allowed lateness of a retry: the 50 ms poll interval plus scheduling on a loaded CI box.
const SLACK: Duration = Duration::from_millis(750);

fn config(mock: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[store]
kind = "sqlite"
path = "data/hookbridge.db"

[engine]
concurrency = 16
max_attempts = {MAX_ATTEMPTS}
backoff_base_ms = {base}
backoff_max_secs = 5
lease_secs = 2
poll_interval_ms = 50
# No circuit breaker: this test measures retry spacing, which an open circuit would replace
# with its cool-down.
circuit_failures = 0

[admin]
token = "{ADMIN}"

[endpoints.gh]
provider = "github"
secret = "{SECRET}"

[[rules]]
name = "{RULE}"
action = {{ kind = "http", url = "{mock}/effects/{{{{ event.delivery_id }}}}", body = '{{"delivery": "{{{{ event.delivery_id }}}}"}}' }}

[rules.when]
provider = "github"
event = "issues.*"
"#,
        base = BASE.as_millis()
    )
}

fn case(path: &str) -> &str {
    path.trim_start_matches("/effects/")
}

async fn admin_get(client: &reqwest::Client, server: &Server, path: &str) -> serde_json::Value {
    let r = client
        .get(server.url(path))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

async fn jobs_in(client: &reqwest::Client, server: &Server, state: &str) -> Vec<serde_json::Value> {
    admin_get(
        client,
        server,
        &format!("/admin/jobs?state={state}&limit=500"),
    )
    .await["jobs"]
        .as_array()
        .unwrap()
        .clone()
}

/// An `issues` delivery about an issue of its own: jobs on different objects run in
/// parallel (jobs on one object run one at a time, in order).
fn issue_body(number: usize) -> Vec<u8> {
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture("issues.opened.json")).unwrap();
    body["issue"]["number"] = serde_json::json!(number);
    serde_json::to_vec(&body).unwrap()
}

async fn send(client: &reqwest::Client, server: &Server, id: &str, number: usize) -> u16 {
    github_post(
        client,
        &server.url("/hooks/gh"),
        "issues",
        id,
        issue_body(number),
    )
    .send()
    .await
    .unwrap()
    .status()
    .as_u16()
}

/// The arrival times of the requests for one delivery, with their idempotency keys.
fn attempts(mock: &MockService) -> BTreeMap<String, Vec<MockRequest>> {
    let mut by_case: BTreeMap<String, Vec<MockRequest>> = BTreeMap::new();
    for r in mock.requests() {
        by_case.entry(case(&r.path).to_owned()).or_default().push(r);
    }
    by_case
}

/// Checks the gap before each retry: at least `floor(i)` and at most `floor(i)`'s ceiling
/// plus [`SLACK`], where retry `i` follows failure `i + 1`.
fn check_gaps(
    name: &str,
    requests: &[MockRequest],
    bounds: impl Fn(usize) -> (Duration, Duration),
) {
    let gaps: Vec<_> = requests
        .windows(2)
        .map(|p| p[1].at.duration_since(p[0].at).as_millis())
        .collect();
    eprintln!("{name}: retries after {gaps:?} ms");
    for (i, pair) in requests.windows(2).enumerate() {
        let gap = pair[1].at.duration_since(pair[0].at);
        let (low, high) = bounds(i);
        assert!(
            gap >= low && gap <= high + SLACK,
            "{name}: retry {} came {gap:?} after the previous attempt, expected {low:?}..={high:?} (+{SLACK:?})",
            i + 1
        );
    }
}

/// The exponential backoff window after `failures` failures: half to all of
/// `base * 2^(failures - 1)`.
fn backoff(failures: usize) -> (Duration, Duration) {
    let ceiling = BASE * 2u32.pow(failures as u32 - 1);
    (ceiling / 2, ceiling)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downstream_faults_retry_spaced_recover_dead_letter_and_replay() {
    let recovered = Arc::new(AtomicBool::new(false));
    let outage = Arc::new(AtomicUsize::new(0));
    let (r, o) = (recovered.clone(), outage.clone());
    let mock = MockService::start(move |req, prior| match case(&req.path) {
        "f500" if prior < 2 => MockReply::status(500),
        "f503" if prior < 2 => MockReply::status(503),
        "f429" if prior < 1 => MockReply::status(429).header("retry-after", "1"),
        // Applied, but answered after the rule's budget: the client gives up.
        "fslow" if prior < 1 => MockReply::status(200).after(Duration::from_secs(3)),
        "fhang" if prior < 1 => MockReply::Hang(Duration::from_secs(3)),
        "freset" if prior < 2 => MockReply::Reset,
        "fdead" if !r.load(Ordering::SeqCst) => MockReply::status(503),
        "f422" if !r.load(Ordering::SeqCst) => MockReply::status(422),
        // A shared outage: the first 30 requests of the burst fail.
        c if c.starts_with("burst-") && o.fetch_add(1, Ordering::SeqCst) < 30 => {
            MockReply::status(503)
        }
        _ => MockReply::status(200),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config(&mock.uri()));
    let client = reqwest::Client::new();

    let singles = [
        "f500", "f503", "f429", "fslow", "fhang", "freset", "fdead", "f422", "fok",
    ];
    let burst: Vec<String> = (0..20).map(|i| format!("burst-{i}")).collect();
    for (n, id) in singles
        .iter()
        .copied()
        .chain(burst.iter().map(String::as_str))
        .enumerate()
    {
        assert_eq!(send(&client, &server, id, n + 1).await, 202, "{id}");
    }
    let total = singles.len() + burst.len();

    // All but the two that cannot succeed before recovery finish; those two dead-letter.
    wait_until(
        "every job done or dead",
        Duration::from_secs(30),
        || async {
            jobs_in(&client, &server, "done").await.len() == total - 2
                && jobs_in(&client, &server, "dead").await.len() == 2
        },
    )
    .await;

    let by_case = attempts(&mock);
    let count = |c: &str| by_case.get(c).map_or(0, Vec::len);
    assert_eq!(count("f500"), 3);
    assert_eq!(count("f503"), 3);
    assert_eq!(count("f429"), 2);
    assert_eq!(count("fslow"), 2);
    assert_eq!(count("fhang"), 2);
    assert_eq!(count("freset"), 3);
    assert_eq!(count("fdead"), MAX_ATTEMPTS as usize);
    assert_eq!(count("f422"), 1, "a 4xx other than 408/429 is not retried");
    assert_eq!(count("fok"), 1);
    let burst_requests: usize = burst.iter().map(|b| count(b)).sum();
    assert_eq!(
        burst_requests,
        20 + 30,
        "each failure retried once, no more"
    );

    // Spacing: exponential with jitter, never sooner; Retry-After as a floor; a timeout
    // costs the rule's budget first.
    check_gaps("f500", &by_case["f500"], |i| backoff(i + 1));
    check_gaps("f503", &by_case["f503"], |i| backoff(i + 1));
    check_gaps("freset", &by_case["freset"], |i| backoff(i + 1));
    check_gaps("fdead", &by_case["fdead"], |i| backoff(i + 1));
    check_gaps("f429", &by_case["f429"], |_| {
        (Duration::from_secs(1), Duration::from_secs(1))
    });
    for slow in ["fslow", "fhang"] {
        check_gaps(slow, &by_case[slow], |i| {
            let (low, high) = backoff(i + 1);
            (BUDGET + low, BUDGET + high)
        });
    }
    for b in &burst {
        check_gaps(b, &by_case[b.as_str()], |i| backoff(i + 1));
    }

    // The dead letters, with every attempt recorded.
    let dead = jobs_in(&client, &server, "dead").await;
    let mut dead_ids = Vec::new();
    for job in &dead {
        let id = job["id"].as_i64().unwrap();
        dead_ids.push(id);
        let shown = admin_get(&client, &server, &format!("/admin/jobs/{id}")).await;
        let outcomes: Vec<&str> = shown["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["outcome"].as_str().unwrap())
            .collect();
        match job["last_error"].as_str().unwrap() {
            "transient failure: HTTP 503 Service Unavailable" => {
                assert_eq!(job["attempts"], MAX_ATTEMPTS);
                assert_eq!(outcomes, ["retry", "retry", "retry", "failed"]);
            }
            "permanent failure: HTTP 422 Unprocessable Entity" => {
                assert_eq!(outcomes, ["failed"]);
            }
            other => panic!("unexpected dead letter: {other}"),
        }
    }

    // The service recovers; both dead letters are replayed through the admin API.
    recovered.store(true, Ordering::SeqCst);
    for id in &dead_ids {
        let r = client
            .post(server.url(&format!("/admin/jobs/{id}/replay")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    wait_until(
        "the replayed jobs done",
        Duration::from_secs(15),
        || async { jobs_in(&client, &server, "done").await.len() == total },
    )
    .await;
    assert!(jobs_in(&client, &server, "dead").await.is_empty());

    // Nothing lost, each effect keyed once: every delivery reached the service with one
    // idempotency key across all its attempts, and its last attempt succeeded.
    let by_case = attempts(&mock);
    assert_eq!(by_case.len(), total);
    let mut keys = std::collections::HashSet::new();
    for (c, requests) in &by_case {
        let key = requests[0].idempotency_key().unwrap();
        assert!(
            requests.iter().all(|r| r.idempotency_key() == Some(key)),
            "{c}: the key changed between attempts"
        );
        assert!(
            keys.insert(key.to_owned()),
            "{c}: a key shared with another job"
        );
        assert!(requests.last().unwrap().succeeded(), "{c}");
        assert_eq!(requests[0].json()["delivery"], c.as_str());
    }
    assert_eq!(by_case["fdead"].len(), MAX_ATTEMPTS as usize + 1);
    assert_eq!(by_case["f422"].len(), 2);

    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = |outcome: &str| {
        metric(
            &metrics,
            &format!(r#"hookbridge_job_attempts_total{{rule="{RULE}",outcome="{outcome}"}}"#),
        )
        .unwrap_or(0.0)
    };
    // f500 2, f503 2, f429 1, fslow 1, fhang 1, freset 2, fdead 3, burst 30.
    assert_eq!(series("retry"), 42.0, "{metrics}");
    assert_eq!(series("failed"), 2.0);
    assert_eq!(series("applied"), total as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_delivery_five_times_in_parallel_one_job_one_effect() {
    let mock = MockService::start(|_, _| MockReply::status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config(&mock.uri()));
    let client = reqwest::Client::new();
    const DELIVERIES: usize = 20;

    let mut sends = tokio::task::JoinSet::new();
    for round in 0..5 {
        for d in 0..DELIVERIES {
            let client = client.clone();
            let url = server.url("/hooks/gh");
            sends.spawn(async move {
                let id = format!("dup-{d}");
                let r = github_post(&client, &url, "issues", &id, issue_body(d + 1))
                    .send()
                    .await
                    .unwrap();
                (id, round, r.status().as_u16())
            });
        }
    }
    let mut answers: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    while let Some(joined) = sends.join_next().await {
        let (id, _, status) = joined.unwrap();
        answers.entry(id).or_default().push(status);
    }
    for (id, mut statuses) in answers {
        statuses.sort();
        assert_eq!(statuses, [200, 200, 200, 200, 202], "{id}");
    }

    let started = Instant::now();
    wait_until("every job done", Duration::from_secs(15), || async {
        jobs_in(&client, &server, "done").await.len() >= DELIVERIES
    })
    .await;
    // Give a second job, if there were one, time to run too.
    tokio::time::sleep(Duration::from_millis(300).saturating_sub(started.elapsed())).await;
    assert_eq!(jobs_in(&client, &server, "done").await.len(), DELIVERIES);
    let by_case = attempts(&mock);
    assert_eq!(by_case.len(), DELIVERIES);
    for (c, requests) in by_case {
        assert_eq!(requests.len(), 1, "{c}: {} side effects", requests.len());
    }
    let deliveries = admin_get(&client, &server, "/admin/deliveries?limit=500").await;
    assert_eq!(
        deliveries["deliveries"].as_array().unwrap().len(),
        DELIVERIES
    );
    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(
            &metrics,
            r#"hookbridge_deliveries_total{endpoint="gh",outcome="duplicate"}"#
        ),
        Some((DELIVERIES * 4) as f64)
    );
}

/// Events of one object arriving out of order (closed before opened, edited last, ...)
/// converge to its newest state: an event older, by the provider's own timestamp, than one
/// already applied is skipped as stale, so the service never goes back to an older state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_out_of_order_converge_to_the_newest_state() {
    let mock = MockService::start(|_, _| MockReply::status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config(&mock.uri()));
    let client = reqwest::Client::new();
    const ISSUES: usize = 20;
    // Each issue's states, oldest first, with GitHub's `updated_at`.
    let states = [
        ("opened", "open", "2026-01-01T00:00:01Z"),
        ("edited", "open", "2026-01-01T00:00:02Z"),
        ("closed", "closed", "2026-01-01T00:00:03Z"),
    ];
    let mut rng = Rng(0x0dd0_5eed);
    let mut sent = 0;
    for issue in 1..=ISSUES {
        // A shuffled arrival order for each issue.
        let mut order: Vec<usize> = (0..states.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.range(0, i as u64 + 1) as usize);
        }
        for k in order {
            let (action, state, updated_at) = states[k];
            let mut body: serde_json::Value =
                serde_json::from_slice(&fixture("issues.opened.json")).unwrap();
            body["action"] = action.into();
            body["issue"]["number"] = issue.into();
            body["issue"]["state"] = state.into();
            body["issue"]["updated_at"] = updated_at.into();
            let id = format!("ooo-{issue}-{k}");
            let r = github_post(
                &client,
                &server.url("/hooks/gh"),
                "issues",
                &id,
                serde_json::to_vec(&body).unwrap(),
            )
            .send()
            .await
            .unwrap();
            assert_eq!(r.status(), 202);
            sent += 1;
        }
    }
    wait_until(
        "every job done or skipped",
        Duration::from_secs(20),
        || async {
            jobs_in(&client, &server, "done").await.len()
                + jobs_in(&client, &server, "skipped").await.len()
                == sent
        },
    )
    .await;

    // At the service, per issue: states only ever move forward, and end at the newest.
    let mut applied: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for r in mock.requests() {
        let id = case(&r.path);
        let mut parts = id.trim_start_matches("ooo-").split('-');
        let issue: usize = parts.next().unwrap().parse().unwrap();
        let k: usize = parts.next().unwrap().parse().unwrap();
        applied.entry(issue).or_default().push(k);
    }
    assert_eq!(applied.len(), ISSUES);
    for (issue, ks) in &applied {
        assert!(
            ks.windows(2).all(|w| w[0] < w[1]),
            "issue {issue} went back to an older state: {ks:?}"
        );
        assert_eq!(
            ks.last(),
            Some(&2),
            "issue {issue} did not end closed: {ks:?}"
        );
    }
    let skipped = jobs_in(&client, &server, "skipped").await;
    for job in &skipped {
        let id = job["id"].as_i64().unwrap();
        let shown = admin_get(&client, &server, &format!("/admin/jobs/{id}")).await;
        assert!(
            shown["attempts"][0]["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("stale")),
            "{shown}"
        );
    }
    let applied_count: usize = applied.values().map(Vec::len).sum();
    assert_eq!(applied_count + skipped.len(), sent);
    eprintln!(
        "{sent} events of {ISSUES} issues out of order: {applied_count} applied, {} skipped as stale",
        skipped.len()
    );
}
