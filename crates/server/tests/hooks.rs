//! `hookbridge hooks list|sync` against stateful mock GitHub and Trello APIs: the second
//! sync changes nothing, undeclared hooks pointing here are reported, and pruned with
//! `--prune`; hooks of other integrations are never touched.

use std::process::Command;
use std::sync::{Arc, Mutex};

use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Remote hooks kept as JSON, listed, created and deleted like the service does.
#[derive(Clone, Default)]
struct Remote {
    hooks: Arc<Mutex<Vec<serde_json::Value>>>,
    writes: Arc<Mutex<u32>>,
}

struct List(Remote);
impl Respond for List {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(self.0.hooks.lock().unwrap().clone())
    }
}

struct CreateGithub(Remote);
impl Respond for CreateGithub {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert!(
            body["config"]["secret"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "GitHub must get the endpoint's secret"
        );
        let mut hooks = self.0.hooks.lock().unwrap();
        let hook = serde_json::json!({
            "id": 100 + hooks.len(), "type": "Repository", "name": "web", "active": true,
            "events": body["events"], "config": {"url": body["config"]["url"], "content_type": "json"}
        });
        hooks.push(hook.clone());
        *self.0.writes.lock().unwrap() += 1;
        ResponseTemplate::new(201).set_body_json(hook)
    }
}

struct CreateTrello(Remote);
impl Respond for CreateTrello {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let mut hooks = self.0.hooks.lock().unwrap();
        let hook = serde_json::json!({
            "id": format!("tw{}", hooks.len()), "description": body["description"], "idModel": body["idModel"],
            "callbackURL": body["callbackURL"], "active": true, "consecutiveFailures": 0, "firstConsecutiveFailDate": null
        });
        hooks.push(hook.clone());
        *self.0.writes.lock().unwrap() += 1;
        ResponseTemplate::new(200).set_body_json(hook)
    }
}

struct Delete(Remote);
impl Respond for Delete {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request.url.path().rsplit('/').next().unwrap().to_owned();
        self.0
            .hooks
            .lock()
            .unwrap()
            .retain(|h| h["id"].to_string().trim_matches('"') != id);
        *self.0.writes.lock().unwrap() += 1;
        ResponseTemplate::new(204)
    }
}

fn run(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hookbridge"))
        .args(args)
        .args(["--config", "hookbridge.toml"])
        .current_dir(dir)
        .env("HB_TEST_GH_TOKEN", "ghp_test_token_value")
        .env("HB_TEST_TRELLO_TOKEN", "trello-user-token")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn sync_is_idempotent_and_prunes_only_when_asked() {
    let github = MockServer::start().await;
    let trello = MockServer::start().await;
    let gh = Remote::default();
    let tr = Remote::default();
    // One hook of another integration, and one stale hook of ours.
    gh.hooks.lock().unwrap().push(serde_json::json!({"id": 1, "active": true, "events": ["push"], "config": {"url": "https://ci.example.com/hook"}}));
    gh.hooks.lock().unwrap().push(serde_json::json!({"id": 2, "active": true, "events": ["*"], "config": {"url": "https://hooks.example.com/hooks/old"}}));
    Mock::given(method("GET"))
        .and(path("/repos/octo-org/octo-repo/hooks"))
        .respond_with(List(gh.clone()))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/octo-org/octo-repo/hooks"))
        .respond_with(CreateGithub(gh.clone()))
        .mount(&github)
        .await;
    Mock::given(method("DELETE"))
        .and(path_regex("^/repos/octo-org/octo-repo/hooks/[0-9]+$"))
        .respond_with(Delete(gh.clone()))
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path("/1/tokens/trello-user-token/webhooks"))
        .respond_with(List(tr.clone()))
        .mount(&trello)
        .await;
    Mock::given(method("POST"))
        .and(path("/1/webhooks/"))
        .respond_with(CreateTrello(tr.clone()))
        .mount(&trello)
        .await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hookbridge.toml"),
        format!(
            r#"
[server]
public_url = "https://hooks.example.com"

[store]
path = "data/hb.db"

[endpoints.github]
provider = "github"
secret = "gh-webhook-secret"

[endpoints.trello]
provider = "trello"
secret = "trello-app-secret"
callback_url = "https://hooks.example.com/hooks/trello"

[connections.gh]
kind = "github"
base_url = "{github}"
token = {{ env = "HB_TEST_GH_TOKEN" }}

[connections.trello]
kind = "trello"
base_url = "{trello}/1"
key = "trello-key"
token = {{ env = "HB_TEST_TRELLO_TOKEN" }}

[[hooks]]
endpoint = "github"
connection = "gh"
repository = "octo-org/octo-repo"
events = ["issues", "pull_request"]

[[hooks]]
endpoint = "trello"
connection = "trello"
model = "5abbe4b7ddc1b351ef961414"
description = "hookbridge"
"#,
            github = github.uri(),
            trello = trello.uri()
        ),
    )
    .unwrap();

    let (code, out, err) = run(dir.path(), &["hooks", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "created   github octo-org/octo-repo -> https://hooks.example.com/hooks/github"
        ),
        "{out}"
    );
    assert!(
        out.contains("unknown   github octo-org/octo-repo -> https://hooks.example.com/hooks/old"),
        "{out}"
    );
    assert!(
        out.contains("created   trello 5abbe4b7ddc1b351ef961414"),
        "{out}"
    );
    assert!(
        !out.contains("ci.example.com"),
        "other integrations' hooks are not ours to report"
    );
    assert_eq!(
        *gh.writes.lock().unwrap() + *tr.writes.lock().unwrap(),
        0,
        "list changes nothing"
    );

    let (code, out, err) = run(dir.path(), &["hooks", "sync"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(*gh.writes.lock().unwrap(), 1);
    assert_eq!(*tr.writes.lock().unwrap(), 1);
    assert!(out.contains("created"), "{out}");

    // The second sync changes nothing.
    let (code, out, err) = run(dir.path(), &["hooks", "sync"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains("created") && !out.contains("updated") && !out.contains("deleted"),
        "{out}"
    );
    assert!(
        out.contains("ok        github") && out.contains("ok        trello"),
        "{out}"
    );
    assert_eq!(*gh.writes.lock().unwrap(), 1);
    assert_eq!(*tr.writes.lock().unwrap(), 1);

    // --prune deletes our stale hook, never the other integration's.
    let (code, out, _) = run(dir.path(), &["hooks", "sync", "--prune", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("deleted   github octo-org/octo-repo -> https://hooks.example.com/hooks/old"),
        "{out}"
    );
    assert_eq!(
        gh.hooks.lock().unwrap().len(),
        3,
        "a dry run deletes nothing"
    );
    let (code, _, err) = run(dir.path(), &["hooks", "sync", "--prune"]);
    assert_eq!(code, 0, "{err}");
    let urls: Vec<String> = gh
        .hooks
        .lock()
        .unwrap()
        .iter()
        .map(|h| h["config"]["url"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        urls,
        [
            "https://ci.example.com/hook",
            "https://hooks.example.com/hooks/github"
        ]
    );

    // Credentials never reach the output.
    let (_, out, err) = run(dir.path(), &["hooks", "list"]);
    for secret in [
        "ghp_test_token_value",
        "trello-user-token",
        "gh-webhook-secret",
    ] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{secret} printed"
        );
    }
}
