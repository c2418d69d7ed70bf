//! Gap healing through the real binary: a stateful mock GitHub keeps a webhook's delivery
//! log, sends deliveries to the server (signed, logging what the server answered), and
//! performs the redeliveries the healer asks for. Deliveries that failed while the server
//! was stopped are redelivered after a restart, exactly those, once each; a redelivery that
//! failed too is asked for again; a second run, `hookbridge heal` and its dry run ask for
//! nothing more; on PostgreSQL two instances healing the same hook never ask twice for one
//! GUID.

mod common;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use time::OffsetDateTime;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const ADMIN: &str = "admin-token-0123456789abcdef";
const TOKEN: &str = "ghp_heal_test_token";
const PUBLIC: &str = "https://hooks.example.com";
const HOOK: &str = "/repos/octo-org/octo-repo/hooks/77";
const PAGE: usize = 3;

#[derive(Default)]
struct State {
    /// The delivery log, oldest first (GitHub serves it newest first).
    log: Vec<Value>,
    /// Where deliveries go now (`None`: nowhere reachable).
    target: Option<String>,
    /// Redelivery requests: (attempt id, GUID), in order.
    asks: Vec<(u64, String)>,
    /// GUIDs whose redelivery GitHub has still to perform.
    pending: VecDeque<String>,
    /// GUIDs whose next redeliveries fail (the receiver unreachable), and how many.
    failing: HashMap<String, usize>,
    /// Reads of the log's first page: one per healer run.
    runs: usize,
}

/// GitHub: a webhook's delivery log, paged by cursor, and its redeliveries.
#[derive(Clone, Default)]
struct FakeGithub {
    state: Arc<Mutex<State>>,
    http: reqwest::Client,
}

impl FakeGithub {
    async fn start() -> (MockServer, FakeGithub) {
        let github = FakeGithub::default();
        let mock = MockServer::start().await;
        let auth = format!("Bearer {TOKEN}");
        Mock::given(method("GET"))
            .and(path("/repos/octo-org/octo-repo/hooks"))
            .and(wiremock::matchers::header("authorization", auth.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([
                {"id": 12, "type": "Repository", "name": "web", "active": true,
                 "config": {"url": "https://old-bot.example.com/webhook"}},
                {"id": 77, "type": "Repository", "name": "web", "active": true,
                 "config": {"url": format!("{PUBLIC}/hooks/gh"), "content_type": "json"}}
            ])))
            .mount(&mock)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("{HOOK}/deliveries")))
            .and(wiremock::matchers::header("authorization", auth.as_str()))
            .respond_with(LogPages(github.clone(), mock.uri()))
            .mount(&mock)
            .await;
        Mock::given(method("POST"))
            .and(path_regex(format!("^{HOOK}/deliveries/[0-9]+/attempts$")))
            .and(wiremock::matchers::header("authorization", auth.as_str()))
            .respond_with(Attempts(github.clone()))
            .mount(&mock)
            .await;
        // GitHub performs the redeliveries it accepted, in the background.
        let worker = github.clone();
        tokio::spawn(async move {
            loop {
                let next = {
                    let mut state = worker.state.lock().unwrap();
                    if state.target.is_some() {
                        state.pending.pop_front()
                    } else {
                        None
                    }
                };
                match next {
                    Some(guid) => {
                        worker.deliver(&guid, true).await;
                    }
                    None => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
        (mock, github)
    }

    fn set_target(&self, url: Option<String>) {
        self.state.lock().unwrap().target = url;
    }

    /// Sends `guid` to the target (or fails to) and logs the attempt as GitHub does.
    async fn deliver(&self, guid: &str, redelivery: bool) -> u16 {
        let (target, fail) = {
            let mut state = self.state.lock().unwrap();
            let fail = redelivery
                && state.failing.get_mut(guid).is_some_and(|n| {
                    *n > 0 && {
                        *n -= 1;
                        true
                    }
                });
            (state.target.clone(), fail)
        };
        let status = match target {
            Some(url) if !fail => match github_post(
                &self.http,
                &format!("{url}/hooks/gh"),
                "issues",
                guid,
                fixture("issues.opened.json"),
            )
            .send()
            .await
            {
                Ok(response) => response.status().as_u16(),
                Err(_) => 502,
            },
            _ => 502,
        };
        self.log(guid, status, redelivery);
        status
    }

    /// Sends `guid` (stored by the server) but logs GitHub's timeout.
    async fn deliver_logged_as_timeout(&self, guid: &str) {
        let url = self.state.lock().unwrap().target.clone().unwrap();
        let response = github_post(
            &self.http,
            &format!("{url}/hooks/gh"),
            "issues",
            guid,
            fixture("issues.opened.json"),
        )
        .send()
        .await
        .unwrap();
        assert!(response.status().is_success());
        self.log(guid, 504, false);
    }

    fn log(&self, guid: &str, status_code: u16, redelivery: bool) {
        let mut state = self.state.lock().unwrap();
        let id = 9000 + state.log.len() as u64;
        let status = match status_code {
            200..=299 => "OK",
            504 => "timed out",
            _ => "failed to connect",
        };
        let at = OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        state.log.push(json!({
            "id": id, "guid": guid, "delivered_at": at, "redelivery": redelivery,
            "duration": 0.05, "status": status, "status_code": status_code,
            "event": "issues", "action": "opened", "installation_id": null,
            "repository_id": 1296269
        }));
    }

    /// The GUIDs asked for, with how many times.
    fn asks(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (_, guid) in &self.state.lock().unwrap().asks {
            *out.entry(guid.clone()).or_default() += 1;
        }
        out
    }

    fn ask_count(&self) -> usize {
        self.state.lock().unwrap().asks.len()
    }

    fn runs(&self) -> usize {
        self.state.lock().unwrap().runs
    }

    async fn wait_runs(&self, more: usize) {
        let target = self.runs() + more;
        wait_until("healer runs", Duration::from_secs(30), || async {
            self.runs() >= target
        })
        .await;
    }
}

/// `GET .../deliveries`: pages of [`PAGE`], newest first, `cursor` = where to start.
struct LogPages(FakeGithub, String);

impl Respond for LogPages {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.state.lock().unwrap();
        let start: usize = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "cursor")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        if start == 0 {
            state.runs += 1;
        }
        let page: Vec<Value> = state
            .log
            .iter()
            .rev()
            .skip(start)
            .take(PAGE)
            .cloned()
            .collect();
        let mut response = ResponseTemplate::new(200).set_body_json(page);
        if start + PAGE < state.log.len() {
            let next = format!(
                "<{}{HOOK}/deliveries?per_page=100&cursor={}>; rel=\"next\"",
                self.1,
                start + PAGE
            );
            response = response.insert_header("link", next.as_str());
        }
        response
    }
}

/// `POST .../deliveries/{id}/attempts`: 202, and the redelivery is queued.
struct Attempts(FakeGithub);

impl Respond for Attempts {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.state.lock().unwrap();
        let id: Option<u64> = request
            .url
            .path()
            .trim_end_matches("/attempts")
            .rsplit('/')
            .next()
            .and_then(|id| id.parse().ok());
        let guid = id.and_then(|id| {
            state
                .log
                .iter()
                .find(|a| a["id"] == json!(id))
                .and_then(|a| a["guid"].as_str().map(str::to_owned))
        });
        let (Some(id), Some(guid)) = (id, guid) else {
            return ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}));
        };
        state.asks.push((id, guid.clone()));
        state.pending.push_back(guid);
        ResponseTemplate::new(202).set_body_json(json!({}))
    }
}

fn config(github: &str, store: &str) -> String {
    config_max(github, store, 100)
}

fn config_max(github: &str, store: &str, max_per_run: u32) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "{PUBLIC}"
shutdown_grace_secs = 5

{store}

[admin]
token = "{ADMIN}"

[connections.gh]
kind = "github"
base_url = "{github}"
token = "{TOKEN}"

[endpoints.gh]
provider = "github"
secret = "{SECRET}"
heal = {{ connection = "gh", repository = "octo-org/octo-repo", interval_secs = 1, max_per_run = {max_per_run} }}
"#
    )
}

const SQLITE: &str = "[store]\nkind = \"sqlite\"\npath = \"data/hookbridge.db\"";

async fn stored(client: &reqwest::Client, server: &Server) -> Vec<String> {
    let body: Value = client
        .get(server.url("/admin/deliveries?endpoint=gh&limit=500"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["delivery_id"].as_str().unwrap().to_owned())
        .collect()
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

fn heal_cli(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hookbridge"))
        .arg("heal")
        .args(args)
        .arg("--config")
        .arg(dir.join("hookbridge.toml"))
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_exactly_what_failed_meanwhile_is_redelivered_once() {
    let (mock, github) = FakeGithub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    // Running: the first run notes where the (empty) log stands.
    let mut server = Server::start(dir.path(), &config(&mock.uri(), SQLITE));
    github.wait_runs(1).await;
    github.set_target(Some(server.url("")));
    let mut sent = Vec::new();
    for i in 0..4 {
        let guid = format!("sent-{i}");
        assert_eq!(github.deliver(&guid, false).await, 202);
        sent.push(guid);
    }
    // Stored, though GitHub logged a timeout.
    github.deliver_logged_as_timeout("slow-0").await;
    github.wait_runs(2).await;
    assert_eq!(github.ask_count(), 0, "nothing is missing while it runs");
    assert_eq!(server.terminate().code(), Some(0));

    // Stopped: these fail and are never sent.
    github.set_target(None);
    let missed: Vec<String> = (0..5).map(|i| format!("missed-{i}")).collect();
    for guid in &missed {
        assert_eq!(github.deliver(guid, false).await, 502);
    }
    // GitHub's first redelivery of one of them fails too (the network is still down).
    github
        .state
        .lock()
        .unwrap()
        .failing
        .insert("missed-2".into(), 1);

    // Restarted: the healer asks for exactly the missed ones, and they arrive.
    let server = Server::start(dir.path(), &config(&mock.uri(), SQLITE));
    github.set_target(Some(server.url("")));
    wait_until(
        "the missed deliveries are stored",
        Duration::from_secs(40),
        || {
            let (client, server, missed) = (&client, &server, &missed);
            async move {
                let stored = stored(client, server).await;
                missed.iter().all(|g| stored.contains(g))
            }
        },
    )
    .await;
    let asks = github.asks();
    let expected: BTreeMap<String, usize> = missed
        .iter()
        .map(|g| (g.clone(), if g == "missed-2" { 2 } else { 1 }))
        .collect();
    assert_eq!(
        asks, expected,
        "exactly the missed ones; the one whose redelivery failed, twice"
    );
    let stored_now = stored(&client, &server).await;
    assert_eq!(stored_now.len(), 10, "{stored_now:?}");
    for guid in sent.iter().chain(&missed) {
        assert_eq!(
            stored_now.iter().filter(|g| *g == guid).count(),
            1,
            "{guid} once"
        );
    }

    // Later runs ask for nothing.
    github.wait_runs(3).await;
    assert_eq!(github.asks(), expected);
    let text = metrics(&client, &server).await;
    assert_eq!(
        metric(&text, "hookbridge_heal_missing_total{endpoint=\"gh\"}"),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "hookbridge_heal_redelivered_total{endpoint=\"gh\"}"),
        Some(6.0)
    );
    assert_eq!(
        metric(&text, "hookbridge_heal_failed_total{endpoint=\"gh\"}"),
        Some(0.0)
    );
    let mut server = server;
    assert_eq!(server.terminate().code(), Some(0));

    // `hookbridge heal` with the server stopped: nothing missing, nothing asked.
    let (ok, out, err) = heal_cli(dir.path(), &[]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("heal:github:gh (repository octo-org/octo-repo hook 77)")
            && out.contains("0 missing, 0 redelivered, 0 failed"),
        "{out}"
    );
    assert_eq!(github.asks(), expected);

    // One more failure (the server is down, and stays down: GitHub's redeliveries wait).
    github.set_target(None);
    github.deliver("late-0", false).await;
    // The dry run names it and asks nothing; the real run asks once.
    let (ok, out, err) = heal_cli(dir.path(), &["--dry-run", "--endpoint", "gh"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("would redeliver") && out.contains("late-0"),
        "{out}"
    );
    assert!(out.contains("(dry run)"), "{out}");
    assert_eq!(github.ask_count(), 6);
    let (ok, out, err) = heal_cli(dir.path(), &["--json"]);
    assert!(ok, "{out}{err}");
    let report: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(report["healer"], "heal:github:gh");
    assert_eq!(report["items"][0]["id"], "late-0");
    assert_eq!(report["items"][0]["outcome"]["outcome"], "redelivered");
    assert_eq!(github.asks()["late-0"], 1);
    // Asked before: the next run waits for GitHub instead of asking again.
    let (ok, out, _) = heal_cli(dir.path(), &[]);
    assert!(ok && out.contains("asked before"), "{out}");
    assert_eq!(github.asks()["late-0"], 1);
    // A wrong endpoint is a clear error.
    let (ok, out, err) = heal_cli(dir.path(), &["--endpoint", "nope"]);
    assert!(!ok && err.contains("does not heal"), "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgresql_never_ask_twice_for_one_guid() {
    let Some(schema) = PgSchema::new("heal") else {
        return;
    };
    let (mock, github) = FakeGithub::start().await;
    let store = format!(
        "[store]\nkind = \"postgres\"\nurl = \"{}\"\nschema = \"{}\"",
        schema.url, schema.name
    );
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // At most 5 per run: the 30 take several runs, by either instance.
    let a = Server::start(dir_a.path(), &config_max(&mock.uri(), &store, 5));
    let b = Server::start(dir_b.path(), &config_max(&mock.uri(), &store, 5));
    github.wait_runs(2).await;

    // The endpoint is unreachable for a while: 30 deliveries fail.
    let missed: Vec<String> = (0..30).map(|i| format!("pg-missed-{i}")).collect();
    for guid in &missed {
        assert_eq!(github.deliver(guid, false).await, 502);
    }
    // Reachable again (through instance A): both instances' healers run every second.
    github.set_target(Some(a.url("")));
    let client = reqwest::Client::new();
    wait_until(
        "every missed delivery is stored",
        Duration::from_secs(60),
        || {
            let (client, server, missed) = (&client, &b, &missed);
            async move {
                let stored = stored(client, server).await;
                missed.iter().all(|g| stored.contains(g))
            }
        },
    )
    .await;
    github.wait_runs(6).await;
    let asks = github.asks();
    assert_eq!(asks.len(), 30, "{asks:?}");
    assert!(
        asks.values().all(|n| *n == 1),
        "a GUID asked twice: {asks:?}"
    );
    // Both instances count what they redelivered; together, each delivery once.
    let mut total = 0.0;
    for server in [&a, &b] {
        let text = metrics(&client, server).await;
        total += metric(&text, "hookbridge_heal_redelivered_total{endpoint=\"gh\"}").unwrap_or(0.0);
    }
    assert_eq!(total, 30.0);
    // Which instance asked is up to the lease; say it, for the record.
    let asked_by = |server: &Server| server.logs().matches("asked GitHub to redeliver").count();
    eprintln!(
        "redelivery requests: instance A {}, instance B {}; healer runs {}",
        asked_by(&a),
        asked_by(&b),
        github.runs()
    );
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_trello_hooks_are_listed_and_gauged() {
    let trello = MockServer::start().await;
    let callback = format!("{PUBLIC}/hooks/trello");
    Mock::given(method("GET"))
        .and(path("/1/tokens/trello-user-token/webhooks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "hook-failing", "idModel": "5abbe4b7ddc1b351ef961414", "callbackURL": callback,
             "active": true, "description": "hookbridge", "consecutiveFailures": 4,
             "firstConsecutiveFailDate": "2024-05-17T09:21:03.512Z"},
            {"id": "hook-healthy", "idModel": "5abbe4b7ddc1b351ef961415", "callbackURL": callback,
             "active": true, "consecutiveFailures": 0, "firstConsecutiveFailDate": null},
            {"id": "hook-elsewhere", "idModel": "5abbe4b7ddc1b351ef961416",
             "callbackURL": "https://other.example.com/trello", "active": true,
             "consecutiveFailures": 9, "firstConsecutiveFailDate": null}
        ])))
        .mount(&trello)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "{PUBLIC}"

{SQLITE}

[connections.trello]
kind = "trello"
base_url = "{trello}/1"
key = "trello-key"
token = "trello-user-token"

[endpoints.trello]
provider = "trello"
secret = "trello-app-secret"
callback_url = "{callback}"
heal = {{ connection = "trello", interval_secs = 1 }}

[[hooks]]
endpoint = "trello"
connection = "trello"
model = "5abbe4b7ddc1b351ef961414"
"#,
        trello = trello.uri()
    );
    let server = Server::start(dir.path(), &text);
    let client = reqwest::Client::new();
    let failing = "hookbridge_hook_consecutive_failures{endpoint=\"trello\",hook=\"hook-failing\"}";
    let healthy = "hookbridge_hook_consecutive_failures{endpoint=\"trello\",hook=\"hook-healthy\"}";
    wait_until("the Trello gauges", Duration::from_secs(20), || {
        let (client, server) = (&client, &server);
        async move { metric(&metrics(client, server).await, failing) == Some(4.0) }
    })
    .await;
    let text = metrics(&client, &server).await;
    assert_eq!(metric(&text, healthy), Some(0.0), "{text}");
    assert!(
        !text.contains("hook-elsewhere"),
        "another URL's hook: {text}"
    );

    let (ok, out, err) = heal_cli(dir.path(), &["--endpoint", "trello"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("heal:trello:trello (Trello webhooks): 2 read")
            && out.contains("failing          hook-failing  model 5abbe4b7ddc1b351ef961414 (active) since 2024-05-17T09:21:03Z")
            && out.contains("the last 4 deliveries failed")
            && !out.contains("hook-healthy"),
        "{out}"
    );
    // `hooks list` says it too.
    let output = Command::new(env!("CARGO_BIN_EXE_hookbridge"))
        .args(["hooks", "list", "--config"])
        .arg(dir.path().join("hookbridge.toml"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        out.contains(&format!(
            "failing   trello 5abbe4b7ddc1b351ef961414 -> {callback} (4 consecutive failures since 2024-05-17T09:21:03.512Z)"
        )),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jira_failed_webhooks_are_ingested_by_the_server_once() {
    let jira = MockServer::start().await;
    let body = json!({"timestamp": 1_716_000_000_000_i64, "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "issue": {"id": "10002", "key": "PROJ-7", "self": "https://example.atlassian.net/rest/api/3/issue/10002",
                  "fields": {"summary": "Healed", "status": {"name": "Done"}}}})
    .to_string();
    Mock::given(method("GET"))
        .and(path("/rest/api/3/webhook/failed"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "values": [
                {"id": "wh-77", "body": body, "url": format!("{PUBLIC}/hooks/jira"),
                 "failureTime": 1_716_000_000_500_i64},
                {"id": "wh-78", "body": body, "url": "https://other-app.example.com/hook",
                 "failureTime": 1_716_000_000_600_i64}
            ],
            "maxResults": 100
        })))
        .mount(&jira)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "{PUBLIC}"

{SQLITE}

[admin]
token = "{ADMIN}"

[connections.jira]
kind = "jira"
base_url = "{jira}"
deployment = "cloud"
email = "bot@example.com"
token = "jira-api-token"

[endpoints.jira]
provider = "jira"
secret = "jira-webhook-secret"
heal = {{ connection = "jira", interval_secs = 1 }}
"#,
        jira = jira.uri()
    );
    let server = Server::start(dir.path(), &text);
    let client = reqwest::Client::new();
    let deliveries = || async {
        let body: Value = client
            .get(server.url("/admin/deliveries?endpoint=jira"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["deliveries"].as_array().unwrap().clone()
    };
    wait_until(
        "the failed webhook is stored",
        Duration::from_secs(20),
        || async { !deliveries().await.is_empty() },
    )
    .await;
    // Several runs later (the mock keeps listing it): still one delivery, of that id.
    wait_until("three more runs", Duration::from_secs(20), || async {
        jira.received_requests().await.unwrap().len() >= 4
    })
    .await;
    let stored = deliveries().await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["delivery_id"], "wh-77");
    assert_eq!(stored[0]["event_type"], "jira:issue_updated");
    assert!(
        stored[0]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h[0] == "x-hookbridge-healed"),
        "{stored:?}"
    );
    let text = metrics(&client, &server).await;
    assert_eq!(
        metric(
            &text,
            "hookbridge_heal_redelivered_total{endpoint=\"jira\"}"
        ),
        Some(1.0),
        "{text}"
    );
    // The next runs ask after the last failure read.
    let requests = jira.received_requests().await.unwrap();
    assert!(
        requests
            .last()
            .unwrap()
            .url
            .query()
            .unwrap_or_default()
            .contains("after=1716000000600"),
        "{:?}",
        requests.last().unwrap().url
    );
}
