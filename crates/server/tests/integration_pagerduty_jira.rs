//! The `pagerduty-jira` integration end to end: the real `hookbridge` binary with a config
//! whose PagerDuty and Jira base URLs point at stateful fakes, signed PagerDuty (V3 and V2)
//! and Jira deliveries sent over HTTP as the services send them, and the log-entries poller
//! running on its interval.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, wait_until};
use hookbridge_core::signature::{Algorithm, hmac};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const ADMIN: &str = "admin-token-pd-jira-0123456789";
const PD_SECRET: &str = "pd-webhook-secret-5c1e";
const JIRA_SECRET: &str = "jira-webhook-secret-8d2a";
const FROM: &str = "hookbridge@example.com";
const TIMEOUT: Duration = Duration::from_secs(20);

// ---- a fake Jira Cloud: issues, statuses, links; every write recorded ----------------------

#[derive(Clone, Debug, Default)]
struct Issue {
    key: String,
    project: String,
    summary: String,
    labels: Vec<String>,
    status: String,
    priority: Option<String>,
}

#[derive(Default)]
struct Jira {
    issues: BTreeMap<String, Issue>,
    next: BTreeMap<String, u32>,
    writes: Vec<String>,
}

#[derive(Clone, Default)]
struct FakeJira(Arc<Mutex<Jira>>);

impl FakeJira {
    fn add(&self, project: &str, summary: &str) -> String {
        let mut jira = self.0.lock().unwrap();
        let n = jira.next.entry(project.into()).or_default();
        *n += 1;
        let key = format!("{project}-{n}");
        jira.issues.insert(
            key.clone(),
            Issue {
                key: key.clone(),
                project: project.into(),
                summary: summary.into(),
                status: "To Do".into(),
                ..Issue::default()
            },
        );
        key
    }

    fn labelled(&self, label: &str) -> Vec<Issue> {
        let jira = self.0.lock().unwrap();
        jira.issues
            .values()
            .filter(|i| i.labels.iter().any(|l| l == label))
            .cloned()
            .collect()
    }

    fn in_project(&self, project: &str) -> Vec<Issue> {
        let jira = self.0.lock().unwrap();
        jira.issues
            .values()
            .filter(|i| i.project == project)
            .cloned()
            .collect()
    }

    fn set_status(&self, key: &str, status: &str) {
        self.0.lock().unwrap().issues.get_mut(key).unwrap().status = status.into();
    }

    fn writes(&self) -> Vec<String> {
        self.0.lock().unwrap().writes.clone()
    }
}

fn jql_value(jql: &str, prefix: &str) -> Option<String> {
    let start = jql.find(prefix)? + prefix.len();
    let rest = jql[start..].strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

fn issue_json(issue: &Issue) -> Value {
    json!({"id": "100", "key": issue.key, "fields": {
        "summary": issue.summary, "status": {"name": issue.status}, "labels": issue.labels,
        "priority": issue.priority.as_ref().map(|p| json!({"name": p})),
    }})
}

const STATUSES: &[(&str, &str)] = &[("11", "To Do"), ("21", "In Progress"), ("31", "Done")];
const LINK_TYPES: &[(&str, &str)] = &[("1", "Incident Manager"), ("3", "Timeline")];

impl Respond for FakeJira {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let auth = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            auth.starts_with("Basic "),
            "Jira is called with the email + API token"
        );
        let path = request.url.path().to_owned();
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let mut jira = self.0.lock().unwrap();
        let rest = path
            .strip_prefix("/rest/api/3/")
            .unwrap_or(&path)
            .to_owned();
        let parts: Vec<&str> = rest.split('/').collect();
        match (request.method.as_str(), parts.as_slice()) {
            ("GET", ["issueLinkType"]) => ResponseTemplate::new(200).set_body_json(json!({
                "issueLinkTypes": LINK_TYPES.iter().map(|(id, name)| json!({"id": id, "name": name,
                    "inward": "in", "outward": "out"})).collect::<Vec<_>>()})),
            ("POST", ["issueLink"]) => {
                let name = LINK_TYPES
                    .iter()
                    .find(|(id, _)| Some(*id) == body["type"]["id"].as_str())
                    .map_or("?", |(_, n)| *n);
                jira.writes.push(format!(
                    "link {} {} {name}",
                    body["inwardIssue"]["key"].as_str().unwrap_or("?"),
                    body["outwardIssue"]["key"].as_str().unwrap_or("?")
                ));
                ResponseTemplate::new(201)
            }
            ("POST", ["search", "jql"]) => {
                let jql = body["jql"].as_str().unwrap_or_default();
                let project = jql_value(jql, "project = ");
                let label = jql_value(jql, "labels = ");
                let summary = jql_value(jql, "summary ~ ");
                let issues: Vec<Value> = jira
                    .issues
                    .values()
                    .filter(|i| project.as_ref().is_none_or(|p| &i.project == p))
                    .filter(|i| label.as_ref().is_none_or(|l| i.labels.contains(l)))
                    .filter(|i| {
                        summary
                            .as_ref()
                            .is_none_or(|s| i.summary.contains(s.as_str()))
                    })
                    .map(issue_json)
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"issues": issues, "isLast": true}))
            }
            ("POST", ["issue"]) => {
                let fields = &body["fields"];
                let project = fields["project"]["key"].as_str().unwrap_or("?").to_owned();
                let n = jira.next.entry(project.clone()).or_default();
                *n += 1;
                let key = format!("{project}-{n}");
                let issue = Issue {
                    key: key.clone(),
                    project,
                    summary: fields["summary"].as_str().unwrap_or("?").into(),
                    labels: serde_json::from_value(fields["labels"].clone()).unwrap_or_default(),
                    status: "To Do".into(),
                    priority: fields["priority"]["name"].as_str().map(str::to_owned),
                };
                jira.writes.push(format!("create {key}"));
                jira.issues.insert(key.clone(), issue);
                ResponseTemplate::new(201).set_body_json(json!({"id": "100", "key": key}))
            }
            ("GET", ["issue", key]) => match jira.issues.get(*key) {
                Some(issue) => ResponseTemplate::new(200).set_body_json(issue_json(issue)),
                None => ResponseTemplate::new(404),
            },
            ("PUT", ["issue", key]) => {
                let key = (*key).to_owned();
                if let Some(p) = body["fields"]["priority"]["name"].as_str() {
                    jira.issues.get_mut(&key).unwrap().priority = Some(p.into());
                }
                jira.writes.push(format!("update {key}"));
                ResponseTemplate::new(204)
            }
            ("GET", ["issue", _, "transitions"]) => {
                ResponseTemplate::new(200).set_body_json(json!({
                "transitions": STATUSES.iter().map(|(id, name)| json!({"id": id, "name": name,
                    "to": {"name": name}})).collect::<Vec<_>>()}))
            }
            ("POST", ["issue", key, "transitions"]) => {
                let key = (*key).to_owned();
                let id = body["transition"]["id"].as_str().unwrap_or_default();
                let name = STATUSES.iter().find(|(i, _)| *i == id).unwrap().1;
                jira.issues.get_mut(&key).unwrap().status = name.into();
                jira.writes.push(format!("transition {key} {name}"));
                ResponseTemplate::new(204)
            }
            (method, _) => panic!("unexpected Jira call {method} {path}"),
        }
    }
}

// ---- a fake PagerDuty REST API: incidents, priorities, log entries -------------------------

#[derive(Default)]
struct Pd {
    incidents: BTreeMap<String, (String, String)>,
    log_entries: Vec<Value>,
    writes: Vec<String>,
    windows: Vec<(OffsetDateTime, OffsetDateTime)>,
}

#[derive(Clone, Default)]
struct FakePagerduty(Arc<Mutex<Pd>>);

const PRIORITIES: &[(&str, &str)] = &[("PPRIO01", "P1"), ("PPRIO02", "P2"), ("PPRIO03", "P3")];

fn priority_ref(name: &str) -> Value {
    let id = PRIORITIES.iter().find(|(_, n)| *n == name).unwrap().0;
    json!({"id": id, "type": "priority_reference", "summary": name})
}

fn rest_incident(id: &str, status: &str, priority: &str) -> Value {
    json!({
        "id": id, "type": "incident", "incident_number": 4182,
        "title": "Checkout API 5xx rate above 5%", "status": status, "urgency": "high",
        "html_url": format!("https://acme.pagerduty.com/incidents/{id}"),
        "priority": priority_ref(priority),
        "assignments": [{"assignee": {"id": "PLH1HKV", "type": "user_reference", "summary": "Maya Okafor"}}]
    })
}

impl FakePagerduty {
    fn set(&self, id: &str, status: &str, priority: &str) {
        self.0
            .lock()
            .unwrap()
            .incidents
            .insert(id.into(), (status.into(), priority.into()));
    }

    fn writes(&self) -> Vec<String> {
        self.0.lock().unwrap().writes.clone()
    }
}

impl Respond for FakePagerduty {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        assert_eq!(
            request.headers.get("authorization").unwrap(),
            "Token token=pd-api-token"
        );
        let path = request.url.path().to_owned();
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let mut pd = self.0.lock().unwrap();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (request.method.as_str(), parts.as_slice()) {
            ("GET", ["incidents", id]) => {
                let (status, priority) = pd.incidents[*id].clone();
                ResponseTemplate::new(200)
                    .set_body_json(json!({"incident": rest_incident(id, &status, &priority)}))
            }
            ("PUT", ["incidents", id]) => {
                let from = request
                    .headers
                    .get("from")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned();
                let status = body["incident"]["status"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned();
                pd.writes
                    .push(format!("PUT {id} status={status} from={from}"));
                let entry = pd.incidents.get_mut(*id).unwrap();
                entry.0 = status;
                let (status, priority) = entry.clone();
                ResponseTemplate::new(200)
                    .set_body_json(json!({"incident": rest_incident(id, &status, &priority)}))
            }
            ("GET", ["log_entries"]) => {
                let query: BTreeMap<String, String> =
                    request.url.query_pairs().into_owned().collect();
                let since = OffsetDateTime::parse(&query["since"], &Rfc3339).unwrap();
                let until = OffsetDateTime::parse(&query["until"], &Rfc3339).unwrap();
                assert_eq!(
                    query.get("include[]").map(String::as_str),
                    Some("incidents")
                );
                pd.windows.push((since, until));
                let entries: Vec<Value> = pd
                    .log_entries
                    .iter()
                    .filter(|e| {
                        let at = OffsetDateTime::parse(e["created_at"].as_str().unwrap(), &Rfc3339)
                            .unwrap();
                        at >= since && at < until
                    })
                    .map(|e| {
                        let mut e = e.clone();
                        let id = e["incident"]["id"].as_str().unwrap().to_owned();
                        let (status, priority) = pd.incidents[&id].clone();
                        e["incident"] = rest_incident(&id, &status, &priority);
                        e
                    })
                    .collect();
                ResponseTemplate::new(200)
                    .set_body_json(json!({"log_entries": entries, "more": false}))
            }
            (method, _) => panic!("unexpected PagerDuty call {method} {path}"),
        }
    }
}

// ---- deliveries -----------------------------------------------------------------------------

fn now_text(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

fn user(id: &str, name: &str) -> Value {
    json!({"id": id, "type": "user_reference", "summary": name})
}

fn v3(
    event_id: &str,
    event_type: &str,
    incident: &str,
    status: &str,
    priority: &str,
    agent: Value,
) -> Value {
    json!({"event": {
        "id": event_id, "event_type": event_type, "resource_type": "incident",
        "occurred_at": now_text(OffsetDateTime::now_utc()), "agent": agent, "client": null,
        "data": {
            "id": incident, "type": "incident", "number": 4182,
            "title": "Checkout API 5xx rate above 5%", "status": status, "urgency": "high",
            "html_url": format!("https://acme.pagerduty.com/incidents/{incident}"),
            "assignees": [user("PLH1HKV", "Maya Okafor")],
            "priority": priority_ref(priority)
        }
    }})
}

async fn send_pagerduty(client: &reqwest::Client, server: &Server, body: &Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let signature = hex::encode(hmac(Algorithm::Sha256, PD_SECRET.as_bytes(), &[&bytes]));
    let response = client
        .post(server.url("/hooks/pagerduty"))
        .header("content-type", "application/json")
        .header("user-agent", "PagerDuty-Webhook/V3.0")
        .header("x-pagerduty-signature", format!("v1={signature}"))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

async fn send_jira(client: &reqwest::Client, server: &Server, id: &str, body: &Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let signature = hex::encode(hmac(Algorithm::Sha256, JIRA_SECRET.as_bytes(), &[&bytes]));
    let response = client
        .post(server.url("/hooks/jira"))
        .header("content-type", "application/json")
        .header("x-atlassian-webhook-identifier", id)
        .header("x-hub-signature", format!("sha256={signature}"))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

fn jira_update(
    key: &str,
    by: Value,
    status: &str,
    items: &[(&str, Option<&str>, Option<&str>)],
) -> Value {
    json!({
        "timestamp": OffsetDateTime::now_utc().unix_timestamp() * 1000,
        "webhookEvent": "jira:issue_updated",
        "user": by,
        "issue": {"id": "100", "key": key, "fields": {"project": {"key": "INC"}, "status": {"name": status}}},
        "changelog": {"id": "1", "items": items.iter().map(|(f, from, to)| json!({
            "field": f, "fieldtype": "jira", "fieldId": f, "fromString": from, "toString": to
        })).collect::<Vec<_>>()}
    })
}

fn config(pd: &str, jira: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace_secs = 5

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

[endpoints.pagerduty]
provider = "pagerduty"
secret = "{PD_SECRET}"

[endpoints.jira]
provider = "jira"
secret = "{JIRA_SECRET}"

[connections.pd]
kind = "pagerduty"
base_url = "{pd}"
token = {{ env = "HB_TEST_PD_TOKEN" }}
from = "{FROM}"

[connections.jira]
kind = "jira"
base_url = "{jira}"
deployment = "cloud"
email = "bot@example.com"
token = {{ env = "HB_TEST_JIRA_TOKEN" }}

[[integrations]]
name = "pd-jira"
kind = "pagerduty-jira"
pagerduty = "pd"
jira = "jira"
project = "INC"

[integrations.record]
project = "PERSON"

[integrations.timeline]
project = "TL"

[integrations.log_entries]
interval_secs = 1
overlap_secs = 30
initial_lookback_secs = 600
"#
    )
}

struct Setup {
    server: Server,
    jira: FakeJira,
    pd: FakePagerduty,
    _mocks: (MockServer, MockServer),
    _dir: tempfile::TempDir,
    client: reqwest::Client,
}

async fn start(pd: FakePagerduty) -> Setup {
    let jira = FakeJira::default();
    jira.add("PERSON", "Maya Okafor");
    let jira_mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(jira.clone())
        .mount(&jira_mock)
        .await;
    let pd_mock = MockServer::start().await;
    Mock::given(any())
        .respond_with(pd.clone())
        .mount(&pd_mock)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(
        dir.path(),
        &config(&pd_mock.uri(), &jira_mock.uri()),
        &[
            ("HB_TEST_PD_TOKEN", "pd-api-token"),
            ("HB_TEST_JIRA_TOKEN", "jira-api-token"),
        ],
    );
    Setup {
        server,
        jira,
        pd,
        _mocks: (jira_mock, pd_mock),
        _dir: dir,
        client: reqwest::Client::new(),
    }
}

impl Setup {
    async fn admin(&self, path: &str) -> Value {
        let response = self
            .client
            .get(self.server.url(path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }

    /// The finished jobs of `subject` (`done` or `skipped`); panics on a dead one.
    async fn finished(&self, subject: &str) -> Vec<Value> {
        let jobs = self.admin("/admin/jobs?limit=1000").await;
        let mine: Vec<Value> = jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["subject"] == subject)
            .cloned()
            .collect();
        if let Some(dead) = mine.iter().find(|j| j["state"] == "dead") {
            panic!("dead job: {dead}\n{}", self.server.logs());
        }
        mine.into_iter()
            .filter(|j| j["state"] == "done" || j["state"] == "skipped")
            .collect()
    }

    async fn wait_finished(&self, subject: &str, count: usize) {
        wait_until(
            &format!("{count} finished jobs of {subject}"),
            TIMEOUT,
            || async { self.finished(subject).await.len() >= count },
        )
        .await;
    }

    async fn wait_issue(&self, label: &str) -> Issue {
        wait_until(&format!("an issue labelled {label}"), TIMEOUT, || async {
            !self.jira.labelled(label).is_empty()
        })
        .await;
        self.jira.labelled(label).remove(0)
    }
}

// ---- tests ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_become_issues_and_status_follows_both_ways_without_loops() {
    let pd = FakePagerduty::default();
    pd.set("QE2E", "triggered", "P1");
    pd.set("QLOW", "triggered", "P3");
    pd.set("QJ", "triggered", "P1");
    let s = start(pd).await;

    // A signed V3 incident.triggered of a P1: an issue, linked to the assignee's record.
    send_pagerduty(
        &s.client,
        &s.server,
        &v3(
            "01E2E0001",
            "incident.triggered",
            "QE2E",
            "triggered",
            "P1",
            json!(null),
        ),
    )
    .await;
    let issue = s.wait_issue("pagerduty-QE2E").await;
    assert_eq!(issue.summary, "[#4182] Checkout API 5xx rate above 5%");
    assert_eq!(issue.priority.as_deref(), Some("Highest"));
    wait_until("the record link", TIMEOUT, || async {
        s.jira
            .writes()
            .contains(&format!("link {} PERSON-1 Incident Manager", issue.key))
    })
    .await;
    let links = s.admin("/admin/links?rule=pd-jira").await;
    assert!(
        links["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["a"] == "pagerduty:QE2E" && l["b"] == format!("jira:{}", issue.key)),
        "{links}"
    );

    // A P3: nothing in Jira.
    send_pagerduty(
        &s.client,
        &s.server,
        &v3(
            "01E2E0002",
            "incident.triggered",
            "QLOW",
            "triggered",
            "P3",
            json!(null),
        ),
    )
    .await;
    s.wait_finished("pagerduty:incident/QLOW", 1).await;
    assert!(s.jira.labelled("pagerduty-QLOW").is_empty());

    // Acknowledged, then resolved in PagerDuty: the issue moves.
    send_pagerduty(
        &s.client,
        &s.server,
        &v3(
            "01E2E0003",
            "incident.acknowledged",
            "QE2E",
            "acknowledged",
            "P1",
            user("PLH1HKV", "Maya Okafor"),
        ),
    )
    .await;
    wait_until("In Progress", TIMEOUT, || async {
        s.jira
            .writes()
            .contains(&format!("transition {} In Progress", issue.key))
    })
    .await;
    send_pagerduty(
        &s.client,
        &s.server,
        &v3(
            "01E2E0004",
            "incident.resolved",
            "QE2E",
            "resolved",
            "P1",
            user("PLH1HKV", "Maya Okafor"),
        ),
    )
    .await;
    wait_until("Done", TIMEOUT, || async {
        s.jira
            .writes()
            .contains(&format!("transition {} Done", issue.key))
    })
    .await;
    // Jira's webhook of that move, by the integration's account: nothing goes back.
    let before = s.finished(&format!("jira:{}", issue.key)).await.len();
    send_jira(
        &s.client,
        &s.server,
        "jira-echo-1",
        &jira_update(
            &issue.key,
            json!({"accountId": "bot-1", "displayName": "Ops Automation"}),
            "Done",
            &[
                ("status", Some("In Progress"), Some("Done")),
                ("resolution", None, Some("Done")),
            ],
        ),
    )
    .await;
    s.wait_finished(&format!("jira:{}", issue.key), before + 1)
        .await;
    assert!(s.pd.writes().is_empty(), "{:?}", s.pd.writes());

    // Resolved by a person in Jira: the incident is resolved, with the From header.
    send_pagerduty(
        &s.client,
        &s.server,
        &v3(
            "01E2E0005",
            "incident.triggered",
            "QJ",
            "triggered",
            "P1",
            json!(null),
        ),
    )
    .await;
    let other = s.wait_issue("pagerduty-QJ").await;
    s.jira.set_status(&other.key, "Done");
    send_jira(
        &s.client,
        &s.server,
        "jira-human-1",
        &jira_update(
            &other.key,
            json!({"accountId": "human-1", "displayName": "Mia Krystof"}),
            "Done",
            &[("status", Some("To Do"), Some("Done"))],
        ),
    )
    .await;
    wait_until("the incident resolved", TIMEOUT, || async {
        !s.pd.writes().is_empty()
    })
    .await;
    assert_eq!(
        s.pd.writes(),
        [format!("PUT QJ status=resolved from={FROM}")]
    );
    // PagerDuty's webhook of that resolve: no transition back.
    let jira_writes = s.jira.writes();
    send_pagerduty(
        &s.client,
        &s.server,
        &v3(
            "01E2E0006",
            "incident.resolved",
            "QJ",
            "resolved",
            "P1",
            user("PBOT001", "hookbridge bot"),
        ),
    )
    .await;
    s.wait_finished("pagerduty:incident/QJ", 2).await;
    let new: Vec<String> = s.jira.writes()[jira_writes.len()..].to_vec();
    assert!(new.iter().all(|w| !w.starts_with("transition")), "{new:?}");
    assert_eq!(s.pd.writes().len(), 1);

    // A legacy V2 `messages[]` delivery (signed, as a relay would) works too.
    let v2 = json!({"messages": [{
        "id": "8a1d6420-a2a5-11e7-a4f0-22000a2dd3c8", "event": "incident.trigger",
        "created_on": now_text(OffsetDateTime::now_utc()),
        "incident": {"id": "QV2", "incident_number": 77, "title": "Replication lag above 30s",
            "status": "triggered", "urgency": "high",
            "priority": {"id": "PPRIO01", "type": "priority", "summary": "P1", "name": "P1"},
            "assignments": [{"assignee": user("PLH1HKV", "Maya Okafor")}]},
        "log_entries": []
    }]});
    send_pagerduty(&s.client, &s.server, &v2).await;
    let issue = s.wait_issue("pagerduty-QV2").await;
    assert_eq!(issue.summary, "[#77] Replication lag above 30s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_priority_raised_later_is_seen_by_the_poller_once() {
    let pd = FakePagerduty::default();
    pd.set("QRAISE", "triggered", "P3");
    let s = start(pd).await;

    send_pagerduty(
        &s.client,
        &s.server,
        &v3(
            "01RAISE01",
            "incident.triggered",
            "QRAISE",
            "triggered",
            "P3",
            json!(null),
        ),
    )
    .await;
    s.wait_finished("pagerduty:incident/QRAISE", 1).await;
    assert!(s.jira.labelled("pagerduty-QRAISE").is_empty());

    // Raised to P1 in PagerDuty; no webhook says so, its log entries do.
    let now = OffsetDateTime::now_utc();
    {
        let mut pd = s.pd.0.lock().unwrap();
        pd.incidents
            .insert("QRAISE".into(), ("triggered".into(), "P1".into()));
        pd.log_entries.push(json!({
            "id": "RPRIO01", "type": "priority_change_log_entry",
            "summary": "Priority changed from \"P3\" to \"P1\"",
            "created_at": now_text(now - time::Duration::seconds(2)),
            "agent": user("PLH1HKV", "Maya Okafor"),
            "channel": {"type": "web_trigger", "old_priority": priority_ref("P3"), "new_priority": priority_ref("P1")},
            "incident": {"id": "QRAISE", "type": "incident_reference"}
        }));
    }
    let issue = s.wait_issue("pagerduty-QRAISE").await;
    assert_eq!(issue.priority.as_deref(), Some("Highest"));
    // Several more polls, whose windows overlap and each hold the entry again.
    let entry_at = now - time::Duration::seconds(2);
    wait_until("three polls holding the entry", TIMEOUT, || async {
        let pd = s.pd.0.lock().unwrap();
        pd.windows
            .iter()
            .filter(|(since, until)| *since <= entry_at && entry_at < *until)
            .count()
            >= 3
    })
    .await;
    let windows = s.pd.0.lock().unwrap().windows.clone();
    assert!(
        windows.windows(2).all(|w| w[1].0 < w[0].1),
        "each window starts before the previous one ended: {windows:?}"
    );
    // One issue, one timeline issue, one stored delivery for the entry.
    assert_eq!(s.jira.labelled("pagerduty-QRAISE").len(), 1);
    assert_eq!(s.jira.in_project("TL").len(), 1);
    assert_eq!(
        s.jira
            .writes()
            .iter()
            .filter(|w| w.starts_with("create INC-"))
            .count(),
        1
    );
    let deliveries = s.admin("/admin/deliveries?limit=1000").await;
    let polled = deliveries["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["delivery_id"] == "log_entry:RPRIO01")
        .count();
    assert_eq!(polled, 1, "{deliveries}");
}
