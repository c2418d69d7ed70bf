//! `github-asana` and `feed-asana` on the engine with a SQLite store, against a stateful
//! fake Asana and a feed served by wiremock: tasks created, updated, completed and reopened
//! from GitHub deliveries; stale events; reviewer round-robin; a lost create answer; feed
//! polls that overlap and restart.

#[path = "integration_github_asana/fake_asana.rs"]
mod fake_asana;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fake_asana::FakeAsana;
use hookbridge_core::{DeliveryId, RawDelivery, Secret};
use hookbridge_providers::api::RetryPolicy;
use hookbridge_providers::asana::auth::personal_access_token;
use hookbridge_providers::asana::client::{AsanaClient, api_builder};
use hookbridge_providers::github::{Github, GithubOptions};
use hookbridge_sync_engine::engine::{Backoff, Engine, EngineConfig, RunningEngine};
use hookbridge_sync_engine::integrations::{self, Connections, IntegrationConfig};
use hookbridge_sync_engine::store::{
    DeliveryStatus, InsertOutcome, JobFilter, JobState, NewDelivery, SqliteStore, Store,
};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const PROJECT: &str = "1204000000000001";
const MONA: &str = "1205000000000002";
const HUBOT: &str = "1205000000000003";
const OCTOCAT: &str = "1205000000000001";

fn asana_client(fake: &FakeAsana) -> AsanaClient {
    AsanaClient::new(
        api_builder(&fake.base_url())
            .unwrap()
            .auth(personal_access_token(Secret::new("test-token")))
            .retry(RetryPolicy {
                attempts: 2,
                base: Duration::from_millis(5),
                max_wait: Duration::from_secs(1),
            })
            .build()
            .unwrap(),
    )
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        concurrency: 4,
        max_attempts: 4,
        backoff: Backoff {
            base: Duration::from_millis(20),
            max: Duration::from_millis(200),
        },
        lease: Duration::from_secs(10),
        poll_interval: Duration::from_millis(50),
        ..EngineConfig::default()
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    asana: FakeAsana,
    running: Option<RunningEngine>,
    engine: Engine,
    seq: usize,
}

impl Harness {
    /// An engine with the integration `name` built from `config` (JSON, with `kind`).
    async fn start(name: &str, config: Value) -> Harness {
        let asana =
            FakeAsana::start(&[("mona@example.com", MONA), ("hubot@example.com", HUBOT)]).await;
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(dir.path().join("hb.db"), Default::default())
                .await
                .unwrap(),
        );
        let engine = Self::engine(name, config, &asana, store.clone());
        let running = engine.start();
        Harness {
            _dir: dir,
            store,
            asana,
            running: Some(running),
            engine,
            seq: 0,
        }
    }

    fn engine(name: &str, config: Value, asana: &FakeAsana, store: Arc<dyn Store>) -> Engine {
        let connections = Connections::default().with_asana("asana", asana_client(asana));
        let config: IntegrationConfig = serde_json::from_value(config).unwrap();
        let integration = integrations::build(name, config, &connections).unwrap();
        let github = Github::new(vec![Secret::new("s")], GithubOptions::default()).unwrap();
        let mut builder = Engine::builder(store)
            .endpoint("github", Arc::new(github))
            .config(engine_config());
        for rule in integration.rules {
            builder = builder.rule(rule);
        }
        for source in integration.sources {
            builder = builder.source(source);
        }
        for (endpoint, provider) in integration.endpoints {
            builder = builder.endpoint(endpoint, provider);
        }
        builder.build()
    }

    async fn restart(&mut self, name: &str, config: Value) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
        self.engine = Self::engine(name, config, &self.asana, self.store.clone());
        self.running = Some(self.engine.start());
    }

    /// Stores a GitHub delivery as the server would, and returns its sequence number.
    async fn deliver(&mut self, event_type: &str, body: &Value) -> i64 {
        self.seq += 1;
        let id = format!("delivery-{}", self.seq);
        let mut headers = http::HeaderMap::new();
        headers.insert("x-github-event", event_type.parse().unwrap());
        headers.insert("x-github-delivery", id.parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        let raw = RawDelivery::new("github", headers, serde_json::to_vec(body).unwrap());
        let delivery =
            NewDelivery::from_raw(&raw, "github", DeliveryId::new(id), event_type.to_owned());
        match self.store.insert_delivery(delivery).await.unwrap() {
            InsertOutcome::Inserted { seq } => seq,
            InsertOutcome::Duplicate => panic!("duplicate delivery"),
        }
    }

    /// Delivers and waits until everything is processed.
    async fn send(&mut self, event_type: &str, body: &Value) -> i64 {
        let seq = self.deliver(event_type, body).await;
        self.settle().await;
        seq
    }

    async fn settle(&self) {
        wait_until("the engine to settle", Duration::from_secs(20), || async {
            let undispatched = self.store.undispatched(10).await.unwrap();
            let jobs = self
                .store
                .list_jobs(&JobFilter {
                    limit: 10_000,
                    ..Default::default()
                })
                .await
                .unwrap();
            undispatched.is_empty()
                && jobs
                    .iter()
                    .all(|j| !matches!(j.state, JobState::Pending | JobState::Running))
        })
        .await;
    }

    async fn jobs_of(&self, seq: i64) -> Vec<hookbridge_sync_engine::store::Job> {
        self.store
            .list_jobs(&JobFilter {
                delivery_seq: Some(seq),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    async fn job_state(&self, seq: i64) -> JobState {
        let jobs = self.jobs_of(seq).await;
        assert_eq!(jobs.len(), 1, "one job for delivery {seq}: {jobs:?}");
        jobs[0].state
    }

    async fn link(&self, rule: &str, a: &str) -> Option<String> {
        self.store.link_from(rule, a).await.unwrap().map(|l| l.b)
    }

    fn task(&self, key: &str) -> Value {
        let gid = key.strip_prefix("asana:").unwrap();
        self.asana.tasks()[gid].clone()
    }
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
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
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn sample(name: &str) -> Value {
    let json = hookbridge_providers::github::SAMPLES
        .iter()
        .find(|s| s.name == name)
        .unwrap()
        .json;
    serde_json::from_str(json).unwrap()
}

fn user(login: &str) -> Value {
    json!({ "login": login, "id": login.len() as u64 * 1000, "type": "User" })
}

/// An `issues` event for issue #12 of octo-org/octo-repo.
fn issue(action: &str, title: &str, state: &str, updated_at: &str, assignees: &[&str]) -> Value {
    let mut body = sample("issues.opened");
    body["action"] = json!(action);
    body["issue"]["title"] = json!(title);
    body["issue"]["state"] = json!(state);
    body["issue"]["updated_at"] = json!(updated_at);
    body["issue"]["assignees"] = Value::Array(assignees.iter().map(|a| user(a)).collect());
    body["issue"]["assignee"] = assignees.first().map(|a| user(a)).unwrap_or(Value::Null);
    body
}

/// A `pull_request` event for pull request `number`.
fn pull(action: &str, number: u64, assignees: &[&str], reviewers: &[&str], at: &str) -> Value {
    let mut body = sample("pull_request.opened");
    body["action"] = json!(action);
    body["number"] = json!(number);
    let pr = &mut body["pull_request"];
    pr["number"] = json!(number);
    pr["html_url"] = json!(format!(
        "https://github.com/octo-org/octo-repo/pull/{number}"
    ));
    pr["title"] = json!(format!("Change number {number}"));
    pr["updated_at"] = json!(at);
    pr["assignees"] = Value::Array(assignees.iter().map(|a| user(a)).collect());
    pr["assignee"] = assignees.first().map(|a| user(a)).unwrap_or(Value::Null);
    pr["requested_reviewers"] = Value::Array(reviewers.iter().map(|a| user(a)).collect());
    body
}

fn github_asana(extra: Value) -> Value {
    let mut config = json!({
        "kind": "github-asana",
        "asana": "asana",
        "projects": [{ "repo": "octo-org/octo-*", "project": PROJECT }],
        "users": { "monalisa": "mona@example.com", "hubot": "hubot@example.com", "octocat": OCTOCAT },
    });
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            config.insert(k.clone(), v.clone());
        }
    }
    config
}

const ISSUE: &str = "github:octo-org/octo-repo#12";
const ISSUE_URL: &str = "https://github.com/octo-org/octo-repo/issues/12";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_becomes_a_task_that_follows_it() {
    let mut h = Harness::start("gh-asana", github_asana(json!({}))).await;

    // Opened, assigned to monalisa: a task in the mapped project, assigned to her.
    let seq = h
        .send(
            "issues",
            &issue(
                "opened",
                "Crash on start",
                "open",
                "2024-05-17T09:00:00Z",
                &["monalisa"],
            ),
        )
        .await;
    assert_eq!(h.job_state(seq).await, JobState::Done);
    let key = h.link("gh-asana", ISSUE).await.expect("linked");
    let task = h.task(&key);
    assert_eq!(task["name"], "Crash on start (#12)");
    assert!(
        task["notes"].as_str().unwrap().starts_with(ISSUE_URL),
        "{task}"
    );
    assert_eq!(task["projects"][0]["gid"], PROJECT);
    assert_eq!(task["assignee"]["gid"], MONA);
    assert_eq!(task["completed"], false);

    // Edited: the name follows; reassigned to octocat: the assignee follows.
    h.send(
        "issues",
        &issue(
            "edited",
            "Crash on start-up",
            "open",
            "2024-05-17T10:00:00Z",
            &["monalisa"],
        ),
    )
    .await;
    assert_eq!(h.task(&key)["name"], "Crash on start-up (#12)");
    h.send(
        "issues",
        &issue(
            "assigned",
            "Crash on start-up",
            "open",
            "2024-05-17T10:30:00Z",
            &["octocat"],
        ),
    )
    .await;
    assert_eq!(h.task(&key)["assignee"]["gid"], OCTOCAT);

    // Closed: completed.
    h.send(
        "issues",
        &issue(
            "closed",
            "Crash on start-up",
            "closed",
            "2024-05-18T14:05:12Z",
            &["octocat"],
        ),
    )
    .await;
    assert_eq!(h.task(&key)["completed"], true);

    // A stale `edited` (older than the close) delivered late: skipped, still completed.
    let stale = h
        .send(
            "issues",
            &issue(
                "edited",
                "Crash on start-up",
                "open",
                "2024-05-17T11:00:00Z",
                &["octocat"],
            ),
        )
        .await;
    assert_eq!(h.job_state(stale).await, JobState::Skipped);
    assert_eq!(h.task(&key)["completed"], true);

    // An event of the same second as the close that still shows the issue open (`labeled`
    // is not an action that reopens): the rule itself keeps the task completed.
    let same_second = h
        .send(
            "issues",
            &issue(
                "labeled",
                "Crash on start-up",
                "open",
                "2024-05-18T14:05:12Z",
                &["octocat"],
            ),
        )
        .await;
    assert_eq!(h.job_state(same_second).await, JobState::Skipped);
    assert_eq!(h.task(&key)["completed"], true);

    // Reopened: reopened.
    h.send(
        "issues",
        &issue(
            "reopened",
            "Crash on start-up",
            "open",
            "2024-05-19T08:00:00Z",
            &["octocat"],
        ),
    )
    .await;
    assert_eq!(h.task(&key)["completed"], false);

    // Completed by hand in Asana, then edited on GitHub: stays completed; assigned: reopens.
    let gid = key.strip_prefix("asana:").unwrap().to_owned();
    h.asana.state.lock().unwrap().tasks.get_mut(&gid).unwrap()["completed"] = json!(true);
    h.send(
        "issues",
        &issue(
            "edited",
            "Crash on boot",
            "open",
            "2024-05-19T09:00:00Z",
            &["octocat"],
        ),
    )
    .await;
    assert_eq!(h.task(&key)["completed"], true);
    assert_eq!(h.task(&key)["name"], "Crash on boot (#12)");
    h.send(
        "issues",
        &issue(
            "assigned",
            "Crash on boot",
            "open",
            "2024-05-19T10:00:00Z",
            &["octocat", "monalisa"],
        ),
    )
    .await;
    assert_eq!(h.task(&key)["completed"], false);

    // Reassigned by hand in Asana: kept while GitHub's assignee does not change.
    h.asana.state.lock().unwrap().tasks.get_mut(&gid).unwrap()["assignee"] = json!({"gid": HUBOT});
    h.send(
        "issues",
        &issue(
            "labeled",
            "Crash on boot",
            "open",
            "2024-05-19T11:00:00Z",
            &["octocat"],
        ),
    )
    .await;
    assert_eq!(h.task(&key)["assignee"]["gid"], HUBOT);

    // One task all along, created once.
    assert_eq!(h.asana.tasks().len(), 1);
    assert_eq!(h.asana.count("POST", "tasks").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_issue_gets_no_task_and_a_late_opened_is_stale() {
    let mut h = Harness::start("gh-asana", github_asana(json!({}))).await;
    let closed = h
        .send(
            "issues",
            &issue("closed", "Old", "closed", "2024-05-18T14:05:12Z", &[]),
        )
        .await;
    assert_eq!(h.job_state(closed).await, JobState::Done);
    let opened = h
        .send(
            "issues",
            &issue("opened", "Old", "open", "2024-05-17T09:00:00Z", &[]),
        )
        .await;
    assert_eq!(h.job_state(opened).await, JobState::Skipped);
    assert!(h.asana.tasks().is_empty());
    assert!(h.link("gh-asana", ISSUE).await.is_none());
}

async fn assignee_of(h: &Harness, number: u64) -> String {
    let key = h
        .link("gh-asana", &format!("github:octo-org/octo-repo#{number}"))
        .await
        .expect("linked");
    h.task(&key)["assignee"]["gid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_requests_without_assignee_take_reviewers_in_turn() {
    let mut h = Harness::start("gh-asana", github_asana(json!({}))).await;
    let reviewers = ["monalisa", "someone-unmapped", "hubot"];
    for number in [34, 35, 36] {
        h.send(
            "pull_request",
            &pull("opened", number, &[], &reviewers, "2024-05-17T10:15:30Z"),
        )
        .await;
    }
    assert_eq!(assignee_of(&h, 34).await, MONA);
    assert_eq!(assignee_of(&h, 35).await, HUBOT);
    assert_eq!(assignee_of(&h, 36).await, MONA);

    // The choice sticks: monalisa reviewed (GitHub drops her from the requested list).
    h.send(
        "pull_request",
        &pull("edited", 34, &[], &["hubot"], "2024-05-17T11:00:00Z"),
    )
    .await;
    assert_eq!(assignee_of(&h, 34).await, MONA);

    // A mapped assignee wins over the rotation.
    h.send(
        "pull_request",
        &pull(
            "opened",
            40,
            &["octocat"],
            &reviewers,
            "2024-05-17T10:15:30Z",
        ),
    )
    .await;
    assert_eq!(assignee_of(&h, 40).await, OCTOCAT);

    // Four at once: the lease keeps the counter exact, two each.
    for number in [50, 51, 52, 53] {
        h.deliver(
            "pull_request",
            &pull("opened", number, &[], &reviewers, "2024-05-17T10:15:30Z"),
        )
        .await;
    }
    h.settle().await;
    let mut mona = 0;
    for number in [50, 51, 52, 53] {
        if assignee_of(&h, number).await == MONA {
            mona += 1;
        }
    }
    assert_eq!(
        mona, 2,
        "the rotation continued exactly across concurrent jobs"
    );

    // Closing a pull request completes its task; merged or not.
    let mut closed = pull("closed", 35, &[], &[], "2024-05-18T10:00:00Z");
    closed["pull_request"]["state"] = json!("closed");
    closed["pull_request"]["merged"] = json!(true);
    h.send("pull_request", &closed).await;
    let key = h
        .link("gh-asana", "github:octo-org/octo-repo#35")
        .await
        .unwrap();
    assert_eq!(h.task(&key)["completed"], true);
    assert_eq!(h.task(&key)["assignee"]["gid"], HUBOT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_makes_no_second_task() {
    let mut h = Harness::start("gh-asana", github_asana(json!({}))).await;
    // Asana stores the task and answers 500, as after a timeout: the job is retried.
    h.asana.state.lock().unwrap().lose_create_answers = 1;
    let seq = h
        .send(
            "issues",
            &issue(
                "opened",
                "Flaky",
                "open",
                "2024-05-17T09:00:00Z",
                &["monalisa"],
            ),
        )
        .await;
    assert_eq!(h.job_state(seq).await, JobState::Done);
    assert_eq!(h.asana.tasks().len(), 1, "one task: {:?}", h.asana.tasks());
    assert_eq!(
        h.asana.count("POST", "tasks").await,
        1,
        "the retry created nothing"
    );
    let key = h
        .link("gh-asana", ISSUE)
        .await
        .expect("the found task was linked");
    assert_eq!(h.asana.tasks_with(ISSUE_URL).len(), 1);
    // Later events update that task.
    h.send(
        "issues",
        &issue(
            "edited",
            "Flaky test",
            "open",
            "2024-05-17T10:00:00Z",
            &["monalisa"],
        ),
    )
    .await;
    assert_eq!(h.task(&key)["name"], "Flaky test (#12)");
    assert_eq!(h.asana.tasks().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_by_name_and_unmapped_repositories() {
    let config = github_asana(json!({
        "workspaces": { "octo-org": "1200000000000001" },
        "projects": [{ "repo": "octo-org/octo-repo", "project": "Hookbridge Triage" }],
        "objects": ["issues"],
    }));
    let mut h = Harness::start("gh-asana", config).await;
    h.asana.state.lock().unwrap().projects = vec![
        (
            "1200000000000001".into(),
            "1204000000000007".into(),
            "Other".into(),
        ),
        (
            "1200000000000001".into(),
            "1204000000000009".into(),
            "Hookbridge triage".into(),
        ),
    ];
    h.send(
        "issues",
        &issue("opened", "By name", "open", "2024-05-17T09:00:00Z", &[]),
    )
    .await;
    let key = h.link("gh-asana", ISSUE).await.expect("linked");
    assert_eq!(h.task(&key)["projects"][0]["gid"], "1204000000000009");
    assert_eq!(h.task(&key)["assignee"], Value::Null);

    // Another repository, and pull requests (not in `objects`): no job at all.
    let mut other = issue("opened", "Elsewhere", "open", "2024-05-17T09:00:00Z", &[]);
    other["repository"]["full_name"] = json!("octo-org/docs");
    other["repository"]["name"] = json!("docs");
    let seq = h.send("issues", &other).await;
    let pr = h
        .send(
            "pull_request",
            &pull("opened", 34, &[], &["monalisa"], "2024-05-17T10:15:30Z"),
        )
        .await;
    for seq in [seq, pr] {
        assert!(h.jobs_of(seq).await.is_empty());
        let delivery = h.store.delivery(seq).await.unwrap().unwrap();
        assert_eq!(delivery.status, DeliveryStatus::NoRules.as_str());
    }
    assert_eq!(h.asana.tasks().len(), 1);
}

// ---- feed-asana ----

const FEED_1: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Newest questions tagged metpy</title>
  <id>https://stackoverflow.com/feeds/tag?tagnames=metpy</id>
  <updated>2024-05-17T09:30:00Z</updated>
  <entry>
    <id>https://stackoverflow.com/q/2</id>
    <title type="text">Second question</title>
    <author><name>Bob</name></author>
    <link rel="alternate" href="https://stackoverflow.com/questions/2/second" />
    <published>2024-05-17T09:21:03Z</published>
    <updated>2024-05-17T09:21:03Z</updated>
    <summary type="html">&lt;p&gt;Why &lt;code&gt;a &amp;amp; b&lt;/code&gt;?&lt;/p&gt;</summary>
  </entry>
  <entry>
    <id>https://stackoverflow.com/q/1</id>
    <title type="text">First question</title>
    <link rel="alternate" href="https://stackoverflow.com/questions/1/first" />
    <published>2024-05-16T09:21:03Z</published>
    <updated>2024-05-16T09:21:03Z</updated>
    <summary type="html">One</summary>
  </entry>
</feed>"#;

fn feed_2() -> String {
    FEED_1.replace(
        "<entry>\n    <id>https://stackoverflow.com/q/2</id>",
        r#"<entry>
    <id>https://stackoverflow.com/q/3</id>
    <title type="text">Third question</title>
    <link rel="alternate" href="https://stackoverflow.com/questions/3/third" />
    <published>2024-05-18T09:21:03Z</published>
    <updated>2024-05-18T09:21:03Z</updated>
  </entry>
  <entry>
    <id>https://stackoverflow.com/q/2</id>"#,
    )
}

/// Serves FEED_1 to the first request, the second document after.
struct Feed {
    served: Arc<AtomicUsize>,
}

impl Respond for Feed {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        assert!(
            request
                .headers
                .get("user-agent")
                .is_some_and(|ua| ua.to_str().unwrap().starts_with("hookbridge/")),
            "a User-Agent is sent"
        );
        let n = self.served.fetch_add(1, Ordering::SeqCst);
        let body = if n == 0 { FEED_1.to_owned() } else { feed_2() };
        ResponseTemplate::new(200)
            .insert_header("content-type", "application/atom+xml; charset=utf-8")
            .set_body_string(body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_entries_become_tasks_once_across_overlapping_polls_and_restarts() {
    let feed = MockServer::start().await;
    let served = Arc::new(AtomicUsize::new(0));
    Mock::given(wiremock::matchers::path("/feeds/tag"))
        .respond_with(Feed {
            served: served.clone(),
        })
        .mount(&feed)
        .await;
    let config = json!({
        "kind": "feed-asana",
        "asana": "asana",
        "url": format!("{}/feeds/tag?tagnames=metpy&sort=newest", feed.uri()),
        "project": PROJECT,
        "assignee": "mona@example.com",
        "interval_secs": 1,
    });
    let mut h = Harness::start("so", config.clone()).await;
    wait_until("three tasks", Duration::from_secs(20), || async {
        h.asana.tasks().len() >= 3
    })
    .await;
    // More polls of the same document change nothing.
    wait_until("two more polls", Duration::from_secs(20), || async {
        served.load(Ordering::SeqCst) >= 4
    })
    .await;
    h.settle().await;
    h.restart("so", config).await;
    let before = served.load(Ordering::SeqCst);
    wait_until(
        "a poll after the restart",
        Duration::from_secs(20),
        || async { served.load(Ordering::SeqCst) > before },
    )
    .await;
    h.settle().await;

    let tasks = h.asana.tasks();
    assert_eq!(tasks.len(), 3, "{tasks:#?}");
    for (id, name) in [
        ("1/first", "First question"),
        ("2/second", "Second question"),
        ("3/third", "Third question"),
    ] {
        let url = format!("https://stackoverflow.com/questions/{id}");
        let with = h.asana.tasks_with(&url);
        assert_eq!(with.len(), 1, "one task for {url}");
        assert_eq!(with[0]["name"], name);
        assert_eq!(with[0]["assignee"]["gid"], MONA);
        assert_eq!(with[0]["projects"][0]["gid"], PROJECT);
    }
    assert!(
        h.asana.tasks_with("Why a & b?").len() == 1,
        "the summary is plain text"
    );
    let cursor: Value =
        serde_json::from_str(&h.store.cursor("so:feed").await.unwrap().unwrap()).unwrap();
    assert_eq!(cursor["watermark"], "2024-05-18T09:21:03Z");
    assert_eq!(cursor["seen"].as_array().unwrap().len(), 3);
    assert_eq!(h.asana.count("POST", "tasks").await, 3);
}
