//! `hookbridge hooks list|sync` for Jira (Cloud dynamic webhooks, Data Center admin webhooks)
//! and Asana (whose webhook creation waits for the handshake with the running server),
//! against stateful mocks: created once, unchanged the second time, undeclared ones of ours
//! reported and pruned only with `--prune`, expiring Jira webhooks refreshed.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::Server;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[derive(Clone, Default)]
struct Remote {
    hooks: Arc<Mutex<Vec<serde_json::Value>>>,
    writes: Arc<Mutex<Vec<String>>>,
}

impl Remote {
    fn write(&self, what: impl Into<String>) {
        self.writes.lock().unwrap().push(what.into());
    }
    fn writes(&self) -> Vec<String> {
        self.writes.lock().unwrap().clone()
    }
}

fn run(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hookbridge"))
        .args(args)
        .args(["--config", "cli.toml"])
        .current_dir(dir)
        .env("HB_TEST_JIRA_TOKEN", "jira-api-token-value")
        .env("HB_TEST_ASANA_TOKEN", "asana-pat-value")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// -- Jira Cloud -------------------------------------------------------------------------------

struct JiraList(Remote);
impl Respond for JiraList {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let auth = request
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(
            auth.starts_with("Basic "),
            "email + API token as basic auth"
        );
        let values = self.0.hooks.lock().unwrap().clone();
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "startAt": 0, "maxResults": 100, "total": values.len(), "isLast": true, "values": values
        }))
    }
}

struct JiraRegister(Remote);
impl Respond for JiraRegister {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let mut hooks = self.0.hooks.lock().unwrap();
        let mut results = Vec::new();
        for spec in body["webhooks"].as_array().unwrap() {
            let id = 1000 + hooks.len() as u64;
            hooks.push(serde_json::json!({
                "id": id, "jqlFilter": spec["jqlFilter"], "events": spec["events"],
                "url": body["url"], "expirationDate": "2099-01-01T00:00:00.000+0000"
            }));
            results.push(serde_json::json!({"createdWebhookId": id}));
        }
        self.0.write(format!("register {}", body["url"]));
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({"webhookRegistrationResult": results}))
    }
}

struct JiraDelete(Remote);
impl Respond for JiraDelete {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let ids: Vec<u64> = body["webhookIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        self.0
            .hooks
            .lock()
            .unwrap()
            .retain(|h| !ids.contains(&h["id"].as_u64().unwrap()));
        self.0.write(format!("delete {ids:?}"));
        ResponseTemplate::new(202)
    }
}

struct JiraRefresh(Remote);
impl Respond for JiraRefresh {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let ids: Vec<u64> = body["webhookIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        for hook in self.0.hooks.lock().unwrap().iter_mut() {
            if ids.contains(&hook["id"].as_u64().unwrap()) {
                hook["expirationDate"] = "2099-01-01T00:00:00.000+0000".into();
            }
        }
        self.0.write(format!("refresh {ids:?}"));
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({"expirationDate": "2099-01-01T00:00:00.000+0000"}))
    }
}

#[tokio::test]
async fn jira_cloud_dynamic_webhooks_are_created_refreshed_and_pruned() {
    let jira = MockServer::start().await;
    let remote = Remote::default();
    // A stale hook of this app, and one about to expire that is still declared.
    remote.hooks.lock().unwrap().push(serde_json::json!({
        "id": 7, "jqlFilter": "project = OLD", "events": ["jira:issue_created"],
        "url": "https://hooks.example.com/hooks/jira", "expirationDate": "2099-01-01T00:00:00.000+0000"
    }));
    remote.hooks.lock().unwrap().push(serde_json::json!({
        "id": 8, "jqlFilter": "project = OPS", "events": ["comment_created", "jira:issue_updated"],
        "url": "https://hooks.example.com/hooks/jira", "expirationDate": "2000-01-01T00:00:00.000+0000"
    }));
    Mock::given(method("GET"))
        .and(path("/rest/api/3/webhook"))
        .respond_with(JiraList(remote.clone()))
        .mount(&jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/webhook"))
        .respond_with(JiraRegister(remote.clone()))
        .mount(&jira)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/rest/api/3/webhook"))
        .respond_with(JiraDelete(remote.clone()))
        .mount(&jira)
        .await;
    Mock::given(method("PUT"))
        .and(path("/rest/api/3/webhook/refresh"))
        .respond_with(JiraRefresh(remote.clone()))
        .mount(&jira)
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cli.toml"),
        format!(
            r#"
[server]
public_url = "https://hooks.example.com"
[store]
path = "data/hb.db"
[endpoints.jira]
provider = "jira"
secret = "jira-webhook-secret"
[connections.jira]
kind = "jira"
base_url = "{jira}"
deployment = "cloud"
email = "bot@example.com"
token = {{ env = "HB_TEST_JIRA_TOKEN" }}
[[hooks]]
endpoint = "jira"
connection = "jira"
jql = "project = SUP"
events = ["jira:issue_created", "jira:issue_updated"]
[[hooks]]
endpoint = "jira"
connection = "jira"
jql = "project = OPS"
events = ["jira:issue_updated", "comment_created"]
"#,
            jira = jira.uri()
        ),
    )
    .unwrap();

    let (code, out, err) = run(dir.path(), &["hooks", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("created   jira [project = SUP] -> https://hooks.example.com/hooks/jira"),
        "{out}"
    );
    assert!(
        out.contains(
            "updated   jira [project = OPS] -> https://hooks.example.com/hooks/jira (refreshed)"
        ),
        "{out}"
    );
    assert!(out.contains("unknown   jira [project = OLD]"), "{out}");
    assert!(
        remote.writes().is_empty(),
        "list changes nothing: {:?}",
        remote.writes()
    );

    let (code, out, err) = run(dir.path(), &["hooks", "sync"]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert_eq!(
        remote.writes(),
        [
            "register \"https://hooks.example.com/hooks/jira\"".to_owned(),
            "refresh [8]".to_owned()
        ]
    );
    let (code, out, err) = run(dir.path(), &["hooks", "sync"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        remote.writes().len(),
        2,
        "the second sync changes nothing: {out}"
    );
    assert!(out.contains("ok        jira [project = SUP]"), "{out}");
    assert!(out.contains("ok        jira [project = OPS]"), "{out}");

    let (code, out, err) = run(dir.path(), &["hooks", "sync", "--prune"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deleted   jira [project = OLD]"), "{out}");
    assert_eq!(remote.writes().last().unwrap(), "delete [7]");
    assert!(!out.contains("jira-api-token-value") && !err.contains("jira-api-token-value"));
}

// -- Jira Data Center ---------------------------------------------------------------------------

struct DcList(Remote);
impl Respond for DcList {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let auth = request
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(
            auth, "Bearer jira-api-token-value",
            "a DC personal access token"
        );
        ResponseTemplate::new(200).set_body_json(self.0.hooks.lock().unwrap().clone())
    }
}

struct DcCreate(Remote);
impl Respond for DcCreate {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let mut hooks = self.0.hooks.lock().unwrap();
        let id = 50 + hooks.len();
        body["self"] = format!("https://jira.example.com/rest/webhooks/1.0/webhook/{id}").into();
        body["enabled"] = true.into();
        hooks.push(body.clone());
        self.0.write(format!("create {}", body["url"]));
        ResponseTemplate::new(201).set_body_json(body)
    }
}

struct DcDelete(Remote);
impl Respond for DcDelete {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request.url.path().rsplit('/').next().unwrap().to_owned();
        self.0
            .hooks
            .lock()
            .unwrap()
            .retain(|h| !h["self"].as_str().unwrap().ends_with(&format!("/{id}")));
        self.0.write(format!("delete {id}"));
        ResponseTemplate::new(204)
    }
}

#[tokio::test]
async fn jira_data_center_admin_webhooks_are_reconciled_by_url() {
    let jira = MockServer::start().await;
    let remote = Remote::default();
    remote.hooks.lock().unwrap().push(serde_json::json!({
        "self": "https://jira.example.com/rest/webhooks/1.0/webhook/3", "name": "someone else's",
        "url": "https://ci.example.com/jira", "events": ["jira:issue_created"], "enabled": true
    }));
    remote.hooks.lock().unwrap().push(serde_json::json!({
        "self": "https://jira.example.com/rest/webhooks/1.0/webhook/4", "name": "old",
        "url": "https://hooks.example.com/hooks/old", "events": ["jira:issue_created"], "enabled": true
    }));
    Mock::given(method("GET"))
        .and(path("/rest/webhooks/1.0/webhook"))
        .respond_with(DcList(remote.clone()))
        .mount(&jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/webhooks/1.0/webhook"))
        .respond_with(DcCreate(remote.clone()))
        .mount(&jira)
        .await;
    Mock::given(method("DELETE"))
        .and(path_regex("^/rest/webhooks/1.0/webhook/[0-9]+$"))
        .respond_with(DcDelete(remote.clone()))
        .mount(&jira)
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cli.toml"),
        format!(
            r#"
[server]
public_url = "https://hooks.example.com"
[store]
path = "data/hb.db"
[endpoints.jira]
provider = "jira"
secret = "jira-webhook-secret"
[connections.jira-dc]
kind = "jira"
base_url = "{jira}"
deployment = "data_center"
token = {{ env = "HB_TEST_JIRA_TOKEN" }}
[[hooks]]
endpoint = "jira"
connection = "jira-dc"
jql = "project = SUP"
description = "hookbridge"
"#,
            jira = jira.uri()
        ),
    )
    .unwrap();
    let (code, out, err) = run(dir.path(), &["hooks", "sync"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("created   jira https://hooks.example.com/hooks/jira"),
        "{out}"
    );
    assert!(
        out.contains("unknown   jira https://hooks.example.com/hooks/old"),
        "{out}"
    );
    assert!(!out.contains("ci.example.com"), "{out}");
    let created = remote.hooks.lock().unwrap().last().unwrap().clone();
    assert_eq!(
        created["filters"]["issue-related-events-section"],
        "project = SUP"
    );
    assert_eq!(created["name"], "hookbridge");
    let (code, out, err) = run(dir.path(), &["hooks", "sync", "--prune"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("ok        jira https://hooks.example.com/hooks/jira"),
        "{out}"
    );
    assert!(
        out.contains("deleted   jira https://hooks.example.com/hooks/old"),
        "{out}"
    );
    assert_eq!(
        remote.writes(),
        [
            "create \"https://hooks.example.com/hooks/jira\"",
            "delete 4"
        ]
    );
}

// -- Asana --------------------------------------------------------------------------------------

/// Asana's `POST /webhooks`: before answering, Asana sends the handshake (`X-Hook-Secret`) to
/// the target and creates the webhook only if the target echoes it with 200.
struct AsanaCreate(Remote);
impl Respond for AsanaCreate {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let target = body["data"]["target"].as_str().unwrap().to_owned();
        let resource = body["data"]["resource"].as_str().unwrap().to_owned();
        let (status, echoed) = handshake(&target, "asana-handshake-secret-1");
        if status != 200 || echoed.as_deref() != Some("asana-handshake-secret-1") {
            return ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "errors": [{"message": format!("The remote server did not respond with the handshake secret ({status})")}]
            }));
        }
        let mut hooks = self.0.hooks.lock().unwrap();
        let hook = serde_json::json!({
            "gid": format!("{}", 9000 + hooks.len()), "active": true,
            "resource": {"gid": resource, "name": "Roadmap"}, "target": target,
            "filters": body["data"]["filters"]
        });
        hooks.push(hook.clone());
        self.0.write(format!("create {resource}"));
        ResponseTemplate::new(201).set_body_json(serde_json::json!({
            "data": hook, "X-Hook-Secret": "asana-handshake-secret-1"
        }))
    }
}

/// A blocking HTTP POST with `X-Hook-Secret`, as Asana's handshake: (status, echoed secret).
fn handshake(target: &str, secret: &str) -> (u16, Option<String>) {
    let rest = target.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nX-Hook-Secret: {secret}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let echoed = answer.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("x-hook-secret")
            .then(|| value.trim().to_owned())
    });
    (status, echoed)
}

struct AsanaList(Remote);
impl Respond for AsanaList {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let auth = request
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(auth, "Bearer asana-pat-value");
        assert!(request.url.query().unwrap().contains("workspace=1111"));
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "data": self.0.hooks.lock().unwrap().clone(), "next_page": null
        }))
    }
}

struct AsanaDelete(Remote);
impl Respond for AsanaDelete {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let gid = request.url.path().rsplit('/').next().unwrap().to_owned();
        self.0
            .hooks
            .lock()
            .unwrap()
            .retain(|h| h["gid"] != gid.as_str());
        self.0.write(format!("delete {gid}"));
        ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": {}}))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn asana_webhooks_are_created_through_the_handshake_once() {
    let asana = MockServer::start().await;
    let remote = Remote::default();
    Mock::given(method("GET"))
        .and(path("/api/1.0/webhooks"))
        .respond_with(AsanaList(remote.clone()))
        .mount(&asana)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/1.0/webhooks"))
        .respond_with(AsanaCreate(remote.clone()))
        .mount(&asana)
        .await;
    Mock::given(method("DELETE"))
        .and(path_regex("^/api/1.0/webhooks/[0-9]+$"))
        .respond_with(AsanaDelete(remote.clone()))
        .mount(&asana)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let endpoints = r#"
[endpoints.asana]
provider = "asana"
"#;
    let server = Server::start(
        dir.path(),
        &format!(
            r#"
[server]
listen = "127.0.0.1:0"
[store]
path = "data/hb.db"
{endpoints}"#
        ),
    );
    let public = server.url("");
    std::fs::write(
        dir.path().join("cli.toml"),
        format!(
            r#"
[server]
public_url = "{public}"
[store]
path = "data/hb.db"
{endpoints}
[connections.asana]
kind = "asana"
base_url = "{asana}/api/1.0"
token = {{ env = "HB_TEST_ASANA_TOKEN" }}
[[hooks]]
endpoint = "asana"
connection = "asana"
workspace = "1111"
resource = "2222"
filters = [{{ resource_type = "task", action = "changed", fields = ["completed"] }}]
"#,
            asana = asana.uri()
        ),
    )
    .unwrap();
    let (code, out, err) = run(dir.path(), &["hooks", "sync"]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(
        out.contains(&format!("created   asana 2222 -> {public}/hooks/asana")),
        "{out}"
    );
    assert_eq!(remote.writes(), ["create 2222"]);
    let created = remote.hooks.lock().unwrap()[0].clone();
    assert_eq!(created["filters"][0]["fields"][0], "completed");
    // The second sync finds it; a handshake for an endpoint that has its secret is refused.
    let (code, out, err) = run(dir.path(), &["hooks", "sync"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("ok        asana 2222 -> {public}/hooks/asana")),
        "{out}"
    );
    assert_eq!(remote.writes().len(), 1);
    let (status, echoed) = handshake(&format!("{public}/hooks/asana"), "an-attacker-secret");
    assert_eq!(status, 409);
    assert_eq!(echoed, None);
    drop(server);
}
