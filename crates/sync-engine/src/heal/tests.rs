//! The healers against a stateful mock GitHub (a delivery log paged by cursor, redelivery
//! requests recorded) and a mock Jira, on a SQLite store: cursors, overlap, the first run,
//! the per-run maximum, asking once, asking again, giving up, dry runs, and two healers
//! racing on one store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookbridge_core::{DeliveryId, EndpointName, Secret};
use hookbridge_providers::api::{Auth, RetryPolicy};
use hookbridge_providers::github::client::{GithubClient, Repo, api_builder};
use hookbridge_providers::jira::client::{ApiVersion, Deployment, JiraClient};
use serde_json::{Value, json};
use time::OffsetDateTime;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::*;
use crate::store::{InsertOutcome, NewDelivery, SqliteStore, Store};

const HOOK: &str = "/repos/octo-org/octo-repo/hooks/77";

fn at(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// GitHub's side: a delivery log (oldest first here, served newest first) and the
/// redelivery requests received.
#[derive(Clone, Default)]
struct Github {
    log: Arc<Mutex<Vec<Value>>>,
    asked: Arc<Mutex<Vec<u64>>>,
    /// Status to answer a redelivery request for an attempt id with (default 202).
    answers: Arc<Mutex<HashMap<u64, u16>>>,
    pages: Arc<AtomicUsize>,
}

impl Github {
    /// Logs an attempt; returns its id.
    fn log(&self, guid: &str, when: OffsetDateTime, status_code: u16, redelivery: bool) -> u64 {
        let mut log = self.log.lock().unwrap();
        let id = 1000 + log.len() as u64;
        log.push(json!({
            "id": id, "guid": guid, "delivered_at": at(when), "redelivery": redelivery,
            "duration": 0.1, "status": if status_code < 300 { "OK" } else { "failed to connect" },
            "status_code": status_code, "event": "issues", "action": "opened",
            "installation_id": null, "repository_id": 1
        }));
        id
    }

    /// The GUIDs asked for, in order.
    fn asked_guids(&self) -> Vec<String> {
        let log = self.log.lock().unwrap();
        self.asked
            .lock()
            .unwrap()
            .iter()
            .map(|id| {
                log.iter()
                    .find(|a| a["id"] == json!(id))
                    .map(|a| a["guid"].as_str().unwrap().to_owned())
                    .unwrap()
            })
            .collect()
    }

    fn guid_of(&self, id: u64) -> String {
        let log = self.log.lock().unwrap();
        let entry = log.iter().find(|a| a["id"] == json!(id)).unwrap();
        entry["guid"].as_str().unwrap().to_owned()
    }
}

/// Pages of 2, newest first, `cursor` = the index to start at, as a `Link` header.
struct LogPage(Github, String);

impl Respond for LogPage {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.pages.fetch_add(1, Ordering::SeqCst);
        let log = self.0.log.lock().unwrap();
        let newest_first: Vec<&Value> = log.iter().rev().collect();
        let start: usize = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "cursor")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let page: Vec<&Value> = newest_first.iter().skip(start).take(2).copied().collect();
        let mut response = ResponseTemplate::new(200).set_body_json(&page);
        if start + 2 < newest_first.len() {
            let base = &self.1;
            response = response.insert_header(
                "link",
                format!(
                    "<{base}{HOOK}/deliveries?per_page=100&cursor={}>; rel=\"next\"",
                    start + 2
                )
                .as_str(),
            );
        }
        response
    }
}

struct Redeliver(Github);

impl Respond for Redeliver {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id: u64 = request
            .url
            .path()
            .trim_end_matches("/attempts")
            .rsplit('/')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or(0);
        let status = self.0.answers.lock().unwrap().get(&id).copied();
        match status {
            Some(status) => {
                ResponseTemplate::new(status).set_body_json(json!({"message": "Validation Failed"}))
            }
            None => {
                self.0.asked.lock().unwrap().push(id);
                ResponseTemplate::new(202).set_body_json(json!({}))
            }
        }
    }
}

struct Fixture {
    mock: MockServer,
    github: Github,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Fixture {
        let mock = MockServer::start().await;
        let github = Github::default();
        Mock::given(method("GET"))
            .and(path(format!("{HOOK}/deliveries")))
            .respond_with(LogPage(github.clone(), mock.uri()))
            .mount(&mock)
            .await;
        Mock::given(method("POST"))
            .and(path_regex(format!("^{HOOK}/deliveries/[0-9]+/attempts$")))
            .respond_with(Redeliver(github.clone()))
            .mount(&mock)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("hb.db"), Default::default())
            .await
            .unwrap();
        Fixture {
            mock,
            github,
            store: Arc::new(store),
            _dir: dir,
        }
    }

    fn client(&self) -> GithubClient {
        GithubClient::new(
            api_builder(&self.mock.uri())
                .unwrap()
                .auth(Auth::Bearer(Secret::new("ghp_test")))
                .retry(RetryPolicy {
                    attempts: 1,
                    base: Duration::from_millis(1),
                    max_wait: Duration::from_millis(10),
                })
                .build()
                .unwrap(),
        )
    }

    fn healer(&self, max_per_run: u32, hook_id: Option<u64>) -> GithubHealer {
        self.healer_at("https://hooks.example.com/hooks/gh", max_per_run, hook_id)
    }

    fn healer_at(&self, url: &str, max_per_run: u32, hook_id: Option<u64>) -> GithubHealer {
        let hook = GithubHook::Repo {
            repo: repo(),
            hook_id,
        };
        let settings = HealSettings {
            endpoint: EndpointName::new("gh"),
            connection: "gh".into(),
            target: HealTarget::Github(hook.clone()),
            interval: Duration::from_secs(600),
            max_per_run,
            url: Some(url.into()),
        };
        GithubHealer::new(&settings, self.client(), hook).unwrap()
    }

    async fn store_delivery(&self, guid: &str) {
        let outcome = self
            .store
            .insert_delivery(NewDelivery {
                endpoint: EndpointName::new("gh"),
                provider: "github".into(),
                delivery_id: DeliveryId::new(guid),
                event_type: "issues".into(),
                headers: vec![("x-github-delivery".into(), guid.into())],
                body: bytes::Bytes::from_static(b"{}"),
                received_at: OffsetDateTime::now_utc(),
            })
            .await
            .unwrap();
        assert!(matches!(outcome, InsertOutcome::Inserted { .. }));
    }

    /// GitHub performs the redeliveries asked for since `from`: the receiver answers
    /// `status`, and a 2xx stores it.
    async fn perform_redeliveries(&self, from: usize, status: u16) {
        let asked: Vec<u64> = self.github.asked.lock().unwrap()[from..].to_vec();
        for id in asked {
            let guid = self.github.guid_of(id);
            self.github
                .log(&guid, OffsetDateTime::now_utc(), status, true);
            if status < 300 {
                self.store_delivery(&guid).await;
            }
        }
    }

    async fn run(&self, healer: &GithubHealer, options: RunOptions) -> HealReport {
        healer.run(self.store.as_ref(), &options).await.unwrap()
    }
}

fn repo() -> Repo {
    Repo::new("octo-org", "octo-repo").unwrap()
}

fn outcomes(report: &HealReport) -> Vec<(String, HealOutcome)> {
    report
        .items
        .iter()
        .map(|i| (i.id.clone(), i.outcome.clone()))
        .collect()
}

fn minutes_ago(m: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() - time::Duration::minutes(m)
}

#[tokio::test]
async fn the_first_run_notes_where_the_log_stands_and_later_runs_heal_what_failed_after() {
    let f = Fixture::new().await;
    // Failures from before hookbridge watched the hook: never healed, even in the overlap.
    for i in 0..5 {
        f.github
            .log(&format!("old-{i}"), minutes_ago(30 - i), 502, false);
    }
    let healer = f.healer(100, Some(77));
    let report = f.run(&healer, RunOptions::default()).await;
    assert!(report.items.is_empty(), "{report:?}");
    assert_eq!(report.scanned, 1);
    assert!(report.notes[0].contains("first run"), "{:?}", report.notes);
    assert_eq!(
        f.github.pages.load(Ordering::SeqCst),
        1,
        "one page is enough"
    );

    // After it: one failed while the server was down, one timed out at GitHub but was
    // stored, one succeeded.
    f.github.log("down", minutes_ago(3), 502, false);
    f.github.log("slow", minutes_ago(2), 504, false);
    f.store_delivery("slow").await;
    f.github.log("fine", minutes_ago(1), 200, false);
    f.store_delivery("fine").await;
    let report = f.run(&healer, RunOptions::default()).await;
    assert_eq!(
        outcomes(&report),
        [("down".to_owned(), HealOutcome::Redelivered)]
    );
    assert_eq!(
        (report.missing(), report.redelivered(), report.failed()),
        (1, 1, 0)
    );
    assert_eq!(f.github.asked_guids(), ["down"]);
    assert_eq!(report.source, "repository octo-org/octo-repo hook 77");
    // Read back to the floor only: the 3 new attempts and one old in the same page.
    assert_eq!(report.scanned, 3);

    // GitHub redelivers it; the next runs find nothing to do and ask for nothing.
    f.perform_redeliveries(0, 202).await;
    for _ in 0..2 {
        let report = f.run(&healer, RunOptions::default()).await;
        assert!(report.items.is_empty(), "{report:?}");
    }
    assert_eq!(f.github.asked_guids(), ["down"]);
}

#[tokio::test]
async fn the_cursor_stops_reading_at_the_last_run_less_the_overlap() {
    let f = Fixture::new().await;
    let healer = f.healer(100, Some(77));
    f.run(&healer, RunOptions::default()).await; // the log is empty: everything after counts
    for i in 0..10 {
        f.github
            .log(&format!("a{i}"), minutes_ago(120 - i), 200, false);
        f.store_delivery(&format!("a{i}")).await;
    }
    let report = f.run(&healer, RunOptions::default()).await;
    assert_eq!(report.scanned, 10);
    // Two new attempts: read back to the last run's newest attempt (two hours ago).
    f.github.log("b0", minutes_ago(1), 502, false);
    f.github.log("b1", minutes_ago(0), 502, false);
    let report = f.run(&healer, RunOptions::default()).await;
    assert_eq!(report.scanned, 12);
    assert_eq!(f.github.asked_guids(), ["b0", "b1"]);
    // One more: now the window is the last run's newest attempt less the overlap.
    f.github.log("c0", minutes_ago(0), 502, false);
    f.github.pages.store(0, Ordering::SeqCst);
    let report = f.run(&healer, RunOptions::default()).await;
    assert_eq!(report.scanned, 3);
    assert_eq!(
        f.github.pages.load(Ordering::SeqCst),
        2,
        "the second page holds the first attempt older than the window; no third is read"
    );
    assert_eq!(
        outcomes(&report),
        [
            ("b0".to_owned(), HealOutcome::AlreadyRequested(1)),
            ("b1".to_owned(), HealOutcome::AlreadyRequested(1)),
            ("c0".to_owned(), HealOutcome::Redelivered),
        ]
    );
    assert_eq!(f.github.asked_guids(), ["b0", "b1", "c0"]);
    // A backfill with --since reads back further (and finds nothing missing there).
    let report = f
        .run(
            &healer,
            RunOptions {
                since: Some(minutes_ago(24 * 60)),
                ..RunOptions::default()
            },
        )
        .await;
    assert_eq!(report.scanned, 13);
    assert_eq!(f.github.asked_guids(), ["b0", "b1", "c0"]);
}

#[tokio::test]
async fn the_per_run_maximum_defers_the_newest_and_the_cursor_waits_for_them() {
    let f = Fixture::new().await;
    let healer = f.healer(2, Some(77));
    f.run(&healer, RunOptions::default()).await;
    for i in 0..5 {
        f.github
            .log(&format!("m{i}"), minutes_ago(50 - 10 * i), 502, false);
    }
    let report = f.run(&healer, RunOptions::default()).await;
    assert_eq!(
        outcomes(&report),
        [
            ("m0".to_owned(), HealOutcome::Redelivered),
            ("m1".to_owned(), HealOutcome::Redelivered),
            ("m2".to_owned(), HealOutcome::Deferred),
            ("m3".to_owned(), HealOutcome::Deferred),
            ("m4".to_owned(), HealOutcome::Deferred),
        ]
    );
    assert_eq!(
        report.missing(),
        2,
        "deferred gaps are counted when asked for"
    );
    // m2 is 30 minutes old, more than the overlap: only the cursor keeps it in view.
    let report = f.run(&healer, RunOptions::default()).await;
    assert_eq!(report.redelivered(), 2);
    let report = f
        .run(
            &healer,
            RunOptions {
                max: Some(10),
                ..RunOptions::default()
            },
        )
        .await;
    assert_eq!(report.redelivered(), 1);
    assert_eq!(f.github.asked_guids(), ["m0", "m1", "m2", "m3", "m4"]);
    let report = f.run(&healer, RunOptions::default()).await;
    assert_eq!(report.redelivered(), 0);
    assert_eq!(f.github.asked_guids().len(), 5, "never twice");
}

#[tokio::test]
async fn a_redelivery_that_fails_again_is_asked_again_up_to_the_limit() {
    let f = Fixture::new().await;
    let healer = f.healer(100, Some(77));
    f.run(&healer, RunOptions::default()).await;
    f.github.log("flaky", minutes_ago(5), 502, false);
    f.github.log("refused", minutes_ago(4), 502, false);
    f.run(&healer, RunOptions::default()).await;
    assert_eq!(f.github.asked_guids(), ["flaky", "refused"]);
    // Not yet redelivered: waiting, not asked again.
    let report = f.run(&healer, RunOptions::default()).await;
    assert_eq!(
        outcomes(&report),
        [
            ("flaky".to_owned(), HealOutcome::AlreadyRequested(1)),
            ("refused".to_owned(), HealOutcome::AlreadyRequested(1)),
        ]
    );
    assert_eq!(report.missing(), 0);
    // GitHub redelivers: the receiver is still down for one, refuses the other (401).
    let flaky_first = f.github.asked.lock().unwrap()[0];
    let refused_first = f.github.asked.lock().unwrap()[1];
    f.github.log(
        &f.github.guid_of(flaky_first),
        OffsetDateTime::now_utc(),
        502,
        true,
    );
    f.github.log(
        &f.github.guid_of(refused_first),
        OffsetDateTime::now_utc(),
        401,
        true,
    );
    let report = f.run(&healer, RunOptions::default()).await;
    assert_eq!(report.items[0].outcome, HealOutcome::Redelivered);
    assert!(
        matches!(&report.items[1].outcome, HealOutcome::GaveUp(why) if why.contains("refused the redelivery (401")),
        "{report:?}"
    );
    assert_eq!(report.failed(), 1);
    // Given up once: not counted again.
    let report = f.run(&healer, RunOptions::default()).await;
    assert_eq!(report.failed(), 0);
    assert!(matches!(report.items[1].outcome, HealOutcome::GaveUp(_)));
    // Two more failed redeliveries of the flaky one: the third ask is the last.
    f.perform_redeliveries(2, 503).await;
    f.run(&healer, RunOptions::default()).await;
    f.perform_redeliveries(3, 503).await;
    let report = f.run(&healer, RunOptions::default()).await;
    assert!(
        matches!(&report.items[0].outcome, HealOutcome::GaveUp(why) if why.contains("asked 3 times")),
        "{report:?}"
    );
    assert_eq!(
        f.github.asked_guids(),
        ["flaky", "refused", "flaky", "flaky"]
    );
}

#[tokio::test]
async fn a_refused_request_is_asked_again_next_run_and_a_dry_run_changes_nothing() {
    let f = Fixture::new().await;
    let healer = f.healer(100, Some(77));
    f.run(&healer, RunOptions::default()).await;
    let id = f.github.log("g", minutes_ago(5), 502, false);
    let dry = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    let report = f.run(&healer, dry.clone()).await;
    assert_eq!(
        outcomes(&report),
        [("g".to_owned(), HealOutcome::WouldRedeliver)]
    );
    assert!(f.github.asked_guids().is_empty());
    assert_eq!(
        f.store
            .state("heal:github:gh", "redeliver:g:1")
            .await
            .unwrap(),
        None,
        "a dry run records nothing"
    );
    // GitHub refuses (422) once: nothing happened there, so the next run asks again.
    f.github.answers.lock().unwrap().insert(id, 422);
    let report = f.run(&healer, RunOptions::default()).await;
    assert!(matches!(report.items[0].outcome, HealOutcome::Failed(_)));
    assert_eq!((report.missing(), report.failed()), (1, 1));
    f.github.answers.lock().unwrap().clear();
    let report = f.run(&healer, RunOptions::default()).await;
    assert_eq!(report.items[0].outcome, HealOutcome::Redelivered);
    assert_eq!(report.missing(), 0, "the gap was counted the first time");
    assert_eq!(f.github.asked_guids(), ["g"]);
}

#[tokio::test]
async fn two_healers_racing_on_one_store_ask_once_per_guid() {
    let f = Fixture::new().await;
    let (a, b) = (f.healer(100, Some(77)), f.healer(100, Some(77)));
    f.run(&a, RunOptions::default()).await;
    for i in 0..30 {
        f.github.log(&format!("r{i}"), minutes_ago(5), 502, false);
    }
    // No lease here: only the recorded asks keep them apart.
    let options = RunOptions::default();
    for _ in 0..3 {
        let (ra, rb) = tokio::join!(
            a.run(f.store.as_ref(), &options),
            b.run(f.store.as_ref(), &options)
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(ra.redelivered() + rb.redelivered() <= 30);
    }
    let mut asked = f.github.asked_guids();
    assert_eq!(asked.len(), 30, "{asked:?}");
    asked.sort();
    asked.dedup();
    assert_eq!(asked.len(), 30, "no GUID asked twice");
}

#[tokio::test]
async fn the_hook_is_found_by_its_url_and_runs_hold_the_lease() {
    let f = Fixture::new().await;
    Mock::given(method("GET"))
        .and(path("/repos/octo-org/octo-repo/hooks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 5, "type": "Repository", "config": {"url": "https://elsewhere.example.com/x"}},
            {"id": 77, "type": "Repository", "config": {"url": "https://hooks.example.com/hooks/gh/"}}
        ])))
        .expect(2)
        .mount(&f.mock)
        .await;
    let healer = f.healer(100, None);
    let report = run_guarded(&healer, f.store.as_ref(), "me", &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.source, "repository octo-org/octo-repo hook 77");
    // Another holder's lease makes a run wait its turn.
    assert!(
        f.store
            .try_lease(
                "heal:github:gh",
                "other",
                Duration::from_secs(60),
                OffsetDateTime::now_utc()
            )
            .await
            .unwrap()
    );
    let busy = run_guarded(&healer, f.store.as_ref(), "me", &RunOptions::default()).await;
    assert!(matches!(busy, Err(HealError::Busy { .. })), "{busy:?}");
    f.store
        .release_lease("heal:github:gh", "other")
        .await
        .unwrap();
    // Scheduled runs skip when the healer ran less than an interval ago.
    let skipped = run_with_lease(
        &healer,
        f.store.as_ref(),
        "me",
        &RunOptions::default(),
        Some(Duration::from_secs(600)),
    )
    .await
    .unwrap();
    assert!(skipped.is_none());
    let ran = run_with_lease(
        &healer,
        f.store.as_ref(),
        "me",
        &RunOptions::default(),
        Some(Duration::from_secs(0)),
    )
    .await
    .unwrap();
    assert!(ran.is_some());
    // No hook delivering to the URL: a clear error.
    let lost = f.healer_at("https://hooks.example.com/hooks/nope", 100, None);
    let error = lost.run(f.store.as_ref(), &RunOptions::default()).await;
    assert!(
        matches!(error, Err(HealError::HookNotFound { .. })),
        "{error:?}"
    );
}

// ---- Jira ----

async fn jira_fixture(
    values: Value,
) -> (MockServer, JiraHealer, Arc<dyn Store>, tempfile::TempDir) {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/rest/api/3/webhook/failed"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "values": values, "maxResults": 100})))
        .mount(&mock)
        .await;
    let api = hookbridge_providers::api::ApiClient::builder("jira", &mock.uri())
        .unwrap()
        .build()
        .unwrap();
    let client = JiraClient::with_options(api, Deployment::Cloud, ApiVersion::V3);
    let settings = HealSettings {
        endpoint: EndpointName::new("jira"),
        connection: "jira".into(),
        target: HealTarget::Jira,
        interval: Duration::from_secs(600),
        max_per_run: 100,
        url: Some("https://hooks.example.com/hooks/jira".into()),
    };
    let healer = JiraHealer::new(&settings, client).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("hb.db"), Default::default())
        .await
        .unwrap();
    (mock, healer, Arc::new(store), dir)
}

fn jira_body(issue: &str) -> String {
    json!({"timestamp": 1_700_000_000_000_i64, "webhookEvent": "jira:issue_updated",
        "issue": {"id": "10002", "key": issue, "fields": {"summary": "s"}}})
    .to_string()
}

#[tokio::test]
async fn jira_failures_for_the_endpoint_are_ingested_once_with_their_webhook_id() {
    let (mock, healer, store, _dir) = jira_fixture(json!([
        {"id": "w-1", "body": jira_body("PROJ-1"), "url": "https://hooks.example.com/hooks/jira",
         "failureTime": 1_700_000_000_100_i64},
        {"id": "w-2", "body": jira_body("PROJ-2"), "url": "https://other.example.com/hooks/jira",
         "failureTime": 1_700_000_000_200_i64},
        {"id": "w-3", "url": "https://hooks.example.com/hooks/jira",
         "failureTime": 1_700_000_000_300_i64},
        {"id": "w-4", "body": jira_body("PROJ-4"), "url": "https://hooks.example.com/hooks/jira",
         "failureTime": 1_700_000_000_400_i64}
    ]))
    .await;
    // w-4 reached hookbridge after all (Jira gave up on a slow answer).
    store
        .insert_delivery(NewDelivery {
            endpoint: EndpointName::new("jira"),
            provider: "jira".into(),
            delivery_id: DeliveryId::new("w-4"),
            event_type: "jira:issue_updated".into(),
            headers: Vec::new(),
            body: bytes::Bytes::from(jira_body("PROJ-4")),
            received_at: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    let dry = healer
        .run(
            store.as_ref(),
            &RunOptions {
                dry_run: true,
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(dry.items[0].outcome, HealOutcome::WouldIngest);
    assert_eq!(store.cursor("heal:jira:jira").await.unwrap(), None);

    let report = healer
        .run(store.as_ref(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.scanned, 4);
    assert_eq!(
        outcomes(&report),
        [
            ("w-1".to_owned(), HealOutcome::Ingested),
            (
                "w-3".to_owned(),
                HealOutcome::GaveUp("Jira kept no payload for it".into())
            ),
        ]
    );
    assert_eq!(
        (report.missing(), report.redelivered(), report.failed()),
        (2, 1, 1)
    );
    let stored = store
        .find_deliveries(&DeliveryId::new("w-1"), Some(&EndpointName::new("jira")))
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].event_type, "jira:issue_updated");
    assert_eq!(stored[0].body, jira_body("PROJ-1").as_bytes());
    assert!(
        stored[0]
            .headers
            .iter()
            .any(|(k, v)| k == "x-hookbridge-healed" && v == "jira-failed-webhook")
    );
    assert_eq!(
        store.cursor("heal:jira:jira").await.unwrap().as_deref(),
        Some("1700000000400")
    );
    // Jira's own later delivery of the same webhook is a duplicate.
    let again = store
        .insert_delivery(NewDelivery {
            endpoint: EndpointName::new("jira"),
            provider: "jira".into(),
            delivery_id: DeliveryId::new("w-1"),
            event_type: "jira:issue_updated".into(),
            headers: Vec::new(),
            body: bytes::Bytes::from(jira_body("PROJ-1")),
            received_at: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    assert_eq!(again, InsertOutcome::Duplicate);
    // The next run asks after the cursor.
    healer
        .run(store.as_ref(), &RunOptions::default())
        .await
        .unwrap();
    let requests = mock.received_requests().await.unwrap();
    let last = requests.last().unwrap();
    assert!(
        last.url.query().unwrap().contains("after=1700000000400"),
        "{}",
        last.url
    );
}

#[tokio::test]
async fn jira_over_the_maximum_resumes_before_the_first_left() {
    let url = "https://hooks.example.com/hooks/jira";
    let (_mock, healer, store, _dir) = jira_fixture(json!([
        {"id": "a", "body": jira_body("P-1"), "url": url, "failureTime": 10},
        {"id": "b", "body": jira_body("P-2"), "url": url, "failureTime": 20},
        {"id": "c", "body": jira_body("P-3"), "url": url, "failureTime": 20}
    ]))
    .await;
    let report = healer
        .run(
            store.as_ref(),
            &RunOptions {
                max: Some(2),
                ..RunOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(report.redelivered(), 2);
    assert_eq!(report.items[2].outcome, HealOutcome::Deferred);
    // `after` is exclusive: 19 brings back both failures of time 20 (b is a duplicate).
    assert_eq!(
        store.cursor("heal:jira:jira").await.unwrap().as_deref(),
        Some("19")
    );
}
