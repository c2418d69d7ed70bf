//! The github-jira integration on the engine: deliveries stored in a SQLite inbox as the
//! server stores them, the rule run by the engine's workers, GitHub and Jira as stateful
//! wiremock fakes. Checks what the bot did (issues, transitions, comments, labels), that it
//! does it once, and that the echoes of its own writes cause no call.

mod github_jira_fake;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use github_jira_fake::{
    BOT, FakeGithub, FakeJira, Pr, issue_event, jira_status_event, pr_event, pull,
};
use hookbridge_core::{DeliveryId, EndpointName, Secret};
use hookbridge_providers::api::{ApiClient, Auth, RetryPolicy};
use hookbridge_providers::github::client::{GithubClient, api_builder};
use hookbridge_providers::github::{Github, GithubOptions};
use hookbridge_providers::jira::client::JiraClient;
use hookbridge_providers::jira::{Jira, JiraOptions};
use hookbridge_sync_engine::engine::{Backoff, Engine, EngineConfig, RunningEngine};
use hookbridge_sync_engine::integrations::github_jira::RescanOptions;
use hookbridge_sync_engine::integrations::{
    self, Connections, Handle, Integration, IntegrationConfig,
};
use hookbridge_sync_engine::store::{
    InsertOutcome, JobFilter, JobState, NewDelivery, SqliteStore, Store,
};
use serde_json::Value;
use time::OffsetDateTime;
use wiremock::MockServer;

const PR: u64 = 34;

struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    gh: FakeGithub,
    jira: FakeJira,
    _servers: (MockServer, MockServer),
    integration: Integration,
    engine: Option<RunningEngine>,
    next_id: u32,
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts: 1,
        base: Duration::from_millis(5),
        max_wait: Duration::from_millis(50),
    }
}

async fn rig(extra: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path().join("hb.db"), Default::default())
            .await
            .unwrap(),
    );
    let (gh_server, gh) = FakeGithub::start().await;
    let (jira_server, jira) = FakeJira::start().await;
    let github = GithubClient::new(
        api_builder(&gh_server.uri())
            .unwrap()
            .auth(Auth::Bearer(Secret::new("ghp_test")))
            .retry(fast())
            .build()
            .unwrap(),
    );
    let jira_client = JiraClient::new(
        ApiClient::builder("jira", &jira_server.uri())
            .unwrap()
            .auth(Auth::Basic {
                user: "bot@example.com".into(),
                password: Secret::new("jira-token"),
            })
            .retry(fast())
            .build()
            .unwrap(),
    );
    let connections = Connections::default()
        .with_github("gh", github)
        .with_jira("jira", jira_client);
    let text = format!(
        r#"
kind = "github-jira"
github = "gh"
jira = "jira"
endpoint = "github"
jira_endpoint = "jira"
bot_login = "{BOT}"
{extra}
"#
    );
    let text = if extra.contains("mappings") {
        text
    } else {
        format!(
            "{text}\nmappings = [{{ repo = \"octo-org/*\", project = \"OPS\", issue_type = \"Task\" }}]\n"
        )
    };
    let config: IntegrationConfig = toml::from_str(&text).unwrap();
    let integration = integrations::build("gh-jira", config, &connections).unwrap();
    Rig {
        _dir: dir,
        store,
        gh,
        jira,
        _servers: (gh_server, jira_server),
        integration,
        engine: None,
        next_id: 0,
    }
}

impl Rig {
    fn start(&mut self) {
        let mut builder = Engine::builder(self.store.clone())
            .endpoint(
                "github",
                Arc::new(Github::new(vec![Secret::new("s")], GithubOptions::default()).unwrap()),
            )
            .endpoint(
                "jira",
                Arc::new(Jira::new(vec![Secret::new("s")], JiraOptions::default()).unwrap()),
            )
            // Another organisation's endpoint, which this integration is not bound to.
            .endpoint(
                "github-other",
                Arc::new(Github::new(vec![Secret::new("s")], GithubOptions::default()).unwrap()),
            )
            .config(EngineConfig {
                backoff: Backoff {
                    base: Duration::from_millis(20),
                    max: Duration::from_millis(200),
                },
                poll_interval: Duration::from_millis(50),
                ..EngineConfig::default()
            });
        for rule in &self.integration.rules {
            builder = builder.rule(rule.clone());
        }
        self.engine = Some(builder.build().start());
    }

    async fn stop(mut self) {
        if let Some(engine) = self.engine.take() {
            engine.shutdown().await;
        }
        self.store.close().await;
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("d-{}", self.next_id)
    }

    async fn insert(&self, delivery: NewDelivery) -> i64 {
        match self.store.insert_delivery(delivery).await.unwrap() {
            InsertOutcome::Inserted { seq } => seq,
            InsertOutcome::Duplicate => panic!("duplicate delivery"),
        }
    }

    /// Stores a GitHub delivery as the server would and waits for its jobs to finish. The
    /// fake GitHub learns the pull request's labels from the first event about it, and the
    /// labels added by `labeled` events.
    async fn github(&mut self, event: &str, payload: Value) -> Vec<(JobState, String)> {
        if let Some(n) = payload["pull_request"]["number"].as_u64() {
            let labels: Vec<String> = payload["pull_request"]["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["name"].as_str().map(str::to_owned))
                .collect();
            let mut state = self.gh.0.lock().unwrap();
            let current = state.labels.entry(n).or_insert(labels);
            // A person's label, as GitHub has it by the time the event arrives.
            if let (Some("labeled"), Some(label)) = (
                payload["action"].as_str(),
                payload["label"]["name"].as_str(),
            ) && !current.iter().any(|l| l == label)
            {
                current.push(label.to_owned());
            }
        }
        let id = self.id();
        let seq = self
            .insert(NewDelivery {
                endpoint: EndpointName::new("github"),
                provider: "github".into(),
                delivery_id: DeliveryId::new(id.clone()),
                event_type: event.into(),
                headers: vec![
                    ("x-github-event".into(), event.into()),
                    ("x-github-delivery".into(), id),
                    ("content-type".into(), "application/json".into()),
                ],
                body: Bytes::from(serde_json::to_vec(&payload).unwrap()),
                received_at: OffsetDateTime::now_utc(),
            })
            .await;
        self.settle(Some(seq)).await
    }

    async fn jira_event(&mut self, payload: Value) -> Vec<(JobState, String)> {
        let id = self.id();
        let seq = self
            .insert(NewDelivery {
                endpoint: EndpointName::new("jira"),
                provider: "jira".into(),
                delivery_id: DeliveryId::new(id.clone()),
                event_type: "jira:issue_updated".into(),
                headers: vec![
                    ("x-atlassian-webhook-identifier".into(), id),
                    ("content-type".into(), "application/json".into()),
                ],
                body: Bytes::from(serde_json::to_vec(&payload).unwrap()),
                received_at: OffsetDateTime::now_utc(),
            })
            .await;
        self.settle(Some(seq)).await
    }

    /// Waits until every delivery is dispatched and every job finished; returns the jobs of
    /// delivery `seq` with their last outcome's reason or error, and the actions.
    async fn settle(&self, seq: Option<i64>) -> Vec<(JobState, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let undispatched = self.store.undispatched(10).await.unwrap();
            let jobs = self
                .store
                .list_jobs(&JobFilter {
                    limit: 1000,
                    ..JobFilter::default()
                })
                .await
                .unwrap();
            let busy = jobs
                .iter()
                .any(|j| matches!(j.state, JobState::Pending | JobState::Running));
            if undispatched.is_empty() && !busy {
                let mut out = Vec::new();
                for job in jobs.iter().filter(|j| Some(j.delivery_seq) == seq) {
                    let (_, attempts) = self.store.job(job.id).await.unwrap().unwrap();
                    let last = attempts.last().map(|a| {
                        format!(
                            "{} {}",
                            a.error.clone().unwrap_or_default(),
                            a.actions.join("; ")
                        )
                    });
                    out.push((job.state, last.unwrap_or_default()));
                }
                return out;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "jobs did not settle: {jobs:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn link(&self, pr: u64) -> Option<(String, Value)> {
        self.store
            .link_from("gh-jira", &format!("github:octo-org/octo-repo#{pr}"))
            .await
            .unwrap()
            .map(|l| (l.b, l.data))
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

    fn rescan_handle(&self) -> Arc<integrations::github_jira::GithubJira> {
        match &self.integration.handle {
            Handle::GithubJira(h) => h.clone(),
            _ => panic!("not a github-jira handle"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opened_pull_request_gets_one_issue_a_comment_and_a_label() {
    let mut rig = rig("").await;
    rig.start();
    let jobs = rig
        .github(
            "pull_request",
            pr_event("opened", pull(PR, Pr::Open, &["bug"], 1), "octocat", None),
        )
        .await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].0, JobState::Done, "{jobs:?}");

    let issues = rig.jira.issues();
    assert_eq!(issues.len(), 1, "{issues:?}");
    let issue = &issues[0];
    assert_eq!(issue.key, "OPS-1");
    assert_eq!(issue.issue_type, "Task");
    assert_eq!(issue.summary, "Fix the flux capacitor (#34)");
    assert!(
        issue.description.starts_with(
            "(From https://github.com/octo-org/octo-repo/pull/34 by https://github.com/"
        ),
        "{}",
        issue.description
    );
    assert!(issue.description.ends_with("It was off by one."));
    assert_eq!(
        issue.labels,
        ["from-GitHub", "github:octo-org/octo-repo#34"],
        "the marker label identifies the issue"
    );
    assert_eq!(issue.status, "Needs Triage");
    // Created in its initial status already: no transition.
    assert_eq!(
        rig.jira.count("POST /rest/api/2/issue/OPS-1/transitions"),
        0
    );

    let comments = rig.gh.comments(PR);
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].1, BOT);
    assert!(
        comments[0].2.contains("[OPS-1](http://127.0.0.1:")
            && comments[0].2.contains("/browse/OPS-1)"),
        "{}",
        comments[0].2
    );
    assert_eq!(rig.gh.labels(PR), ["bug", "jira:needs triage"]);
    let (b, data) = rig.link(PR).await.unwrap();
    assert_eq!(b, "jira:OPS-1");
    assert_eq!(data["state"], "open");
    assert_eq!(data["commented"], true);

    // GitHub's account of the bot's own label: skipped as an echo, no call at all.
    let calls = (rig.gh.calls().len(), rig.jira.calls().len());
    let jobs = rig
        .github(
            "pull_request",
            pr_event(
                "labeled",
                pull(PR, Pr::Open, &["bug", "jira:needs triage"], 2),
                BOT,
                Some("jira:needs triage"),
            ),
        )
        .await;
    assert_eq!(jobs[0].0, JobState::Skipped, "{jobs:?}");
    assert!(
        jobs[0].1.contains("echo of our own label write"),
        "{jobs:?}"
    );
    assert_eq!((rig.gh.calls().len(), rig.jira.calls().len()), calls);

    // The same event delivered again (a redelivery with a new id): nothing new.
    let writes = rig.writes();
    let jobs = rig
        .github(
            "pull_request",
            pr_event("opened", pull(PR, Pr::Open, &["bug"], 3), "octocat", None),
        )
        .await;
    assert_eq!(jobs[0].0, JobState::Skipped, "{jobs:?}");
    assert_eq!(rig.jira.issues().len(), 1);
    assert_eq!(rig.writes(), writes, "no write the second time");
    assert_eq!(rig.gh.comments(PR).len(), 1);

    // A repository no mapping covers: no job at all.
    let mut other = pr_event("opened", pull(7, Pr::Open, &[], 4), "octocat", None);
    other["repository"]["full_name"] = "someone/else".into();
    assert!(rig.github("pull_request", other).await.is_empty());
    assert_eq!(rig.jira.issues().len(), 1);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_request_state_moves_the_issue_through_its_workflow() {
    let mut rig = rig("").await;
    rig.start();
    rig.github(
        "pull_request",
        pr_event("opened", pull(PR, Pr::Open, &["bug"], 1), "octocat", None),
    )
    .await;
    assert_eq!(rig.jira.status("OPS-1").unwrap(), "Needs Triage");

    rig.github(
        "pull_request",
        pr_event(
            "converted_to_draft",
            pull(PR, Pr::Draft, &[], 2),
            "octocat",
            None,
        ),
    )
    .await;
    assert_eq!(rig.jira.status("OPS-1").unwrap(), "Waiting on Author");
    assert_eq!(rig.gh.labels(PR), ["bug", "jira:waiting on author"]);

    rig.github(
        "pull_request",
        pr_event(
            "ready_for_review",
            pull(PR, Pr::Open, &[], 3),
            "octocat",
            None,
        ),
    )
    .await;
    assert_eq!(rig.jira.status("OPS-1").unwrap(), "Needs Triage");

    // Someone moves the issue in Jira: the label follows, and Jira is only read... not even.
    rig.jira.set_status("OPS-1", "In Progress");
    let jira_calls = rig.jira.calls().len();
    let jobs = rig
        .jira_event(jira_status_event(
            "OPS-1",
            "Needs Triage",
            "In Progress",
            1_717_577_134_000,
        ))
        .await;
    assert_eq!(jobs[0].0, JobState::Done, "{jobs:?}");
    assert_eq!(rig.gh.labels(PR), ["bug", "jira:in progress"]);
    assert_eq!(
        rig.jira.calls().len(),
        jira_calls,
        "a Jira status change calls no Jira"
    );

    // Closed unmerged: Rejected, remembering In Progress.
    rig.github(
        "pull_request",
        pr_event("closed", pull(PR, Pr::Closed, &[], 4), "octocat", None),
    )
    .await;
    assert_eq!(rig.jira.status("OPS-1").unwrap(), "Rejected");
    assert_eq!(rig.link(PR).await.unwrap().1["pre_close"], "In Progress");
    assert_eq!(rig.gh.labels(PR), ["bug", "jira:rejected"]);

    // Jira's webhook about the bot's own transition: an echo, nothing done.
    let calls = (rig.gh.calls().len(), rig.jira.calls().len());
    let jobs = rig
        .jira_event(jira_status_event(
            "OPS-1",
            "In Progress",
            "Rejected",
            1_717_577_135_000,
        ))
        .await;
    assert_eq!(jobs[0].0, JobState::Skipped, "{jobs:?}");
    assert!(jobs[0].1.contains("echo of our own move"), "{jobs:?}");
    assert_eq!((rig.gh.calls().len(), rig.jira.calls().len()), calls);

    // Reopened: back to where it was before it was closed.
    rig.github(
        "pull_request",
        pr_event("reopened", pull(PR, Pr::Open, &[], 5), "octocat", None),
    )
    .await;
    assert_eq!(rig.jira.status("OPS-1").unwrap(), "In Progress");
    assert_eq!(rig.link(PR).await.unwrap().1["pre_close"], Value::Null);

    // Merged.
    let jobs = rig
        .github(
            "pull_request",
            pr_event("closed", pull(PR, Pr::Merged, &[], 6), "octocat", None),
        )
        .await;
    assert_eq!(jobs[0].0, JobState::Done, "{jobs:?}");
    assert_eq!(rig.jira.status("OPS-1").unwrap(), "Merged");
    assert_eq!(rig.gh.labels(PR), ["bug", "jira:merged"]);
    assert_eq!(rig.jira.issues().len(), 1);
    assert_eq!(
        rig.gh.comments(PR).len(),
        1,
        "one comment through all of it"
    );

    // An edited title follows into the summary.
    let mut edited = pr_event("edited", pull(PR, Pr::Merged, &[], 7), "octocat", None);
    edited["pull_request"]["title"] = "A better title".into();
    edited["changes"] = serde_json::json!({"title": {"from": "Fix the flux capacitor (#34)"}});
    rig.github("pull_request", edited).await;
    assert_eq!(rig.jira.issues()[0].summary, "A better title");

    // The bot's own events (other than label echoes) are skipped.
    let calls = rig.jira.calls().len();
    let jobs = rig
        .github(
            "pull_request",
            pr_event("reopened", pull(PR, Pr::Open, &[], 8), BOT, None),
        )
        .await;
    assert_eq!(jobs[0].0, JobState::Skipped, "{jobs:?}");
    assert_eq!(rig.jira.calls().len(), calls);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_between_create_and_link_creates_no_second_issue() {
    let mut rig = rig("").await;
    rig.start();
    rig.jira.0.lock().unwrap().lose_create_answers = 1;
    let jobs = rig
        .github(
            "pull_request",
            pr_event("opened", pull(PR, Pr::Open, &[], 1), "octocat", None),
        )
        .await;
    assert_eq!(jobs[0].0, JobState::Done, "{jobs:?}");
    let calls = rig.jira.calls();
    let count = |call: &str| calls.iter().filter(|c| *c == call).count();
    assert_eq!(count("POST /rest/api/2/issue"), 1, "{calls:?}");
    assert_eq!(
        count("POST /rest/api/2/search"),
        2,
        "searched again on the retry: {calls:?}"
    );
    assert_eq!(
        rig.jira.issues().len(),
        1,
        "the retry found the issue by its marker"
    );
    assert_eq!(rig.link(PR).await.unwrap().0, "jira:OPS-1");
    assert_eq!(rig.gh.comments(PR).len(), 1);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_label_selects_the_mapping() {
    let mut rig = rig(r#"
label_gate = { prefix = "jira:" }
mappings = [
  { repo = "octo-org/*", project = "OPS", name = "ops" },
  { repo = "octo-org/octo-*", project = "WEB", issue_type = "Story", name = "web" },
]
"#)
    .await;
    rig.start();
    let jobs = rig
        .github(
            "pull_request",
            pr_event("opened", pull(PR, Pr::Open, &["bug"], 1), "octocat", None),
        )
        .await;
    assert_eq!(jobs[0].0, JobState::Skipped, "{jobs:?}");
    assert!(rig.jira.calls().is_empty(), "no gate label, no Jira");

    let jobs = rig
        .github(
            "pull_request",
            pr_event(
                "labeled",
                pull(PR, Pr::Open, &["bug", "jira:web"], 2),
                "octocat",
                Some("jira:web"),
            ),
        )
        .await;
    assert_eq!(jobs[0].0, JobState::Done, "{jobs:?}");
    let issues = rig.jira.issues();
    assert_eq!(issues.len(), 1);
    assert_eq!(
        (issues[0].key.as_str(), issues[0].issue_type.as_str()),
        ("WEB-1", "Story")
    );
    assert_eq!(
        rig.gh.labels(PR),
        ["bug", "jira:web", "jira:needs triage"],
        "the gate label is kept: it is not a status label"
    );
    // An unrelated label: no job.
    let jobs = rig
        .github(
            "pull_request",
            pr_event(
                "labeled",
                pull(PR, Pr::Open, &["later"], 3),
                "octocat",
                Some("later"),
            ),
        )
        .await;
    assert!(jobs.is_empty(), "{jobs:?}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescan_dry_run_lists_actions_then_rescan_does_them_once() {
    let mut rig = rig("").await;
    rig.start();
    // #34 was tracked while open; then GitHub did not deliver its merge.
    rig.github(
        "pull_request",
        pr_event("opened", pull(PR, Pr::Open, &[], 1), "octocat", None),
    )
    .await;
    rig.gh
        .put_pull(pull(PR, Pr::Merged, &["jira:needs triage"], 9));
    // #35 was opened while the webhook was down; #36 was closed before anyone tracked it.
    rig.gh.put_pull(pull(35, Pr::Open, &["bug"], 8));
    rig.gh.put_pull(pull(36, Pr::Closed, &[], 7));
    let handle = rig.rescan_handle();

    let writes = rig.writes();
    let links = rig.store.list_links(None, None, 100).await.unwrap().len();
    let report = handle
        .rescan(
            rig.store.clone(),
            "octo-org/octo-repo",
            &RescanOptions {
                dry_run: true,
                since: None,
            },
        )
        .await
        .unwrap();
    assert!(report.dry_run);
    assert_eq!(report.scanned, 3, "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");
    let text = report.actions.join("\n");
    assert!(
        text.contains(
            "octo-org/octo-repo#34: would: move OPS-1 from \"Needs Triage\" to \"Merged\""
        ),
        "{text}"
    );
    assert!(
        text.contains("octo-org/octo-repo#34: would: label octo-org/octo-repo#34 \"jira:merged\""),
        "{text}"
    );
    assert!(
        text.contains(
            "octo-org/octo-repo#35: would: create a Task in OPS for github:octo-org/octo-repo#35"
        ),
        "{text}"
    );
    assert!(
        !text.contains("#36"),
        "a closed, untracked PR is left alone: {text}"
    );
    assert_eq!(report.changed, 2);
    assert_eq!(rig.writes(), writes, "a dry run writes nothing");
    assert_eq!(
        rig.store.list_links(None, None, 100).await.unwrap().len(),
        links
    );
    assert_eq!(rig.jira.issues().len(), 1);

    let report = handle
        .rescan(
            rig.store.clone(),
            "octo-org/octo-repo",
            &RescanOptions::default(),
        )
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.changed, 2, "{report:?}");
    assert_eq!(rig.jira.status("OPS-1").unwrap(), "Merged");
    assert_eq!(rig.gh.labels(PR), ["jira:merged"]);
    assert_eq!(rig.jira.issues().len(), 2);
    assert_eq!(rig.link(35).await.unwrap().0, "jira:OPS-2");
    assert_eq!(rig.gh.labels(35), ["bug", "jira:needs triage"]);
    assert!(rig.link(36).await.is_none());
    // The bot's label writes come back as webhooks: echoes.
    let jobs = rig
        .github(
            "pull_request",
            pr_event(
                "labeled",
                pull(35, Pr::Open, &["bug", "jira:needs triage"], 10),
                BOT,
                Some("jira:needs triage"),
            ),
        )
        .await;
    assert!(jobs[0].1.contains("echo"), "{jobs:?}");

    // Nothing left to do.
    let writes = rig.writes();
    rig.gh.put_pull(pull(35, Pr::Open, &[], 11));
    let report = handle
        .rescan(
            rig.store.clone(),
            "octo-org/octo-repo",
            &RescanOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(report.changed, 0, "{report:?}");
    assert_eq!(rig.writes(), writes);

    // A repository no mapping covers is refused.
    assert!(
        handle
            .rescan(rig.store.clone(), "someone/else", &RescanOptions::default())
            .await
            .unwrap_err()
            .to_string()
            .contains("no mapping covers")
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recurring_rescan_feeds_the_inbox_without_duplicates() {
    let mut rig = rig(r#"
rescan_interval_secs = 3600
rescan_repos = ["octo-org/octo-repo"]
"#)
    .await;
    assert_eq!(rig.integration.sources.len(), 1);
    let source = rig.integration.sources[0].clone();
    assert_eq!(source.name(), "gh-jira:rescan");
    assert_eq!(source.interval(), Duration::from_secs(3600));
    rig.gh.put_pull(pull(PR, Pr::Open, &[], 1));
    rig.gh.put_pull(pull(35, Pr::Draft, &[], 2));
    rig.gh.put_pull(pull(36, Pr::Merged, &[], 3));

    let first = source.poll(None).await.unwrap();
    assert_eq!(
        first.deliveries.len(),
        2,
        "the first poll takes the open ones only"
    );
    assert!(
        rig.gh
            .calls()
            .iter()
            .any(|c| c.contains("/pulls?state=open&sort=updated&direction=desc")),
        "{:?}",
        rig.gh.calls()
    );
    let outcomes = rig
        .store
        .commit_poll(source.name(), &first.cursor, first.deliveries)
        .await
        .unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, InsertOutcome::Inserted { .. }))
    );
    rig.start();
    rig.settle(None).await;
    assert_eq!(rig.jira.issues().len(), 2);
    let draft = rig.link(35).await.unwrap().0;
    assert_eq!(
        rig.jira.status(draft.trim_start_matches("jira:")).unwrap(),
        "Waiting on Author"
    );
    assert_eq!(rig.link(PR).await.unwrap().1["state"], "open");

    // The next poll lists all states from the cursor (minus an overlap): what did not change
    // is stored once; what changed is new.
    rig.gh.put_pull(pull(PR, Pr::Merged, &[], 4));
    let cursor = rig.store.cursor(source.name()).await.unwrap();
    let second = source.poll(cursor).await.unwrap();
    let outcomes = rig
        .store
        .commit_poll(source.name(), &second.cursor, second.deliveries)
        .await
        .unwrap();
    let inserted = outcomes
        .iter()
        .filter(|o| matches!(o, InsertOutcome::Inserted { .. }))
        .count();
    assert_eq!(
        inserted, 2,
        "#34 merged and #36 are new, #35 is a duplicate: {outcomes:?}"
    );
    rig.settle(None).await;
    let key = rig.link(PR).await.unwrap().0;
    assert_eq!(
        rig.jira.status(key.trim_start_matches("jira:")).unwrap(),
        "Merged"
    );
    assert!(
        rig.link(36).await.is_none(),
        "closed and untracked: left alone"
    );
    assert_eq!(rig.jira.issues().len(), 2);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_are_tracked_when_configured() {
    let mut rig = rig(r#"objects = ["issues"]"#).await;
    rig.start();
    // Pull requests are not tracked here: no job.
    let jobs = rig
        .github(
            "pull_request",
            pr_event("opened", pull(PR, Pr::Open, &[], 1), "octocat", None),
        )
        .await;
    assert!(jobs.is_empty(), "{jobs:?}");

    let jobs = rig
        .github("issues", issue_event("opened", 7, None, "octocat", 2))
        .await;
    assert_eq!(jobs[0].0, JobState::Done, "{jobs:?}");
    let issues = rig.jira.issues();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].summary, "The build is slow (#7)");
    assert!(
        issues[0]
            .labels
            .contains(&"github:octo-org/octo-repo#7".to_owned())
    );
    assert!(
        rig.gh.comments(7)[0]
            .2
            .starts_with("<!-- hookbridge:github-jira:gh-jira -->\nThis issue is tracked")
    );
    assert_eq!(rig.gh.labels(7), ["jira:needs triage"]);

    rig.github(
        "issues",
        issue_event("closed", 7, Some("completed"), "octocat", 3),
    )
    .await;
    assert_eq!(rig.jira.status("OPS-1").unwrap(), "Done");
    rig.github("issues", issue_event("reopened", 7, None, "octocat", 4))
        .await;
    assert_eq!(rig.jira.status("OPS-1").unwrap(), "Needs Triage");
    rig.github(
        "issues",
        issue_event("closed", 7, Some("not_planned"), "octocat", 5),
    )
    .await;
    assert_eq!(rig.jira.status("OPS-1").unwrap(), "Rejected");
    assert_eq!(rig.gh.labels(7), ["jira:rejected"]);

    // An event older than one already applied (out of order) is recognised as stale.
    let writes = rig.writes();
    let jobs = rig
        .github("issues", issue_event("reopened", 7, None, "octocat", 4))
        .await;
    assert_eq!(jobs[0].0, JobState::Skipped, "{jobs:?}");
    assert!(jobs[0].1.contains("stale"), "{jobs:?}");
    assert_eq!(rig.writes(), writes);
    rig.stop().await;
}

/// Two GitHub endpoints (say two organisations with their own integrations): this one acts
/// only on deliveries of its own endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_of_another_endpoint_are_skipped() {
    let mut rig = rig("").await;
    rig.start();
    let payload = pr_event("opened", pull(PR, Pr::Open, &[], 1), "octocat", None);
    let id = rig.id();
    let seq = rig
        .insert(NewDelivery {
            endpoint: EndpointName::new("github-other"),
            provider: "github".into(),
            delivery_id: DeliveryId::new(id.clone()),
            event_type: "pull_request".into(),
            headers: vec![
                ("x-github-event".into(), "pull_request".into()),
                ("x-github-delivery".into(), id),
                ("content-type".into(), "application/json".into()),
            ],
            body: Bytes::from(serde_json::to_vec(&payload).unwrap()),
            received_at: OffsetDateTime::now_utc(),
        })
        .await;
    let jobs = rig.settle(Some(seq)).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].0, JobState::Skipped, "{jobs:?}");
    assert!(jobs[0].1.contains("another endpoint"), "{jobs:?}");
    assert!(rig.jira.issues().is_empty());
    assert_eq!(rig.writes(), 0);
    // The same delivery on its own endpoint is acted on.
    let jobs = rig.github("pull_request", payload).await;
    assert_eq!(jobs[0].0, JobState::Done, "{jobs:?}");
    assert_eq!(rig.jira.issues().len(), 1);
    rig.stop().await;
}
