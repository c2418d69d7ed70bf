//! Stateful fakes of the parts of GitHub's and Jira's REST APIs the github-jira integration
//! uses (wiremock responders keeping issues, statuses, labels and comments), and the webhook
//! payloads the services send, built from the providers' samples. Shared by the engine-level
//! test (crates/sync-engine/tests/integration_github_jira.rs) and the end-to-end test of the
//! server (crates/server/tests/integration_github_jira.rs).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const REPO: &str = "octo-org/octo-repo";
pub const BOT: &str = "hookbridge-bot";
pub const PROJECT: &str = "OPS";
/// The workflow of the fake Jira project: every status reachable from every other.
pub const WORKFLOW: &[&str] = &[
    "Needs Triage",
    "Waiting on Author",
    "In Progress",
    "Rejected",
    "Merged",
    "Done",
];

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Jira
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct JiraIssue {
    pub key: String,
    pub project: String,
    pub issue_type: String,
    pub summary: String,
    pub description: String,
    pub labels: Vec<String>,
    pub status: String,
}

#[derive(Debug, Default)]
pub struct JiraState {
    pub issues: BTreeMap<String, JiraIssue>,
    pub next: u64,
    /// Every call, `METHOD /path`.
    pub calls: Vec<String>,
    /// Answer the next N issue creations with 503 after creating the issue (a crash or a
    /// lost answer between creating and linking).
    pub lose_create_answers: u32,
}

#[derive(Clone, Default)]
pub struct FakeJira(pub Arc<Mutex<JiraState>>);

impl FakeJira {
    pub async fn start() -> (MockServer, FakeJira) {
        let server = MockServer::start().await;
        let fake = FakeJira::default();
        Mock::given(any())
            .respond_with(fake.clone())
            .mount(&server)
            .await;
        (server, fake)
    }

    pub fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().calls.clone()
    }

    pub fn issues(&self) -> Vec<JiraIssue> {
        self.0.lock().unwrap().issues.values().cloned().collect()
    }

    pub fn status(&self, key: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap()
            .issues
            .get(key)
            .map(|i| i.status.clone())
    }

    /// Sets a status as a person would in Jira (no webhook: the test sends it).
    pub fn set_status(&self, key: &str, status: &str) {
        if let Some(issue) = self.0.lock().unwrap().issues.get_mut(key) {
            issue.status = status.to_owned();
        }
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }
}

fn jira_issue_json(issue: &JiraIssue) -> Value {
    json!({
        "id": format!("1{}", issue.key.trim_start_matches(|c: char| !c.is_ascii_digit())),
        "key": issue.key,
        "self": format!("http://jira/rest/api/2/issue/{}", issue.key),
        "fields": {
            "summary": issue.summary,
            "status": {"id": "1", "name": issue.status},
            "labels": issue.labels,
            "project": {"key": issue.project},
            "issuetype": {"name": issue.issue_type},
        }
    })
}

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404)
        .set_body_json(json!({"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}))
}

impl Respond for FakeJira {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap();
        let path = request.url.path().to_owned();
        let verb = request.method.to_string();
        state.calls.push(format!("{verb} {path}"));
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let rest = path.strip_prefix("/rest/api/2/").unwrap_or("");
        let parts: Vec<&str> = rest.split('/').collect();
        match (verb.as_str(), parts.as_slice()) {
            ("POST", ["search"]) => {
                let jql = body["jql"].as_str().unwrap_or_default();
                let wanted = jql
                    .strip_prefix("labels = \"")
                    .and_then(|r| r.strip_suffix('"'))
                    .map(|s| s.replace("\\\"", "\"").replace("\\\\", "\\"));
                let issues: Vec<Value> = state
                    .issues
                    .values()
                    .filter(|i| wanted.as_ref().is_some_and(|w| i.labels.contains(w)))
                    .map(jira_issue_json)
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "startAt": 0, "maxResults": 50, "total": issues.len(), "issues": issues
                }))
            }
            ("POST", ["issue"]) => {
                let fields = &body["fields"];
                state.next += 1;
                let project = fields["project"]["key"].as_str().unwrap_or_default();
                let key = format!("{project}-{}", state.next);
                let issue = JiraIssue {
                    key: key.clone(),
                    project: project.to_owned(),
                    issue_type: fields["issuetype"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .into(),
                    summary: fields["summary"].as_str().unwrap_or_default().into(),
                    description: fields["description"].as_str().unwrap_or_default().into(),
                    labels: fields["labels"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|l| l.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    status: WORKFLOW[0].into(),
                };
                state.issues.insert(key.clone(), issue);
                if state.lose_create_answers > 0 {
                    state.lose_create_answers -= 1;
                    return ResponseTemplate::new(503)
                        .set_body_json(json!({"errorMessages": ["try later"]}));
                }
                ResponseTemplate::new(201).set_body_json(json!({
                    "id": format!("1000{}", state.next), "key": key,
                    "self": format!("http://jira/rest/api/2/issue/{key}")
                }))
            }
            ("GET", ["issue", key]) => match state.issues.get(*key) {
                Some(issue) => ResponseTemplate::new(200).set_body_json(jira_issue_json(issue)),
                None => not_found(),
            },
            ("PUT", ["issue", key]) => match state.issues.get_mut(*key) {
                Some(issue) => {
                    if let Some(summary) = body["fields"]["summary"].as_str() {
                        issue.summary = summary.to_owned();
                    }
                    ResponseTemplate::new(204)
                }
                None => not_found(),
            },
            ("GET", ["issue", key, "transitions"]) => match state.issues.get(*key) {
                Some(issue) => {
                    let transitions: Vec<Value> = WORKFLOW
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| **s != issue.status)
                        .map(|(i, s)| {
                            json!({"id": (11 * (i + 1)).to_string(), "name": format!("Go {s}"),
                                "to": {"id": (i + 1).to_string(), "name": s}, "hasScreen": false})
                        })
                        .collect();
                    ResponseTemplate::new(200)
                        .set_body_json(json!({"expand": "transitions", "transitions": transitions}))
                }
                None => not_found(),
            },
            ("POST", ["issue", key, "transitions"]) => {
                let id: usize = body["transition"]["id"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let Some(issue) = state.issues.get_mut(*key) else {
                    return not_found();
                };
                match WORKFLOW.get((id / 11).wrapping_sub(1)) {
                    Some(status) if id.is_multiple_of(11) && *status != issue.status => {
                        issue.status = (*status).to_owned();
                        ResponseTemplate::new(204)
                    }
                    _ => ResponseTemplate::new(400)
                        .set_body_json(json!({"errorMessages": ["bad transition"]})),
                }
            }
            _ => ResponseTemplate::new(404).set_body_json(json!({"errorMessages": ["no route"]})),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GitHub
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
pub struct GithubState {
    /// Pull requests by number, as the API lists them (labels kept in `labels`).
    pub pulls: BTreeMap<u64, Value>,
    /// Issues by number, as the API lists them.
    pub issues: BTreeMap<u64, Value>,
    pub labels: BTreeMap<u64, Vec<String>>,
    /// (id, login, body) per issue or pull request.
    pub comments: BTreeMap<u64, Vec<(u64, String, String)>>,
    pub next_comment: u64,
    pub calls: Vec<String>,
}

#[derive(Clone, Default)]
pub struct FakeGithub(pub Arc<Mutex<GithubState>>);

fn label_json(name: &str) -> Value {
    json!({"id": 1, "name": name, "color": "ededed", "description": null, "default": false})
}

impl FakeGithub {
    pub async fn start() -> (MockServer, FakeGithub) {
        let server = MockServer::start().await;
        let fake = FakeGithub::default();
        Mock::given(any())
            .respond_with(fake.clone())
            .mount(&server)
            .await;
        (server, fake)
    }

    pub fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().calls.clone()
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }

    pub fn labels(&self, number: u64) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .labels
            .get(&number)
            .cloned()
            .unwrap_or_default()
    }

    pub fn set_labels(&self, number: u64, labels: &[&str]) {
        self.0
            .lock()
            .unwrap()
            .labels
            .insert(number, labels.iter().map(|l| (*l).to_owned()).collect());
    }

    pub fn comments(&self, number: u64) -> Vec<(u64, String, String)> {
        self.0
            .lock()
            .unwrap()
            .comments
            .get(&number)
            .cloned()
            .unwrap_or_default()
    }

    /// Adds (or replaces) a pull request the listing returns.
    pub fn put_pull(&self, pr: Value) {
        let number = pr["number"].as_u64().unwrap();
        let mut state = self.0.lock().unwrap();
        let labels: Vec<String> = pr["labels"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        state.labels.entry(number).or_insert(labels);
        state.pulls.insert(number, pr);
    }
}

impl Respond for FakeGithub {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap();
        let path = request.url.path().to_owned();
        let verb = request.method.to_string();
        match request.url.query() {
            Some(q) => state.calls.push(format!("{verb} {path}?{q}")),
            None => state.calls.push(format!("{verb} {path}")),
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        if path == "/user" {
            return ResponseTemplate::new(200).set_body_json(json!({"login": BOT, "id": 99}));
        }
        let Some(rest) = path.strip_prefix(&format!("/repos/{REPO}/")) else {
            return ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}));
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let number = |s: &str| s.parse::<u64>().ok();
        match (verb.as_str(), parts.as_slice()) {
            ("GET", ["pulls"]) => {
                let state_filter = request
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "state")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_else(|| "open".into());
                let mut pulls: Vec<Value> = state
                    .pulls
                    .values()
                    .filter(|p| state_filter == "all" || p["state"] == state_filter.as_str())
                    .cloned()
                    .map(|mut p| {
                        let n = p["number"].as_u64().unwrap();
                        let labels = state.labels.get(&n).cloned().unwrap_or_default();
                        p["labels"] = Value::Array(labels.iter().map(|l| label_json(l)).collect());
                        p
                    })
                    .collect();
                pulls.sort_by(|a, b| b["updated_at"].as_str().cmp(&a["updated_at"].as_str()));
                ResponseTemplate::new(200).set_body_json(Value::Array(pulls))
            }
            ("GET", ["issues"]) => {
                let issues: Vec<Value> = state.issues.values().cloned().collect();
                ResponseTemplate::new(200).set_body_json(Value::Array(issues))
            }
            ("GET", ["issues", n, "comments"]) => {
                let comments: Vec<Value> = number(n)
                    .and_then(|n| state.comments.get(&n))
                    .into_iter()
                    .flatten()
                    .map(|(id, login, body)| {
                        json!({"id": id, "html_url": format!("https://github.com/{REPO}/pull/1#issuecomment-{id}"),
                            "body": body, "user": {"login": login, "id": 7}})
                    })
                    .collect();
                ResponseTemplate::new(200).set_body_json(Value::Array(comments))
            }
            ("POST", ["issues", n, "comments"]) => {
                let Some(n) = number(n) else {
                    return ResponseTemplate::new(404);
                };
                state.next_comment += 1;
                let id = state.next_comment;
                let text = body["body"].as_str().unwrap_or_default().to_owned();
                state
                    .comments
                    .entry(n)
                    .or_default()
                    .push((id, BOT.to_owned(), text.clone()));
                ResponseTemplate::new(201).set_body_json(json!({"id": id,
                    "html_url": format!("https://github.com/{REPO}/pull/{n}#issuecomment-{id}"),
                    "body": text, "user": {"login": BOT, "id": 99}}))
            }
            ("PATCH", ["issues", "comments", id]) => {
                let Some(id) = number(id) else {
                    return ResponseTemplate::new(404);
                };
                let text = body["body"].as_str().unwrap_or_default().to_owned();
                for comments in state.comments.values_mut() {
                    for c in comments.iter_mut().filter(|c| c.0 == id) {
                        c.2 = text.clone();
                    }
                }
                ResponseTemplate::new(200).set_body_json(json!({"id": id,
                    "html_url": format!("https://github.com/{REPO}/pull/1#issuecomment-{id}"),
                    "body": text, "user": {"login": BOT, "id": 99}}))
            }
            ("GET", ["issues", n, "labels"]) => {
                let labels: Vec<Value> = number(n)
                    .and_then(|n| state.labels.get(&n))
                    .into_iter()
                    .flatten()
                    .map(|l| label_json(l))
                    .collect();
                ResponseTemplate::new(200).set_body_json(Value::Array(labels))
            }
            ("POST", ["issues", n, "labels"]) => {
                let Some(n) = number(n) else {
                    return ResponseTemplate::new(404);
                };
                let current = state.labels.entry(n).or_default();
                for name in body["labels"].as_array().into_iter().flatten() {
                    let name = name.as_str().unwrap_or_default().to_owned();
                    if !current.iter().any(|c| c.eq_ignore_ascii_case(&name)) {
                        current.push(name);
                    }
                }
                let all: Vec<Value> = current.iter().map(|l| label_json(l)).collect();
                ResponseTemplate::new(200).set_body_json(Value::Array(all))
            }
            ("DELETE", ["issues", n, "labels", name]) => {
                let Some(n) = number(n) else {
                    return ResponseTemplate::new(404);
                };
                let name = percent_decode(name);
                let current = state.labels.entry(n).or_default();
                let before = current.len();
                current.retain(|l| !l.eq_ignore_ascii_case(&name));
                if current.len() == before {
                    return ResponseTemplate::new(404)
                        .set_body_json(json!({"message": "Label does not exist"}));
                }
                let all: Vec<Value> = current.iter().map(|l| label_json(l)).collect();
                ResponseTemplate::new(200).set_body_json(Value::Array(all))
            }
            _ => ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------------

fn github_sample(name: &str) -> Value {
    let sample = hookbridge_providers::github::SAMPLES
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no GitHub sample {name}"));
    serde_json::from_str(sample.json).unwrap()
}

/// The state of a pull request in a payload or listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pr {
    Open,
    Draft,
    Closed,
    Merged,
}

/// A pull request object (from the `pull_request.opened` sample) numbered `number`, in
/// state `pr`, with `labels`, updated at second `t` of the test's clock.
pub fn pull(number: u64, pr: Pr, labels: &[&str], t: u32) -> Value {
    let mut p = github_sample("pull_request.opened")["pull_request"].clone();
    p["number"] = json!(number);
    p["id"] = json!(1_000_000 + number);
    p["html_url"] = json!(format!("https://github.com/{REPO}/pull/{number}"));
    p["title"] = json!(format!("Fix the flux capacitor (#{number})"));
    p["body"] = json!("It was off by one.");
    p["draft"] = json!(pr == Pr::Draft);
    p["state"] = json!(if matches!(pr, Pr::Closed | Pr::Merged) {
        "closed"
    } else {
        "open"
    });
    p["merged"] = json!(pr == Pr::Merged);
    p["merged_at"] = if pr == Pr::Merged {
        json!("2024-05-18T10:00:00Z")
    } else {
        Value::Null
    };
    p["labels"] = Value::Array(labels.iter().map(|l| label_json(l)).collect());
    p["updated_at"] = json!(format!("2024-05-18T09:{:02}:{:02}Z", t / 60, t % 60));
    p
}

/// A `pull_request` webhook payload (from the sample) with `action`, by `sender`.
pub fn pr_event(action: &str, pull: Value, sender: &str, label: Option<&str>) -> Value {
    let mut e = github_sample("pull_request.opened");
    e["action"] = json!(action);
    e["number"] = pull["number"].clone();
    e["pull_request"] = pull;
    e["sender"]["login"] = json!(sender);
    if let Some(label) = label {
        e["label"] = label_json(label);
    }
    e
}

/// A Jira `jira:issue_updated` payload (from the sample) moving `key` from `from` to `to`.
pub fn jira_status_event(key: &str, from: &str, to: &str, millis: i64) -> Value {
    let sample = hookbridge_providers::jira::SAMPLES
        .iter()
        .find(|s| s.name == "jira:issue_updated")
        .unwrap();
    let mut e: Value = serde_json::from_str(sample.json).unwrap();
    e["timestamp"] = json!(millis);
    e["issue"]["key"] = json!(key);
    e["issue"]["fields"]["status"]["name"] = json!(to);
    e["issue"]["fields"]["updated"] = Value::Null;
    e["issue"]["fields"]["project"]["key"] = json!(key.split('-').next().unwrap());
    e["changelog"] = json!({"id": format!("{millis}"), "items": [
        {"field": "status", "fieldtype": "jira", "fieldId": "status",
         "from": "1", "fromString": from, "to": "2", "toString": to}
    ]});
    e
}

/// An `issues` webhook payload (from the `issues.opened` sample) about issue `number`:
/// open, or closed for `reason` (`completed`, `not_planned`), updated at second `t`.
pub fn issue_event(action: &str, number: u64, closed: Option<&str>, sender: &str, t: u32) -> Value {
    let mut e = github_sample("issues.opened");
    e["action"] = json!(action);
    let issue = &mut e["issue"];
    issue["number"] = json!(number);
    issue["html_url"] = json!(format!("https://github.com/{REPO}/issues/{number}"));
    issue["title"] = json!(format!("The build is slow (#{number})"));
    issue["body"] = json!("It takes an hour.");
    issue["labels"] = json!([]);
    issue["state"] = json!(if closed.is_some() { "closed" } else { "open" });
    issue["state_reason"] = closed.map_or(Value::Null, |r| json!(r));
    issue["updated_at"] = json!(format!("2024-05-18T09:{:02}:{:02}Z", t / 60, t % 60));
    e["sender"]["login"] = json!(sender);
    e
}
