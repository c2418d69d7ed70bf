//! The `pagerduty-jira` integration in the engine, on SQLite, against a fake PagerDuty and a
//! fake Jira (wiremock servers keeping state: incidents, issues, statuses, links), with
//! deliveries stored as the server would store them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hookbridge_core::{DeliveryId, EndpointName, Secret};
use hookbridge_providers::api::RetryPolicy;
use hookbridge_providers::jira::client::{JiraClient, JiraSettings};
use hookbridge_providers::jira::{Jira, JiraOptions};
use hookbridge_providers::pagerduty::auth::PagerdutyCredentials;
use hookbridge_providers::pagerduty::client::{PagerdutyClient, PagerdutySettings};
use hookbridge_providers::pagerduty::{Pagerduty, PagerdutyOptions};
use hookbridge_sync_engine::engine::{Backoff, Engine, EngineConfig, RunningEngine, Source};
use hookbridge_sync_engine::integrations::pagerduty_jira::LogEntriesSource;
use hookbridge_sync_engine::integrations::{self, Connections, Handle, IntegrationConfig};
use hookbridge_sync_engine::store::{
    DeliveryFilter, InsertOutcome, JobFilter, JobState, NewDelivery, SqliteStore, Store,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const FROM: &str = "hookbridge@example.com";
const BOT_PD_USER: (&str, &str) = ("PBOT001", "hookbridge bot");
const NAME: &str = "pd-jira";

// ---------------------------------------------------------------------------------------------
// A fake Jira Cloud (REST v3)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, Default)]
struct FakeIssue {
    key: String,
    project: String,
    issue_type: String,
    summary: String,
    description: Value,
    labels: Vec<String>,
    status: String,
    priority: Option<String>,
    parent: Option<String>,
    custom: BTreeMap<String, Value>,
}

#[derive(Default)]
struct JiraState {
    issues: BTreeMap<String, FakeIssue>,
    next: BTreeMap<String, u32>,
    links: Vec<(String, String, String)>,
    /// Writes, in order: `create INC`, `transition INC-1 Done`, `update INC-1 ...`, `link`.
    writes: Vec<String>,
}

#[derive(Default)]
struct FakeJira {
    state: Mutex<JiraState>,
}

impl FakeJira {
    fn add_issue(&self, project: &str, summary: &str, labels: &[&str]) -> String {
        let mut state = self.state.lock().unwrap();
        let n = state.next.entry(project.to_owned()).or_insert(0);
        *n += 1;
        let key = format!("{project}-{n}");
        state.issues.insert(
            key.clone(),
            FakeIssue {
                key: key.clone(),
                project: project.to_owned(),
                summary: summary.to_owned(),
                labels: labels.iter().map(|l| (*l).to_owned()).collect(),
                status: "To Do".into(),
                ..FakeIssue::default()
            },
        );
        key
    }

    /// A change made by a person in Jira (its webhook is sent by the test).
    fn set_status(&self, key: &str, status: &str) {
        self.state
            .lock()
            .unwrap()
            .issues
            .get_mut(key)
            .unwrap()
            .status = status.into();
    }

    fn issue(&self, key: &str) -> FakeIssue {
        self.state.lock().unwrap().issues[key].clone()
    }

    fn issues_in(&self, project: &str) -> Vec<FakeIssue> {
        self.state
            .lock()
            .unwrap()
            .issues
            .values()
            .filter(|i| i.project == project)
            .cloned()
            .collect()
    }

    fn writes(&self) -> Vec<String> {
        self.state.lock().unwrap().writes.clone()
    }

    fn links(&self) -> Vec<(String, String, String)> {
        self.state.lock().unwrap().links.clone()
    }
}

/// The text between the quotes after `prefix` in `jql` (`labels = "x"` -> `x`).
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

fn issue_json(issue: &FakeIssue) -> Value {
    let mut fields = json!({
        "summary": issue.summary,
        "status": {"name": issue.status},
        "labels": issue.labels,
        "project": {"key": issue.project},
        "issuetype": {"name": issue.issue_type},
    });
    if let Some(p) = &issue.priority {
        fields["priority"] = json!({"name": p});
    }
    for (k, v) in &issue.custom {
        fields[k] = v.clone();
    }
    json!({"id": "100", "key": issue.key, "fields": fields})
}

const STATUSES: &[(&str, &str)] = &[("11", "To Do"), ("21", "In Progress"), ("31", "Done")];

/// Serves a fake from a wiremock server.
struct Serve<T>(Arc<T>);

impl Respond for Serve<FakeJira> {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let this = &self.0;
        let path = request.url.path().to_owned();
        let method = request.method.as_str().to_owned();
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let mut state = this.state.lock().unwrap();
        let rest = path.strip_prefix("/rest/api/3/").unwrap_or(&path);
        let parts: Vec<&str> = rest.split('/').collect();
        match (method.as_str(), parts.as_slice()) {
            ("GET", ["field"]) => ResponseTemplate::new(200).set_body_json(json!([
                {"id": "summary", "name": "Summary", "custom": false},
                {"id": "customfield_10050", "name": "Severity", "custom": true,
                 "schema": {"type": "option"}}
            ])),
            ("GET", ["issueLinkType"]) => ResponseTemplate::new(200).set_body_json(json!({
                "issueLinkTypes": [
                    {"id": "1", "name": "Incident Manager", "inward": "is incident manager of", "outward": "has incident manager"},
                    {"id": "2", "name": "Stakeholder", "inward": "is stakeholder of", "outward": "has stakeholder"},
                    {"id": "3", "name": "Timeline", "inward": "is timeline of", "outward": "has timeline"},
                    {"id": "4", "name": "Question", "inward": "is question of", "outward": "has question"}
                ]})),
            ("POST", ["issueLink"]) => {
                let name = match body["type"]["id"].as_str() {
                    Some("1") => "Incident Manager",
                    Some("2") => "Stakeholder",
                    Some("3") => "Timeline",
                    Some("4") => "Question",
                    _ => "?",
                };
                let inward = body["inwardIssue"]["key"].as_str().unwrap_or("?").to_owned();
                let outward = body["outwardIssue"]["key"].as_str().unwrap_or("?").to_owned();
                state.writes.push(format!("link {inward} {outward} {name}"));
                state.links.push((name.to_owned(), inward, outward));
                ResponseTemplate::new(201)
            }
            ("POST", ["search", "jql"]) => {
                let jql = body["jql"].as_str().unwrap_or_default();
                let project = jql_value(jql, "project = ");
                let label = jql_value(jql, "labels = ");
                let summary = jql_value(jql, "summary ~ ");
                let issues: Vec<Value> = state
                    .issues
                    .values()
                    .filter(|i| project.as_ref().is_none_or(|p| &i.project == p))
                    .filter(|i| label.as_ref().is_none_or(|l| i.labels.contains(l)))
                    .filter(|i| {
                        summary
                            .as_ref()
                            .is_none_or(|s| i.summary.to_lowercase().contains(&s.to_lowercase()))
                    })
                    .map(issue_json)
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"issues": issues, "isLast": true}))
            }
            ("POST", ["issue"]) => {
                let fields = &body["fields"];
                let project = fields["project"]["key"].as_str().unwrap_or("?").to_owned();
                let n = state.next.entry(project.clone()).or_insert(0);
                *n += 1;
                let key = format!("{project}-{n}");
                let mut custom = BTreeMap::new();
                for (k, v) in fields.as_object().unwrap() {
                    if k.starts_with("customfield_") {
                        custom.insert(k.clone(), v.clone());
                    }
                }
                let issue = FakeIssue {
                    key: key.clone(),
                    project: project.clone(),
                    issue_type: fields["issuetype"]["name"].as_str().unwrap_or("?").into(),
                    summary: fields["summary"].as_str().unwrap_or("?").into(),
                    description: fields["description"].clone(),
                    labels: serde_json::from_value(fields["labels"].clone()).unwrap_or_default(),
                    status: "To Do".into(),
                    priority: fields["priority"]["name"].as_str().map(str::to_owned),
                    parent: fields["parent"]["key"].as_str().map(str::to_owned),
                    custom,
                };
                state.writes.push(format!("create {key}"));
                state.issues.insert(key.clone(), issue);
                ResponseTemplate::new(201).set_body_json(json!({"id": "100", "key": key}))
            }
            ("GET", ["issue", key]) => match state.issues.get(*key) {
                Some(issue) => ResponseTemplate::new(200).set_body_json(issue_json(issue)),
                None => ResponseTemplate::new(404).set_body_json(json!({"errorMessages": ["Issue does not exist"]})),
            },
            ("PUT", ["issue", key]) => {
                let key = (*key).to_owned();
                let Some(issue) = state.issues.get_mut(&key) else {
                    return ResponseTemplate::new(404);
                };
                let mut changed = Vec::new();
                for (k, v) in body["fields"].as_object().cloned().unwrap_or_default() {
                    if k == "priority" {
                        issue.priority = v["name"].as_str().map(str::to_owned);
                        changed.push(format!("priority={}", v["name"].as_str().unwrap_or("?")));
                    } else {
                        issue.custom.insert(k.clone(), v.clone());
                        changed.push(format!("{k}={v}"));
                    }
                }
                state.writes.push(format!("update {key} {}", changed.join(" ")));
                ResponseTemplate::new(204)
            }
            ("GET", ["issue", _key, "transitions"]) => {
                let transitions: Vec<Value> = STATUSES
                    .iter()
                    .map(|(id, name)| json!({"id": id, "name": format!("to {name}"), "to": {"name": name}}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"transitions": transitions}))
            }
            ("POST", ["issue", key, "transitions"]) => {
                let key = (*key).to_owned();
                let id = body["transition"]["id"].as_str().unwrap_or_default();
                let Some((_, name)) = STATUSES.iter().find(|(i, _)| *i == id) else {
                    return ResponseTemplate::new(400);
                };
                if let Some(issue) = state.issues.get_mut(&key) {
                    issue.status = (*name).to_owned();
                }
                state.writes.push(format!("transition {key} {name}"));
                ResponseTemplate::new(204)
            }
            _ => ResponseTemplate::new(404).set_body_json(json!({"errorMessages": [format!("no route {method} {path}")]})),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A fake PagerDuty REST API
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct FakeIncident {
    status: String,
    priority: Option<String>,
}

#[derive(Default)]
struct PdState {
    incidents: BTreeMap<String, FakeIncident>,
    log_entries: Vec<Value>,
    /// Writes: `PUT Q1 status=resolved from=...`.
    writes: Vec<String>,
    /// `GET /log_entries` windows asked for: (since, until).
    windows: Vec<(String, String)>,
    /// Answer `GET /log_entries` with this status instead (once per entry).
    log_failures: Vec<u16>,
    /// Refuse (400) windows longer than this many seconds.
    max_window_secs: Option<i64>,
}

#[derive(Default)]
struct FakePagerduty {
    state: Mutex<PdState>,
}

const PRIORITIES: &[(&str, &str)] = &[
    ("PPRIO01", "P1"),
    ("PPRIO02", "P2"),
    ("PPRIO03", "P3"),
    ("PPRIO04", "P4"),
    ("PPRIO05", "P5"),
];

fn priority_ref(name: &str) -> Value {
    let id = PRIORITIES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(id, _)| *id)
        .unwrap_or("PUNKNOWN");
    json!({"id": id, "type": "priority_reference", "summary": name})
}

impl FakePagerduty {
    fn set_incident(&self, id: &str, status: &str, priority: Option<&str>) {
        self.state.lock().unwrap().incidents.insert(
            id.to_owned(),
            FakeIncident {
                status: status.into(),
                priority: priority.map(str::to_owned),
            },
        );
    }

    fn incident(&self, id: &str) -> FakeIncident {
        self.state.lock().unwrap().incidents[id].clone()
    }

    fn writes(&self) -> Vec<String> {
        self.state.lock().unwrap().writes.clone()
    }

    fn add_log_entry(&self, entry: Value) {
        self.state.lock().unwrap().log_entries.push(entry);
    }

    fn incident_json(&self, id: &str) -> Value {
        let state = self.state.lock().unwrap();
        incident_rest_json(id, state.incidents.get(id))
    }
}

fn incident_rest_json(id: &str, incident: Option<&FakeIncident>) -> Value {
    let (status, priority) = incident
        .map(|i| (i.status.clone(), i.priority.clone()))
        .unwrap_or(("triggered".into(), None));
    json!({
        "id": id, "type": "incident", "incident_number": 4182,
        "title": "Checkout API 5xx rate above 5%", "status": status, "urgency": "high",
        "html_url": format!("https://acme.pagerduty.com/incidents/{id}"),
        "created_at": "2024-05-17T09:21:03Z",
        "priority": priority.map(|p| priority_ref(&p)),
        "service": {"id": "PF9KMXH", "type": "service_reference", "summary": "Checkout API"},
        "assignments": [{"at": "2024-05-17T09:21:03Z",
            "assignee": {"id": "PLH1HKV", "type": "user_reference", "summary": "Maya Okafor"}}]
    })
}

impl Respond for Serve<FakePagerduty> {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let this = &self.0;
        let path = request.url.path().to_owned();
        let method = request.method.as_str().to_owned();
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let parts: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(str::to_owned)
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        match (method.as_str(), parts.as_slice()) {
            ("GET", ["priorities"]) => {
                let priorities: Vec<Value> = PRIORITIES
                    .iter()
                    .map(|(id, name)| json!({"id": id, "type": "priority", "name": name, "summary": name}))
                    .collect();
                ResponseTemplate::new(200)
                    .set_body_json(json!({"priorities": priorities, "more": false}))
            }
            ("GET", ["incidents", id]) => {
                ResponseTemplate::new(200).set_body_json(json!({"incident": this.incident_json(id)}))
            }
            ("PUT", ["incidents", id]) => {
                let from = request
                    .headers
                    .get("from")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned();
                let mut state = this.state.lock().unwrap();
                let incident = state
                    .incidents
                    .entry((*id).to_owned())
                    .or_insert(FakeIncident {
                        status: "triggered".into(),
                        priority: None,
                    });
                let mut changed = Vec::new();
                if let Some(status) = body["incident"]["status"].as_str() {
                    incident.status = status.to_owned();
                    changed.push(format!("status={status}"));
                }
                if let Some(pid) = body["incident"]["priority"]["id"].as_str() {
                    let name = PRIORITIES
                        .iter()
                        .find(|(i, _)| *i == pid)
                        .map(|(_, n)| (*n).to_owned());
                    changed.push(format!("priority={}", name.clone().unwrap_or_default()));
                    incident.priority = name;
                }
                let answer = incident_rest_json(id, Some(&incident.clone()));
                state
                    .writes
                    .push(format!("PUT {id} {} from={from}", changed.join(" ")));
                ResponseTemplate::new(200).set_body_json(json!({"incident": answer}))
            }
            ("GET", ["log_entries"]) => {
                let query: BTreeMap<String, String> = request
                    .url
                    .query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let mut state = this.state.lock().unwrap();
                let since = query.get("since").cloned().unwrap_or_default();
                let until = query.get("until").cloned().unwrap_or_default();
                state.windows.push((since.clone(), until.clone()));
                if !state.log_failures.is_empty() {
                    let status = state.log_failures.remove(0);
                    return ResponseTemplate::new(status)
                        .set_body_json(json!({"error": {"message": "nope"}}));
                }
                let since = OffsetDateTime::parse(&since, &Rfc3339).unwrap();
                let until = OffsetDateTime::parse(&until, &Rfc3339).unwrap();
                if let Some(max) = state.max_window_secs
                    && (until - since).whole_seconds() > max
                {
                    return ResponseTemplate::new(400).set_body_json(
                        json!({"error": {"message": "Offset must be less than 10000", "code": 2001}}),
                    );
                }
                let entries: Vec<Value> = state
                    .log_entries
                    .iter()
                    .filter(|e| {
                        let at = OffsetDateTime::parse(e["created_at"].as_str().unwrap(), &Rfc3339)
                            .unwrap();
                        at >= since && at < until
                    })
                    .map(|e| {
                        // `include[]=incidents`: the incident as it is now.
                        let mut e = e.clone();
                        let id = e["incident"]["id"].as_str().unwrap().to_owned();
                        e["incident"] = incident_rest_json(&id, state.incidents.get(&id));
                        e
                    })
                    .collect();
                ResponseTemplate::new(200)
                    .set_body_json(json!({"log_entries": entries, "more": false, "offset": 0, "limit": 100}))
            }
            ("GET", ["users", id]) => ResponseTemplate::new(200).set_body_json(json!({"user": {
                "id": id, "name": "Maya Okafor", "email": "maya@example.com", "summary": "Maya Okafor"}})),
            _ => ResponseTemplate::new(404).set_body_json(json!({"error": {"message": format!("no route {method} {path}")}})),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------------

fn at(minute: i64) -> OffsetDateTime {
    time::macros::datetime!(2024-05-17 09:00 UTC) + time::Duration::minutes(minute)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

fn user(id: &str, name: &str) -> Value {
    json!({"id": id, "type": "user_reference", "summary": name})
}

/// A V3 incident event with the incident's whole data.
fn v3(
    event_id: &str,
    event_type: &str,
    minute: i64,
    incident: &str,
    status: &str,
    priority: &str,
    agent: Value,
) -> Value {
    json!({"event": {
        "id": event_id, "event_type": event_type, "resource_type": "incident",
        "occurred_at": rfc3339(at(minute)), "agent": agent, "client": null,
        "data": {
            "id": incident, "type": "incident", "number": 4182,
            "title": "Checkout API 5xx rate above 5%", "status": status, "urgency": "high",
            "html_url": format!("https://acme.pagerduty.com/incidents/{incident}"),
            "created_at": "2024-05-17T09:00:00Z",
            "service": {"id": "PF9KMXH", "type": "service_reference", "summary": "Checkout API"},
            "assignees": [user("PLH1HKV", "Maya Okafor")],
            "priority": priority_ref(priority)
        }
    }})
}

/// A legacy V2 delivery of one message.
fn v2(
    message_id: &str,
    event: &str,
    minute: i64,
    incident: &str,
    status: &str,
    priority: &str,
) -> Value {
    json!({"messages": [{
        "id": message_id, "event": event, "created_on": rfc3339(at(minute)),
        "incident": {
            "id": incident, "incident_number": 77, "title": "Replication lag above 30s",
            "status": status, "urgency": "high",
            "html_url": format!("https://acme.pagerduty.com/incidents/{incident}"),
            "priority": {"id": "PPRIO01", "type": "priority", "summary": priority, "name": priority},
            "assignments": [{"at": rfc3339(at(minute)), "assignee": user("PLH1HKV", "Maya Okafor")}],
            "service": {"id": "PN49J75", "type": "service_reference", "summary": "Production XDB Cluster"}
        },
        "log_entries": [{
            "id": format!("R{message_id}"), "type": "trigger_log_entry",
            "summary": "Triggered through the API", "created_at": rfc3339(at(minute)),
            "agent": {"id": "PN49J75", "type": "service_reference", "summary": "Production XDB Cluster"},
            "channel": {"type": "api", "summary": "Replication lag above 30s on xdb-3",
                "details": {"lag_seconds": 42}}
        }]
    }]})
}

fn log_entry(id: &str, kind: &str, minute: i64, incident: &str, agent: Value) -> Value {
    let mut entry = json!({
        "id": id, "type": kind, "created_at": rfc3339(at(minute)), "agent": agent,
        "summary": kind.replace('_', " "),
        "html_url": format!("https://acme.pagerduty.com/incidents/{incident}/log_entries/{id}"),
        "channel": {"type": "web_trigger"},
        "incident": {"id": incident, "type": "incident_reference"}
    });
    if kind == "priority_change_log_entry" {
        entry["summary"] = json!("Priority changed from \"P3\" to \"P1\"");
        entry["channel"] = json!({"type": "web_trigger",
            "old_priority": priority_ref("P3"), "new_priority": priority_ref("P1")});
    }
    entry
}

/// A `jira:issue_updated` delivery with changelog items (field, from, to).
fn jira_update(
    key: &str,
    second: i64,
    by: Value,
    status: &str,
    items: &[(&str, Option<&str>, Option<&str>)],
) -> Value {
    let ms = at(60).unix_timestamp() * 1000 + second * 1000;
    json!({
        "timestamp": ms,
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": by,
        "issue": {"id": "100", "key": key, "fields": {
            "project": {"key": key.split('-').next().unwrap()},
            "status": {"name": status},
            "summary": "[#4182] Checkout API 5xx rate above 5%"
        }},
        "changelog": {"id": format!("{second}"), "items": items.iter().map(|(field, from, to)| json!({
            "field": field, "fieldtype": "jira", "fieldId": field,
            "fromString": from, "toString": to
        })).collect::<Vec<_>>()}
    })
}

fn jira_human() -> Value {
    json!({"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Mia Krystof", "accountType": "atlassian"})
}

/// The integration's account, seen as a person: only echo marks can stop its echoes.
fn jira_bot() -> Value {
    json!({"accountId": "557058:bot", "displayName": "Ops Automation", "accountType": "atlassian"})
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

struct Harness {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    jira: Arc<FakeJira>,
    pd: Arc<FakePagerduty>,
    _servers: (MockServer, MockServer),
    poller: Arc<LogEntriesSource>,
    engine: Option<RunningEngine>,
    ids: AtomicU64,
}

fn base_config() -> Value {
    json!({
        "kind": "pagerduty-jira",
        "pagerduty": "pd", "jira": "jira", "project": "INC",
        "labels": ["incident"],
        "severity": {"field": "Severity"},
        "record": {"project": "PERSON"},
        "stakeholders": {"issues": ["PERSON-1"]},
        "checklist": {"questions": ["What broke?", {"summary": "Who is affected?", "description": "Customers, regions"}]},
        "timeline": {"project": "TL"},
        "log_entries": {"interval_secs": 3600, "overlap_secs": 120}
    })
}

impl Harness {
    async fn start(config: Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(dir.path().join("hb.db"), Default::default())
                .await
                .unwrap(),
        );
        let jira = Arc::new(FakeJira::default());
        // Record issues: the person issues the assignee's record is found among.
        jira.add_issue("PERSON", "Stakeholders of every incident", &[]);
        jira.add_issue("PERSON", "Maya Okafor", &[]);
        let pd = Arc::new(FakePagerduty::default());
        let jira_server = MockServer::start().await;
        Mock::given(any())
            .respond_with(Serve(jira.clone()))
            .mount(&jira_server)
            .await;
        let pd_server = MockServer::start().await;
        Mock::given(any())
            .respond_with(Serve(pd.clone()))
            .mount(&pd_server)
            .await;
        let jira_client = JiraClient::from_settings(
            &JiraSettings::cloud(jira_server.uri()),
            Arc::new(hookbridge_providers::jira::auth::api_token(
                "bot@example.com",
                Secret::new("jira-token"),
            )),
        )
        .unwrap();
        let mut settings =
            PagerdutySettings::new(PagerdutyCredentials::ApiKey(Secret::new("pd-token")))
                .base_url(pd_server.uri())
                .from(FROM);
        settings.retry = RetryPolicy {
            attempts: 1,
            base: Duration::from_millis(5),
            max_wait: Duration::from_millis(50),
        };
        let pd_client = PagerdutyClient::from_settings(settings).unwrap();
        let connections = Connections::default()
            .with_jira("jira", jira_client)
            .with_pagerduty("pd", pd_client);
        let config: IntegrationConfig = serde_json::from_value(config).unwrap();
        let integration = integrations::build(NAME, config, &connections).unwrap();
        assert_eq!(integration.rules.len(), 1);
        assert_eq!(integration.rules[0].name(), NAME);
        let Handle::PagerdutyJira(handle) = &integration.handle else {
            panic!("wrong handle")
        };
        let poller = handle.poller().expect("the poller is on");
        assert_eq!(poller.name(), "pd-jira:log-entries");
        assert_eq!(integration.sources.len(), 1);
        let mut builder = Engine::builder(store.clone())
            .endpoint(
                "pagerduty",
                Arc::new(
                    Pagerduty::new(vec![Secret::new("pd-secret")], PagerdutyOptions::default())
                        .unwrap(),
                ),
            )
            .endpoint(
                "jira",
                Arc::new(
                    Jira::new(vec![Secret::new("jira-secret")], JiraOptions::default()).unwrap(),
                ),
            )
            .config(EngineConfig {
                concurrency: 4,
                max_attempts: 3,
                backoff: Backoff {
                    base: Duration::from_millis(20),
                    max: Duration::from_millis(100),
                },
                lease: Duration::from_secs(20),
                poll_interval: Duration::from_millis(30),
                echo_ttl: Duration::from_secs(600),
                self_actors: Vec::new(),
            });
        for rule in integration.rules {
            builder = builder.rule(rule);
        }
        // The poller is driven by the tests (`poll_at`), with the clock they choose.
        let engine = builder.build().start();
        Self {
            _dir: dir,
            store,
            jira,
            pd,
            _servers: (jira_server, pd_server),
            poller,
            engine: Some(engine),
            ids: AtomicU64::new(0),
        }
    }

    async fn insert(
        &self,
        endpoint: &str,
        provider: &str,
        id: String,
        event_type: &str,
        body: &Value,
        headers: Vec<(String, String)>,
    ) {
        let mut headers = headers;
        headers.push(("content-type".into(), "application/json".into()));
        let outcome = self
            .store
            .insert_delivery(NewDelivery {
                endpoint: EndpointName::new(endpoint),
                provider: provider.into(),
                delivery_id: DeliveryId::new(id),
                event_type: event_type.into(),
                headers,
                body: Bytes::from(serde_json::to_vec(body).unwrap()),
                received_at: OffsetDateTime::now_utc(),
            })
            .await
            .unwrap();
        assert!(matches!(outcome, InsertOutcome::Inserted { .. }));
    }

    async fn pagerduty(&self, body: Value) {
        let (id, event_type) = match body.pointer("/event/id") {
            Some(id) => (
                id.as_str().unwrap().to_owned(),
                body["event"]["event_type"].as_str().unwrap().to_owned(),
            ),
            None => (
                body["messages"][0]["id"].as_str().unwrap().to_owned(),
                body["messages"][0]["event"].as_str().unwrap().to_owned(),
            ),
        };
        self.insert("pagerduty", "pagerduty", id, &event_type, &body, Vec::new())
            .await;
        self.settle().await;
    }

    async fn jira_webhook(&self, body: Value) {
        let id = format!("jira-{}", self.ids.fetch_add(1, Ordering::SeqCst));
        let headers = vec![("x-atlassian-webhook-identifier".into(), id.clone())];
        self.insert("jira", "jira", id, "jira:issue_updated", &body, headers)
            .await;
        self.settle().await;
    }

    /// One poll as the engine runs it, at `now`: cursor, poll, then deliveries and cursor
    /// committed together.
    async fn poll(&self, now: OffsetDateTime) -> Result<usize, String> {
        let cursor = self.store.cursor(self.poller.name()).await.unwrap();
        let poll = self
            .poller
            .poll_at(cursor, now)
            .await
            .map_err(|e| e.to_string())?;
        let outcomes = self
            .store
            .commit_poll(self.poller.name(), &poll.cursor, poll.deliveries)
            .await
            .unwrap();
        self.settle().await;
        Ok(outcomes
            .iter()
            .filter(|o| matches!(o, InsertOutcome::Inserted { .. }))
            .count())
    }

    async fn cursor(&self) -> Option<String> {
        self.store.cursor(self.poller.name()).await.unwrap()
    }

    /// Waits until every delivery is dispatched and every job finished.
    async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let undispatched = self.store.undispatched(1).await.unwrap();
            let mut busy = false;
            for state in [JobState::Pending, JobState::Running] {
                busy |= !self
                    .store
                    .list_jobs(&JobFilter {
                        state: Some(state),
                        limit: 1,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .is_empty();
            }
            if undispatched.is_empty() && !busy {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "jobs did not settle"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn jobs(&self, state: JobState) -> Vec<hookbridge_sync_engine::store::Job> {
        self.store
            .list_jobs(&JobFilter {
                state: Some(state),
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    async fn assert_no_failures(&self) {
        let dead = self.jobs(JobState::Dead).await;
        if !dead.is_empty() {
            let mut errors = Vec::new();
            for job in &dead {
                let (_, attempts) = self.store.job(job.id).await.unwrap().unwrap();
                errors.push(format!(
                    "{:?}",
                    attempts.last().and_then(|a| a.error.clone())
                ));
            }
            panic!("dead jobs: {errors:?}");
        }
    }

    async fn link_of(&self, incident: &str) -> Option<String> {
        self.store
            .link_from(NAME, &format!("pagerduty:{incident}"))
            .await
            .unwrap()
            .map(|l| l.b)
    }

    async fn stop(mut self) {
        if let Some(engine) = self.engine.take() {
            engine.shutdown().await;
        }
        self.store.close().await;
    }
}

fn count(writes: &[String], prefix: &str) -> usize {
    writes.iter().filter(|w| w.starts_with(prefix)).count()
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p1_incident_gets_one_issue_with_its_record_stakeholders_and_checklist() {
    let h = Harness::start(base_config()).await;
    h.pd.set_incident("Q1P1", "triggered", Some("P1"));
    h.pagerduty(v3(
        "E1",
        "incident.triggered",
        0,
        "Q1P1",
        "triggered",
        "P1",
        json!({"id": "PF9KMXH", "type": "service_reference", "summary": "Checkout API"}),
    ))
    .await;
    h.assert_no_failures().await;

    assert_eq!(h.link_of("Q1P1").await.as_deref(), Some("jira:INC-1"));
    let issue = h.jira.issue("INC-1");
    assert_eq!(issue.summary, "[#4182] Checkout API 5xx rate above 5%");
    assert_eq!(issue.issue_type, "Incident");
    assert_eq!(issue.priority.as_deref(), Some("Highest"));
    assert_eq!(issue.labels, ["pagerduty-Q1P1", "incident"]);
    assert_eq!(issue.custom["customfield_10050"], json!({"value": "SEV-0"}));
    let description = issue.description.to_string();
    assert!(
        description.contains("https://acme.pagerduty.com/incidents/Q1P1"),
        "{description}"
    );
    // The assignee's record, the stakeholder, and the checklist as sub-tasks.
    let links = h.jira.links();
    assert!(
        links.contains(&("Incident Manager".into(), "INC-1".into(), "PERSON-2".into())),
        "{links:?}"
    );
    assert!(
        links.contains(&("Stakeholder".into(), "INC-1".into(), "PERSON-1".into())),
        "{links:?}"
    );
    let subtasks: Vec<FakeIssue> = h
        .jira
        .issues_in("INC")
        .into_iter()
        .filter(|i| i.parent.is_some())
        .collect();
    assert_eq!(subtasks.len(), 2);
    assert!(
        subtasks
            .iter()
            .all(|s| s.issue_type == "Sub-task" && s.parent.as_deref() == Some("INC-1"))
    );
    assert!(
        subtasks
            .iter()
            .all(|s| s.labels.contains(&"pagerduty-Q1P1-checklist".to_owned()))
    );
    assert_eq!(subtasks[1].summary, "Who is affected?");

    // The same delivery again (a replay): the link finds the issue, nothing new is made.
    let writes = h.jira.writes();
    let seq = h
        .store
        .list_deliveries(&DeliveryFilter::default())
        .await
        .unwrap()[0]
        .seq;
    assert!(h.store.replay_delivery(seq).await.unwrap());
    h.settle().await;
    assert_eq!(h.jira.writes(), writes, "a replay wrote again");
    assert_eq!(h.jira.issues_in("INC").len(), 3);
    h.assert_no_failures().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p3_incident_gets_nothing() {
    let h = Harness::start(base_config()).await;
    h.pagerduty(v3(
        "E1",
        "incident.triggered",
        0,
        "Q3",
        "triggered",
        "P3",
        json!(null),
    ))
    .await;
    h.pagerduty(v3(
        "E2",
        "incident.acknowledged",
        1,
        "Q3",
        "acknowledged",
        "P3",
        user("PLH1HKV", "Maya Okafor"),
    ))
    .await;
    h.assert_no_failures().await;
    assert!(h.jira.writes().is_empty(), "{:?}", h.jira.writes());
    assert_eq!(h.link_of("Q3").await, None);
    let skipped = h.jobs(JobState::Skipped).await;
    assert_eq!(skipped.len(), 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_creation_finds_the_issue_by_its_marker_label() {
    let h = Harness::start(base_config()).await;
    // An attempt that created the issue and died before storing the link.
    let existing = h.jira.add_issue(
        "INC",
        "[#4182] Checkout API 5xx rate above 5%",
        &["pagerduty-QRETRY"],
    );
    h.pagerduty(v3(
        "E1",
        "incident.triggered",
        0,
        "QRETRY",
        "triggered",
        "P1",
        json!(null),
    ))
    .await;
    h.assert_no_failures().await;
    assert_eq!(h.link_of("QRETRY").await, Some(format!("jira:{existing}")));
    assert_eq!(
        count(&h.jira.writes(), "create INC-"),
        2,
        "only the two checklist sub-tasks: {:?}",
        h.jira.writes()
    );
    assert!(!h.jira.writes().contains(&format!("create {existing}")));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_priority_raised_to_p1_seen_by_the_poller_creates_the_issue_once() {
    let mut config = base_config();
    config["checklist"] = Value::Null;
    config.as_object_mut().unwrap().remove("checklist");
    let h = Harness::start(config).await;
    // Triggered as P3 (the webhook creates nothing), raised to P1 later: PagerDuty's V2
    // webhooks carry no priority change, only the log entries do.
    h.pd.set_incident("QRAISE", "triggered", Some("P3"));
    h.pagerduty(v3(
        "E1",
        "incident.triggered",
        0,
        "QRAISE",
        "triggered",
        "P3",
        json!(null),
    ))
    .await;
    assert!(h.jira.writes().is_empty());
    h.pd.set_incident("QRAISE", "triggered", Some("P1"));
    h.pd.add_log_entry(log_entry(
        "LTRIG",
        "trigger_log_entry",
        0,
        "QRAISE",
        json!({"id": "PF9KMXH", "type": "service_reference", "summary": "Checkout API"}),
    ));
    h.pd.add_log_entry(log_entry(
        "LPRIO",
        "priority_change_log_entry",
        9,
        "QRAISE",
        user("PLH1HKV", "Maya Okafor"),
    ));
    h.pd.add_log_entry(log_entry(
        "LNOTE",
        "notify_log_entry",
        9,
        "QRAISE",
        json!(null),
    ));

    // First poll: the last hour up to 09:10.
    assert_eq!(
        h.poll(at(10)).await.unwrap(),
        2,
        "the notify entry is skipped"
    );
    h.assert_no_failures().await;
    assert_eq!(h.link_of("QRAISE").await.as_deref(), Some("jira:INC-1"));
    assert_eq!(h.jira.issue("INC-1").priority.as_deref(), Some("Highest"));
    assert_eq!(h.cursor().await.as_deref(), Some("2024-05-17T09:10:00Z"));
    // A timeline issue per log entry, linked to the incident's issue.
    let timeline = h.jira.issues_in("TL");
    assert_eq!(timeline.len(), 2);
    assert_eq!(
        timeline[1].summary,
        "[#4182] Priority changed from \"P3\" to \"P1\""
    );
    assert!(
        h.jira
            .links()
            .contains(&("Timeline".into(), "INC-1".into(), "TL-2".into()))
    );

    // Second poll, a minute later: its window starts 2 minutes before the cursor, so it
    // reads the priority change again; nothing is stored or created twice.
    assert_eq!(h.poll(at(11)).await.unwrap(), 0);
    let windows = h.pd.state.lock().unwrap().windows.clone();
    assert_eq!(
        windows[1],
        ("2024-05-17T09:08:00Z".into(), "2024-05-17T09:11:00Z".into())
    );
    assert_eq!(
        count(&h.jira.writes(), "create INC-"),
        1,
        "{:?}",
        h.jira.writes()
    );
    assert_eq!(h.jira.issues_in("TL").len(), 2);
    // A new entry in the next window gets its timeline issue.
    h.pd.add_log_entry(log_entry(
        "LACK",
        "acknowledge_log_entry",
        11,
        "QRAISE",
        user("PLH1HKV", "Maya Okafor"),
    ));
    assert_eq!(h.poll(at(12)).await.unwrap(), 1);
    assert_eq!(h.jira.issues_in("TL").len(), 3);
    assert_eq!(h.jira.issue("INC-1").status, "In Progress");
    h.assert_no_failures().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_poll_moves_no_cursor_and_a_refused_window_is_narrowed() {
    let h = Harness::start(base_config()).await;
    h.pd.set_incident("QPOLL", "triggered", Some("P1"));
    h.pd.add_log_entry(log_entry(
        "LP1",
        "trigger_log_entry",
        1,
        "QPOLL",
        json!(null),
    ));
    assert_eq!(h.poll(at(5)).await.unwrap(), 1);
    assert_eq!(h.cursor().await.as_deref(), Some("2024-05-17T09:05:00Z"));
    assert_eq!(h.link_of("QPOLL").await.as_deref(), Some("jira:INC-1"));

    h.pd.add_log_entry(log_entry(
        "LP2",
        "acknowledge_log_entry",
        6,
        "QPOLL",
        json!(null),
    ));
    h.pd.state.lock().unwrap().log_failures.push(500);
    assert!(h.poll(at(7)).await.is_err());
    assert_eq!(
        h.cursor().await.as_deref(),
        Some("2024-05-17T09:05:00Z"),
        "a failed poll moved the cursor"
    );
    assert_eq!(
        h.poll(at(8)).await.unwrap(),
        1,
        "the entry of the failed window is read next time"
    );
    assert_eq!(h.jira.issue("INC-1").status, "In Progress");

    // Down for two hours: PagerDuty refuses windows over 40 minutes; the poller halves its
    // window and moves the cursor only as far as it read.
    h.pd.state.lock().unwrap().max_window_secs = Some(40 * 60);
    h.pd.add_log_entry(log_entry(
        "LP3",
        "resolve_log_entry",
        20,
        "QPOLL",
        json!(null),
    ));
    h.poll(at(130)).await.unwrap();
    let cursor = h.cursor().await.unwrap();
    assert_eq!(
        cursor, "2024-05-17T09:36:00Z",
        "one hour from 09:06, halved"
    );
    assert_eq!(h.jira.issue("INC-1").status, "Done");
    h.assert_no_failures().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_both_ways_and_echoes_stop() {
    let h = Harness::start(base_config()).await;
    h.pd.set_incident("QS", "triggered", Some("P1"));
    h.pagerduty(v3(
        "E1",
        "incident.triggered",
        0,
        "QS",
        "triggered",
        "P1",
        json!(null),
    ))
    .await;
    assert_eq!(h.jira.issue("INC-1").status, "To Do");

    // Acknowledged in PagerDuty -> In Progress.
    h.pagerduty(v3(
        "E2",
        "incident.acknowledged",
        1,
        "QS",
        "acknowledged",
        "P1",
        user("PLH1HKV", "Maya Okafor"),
    ))
    .await;
    assert_eq!(h.jira.issue("INC-1").status, "In Progress");
    // Jira's webhook about that move, by the integration's account: an echo.
    h.jira_webhook(jira_update(
        "INC-1",
        1,
        jira_bot(),
        "In Progress",
        &[("status", Some("To Do"), Some("In Progress"))],
    ))
    .await;
    assert!(h.pd.writes().is_empty(), "{:?}", h.pd.writes());

    // Resolved by a person in Jira -> the incident is resolved, with the From header.
    h.pd.set_incident("QS", "acknowledged", Some("P1"));
    h.jira.set_status("INC-1", "Done");
    h.jira_webhook(jira_update(
        "INC-1",
        2,
        jira_human(),
        "Done",
        &[
            ("status", Some("In Progress"), Some("Done")),
            ("resolution", None, Some("Done")),
        ],
    ))
    .await;
    h.assert_no_failures().await;
    assert_eq!(
        h.pd.writes(),
        [format!("PUT QS status=resolved from={FROM}")]
    );
    assert_eq!(h.pd.incident("QS").status, "resolved");

    // PagerDuty's webhook about that resolve (by the integration's PagerDuty user): no
    // transition is attempted back.
    let jira_writes = h.jira.writes();
    h.pagerduty(v3(
        "E3",
        "incident.resolved",
        3,
        "QS",
        "resolved",
        "P1",
        user(BOT_PD_USER.0, BOT_PD_USER.1),
    ))
    .await;
    // The poller sees the resolve too: still nothing.
    h.pd.add_log_entry(log_entry(
        "LRES",
        "resolve_log_entry",
        3,
        "QS",
        user(BOT_PD_USER.0, BOT_PD_USER.1),
    ));
    h.poll(at(4)).await.unwrap();
    let new_writes: Vec<String> = h.jira.writes()[jira_writes.len()..].to_vec();
    assert!(
        new_writes
            .iter()
            .all(|w| w.starts_with("create TL-") || w.starts_with("link INC-1 TL-")),
        "only the timeline issue of the entry: {new_writes:?}"
    );
    assert_eq!(h.pd.writes().len(), 1);

    // Reopened in PagerDuty: `triggered` maps to no Jira status by default.
    h.pagerduty(v3(
        "E4",
        "incident.reopened",
        5,
        "QS",
        "triggered",
        "P1",
        user("PLH1HKV", "Maya Okafor"),
    ))
    .await;
    assert_eq!(
        h.jira.issue("INC-1").status,
        "Done",
        "triggered maps to no status by default"
    );
    h.assert_no_failures().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_in_pagerduty_moves_the_issue_and_its_echo_is_skipped() {
    let h = Harness::start(base_config()).await;
    h.pd.set_incident("QR", "triggered", Some("P1"));
    h.pagerduty(v3(
        "E1",
        "incident.triggered",
        0,
        "QR",
        "triggered",
        "P1",
        json!(null),
    ))
    .await;
    h.pagerduty(v3(
        "E2",
        "incident.resolved",
        2,
        "QR",
        "resolved",
        "P1",
        user("PLH1HKV", "Maya Okafor"),
    ))
    .await;
    assert_eq!(h.jira.issue("INC-1").status, "Done");
    h.pd.set_incident("QR", "resolved", Some("P1"));
    // Jira's webhook of the move (status and resolution): no call to PagerDuty at all.
    h.jira_webhook(jira_update(
        "INC-1",
        1,
        jira_bot(),
        "Done",
        &[
            ("status", Some("To Do"), Some("Done")),
            ("resolution", None, Some("Done")),
        ],
    ))
    .await;
    assert!(h.pd.writes().is_empty(), "{:?}", h.pd.writes());
    let skipped = h.jobs(JobState::Skipped).await;
    assert!(!skipped.is_empty());
    // An older state polled later does not move the issue back.
    h.pd.add_log_entry(log_entry(
        "LOLDACK",
        "acknowledge_log_entry",
        1,
        "QR",
        user("PLH1HKV", "Maya Okafor"),
    ));
    h.poll(at(3)).await.unwrap();
    assert_eq!(h.jira.issue("INC-1").status, "Done");
    h.assert_no_failures().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_follows_both_ways_and_echoes_stop() {
    let h = Harness::start(base_config()).await;
    h.pd.set_incident("QPR", "triggered", Some("P1"));
    h.pagerduty(v3(
        "E1",
        "incident.triggered",
        0,
        "QPR",
        "triggered",
        "P1",
        json!(null),
    ))
    .await;
    // Lowered to P2 in PagerDuty -> High in Jira.
    h.pagerduty(v3(
        "E2",
        "incident.priority_updated",
        1,
        "QPR",
        "triggered",
        "P2",
        user("PLH1HKV", "Maya Okafor"),
    ))
    .await;
    assert_eq!(h.jira.issue("INC-1").priority.as_deref(), Some("High"));
    assert!(
        h.jira
            .writes()
            .contains(&"update INC-1 priority=High".to_owned()),
        "{:?}",
        h.jira.writes()
    );
    h.jira_webhook(jira_update(
        "INC-1",
        1,
        jira_bot(),
        "To Do",
        &[("priority", Some("Highest"), Some("High"))],
    ))
    .await;
    assert!(h.pd.writes().is_empty(), "{:?}", h.pd.writes());

    // Raised to Highest by a person in Jira -> P1 in PagerDuty.
    h.pd.set_incident("QPR", "triggered", Some("P2"));
    h.jira_webhook(jira_update(
        "INC-1",
        2,
        jira_human(),
        "To Do",
        &[("priority", Some("High"), Some("Highest"))],
    ))
    .await;
    assert_eq!(h.pd.writes(), [format!("PUT QPR priority=P1 from={FROM}")]);
    // Its echo from PagerDuty writes nothing to Jira.
    let writes = h.jira.writes();
    h.pagerduty(v3(
        "E3",
        "incident.priority_updated",
        3,
        "QPR",
        "triggered",
        "P1",
        user(BOT_PD_USER.0, BOT_PD_USER.1),
    ))
    .await;
    assert_eq!(h.jira.writes(), writes);
    // A Jira priority with no PagerDuty counterpart is skipped, not failed.
    h.jira_webhook(jira_update(
        "INC-1",
        3,
        jira_human(),
        "To Do",
        &[("priority", Some("Highest"), Some("Blocker"))],
    ))
    .await;
    assert_eq!(h.pd.writes().len(), 1);
    h.assert_no_failures().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_v2_messages_work() {
    let h = Harness::start(base_config()).await;
    h.pagerduty(v2("m-1", "incident.trigger", 0, "QV2", "triggered", "P1"))
        .await;
    h.assert_no_failures().await;
    assert_eq!(h.link_of("QV2").await.as_deref(), Some("jira:INC-1"));
    let issue = h.jira.issue("INC-1");
    assert_eq!(issue.summary, "[#77] Replication lag above 30s");
    // The trigger's channel summary is in the description, as the original put it.
    assert!(
        issue
            .description
            .to_string()
            .contains("Replication lag above 30s on xdb-3")
    );
    h.pagerduty(v2(
        "m-2",
        "incident.acknowledge",
        1,
        "QV2",
        "acknowledged",
        "P1",
    ))
    .await;
    assert_eq!(h.jira.issue("INC-1").status, "In Progress");
    h.pagerduty(v2("m-3", "incident.resolve", 2, "QV2", "resolved", "P1"))
        .await;
    assert_eq!(h.jira.issue("INC-1").status, "Done");
    h.assert_no_failures().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_as_linked_issues_from_a_questions_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("questions.toml");
    std::fs::write(
        &file,
        "questions = [\"Root cause?\", { summary = \"Follow-ups?\", description = \"Tickets\" }]\n",
    )
    .unwrap();
    let mut config = base_config();
    config["checklist"] = json!({
        "questions_file": file, "project": "QUESTION", "issue_type": "Question", "link_type": "Question"
    });
    let h = Harness::start(config).await;
    h.pagerduty(v3(
        "E1",
        "incident.triggered",
        0,
        "QCL",
        "triggered",
        "P1",
        json!(null),
    ))
    .await;
    h.assert_no_failures().await;
    let questions = h.jira.issues_in("QUESTION");
    assert_eq!(questions.len(), 2);
    assert_eq!(questions[0].summary, "Root cause?");
    assert_eq!(questions[0].issue_type, "Question");
    assert!(questions.iter().all(|q| q.parent.is_none()));
    let links = h.jira.links();
    assert!(links.contains(&("Question".into(), "INC-1".into(), "QUESTION-1".into())));
    assert!(links.contains(&("Question".into(), "INC-1".into(), "QUESTION-2".into())));
    h.stop().await;
}

#[tokio::test]
async fn building_names_missing_connections_and_bad_keys() {
    let connections = Connections::default();
    let config: IntegrationConfig = serde_json::from_value(base_config()).unwrap();
    let err = integrations::build(NAME, config, &connections).unwrap_err();
    assert!(
        err.to_string()
            .contains("no pagerduty connection named `pd`"),
        "{err}"
    );
    let mut bad = base_config();
    bad["record"] = json!({"project": "PERSON", "jql": "project = PERSON"});
    let config: IntegrationConfig = serde_json::from_value(bad).unwrap();
    let err = integrations::build(NAME, config, &connections).unwrap_err();
    assert!(err.to_string().contains("record.jql"), "{err}");
    let mut unknown = base_config();
    unknown["priority_mapping"] = json!({});
    assert!(serde_json::from_value::<IntegrationConfig>(unknown).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_severity_field_is_left_unset_and_notes_make_no_job() {
    let mut config = base_config();
    config["severity"] = json!({"field": "Sev Level", "format": "text"});
    let h = Harness::start(config).await;
    h.pagerduty(v3(
        "E1",
        "incident.triggered",
        0,
        "QSEV",
        "triggered",
        "P1",
        json!(null),
    ))
    .await;
    h.assert_no_failures().await;
    let issue = h.jira.issue("INC-1");
    assert_eq!(issue.priority.as_deref(), Some("Highest"));
    assert!(issue.custom.is_empty(), "{:?}", issue.custom);
    // A note on the incident carries no state: no job at all.
    let jobs = h
        .store
        .list_jobs(&JobFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    h.pagerduty(json!({"event": {"id": "E2", "event_type": "incident.annotated",
        "resource_type": "incident", "occurred_at": rfc3339(at(1)), "agent": user("PLH1HKV", "Maya Okafor"),
        "data": {"type": "incident_note", "incident": {"id": "QSEV", "type": "incident_reference"},
            "content": "Rolled back", "trimmed": false}}}))
        .await;
    let after = h
        .store
        .list_jobs(&JobFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    assert_eq!(after, jobs);
    h.stop().await;
}
