//! A small stateful Asana on wiremock, shared by the sync-engine and server tests of
//! `github-asana` and `feed-asana`: tasks are created, read, updated and listed per project
//! with the shapes of Asana's API reference (`{"data": ...}` envelopes, `next_page`), users
//! are found by email, projects listed per workspace. A create can be made to fail *after*
//! the task was stored (a lost answer), as a real timeout or 5xx can.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The fake's state.
#[derive(Default)]
pub struct State {
    /// Tasks by gid.
    pub tasks: BTreeMap<String, Value>,
    next_gid: u64,
    /// Users: email -> gid (gids are accepted as they are).
    pub users: BTreeMap<String, String>,
    /// Projects: (workspace gid, project gid, name).
    pub projects: Vec<(String, String, String)>,
    /// The next this many creates store the task, then answer 500.
    pub lose_create_answers: usize,
}

/// A running fake Asana.
pub struct FakeAsana {
    pub server: MockServer,
    pub state: Arc<Mutex<State>>,
}

struct Responder(Arc<Mutex<State>>);

fn data(value: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "data": value }))
}

fn error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "errors": [{ "message": message }] }))
}

impl State {
    fn user(&self, user: &Value) -> Value {
        match user.as_str() {
            None => Value::Null,
            Some(u) => {
                let gid = self.users.get(u).cloned().unwrap_or_else(|| u.to_owned());
                json!({ "gid": gid, "resource_type": "user" })
            }
        }
    }

    fn apply(&self, task: &mut Value, changes: &Value) {
        for field in ["name", "notes", "completed"] {
            if let Some(v) = changes.get(field) {
                task[field] = v.clone();
            }
        }
        if let Some(assignee) = changes.get("assignee") {
            task["assignee"] = self.user(assignee);
        }
    }
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap();
        let path = request
            .url
            .path()
            .trim_start_matches("/api/1.0/")
            .to_owned();
        let parts: Vec<&str> = path.split('/').collect();
        match (request.method.as_str(), parts.as_slice()) {
            ("POST", ["tasks"]) => {
                let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
                let new = &body["data"];
                state.next_gid += 1;
                let gid = format!("{}", 1_300_000_000_000_000u64 + state.next_gid);
                let projects: Vec<Value> = new["projects"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| json!({ "gid": p, "resource_type": "project" }))
                    .collect();
                let mut task = json!({
                    "gid": gid,
                    "resource_type": "task",
                    "name": "",
                    "notes": "",
                    "completed": false,
                    "assignee": null,
                    "projects": projects,
                    "created_at": time::OffsetDateTime::now_utc()
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap(),
                });
                let changes = new.clone();
                state.apply(&mut task, &changes);
                state.tasks.insert(gid, task.clone());
                if state.lose_create_answers > 0 {
                    state.lose_create_answers -= 1;
                    return error(500, "Server Error");
                }
                ResponseTemplate::new(201).set_body_json(json!({ "data": task }))
            }
            ("GET", ["tasks", gid]) => match state.tasks.get(*gid) {
                Some(task) => data(task.clone()),
                None => error(404, "task: Not a recognized ID"),
            },
            ("PUT", ["tasks", gid]) => {
                let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
                let Some(mut task) = state.tasks.get(*gid).cloned() else {
                    return error(404, "task: Not a recognized ID");
                };
                state.apply(&mut task, &body["data"]);
                state.tasks.insert((*gid).to_owned(), task.clone());
                data(task)
            }
            ("GET", ["projects", project, "tasks"]) => {
                let tasks: Vec<Value> = state
                    .tasks
                    .values()
                    .filter(|t| {
                        t["projects"]
                            .as_array()
                            .is_some_and(|ps| ps.iter().any(|p| p["gid"] == *project))
                    })
                    .cloned()
                    .collect();
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "data": tasks, "next_page": null }))
            }
            ("GET", ["workspaces", workspace, "projects"]) => {
                let projects: Vec<Value> = state
                    .projects
                    .iter()
                    .filter(|(w, _, _)| w == workspace)
                    .map(|(_, gid, name)| json!({ "gid": gid, "name": name, "resource_type": "project" }))
                    .collect();
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "data": projects, "next_page": null }))
            }
            _ => error(404, "no such route in the fake"),
        }
    }
}

impl FakeAsana {
    /// Starts the fake, with `users` (email -> gid).
    pub async fn start(users: &[(&str, &str)]) -> FakeAsana {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            users: users
                .iter()
                .map(|(e, g)| ((*e).to_owned(), (*g).to_owned()))
                .collect(),
            ..State::default()
        }));
        Mock::given(wiremock::matchers::path_regex("^/api/1.0/"))
            .respond_with(Responder(state.clone()))
            .mount(&server)
            .await;
        FakeAsana { server, state }
    }

    /// The API base URL to configure.
    pub fn base_url(&self) -> String {
        format!("{}/api/1.0", self.server.uri())
    }

    /// Every task, by gid.
    pub fn tasks(&self) -> BTreeMap<String, Value> {
        self.state.lock().unwrap().tasks.clone()
    }

    /// The tasks whose notes contain `text`.
    pub fn tasks_with(&self, text: &str) -> Vec<Value> {
        self.tasks()
            .into_values()
            .filter(|t| t["notes"].as_str().is_some_and(|n| n.contains(text)))
            .collect()
    }

    /// How many requests of `method` on a path starting with `prefix` were received.
    pub async fn count(&self, method: &str, prefix: &str) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| {
                r.method.as_str() == method
                    && r.url
                        .path()
                        .trim_start_matches("/api/1.0/")
                        .starts_with(prefix)
            })
            .count()
    }
}
