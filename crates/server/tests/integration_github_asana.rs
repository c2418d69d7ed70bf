//! End to end through the `hookbridge` binary: `github-asana` and `feed-asana` configured
//! in TOML, signed GitHub `issues` and `pull_request` deliveries posted over HTTP, a
//! stateful fake Asana and a feed served by wiremock. Asserts the Asana calls made: a task
//! created in the mapped project with the mapped assignee, updated, completed, reopened, not
//! reopened by a stale event, reviewers assigned in turn, echoes of hookbridge's own GitHub
//! account ignored, and each feed entry one task across overlapping polls.

mod common;

#[path = "../../sync-engine/tests/integration_github_asana/fake_asana.rs"]
mod fake_asana;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use fake_asana::FakeAsana;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const PROJECT: &str = "1204000000000001";
const MONA: &str = "1205000000000002";
const HUBOT: &str = "1205000000000003";
const OCTOCAT: &str = "1205000000000001";
const ISSUE_URL: &str = "https://github.com/octo-org/octo-repo/issues/12";

/// The configuration: `github-asana`, and `feed-asana` when a feed is given.
fn config(asana: &str, feed: Option<&str>) -> String {
    let mut config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[store]
kind = "sqlite"
path = "data/hookbridge.db"

[engine]
max_attempts = 4
backoff_base_ms = 20
backoff_max_secs = 1
poll_interval_ms = 50
self_actors = [{{ provider = "github", name = "hookbridge-bot" }}]

[endpoints.github]
provider = "github"
secret = "{SECRET}"

[connections.asana]
kind = "asana"
base_url = "{asana}"
token = {{ env = "TEST_ASANA_TOKEN" }}

[[integrations]]
name = "gh-asana"
kind = "github-asana"
asana = "asana"
projects = [{{ repo = "octo-org/octo-*", project = "{PROJECT}" }}]
users = {{ monalisa = "mona@example.com", hubot = "hubot@example.com", octocat = "{OCTOCAT}" }}
"#
    );
    if let Some(feed) = feed {
        config.push_str(&format!(
            r#"
[[integrations]]
name = "so"
kind = "feed-asana"
asana = "asana"
url = "{feed}/feeds/tag?tagnames=metpy&sort=newest"
project = "{PROJECT}"
assignee = "mona@example.com"
interval_secs = 1
"#
        ));
    }
    config
}

fn sample(name: &str) -> Value {
    serde_json::from_slice(&fixture(&format!("{name}.json"))).unwrap()
}

fn user(login: &str) -> Value {
    json!({ "login": login, "id": login.len() as u64 * 1000, "type": "User" })
}

fn issue(action: &str, title: &str, state: &str, at: &str, assignees: &[&str]) -> Value {
    let mut body = sample("issues.opened");
    body["action"] = json!(action);
    body["issue"]["title"] = json!(title);
    body["issue"]["state"] = json!(state);
    body["issue"]["updated_at"] = json!(at);
    body["issue"]["assignees"] = Value::Array(assignees.iter().map(|a| user(a)).collect());
    body["issue"]["assignee"] = assignees.first().map(|a| user(a)).unwrap_or(Value::Null);
    body
}

fn pull(action: &str, number: u64, reviewers: &[&str], at: &str) -> Value {
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
    pr["assignees"] = json!([]);
    pr["assignee"] = Value::Null;
    pr["requested_reviewers"] = Value::Array(reviewers.iter().map(|a| user(a)).collect());
    body
}

struct Harness {
    server: Server,
    asana: FakeAsana,
    http: reqwest::Client,
    sent: usize,
    _feed: MockServer,
    feed_served: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(with_feed: bool) -> Harness {
        let asana =
            FakeAsana::start(&[("mona@example.com", MONA), ("hubot@example.com", HUBOT)]).await;
        let feed = MockServer::start().await;
        let feed_served = Arc::new(AtomicUsize::new(0));
        Mock::given(wiremock::matchers::path("/feeds/tag"))
            .respond_with(Feed {
                served: feed_served.clone(),
            })
            .mount(&feed)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_with_env(
            dir.path(),
            &config(&asana.base_url(), with_feed.then(|| feed.uri()).as_deref()),
            &[("TEST_ASANA_TOKEN", "2/1/2:test-token")],
        );
        Harness {
            server,
            asana,
            http: reqwest::Client::new(),
            sent: 0,
            _feed: feed,
            feed_served,
            _dir: dir,
        }
    }

    /// Posts a signed delivery, as GitHub does, and checks it was accepted.
    async fn post(&mut self, event: &str, body: &Value) {
        self.sent += 1;
        let id = format!("0f3b5c10-1a2b-11ef-8000-{:012}", self.sent);
        let response = github_post(
            &self.http,
            &self.server.url("/hooks/github"),
            event,
            &id,
            serde_json::to_vec(body).unwrap(),
        )
        .send()
        .await
        .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }

    async fn writes(&self) -> usize {
        self.asana.count("POST", "tasks").await + self.asana.count("PUT", "tasks").await
    }

    fn issue_task(&self) -> Option<Value> {
        let mut tasks = self.asana.tasks_with(ISSUE_URL);
        assert!(tasks.len() <= 1, "one task for the issue: {tasks:?}");
        tasks.pop()
    }

    fn pull_task(&self, number: u64) -> Option<Value> {
        let url = format!("https://github.com/octo-org/octo-repo/pull/{number}");
        let mut tasks = self.asana.tasks_with(&url);
        assert!(
            tasks.len() <= 1,
            "one task for pull request {number}: {tasks:?}"
        );
        tasks.pop()
    }

    /// Posts, then waits until the task of the issue satisfies `check`.
    async fn post_until(
        &mut self,
        event: &str,
        body: &Value,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) {
        self.post(event, body).await;
        wait_until(what, Duration::from_secs(20), || async {
            self.issue_task().is_some_and(|t| check(&t))
        })
        .await;
    }

    /// Lets the engine finish what it was given: no Asana write for a while.
    async fn quiet(&self) {
        let mut last = self.writes().await;
        let mut still = 0;
        while still < 6 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.writes().await;
            if now == last {
                still += 1;
            } else {
                still = 0;
                last = now;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_issues_and_pull_requests_become_asana_tasks() {
    let mut h = Harness::start(false).await;

    // opened -> a task in the mapped project, with the mapped assignee.
    h.post_until(
        "issues",
        &issue(
            "opened",
            "Crash on start",
            "open",
            "2024-05-17T09:00:00Z",
            &["monalisa"],
        ),
        "the task",
        |t| t["name"] == "Crash on start (#12)",
    )
    .await;
    let task = h.issue_task().unwrap();
    assert_eq!(task["projects"][0]["gid"], PROJECT);
    assert_eq!(task["assignee"]["gid"], MONA);
    assert_eq!(task["completed"], false);

    // edited -> updated.
    h.post_until(
        "issues",
        &issue(
            "edited",
            "Crash on start-up",
            "open",
            "2024-05-17T10:00:00Z",
            &["monalisa"],
        ),
        "the new name",
        |t| t["name"] == "Crash on start-up (#12)",
    )
    .await;

    // closed -> completed.
    h.post_until(
        "issues",
        &issue(
            "closed",
            "Crash on start-up",
            "closed",
            "2024-05-18T14:05:12Z",
            &["monalisa"],
        ),
        "completion",
        |t| t["completed"] == true,
    )
    .await;

    // A stale `edited` after the close: no write, still completed.
    h.quiet().await;
    let before = h.writes().await;
    h.post(
        "issues",
        &issue(
            "edited",
            "Crash on start-up",
            "open",
            "2024-05-17T11:00:00Z",
            &["monalisa"],
        ),
    )
    .await;
    // An echo: hookbridge's own GitHub account edited the issue. Skipped, no write.
    let mut echo = issue(
        "edited",
        "Renamed by the bot",
        "closed",
        "2024-05-18T15:00:00Z",
        &["monalisa"],
    );
    echo["sender"] = user("hookbridge-bot");
    h.post("issues", &echo).await;
    h.quiet().await;
    assert_eq!(
        h.writes().await,
        before,
        "neither the stale event nor the echo wrote"
    );
    let task = h.issue_task().unwrap();
    assert_eq!(task["completed"], true);
    assert_eq!(task["name"], "Crash on start-up (#12)");

    // reopened -> reopened.
    h.post_until(
        "issues",
        &issue(
            "reopened",
            "Crash on start-up",
            "open",
            "2024-05-19T08:00:00Z",
            &["monalisa"],
        ),
        "reopening",
        |t| t["completed"] == false,
    )
    .await;

    // Pull requests without an assignee: requested reviewers in turn.
    for number in [34, 35, 36] {
        h.post(
            "pull_request",
            &pull(
                "opened",
                number,
                &["monalisa", "hubot"],
                "2024-05-17T10:15:30Z",
            ),
        )
        .await;
        wait_until(
            "the pull request's task",
            Duration::from_secs(20),
            || async { h.pull_task(number).is_some() },
        )
        .await;
    }
    let assignee = |n: u64| {
        h.pull_task(n).unwrap()["assignee"]["gid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(assignee(34), MONA);
    assert_eq!(assignee(35), HUBOT);
    assert_eq!(assignee(36), MONA);

    h.quiet().await;
    assert_eq!(
        h.asana.count("POST", "tasks").await,
        4,
        "one create per issue or pull request"
    );
    let logs = h.server.logs();
    assert!(
        !logs.contains("2/1/2:test-token"),
        "the Asana token is never logged"
    );
}

/// Tasks made from the feed so far (the feed poller runs alongside).
fn feed_tasks(h: &Harness) -> usize {
    h.asana
        .tasks_with("https://stackoverflow.com/questions/")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_entries_become_one_task_each_across_overlapping_polls() {
    let h = Harness::start(true).await;
    wait_until("three feed tasks", Duration::from_secs(30), || async {
        feed_tasks(&h) >= 3
    })
    .await;
    // The second document overlaps the first; more polls of it follow.
    let served = h.feed_served.load(Ordering::SeqCst);
    wait_until("two more polls", Duration::from_secs(30), || async {
        h.feed_served.load(Ordering::SeqCst) >= served + 2
    })
    .await;
    h.quiet().await;
    assert_eq!(feed_tasks(&h), 3);
    for (id, name) in [
        ("1/first", "First question"),
        ("2/second", "Second question"),
        ("3/third", "Third question"),
    ] {
        let url = format!("https://stackoverflow.com/questions/{id}");
        let tasks = h.asana.tasks_with(&url);
        assert_eq!(tasks.len(), 1, "one task for {url}");
        assert_eq!(tasks[0]["name"], name);
        assert_eq!(tasks[0]["assignee"]["gid"], MONA);
        assert_eq!(tasks[0]["projects"][0]["gid"], PROJECT);
    }
    assert_eq!(h.asana.count("POST", "tasks").await, 3);

    // The feed's endpoint takes nothing over HTTP, signed or not.
    let forged = json!({"feed": "so", "id": "forged", "title": "Forged", "url": "https://stackoverflow.com/questions/9/forged"});
    let response = github_post(
        &h.http,
        &h.server.url("/hooks/so-feed"),
        "entry",
        "forged-1",
        serde_json::to_vec(&forged).unwrap(),
    )
    .send()
    .await
    .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    h.quiet().await;
    assert_eq!(feed_tasks(&h), 3);
}

const FEED_1: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Newest questions tagged metpy</title>
  <id>https://stackoverflow.com/feeds/tag?tagnames=metpy</id>
  <updated>2024-05-17T09:30:00Z</updated>
  <entry>
    <id>https://stackoverflow.com/q/2</id>
    <title type="text">Second question</title>
    <link rel="alternate" href="https://stackoverflow.com/questions/2/second" />
    <published>2024-05-17T09:21:03Z</published>
    <updated>2024-05-17T09:21:03Z</updated>
    <summary type="html">Two</summary>
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

/// The first document, then one with a third entry on top of the two.
struct Feed {
    served: Arc<AtomicUsize>,
}

impl Respond for Feed {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.served.fetch_add(1, Ordering::SeqCst);
        let body = if n == 0 {
            FEED_1.to_owned()
        } else {
            FEED_1.replace(
                "<entry>\n    <id>https://stackoverflow.com/q/2</id>",
                "<entry>\n    <id>https://stackoverflow.com/q/3</id>\n    <title>Third question</title>\n    <link href=\"https://stackoverflow.com/questions/3/third\" />\n    <published>2024-05-18T09:21:03Z</published>\n  </entry>\n  <entry>\n    <id>https://stackoverflow.com/q/2</id>",
            )
        };
        ResponseTemplate::new(200)
            .insert_header("content-type", "application/atom+xml; charset=utf-8")
            .set_body_string(body)
    }
}
