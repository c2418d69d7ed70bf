#![cfg(feature = "asana")]
//! The Asana API client and OAuth 2.0 against a mock Asana, answering with the shapes of
//! Asana's API reference (https://developers.asana.com/reference): `{"data": ...}` envelopes,
//! `next_page.offset` pagination, `{"errors": [{"message"}]}` errors, 429 with `Retry-After`
//! (https://developers.asana.com/docs/rate-limits).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use hookbridge_core::{RuleError, Secret};
use hookbridge_providers::api::{ApiError, RetryPolicy};
use hookbridge_providers::asana::auth::{
    AsanaOAuth, AsanaOAuthApp, TokenListener, TokenSet, personal_access_token,
};
use hookbridge_providers::asana::client::{
    AsanaClient, NewComment, NewTask, ProjectTasks, TASK_FIELDS, TaskUpdate, WebhookFilter,
    api_builder,
};
use serde_json::json;
use time::OffsetDateTime;
use wiremock::matchers::{
    body_json, body_string_contains, header, method, path, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "2/1204000000000001/1205000000000002:0c4cd6ffd1c1e5e4b1c6";
const AUTH: &str = "Bearer 2/1204000000000001/1205000000000002:0c4cd6ffd1c1e5e4b1c6";

fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(5),
        max_wait: Duration::from_secs(2),
    }
}

fn base(mock: &MockServer) -> String {
    format!("{}/api/1.0", mock.uri())
}

fn client(mock: &MockServer) -> AsanaClient {
    AsanaClient::new(
        api_builder(&base(mock))
            .unwrap()
            .auth(personal_access_token(Secret::new(TOKEN)))
            .retry(fast())
            .build()
            .unwrap(),
    )
}

/// A full task record, after the reference's TaskResponse example.
fn task_json(gid: &str, completed: bool) -> serde_json::Value {
    json!({
        "gid": gid,
        "resource_type": "task",
        "name": "Buy catnip",
        "resource_subtype": "default_task",
        "notes": "Mittens really likes the stuff from Humboldt.",
        "html_notes": "<body>Mittens <em>really</em> likes the stuff from Humboldt.</body>",
        "completed": completed,
        "completed_at": if completed { json!("2012-02-22T02:06:58.147Z") } else { json!(null) },
        "created_at": "2012-02-22T02:06:58.147Z",
        "modified_at": "2012-02-22T02:06:58.147Z",
        "assignee": {"gid": "12345", "resource_type": "user", "name": "Greg Sanchez"},
        "projects": [{"gid": "321654", "resource_type": "project", "name": "Stuff to buy"}],
        "workspace": {"gid": "1331", "resource_type": "workspace", "name": "My Company Workspace"},
        "parent": null,
        "permalink_url": "https://app.asana.com/0/321654/12345",
        "custom_fields": [{
            "gid": "5678904321", "resource_type": "custom_field", "name": "GitHub",
            "type": "text", "text_value": "octo/app#12", "display_value": "octo/app#12"
        }],
        "likes": [],
        "followers": [{"gid": "12345", "resource_type": "user", "name": "Greg Sanchez"}]
    })
}

fn data(value: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "data": value }))
}

fn errors(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"errors": [{
        "message": message,
        "help": "For more information on API status codes and how to handle them, read the docs on errors: https://developers.asana.com/docs/errors"
    }]}))
}

// ---- tasks ----------------------------------------------------------------------------------

#[tokio::test]
async fn creates_a_task_in_a_project() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/1.0/tasks"))
        .and(header("authorization", AUTH))
        .and(query_param("opt_fields", TASK_FIELDS))
        .and(body_json(json!({"data": {
            "name": "Buy catnip",
            "notes": "Mittens really likes the stuff from Humboldt.",
            "assignee": "12345",
            "projects": ["321654"],
            "custom_fields": {"5678904321": "octo/app#12", "4578152156": 3}
        }})))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"data": task_json("12345", false)})),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let task = client(&mock)
        .create_task(
            &NewTask::in_project("321654", "Buy catnip")
                .notes("Mittens really likes the stuff from Humboldt.")
                .assignee("12345")
                .custom_field("5678904321", "octo/app#12")
                .custom_field("4578152156", 3),
        )
        .await
        .unwrap();
    assert_eq!(task.gid, "12345");
    assert!(!task.completed);
    assert_eq!(task.projects[0].gid, "321654");
    assert_eq!(
        task.assignee.as_ref().unwrap().name.as_deref(),
        Some("Greg Sanchez")
    );
    assert_eq!(task.custom_field_display("5678904321"), Some("octo/app#12"));
    assert_eq!(
        task.created_at,
        Some(time::macros::datetime!(2012-02-22 02:06:58.147 UTC))
    );
}

#[tokio::test]
async fn creates_a_task_with_rich_text_and_external_id() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/1.0/tasks"))
        .and(body_json(json!({"data": {
            "name": "Fix login",
            "html_notes": "<body><strong>From GitHub</strong></body>",
            "projects": ["321654"],
            "external": {"gid": "github:octo/app#12"}
        }})))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"data": task_json("777", false)})),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let task = client(&mock)
        .create_task(
            &NewTask::in_project("321654", "Fix login")
                .html_notes("<body><strong>From GitHub</strong></body>")
                .external_id("github:octo/app#12"),
        )
        .await
        .unwrap();
    assert_eq!(task.gid, "777");
}

#[tokio::test]
async fn gets_finds_and_misses_tasks() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/tasks/12345"))
        .and(header("authorization", AUTH))
        .and(query_param("opt_fields", TASK_FIELDS))
        .respond_with(data(task_json("12345", true)))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/tasks/999"))
        .respond_with(errors(404, "task: Unknown object: 999"))
        .mount(&mock)
        .await;
    // The external id is a path segment: escaped, behind the literal `external:`.
    Mock::given(method("GET"))
        .and(path("/api/1.0/tasks/external:github%3Aocto%2Fapp%2312"))
        .and(query_param("opt_fields", TASK_FIELDS))
        .respond_with(data(task_json("12345", false)))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/tasks/external:github%3Aocto%2Fapp%2399"))
        .respond_with(errors(404, "Unknown object"))
        .mount(&mock)
        .await;
    let asana = client(&mock);
    let task = asana.get_task("12345").await.unwrap();
    assert!(task.completed);
    assert_eq!(
        task.html_notes.as_deref(),
        Some("<body>Mittens <em>really</em> likes the stuff from Humboldt.</body>")
    );
    let missing = asana.get_task("999").await.unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    assert!(
        missing.to_string().contains("Unknown object: 999"),
        "{missing}"
    );
    assert!(asana.find_task("999").await.unwrap().is_none());
    let found = asana
        .find_task_by_external_id("github:octo/app#12")
        .await
        .unwrap();
    assert_eq!(found.unwrap().gid, "12345");
    assert!(
        asana
            .find_task_by_external_id("github:octo/app#99")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn updates_completes_and_reopens() {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/api/1.0/tasks/12345"))
        .and(header("authorization", AUTH))
        .and(body_json(json!({"data": {"completed": true}})))
        .respond_with(data(task_json("12345", true)))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/1.0/tasks/12345"))
        .and(body_json(json!({"data": {"completed": false}})))
        .respond_with(data(task_json("12345", false)))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/1.0/tasks/12345"))
        .and(body_json(
            json!({"data": {"name": "Renamed", "assignee": null, "custom_fields": {"5678904321": null}}}),
        ))
        .respond_with(data(task_json("12345", false)))
        .expect(1)
        .mount(&mock)
        .await;
    let asana = client(&mock);
    assert!(asana.set_completed("12345", true).await.unwrap().completed);
    assert!(!asana.set_completed("12345", false).await.unwrap().completed);
    asana
        .update_task(
            "12345",
            &TaskUpdate {
                name: Some("Renamed".into()),
                assignee: Some(None),
                custom_fields: [("5678904321".to_owned(), serde_json::Value::Null)].into(),
                ..TaskUpdate::default()
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn sync_task_writes_only_what_differs() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/tasks/12345"))
        .respond_with(data(task_json("12345", false)))
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/1.0/tasks/12345"))
        .and(body_json(json!({"data": {"completed": true}})))
        .respond_with(data(task_json("12345", true)))
        .expect(1)
        .mount(&mock)
        .await;
    let asana = client(&mock);
    // Already so: nothing written.
    let same = TaskUpdate {
        name: Some("Buy catnip".into()),
        assignee: Some(Some("12345".into())),
        completed: Some(false),
        custom_fields: [("5678904321".to_owned(), json!("octo/app#12"))].into(),
        ..TaskUpdate::default()
    };
    assert!(asana.sync_task("12345", &same).await.unwrap().is_none());
    // Only `completed` differs: only it is written.
    let close = TaskUpdate {
        completed: Some(true),
        ..same
    };
    let written = asana.sync_task("12345", &close).await.unwrap().unwrap();
    assert!(written.completed);
}

#[tokio::test]
async fn lists_a_projects_tasks_over_pages() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/projects/321654/tasks"))
        .and(header("authorization", AUTH))
        .and(query_param("limit", "100"))
        .and(query_param("completed_since", "now"))
        .and(query_param("opt_fields", TASK_FIELDS))
        .and(query_param_is_missing("offset"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [task_json("1", false), task_json("2", false)],
            "next_page": {
                "offset": "eyJ0eXAiOJiKV1iQLCJhbGciOiJIUzI1NiJ9",
                "path": "/projects/321654/tasks?limit=100&offset=eyJ0eXAiOJiKV1iQLCJhbGciOiJIUzI1NiJ9",
                "uri": "https://app.asana.com/api/1.0/projects/321654/tasks?limit=100&offset=eyJ0eXAiOJiKV1iQLCJhbGciOiJIUzI1NiJ9"
            }
        })))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/projects/321654/tasks"))
        .and(query_param(
            "offset",
            "eyJ0eXAiOJiKV1iQLCJhbGciOiJIUzI1NiJ9",
        ))
        .and(query_param("completed_since", "now"))
        .and(query_param("limit", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [task_json("3", false)],
            "next_page": null
        })))
        .expect(1)
        .mount(&mock)
        .await;
    let tasks: Vec<_> = client(&mock)
        .tasks_for_project(
            "321654",
            &ProjectTasks {
                completed_since: Some("now".into()),
                opt_fields: None,
            },
        )
        .try_collect()
        .await
        .unwrap();
    let gids: Vec<_> = tasks.iter().map(|t| t.gid.as_str()).collect();
    assert_eq!(gids, ["1", "2", "3"]);
}

#[tokio::test]
async fn finds_a_task_by_custom_field_through_search() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/workspaces/1331/tasks/search"))
        .and(header("authorization", AUTH))
        .and(query_param("custom_fields.5678904321.value", "octo/app#12"))
        .and(query_param("projects.any", "321654"))
        .and(query_param("sort_by", "created_at"))
        .and(query_param("sort_ascending", "true"))
        .and(query_param("opt_fields", TASK_FIELDS))
        // Search results have no `next_page`: Asana's search does not paginate.
        .respond_with(data(json!([task_json("12345", false)])))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/workspaces/1331/tasks/search"))
        .and(query_param("custom_fields.5678904321.value", "octo/app#99"))
        .respond_with(data(json!([])))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/workspaces/2000/tasks/search"))
        .respond_with(errors(
            402,
            "Search is only available to premium users. Upgrade to premium to use search.",
        ))
        .mount(&mock)
        .await;
    let asana = client(&mock);
    let task = asana
        .find_task_by_custom_field("1331", Some("321654"), "5678904321", "octo/app#12")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(task.gid, "12345");
    assert!(
        asana
            .find_task_by_custom_field("1331", None, "5678904321", "octo/app#99")
            .await
            .unwrap()
            .is_none()
    );
    let free = asana
        .find_task_by_custom_field("2000", None, "5678904321", "x")
        .await
        .unwrap_err();
    assert!(
        matches!(free, ApiError::Validation { status: 402, .. }),
        "{free}"
    );
    assert!(!free.is_transient());
}

// ---- stories --------------------------------------------------------------------------------

fn story_json(gid: &str, text: &str, author: &str) -> serde_json::Value {
    json!({
        "gid": gid, "resource_type": "story",
        "created_at": "2012-02-22T02:06:58.147Z",
        "created_by": {"gid": author, "resource_type": "user", "name": "Greg Sanchez"},
        "resource_subtype": "comment_added", "type": "comment",
        "text": text, "html_text": format!("<body>{text}</body>"), "is_pinned": false
    })
}

#[tokio::test]
async fn adds_text_and_rich_comments() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/1.0/tasks/12345/stories"))
        .and(header("authorization", AUTH))
        .and(body_json(
            json!({"data": {"text": "This is a very nice comment."}}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"data": story_json("35678", "This is a very nice comment.", "12345")}),
        ))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/1.0/tasks/12345/stories"))
        .and(body_json(json!({"data": {"html_text": "<body>This is a <strong>very</strong> nice comment.</body>"}})))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"data": story_json("35679", "This is a very nice comment.", "12345")})),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let asana = client(&mock);
    let story = asana
        .add_comment("12345", &NewComment::text("This is a very nice comment."))
        .await
        .unwrap();
    assert_eq!(story.gid, "35678");
    assert!(story.is_comment());
    let story = asana
        .add_comment(
            "12345",
            &NewComment::html("<body>This is a <strong>very</strong> nice comment.</body>"),
        )
        .await
        .unwrap();
    assert_eq!(story.gid, "35679");
}

async fn mount_stories(mock: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/api/1.0/tasks/12345/stories"))
        .and(query_param_is_missing("offset"))
        .and(query_param("limit", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [
                {"gid": "1", "resource_type": "story", "created_at": "2012-02-22T02:06:58.147Z",
                 "resource_subtype": "assigned", "type": "system", "text": "assigned to you"},
                story_json("2", "Someone else's comment", "999")
            ],
            "next_page": {"offset": "page2", "path": "/tasks/12345/stories?limit=100&offset=page2",
                          "uri": "https://app.asana.com/api/1.0/tasks/12345/stories?limit=100&offset=page2"}
        })))
        .mount(mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/tasks/12345/stories"))
        .and(query_param("offset", "page2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [story_json("3", "[hookbridge] build #7 passed", "4242")],
            "next_page": null
        })))
        .mount(mock)
        .await;
}

#[tokio::test]
async fn lists_stories_over_pages() {
    let mock = MockServer::start().await;
    mount_stories(&mock).await;
    let stories: Vec<_> = client(&mock).stories("12345").try_collect().await.unwrap();
    assert_eq!(stories.len(), 3);
    assert!(!stories[0].is_comment());
    assert_eq!(stories[2].created_by.as_ref().unwrap().gid, "4242");
}

#[tokio::test]
async fn upserts_the_bots_own_comment_by_marker() {
    let mock = MockServer::start().await;
    mount_stories(&mock).await;
    Mock::given(method("PUT"))
        .and(path("/api/1.0/stories/3"))
        .and(body_json(
            json!({"data": {"text": "[hookbridge] build #8 failed"}}),
        ))
        .respond_with(data(story_json(
            "3",
            "[hookbridge] build #8 failed",
            "4242",
        )))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/1.0/tasks/12345/stories"))
        .and(body_json(json!({"data": {"text": "[other-bot] hello"}})))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"data": story_json("4", "[other-bot] hello", "4242")})),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let asana = client(&mock);
    // Found by marker and author: edited.
    let edited = asana
        .upsert_comment(
            "12345",
            "[hookbridge]",
            Some("4242"),
            &NewComment::text("[hookbridge] build #8 failed"),
        )
        .await
        .unwrap();
    assert_eq!(edited.gid, "3");
    // Same text already there: nothing written (no PUT beyond the one above).
    asana
        .upsert_comment(
            "12345",
            "[hookbridge]",
            Some("4242"),
            &NewComment::text("[hookbridge] build #7 passed"),
        )
        .await
        .unwrap();
    // Not found: added.
    let added = asana
        .upsert_comment(
            "12345",
            "[other-bot]",
            Some("4242"),
            &NewComment::text("[other-bot] hello"),
        )
        .await
        .unwrap();
    assert_eq!(added.gid, "4");
}

// ---- workspaces, projects, users ------------------------------------------------------------

#[tokio::test]
async fn lists_workspaces_and_projects_over_pages() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/workspaces"))
        .and(header("authorization", AUTH))
        .and(query_param_is_missing("offset"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"gid": "1331", "resource_type": "workspace", "name": "My Company Workspace"}],
            "next_page": {"offset": "w2", "path": "/workspaces?limit=100&offset=w2", "uri": "https://app.asana.com/api/1.0/workspaces?limit=100&offset=w2"}
        })))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/workspaces"))
        .and(query_param("offset", "w2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"gid": "1332", "resource_type": "workspace", "name": "Side Project"}],
            "next_page": null
        })))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/workspaces/1331/projects"))
        .and(query_param("archived", "false"))
        .and(query_param_is_missing("offset"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"gid": "321654", "resource_type": "project", "name": "Stuff to buy"}],
            "next_page": {"offset": "p2", "path": "/workspaces/1331/projects?limit=100&offset=p2", "uri": "https://app.asana.com/api/1.0/workspaces/1331/projects?limit=100&offset=p2"}
        })))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/workspaces/1331/projects"))
        .and(query_param("offset", "p2"))
        .and(query_param("archived", "false"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"gid": "321655", "resource_type": "project", "name": "Bugs"}],
            "next_page": null
        })))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/projects/321654"))
        .respond_with(data(json!({
            "gid": "321654", "resource_type": "project", "name": "Stuff to buy",
            "archived": false, "permalink_url": "https://app.asana.com/0/resource/123456789/list",
            "workspace": {"gid": "1331", "resource_type": "workspace", "name": "My Company Workspace"}
        })))
        .mount(&mock)
        .await;
    let asana = client(&mock);
    let workspaces: Vec<_> = asana.workspaces().try_collect().await.unwrap();
    assert_eq!(
        workspaces
            .iter()
            .map(|w| w.name.as_str())
            .collect::<Vec<_>>(),
        ["My Company Workspace", "Side Project"]
    );
    let projects: Vec<_> = asana
        .projects("1331", Some(false))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        projects.iter().map(|p| p.gid.as_str()).collect::<Vec<_>>(),
        ["321654", "321655"]
    );
    let project = asana.get_project("321654").await.unwrap();
    assert_eq!(project.archived, Some(false));
    assert_eq!(project.workspace.unwrap().gid, "1331");
}

#[tokio::test]
async fn reads_users_and_finds_them_by_email() {
    let mock = MockServer::start().await;
    let user = json!({
        "gid": "12345", "resource_type": "user", "name": "Greg Sanchez",
        "email": "gsanchez@example.com",
        "photo": null,
        "workspaces": [{"gid": "1331", "resource_type": "workspace", "name": "My Company Workspace"}]
    });
    Mock::given(method("GET"))
        .and(path("/api/1.0/users/me"))
        .and(header("authorization", AUTH))
        .respond_with(data(user.clone()))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/workspaces/1331/users/gsanchez@example.com"))
        .respond_with(data(user))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/workspaces/1331/users/nobody@example.com"))
        .respond_with(errors(404, "user: Not a recognized ID: nobody@example.com"))
        .mount(&mock)
        .await;
    let asana = client(&mock);
    let me = asana.me().await.unwrap();
    assert_eq!(me.gid, "12345");
    assert_eq!(me.workspaces[0].gid, "1331");
    let found = asana
        .find_user_by_email("1331", "gsanchez@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.email.as_deref(), Some("gsanchez@example.com"));
    assert!(
        asana
            .find_user_by_email("1331", "nobody@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

// ---- webhooks -------------------------------------------------------------------------------

#[tokio::test]
async fn creates_lists_and_deletes_webhooks() {
    let mock = MockServer::start().await;
    // The reference's example answer (https://developers.asana.com/reference/createwebhook).
    Mock::given(method("POST"))
        .and(path("/api/1.0/webhooks"))
        .and(header("authorization", AUTH))
        .and(body_json(json!({"data": {
            "resource": "8675309",
            "target": "https://example.com/receive-webhook/7654",
            "filters": [{"resource_type": "task", "action": "changed", "fields": ["completed", "name"]}]
        }})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "data": {
                "gid": "43214",
                "resource": {"gid": "8675309", "name": "Bugs"},
                "target": "https://example.com/receive-webhook/7654",
                "active": false,
                "last_success_at": null,
                "last_failure_at": null,
                "last_failure_content": null
            },
            "X-Hook-Secret": "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81"
        })))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/webhooks"))
        .and(query_param("workspace", "1331"))
        .and(query_param("resource", "8675309"))
        .and(query_param_is_missing("offset"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"gid": "43214", "resource_type": "webhook", "active": true,
                      "resource": {"gid": "8675309", "resource_type": "project", "name": "Bugs"},
                      "target": "https://example.com/receive-webhook/7654",
                      "created_at": "2012-02-22T02:06:58.147Z",
                      "last_failure_at": "2012-02-22T02:06:58.147Z",
                      "last_failure_content": "500 Server Error\n\nCould not complete the request",
                      "last_success_at": "2012-02-22T02:06:58.147Z",
                      "filters": [{"resource_type": "task", "action": "changed", "fields": ["due_at", "due_on", "dependencies"]}]}],
            "next_page": {"offset": "h2", "path": "/webhooks?limit=100&workspace=1331&offset=h2", "uri": "https://app.asana.com/api/1.0/webhooks?limit=100&workspace=1331&offset=h2"}
        })))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/webhooks"))
        .and(query_param("workspace", "1331"))
        .and(query_param("offset", "h2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"gid": "43215", "resource_type": "webhook", "active": false,
                      "resource": {"gid": "8675309", "resource_type": "project", "name": "Bugs"},
                      "target": "https://example.com/receive-webhook/7655"}],
            "next_page": null
        })))
        .mount(&mock)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/api/1.0/webhooks/43214"))
        .and(header("authorization", AUTH))
        .respond_with(data(json!({})))
        .expect(1)
        .mount(&mock)
        .await;
    let asana = client(&mock);
    let created = asana
        .create_webhook(
            "8675309",
            "https://example.com/receive-webhook/7654",
            &[WebhookFilter {
                resource_type: Some("task".into()),
                action: Some("changed".into()),
                fields: vec!["completed".into(), "name".into()],
                ..WebhookFilter::default()
            }],
        )
        .await
        .unwrap();
    assert_eq!(created.webhook.gid, "43214");
    assert_eq!(created.webhook.resource.name.as_deref(), Some("Bugs"));
    assert_eq!(
        created.secret,
        Some(Secret::new(
            "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81"
        ))
    );
    assert!(!format!("{created:?}").contains("b537207f"));
    let hooks: Vec<_> = asana
        .webhooks("1331", Some("8675309"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(hooks.len(), 2);
    assert!(hooks[0].active && !hooks[1].active);
    assert_eq!(hooks[0].filters[0].fields.len(), 3);
    asana.delete_webhook("43214").await.unwrap();
}

#[tokio::test]
async fn a_failed_handshake_is_an_error() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/1.0/webhooks"))
        .respond_with(errors(
            400,
            "The remote server did not respond with the handshake secret.",
        ))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/1.0/webhooks"))
        .and(body_string_contains("localhost"))
        .respond_with(errors(403, "Invalid hostname"))
        .with_priority(1)
        .mount(&mock)
        .await;
    let asana = client(&mock);
    let e = asana
        .create_webhook("8675309", "https://example.com/hooks/asana", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(e, ApiError::Validation { status: 400, .. })
            && e.to_string().contains("handshake"),
        "{e}"
    );
    let e = asana
        .create_webhook("8675309", "https://localhost/hooks/asana", &[])
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Forbidden { .. }), "{e}");
}

// ---- errors and retries ---------------------------------------------------------------------

#[tokio::test]
async fn unauthorized_is_retried_once_then_reported() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/tasks/12345"))
        .respond_with(errors(401, "Not Authorized"))
        .mount(&mock)
        .await;
    let e = client(&mock).get_task("12345").await.unwrap_err();
    assert!(matches!(e, ApiError::Unauthorized { .. }), "{e}");
    assert!(e.to_string().contains("Not Authorized"), "{e}");
    assert!(!e.to_string().contains(TOKEN), "{e}");
    assert!(!RuleError::from(e).is_transient());
    assert_eq!(mock.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn rate_limits_wait_or_return_retry_after() {
    let mock = MockServer::start().await;
    let limited = |seconds: &str| {
        ResponseTemplate::new(429)
            .insert_header("retry-after", seconds)
            .set_body_json(json!({"errors": [{"message": "You've made too many requests and hit a rate limit. Please retry after the given amount of time."}]}))
    };
    // Long: handed back to the engine with its delay, not waited for.
    Mock::given(method("GET"))
        .and(path("/api/1.0/tasks/1"))
        .respond_with(limited("30"))
        .mount(&mock)
        .await;
    // Short: waited out, then the call succeeds.
    Mock::given(method("GET"))
        .and(path("/api/1.0/tasks/2"))
        .respond_with(limited("1"))
        .up_to_n_times(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/tasks/2"))
        .respond_with(data(task_json("2", false)))
        .mount(&mock)
        .await;
    let asana = client(&mock);
    let e = asana.get_task("1").await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
    let rule = RuleError::from(e);
    assert!(rule.is_transient());
    let started = std::time::Instant::now();
    assert_eq!(asana.get_task("2").await.unwrap().gid, "2");
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn server_errors_are_retried() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/tasks/12345"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"errors": [{
            "message": "Server Error",
            "phrase": "6 sad squid snuggle softly"
        }]})))
        .up_to_n_times(2)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/tasks/12345"))
        .respond_with(data(task_json("12345", false)))
        .mount(&mock)
        .await;
    let asana = client(&mock);
    assert_eq!(asana.get_task("12345").await.unwrap().gid, "12345");
    assert_eq!(mock.received_requests().await.unwrap().len(), 3);

    // Still failing after the attempts: a transient server error with Asana's message.
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(errors(503, "Service Unavailable"))
        .mount(&mock)
        .await;
    let e = client(&mock).get_task("12345").await.unwrap_err();
    assert!(matches!(e, ApiError::Server { status: 503, .. }), "{e}");
    assert!(e.is_transient());
}

#[tokio::test]
async fn validation_errors_carry_asanas_message() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/1.0/tasks"))
        .respond_with(errors(400, "project: Missing input"))
        .mount(&mock)
        .await;
    let e = client(&mock)
        .create_task(&NewTask::in_project("", "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ApiError::Validation { status: 400, .. })
            && e.to_string().contains("project: Missing input"),
        "{e}"
    );
}

#[tokio::test]
async fn personal_access_token_constructor() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/users/me"))
        .and(header("authorization", AUTH))
        .respond_with(data(json!({"gid": "1", "name": "Bot"})))
        .mount(&mock)
        .await;
    let asana = AsanaClient::personal_access_token(&base(&mock), Secret::new(TOKEN)).unwrap();
    assert_eq!(asana.me().await.unwrap().name, "Bot");
    assert!(AsanaClient::personal_access_token(&base(&mock), Secret::new("")).is_err());
    assert!(!format!("{asana:?}").contains(TOKEN));
}

// ---- OAuth 2.0 ------------------------------------------------------------------------------

const CLIENT_ID: &str = "1204567890123456";
const CLIENT_SECRET: &str = "asana-client-secret-0123";
const REDIRECT: &str = "https://hooks.example.com/oauth/asana/callback";

fn oauth_app(mock: &MockServer) -> Arc<AsanaOAuthApp> {
    Arc::new(
        AsanaOAuthApp::new(CLIENT_ID, Secret::new(CLIENT_SECRET), REDIRECT)
            .unwrap()
            .with_endpoints(
                &format!("{}/-/oauth_authorize", mock.uri()),
                &format!("{}/-/oauth_token", mock.uri()),
            )
            .unwrap(),
    )
}

/// Asana's token exchange answer (https://developers.asana.com/docs/oauth).
fn token_answer(access: &str, refresh: Option<&str>) -> ResponseTemplate {
    let mut body = json!({
        "access_token": access,
        "expires_in": 3600,
        "token_type": "bearer",
        "data": {"id": 4673218951u64, "gid": "4673218951", "name": "Greg Sanchez", "email": "gsanchez@example.com"}
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    ResponseTemplate::new(200).set_body_json(body)
}

#[derive(Default)]
struct Recorder {
    refreshed: std::sync::Mutex<Vec<TokenSet>>,
}

#[async_trait]
impl TokenListener for Recorder {
    async fn tokens_refreshed(&self, tokens: &TokenSet) {
        self.refreshed.lock().unwrap().push(tokens.clone());
    }
}

#[tokio::test]
async fn exchanges_an_authorization_code() {
    let mock = MockServer::start().await;
    let app = oauth_app(&mock);
    let start = app.authorize_url(&["tasks:read"]);
    assert!(
        start
            .url
            .starts_with(&format!("{}/-/oauth_authorize?", mock.uri()))
    );
    let verifier = String::from_utf8(start.pkce_verifier.expose().to_vec()).unwrap();
    Mock::given(method("POST"))
        .and(path("/-/oauth_token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=325797325"))
        .and(body_string_contains(format!("client_id={CLIENT_ID}")))
        .and(body_string_contains(format!(
            "client_secret={CLIENT_SECRET}"
        )))
        .and(body_string_contains(
            "redirect_uri=https%3A%2F%2Fhooks.example.com%2Foauth%2Fasana%2Fcallback",
        ))
        .and(body_string_contains(format!("code_verifier={verifier}")))
        .respond_with(token_answer(
            "f6ds7fdsa69ags7ag9sd5a",
            Some("hjkl325hjkl4325hj4kl32fjds"),
        ))
        .expect(1)
        .mount(&mock)
        .await;
    let before = OffsetDateTime::now_utc();
    let tokens = app
        .exchange_code("325797325", Some(&start.pkce_verifier))
        .await
        .unwrap();
    assert_eq!(tokens.access_token, Secret::new("f6ds7fdsa69ags7ag9sd5a"));
    assert_eq!(
        tokens.refresh_token,
        Some(Secret::new("hjkl325hjkl4325hj4kl32fjds"))
    );
    let expires = tokens.expires_at.unwrap();
    assert!(expires >= before + time::Duration::seconds(3600));
    assert_eq!(
        tokens.user.as_ref().unwrap().gid.as_deref(),
        Some("4673218951")
    );
    let debug = format!("{tokens:?}");
    assert!(
        !debug.contains("f6ds7") && !debug.contains("hjkl3"),
        "{debug}"
    );
}

#[tokio::test]
async fn refused_codes_and_token_endpoint_failures() {
    let mock = MockServer::start().await;
    let app = oauth_app(&mock);
    Mock::given(method("POST"))
        .and(path("/-/oauth_token"))
        .and(body_string_contains("code=expired"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant",
            "error_description": "The `code` is invalid or expired."
        })))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/-/oauth_token"))
        .and(body_string_contains("code=down"))
        .respond_with(ResponseTemplate::new(503).set_body_string("<html>maintenance</html>"))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/-/oauth_token"))
        .and(body_string_contains("code=garbled"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/json")
                .set_body_string(r#"{"access_token_but_wrong": "leaky-token-value"}"#),
        )
        .mount(&mock)
        .await;
    let e = app.exchange_code("expired", None).await.unwrap_err();
    assert!(
        matches!(e, ApiError::Unauthorized { .. }) && e.to_string().contains("invalid_grant"),
        "{e}"
    );
    let e = app.exchange_code("down", None).await.unwrap_err();
    assert!(matches!(e, ApiError::Server { status: 503, .. }), "{e}");
    assert!(e.is_transient());
    let e = app.exchange_code("garbled", None).await.unwrap_err();
    assert!(matches!(e, ApiError::Decode { .. }), "{e}");
    assert!(!e.to_string().contains("leaky-token-value"), "{e}");
    assert!(!e.to_string().contains(CLIENT_SECRET), "{e}");
}

fn oauth_client(mock: &MockServer, auth: Arc<AsanaOAuth>) -> AsanaClient {
    AsanaClient::new(
        api_builder(&base(mock))
            .unwrap()
            .auth_arc(auth)
            .retry(fast())
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn refreshes_before_expiry_and_tells_the_listener() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/-/oauth_token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains(
            "refresh_token=hjkl325hjkl4325hj4kl32fjds",
        ))
        .and(body_string_contains(format!(
            "client_secret={CLIENT_SECRET}"
        )))
        // Asana's refresh answer carries no new refresh token.
        .respond_with(token_answer("fresh-access-2", None))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/users/me"))
        .and(header("authorization", "Bearer fresh-access-2"))
        .respond_with(data(json!({"gid": "4673218951", "name": "Greg Sanchez"})))
        .expect(3)
        .mount(&mock)
        .await;
    let recorder = Arc::new(Recorder::default());
    // Expires in 30 s: inside the refresh margin, so refreshed before the first call.
    let tokens = TokenSet::new(
        Secret::new("old-access-1"),
        Some(Secret::new("hjkl325hjkl4325hj4kl32fjds")),
        Some(OffsetDateTime::now_utc() + time::Duration::seconds(30)),
    );
    let auth = Arc::new(AsanaOAuth::new(oauth_app(&mock), tokens).with_listener(recorder.clone()));
    let asana = oauth_client(&mock, auth.clone());
    // Concurrent calls share one refresh.
    let (a, b, c) = tokio::join!(asana.me(), asana.me(), asana.me());
    assert!(a.is_ok() && b.is_ok() && c.is_ok());
    let refreshed = recorder.refreshed.lock().unwrap().clone();
    assert_eq!(refreshed.len(), 1);
    assert_eq!(refreshed[0].access_token, Secret::new("fresh-access-2"));
    // The refresh token is kept.
    assert_eq!(
        refreshed[0].refresh_token,
        Some(Secret::new("hjkl325hjkl4325hj4kl32fjds"))
    );
    assert_eq!(auth.tokens().access_token, Secret::new("fresh-access-2"));
}

#[tokio::test]
async fn refreshes_after_a_401() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/-/oauth_token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(token_answer("fresh-access-2", None))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/tasks/12345"))
        .and(header("authorization", "Bearer revoked-access-1"))
        .respond_with(errors(401, "Not Authorized"))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/1.0/tasks/12345"))
        .and(header("authorization", "Bearer fresh-access-2"))
        .respond_with(data(task_json("12345", false)))
        .expect(1)
        .mount(&mock)
        .await;
    let calls = Arc::new(AtomicUsize::new(0));
    struct Count(Arc<AtomicUsize>);
    #[async_trait]
    impl TokenListener for Count {
        async fn tokens_refreshed(&self, _: &TokenSet) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    // Valid for an hour by its own account, but refused by Asana.
    let tokens = TokenSet::new(
        Secret::new("revoked-access-1"),
        Some(Secret::new("hjkl325hjkl4325hj4kl32fjds")),
        Some(OffsetDateTime::now_utc() + time::Duration::hours(1)),
    );
    let auth = Arc::new(
        AsanaOAuth::new(oauth_app(&mock), tokens).with_listener(Arc::new(Count(calls.clone()))),
    );
    let task = oauth_client(&mock, auth).get_task("12345").await.unwrap();
    assert_eq!(task.gid, "12345");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_revoked_refresh_token_or_none_is_unauthorized() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/-/oauth_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant",
            "error_description": "The `refresh_token` is invalid or expired."
        })))
        .mount(&mock)
        .await;
    let expired = Some(OffsetDateTime::now_utc() - time::Duration::minutes(5));
    let auth = Arc::new(AsanaOAuth::new(
        oauth_app(&mock),
        TokenSet::new(Secret::new("a"), Some(Secret::new("revoked")), expired),
    ));
    let e = oauth_client(&mock, auth).me().await.unwrap_err();
    assert!(
        matches!(e, ApiError::Unauthorized { .. }) && e.to_string().contains("invalid_grant"),
        "{e}"
    );
    assert!(!e.is_transient());

    let auth = Arc::new(AsanaOAuth::new(
        oauth_app(&mock),
        TokenSet::new(Secret::new("a"), None, expired),
    ));
    let e = oauth_client(&mock, auth).me().await.unwrap_err();
    assert!(
        matches!(e, ApiError::Unauthorized { .. }) && e.to_string().contains("authorize again"),
        "{e}"
    );
    // No API call was made with an expired token.
    let api_calls = mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r: &&Request| r.url.path().starts_with("/api/"))
        .count();
    assert_eq!(api_calls, 0);
}
