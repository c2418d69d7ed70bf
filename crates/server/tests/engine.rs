//! The bundled server running rules from its config: a declarative rule calls a (mock)
//! service for GitHub deliveries; failures retry and dead-letter; the admin API and the CLI
//! show and replay them.

mod common;

use std::time::Duration;

use common::*;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ADMIN: &str = "admin-token-0123456789abcdef";

fn config_with_rule(mock: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[store]
kind = "sqlite"
path = "data/hookbridge.db"

[engine]
max_attempts = 3
backoff_base_ms = 20
backoff_max_secs = 1
poll_interval_ms = 50

[admin]
token = "{ADMIN}"

[endpoints.gh]
provider = "github"
secret = "{SECRET}"

[[rules]]
name = "issues-to-tracker"
action = {{ kind = "http", url = "{mock}/tickets", body = '{{"title": "{{{{ /issue/title }}}}", "state": "{{{{ /action | map:state }}}}", "from": "{{{{ event.subject }}}}"}}' }}

[rules.when]
provider = "github"
event = "issues.*"
fields = {{ "/repository/full_name" = "octo-org/octo-repo" }}

[rules.maps]
state = {{ opened = "new", closed = "done" }}
"#
    )
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

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn declarative_rule_applies_retries_dead_letters_and_replays() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/tickets"))
        .and(body_partial_json(
            serde_json::json!({"state": "new", "from": "github:octo-org/octo-repo#1347"}),
        ))
        .respond_with(ResponseTemplate::new(201))
        .mount(&mock)
        .await;
    // Closed issues hit an outage: 503 for longer than the attempts last.
    Mock::given(method("POST"))
        .and(path("/tickets"))
        .and(body_partial_json(serde_json::json!({"state": "done"})))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/tickets"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&mock)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config_with_rule(&mock.uri()));
    let client = reqwest::Client::new();
    let url = server.url("/hooks/gh");

    // Without the token the admin API refuses.
    assert_eq!(
        client
            .get(server.url("/admin/jobs"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .get(server.url("/admin/jobs"))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // Unknown admin paths too: routes cannot be probed without the token.
    assert_eq!(
        client
            .get(server.url("/admin/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .get(server.url("/admin/nope"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let r = github_post(
        &client,
        &url,
        "issues",
        "e-open",
        fixture("issues.opened.json"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let r = github_post(
        &client,
        &url,
        "issues",
        "e-closed",
        fixture("issues.closed.json"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    // Not matching the rule: a push.
    let r = github_post(&client, &url, "push", "e-push", fixture("push.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    wait_for("one done and one dead job", || async {
        let done = admin_get(&client, &server, "/admin/jobs?state=done").await;
        let dead = admin_get(&client, &server, "/admin/dead-letters").await;
        done["jobs"].as_array().unwrap().len() == 1 && dead["jobs"].as_array().unwrap().len() == 1
    })
    .await;
    let dead = admin_get(&client, &server, "/admin/dead-letters").await;
    let job = &dead["jobs"][0];
    assert_eq!(job["rule"], "issues-to-tracker");
    assert_eq!(job["attempts"], 3);
    assert_eq!(
        job["last_error"],
        "transient failure: HTTP 503 Service Unavailable"
    );
    let id = job["id"].as_i64().unwrap();
    let shown = admin_get(&client, &server, &format!("/admin/jobs/{id}")).await;
    assert_eq!(shown["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(shown["attempts"][0]["outcome"], "retry");
    assert_eq!(shown["attempts"][2]["outcome"], "failed");

    // The push matched no rule.
    let deliveries = admin_get(&client, &server, "/admin/deliveries").await;
    let push = deliveries["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["delivery_id"] == "e-push")
        .unwrap();
    assert_eq!(push["status"], "no_rules");
    let seq = push["seq"].as_i64().unwrap();
    let report: serde_json::Value = client
        .post(server.url(&format!("/admin/deliveries/{seq}/dry-run")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["rules"][0]["matched"], false);

    // Dry run of the opened issue: what it would send, without sending.
    let opened = deliveries["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["delivery_id"] == "e-open")
        .unwrap();
    let before = mock.received_requests().await.unwrap().len();
    let report: serde_json::Value = client
        .post(server.url(&format!("/admin/deliveries/{}/dry-run", opened["seq"])))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["rules"][0]["outcome"], "applied");
    assert!(
        report["rules"][0]["actions"][0]
            .as_str()
            .unwrap()
            .starts_with("would: POST 127.0.0.1/tickets"),
        "{report}"
    );
    assert_eq!(mock.received_requests().await.unwrap().len(), before);

    // The outage is over: replay the dead letter.
    let r = client
        .post(server.url(&format!("/admin/jobs/{id}/replay")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_for("the replayed job is done", || async {
        admin_get(&client, &server, "/admin/jobs?state=done").await["jobs"]
            .as_array()
            .unwrap()
            .len()
            == 2
    })
    .await;
    let r = client
        .post(server.url(&format!("/admin/jobs/{id}/replay")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "a done job does not replay");
    assert_eq!(
        client
            .get(server.url("/admin/jobs/999999"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // The tracker got: opened once, closed 3 failures + 1 success.
    let requests = mock.received_requests().await.unwrap();
    let bodies: Vec<serde_json::Value> = requests
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(bodies.iter().filter(|b| b["state"] == "new").count(), 1);
    assert_eq!(bodies.iter().filter(|b| b["state"] == "done").count(), 4);
    let opened_body = bodies.iter().find(|b| b["state"] == "new").unwrap();
    assert!(opened_body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(!server.logs().contains(ADMIN));

    // Replaying a delivery creates its jobs again through the current rules; the opened
    // issue's state is older than the closed one already applied, so it is skipped as stale
    // rather than reopening the ticket.
    let r = client
        .post(server.url(&format!("/admin/deliveries/{}/replay", opened["seq"])))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_for(
        "the replayed delivery's job is skipped as stale",
        || async {
            admin_get(&client, &server, "/admin/jobs?state=skipped").await["jobs"]
                .as_array()
                .unwrap()
                .len()
                == 1
        },
    )
    .await;
    let skipped = admin_get(&client, &server, "/admin/jobs?state=skipped").await;
    let id = skipped["jobs"][0]["id"].as_i64().unwrap();
    let shown = admin_get(&client, &server, &format!("/admin/jobs/{id}")).await;
    assert!(
        shown["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("stale"),
        "{shown}"
    );
    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        r#"hookbridge_job_attempts_total{rule="issues-to-tracker",outcome="retry"} 2"#,
        r#"hookbridge_job_attempts_total{rule="issues-to-tracker",outcome="failed"} 1"#,
        r#"hookbridge_jobs{state="done"} 2"#,
        r#"hookbridge_jobs{state="skipped"} 1"#,
    ] {
        assert!(metrics.contains(needle), "{needle} not in {metrics}");
    }
    let rules = admin_get(&client, &server, "/admin/rules").await;
    assert_eq!(rules["rules"], serde_json::json!(["issues-to-tracker"]));
}

#[tokio::test]
async fn cli_shows_jobs_dead_letters_and_dry_runs() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(422))
        .mount(&mock)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &config_with_rule(&mock.uri()));
    let client = reqwest::Client::new();
    let r = github_post(
        &client,
        &server.url("/hooks/gh"),
        "issues",
        "c-open",
        fixture("issues.opened.json"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    wait_for("a dead letter", || async {
        admin_get(&client, &server, "/admin/dead-letters").await["jobs"]
            .as_array()
            .unwrap()
            .len()
            == 1
    })
    .await;
    server.terminate();

    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookbridge"))
            .args(args)
            .args(["--config", "hookbridge.toml"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["dead-letters", "list"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("issues-to-tracker") && out.contains("permanent failure: HTTP 422"),
        "{out}"
    );
    let (code, out, _) = run(&["jobs", "list", "--state", "dead", "--json"]);
    assert_eq!(code, Some(0));
    let job: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let id = job["id"].as_i64().unwrap().to_string();
    let (_, out, _) = run(&["jobs", "show", &id]);
    assert!(
        out.contains("attempt 1") && out.contains("error: permanent failure: HTTP 422"),
        "{out}"
    );
    let (code, out, err) = run(&["rules", "dry-run", "--delivery", "c-open"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("issues-to-tracker: applied") && out.contains("would: POST"),
        "{out}"
    );
    let (_, out, _) = run(&["rules", "list"]);
    assert_eq!(out.trim(), "issues-to-tracker");
    let (code, out, _) = run(&["dead-letters", "replay", "--all"]);
    assert_eq!(code, Some(0));
    assert!(out.contains(&format!("job {id} will run again")));
    let (code, _, err) = run(&["jobs", "replay", &id]);
    assert_eq!(code, Some(1), "already pending: {err}");
    let (code, out, _) = run(&["deliveries", "replay", "c-open"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("dispatched again"));
}

#[test]
fn bad_rules_fail_check_config_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookbridge.toml");
    let bad = config_with_rule("http://127.0.0.1:1").replace("map:state", "map:nope");
    std::fs::write(&path, bad).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookbridge"))
        .args(["check-config", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rule \"issues-to-tracker\"") && err.contains("no map named \"nope\""),
        "{err}"
    );
}
