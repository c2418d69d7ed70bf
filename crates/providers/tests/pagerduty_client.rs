#![cfg(feature = "pagerduty")]
//! The PagerDuty REST client against a mock PagerDuty. Response bodies are the examples of
//! PagerDuty's OpenAPI description (github.com/PagerDuty/api-schema,
//! reference/REST/openapiv3.json), trimmed where noted; request bodies are its request
//! examples.

use std::time::Duration;

use futures_util::TryStreamExt;
use hookbridge_core::Secret;
use hookbridge_providers::api::{ApiError, RetryPolicy};
use hookbridge_providers::pagerduty::auth::{AppCredentials, PagerdutyCredentials};
use hookbridge_providers::pagerduty::client::{
    ACCEPT_V2, IncidentTarget, LogEntryInclude, LogEntryQuery, LogEntryType, PagerdutyClient,
    PagerdutySettings, StatusChange, SyncOutcome,
};
use hookbridge_providers::pagerduty::events::IncidentStatus;
use serde_json::{Value, json};
use wiremock::matchers::{
    body_json, body_string_contains, header, method, path, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "y_NbAkKc66ryYTWUXYEu";
const FROM: &str = "bot@example.com";

fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(5),
        max_wait: Duration::from_secs(2),
    }
}

fn settings(server: &MockServer) -> PagerdutySettings {
    let mut settings = PagerdutySettings::new(PagerdutyCredentials::ApiKey(Secret::new(KEY)))
        .base_url(server.uri())
        .from(FROM);
    settings.retry = fast();
    settings
}

fn client(server: &MockServer) -> PagerdutyClient {
    PagerdutyClient::from_settings(settings(server)).unwrap()
}

fn auth() -> wiremock::matchers::HeaderExactMatcher {
    header("authorization", format!("Token token={KEY}").as_str())
}

/// `GET /incidents/{id}` response example.
fn incident(status: &str, priority: Option<(&str, &str)>) -> Value {
    let mut incident = json!({
        "id": "PT4KHLK",
        "type": "incident",
        "summary": "[#1234] The server is on fire.",
        "self": "https://api.pagerduty.com/incidents/PT4KHLK",
        "html_url": "https://subdomain.pagerduty.com/incidents/PT4KHLK",
        "incident_number": 1234,
        "created_at": "2015-10-06T21:30:42Z",
        "status": status,
        "title": "The server is on fire.",
        "alert_counts": {"all": 2, "triggered": 1, "resolved": 1},
        "pending_actions": [
            {"type": "unacknowledge", "at": "2015-11-10T01:02:52Z"},
            {"type": "resolve", "at": "2015-11-10T04:31:52Z"}
        ],
        "incident_key": "baf7cf21b1da41b4b0221008339ff357",
        "service": {
            "id": "PIJ90N7", "type": "service_reference", "summary": "My Mail Service",
            "self": "https://api.pagerduty.com/services/PIJ90N7",
            "html_url": "https://subdomain.pagerduty.com/services/PIJ90N7"
        },
        "assigned_via": "escalation_policy",
        "assignments": [{
            "at": "2015-11-10T00:31:52Z",
            "assignee": {
                "id": "PXPGF42", "type": "user_reference", "summary": "Earline Greenholt",
                "self": "https://api.pagerduty.com/users/PXPGF42",
                "html_url": "https://subdomain.pagerduty.com/users/PXPGF42"
            }
        }],
        "acknowledgements": [{
            "at": "2015-11-10T00:32:52Z",
            "acknowledger": {
                "id": "PXPGF42", "type": "user_reference", "summary": "Earline Greenholt",
                "self": "https://api.pagerduty.com/users/PXPGF42",
                "html_url": "https://subdomain.pagerduty.com/users/PXPGF42"
            }
        }],
        "last_status_change_at": "2015-10-06T21:38:23Z",
        "last_status_change_by": {
            "id": "PXPGF42", "type": "user_reference", "summary": "Earline Greenholt",
            "self": "https://api.pagerduty.com/users/PXPGF42",
            "html_url": "https://subdomain.pagerduty.com/users/PXPGF42"
        },
        "first_trigger_log_entry": {
            "id": "Q02JTSNZWHSEKV", "type": "trigger_log_entry_reference",
            "summary": "Triggered through the API",
            "self": "https://api.pagerduty.com/log_entries/Q02JTSNZWHSEKV?incident_id=PT4KHLK",
            "html_url": "https://subdomain.pagerduty.com/incidents/PT4KHLK/log_entries/Q02JTSNZWHSEKV"
        },
        "escalation_policy": {
            "id": "PT20YPA", "type": "escalation_policy_reference",
            "summary": "Another Escalation Policy",
            "self": "https://api.pagerduty.com/escalation_policies/PT20YPA",
            "html_url": "https://subdomain.pagerduty.com/escalation_policies/PT20YPA"
        },
        "teams": [{
            "id": "PQ9K7I8", "type": "team_reference", "summary": "Engineering",
            "self": "https://api.pagerduty.com/teams/PQ9K7I8",
            "html_url": "https://subdomain.pagerduty.com/teams/PQ9K7I8"
        }],
        "urgency": "high"
    });
    if let Some((id, name)) = priority {
        incident["priority"] = json!({
            "id": id, "type": "priority_reference", "summary": name,
            "self": format!("https://api.pagerduty.com/priorities/{id}")
        });
    }
    json!({ "incident": incident })
}

/// `GET /priorities` response example, split in two pages.
fn priorities_page(offset: u64) -> Value {
    let all = [
        (
            "PSLWBL8",
            "P1",
            "Critical issue that warrants public notification and liaison with executive teams",
        ),
        (
            "P53ZZH5",
            "P2",
            "Critical system issue actively impacting many customers' ability to use the product",
        ),
        (
            "PGE9YCZ",
            "P3",
            "Stability or minor customer-impacting issues that require immediate attention from service owners",
        ),
    ];
    let page: Vec<Value> = all
        .iter()
        .skip(offset as usize)
        .take(2)
        .map(|(id, name, description)| {
            json!({"id": id, "type": "priority", "summary": name,
                "self": format!("https://api.pagerduty.com/priorities/{id}"),
                "name": name, "description": description})
        })
        .collect();
    json!({"priorities": page, "limit": 2, "offset": offset, "more": offset == 0, "total": null})
}

/// A log entry as in the `GET /log_entries` response example.
fn log_entry(id: &str, kind: &str, created_at: &str, agent: Value) -> Value {
    json!({
        "id": id,
        "type": kind,
        "summary": "Triggered through the API",
        "self": format!("https://api.pagerduty.com/log_entries/{id}?incident_id=PT4KHLK"),
        "html_url": format!("https://subdomain.pagerduty.com/incidents/PT4KHLK/log_entries/{id}"),
        "created_at": created_at,
        "agent": agent,
        "channel": {"type": "api"},
        "incident": {
            "id": "PT4KHLK", "type": "incident_reference",
            "summary": "[#1234] The server is on fire.",
            "self": "https://api.pagerduty.com/incidents/PT4KHLK",
            "html_url": "https://subdomain.pagerduty.com/incidents/PT4KHLK"
        },
        "teams": [{
            "id": "PQ9K7I8", "type": "team_reference", "summary": "Engineering",
            "self": "https://api.pagerduty.com/teams/PQ9K7I8",
            "html_url": "https://subdomain.pagerduty.com/teams/PQ9K7I8"
        }],
        "contexts": [],
        "event_details": {"description": "Tasks::SFDCValidator - PD_Data__c - duplicates"}
    })
}

fn service_agent() -> Value {
    json!({"id": "PIJ90N7", "type": "service_reference", "summary": "My Mail Service",
        "self": "https://api.pagerduty.com/services/PIJ90N7",
        "html_url": "https://subdomain.pagerduty.com/services/PIJ90N7"})
}

fn user_agent() -> Value {
    json!({"id": "PXPGF42", "type": "user_reference", "summary": "Earline Greenholt",
        "self": "https://api.pagerduty.com/users/PXPGF42",
        "html_url": "https://subdomain.pagerduty.com/users/PXPGF42"})
}

/// A user as in the `GET /users` response example.
fn user(id: &str, name: &str, email: &str) -> Value {
    json!({
        "id": id, "type": "user", "summary": name,
        "self": format!("https://api.pagerduty.com/users/{id}"),
        "html_url": format!("https://subdomain.pagerduty.com/users/{id}"),
        "name": name, "email": email, "time_zone": "America/Lima", "color": "green",
        "role": "admin",
        "avatar_url": "https://secure.gravatar.com/avatar/a8b714a39626f2444ee05990b078995f.png?d=mm&r=PG",
        "description": "I'm the boss", "invitation_sent": false,
        "contact_methods": [{"id": "PTDVERC", "type": "email_contact_method_reference",
            "summary": "Default", "self": format!("https://api.pagerduty.com/users/{id}/contact_methods/PTDVERC")}],
        "notification_rules": [{"id": "P8GRWKK", "type": "assignment_notification_rule_reference",
            "summary": "Default", "self": format!("https://api.pagerduty.com/users/{id}/notification_rules/P8GRWKK"),
            "html_url": null}],
        "job_title": "Director of Engineering",
        "teams": [{"id": "PQ9K7I8", "type": "team_reference", "summary": "Engineering",
            "self": "https://api.pagerduty.com/teams/PQ9K7I8",
            "html_url": "https://subdomain.pagerduty.com/teams/PQ9K7I8"}]
    })
}

/// The note of the `POST /incidents/{id}/notes` response example.
fn note(content: &str) -> Value {
    json!({
        "id": "PWL7QXS",
        "user": {"id": "PXPGF42", "type": "user_reference", "summary": "Earline Greenholt",
            "self": "https://api.pagerduty.com/users/PXPGF42",
            "html_url": "https://subdomain.pagerduty.com/users/PXPGF42"},
        "content": content,
        "created_at": "2013-03-06T15:28:51-05:00"
    })
}

fn header_of<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

// ---------------------------------------------------------------------------------------------
// Incidents
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn gets_an_incident_with_the_versioned_accept_header_and_no_from() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/incidents/PT4KHLK"))
        .and(auth())
        .and(header("accept", ACCEPT_V2))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(incident("acknowledged", Some(("P53ZZH5", "P2")))),
        )
        .expect(1)
        .mount(&server)
        .await;

    let incident = client(&server).get_incident("PT4KHLK").await.unwrap();
    assert_eq!(incident.id, "PT4KHLK");
    assert_eq!(incident.incident_number, Some(1234));
    assert_eq!(incident.status, Some(IncidentStatus::Acknowledged));
    assert_eq!(incident.priority_id(), Some("P53ZZH5"));
    assert_eq!(incident.assignee_ids().collect::<Vec<_>>(), ["PXPGF42"]);
    assert_eq!(
        incident.created_at,
        Some(time::macros::datetime!(2015-10-06 21:30:42 UTC))
    );
    assert_eq!(incident.service.unwrap().id, "PIJ90N7");

    // From is for writes only.
    let requests = server.received_requests().await.unwrap();
    assert_eq!(header_of(&requests[0], "from"), None);
}

#[tokio::test]
async fn acknowledges_with_the_documented_body_and_from() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/incidents/PT4KHLK"))
        .and(auth())
        .and(header("accept", ACCEPT_V2))
        .and(header("from", FROM))
        .and(header("content-type", "application/json"))
        // The request example of `PUT /incidents/{id}`.
        .and(body_json(
            json!({"incident": {"type": "incident_reference", "status": "acknowledged"}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(incident("acknowledged", None)))
        .expect(1)
        .mount(&server)
        .await;

    let incident = client(&server)
        .acknowledge_incident("PT4KHLK")
        .await
        .unwrap();
    assert_eq!(incident.status, Some(IncidentStatus::Acknowledged));
}

#[tokio::test]
async fn resolves_with_a_resolution() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/incidents/PT4KHLK"))
        .and(auth())
        .and(header("from", FROM))
        .and(body_json(
            json!({"incident": {"type": "incident_reference", "status": "resolved",
            "resolution": "Fixed in PROJ-12"}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(incident("resolved", None)))
        .expect(1)
        .mount(&server)
        .await;

    let incident = client(&server)
        .resolve_incident("PT4KHLK", Some("Fixed in PROJ-12"))
        .await
        .unwrap();
    assert_eq!(incident.status, Some(IncidentStatus::Resolved));
}

#[tokio::test]
async fn sets_a_priority_by_name_through_the_cached_paginated_priorities() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/priorities"))
        .and(auth())
        .and(query_param("limit", "100"))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(priorities_page(0)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/priorities"))
        .and(query_param("offset", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(priorities_page(2)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/incidents/PT4KHLK"))
        .and(header("from", FROM))
        .and(body_json(json!({"incident": {"type": "incident_reference",
            "priority": {"id": "PGE9YCZ", "type": "priority_reference"}}})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(incident("triggered", Some(("PGE9YCZ", "P3")))),
        )
        .expect(2)
        .mount(&server)
        .await;

    let pagerduty = client(&server);
    // P3 is on the second page.
    let incident = pagerduty
        .set_incident_priority("PT4KHLK", "p3")
        .await
        .unwrap();
    assert_eq!(incident.priority_id(), Some("PGE9YCZ"));
    // The second time the id comes from the cache: /priorities was read once (`expect`).
    pagerduty
        .set_incident_priority("PT4KHLK", "P3")
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unknown_priority_is_not_found_after_one_refresh() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/priorities"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"priorities": [], "limit": 25, "offset": 0, "more": false, "total": null}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let error = client(&server)
        .set_incident_priority("PT4KHLK", "P0")
        .await
        .unwrap_err();
    assert!(error.is_not_found(), "{error}");
    assert!(error.to_string().contains("P0"), "{error}");
}

#[tokio::test]
async fn sync_writes_only_what_differs_and_nothing_the_second_time() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/priorities"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"priorities": priorities_page(0)["priorities"], "limit": 25, "offset": 0, "more": false}),
        ))
        .mount(&server)
        .await;
    // First read: triggered, P2. Later reads: acknowledged, P1.
    Mock::given(method("GET"))
        .and(path("/incidents/PT4KHLK"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(incident("triggered", Some(("P53ZZH5", "P2")))),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/incidents/PT4KHLK"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(incident("acknowledged", Some(("PSLWBL8", "P1")))),
        )
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/incidents/PT4KHLK"))
        .and(body_json(
            json!({"incident": {"type": "incident_reference", "status": "acknowledged",
            "priority": {"id": "PSLWBL8", "type": "priority_reference"}}}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(incident("acknowledged", Some(("PSLWBL8", "P1")))),
        )
        .expect(1)
        .mount(&server)
        .await;

    let pagerduty = client(&server);
    let target = IncidentTarget {
        status: Some(StatusChange::Acknowledged),
        priority: Some("P1".into()),
    };
    let first = pagerduty.sync_incident("PT4KHLK", &target).await.unwrap();
    assert!(matches!(first, SyncOutcome::Updated { .. }), "{first:?}");
    let second = pagerduty.sync_incident("PT4KHLK", &target).await.unwrap();
    assert!(matches!(second, SyncOutcome::Unchanged(_)), "{second:?}");
    assert_eq!(second.incident().priority_id(), Some("PSLWBL8"));
}

#[tokio::test]
async fn sync_never_tries_to_acknowledge_a_resolved_incident() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/incidents/PT4KHLK"))
        .respond_with(ResponseTemplate::new(200).set_body_json(incident("resolved", None)))
        .mount(&server)
        .await;
    let target = IncidentTarget {
        status: Some(StatusChange::Acknowledged),
        priority: None,
    };
    let outcome = client(&server)
        .sync_incident("PT4KHLK", &target)
        .await
        .unwrap();
    assert!(matches!(outcome, SyncOutcome::Unchanged(_)));
    // No PUT was sent (only the GET matched a mock).
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Notes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn adds_a_note_with_the_documented_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/incidents/PT4KHLK/notes"))
        .and(auth())
        .and(header("accept", ACCEPT_V2))
        .and(header("from", FROM))
        // The request example of `POST /incidents/{id}/notes`.
        .and(body_json(
            json!({"note": {"content": "Firefighters are on the scene."}}),
        ))
        // PagerDuty documents 200 (not 201) for this call.
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"note": note("Firefighters are on the scene.")})),
        )
        .expect(1)
        .mount(&server)
        .await;

    let note = client(&server)
        .add_note("PT4KHLK", "Firefighters are on the scene.")
        .await
        .unwrap();
    assert_eq!(note.id.as_deref(), Some("PWL7QXS"));
    assert_eq!(note.user.unwrap().id, "PXPGF42");
    assert_eq!(
        note.created_at,
        Some(time::macros::datetime!(2013-03-06 15:28:51 -05:00))
    );
}

#[tokio::test]
async fn lists_notes_and_adds_a_marked_note_only_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/incidents/PT4KHLK/notes"))
        .and(auth())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"notes": [
            note("Firefighters are on the scene."),
            note("Linked to PROJ-12 [hookbridge:jira]"),
        ]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/incidents/PT4KHLK/notes"))
        .and(body_string_contains("[hookbridge:slack]"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"note": note("Posted to #ops\n[hookbridge:slack]")})),
        )
        .expect(1)
        .mount(&server)
        .await;

    let pagerduty = client(&server);
    assert_eq!(pagerduty.list_notes("PT4KHLK").await.unwrap().len(), 2);
    let (existing, created) = pagerduty
        .add_note_once(
            "PT4KHLK",
            "[hookbridge:jira]",
            "Linked to PROJ-12 [hookbridge:jira]",
        )
        .await
        .unwrap();
    assert!(!created);
    assert!(existing.content.contains("PROJ-12"));
    let (_, created) = pagerduty
        .add_note_once("PT4KHLK", "[hookbridge:slack]", "Posted to #ops")
        .await
        .unwrap();
    assert!(created);
}

// ---------------------------------------------------------------------------------------------
// Log entries
// ---------------------------------------------------------------------------------------------

fn log_query() -> LogEntryQuery {
    LogEntryQuery {
        since: Some(time::macros::datetime!(2015-11-07 00:00 UTC)),
        until: Some(time::macros::datetime!(2015-11-08 00:00 UTC)),
        is_overview: true,
        include: vec![LogEntryInclude::Incidents],
        time_zone: None,
    }
}

async fn mount_log_pages(server: &MockServer, log_path: &str) {
    Mock::given(method("GET"))
        .and(path(log_path))
        .and(auth())
        .and(header("accept", ACCEPT_V2))
        .and(query_param("since", "2015-11-07T00:00:00Z"))
        .and(query_param("until", "2015-11-08T00:00:00Z"))
        .and(query_param("is_overview", "true"))
        .and(query_param("include[]", "incidents"))
        .and(query_param("limit", "100"))
        .and(query_param("offset", "0"))
        .and(query_param_is_missing("time_zone"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "log_entries": [
                log_entry("Q02JTSNZWHSEKV", "trigger_log_entry", "2015-11-07T00:14:20Z", service_agent()),
                log_entry("Q1R2DLCB21K7NP", "acknowledge_log_entry", "2015-11-07T00:15:02Z", user_agent()),
            ],
            "limit": 2, "offset": 0, "more": true
        })))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(log_path))
        .and(query_param("since", "2015-11-07T00:00:00Z"))
        .and(query_param("include[]", "incidents"))
        .and(query_param("offset", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "log_entries": [
                log_entry("Q3HAGH2MDC1NCY", "priority_change_log_entry", "2015-11-07T00:20:00Z", user_agent()),
            ],
            "limit": 2, "offset": 2, "more": false
        })))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn streams_account_log_entries_across_pages() {
    let server = MockServer::start().await;
    mount_log_pages(&server, "/log_entries").await;

    let entries: Vec<_> = client(&server)
        .log_entries(&log_query())
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<_> = entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["Q02JTSNZWHSEKV", "Q1R2DLCB21K7NP", "Q3HAGH2MDC1NCY"]);
    assert_eq!(entries[0].kind, LogEntryType::Trigger);
    assert!(!entries[0].by_user());
    assert_eq!(entries[1].kind, LogEntryType::Acknowledge);
    assert!(entries[1].by_user());
    assert_eq!(entries[1].incident_id(), Some("PT4KHLK"));
    assert_eq!(
        entries[0].channel.as_ref().unwrap().kind.as_deref(),
        Some("api")
    );
    assert_eq!(
        entries[0].created_at,
        time::macros::datetime!(2015-11-07 00:14:20 UTC)
    );
    // A type this crate does not know is kept.
    assert_eq!(
        entries[2].kind,
        LogEntryType::Other("priority_change_log_entry".into())
    );
}

#[tokio::test]
async fn streams_one_incidents_log_entries_across_pages() {
    let server = MockServer::start().await;
    mount_log_pages(&server, "/incidents/PT4KHLK/log_entries").await;

    let entries: Vec<_> = client(&server)
        .incident_log_entries("PT4KHLK", &log_query())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(entries.len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn gets_a_user() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users/PXPGF42"))
        .and(auth())
        .and(header("accept", ACCEPT_V2))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "user": user("PXPGF42", "Earline Greenholt", "125.greenholt.earline@graham.name")
        })))
        .expect(1)
        .mount(&server)
        .await;
    let user = client(&server).get_user("PXPGF42").await.unwrap();
    assert_eq!(user.name.as_deref(), Some("Earline Greenholt"));
    assert_eq!(user.role.as_deref(), Some("admin"));
    assert_eq!(user.teams[0].id, "PQ9K7I8");
}

#[tokio::test]
async fn lists_users_across_pages_and_finds_one_by_exact_email() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users"))
        .and(auth())
        .and(query_param("query", "kyler.kuhn@beahan.name"))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            // The query also matches other addresses: the exact match must be chosen.
            "users": [user("PXPGF42", "Earline Greenholt", "kyler.kuhn@beahan.name.example")],
            "limit": 1, "offset": 0, "more": true, "total": null
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/users"))
        .and(query_param("query", "kyler.kuhn@beahan.name"))
        .and(query_param("offset", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "users": [user("PAM4FGS", "Kyler Kuhn", "Kyler.Kuhn@beahan.name")],
            "limit": 1, "offset": 1, "more": false, "total": null
        })))
        .mount(&server)
        .await;

    let pagerduty = client(&server);
    let users: Vec<_> = pagerduty
        .list_users(Some("kyler.kuhn@beahan.name"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(users.len(), 2);
    let found = pagerduty
        .find_user_by_email("kyler.kuhn@beahan.name")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, "PAM4FGS");
}

// ---------------------------------------------------------------------------------------------
// Errors and retries
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unauthorized_is_typed_retried_once_and_never_shows_the_key() {
    let server = MockServer::start().await;
    Mock::given(path("/incidents/PT4KHLK"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"error": {"message": "Authentication failed", "code": 2006}}),
            ),
        )
        .mount(&server)
        .await;
    let error = client(&server).get_incident("PT4KHLK").await.unwrap_err();
    assert!(matches!(error, ApiError::Unauthorized { .. }), "{error}");
    assert!(
        error.to_string().contains("Authentication failed"),
        "{error}"
    );
    assert!(!error.to_string().contains(KEY));
    assert!(!format!("{error:?}").contains(KEY));
    // One retry after invalidating the credentials.
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn not_found_carries_the_service_message() {
    let server = MockServer::start().await;
    Mock::given(path("/incidents/PNOTHERE"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"error": {"message": "Not Found", "code": 2100}})),
        )
        .mount(&server)
        .await;
    let error = client(&server).get_incident("PNOTHERE").await.unwrap_err();
    assert!(error.is_not_found(), "{error}");
    assert!(error.to_string().contains("Not Found"));
}

#[tokio::test]
async fn rate_limited_with_retry_after_is_returned_for_the_engine() {
    let server = MockServer::start().await;
    // The 429 of PagerDuty's rate limit documentation, with a Retry-After.
    Mock::given(path("/incidents/PT4KHLK"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "60")
                .insert_header("ratelimit-limit", "960")
                .insert_header("ratelimit-remaining", "0")
                .insert_header("ratelimit-reset", "20")
                .set_body_json(json!({"error": {"message": "Rate Limit Exceeded", "code": 2020}})),
        )
        .mount(&server)
        .await;
    let error = client(&server).get_incident("PT4KHLK").await.unwrap_err();
    assert!(matches!(error, ApiError::RateLimited { .. }), "{error}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(60)));
    // Longer than the client waits itself: not retried here.
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_server_error_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(path("/incidents/PT4KHLK"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/incidents/PT4KHLK"))
        .and(auth())
        .respond_with(ResponseTemplate::new(200).set_body_json(incident("triggered", None)))
        .mount(&server)
        .await;
    let incident = client(&server).get_incident("PT4KHLK").await.unwrap();
    assert_eq!(incident.status, Some(IncidentStatus::Triggered));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_failing_page_fails_the_stream() {
    let server = MockServer::start().await;
    Mock::given(path("/log_entries"))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "log_entries": [log_entry("Q02JTSNZWHSEKV", "trigger_log_entry", "2015-11-07T00:14:20Z", service_agent())],
            "limit": 1, "offset": 0, "more": true
        })))
        .mount(&server)
        .await;
    Mock::given(path("/log_entries"))
        .and(query_param("offset", "1"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Invalid Input Provided", "code": 2001,
            "errors": ["Offset must be less than 10000."]}})))
        .mount(&server)
        .await;
    let result: Result<Vec<_>, _> = client(&server)
        .log_entries(&LogEntryQuery::default())
        .try_collect()
        .await;
    let error = result.unwrap_err();
    assert!(
        matches!(error, ApiError::Validation { status: 400, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn oauth_tokens_are_sent_as_bearer() {
    let server = MockServer::start().await;
    Mock::given(path("/users/PXPGF42"))
        .and(header("authorization", "Bearer pdus+_0XBPWQQ_user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "user": user("PXPGF42", "Earline Greenholt", "125.greenholt.earline@graham.name")
        })))
        .expect(1)
        .mount(&server)
        .await;
    let mut settings = settings(&server);
    settings.credentials = PagerdutyCredentials::OAuthToken(Secret::new("pdus+_0XBPWQQ_user"));
    let pagerduty = PagerdutyClient::from_settings(settings).unwrap();
    pagerduty.get_user("PXPGF42").await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// App OAuth tokens (client credentials)
// ---------------------------------------------------------------------------------------------

fn app_settings(server: &MockServer) -> PagerdutySettings {
    let mut settings = settings(server);
    settings.credentials = PagerdutyCredentials::App(AppCredentials {
        client_id: "client-1".into(),
        client_secret: Secret::new("app-secret-value"),
        account: "us.companysubdomain".into(),
        scopes: vec!["incidents.read".into(), "services.read".into()],
        token_url: format!("{}/oauth/token", server.uri()),
    });
    settings
}

#[tokio::test]
async fn app_tokens_are_fetched_once_cached_and_refetched_after_a_401() {
    let server = MockServer::start().await;
    // The request and answer of "Obtaining an App OAuth Token".
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("client_id=client-1"))
        .and(body_string_contains("client_secret=app-secret-value"))
        .and(body_string_contains(
            "scope=as_account-us.companysubdomain+incidents.read+services.read",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "pdus+_0XBPWQQ_dfd3c718-4a46-400d-a8ec-45bab1fd417e",
            "scope": "as_account-us.companysubdomain incidents.read services.read",
            "token_type": "bearer",
            "expires_in": 2592000
        })))
        .expect(2)
        .mount(&server)
        .await;
    // The first incident read is refused once (an expired token): the token is dropped and
    // fetched again before the one retry.
    Mock::given(path("/incidents/PT4KHLK"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"error": {"message": "Authentication failed", "code": 2006}}),
            ),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/incidents/PT4KHLK"))
        .and(header(
            "authorization",
            "Bearer pdus+_0XBPWQQ_dfd3c718-4a46-400d-a8ec-45bab1fd417e",
        ))
        .and(header("accept", ACCEPT_V2))
        .respond_with(ResponseTemplate::new(200).set_body_json(incident("triggered", None)))
        .mount(&server)
        .await;

    let pagerduty = PagerdutyClient::from_settings(app_settings(&server)).unwrap();
    pagerduty.get_incident("PT4KHLK").await.unwrap();
    // Cached: no third token request (`expect(2)`).
    pagerduty.get_incident("PT4KHLK").await.unwrap();
    pagerduty.get_incident("PT4KHLK").await.unwrap();
}

#[tokio::test]
async fn a_refused_app_token_is_unauthorized_without_the_secret() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
        ))
        .mount(&server)
        .await;
    let pagerduty = PagerdutyClient::from_settings(app_settings(&server)).unwrap();
    let error = pagerduty.get_incident("PT4KHLK").await.unwrap_err();
    assert!(matches!(error, ApiError::Unauthorized { .. }), "{error}");
    assert!(error.to_string().contains("invalid_client"), "{error}");
    assert!(!error.to_string().contains("app-secret-value"));
    // No API request was made without a token.
    let requests = server.received_requests().await.unwrap();
    assert!(requests.iter().all(|r| r.url.path() == "/oauth/token"));
}

#[tokio::test]
async fn a_short_lived_app_token_is_renewed_before_it_expires() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "pdus+_short", "token_type": "bearer", "expires_in": 2
        })))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path("/users/PXPGF42"))
        .and(header("authorization", "Bearer pdus+_short"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "user": user("PXPGF42", "Earline Greenholt", "125.greenholt.earline@graham.name")
        })))
        .mount(&server)
        .await;
    let pagerduty = PagerdutyClient::from_settings(app_settings(&server)).unwrap();
    pagerduty.get_user("PXPGF42").await.unwrap();
    pagerduty.get_user("PXPGF42").await.unwrap();
    // Renewed at half its 2 s lifetime.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    pagerduty.get_user("PXPGF42").await.unwrap();
}

#[tokio::test]
async fn streams_account_log_entries_as_json_across_pages() {
    let server = MockServer::start().await;
    mount_log_pages(&server, "/log_entries").await;

    let entries: Vec<Value> = client(&server)
        .log_entries_json(&log_query())
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<_> = entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["Q02JTSNZWHSEKV", "Q1R2DLCB21K7NP", "Q3HAGH2MDC1NCY"]);
    // Fields the typed entry drops are kept.
    assert_eq!(entries[0]["channel"], json!({"type": "api"}));
    assert_eq!(
        entries[2]["event_details"]["description"],
        "Tasks::SFDCValidator - PD_Data__c - duplicates"
    );
}
