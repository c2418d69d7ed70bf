#![cfg(feature = "travis")]
//! The Travis CI API v3 client against a mock API. Bodies follow the API v3 documentation:
//! the build resource's standard representation (<https://developer.travis-ci.com/resource/build>,
//! and travis-api's `Renderer::Build`), the `@pagination` object of
//! <https://developer.travis-ci.com/pagination> and the error object of
//! <https://developer.travis-ci.com/errors>.

use std::time::Duration;

use futures_util::TryStreamExt;
use hookbridge_core::Secret;
use hookbridge_providers::api::{ApiError, RetryPolicy};
use hookbridge_providers::travis::client::{BuildsQuery, RepoRef, TravisClient, TravisSettings};
use hookbridge_providers::travis::events::{BuildState, BuildType};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "xxxxxxxxxxxx-travis-token";

fn settings(api_url: String, token: Option<&str>) -> TravisSettings {
    let mut settings = TravisSettings::new(token.map(Secret::new)).api_url(api_url);
    settings.retry = RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(5),
        max_wait: Duration::from_secs(2),
    };
    settings
}

fn client(server: &MockServer) -> TravisClient {
    TravisClient::from_settings(settings(server.uri(), Some(TOKEN))).unwrap()
}

fn build(id: u64, number: &str, state: &str) -> Value {
    json!({
        "@type": "build",
        "@href": format!("/build/{id}"),
        "@representation": "standard",
        "@permissions": {"read": true, "cancel": true, "restart": true},
        "id": id,
        "number": number,
        "state": state,
        "duration": 233,
        "event_type": "push",
        "previous_state": "passed",
        "pull_request_title": null,
        "pull_request_number": null,
        "started_at": "2017-03-10T20:25:03Z",
        "finished_at": "2017-03-10T20:28:56Z",
        "private": false,
        "repository": {"@type": "repository", "@href": "/repo/891", "@representation": "minimal",
            "id": 891, "name": "minimal", "slug": "octo/minimal"},
        "branch": {"@type": "branch", "@href": "/repo/891/branch/main", "@representation": "minimal",
            "name": "main"},
        "tag": null,
        "commit": {"@type": "commit", "@representation": "minimal", "id": 59573911,
            "sha": "0d1c8f3d9b8e0a0c5a4d2b7e1f6a9c3b2d1e0f4a", "ref": "refs/heads/main",
            "message": "Fix the flaky test", "compare_url": "https://github.com/octo/minimal/compare/0a1b...0d1c",
            "committed_at": "2017-03-10T20:24:51Z"},
        "jobs": [{"@type": "job", "@href": "/job/193004361", "@representation": "minimal", "id": 193004361}],
        "stages": [],
        "created_by": {"@type": "user", "@href": "/user/12", "@representation": "minimal",
            "id": 12, "login": "ada"},
        "updated_at": "2017-03-10T20:28:56.123Z"
    })
}

fn page(
    href: &str,
    builds: Vec<Value>,
    offset: u64,
    limit: u64,
    count: u64,
    next: Option<&str>,
) -> Value {
    let link = |o: u64| json!({"@href": format!("{href}?limit={limit}&offset={o}"), "offset": o, "limit": limit});
    json!({
        "@type": "builds",
        "@href": format!("{href}?limit={limit}"),
        "@representation": "standard",
        "@pagination": {
            "limit": limit, "offset": offset, "count": count,
            "is_first": offset == 0, "is_last": next.is_none(),
            "next": next.map(|_| link(offset + limit)),
            "prev": if offset == 0 { Value::Null } else { link(offset - limit) },
            "first": link(0),
            "last": link(count.saturating_sub(1) / limit * limit)
        },
        "builds": builds
    })
}

fn header_of<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn gets_a_build_with_the_version_and_token_headers() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/build/86601346"))
        .and(header("travis-api-version", "3"))
        .and(header("authorization", format!("token {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(build(86601346, "7", "passed")))
        .expect(1)
        .mount(&server)
        .await;

    let build = client(&server).build(86601346).await.unwrap();
    assert_eq!(build.number.as_deref(), Some("7"));
    assert_eq!(build.state, BuildState::Passed);
    assert!(build.is_finished());
    assert_eq!(build.event_type, Some(BuildType::Push));
    assert_eq!(
        build.repository.unwrap().slug.as_deref(),
        Some("octo/minimal")
    );
    assert_eq!(build.branch.unwrap().name, "main");
    assert_eq!(
        build.commit.unwrap().git_ref.as_deref(),
        Some("refs/heads/main")
    );
    assert_eq!(build.jobs[0].id, 193004361);
    assert_eq!(build.created_by.unwrap().login.as_deref(), Some("ada"));
    assert_eq!(
        build.finished_at,
        Some(time::macros::datetime!(2017-03-10 20:28:56 UTC))
    );
}

#[tokio::test]
async fn streams_a_repositorys_builds_by_encoded_slug_across_pages() {
    let server = MockServer::start().await;
    // The slug is one URL-encoded segment.
    Mock::given(method("GET"))
        .and(path("/repo/octo%2Fminimal/builds"))
        .and(header("travis-api-version", "3"))
        .and(header("authorization", format!("token {TOKEN}").as_str()))
        .and(query_param("branch.name", "main"))
        .and(query_param("state", "failed"))
        .and(query_param("event_type", "push"))
        .and(query_param("limit", "2"))
        .and(query_param_is_missing("offset"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            "/repo/891/builds",
            vec![build(3, "3", "failed"), build(2, "2", "failed")],
            0,
            2,
            3,
            Some("next"),
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repo/octo%2Fminimal/builds"))
        .and(query_param("branch.name", "main"))
        .and(query_param("state", "failed"))
        .and(query_param("limit", "2"))
        .and(query_param("offset", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            "/repo/891/builds",
            vec![build(1, "1", "failed")],
            2,
            2,
            3,
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;

    let query = BuildsQuery {
        branch: Some("main".into()),
        state: Some(BuildState::Failed),
        event_type: Some(BuildType::Push),
        page_size: Some(2),
    };
    let builds: Vec<_> = client(&server)
        .builds(&RepoRef::slug("octo/minimal"), &query)
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<_> = builds.iter().map(|b| b.id).collect();
    assert_eq!(ids, [3, 2, 1]);
}

#[tokio::test]
async fn pages_stay_under_an_enterprise_api_prefix() {
    let server = MockServer::start().await;
    Mock::given(path("/api/repo/891/builds"))
        .and(query_param_is_missing("offset"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            "/repo/891/builds",
            vec![build(2, "2", "passed")],
            0,
            1,
            2,
            Some("next"),
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/repo/891/builds"))
        .and(query_param("offset", "1"))
        .and(query_param("limit", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            "/repo/891/builds",
            vec![build(1, "1", "passed")],
            1,
            1,
            2,
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;

    let travis =
        TravisClient::from_settings(settings(format!("{}/api", server.uri()), Some(TOKEN)))
            .unwrap();
    let builds: Vec<_> = travis
        .builds(&RepoRef::Id(891), &BuildsQuery::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(builds.len(), 2);
}

#[tokio::test]
async fn finds_the_latest_build_of_a_branch() {
    let server = MockServer::start().await;
    Mock::given(path("/repo/891/builds"))
        .and(query_param("branch.name", "main"))
        .and(query_param("limit", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            "/repo/891/builds",
            vec![build(9, "9", "started")],
            0,
            1,
            9,
            Some("next"),
        )))
        .expect(1)
        .mount(&server)
        .await;
    let latest = client(&server)
        .latest_build(
            &RepoRef::Id(891),
            &BuildsQuery {
                branch: Some("main".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.id, 9);
    assert!(!latest.is_finished());
}

#[tokio::test]
async fn without_a_token_no_authorization_is_sent() {
    let server = MockServer::start().await;
    Mock::given(path("/build/1"))
        .and(header("travis-api-version", "3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(build(1, "1", "passed")))
        .mount(&server)
        .await;
    let travis = TravisClient::from_settings(settings(server.uri(), None)).unwrap();
    travis.build(1).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(header_of(&requests[0], "authorization"), None);
}

// ---------------------------------------------------------------------------------------------
// Errors and retries
// ---------------------------------------------------------------------------------------------

fn error(kind: &str, message: &str) -> Value {
    json!({"@type": "error", "error_type": kind, "error_message": message})
}

#[tokio::test]
async fn unauthorized_is_typed_and_never_shows_the_token() {
    let server = MockServer::start().await;
    Mock::given(path("/build/1"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(error("login_required", "login required")),
        )
        .mount(&server)
        .await;
    let error = client(&server).build(1).await.unwrap_err();
    assert!(matches!(error, ApiError::Unauthorized { .. }), "{error}");
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains(TOKEN), "{shown}");
    }
}

#[tokio::test]
async fn login_required_403_is_forbidden() {
    let server = MockServer::start().await;
    Mock::given(path("/build/1"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(error("login_required", "login required")),
        )
        .mount(&server)
        .await;
    let error = client(&server).build(1).await.unwrap_err();
    assert!(matches!(error, ApiError::Forbidden { .. }), "{error}");
}

#[tokio::test]
async fn not_found_is_typed() {
    let server = MockServer::start().await;
    // The example of Travis CI's error documentation.
    Mock::given(path("/repo/1000000000/builds"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "@type": "error", "error_type": "not_found",
            "error_message": "repository not found (or insufficient access)",
            "resource_type": "repository"
        })))
        .mount(&server)
        .await;
    let result: Result<Vec<_>, _> = client(&server)
        .builds(&RepoRef::Id(1000000000), &BuildsQuery::default())
        .try_collect()
        .await;
    assert!(result.unwrap_err().is_not_found());
}

#[tokio::test]
async fn rate_limited_with_retry_after_is_returned_for_the_engine() {
    let server = MockServer::start().await;
    Mock::given(path("/build/1"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .mount(&server)
        .await;
    let error = client(&server).build(1).await.unwrap_err();
    assert!(matches!(error, ApiError::RateLimited { .. }), "{error}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_server_error_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(path("/build/1"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/build/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(build(1, "1", "errored")))
        .mount(&server)
        .await;
    let build = client(&server).build(1).await.unwrap();
    assert_eq!(build.state, BuildState::Errored);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}
