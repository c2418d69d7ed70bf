#![cfg(feature = "github")]
//! The GitHub API client and its authentication against mock servers answering with the
//! response examples of GitHub's REST reference (https://docs.github.com/en/rest), trimmed to
//! the fields that matter plus a few the client ignores.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use hookbridge_core::Secret;
use hookbridge_providers::api::{ApiError, Auth, RetryPolicy};
use hookbridge_providers::github::auth::{GithubApp, GithubAppAuth, TokenScope};
use hookbridge_providers::github::client::*;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const PRIVATE_KEY: &str = include_str!("../samples/github/TEST-ONLY-app-private-key.pem");
const PRIVATE_KEY_PKCS8: &str =
    include_str!("../samples/github/TEST-ONLY-app-private-key.pkcs8.pem");
const PUBLIC_KEY: &str = include_str!("../samples/github/TEST-ONLY-app-public-key.pem");

const TOKEN: &str = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
const BOT: &str = "hookbridge-sync[bot]";

fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(5),
        max_wait: Duration::from_secs(2),
    }
}

fn repo() -> Repo {
    Repo::new("octo-org", "octo-repo").unwrap()
}

fn repo_path(rest: &str) -> String {
    format!("/repos/octo-org/octo-repo/{rest}")
}

/// A client with a personal access token, at `base` (the mock, or an Enterprise-style path).
fn client_at(base: &str) -> GithubClient {
    GithubClient::new(
        api_builder(base)
            .unwrap()
            .auth(Auth::Bearer(Secret::new(TOKEN)))
            .retry(fast())
            .build()
            .unwrap(),
    )
}

fn client(mock: &MockServer) -> GithubClient {
    client_at(&mock.uri())
}

/// Matchers every authenticated call must satisfy.
fn github_call(verb: &str, p: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(p))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("accept", "application/vnd.github+json"))
        .and(header("x-github-api-version", "2022-11-28"))
}

fn user(login: &str, id: u64, kind: &str) -> Value {
    json!({"login": login, "id": id, "node_id": "MDQ6VXNlcjE=", "type": kind,
        "site_admin": false, "html_url": format!("https://github.com/{login}")})
}

/// The "Get an issue" response example, trimmed.
fn issue_json(number: u64, state: &str) -> Value {
    json!({
        "id": 1, "node_id": "MDU6SXNzdWUx", "number": number,
        "url": format!("https://api.github.com/repos/octo-org/octo-repo/issues/{number}"),
        "html_url": format!("https://github.com/octo-org/octo-repo/issues/{number}"),
        "state": state, "state_reason": if state == "closed" { json!("not_planned") } else { Value::Null },
        "title": "Found a bug", "body": "I'm having a problem with this.",
        "user": user("octocat", 1, "User"),
        "labels": [{"id": 208045946, "node_id": "MDU6TGFiZWwyMDgwNDU5NDY=",
            "url": "https://api.github.com/repos/octo-org/octo-repo/labels/bug",
            "name": "bug", "description": "Something isn't working", "color": "f29513",
            "default": true}],
        "assignee": user("octocat", 1, "User"),
        "assignees": [user("octocat", 1, "User")],
        "milestone": null, "locked": true, "active_lock_reason": "too heated", "comments": 0,
        "closed_at": null, "created_at": "2011-04-22T13:33:48Z", "updated_at": "2011-04-22T13:33:48Z",
        "author_association": "COLLABORATOR"
    })
}

/// The "Get a pull request" response example, trimmed.
fn pull_json(number: u64) -> Value {
    json!({
        "url": format!("https://api.github.com/repos/octo-org/octo-repo/pulls/{number}"),
        "id": 1000 + number, "node_id": "MDExOlB1bGxSZXF1ZXN0MQ==", "number": number,
        "html_url": format!("https://github.com/octo-org/octo-repo/pull/{number}"),
        "state": "open", "locked": true, "title": "Amazing new feature",
        "user": user("octocat", 1, "User"), "body": "Please pull these awesome changes in!",
        "labels": [], "assignees": null, "draft": false,
        "created_at": "2011-01-26T19:01:12Z", "updated_at": "2011-01-26T19:01:12Z",
        "closed_at": null, "merged_at": null,
        "merge_commit_sha": "e5bd3914e2e596debea16f433f57875b5b90bcd6",
        "head": {"label": "octocat:new-topic", "ref": "new-topic",
            "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e", "user": user("octocat", 1, "User")},
        "base": {"label": "octocat:master", "ref": "master",
            "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e", "user": user("octocat", 1, "User")},
        "author_association": "OWNER", "auto_merge": null
    })
}

/// The "Get an issue comment" response example, by `login`.
fn comment_json(id: u64, login: &str, body: &str) -> Value {
    json!({
        "id": id, "node_id": "MDEyOklzc3VlQ29tbWVudDE=",
        "url": format!("https://api.github.com/repos/octo-org/octo-repo/issues/comments/{id}"),
        "html_url": format!("https://github.com/octo-org/octo-repo/issues/1347#issuecomment-{id}"),
        "body": body, "user": user(login, id, if login.ends_with("[bot]") { "Bot" } else { "User" }),
        "created_at": "2011-04-14T16:00:49Z", "updated_at": "2011-04-14T16:00:49Z",
        "issue_url": "https://api.github.com/repos/octo-org/octo-repo/issues/1347",
        "author_association": "COLLABORATOR"
    })
}

fn label_json(name: &str) -> Value {
    json!({"id": 208045946, "node_id": "MDU6TGFiZWwyMDgwNDU5NDY=",
        "url": format!("https://api.github.com/repos/octo-org/octo-repo/labels/{name}"),
        "name": name, "description": null, "color": "f29513", "default": false})
}

/// The "Get a repository webhook" response example.
fn hook_json(id: u64, url: &str) -> Value {
    json!({
        "type": "Repository", "id": id, "name": "web", "active": true,
        "events": ["push", "pull_request"],
        "config": {"content_type": "json", "insecure_ssl": "0", "url": url, "secret": "********"},
        "updated_at": "2019-06-03T00:57:16Z", "created_at": "2019-06-03T00:57:16Z",
        "url": format!("https://api.github.com/repos/octo-org/octo-repo/hooks/{id}"),
        "test_url": format!("https://api.github.com/repos/octo-org/octo-repo/hooks/{id}/test"),
        "ping_url": format!("https://api.github.com/repos/octo-org/octo-repo/hooks/{id}/pings"),
        "last_response": {"code": null, "status": "unused", "message": null}
    })
}

/// GitHub's `Link` header for a page with a next one.
fn link_next(mock: &MockServer, p: &str, query: &str) -> String {
    format!(
        "<{0}{p}?{query}&page=2>; rel=\"next\", <{0}{p}?{query}&page=2>; rel=\"last\"",
        mock.uri()
    )
}

/// Mounts a two-page listing at `p`: `first` (with a `Link` to page 2) and `second`. The first
/// page must be asked for with `per_page=100` and `query` (`key=value&...`), and the link
/// keeps them, as GitHub's do.
async fn two_pages(mock: &MockServer, p: &str, query: &str, first: Value, second: Value) {
    let mut page2 = github_call("GET", p).and(query_param("page", "2"));
    let mut page1 = github_call("GET", p).and(query_param_is_missing("page"));
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        page2 = page2.and(query_param(k, v));
        page1 = page1.and(query_param(k, v));
    }
    page2
        .respond_with(ResponseTemplate::new(200).set_body_json(second))
        .mount(mock)
        .await;
    page1
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(first)
                .insert_header("link", link_next(mock, p, query).as_str()),
        )
        .mount(mock)
        .await;
}

async fn requests(mock: &MockServer, verb: &str) -> Vec<Request> {
    mock.received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == verb)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Issues
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn get_issue() {
    let mock = MockServer::start().await;
    github_call("GET", &repo_path("issues/1347"))
        .respond_with(ResponseTemplate::new(200).set_body_json(issue_json(1347, "open")))
        .expect(1)
        .mount(&mock)
        .await;
    let issue = client(&mock).get_issue(&repo(), 1347).await.unwrap();
    assert_eq!(issue.number, 1347);
    assert_eq!(issue.state, IssueState::Open);
    assert_eq!(issue.state_reason, None);
    assert_eq!(issue.labels[0].name, "bug");
    assert_eq!(issue.user.as_ref().unwrap().login, "octocat");
    assert!(!issue.is_pull_request());
}

#[tokio::test]
async fn enterprise_base_url_keeps_its_path() {
    let mock = MockServer::start().await;
    github_call("GET", "/api/v3/repos/octo-org/octo-repo/issues/1")
        .respond_with(ResponseTemplate::new(200).set_body_json(issue_json(1, "open")))
        .expect(1)
        .mount(&mock)
        .await;
    let github = client_at(&format!("{}/api/v3", mock.uri()));
    assert_eq!(github.get_issue(&repo(), 1).await.unwrap().number, 1);
}

#[tokio::test]
async fn create_issue() {
    let mock = MockServer::start().await;
    github_call("POST", &repo_path("issues"))
        .and(body_json(
            json!({"title": "Found a bug", "body": "I'm having a problem with this.",
            "labels": ["bug"], "assignees": ["octocat"]}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(issue_json(1347, "open")))
        .expect(1)
        .mount(&mock)
        .await;
    let new = NewIssue {
        labels: vec!["bug".into()],
        assignees: vec!["octocat".into()],
        ..NewIssue::new("Found a bug").body("I'm having a problem with this.")
    };
    let issue = client(&mock).create_issue(&repo(), &new).await.unwrap();
    assert_eq!(issue.number, 1347);
}

#[tokio::test]
async fn update_issue_title_body_state_and_reason() {
    let mock = MockServer::start().await;
    github_call("PATCH", &repo_path("issues/1347"))
        .and(body_json(json!({"title": "New title", "body": "New body",
            "state": "closed", "state_reason": "not_planned"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(issue_json(1347, "closed")))
        .expect(1)
        .mount(&mock)
        .await;
    github_call("PATCH", &repo_path("issues/7"))
        .and(body_json(
            json!({"state": "open", "state_reason": "reopened"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(issue_json(7, "open")))
        .expect(1)
        .mount(&mock)
        .await;
    let github = client(&mock);
    let update = IssueUpdate::default()
        .title("New title")
        .body("New body")
        .close(StateReason::NotPlanned);
    let issue = github.update_issue(&repo(), 1347, &update).await.unwrap();
    assert_eq!(issue.state, IssueState::Closed);
    assert_eq!(issue.state_reason, Some(StateReason::NotPlanned));
    let reopened = github
        .update_issue(&repo(), 7, &IssueUpdate::default().reopen())
        .await
        .unwrap();
    assert_eq!(reopened.state, IssueState::Open);
}

#[tokio::test]
async fn fresh_get_waits_out_early_404s() {
    let mock = MockServer::start().await;
    github_call("GET", &repo_path("issues/5"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found",
            "documentation_url": "https://docs.github.com/rest/issues/issues#get-an-issue"})),
        )
        .up_to_n_times(2)
        .mount(&mock)
        .await;
    github_call("GET", &repo_path("issues/5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(issue_json(5, "open")))
        .mount(&mock)
        .await;
    github_call("GET", &repo_path("pulls/5"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .up_to_n_times(1)
        .mount(&mock)
        .await;
    github_call("GET", &repo_path("pulls/5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(pull_json(5)))
        .mount(&mock)
        .await;
    let github = client(&mock);
    let issue = github
        .get_issue_fresh(&repo(), 5, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(issue.number, 5);
    assert_eq!(requests(&mock, "GET").await.len(), 3);
    let pull = github
        .get_pull_request_fresh(&repo(), 5, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(pull.number, 5);
}

#[tokio::test]
async fn fresh_get_gives_up_after_the_window() {
    let mock = MockServer::start().await;
    github_call("GET", &repo_path("issues/9"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&mock)
        .await;
    let started = Instant::now();
    let err = client(&mock)
        .get_issue_fresh(&repo(), 9, Duration::from_millis(700))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(err.is_not_found(), "{err}");
    assert!(elapsed >= Duration::from_millis(700), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    // 0, 200 ms, 600 ms, then the last try at the deadline.
    assert!(requests(&mock, "GET").await.len() >= 3);
    // A zero window is a plain get.
    let err = client(&mock)
        .get_issue_fresh(&repo(), 9, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(err.is_not_found());
}

// ---------------------------------------------------------------------------------------------
// Errors, retries
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unauthorized_is_retried_once_then_reported() {
    let mock = MockServer::start().await;
    github_call("GET", &repo_path("issues/1"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials",
            "documentation_url": "https://docs.github.com/rest"})),
        )
        .mount(&mock)
        .await;
    let err = client(&mock).get_issue(&repo(), 1).await.unwrap_err();
    assert!(matches!(err, ApiError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("Bad credentials"), "{err}");
    assert!(!err.to_string().contains(TOKEN));
    assert_eq!(requests(&mock, "GET").await.len(), 2);
}

#[tokio::test]
async fn not_found_is_typed() {
    let mock = MockServer::start().await;
    github_call("GET", &repo_path("pulls/404"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&mock)
        .await;
    let err = client(&mock)
        .get_pull_request(&repo(), 404)
        .await
        .unwrap_err();
    assert!(
        err.is_not_found() && err.to_string().contains("Not Found"),
        "{err}"
    );
    assert_eq!(requests(&mock, "GET").await.len(), 1);
}

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let mock = MockServer::start().await;
    github_call("GET", &repo_path("issues/1"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "60")
                .set_body_json(json!({"message": "API rate limit exceeded"})),
        )
        .mount(&mock)
        .await;
    // GitHub's secondary limit: 403 with Retry-After.
    github_call("POST", &repo_path("issues/1/comments"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("retry-after", "120")
                .set_body_json(json!({"message": "You have exceeded a secondary rate limit."})),
        )
        .mount(&mock)
        .await;
    let github = client(&mock);
    let err = github.get_issue(&repo(), 1).await.unwrap_err();
    assert!(matches!(err, ApiError::RateLimited { .. }), "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
    let err = github.create_comment(&repo(), 1, "hi").await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    // Longer than the client waits itself: left to the engine, no retry here.
    assert_eq!(mock.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let mock = MockServer::start().await;
    github_call("GET", &repo_path("issues/1"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(2)
        .mount(&mock)
        .await;
    github_call("GET", &repo_path("issues/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(issue_json(1, "open")))
        .mount(&mock)
        .await;
    github_call("GET", &repo_path("hooks"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&mock)
        .await;
    github_call("GET", &repo_path("hooks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([hook_json(1, "https://a")])))
        .mount(&mock)
        .await;
    let github = client(&mock);
    assert_eq!(github.get_issue(&repo(), 1).await.unwrap().number, 1);
    let hooks: Vec<Hook> = github.list_hooks(&repo()).try_collect().await.unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(mock.received_requests().await.unwrap().len(), 5);
}

#[tokio::test]
async fn validation_errors_carry_githubs_message() {
    let mock = MockServer::start().await;
    github_call("POST", &repo_path("issues"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Validation Failed",
            "errors": [{"resource": "Issue", "field": "title", "code": "missing_field"}],
            "documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue"})))
        .mount(&mock)
        .await;
    let err = client(&mock)
        .create_issue(&repo(), &NewIssue::new(""))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApiError::Validation { status: 422, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("Validation Failed"), "{err}");
}

#[tokio::test]
async fn bad_names_never_reach_the_network() {
    assert!("octo-org/../admin".parse::<Repo>().is_err());
    let mock = MockServer::start().await;
    let err = client(&mock)
        .remove_label(&repo(), 1, "..")
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Config { .. }), "{err}");
    let err = client(&mock)
        .upsert_own_comment(&repo(), 1, "bad -->", "x")
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Config { .. }), "{err}");
    assert!(mock.received_requests().await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Pull requests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn get_pull_request() {
    let mock = MockServer::start().await;
    let mut merged = pull_json(1347);
    merged["state"] = json!("closed");
    merged["merged"] = json!(true);
    merged["merged_at"] = json!("2011-01-26T19:01:12Z");
    github_call("GET", &repo_path("pulls/1347"))
        .respond_with(ResponseTemplate::new(200).set_body_json(merged))
        .expect(1)
        .mount(&mock)
        .await;
    let pull = client(&mock).get_pull_request(&repo(), 1347).await.unwrap();
    assert_eq!(pull.head.ref_name, "new-topic");
    assert_eq!(pull.base.sha, "6dcb09b5b57875f334f61aebed695e2e4193db5e");
    assert!(pull.is_merged());
    assert_eq!(pull.state, IssueState::Closed);
}

#[tokio::test]
async fn list_pull_requests_pages_by_link() {
    let mock = MockServer::start().await;
    two_pages(
        &mock,
        &repo_path("pulls"),
        "state=all&sort=updated&direction=desc&per_page=100",
        json!([pull_json(3), pull_json(2)]),
        json!([pull_json(1)]),
    )
    .await;
    let pulls: Vec<PullRequest> = client(&mock)
        .list_pull_requests(
            &repo(),
            &PullFilter::state(PullState::All).recently_updated(),
        )
        .try_collect()
        .await
        .unwrap();
    let numbers: Vec<u64> = pulls.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [3, 2, 1]);
    // Listings have no `merged`: `merged_at` says it.
    assert!(!pulls[0].is_merged());
    assert_eq!(requests(&mock, "GET").await.len(), 2);
}

#[tokio::test]
async fn list_pull_requests_defaults_to_open() {
    let mock = MockServer::start().await;
    github_call("GET", &repo_path("pulls"))
        .and(query_param("state", "open"))
        .and(query_param("per_page", "100"))
        .and(query_param_is_missing("sort"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([pull_json(1)])))
        .expect(1)
        .mount(&mock)
        .await;
    let pulls: Vec<PullRequest> = client(&mock)
        .list_pull_requests(&repo(), &PullFilter::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pulls.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Comments
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn list_comments_pages_by_link() {
    let mock = MockServer::start().await;
    two_pages(
        &mock,
        &repo_path("issues/1347/comments"),
        "per_page=100",
        json!([
            comment_json(1, "octocat", "Me too"),
            comment_json(2, "hubot", "+1")
        ]),
        json!([comment_json(3, "octocat", "Fixed?")]),
    )
    .await;
    let comments: Vec<IssueComment> = client(&mock)
        .list_comments(&repo(), 1347)
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<u64> = comments.iter().map(|c| c.id).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(comments[0].body.as_deref(), Some("Me too"));
}

#[tokio::test]
async fn create_and_edit_comments() {
    let mock = MockServer::start().await;
    github_call("POST", &repo_path("issues/1347/comments"))
        .and(body_json(json!({"body": "Me too"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(comment_json(1, BOT, "Me too")))
        .expect(1)
        .mount(&mock)
        .await;
    github_call("PATCH", &repo_path("issues/comments/1"))
        .and(body_json(json!({"body": "Me three"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(comment_json(1, BOT, "Me three")))
        .expect(1)
        .mount(&mock)
        .await;
    let github = client(&mock);
    let created = github
        .create_comment(&repo(), 1347, "Me too")
        .await
        .unwrap();
    assert_eq!(created.id, 1);
    let edited = github.edit_comment(&repo(), 1, "Me three").await.unwrap();
    assert_eq!(edited.body.as_deref(), Some("Me three"));
}

#[tokio::test]
async fn upsert_creates_when_only_others_carry_the_marker() {
    let mock = MockServer::start().await;
    let marker = "<!-- hookbridge:jira-link -->";
    // Someone quoting the marker is not us: their comment is never edited.
    github_call("GET", &repo_path("issues/1347/comments"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([comment_json(
                1,
                "octocat",
                &format!("{marker}\nTracked in PROJ-1")
            ),])),
        )
        .mount(&mock)
        .await;
    let text = format!("{marker}\nTracked in PROJ-7");
    github_call("POST", &repo_path("issues/1347/comments"))
        .and(body_json(json!({"body": text})))
        .respond_with(ResponseTemplate::new(201).set_body_json(comment_json(9, BOT, &text)))
        .expect(1)
        .mount(&mock)
        .await;
    let outcome = client(&mock)
        .with_bot_login(BOT)
        .upsert_own_comment(&repo(), 1347, "jira-link", "Tracked in PROJ-7")
        .await
        .unwrap();
    assert!(matches!(outcome, CommentUpsert::Created(_)), "{outcome:?}");
    assert_eq!(outcome.comment().id, 9);
    assert!(requests(&mock, "PATCH").await.is_empty());
}

#[tokio::test]
async fn upsert_edits_our_comment_found_on_a_later_page() {
    let mock = MockServer::start().await;
    let marker = "<!-- hookbridge:jira-link -->";
    two_pages(
        &mock,
        &repo_path("issues/1347/comments"),
        "per_page=100",
        json!([
            comment_json(1, "octocat", "first!"),
            comment_json(2, BOT, "an unrelated bot note")
        ]),
        json!([comment_json(
            3,
            BOT,
            &format!("{marker}\nTracked in PROJ-1")
        )]),
    )
    .await;
    let text = format!("{marker}\nTracked in PROJ-7");
    github_call("PATCH", &repo_path("issues/comments/3"))
        .and(body_json(json!({"body": text})))
        .respond_with(ResponseTemplate::new(200).set_body_json(comment_json(3, BOT, &text)))
        .expect(1)
        .mount(&mock)
        .await;
    let outcome = client(&mock)
        .with_bot_login(BOT)
        .upsert_own_comment(&repo(), 1347, "jira-link", "Tracked in PROJ-7")
        .await
        .unwrap();
    assert!(matches!(outcome, CommentUpsert::Updated(_)), "{outcome:?}");
    assert!(requests(&mock, "POST").await.is_empty());
}

#[tokio::test]
async fn upsert_writes_nothing_when_already_said_and_looks_up_the_login() {
    let mock = MockServer::start().await;
    // No bot login configured: a token client asks GET /user, once.
    github_call("GET", "/user")
        .respond_with(ResponseTemplate::new(200).set_body_json(user("sync-bot", 42, "User")))
        .expect(1)
        .mount(&mock)
        .await;
    github_call("GET", &repo_path("issues/1347/comments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            // GitHub may store CRLF line endings.
            comment_json(
                4,
                "Sync-Bot",
                "<!-- hookbridge:jira-link -->\r\nTracked in PROJ-7"
            ),
        ])))
        .mount(&mock)
        .await;
    let github = client(&mock);
    for _ in 0..2 {
        let outcome = github
            .upsert_own_comment(&repo(), 1347, "jira-link", "Tracked in PROJ-7")
            .await
            .unwrap();
        assert!(
            matches!(outcome, CommentUpsert::Unchanged(_)),
            "{outcome:?}"
        );
    }
    assert!(requests(&mock, "POST").await.is_empty());
    assert!(requests(&mock, "PATCH").await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Labels
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn list_labels_pages_by_link() {
    let mock = MockServer::start().await;
    two_pages(
        &mock,
        &repo_path("issues/1347/labels"),
        "per_page=100",
        json!([label_json("bug"), label_json("enhancement")]),
        json!([label_json("jira:Done")]),
    )
    .await;
    let labels: Vec<Label> = client(&mock)
        .list_labels(&repo(), 1347)
        .try_collect()
        .await
        .unwrap();
    let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["bug", "enhancement", "jira:Done"]);
}

#[tokio::test]
async fn add_and_remove_labels() {
    let mock = MockServer::start().await;
    github_call("POST", &repo_path("issues/1347/labels"))
        .and(body_json(json!({"labels": ["bug", "enhancement"]})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([label_json("bug"), label_json("enhancement")])),
        )
        .expect(1)
        .mount(&mock)
        .await;
    // Label names are percent-encoded in the path.
    github_call(
        "DELETE",
        &repo_path("issues/1347/labels/jira%3AIn%20Progress"),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!([label_json("bug")])))
    .expect(1)
    .mount(&mock)
    .await;
    github_call("DELETE", &repo_path("issues/1347/labels/gone"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"message": "Label does not exist"})),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let github = client(&mock);
    let labels = github
        .add_labels(&repo(), 1347, &["bug", "enhancement"])
        .await
        .unwrap();
    assert_eq!(labels.len(), 2);
    assert!(
        github
            .remove_label(&repo(), 1347, "jira:In Progress")
            .await
            .unwrap()
    );
    // Already absent: not an error.
    assert!(!github.remove_label(&repo(), 1347, "gone").await.unwrap());
}

#[tokio::test]
async fn set_owned_labels_touches_only_owned_labels() {
    let mock = MockServer::start().await;
    github_call("GET", &repo_path("issues/1347/labels"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            label_json("bug"),
            label_json("jira:To Do"),
            label_json("jira:In Review"),
        ])))
        .mount(&mock)
        .await;
    github_call("POST", &repo_path("issues/1347/labels"))
        .and(body_json(json!({"labels": ["jira:In Progress"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&mock)
        .await;
    for encoded in ["jira%3ATo%20Do", "jira%3AIn%20Review"] {
        github_call(
            "DELETE",
            &repo_path(&format!("issues/1347/labels/{encoded}")),
        )
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&mock)
        .await;
    }
    let changes = client(&mock)
        .set_owned_labels(
            &repo(),
            1347,
            &OwnedLabels::prefix("jira:"),
            &["jira:In Progress"],
        )
        .await
        .unwrap();
    assert_eq!(changes.added, ["jira:In Progress"]);
    assert_eq!(changes.removed, ["jira:To Do", "jira:In Review"]);
    // `bug` is not ours.
    let deletes = requests(&mock, "DELETE").await;
    assert_eq!(deletes.len(), 2);
    assert!(deletes.iter().all(|r| !r.url.path().ends_with("/bug")));
}

#[tokio::test]
async fn set_owned_labels_writes_nothing_in_the_desired_state() {
    let mock = MockServer::start().await;
    github_call("GET", &repo_path("issues/1347/labels"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([label_json("bug"), label_json("jira:In Progress")])),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let changes = client(&mock)
        .set_owned_labels(
            &repo(),
            1347,
            &OwnedLabels::Names(vec!["jira:In Progress".into(), "jira:Done".into()]),
            &["jira:in progress"],
        )
        .await
        .unwrap();
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(mock.received_requests().await.unwrap().len(), 1);
    // A desired label the bot does not own is refused before any call.
    let err = client(&mock)
        .set_owned_labels(&repo(), 1347, &OwnedLabels::prefix("jira:"), &["bug"])
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Config { .. }), "{err}");
    assert_eq!(mock.received_requests().await.unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Commit statuses
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn create_status() {
    let mock = MockServer::start().await;
    let sha = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
    github_call("POST", &repo_path(&format!("statuses/{sha}")))
        .and(body_json(
            json!({"state": "success", "target_url": "https://example.com/build/status",
            "description": "The build succeeded!", "context": "continuous-integration/jenkins"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "url": format!("https://api.github.com/repos/octo-org/octo-repo/statuses/{sha}"),
            "avatar_url": "https://github.com/images/error/hubot_happy.gif",
            "id": 1, "node_id": "MDY6U3RhdHVzMQ==", "state": "success",
            "description": "Build has completed successfully",
            "target_url": "https://ci.example.com/1000/output",
            "context": "continuous-integration/jenkins",
            "created_at": "2012-07-20T01:19:13Z", "updated_at": "2012-07-20T01:19:13Z",
            "creator": user("octocat", 1, "User")})))
        .expect(1)
        .mount(&mock)
        .await;
    let status = client(&mock)
        .create_status(
            &repo(),
            sha,
            &NewStatus {
                state: StatusState::Success,
                target_url: Some("https://example.com/build/status".into()),
                description: Some("The build succeeded!".into()),
                context: Some("continuous-integration/jenkins".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(status.state, StatusState::Success);
    assert_eq!(
        status.context.as_deref(),
        Some("continuous-integration/jenkins")
    );
}

// ---------------------------------------------------------------------------------------------
// Repository webhooks
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn list_hooks_pages_by_link() {
    let mock = MockServer::start().await;
    two_pages(
        &mock,
        &repo_path("hooks"),
        "per_page=100",
        json!([hook_json(1, "https://a.example.com/hook")]),
        json!([hook_json(2, "https://b.example.com/hook")]),
    )
    .await;
    let hooks: Vec<Hook> = client(&mock)
        .list_hooks(&repo())
        .try_collect()
        .await
        .unwrap();
    let urls: Vec<&str> = hooks
        .iter()
        .map(|h| h.config.as_ref().unwrap().url.as_deref().unwrap())
        .collect();
    assert_eq!(
        urls,
        ["https://a.example.com/hook", "https://b.example.com/hook"]
    );
}

#[tokio::test]
async fn create_update_delete_hooks() {
    let mock = MockServer::start().await;
    let url = "https://hooks.example.com/hooks/github";
    github_call("POST", &repo_path("hooks"))
        .and(body_json(
            json!({"name": "web", "active": true, "events": ["issues", "pull_request"],
            "config": {"url": url, "content_type": "json", "secret": "hook-secret",
                "insecure_ssl": "0"}}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(hook_json(12345678, url)))
        .expect(1)
        .mount(&mock)
        .await;
    github_call("PATCH", &repo_path("hooks/12345678"))
        .and(body_json(json!({"active": false, "add_events": ["push"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(hook_json(12345678, url)))
        .expect(1)
        .mount(&mock)
        .await;
    github_call("DELETE", &repo_path("hooks/12345678"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&mock)
        .await;
    let github = client(&mock);
    let hook = github
        .create_hook(
            &repo(),
            &NewHook {
                config: HookConfigInput::new(url, Secret::new("hook-secret")),
                events: vec!["issues".into(), "pull_request".into()],
                active: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(hook.id, 12345678);
    let update = HookUpdate {
        active: Some(false),
        add_events: vec!["push".into()],
        ..HookUpdate::default()
    };
    github
        .update_hook(&repo(), 12345678, &update)
        .await
        .unwrap();
    github.delete_hook(&repo(), 12345678).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// GitHub App authentication
// ---------------------------------------------------------------------------------------------

fn rfc3339_in(seconds: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
        .replace_nanosecond(0)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

/// The "Create an installation access token for an app" response example.
fn token_json(token: &str, expires_in: i64) -> Value {
    json!({"token": token, "expires_at": rfc3339_in(expires_in),
        "permissions": {"issues": "write", "contents": "read"},
        "repository_selection": "selected"})
}

const TOKEN_PATH: &str = "/app/installations/52068731/access_tokens";

fn app() -> GithubApp {
    GithubApp::new("Iv23liTEST", &Secret::new(PRIVATE_KEY)).unwrap()
}

fn app_client(mock: &MockServer) -> GithubClient {
    let app_api = api_builder(&mock.uri())
        .unwrap()
        .auth(app())
        .retry(fast())
        .build()
        .unwrap();
    let auth = GithubAppAuth::with_api(app(), 52068731, app_api);
    GithubClient::new(
        api_builder(&mock.uri())
            .unwrap()
            .auth(auth)
            .retry(fast())
            .build()
            .unwrap(),
    )
}

#[derive(serde::Deserialize)]
struct Claims {
    iat: i64,
    exp: i64,
    iss: String,
}

/// Checks a JWT's signature with the test public key and GitHub's claim rules.
fn check_jwt(jwt: &str) -> Claims {
    let key = DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&["Iv23liTEST"]);
    validation.set_required_spec_claims(&["iat", "exp", "iss"]);
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<Claims>(jwt, &key, &validation).unwrap();
    assert_eq!(data.header.alg, Algorithm::RS256);
    let claims = data.claims;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (now - 60 - 5..=now - 60).contains(&claims.iat),
        "iat 60 s in the past"
    );
    assert!(claims.exp - claims.iat <= 600, "at most 10 minutes");
    assert!(
        claims.exp <= now + 600 && claims.exp > now,
        "exp within 10 minutes"
    );
    assert_eq!(claims.iss, "Iv23liTEST");
    claims
}

fn bearer(request: &Request) -> String {
    request.headers["authorization"]
        .to_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn app_jwt_is_signed_with_the_app_key() {
    let jwt = app().jwt().unwrap();
    check_jwt(std::str::from_utf8(jwt.expose()).unwrap());
    // PKCS#8 keys sign the same way.
    let pkcs8 = GithubApp::new("Iv23liTEST", &Secret::new(PRIVATE_KEY_PKCS8)).unwrap();
    check_jwt(std::str::from_utf8(pkcs8.jwt().unwrap().expose()).unwrap());
    // Another key's signature does not verify.
    let key = DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap();
    // One character changed in the middle of the signature.
    let jwt = std::str::from_utf8(jwt.expose()).unwrap();
    let at = jwt.len() - 100;
    let swap = if &jwt[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{swap}{}", &jwt[..at], &jwt[at + 1..]);
    let validation = Validation::new(Algorithm::RS256);
    assert!(jsonwebtoken::decode::<Claims>(&tampered, &key, &validation).is_err());
}

#[tokio::test]
async fn installation_token_is_fetched_once_and_reused() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(header("accept", "application/vnd.github+json"))
        .and(header("x-github-api-version", "2022-11-28"))
        .respond_with(ResponseTemplate::new(201).set_body_json(token_json("ghs_one", 3600)))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path(repo_path("issues/1")))
        .and(header("authorization", "Bearer ghs_one"))
        .respond_with(ResponseTemplate::new(200).set_body_json(issue_json(1, "open")))
        .expect(3)
        .mount(&mock)
        .await;
    let github = app_client(&mock);
    for _ in 0..3 {
        github.get_issue(&repo(), 1).await.unwrap();
    }
    // The token request was authenticated with a valid app JWT and had no body.
    let token_requests = requests(&mock, "POST").await;
    assert_eq!(token_requests.len(), 1);
    check_jwt(&bearer(&token_requests[0]));
    assert!(token_requests[0].body.is_empty());
}

#[tokio::test]
async fn concurrent_calls_share_one_token_request() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(token_json("ghs_one", 3600))
                .set_delay(Duration::from_millis(100)),
        )
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path(repo_path("issues/1")))
        .and(header("authorization", "Bearer ghs_one"))
        .respond_with(ResponseTemplate::new(200).set_body_json(issue_json(1, "open")))
        .expect(5)
        .mount(&mock)
        .await;
    let github = app_client(&mock);
    let repo = repo();
    let calls = (0..5).map(|_| github.get_issue(&repo, 1));
    for result in futures_util::future::join_all(calls).await {
        result.unwrap();
    }
}

#[tokio::test]
async fn installation_token_is_refreshed_before_expiry() {
    let mock = MockServer::start().await;
    // Four minutes left: inside the five-minute margin, used once, then replaced.
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_json(token_json("ghs_old", 240)))
        .up_to_n_times(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_json(token_json("ghs_new", 3600)))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path(repo_path("issues/1")))
        .respond_with(ResponseTemplate::new(200).set_body_json(issue_json(1, "open")))
        .mount(&mock)
        .await;
    let github = app_client(&mock);
    for _ in 0..3 {
        github.get_issue(&repo(), 1).await.unwrap();
    }
    let used: Vec<String> = requests(&mock, "GET").await.iter().map(bearer).collect();
    assert_eq!(used, ["ghs_old", "ghs_new", "ghs_new"]);
    assert_eq!(requests(&mock, "POST").await.len(), 2);
}

#[tokio::test]
async fn installation_token_is_replaced_after_a_401() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_json(token_json("ghs_revoked", 3600)))
        .up_to_n_times(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_json(token_json("ghs_fresh", 3600)))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path(repo_path("issues/1")))
        .and(header("authorization", "Bearer ghs_revoked"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})),
        )
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path(repo_path("issues/1")))
        .and(header("authorization", "Bearer ghs_fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(issue_json(1, "open")))
        .mount(&mock)
        .await;
    let github = app_client(&mock);
    github.get_issue(&repo(), 1).await.unwrap();
    github.get_issue(&repo(), 1).await.unwrap();
    let used: Vec<String> = requests(&mock, "GET").await.iter().map(bearer).collect();
    assert_eq!(used, ["ghs_revoked", "ghs_fresh", "ghs_fresh"]);
    assert_eq!(requests(&mock, "POST").await.len(), 2);
}

#[tokio::test]
async fn a_refused_app_jwt_is_an_authentication_error() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "message": "A JSON web token could not be decoded",
            "documentation_url": "https://docs.github.com/rest"})))
        .mount(&mock)
        .await;
    let err = app_client(&mock).get_issue(&repo(), 1).await.unwrap_err();
    assert!(matches!(err, ApiError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("could not be decoded"), "{err}");
    assert!(!err.to_string().contains("eyJ"), "no JWT in errors: {err}");
    // Never reached the API with a bad token.
    assert!(requests(&mock, "GET").await.is_empty());
}

#[tokio::test]
async fn an_unknown_installation_is_not_a_missing_object() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&mock)
        .await;
    // A 404 here must not read as "label already absent".
    let err = app_client(&mock)
        .remove_label(&repo(), 1, "bug")
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("installation 52068731"), "{err}");
    assert!(requests(&mock, "DELETE").await.is_empty());
}

#[tokio::test]
async fn token_scope_and_details() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(body_json(json!({"repositories": ["octo-repo"],
            "permissions": {"issues": "write"}})))
        .respond_with(ResponseTemplate::new(201).set_body_json(token_json("ghs_scoped", 3600)))
        .expect(1)
        .mount(&mock)
        .await;
    let scope = TokenScope {
        repositories: vec!["octo-repo".into()],
        permissions: [("issues".to_owned(), "write".to_owned())].into(),
        ..TokenScope::default()
    };
    let auth = GithubAppAuth::new(app(), 52068731, &mock.uri())
        .unwrap()
        .scope(scope);
    let token = auth.create_token().await.unwrap();
    assert_eq!(token.token.expose(), b"ghs_scoped");
    assert_eq!(token.permissions["contents"], "read");
    assert_eq!(token.repository_selection.as_deref(), Some("selected"));
    assert!(token.expires_at > OffsetDateTime::now_utc());
    assert!(!format!("{token:?}").contains("ghs_scoped"));
}

#[tokio::test]
async fn app_settings_find_the_bot_login_with_get_app() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_json(token_json("ghs_one", 3600)))
        .expect(1)
        .mount(&mock)
        .await;
    // The "Get the authenticated app" example, trimmed; authenticated with the JWT.
    Mock::given(method("GET"))
        .and(path("/app"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 1, "slug": "hookbridge-sync", "node_id": "MDExOkludGVncmF0aW9uMQ==",
            "client_id": "Iv23liTEST", "owner": user("octo-org", 2, "Organization"),
            "name": "Hookbridge Sync", "events": ["issues"], "installations_count": 5})))
        .expect(1)
        .mount(&mock)
        .await;
    github_call_app("GET", &repo_path("issues/1347/comments"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([comment_json(
                5,
                BOT,
                "<!-- hookbridge:status -->\nold"
            ),])),
        )
        .mount(&mock)
        .await;
    github_call_app("PATCH", &repo_path("issues/comments/5"))
        .and(body_json(
            json!({"body": "<!-- hookbridge:status -->\nnew"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(comment_json(
            5,
            BOT,
            "<!-- hookbridge:status -->\nnew",
        )))
        .expect(1)
        .mount(&mock)
        .await;
    let mut settings = GithubClientSettings::new(GithubCredentials::App {
        app_id: "Iv23liTEST".into(),
        private_key_pem: Secret::new(PRIVATE_KEY),
        installation_id: 52068731,
    });
    settings.base_url = mock.uri();
    settings.retry = fast();
    let github = GithubClient::from_settings(&settings).unwrap();
    assert_eq!(github.bot_login().await.unwrap(), BOT);
    let outcome = github
        .upsert_own_comment(&repo(), 1347, "status", "new")
        .await
        .unwrap();
    assert!(matches!(outcome, CommentUpsert::Updated(_)), "{outcome:?}");
    let app_request = mock
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path() == "/app")
        .unwrap();
    check_jwt(&bearer(&app_request));
    assert!(!format!("{github:?}").contains("PRIVATE KEY"));
}

/// Matchers of a call made with the installation token `ghs_one`.
fn github_call_app(verb: &str, p: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(p))
        .and(header("authorization", "Bearer ghs_one"))
        .and(header("x-github-api-version", "2022-11-28"))
}

#[tokio::test]
async fn token_settings_and_configured_bot_login() {
    let mock = MockServer::start().await;
    github_call("GET", &repo_path("issues/1347/comments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&mock)
        .await;
    github_call("POST", &repo_path("issues/1347/comments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(comment_json(1, "sync-bot", "x")))
        .expect(1)
        .mount(&mock)
        .await;
    let mut settings = GithubClientSettings::new(GithubCredentials::Token(Secret::new(TOKEN)));
    settings.base_url = mock.uri();
    settings.bot_login = Some("sync-bot".into());
    let github = GithubClient::from_settings(&settings).unwrap();
    let outcome = github
        .upsert_own_comment(&repo(), 1347, "note", "x")
        .await
        .unwrap();
    assert!(matches!(outcome, CommentUpsert::Created(_)));
    // No GET /user: the login was configured.
    assert!(
        mock.received_requests()
            .await
            .unwrap()
            .iter()
            .all(|r| r.url.path() != "/user")
    );
    assert!(!format!("{settings:?}").contains(TOKEN));
}

#[tokio::test]
async fn list_issues_pages_by_link_with_since_and_tells_pull_requests_apart() {
    let mock = MockServer::start().await;
    let mut pr_issue = issue_json(3, "open");
    pr_issue["pull_request"] =
        json!({"url": "https://api.github.com/repos/octo-org/octo-repo/pulls/3"});
    two_pages(
        &mock,
        &repo_path("issues"),
        "state=all&sort=updated&direction=desc&since=2024-01-02T03:04:05Z&per_page=100",
        json!([pr_issue, issue_json(2, "closed")]),
        json!([issue_json(1, "open")]),
    )
    .await;
    let since = time::macros::datetime!(2024-01-02 04:04:05.678 +01:00);
    let issues: Vec<Issue> = client(&mock)
        .list_issues(&repo(), PullState::All, Some(since))
        .try_collect()
        .await
        .unwrap();
    let numbers: Vec<u64> = issues.iter().map(|i| i.number).collect();
    assert_eq!(numbers, [3, 2, 1]);
    assert!(issues[0].is_pull_request());
    assert!(!issues[1].is_pull_request());
    assert_eq!(issues[1].state_reason, Some(StateReason::NotPlanned));
    // Without `since`, none is sent.
    let mock = MockServer::start().await;
    github_call("GET", &repo_path("issues"))
        .and(query_param("state", "open"))
        .and(query_param_is_missing("since"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&mock)
        .await;
    let none: Vec<Issue> = client(&mock)
        .list_issues(&repo(), PullState::Open, None)
        .try_collect()
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn requested_reviewers_are_the_users_only() {
    let mock = MockServer::start().await;
    // The reference's example, trimmed: users and teams.
    github_call("GET", &repo_path("pulls/34/requested_reviewers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "users": [
                {"login": "monalisa", "id": 2918581, "type": "User", "site_admin": false},
                {"login": "hubot", "id": 1, "type": "User"}
            ],
            "teams": [{"id": 1, "slug": "justice-league", "name": "Justice League"}]
        })))
        .expect(1)
        .mount(&mock)
        .await;
    let users = client(&mock)
        .requested_reviewers(&repo(), 34)
        .await
        .unwrap();
    let logins: Vec<&str> = users.iter().map(|u| u.login.as_str()).collect();
    assert_eq!(logins, ["monalisa", "hubot"]);
    // A pull request that does not exist is a 404, not an empty list.
    let error = client(&mock)
        .requested_reviewers(&repo(), 35)
        .await
        .unwrap_err();
    assert!(error.is_not_found(), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Webhook delivery logs and redelivery
// ---------------------------------------------------------------------------------------------

/// A "List deliveries for a repository webhook" item, as the reference's example.
fn hook_delivery_json(id: u64, guid: &str, at: &str, status_code: u16, redelivery: bool) -> Value {
    json!({
        "id": id, "guid": guid, "delivered_at": at, "redelivery": redelivery,
        "duration": 0.27, "status": if status_code == 200 { "OK" } else { "failed to connect" },
        "status_code": status_code, "event": "issues", "action": "opened",
        "installation_id": null, "repository_id": 1296269,
        "throttled_at": null
    })
}

#[tokio::test]
async fn hook_deliveries_page_by_cursor_and_redelivery_is_a_post_to_attempts() {
    let mock = MockServer::start().await;
    let p = repo_path("hooks/77/deliveries");
    // GitHub's cursor pagination: the `Link` header names the next page's `cursor`.
    github_call("GET", &p)
        .and(query_param("per_page", "100"))
        .and(query_param("cursor", "v1_12041"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([hook_delivery_json(
                12040,
                "0b989ba4-242f-11e5-81e1-c7b6966d2516",
                "2024-05-12T20:33:44Z",
                502,
                false
            )])),
        )
        .expect(1)
        .mount(&mock)
        .await;
    github_call("GET", &p)
        .and(query_param("per_page", "100"))
        .and(query_param_is_missing("cursor"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([
                    hook_delivery_json(12042, "58474f00-b361-11eb-836d-0e4f3503ccbe",
                        "2024-05-12T20:35:00Z", 200, true),
                    // GitHub sends null for what it does not know.
                    {"id": 12041, "guid": "58474f00-b361-11eb-836d-0e4f3503ccbe",
                     "delivered_at": "2024-05-12T20:34:44Z", "redelivery": null,
                     "status": null, "status_code": null, "event": "issues", "action": null}
                ]))
                .insert_header(
                    "link",
                    format!(
                        "<{0}{p}?per_page=100&cursor=v1_12041>; rel=\"next\"",
                        mock.uri()
                    )
                    .as_str(),
                ),
        )
        .expect(1)
        .mount(&mock)
        .await;
    github_call("POST", &repo_path("hooks/77/deliveries/12040/attempts"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
        .expect(1)
        .mount(&mock)
        .await;
    let github = client(&mock);
    let hook = HookRef::Repo {
        repo: repo(),
        hook_id: 77,
    };
    assert_eq!(hook.to_string(), "repository octo-org/octo-repo hook 77");
    let log: Vec<HookDelivery> = github
        .list_hook_deliveries(&hook)
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<u64> = log.iter().map(|d| d.id).collect();
    assert_eq!(ids, [12042, 12041, 12040]);
    assert!(log[0].redelivery && log[0].succeeded());
    assert_eq!(
        log[0].delivered_at,
        time::macros::datetime!(2024-05-12 20:35:00 UTC)
    );
    assert_eq!(log[0].action.as_deref(), Some("opened"));
    assert_eq!((log[1].status_code, log[1].redelivery), (0, false));
    assert!(!log[1].succeeded());
    assert_eq!(log[1].guid, log[0].guid, "a redelivery keeps the GUID");
    assert!(!log[2].succeeded() && log[2].status == "failed to connect");
    github.redeliver_hook_delivery(&hook, 12040).await.unwrap();
}

#[tokio::test]
async fn a_lazy_log_reader_fetches_only_the_pages_it_reads() {
    let mock = MockServer::start().await;
    let p = repo_path("hooks/77/deliveries");
    github_call("GET", &p)
        .and(query_param_is_missing("cursor"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([hook_delivery_json(
                    3,
                    "c",
                    "2024-05-12T20:35:00Z",
                    200,
                    false
                )]))
                .insert_header(
                    "link",
                    format!(
                        "<{0}{p}?per_page=100&cursor=v1_3>; rel=\"next\"",
                        mock.uri()
                    )
                    .as_str(),
                ),
        )
        .expect(1)
        .mount(&mock)
        .await;
    github_call("GET", &p)
        .and(query_param("cursor", "v1_3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(0)
        .mount(&mock)
        .await;
    let hook = HookRef::Repo {
        repo: repo(),
        hook_id: 77,
    };
    let mut log = std::pin::pin!(client(&mock).list_hook_deliveries(&hook));
    let first = log.try_next().await.unwrap().unwrap();
    assert_eq!(first.guid, "c");
    // Dropped here unread: the mock's `expect(0)` checks the second page was never fetched.
}

#[tokio::test]
async fn organization_hooks_and_their_log() {
    let mock = MockServer::start().await;
    github_call("GET", "/orgs/octo-org/hooks")
        .and(query_param("per_page", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([hook_json(
            1,
            "https://hooks.example.com/hooks/gh-org"
        )])))
        .expect(1)
        .mount(&mock)
        .await;
    github_call("GET", "/orgs/octo-org/hooks/1/deliveries")
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([hook_delivery_json(
                9,
                "g",
                "2024-05-12T20:35:00Z",
                504,
                false
            )])),
        )
        .expect(1)
        .mount(&mock)
        .await;
    github_call("POST", "/orgs/octo-org/hooks/1/deliveries/9/attempts")
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
        .expect(1)
        .mount(&mock)
        .await;
    let github = client(&mock);
    let hooks: Vec<Hook> = github
        .list_org_hooks("octo-org")
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        hooks[0].config.as_ref().and_then(|c| c.url.as_deref()),
        Some("https://hooks.example.com/hooks/gh-org")
    );
    let hook = HookRef::Org {
        org: "octo-org".into(),
        hook_id: 1,
    };
    let log: Vec<HookDelivery> = github
        .list_hook_deliveries(&hook)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(log[0].id, 9);
    github.redeliver_hook_delivery(&hook, 9).await.unwrap();
    // A hostile organization name is encoded, never a path of its own.
    let error = github.list_org_hooks("..").try_collect::<Vec<_>>().await;
    assert!(matches!(error, Err(ApiError::Config { .. })), "{error:?}");
}

#[tokio::test]
async fn an_apps_log_is_read_with_the_app_jwt() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/app/hook/deliveries"))
        .and(query_param("per_page", "100"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([hook_delivery_json(
                5,
                "a",
                "2024-05-12T20:35:00Z",
                502,
                false
            )])),
        )
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/hook/deliveries/5/attempts"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
        .expect(1)
        .mount(&mock)
        .await;
    let mut settings = GithubClientSettings::new(GithubCredentials::App {
        app_id: "Iv23liTEST".into(),
        private_key_pem: Secret::new(PRIVATE_KEY),
        installation_id: 52068731,
    });
    settings.base_url = mock.uri();
    let app = GithubClient::from_settings(&settings)
        .unwrap()
        .as_app()
        .unwrap();
    let log: Vec<HookDelivery> = app
        .list_hook_deliveries(&HookRef::App)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(log[0].guid, "a");
    app.redeliver_hook_delivery(&HookRef::App, 5).await.unwrap();
    // No installation token was fetched: both calls carried the app's own JWT.
    let requests = mock.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        check_jwt(&bearer(request));
    }
    // A client with a token cannot act as an app.
    let error = client(&mock).as_app().unwrap_err();
    assert!(matches!(error, ApiError::Config { .. }), "{error}");
}

#[tokio::test]
async fn a_refused_redelivery_is_reported_and_not_repeated() {
    let mock = MockServer::start().await;
    github_call("POST", &repo_path("hooks/77/deliveries/1/attempts"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Validation Failed", "documentation_url": "https://docs.github.com/rest"})))
        .expect(1)
        .mount(&mock)
        .await;
    github_call("POST", &repo_path("hooks/77/deliveries/2/attempts"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&mock)
        .await;
    let hook = HookRef::Repo {
        repo: repo(),
        hook_id: 77,
    };
    let github = client(&mock);
    let error = github.redeliver_hook_delivery(&hook, 1).await.unwrap_err();
    assert!(
        matches!(error, ApiError::Validation { status: 422, .. }),
        "{error}"
    );
    // A 5xx may have queued the redelivery: the POST is not sent again.
    let error = github.redeliver_hook_delivery(&hook, 2).await.unwrap_err();
    assert!(
        matches!(error, ApiError::Server { status: 502, .. }),
        "{error}"
    );
}
