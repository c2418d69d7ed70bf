//! Operations through the real `hookbridge` binary: the circuit breaker (a downstream
//! failing with 503, then recovering), alerts to a mock Slack (one message per episode),
//! the unfinished listing with its filters, bulk replay by filter, the replay dry run's diff,
//! and what a delivery's page shows it caused.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const ADMIN: &str = "admin-token-ops-0123456789";

/// Runs the CLI in `dir` with its `hookbridge.toml`: (exit code, stdout, stderr).
fn run(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookbridge"))
        .args(args)
        .args(["--config", "hookbridge.toml"])
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn admin_get(client: &reqwest::Client, server: &Server, path: &str) -> Value {
    let r = client
        .get(server.url(path))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

async fn admin_post(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let r = client
        .post(server.url(path))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn jobs_in(client: &reqwest::Client, server: &Server, state: &str) -> Vec<Value> {
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

async fn metrics(client: &reqwest::Client, server: &Server) -> String {
    client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// An `issues.opened` delivery about issue `number`, on `endpoint`, with delivery id `id`.
async fn send(client: &reqwest::Client, server: &Server, endpoint: &str, id: &str, number: u64) {
    let mut body: Value = serde_json::from_slice(&fixture("issues.opened.json")).unwrap();
    body["issue"]["number"] = json!(number);
    let r = github_post(
        client,
        &server.url(&format!("/hooks/{endpoint}")),
        "issues",
        id,
        serde_json::to_vec(&body).unwrap(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 202, "{id}");
}

/// The texts the mock Slack received.
fn slack_texts(slack: &MockService) -> Vec<String> {
    slack
        .requests()
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn header(engine: &str, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[store]
path = "data/hookbridge.db"

[engine]
poll_interval_ms = 50
lease_secs = 10
{engine}

[admin]
token = "{ADMIN}"

[endpoints.gh]
provider = "github"
secret = "{SECRET}"

[endpoints.gh2]
provider = "github"
secret = "{SECRET}"
{extra}
"#
    )
}

fn rule(name: &str, url: &str, event: &str) -> String {
    format!(
        r#"
[[rules]]
name = "{name}"
action = {{ kind = "http", url = "{url}/{{{{ event.delivery_id }}}}" }}

[rules.when]
provider = "github"
event = "{event}"
"#
    )
}

fn alerts(slack: &MockService) -> String {
    format!(
        r#"
[connections.ops-chat]
kind = "slack"
url = "{}/services/T0/B0/alerts"

[alerts]
target = "ops-chat"
interval_ms = 200
"#,
        slack.uri()
    )
}

/// A downstream outage: after 3 consecutive 503s the target's circuit opens; its jobs wait
/// (paused, attempts not burnt, none dead-lettered) while probes are let through one at a
/// time; when the service recovers a probe closes the circuit and every job is applied once.
/// The state shows in the admin API, `hookbridge circuits` and the metrics; the mock Slack
/// gets exactly one message when the circuit opens and one when it closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_pauses_jobs_probes_and_recovers_with_one_alert_per_episode() {
    let down = Arc::new(AtomicBool::new(true));
    let d = down.clone();
    let mock = MockService::start(move |_, _| {
        MockReply::status(if d.load(Ordering::SeqCst) { 503 } else { 200 })
    })
    .await;
    let slack = MockService::start(|_, _| MockReply::status(200)).await;
    let engine = "concurrency = 2\nmax_attempts = 8\nbackoff_base_ms = 100\nbackoff_max_secs = 1\n\
                  circuit_failures = 3\ncircuit_cooldown_secs = 1";
    let config = header(engine, &alerts(&slack))
        + &rule("to-service", &format!("{}/effects", mock.uri()), "issues.*");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config);
    let client = reqwest::Client::new();
    let jobs = 8;
    for i in 0..jobs {
        send(&client, &server, "gh", &format!("cb-{i}"), i + 1).await;
    }
    let circuit = |body: &Value| {
        body["circuits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["target"] == "127.0.0.1")
            .cloned()
    };
    wait_until("the circuit opens", Duration::from_secs(15), || async {
        circuit(&admin_get(&client, &server, "/admin/circuits").await)
            .is_some_and(|c| c["state"] != "closed")
    })
    .await;
    let status = admin_get(&client, &server, "/admin/circuits").await;
    assert_eq!(status["enabled"], true);
    assert_eq!(status["failures"], 3);
    assert_eq!(status["cooldown_secs"], 1);

    let (code, out, err) = run(dir.path(), &["circuits", "--url", &server.url("")]);
    assert_eq!(code, Some(0), "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("127.0.0.1"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("open"), "{out}");
    assert!(
        out.contains("opens after 3 consecutive transient failures"),
        "{out}"
    );
    assert_eq!(
        metric(
            &metrics(&client, &server).await,
            r#"hookbridge_circuit_open{target="127.0.0.1"}"#
        ),
        Some(1.0)
    );

    // Two cool-downs of outage: jobs wait instead of burning their attempts.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        jobs_in(&client, &server, "dead").await.is_empty(),
        "none dead-lettered"
    );
    let paused = jobs_in(&client, &server, "pending")
        .await
        .into_iter()
        .filter(|j| {
            j["last_error"]
                .as_str()
                .is_some_and(|e| e.starts_with("paused"))
        })
        .count();
    assert!(paused > 0, "jobs are paused by the open circuit");
    let failed = mock
        .requests()
        .iter()
        .filter(|r| r.status == Some(503))
        .count();
    assert!(
        failed < jobs as usize,
        "{failed} calls failed for {jobs} jobs: paused jobs do not call"
    );

    down.store(false, Ordering::SeqCst);
    wait_until("every job done", Duration::from_secs(20), || async {
        jobs_in(&client, &server, "done").await.len() == jobs as usize
    })
    .await;
    assert!(jobs_in(&client, &server, "dead").await.is_empty());
    let closed = circuit(&admin_get(&client, &server, "/admin/circuits").await).unwrap();
    assert_eq!(closed["state"], "closed", "{closed}");
    assert_eq!(closed["opened_total"], 1, "{closed}");
    assert!(closed["paused_total"].as_u64().unwrap() > 0, "{closed}");
    assert_eq!(
        metric(
            &metrics(&client, &server).await,
            r#"hookbridge_circuit_open{target="127.0.0.1"}"#
        ),
        Some(0.0)
    );
    // Each delivery's effect was applied once.
    let applied = mock.requests().iter().filter(|r| r.succeeded()).count();
    assert_eq!(applied, jobs as usize);

    wait_until("two alerts", Duration::from_secs(10), || async {
        slack.requests().len() >= 2
    })
    .await;
    // More checks pass: still one message per transition.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let texts = slack_texts(&slack);
    assert_eq!(texts.len(), 2, "{texts:#?}");
    assert!(
        texts[0].contains("the circuit of 127.0.0.1 opened"),
        "{texts:#?}"
    );
    assert!(
        texts[1].contains("the circuit of 127.0.0.1 closed"),
        "{texts:#?}"
    );
}

/// Dead letters are announced once when they appear (not once per job), once when replays
/// clear them, and again when a new episode starts; a restart does not announce an episode
/// again. `hookbridge_dead_letters` follows the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_alert_once_per_episode() {
    let fixed = Arc::new(AtomicBool::new(false));
    let f = fixed.clone();
    let mock = MockService::start(move |req, _| {
        let bad = req.path.contains("bad") && !f.load(Ordering::SeqCst);
        MockReply::status(if bad { 422 } else { 200 })
    })
    .await;
    let slack = MockService::start(|_, _| MockReply::status(200)).await;
    let config = header("max_attempts = 2", &alerts(&slack))
        + &rule("notify", &format!("{}/v1", mock.uri()), "issues.*");
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &config);
    let client = reqwest::Client::new();
    let dead = |server: &Server, n: usize| {
        let client = client.clone();
        let url = server.url("/admin/dead-letters");
        async move {
            let body: Value = client
                .get(url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["jobs"].as_array().unwrap().len() == n
        }
    };

    send(&client, &server, "gh", "bad-1", 1).await;
    wait_until("one dead letter", Duration::from_secs(10), || {
        dead(&server, 1)
    })
    .await;
    wait_until("the alert", Duration::from_secs(10), || async {
        slack.requests().len() == 1
    })
    .await;
    send(&client, &server, "gh", "bad-2", 2).await;
    send(&client, &server, "gh", "bad-3", 3).await;
    wait_until("three dead letters", Duration::from_secs(10), || {
        dead(&server, 3)
    })
    .await;
    wait_until("the gauge", Duration::from_secs(5), || async {
        metric(&metrics(&client, &server).await, "hookbridge_dead_letters") == Some(3.0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let texts = slack_texts(&slack);
    assert_eq!(texts.len(), 1, "one message for the episode: {texts:#?}");
    assert!(texts[0].contains("1 job(s) dead-lettered") && texts[0].contains("notify (1)"));

    // Fixed downstream, replayed: the episode ends, announced once.
    fixed.store(true, Ordering::SeqCst);
    let (code, out, err) = run(dir.path(), &["deliveries", "replay", "--status", "dead"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("replayed 3 job(s)"), "{out}");
    wait_until("dead letters cleared", Duration::from_secs(10), || {
        dead(&server, 0)
    })
    .await;
    wait_until("the cleared alert", Duration::from_secs(10), || async {
        slack.requests().len() == 2
    })
    .await;
    wait_until("the gauge back to 0", Duration::from_secs(5), || async {
        metric(&metrics(&client, &server).await, "hookbridge_dead_letters") == Some(0.0)
    })
    .await;

    // A new episode is announced again; a restart does not repeat it.
    fixed.store(false, Ordering::SeqCst);
    send(&client, &server, "gh", "bad-4", 4).await;
    wait_until("a new dead letter", Duration::from_secs(10), || {
        dead(&server, 1)
    })
    .await;
    wait_until(
        "the new episode's alert",
        Duration::from_secs(10),
        || async { slack.requests().len() == 3 },
    )
    .await;
    server.terminate();
    let server = Server::start(dir.path(), &config);
    assert!(dead(&server, 1).await);
    // Past the old instance's alert lease (3 checks and a second): the new one checks.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let texts = slack_texts(&slack);
    assert_eq!(texts.len(), 3, "{texts:#?}");
    assert!(texts[1].contains("cleared"), "{texts:#?}");
    assert!(texts[2].contains("dead-lettered"), "{texts:#?}");
    drop(server);
}

/// `deliveries list --unfinished` and `GET /admin/deliveries?unfinished=true`: deliveries
/// with a job dead or retrying, with their filters (endpoint, rule, age).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_deliveries_are_listed_with_filters() {
    let mock = MockService::start(|req, _| {
        let status = if req.path.starts_with("/flaky/dead") {
            422
        } else if req.path.starts_with("/flaky/retry") {
            503
        } else {
            200
        };
        MockReply::status(status)
    })
    .await;
    // Retries far in the future: a retrying job stays pending for the test.
    let engine = "max_attempts = 5\nbackoff_base_ms = 600000\ncircuit_failures = 0";
    let config = header(engine, "")
        + &rule("to-ok", &format!("{}/ok", mock.uri()), "issues.*")
        + &rule("to-flaky", &format!("{}/flaky", mock.uri()), "issues.*");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config);
    let client = reqwest::Client::new();
    send(&client, &server, "gh", "dead-1", 1).await;
    send(&client, &server, "gh2", "retry-1", 2).await;
    send(&client, &server, "gh", "fine-1", 3).await;
    wait_until("every job tried", Duration::from_secs(15), || async {
        jobs_in(&client, &server, "done").await.len() == 4
            && jobs_in(&client, &server, "dead").await.len() == 1
            && jobs_in(&client, &server, "pending")
                .await
                .iter()
                .any(|j| j["attempts"] == 1)
    })
    .await;

    let (code, out, err) = run(dir.path(), &["deliveries", "list", "--unfinished"]);
    assert_eq!(code, Some(0), "{err}");
    let line = |id: &str| out.lines().find(|l| l.contains(id)).map(str::to_owned);
    let dead_line = line("dead-1").unwrap_or_else(|| panic!("{out}"));
    assert!(
        dead_line.contains("to-flaky dead") && dead_line.contains("HTTP 422"),
        "{out}"
    );
    assert!(
        !dead_line.contains("to-ok"),
        "finished jobs are not listed: {out}"
    );
    let retry_line = line("retry-1").unwrap_or_else(|| panic!("{out}"));
    assert!(
        retry_line.contains("to-flaky retrying") && retry_line.contains("gh2"),
        "{out}"
    );
    assert!(line("fine-1").is_none(), "{out}");

    let ids = |args: &[&str]| {
        let (code, out, err) = run(dir.path(), args);
        assert_eq!(code, Some(0), "{err}");
        out.lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(5).map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let list = ["deliveries", "list", "--unfinished"];
    assert_eq!(
        ids(&[&list[..], &["--endpoint", "gh"]].concat()),
        ["dead-1"]
    );
    assert_eq!(
        ids(&[&list[..], &["--rule", "to-flaky"]].concat()),
        ["dead-1", "retry-1"]
    );
    assert!(ids(&[&list[..], &["--rule", "to-ok"]].concat()).is_empty());
    assert!(ids(&[&list[..], &["--older-than", "1h"]].concat()).is_empty());
    assert_eq!(ids(&[&list[..], &["--older-than", "0s"]].concat()).len(), 2);
    let (code, out, _) = run(dir.path(), &[&list[..], &["--json"]].concat());
    assert_eq!(code, Some(0));
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["delivery"]["delivery_id"], "retry-1");
    assert_eq!(rows[1]["jobs"][0]["rule"], "to-flaky");
    let (code, _, err) = run(dir.path(), &["deliveries", "list", "--older-than", "1h"]);
    assert_eq!(code, Some(2), "--older-than needs --unfinished: {err}");

    let api = |query: &str| {
        let client = client.clone();
        let url = server.url(&format!("/admin/deliveries?unfinished=true{query}"));
        async move {
            let body: Value = client
                .get(url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["deliveries"].as_array().unwrap().clone()
        }
    };
    let all = api("").await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["delivery_id"], "dead-1");
    assert_eq!(all[0]["jobs"][0]["progress"], "dead");
    let gh2 = api("&endpoint=gh2").await;
    assert_eq!(gh2.len(), 1);
    assert_eq!(gh2[0]["jobs"][0]["progress"], "retrying");
    assert_eq!(gh2[0]["jobs"][0]["attempts"], 1);
    assert!(api("&rule=to-ok").await.is_empty());
    assert!(api("&rule=to-flaky&older_than=3600").await.is_empty());
    assert_eq!(api("&rule=to-flaky&older_than=0").await.len(), 2);
    let r = client
        .get(server.url("/admin/deliveries?older_than=60"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// Bulk replay by filter (CLI and admin API), what a delivery's page shows it caused, and
/// `replay --dry-run`: per delivery, the actions the current rules would take next to those
/// recorded, as a diff, without calling anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_replay_by_filter_and_replay_dry_run_diff() {
    let fixed = Arc::new(AtomicBool::new(false));
    let f = fixed.clone();
    let mock = MockService::start(move |req, _| {
        let bad = req.path.contains("bad") && !f.load(Ordering::SeqCst);
        MockReply::status(if bad { 422 } else { 200 })
    })
    .await;
    let v1 = rule("notify", &format!("{}/v1", mock.uri()), "issues.*");
    let config = header("max_attempts = 2\ncircuit_failures = 0", "") + &v1;
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &config);
    let client = reqwest::Client::new();
    for (endpoint, id, n) in [
        ("gh", "ok-1", 1),
        ("gh", "ok-2", 2),
        ("gh", "bad-1", 3),
        ("gh", "bad-2", 4),
        ("gh2", "bad-3", 5),
    ] {
        send(&client, &server, endpoint, id, n).await;
    }
    wait_until("2 done, 3 dead", Duration::from_secs(15), || async {
        jobs_in(&client, &server, "done").await.len() == 2
            && jobs_in(&client, &server, "dead").await.len() == 3
    })
    .await;
    let successes = |path: &str| {
        mock.requests()
            .iter()
            .filter(|r| r.path == path && r.succeeded())
            .count()
    };

    // What a delivery caused: each job's calls, with the answer's status.
    let (code, out, err) = run(dir.path(), &["deliveries", "show", "ok-1"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("job 1 rule notify: done"), "{out}");
    assert!(
        out.contains("call   127.0.0.1 POST 127.0.0.1/v1/ok-1 -> 200"),
        "{out}"
    );
    let (_, out, _) = run(dir.path(), &["deliveries", "show", "bad-1"]);
    assert!(
        out.contains("call   127.0.0.1 POST 127.0.0.1/v1/bad-1 -> 422, error: permanent failure"),
        "{out}"
    );
    let seq = admin_get(&client, &server, "/admin/deliveries?limit=5").await["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["delivery_id"] == "ok-1")
        .unwrap()["seq"]
        .clone();
    let page = admin_get(&client, &server, &format!("/admin/deliveries/{seq}")).await;
    let call = &page["jobs"][0]["attempts"][0]["calls"][0];
    assert_eq!(call["service"], "127.0.0.1");
    assert_eq!(call["method"], "POST");
    assert_eq!(call["target"], "127.0.0.1/v1/ok-1");
    assert_eq!(call["status"], 200);

    // The downstream is fixed: replay the dead letters of endpoint gh only (CLI).
    fixed.store(true, Ordering::SeqCst);
    let (code, out, err) = run(
        dir.path(),
        &[
            "deliveries",
            "replay",
            "--status",
            "dead",
            "--endpoint",
            "gh",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("replayed 2 job(s)"), "{out}");
    wait_until(
        "bad-1 and bad-2 applied",
        Duration::from_secs(15),
        || async { successes("/v1/bad-1") == 1 && successes("/v1/bad-2") == 1 },
    )
    .await;
    assert_eq!(
        successes("/v1/bad-3"),
        0,
        "another endpoint's dead letter is left alone"
    );
    assert_eq!(jobs_in(&client, &server, "dead").await.len(), 1);

    // The admin API: a status is required, unknown fields are refused.
    let (code, body) = admin_post(&client, &server, "/admin/replay", json!({})).await;
    assert_eq!(code, 400, "{body}");
    let (code, _) = admin_post(
        &client,
        &server,
        "/admin/replay",
        json!({"statuss": "dead"}),
    )
    .await;
    assert_eq!(code, 400);
    let (code, body) =
        admin_post(&client, &server, "/admin/replay", json!({"status": "dead"})).await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["jobs"].as_array().unwrap().len(), 1);
    wait_until("bad-3 applied", Duration::from_secs(15), || async {
        successes("/v1/bad-3") == 1
    })
    .await;
    // Done jobs of one endpoint in a time range run again.
    let since = (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (code, body) = admin_post(
        &client,
        &server,
        "/admin/replay",
        json!({"status": "done", "endpoint": "gh2", "since": since}),
    )
    .await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["jobs"].as_array().unwrap().len(), 1);
    wait_until("bad-3 applied again", Duration::from_secs(15), || async {
        successes("/v1/bad-3") == 2
    })
    .await;
    wait_until("everything done", Duration::from_secs(15), || async {
        jobs_in(&client, &server, "done").await.len() == 5
    })
    .await;
    server.terminate();

    // Unchanged rules: the dry run shows the same actions.
    let requests = mock.requests().len();
    let (code, out, err) = run(
        dir.path(),
        &["deliveries", "replay", "--dry-run", "--since", "1h"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("5 delivery(ies), 0 with changes"), "{out}");
    assert!(
        out.contains("rule notify: recorded done, attempt 1; now applied (same)"),
        "{out}"
    );
    assert!(
        out.contains("      127.0.0.1 POST 127.0.0.1/v1/ok-1"),
        "{out}"
    );
    // bad-1's first applied attempt is its second.
    assert!(out.contains("recorded done, attempt 2"), "{out}");

    // New rule code: notify moves to /v2, and a new rule audits opened issues.
    let v2 = rule("notify", &format!("{}/v2", mock.uri()), "issues.*")
        + &rule("audit", &format!("{}/audit", mock.uri()), "issues.opened");
    std::fs::write(
        dir.path().join("hookbridge.toml"),
        header("max_attempts = 2\ncircuit_failures = 0", "") + &v2,
    )
    .unwrap();
    let (code, out, err) = run(
        dir.path(),
        &["deliveries", "replay", "--dry-run", "--since", "1h"],
    );
    assert_eq!(code, Some(0), "{err}");
    let expected = "  rule notify: recorded done, attempt 1; now applied\n\
                    \x20   - 127.0.0.1 POST 127.0.0.1/v1/ok-1\n\
                    \x20   + 127.0.0.1 POST 127.0.0.1/v2/ok-1\n\
                    \x20 rule audit: recorded no job; now applied\n\
                    \x20   + 127.0.0.1 POST 127.0.0.1/audit/ok-1\n";
    assert!(out.contains(expected), "{out}");
    assert!(out.contains("5 delivery(ies), 5 with changes"), "{out}");
    // Only one rule, only done jobs, as JSON.
    let (code, out, err) = run(
        dir.path(),
        &[
            "deliveries",
            "replay",
            "--dry-run",
            "--rule",
            "notify",
            "--status",
            "done",
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let diffs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(diffs.len(), 5);
    for diff in &diffs {
        assert_eq!(diff["rules"].as_array().unwrap().len(), 1, "{diff}");
        assert_eq!(diff["rules"][0]["rule"], "notify");
        assert_eq!(diff["rules"][0]["changed"], true);
        assert_eq!(diff["rules"][0]["lines"][0]["side"], "recorded");
        assert_eq!(diff["rules"][0]["lines"][1]["side"], "now");
    }
    // One delivery by its id.
    let (code, out, err) = run(dir.path(), &["deliveries", "replay", "bad-3", "--dry-run"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("+ 127.0.0.1 POST 127.0.0.1/v2/bad-3"), "{out}");
    assert!(out.contains("1 delivery(ies), 1 with changes"), "{out}");
    assert_eq!(mock.requests().len(), requests, "a dry run calls nothing");
    // A bulk replay needs a status.
    let (code, _, err) = run(dir.path(), &["deliveries", "replay", "--endpoint", "gh"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("give a status"), "{err}");
}
