//! End to end: the real `hookbridge` binary with a trello-hooks integration from its
//! configuration file and a stateful mock Trello API that, like Trello, checks the callback
//! URL with a `HEAD` request before it creates a webhook. `hooks sync` registers the
//! declared hook (the check answered by the running server), `hooks list` shows each hook's
//! health, a hook Trello deleted is re-created; a signed `updateCard` (a card moved between
//! lists) becomes the configured chat message; every callback is listed and replayable.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Server;
use hookbridge_core::Secret;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const ADMIN: &str = "admin-token-trello-91b2";
const APP_SECRET: &str = "trello-app-secret-e2e";
const TOKEN: &str = "trello-user-token-e2e";
const CALLBACK: &str = "https://hooks.example.com/hooks/trello";
const BOARD: &str = "65e9a0b1c2d3e4f5a6b7c000";

/// Trello's webhooks, and the answers to the `HEAD` checks Trello made.
#[derive(Clone, Default)]
struct Trello {
    hooks: Arc<Mutex<Vec<Value>>>,
    checks: Arc<Mutex<Vec<u16>>>,
    /// Where the callback host really is (the test's hookbridge).
    server: Arc<Mutex<Option<SocketAddr>>>,
}

struct ListHooks(Trello);
impl Respond for ListHooks {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(self.0.hooks.lock().unwrap().clone())
    }
}

/// `POST /1/webhooks/`: like Trello, `HEAD` the callback URL first; create only on a 200.
struct CreateHook(Trello);
impl Respond for CreateHook {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let url = body["callbackURL"].as_str().unwrap_or_default();
        let addr = self.0.server.lock().unwrap().expect("server address");
        let status = head(addr, url.trim_start_matches("https://hooks.example.com"));
        self.0.checks.lock().unwrap().push(status);
        if status != 200 {
            return ResponseTemplate::new(400).set_body_string(
                "URL (callbackURL) did not return 200 status code to HEAD request",
            );
        }
        let mut hooks = self.0.hooks.lock().unwrap();
        let hook = json!({
            "id": format!("5e0a1b2c3d4e5f60718293{:02}", hooks.len() + 10),
            "description": body["description"], "idModel": body["idModel"],
            "callbackURL": url, "active": true,
            "consecutiveFailures": 0, "firstConsecutiveFailDate": null
        });
        hooks.push(hook.clone());
        ResponseTemplate::new(200).set_body_json(hook)
    }
}

/// A blocking `HEAD` request, the status of the answer (0 when there is none).
fn head(addr: SocketAddr, path: &str) -> u16 {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return 0;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!(
        "HEAD {path} HTTP/1.1\r\nHost: hooks.example.com\r\nUser-Agent: Trello\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn config(trello: &str, slack: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "https://hooks.example.com"
shutdown_grace_secs = 5

[store]
kind = "sqlite"
path = "data/hookbridge.db"

[admin]
token = "{ADMIN}"

[endpoints.trello]
provider = "trello"
secret = {{ env = "TRELLO_APP_SECRET" }}
callback_url = "{CALLBACK}"

[connections.trello]
kind = "trello"
base_url = "{trello}/1"
key = "trello-app-key"
token = {{ env = "TRELLO_TOKEN" }}

[connections.team]
kind = "slack"
url = "{slack}/services/T0/B0/TrelloTeam"

[[hooks]]
endpoint = "trello"
connection = "trello"
model = "{BOARD}"
description = "hookbridge: engineering board"

[[integrations]]
name = "trello"
kind = "trello-hooks"
endpoint = "trello"
boards = ["{BOARD}"]

[[integrations.notify]]
targets = ["team"]
actions = ["updateCard:moved", "commentCard"]
[integrations.notify.templates]
"updateCard:moved" = "{{member}} moved “{{card}}” from {{list_before}} to {{list_after}}: {{card_url}}"
"#
    )
}

const ENV: &[(&str, &str)] = &[("TRELLO_APP_SECRET", APP_SECRET), ("TRELLO_TOKEN", TOKEN)];

fn cli(server: &Server, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hookbridge"))
        .args(args)
        .arg("--config")
        .arg(server.dir.join("hookbridge.toml"))
        .envs(ENV.iter().copied())
        .env("HOOKBRIDGE_LOG", "warn")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn sample(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../providers/samples/trello/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

async fn admin(http: &reqwest::Client, server: &Server, path: &str) -> Value {
    http.get(server.url(&format!("/admin{path}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until the rule has `n` jobs, all finished.
async fn jobs_finished(http: &reqwest::Client, server: &Server, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let list = admin(http, server, "/jobs?rule=trello&limit=100").await;
        let jobs = list["jobs"].as_array().cloned().unwrap_or_default();
        if jobs.len() >= n
            && jobs
                .iter()
                .all(|j| !matches!(j["state"].as_str(), Some("pending" | "running")))
        {
            return jobs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {n} jobs: {list}\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trello_hooks_registered_checked_delivered_and_kept() {
    let api = MockServer::start().await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let trello = Trello::default();
    Mock::given(method("GET"))
        .and(path(format!("/1/tokens/{TOKEN}/webhooks")))
        .respond_with(ListHooks(trello.clone()))
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path("/1/webhooks/"))
        .respond_with(CreateHook(trello.clone()))
        .mount(&api)
        .await;
    Mock::given(method("DELETE"))
        .and(path_regex("^/1/webhooks/[0-9a-f]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&api)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(dir.path(), &config(&api.uri(), &slack.uri()), ENV);
    *trello.server.lock().unwrap() = Some(server.addr);
    let http = reqwest::Client::new();

    // Registration: missing, then created by `hooks sync` after Trello's HEAD check, which
    // the running server answers.
    let (ok, out, err) = cli(&server, &["hooks", "list"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "created   trello {BOARD} -> {CALLBACK} (missing at Trello)"
        )),
        "{out}"
    );
    let (ok, out, err) = cli(&server, &["hooks", "sync"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("created   trello"), "{out}");
    assert_eq!(
        *trello.checks.lock().unwrap(),
        [200],
        "the HEAD check was answered 200"
    );
    assert_eq!(trello.hooks.lock().unwrap().len(), 1);
    let (_, out, _) = cli(&server, &["hooks", "list"]);
    assert!(
        out.contains(&format!("ok        trello {BOARD} -> {CALLBACK} (healthy)")),
        "{out}"
    );

    // Health: Trello reports failures; `hooks list` shows them.
    {
        let mut hooks = trello.hooks.lock().unwrap();
        hooks[0]["consecutiveFailures"] = 4.into();
        hooks[0]["firstConsecutiveFailDate"] = "2024-05-17T09:00:00.000Z".into();
    }
    let (_, out, _) = cli(&server, &["hooks", "list"]);
    assert!(
        out.contains("failing   trello")
            && out.contains("(4 consecutive failures since 2024-05-17T09:00:00.000Z)"),
        "{out}"
    );

    // Trello deleted the hook (after too many failures): `hooks sync` creates it again.
    trello.hooks.lock().unwrap().clear();
    let (ok, out, err) = cli(&server, &["hooks", "sync"]);
    assert!(ok && out.contains("created   trello"), "{out}{err}");
    assert_eq!(*trello.checks.lock().unwrap(), [200, 200]);
    assert_eq!(trello.hooks.lock().unwrap().len(), 1);
    let (_, out, _) = cli(&server, &["hooks", "sync"]);
    assert!(
        !out.contains("created"),
        "a second sync changes nothing: {out}"
    );

    // A signed updateCard (moved between lists) becomes the configured message.
    let mut secrets = toml::Table::new();
    secrets.insert("callback_url".into(), CALLBACK.into());
    let signer =
        hookbridge_providers::build("trello", vec![Secret::new(APP_SECRET)], secrets).unwrap();
    let body = sample("updateCard");
    let signed = signer
        .sign("updateCard", &body, "", time::OffsetDateTime::now_utc())
        .unwrap();
    let response = http
        .post(server.url("/hooks/trello"))
        .headers(signed.headers.clone())
        .body(signed.body.clone())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let jobs = jobs_finished(&http, &server, 1).await;
    assert_eq!(jobs[0]["state"], "done", "{jobs:?}");
    let posted: Vec<Value> = slack
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(posted.len(), 1);
    assert_eq!(
        posted[0]["text"],
        "Alice Martin moved “Fix login redirect loop” from To Do to Doing: https://trello.com/c/Zt7mW2qR"
    );

    // Unsigned, or signed for another callback URL: refused, nothing stored.
    let unsigned = http
        .post(server.url("/hooks/trello"))
        .header("content-type", "application/json")
        .body(sample("commentCard"))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let mut elsewhere = toml::Table::new();
    elsewhere.insert(
        "callback_url".into(),
        "https://evil.example.com/hooks/trello".into(),
    );
    let wrong = hookbridge_providers::build("trello", vec![Secret::new(APP_SECRET)], elsewhere)
        .unwrap()
        .sign(
            "commentCard",
            &sample("commentCard"),
            "",
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
    let refused = http
        .post(server.url("/hooks/trello"))
        .headers(wrong.headers)
        .body(wrong.body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    // Trello's check is answered without a signature, any time.
    let check = http.head(server.url("/hooks/trello")).send().await.unwrap();
    assert_eq!(check.status(), 200);

    // History: every callback is listed, with its action type and id, and replayable; the
    // replay runs the rule again, which posts nothing twice.
    let (ok, out, err) = cli(&server, &["deliveries", "list", "--endpoint", "trello"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().count(),
        2,
        "one callback (and the header): {out}"
    );
    assert!(
        out.contains("updateCard") && out.contains("6647025fa1b2c3d4e5f60718"),
        "{out}"
    );
    let (ok, out, err) = cli(
        &server,
        &["deliveries", "replay", "6647025fa1b2c3d4e5f60718"],
    );
    assert!(ok, "{out}{err}");
    let jobs = jobs_finished(&http, &server, 2).await;
    assert!(jobs.iter().all(|j| j["state"] == "done"), "{jobs:?}");
    let newest = jobs.iter().max_by_key(|j| j["id"].as_i64()).unwrap();
    let job = admin(&http, &server, &format!("/jobs/{}", newest["id"])).await;
    let actions = job["attempts"][0]["actions"].to_string();
    assert!(actions.contains("already notified team"), "{job}");
    assert_eq!(slack.received_requests().await.unwrap().len(), 1);

    // The same callback again (Trello retries): a duplicate, acknowledged, not dispatched.
    let again = http
        .post(server.url("/hooks/trello"))
        .headers(signed.headers)
        .body(signed.body)
        .send()
        .await
        .unwrap();
    assert!(again.status().is_success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(jobs_finished(&http, &server, 2).await.len(), 2);
}
