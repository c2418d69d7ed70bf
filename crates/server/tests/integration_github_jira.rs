//! End to end: the real `hookbridge` binary with a github-jira integration from its
//! configuration file, GitHub and Jira as stateful mock services on 127.0.0.1, and signed
//! deliveries sent over HTTP as the services send them. Asserts the API calls made, that the
//! echoes of the bot's own writes cause none, and the `hookbridge rescan` command.

mod common;
#[path = "../../sync-engine/tests/github_jira_fake/mod.rs"]
mod github_jira_fake;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{SECRET, Server, github_post, sign256};
use github_jira_fake::{BOT, FakeGithub, FakeJira, Pr, jira_status_event, pr_event, pull};
use serde_json::Value;

const JIRA_SECRET: &str = "jira-webhook-secret-81c2";
const ADMIN: &str = "admin-token-5d1e";
const GITHUB_TOKEN: &str = "ghp_e2eTestToken000000000000000000000";
const JIRA_TOKEN: &str = "jira-api-token-e2e";
const PR: u64 = 34;

fn config(github: &str, jira: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace_secs = 5

[store]
kind = "sqlite"
path = "data/hookbridge.db"

[admin]
token = "{ADMIN}"

[endpoints.github]
provider = "github"
secret = "{SECRET}"

[endpoints.jira]
provider = "jira"
secret = "{JIRA_SECRET}"

[connections.gh]
kind = "github"
base_url = "{github}"
token = {{ env = "GITHUB_TOKEN" }}

[connections.jira]
kind = "jira"
base_url = "{jira}"
email = "bot@example.com"
token = {{ env = "JIRA_TOKEN" }}

[[integrations]]
name = "gh-jira"
kind = "github-jira"
github = "gh"
jira = "jira"
endpoint = "github"
jira_endpoint = "jira"
bot_login = "{BOT}"
mappings = [{{ repo = "octo-org/*", project = "OPS", issue_type = "Task" }}]
"#
    )
}

const ENV: &[(&str, &str)] = &[("GITHUB_TOKEN", GITHUB_TOKEN), ("JIRA_TOKEN", JIRA_TOKEN)];

struct Rig {
    server: Server,
    http: reqwest::Client,
    gh: FakeGithub,
    jira: FakeJira,
    jobs: usize,
    deliveries: u32,
    _mocks: (wiremock::MockServer, wiremock::MockServer),
}

impl Rig {
    async fn start(dir: &Path) -> Rig {
        let (gh_server, gh) = FakeGithub::start().await;
        let (jira_server, jira) = FakeJira::start().await;
        let text = config(&gh_server.uri(), &jira_server.uri());
        let server = Server::start_with_env(dir, &text, ENV);
        Rig {
            server,
            http: reqwest::Client::new(),
            gh,
            jira,
            jobs: 0,
            deliveries: 0,
            _mocks: (gh_server, jira_server),
        }
    }

    fn delivery_id(&mut self) -> String {
        self.deliveries += 1;
        format!("5d3e0c2a-0000-4000-8000-{:012}", self.deliveries)
    }

    /// Sends a signed GitHub delivery, checks it was accepted, and waits for its job.
    async fn github(&mut self, event: &str, payload: &Value) -> Value {
        let id = self.delivery_id();
        let body = serde_json::to_vec(payload).unwrap();
        let response = github_post(
            &self.http,
            &self.server.url("/hooks/github"),
            event,
            &id,
            body,
        )
        .send()
        .await
        .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        self.next_job().await
    }

    /// Sends a signed Jira delivery (`X-Hub-Signature: sha256=` over the raw body, as Jira
    /// Cloud's secure admin webhooks do) and waits for its job.
    async fn jira_event(&mut self, payload: &Value) -> Value {
        let id = self.delivery_id();
        let body = serde_json::to_vec(payload).unwrap();
        let response = self
            .http
            .post(self.server.url("/hooks/jira"))
            .header("content-type", "application/json")
            .header("x-atlassian-webhook-identifier", id)
            .header("x-hub-signature", sign256(JIRA_SECRET, &body))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        self.next_job().await
    }

    async fn admin(&self, path: &str) -> Value {
        self.http
            .get(self.server.url(&format!("/admin{path}")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits for one more job of the integration to finish; returns it with its attempts.
    async fn next_job(&mut self) -> Value {
        self.jobs += 1;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let list = self.admin("/jobs?rule=gh-jira&limit=100").await;
            let jobs = list["jobs"].as_array().cloned().unwrap_or_default();
            let finished = jobs
                .iter()
                .all(|j| !matches!(j["state"].as_str(), Some("pending" | "running")));
            if jobs.len() >= self.jobs && finished {
                let newest = jobs
                    .iter()
                    .max_by_key(|j| j["id"].as_i64())
                    .cloned()
                    .unwrap_or_default();
                return self.admin(&format!("/jobs/{}", newest["id"])).await;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for job {}: {list}\n{}",
                self.jobs,
                self.server.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn rescan(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_hookbridge"))
            .arg("rescan")
            .arg("--config")
            .arg(self.server.dir.join("hookbridge.toml"))
            .args(args)
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

    fn writes(&self) -> usize {
        let writes = |calls: Vec<String>| {
            calls
                .iter()
                .filter(|c| !c.starts_with("GET ") && !c.contains("/search"))
                .count()
        };
        writes(self.jira.calls()) + writes(self.gh.calls())
    }
}

fn state(job: &Value) -> &str {
    job["job"]["state"].as_str().unwrap_or_default()
}

fn reason(job: &Value) -> String {
    job["attempts"]
        .as_array()
        .and_then(|a| a.last())
        .map(|a| a["error"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_pull_requests_follow_into_jira_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = Rig::start(dir.path()).await;
    rig.gh.set_labels(PR, &["bug"]);

    // Opened: an issue, a comment naming it, the status label.
    let job = rig
        .github(
            "pull_request",
            &pr_event("opened", pull(PR, Pr::Open, &["bug"], 1), "octocat", None),
        )
        .await;
    assert_eq!(state(&job), "done", "{job}");
    let issues = rig.jira.issues();
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].key, "OPS-1");
    assert_eq!(issues[0].summary, "Fix the flux capacitor (#34)");
    assert!(
        issues[0]
            .description
            .contains("https://github.com/octo-org/octo-repo/pull/34")
    );
    assert!(
        rig.jira
            .calls()
            .contains(&"POST /rest/api/2/issue".to_owned())
    );
    let comments = rig.gh.comments(PR);
    assert_eq!(comments.len(), 1);
    assert!(comments[0].2.contains("OPS-1"), "{comments:?}");
    assert_eq!(rig.gh.labels(PR), ["bug", "jira:needs triage"]);
    // The services were called with the configured credentials (from the environment).
    let gh_auth = rig._mocks.0.received_requests().await.unwrap();
    assert!(
        gh_auth
            .iter()
            .all(|r| r.headers.get("authorization").unwrap()
                == format!("Bearer {GITHUB_TOKEN}").as_str())
    );
    let jira_auth = rig._mocks.1.received_requests().await.unwrap();
    assert!(jira_auth.iter().all(|r| {
        r.headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    }));

    // GitHub's webhook about the bot's own label: an echo, no call anywhere.
    let calls = (rig.gh.calls().len(), rig.jira.calls().len());
    let job = rig
        .github(
            "pull_request",
            &pr_event(
                "labeled",
                pull(PR, Pr::Open, &["bug", "jira:needs triage"], 2),
                BOT,
                Some("jira:needs triage"),
            ),
        )
        .await;
    assert_eq!(state(&job), "skipped", "{job}");
    assert!(reason(&job).contains("echo"), "{job}");
    assert_eq!((rig.gh.calls().len(), rig.jira.calls().len()), calls);

    // Someone moves the issue in Jira: the label follows; no call to Jira.
    rig.jira.set_status("OPS-1", "In Progress");
    let jira_calls = rig.jira.calls().len();
    let job = rig
        .jira_event(&jira_status_event(
            "OPS-1",
            "Needs Triage",
            "In Progress",
            1_717_577_134_000,
        ))
        .await;
    assert_eq!(state(&job), "done", "{job}");
    assert_eq!(rig.gh.labels(PR), ["bug", "jira:in progress"]);
    assert_eq!(rig.jira.calls().len(), jira_calls);
    assert!(rig.gh.calls().contains(
        &"DELETE /repos/octo-org/octo-repo/issues/34/labels/jira%3Aneeds%20triage".to_owned()
    ));

    // Closed and merged: the transition to Merged.
    let job = rig
        .github(
            "pull_request",
            &pr_event(
                "closed",
                pull(PR, Pr::Merged, &["bug", "jira:in progress"], 3),
                "octocat",
                None,
            ),
        )
        .await;
    assert_eq!(state(&job), "done", "{job}");
    assert_eq!(rig.jira.status("OPS-1").unwrap(), "Merged");
    assert_eq!(
        rig.jira.count("POST /rest/api/2/issue/OPS-1/transitions"),
        1,
        "{:?}",
        rig.jira.calls()
    );
    assert_eq!(rig.gh.labels(PR), ["bug", "jira:merged"]);

    // Jira's webhook about that transition: an echo, no call anywhere.
    let calls = (rig.gh.calls().len(), rig.jira.calls().len());
    let job = rig
        .jira_event(&jira_status_event(
            "OPS-1",
            "In Progress",
            "Merged",
            1_717_577_135_000,
        ))
        .await;
    assert_eq!(state(&job), "skipped", "{job}");
    assert!(reason(&job).contains("echo"), "{job}");
    assert_eq!((rig.gh.calls().len(), rig.jira.calls().len()), calls);
    // And GitHub's about the label.
    let job = rig
        .github(
            "pull_request",
            &pr_event(
                "labeled",
                pull(PR, Pr::Merged, &["bug", "jira:merged"], 4),
                BOT,
                Some("jira:merged"),
            ),
        )
        .await;
    assert_eq!(state(&job), "skipped", "{job}");
    assert_eq!((rig.gh.calls().len(), rig.jira.calls().len()), calls);

    // GitHub did not deliver the opening of #35: a rescan finds it. First a dry run.
    rig.gh.put_pull(pull(PR, Pr::Merged, &[], 4));
    rig.gh.put_pull(pull(35, Pr::Open, &["help wanted"], 5));
    let writes = rig.writes();
    let (ok, stdout, stderr) = rig.rescan(&["gh-jira", "octo-org/octo-repo", "--dry-run"]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("rescan of octo-org/octo-repo (dry run): 2 scanned, 1 to change"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "octo-org/octo-repo#35: would: create a Task in OPS for github:octo-org/octo-repo#35"
        ),
        "{stdout}"
    );
    assert_eq!(rig.writes(), writes, "a dry run writes nothing");
    assert_eq!(rig.jira.issues().len(), 1);
    let links = rig.admin("/links?rule=gh-jira").await;
    assert_eq!(links["links"].as_array().map(Vec::len), Some(1), "{links}");

    // Then for real: what was missing is created, once.
    let (ok, stdout, stderr) = rig.rescan(&["gh-jira", "octo-org/octo-repo"]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("2 scanned, 1 changed"), "{stdout}");
    let issues = rig.jira.issues();
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert_eq!(issues[1].key, "OPS-2");
    assert_eq!(rig.gh.comments(35).len(), 1);
    assert_eq!(rig.gh.labels(35), ["help wanted", "jira:needs triage"]);
    let links = rig.admin("/links?rule=gh-jira").await;
    assert_eq!(links["links"].as_array().map(Vec::len), Some(2), "{links}");
    let (ok, stdout, _) = rig.rescan(&["gh-jira", "octo-org/octo-repo"]);
    assert!(ok && stdout.contains("2 scanned, 0 changed"), "{stdout}");
    assert_eq!(rig.jira.issues().len(), 2);

    // Bad invocations are refused clearly.
    let (ok, _, stderr) = rig.rescan(&["nope", "octo-org/octo-repo"]);
    assert!(
        !ok && stderr.contains("no integration named \"nope\""),
        "{stderr}"
    );
    let (ok, _, stderr) = rig.rescan(&["gh-jira", "someone/else"]);
    assert!(
        !ok && stderr.contains("no mapping covers someone/else"),
        "{stderr}"
    );

    // No secret in the logs.
    let logs = rig.server.logs();
    assert!(!logs.contains(GITHUB_TOKEN) && !logs.contains(JIRA_TOKEN) && !logs.contains(SECRET));
}
