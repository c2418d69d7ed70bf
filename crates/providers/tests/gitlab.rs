//! The GitLab provider end to end: every sample signs, verifies, identifies and parses to its
//! typed variant; the typed fields of each sample; forward compatibility and error rules of
//! `GitlabEvent::from_json`; token verification and deduplication keys through the public API.
#![cfg(feature = "gitlab")]

use hookbridge_core::{Provider, RawDelivery, Secret, SignedDelivery, VerifyError};
use hookbridge_providers::gitlab::events::*;
use hookbridge_providers::gitlab::{Gitlab, GitlabOptions, SAMPLES};
use time::OffsetDateTime;

const SECRET: &str = "gl-webhook-secret-token";
const PROJECT: &str = "acme/platform/checkout-api";

fn provider() -> Gitlab {
    Gitlab::new(vec![Secret::new(SECRET)], GitlabOptions::default()).unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_717_600_000).unwrap()
}

fn received(signed: &SignedDelivery) -> RawDelivery {
    RawDelivery::new("gitlab", signed.headers.clone(), signed.body.clone())
}

fn sample(name: &str) -> (&'static str, &'static str) {
    let s = SAMPLES
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no sample {name}"));
    (s.event_type, s.json)
}

fn typed(name: &str) -> GitlabEvent {
    let (header, json) = sample(name);
    let event = GitlabEvent::from_json(header, json.as_bytes()).unwrap();
    if let GitlabEvent::Untyped(u) = &event {
        panic!("{name}: untyped, reason {:?}", u.reason);
    }
    event
}

fn unix(t: Option<OffsetDateTime>) -> Option<i64> {
    t.map(|t| t.unix_timestamp())
}

#[test]
fn every_sample_goes_the_whole_path() {
    let expected = [
        ("issue.open", "Issue Hook", "#12", "mkrystof"),
        ("issue.close", "Issue Hook", "#12", "toliveira"),
        (
            "merge_request.open",
            "Merge Request Hook",
            "!34",
            "toliveira",
        ),
        (
            "merge_request.merge",
            "Merge Request Hook",
            "!34",
            "mkrystof",
        ),
        (
            "note.create",
            "Note Hook",
            "#12",
            "project_4821_bot_9d2e7f1a4c",
        ),
        ("note.update", "Note Hook", "!34", "mkrystof"),
        ("push", "Push Hook", "@refs/heads/main", "mkrystof"),
        (
            "pipeline.success",
            "Pipeline Hook",
            "/pipeline/771203",
            "mkrystof",
        ),
        (
            "pipeline.failed",
            "Pipeline Hook",
            "/pipeline/771155",
            "toliveira",
        ),
    ];
    assert_eq!(SAMPLES.len(), expected.len());
    let gitlab = provider();
    for (sample, (name, header, subject, actor)) in SAMPLES.iter().zip(expected) {
        assert_eq!((sample.name, sample.event_type), (name, header));
        let key = format!("key-{name}");
        let signed = gitlab
            .sign(sample.event_type, sample.json.as_bytes(), &key, now())
            .unwrap();
        let delivery = received(&signed);
        gitlab.verify(&delivery).unwrap();
        let identity = gitlab.identify(&delivery).unwrap();
        assert_eq!(identity.delivery_id.as_str(), key);
        assert_eq!(identity.event_type, header);
        let event = gitlab.parse(&delivery).unwrap();
        assert_eq!(event.name().as_str(), name);
        assert_eq!(
            event.subject().unwrap().as_str(),
            format!("gitlab:{PROJECT}{subject}")
        );
        assert_eq!(event.actor().unwrap().name, actor, "{name}");
        assert!(event.occurred_at().is_some(), "{name}");
        let payload = event.payload::<GitlabEvent>().unwrap();
        assert!(
            !matches!(payload, GitlabEvent::Untyped(_)),
            "{name}: untyped"
        );
        assert_eq!(payload.name(), name);
        assert_eq!(payload.project().unwrap().path_with_namespace, PROJECT);
    }
}

#[test]
fn samples_are_on_disk() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/gitlab");
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), SAMPLES.len());
}

#[test]
fn issue_open() {
    let event = typed("issue.open");
    let GitlabEvent::Issue(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.object_kind, "issue");
    assert_eq!(e.event_type.as_deref(), Some("issue"));
    let issue = &e.object_attributes;
    assert_eq!((issue.id, issue.iid), (90211, 12));
    assert_eq!(issue.action, Some(IssueAction::Open));
    assert_eq!(issue.state.as_deref(), Some("opened"));
    assert_eq!(issue.kind.as_deref(), Some("Issue"));
    assert_eq!(issue.assignee_ids, [63]);
    let labels: Vec<&str> = e.labels.iter().map(|l| l.title.as_str()).collect();
    assert_eq!(labels, ["bug", "incident::p1"]);
    assert_eq!(e.labels[1].kind.as_deref(), Some("GroupLabel"));
    assert_eq!(e.assignees[0].username, "toliveira");
    assert_eq!(
        e.user.as_ref().unwrap().email.as_deref(),
        Some("[REDACTED]")
    );
    assert_eq!(e.changes["iid"].current, 12);
    assert!(e.changes["iid"].previous.is_null());
    // "2024-06-05 08:41:02 UTC"
    assert_eq!(unix(issue.created_at), Some(1717576862));
    assert_eq!(unix(event.updated_at()), Some(1717576862));
}

#[test]
fn issue_close() {
    let event = typed("issue.close");
    let GitlabEvent::Issue(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.object_attributes.action, Some(IssueAction::Close));
    assert_eq!(e.object_attributes.state.as_deref(), Some("closed"));
    assert_eq!(e.changes["state_id"].previous, 1);
    assert_eq!(e.changes["state_id"].current, 2);
    // "2024-06-05 10:12:55 UTC"
    assert_eq!(unix(e.object_attributes.closed_at), Some(1717582375));
    assert_eq!(unix(event.updated_at()), Some(1717582375));
}

#[test]
fn merge_request_open() {
    let event = typed("merge_request.open");
    let GitlabEvent::MergeRequest(e) = &event else {
        panic!("{event:?}")
    };
    let mr = &e.object_attributes;
    assert_eq!(mr.action, Some(MergeRequestAction::Open));
    assert_eq!((mr.id, mr.iid), (152734, 34));
    assert_eq!(mr.source_branch, "fix/eu-gateway-timeout");
    assert_eq!(mr.target_branch, "main");
    assert_eq!(mr.draft, Some(false));
    assert_eq!(mr.reviewer_ids, [57]);
    assert_eq!(mr.detailed_merge_status.as_deref(), Some("checking"));
    let commit = mr.last_commit.as_ref().unwrap();
    assert_eq!(commit.id, "c9e4b2f7a1d35e8b6f0a9c2d4e7b1a3f5c8d0e2b");
    // "2024-06-05T11:02:31+02:00"
    assert_eq!(unix(commit.timestamp), Some(1717578151));
    assert_eq!(e.reviewers[0].username, "mkrystof");
    assert_eq!(e.changes["merge_status"].current, "checking");
}

#[test]
fn merge_request_merge() {
    let event = typed("merge_request.merge");
    let GitlabEvent::MergeRequest(e) = &event else {
        panic!("{event:?}")
    };
    let mr = &e.object_attributes;
    assert_eq!(mr.action, Some(MergeRequestAction::Merge));
    assert_eq!(mr.state.as_deref(), Some("merged"));
    assert_eq!(
        mr.merge_commit_sha.as_deref(),
        Some("5f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6")
    );
    assert_eq!(unix(event.updated_at()), Some(1717582374));
}

#[test]
fn note_on_an_issue_by_a_project_bot() {
    let event = typed("note.create");
    let GitlabEvent::Note(e) = &event else {
        panic!("{event:?}")
    };
    let note = &e.object_attributes;
    assert_eq!(note.action, Some(NoteAction::Create));
    assert_eq!(note.noteable_type, NoteableType::Issue);
    assert_eq!(note.noteable_id, Some(90211));
    assert!(note.note.starts_with("Synced from Jira OPS-12"));
    assert_eq!(note.system, Some(false));
    assert_eq!(e.issue.as_ref().unwrap().iid, 12);
    assert!(e.merge_request.is_none());
    // The bot user of a project access token: hookbridge's own writes look like this.
    assert!(event.actor().unwrap().is_bot());
    let parsed = provider()
        .parse(&received(
            &provider()
                .sign("Note Hook", sample("note.create").1.as_bytes(), "k", now())
                .unwrap(),
        ))
        .unwrap();
    let actor = parsed.actor().unwrap();
    assert!(actor.is_bot);
    assert_eq!(actor.id.as_deref(), Some("311"));
}

#[test]
fn note_edited_on_a_merge_request() {
    let event = typed("note.update");
    let GitlabEvent::Note(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.object_attributes.action, Some(NoteAction::Update));
    assert_eq!(
        e.object_attributes.noteable_type,
        NoteableType::MergeRequest
    );
    assert_eq!(e.merge_request.as_ref().unwrap().iid, 34);
    assert!(!event.actor().unwrap().is_bot());
    // "2024-06-05 09:41:13 UTC"
    assert_eq!(unix(event.updated_at()), Some(1717580473));
}

#[test]
fn push() {
    let event = typed("push");
    let GitlabEvent::Push(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.ref_name, "refs/heads/main");
    assert_eq!(e.ref_protected, Some(true));
    assert_eq!(e.commits.len(), 2);
    assert_eq!(e.total_commits_count, Some(2));
    assert!(!e.created() && !e.deleted());
    let head = e.head_commit().unwrap();
    assert_eq!(head.id, e.after);
    assert_eq!(head.modified, ["config/gateways/eu.yml"]);
    let actor = event.actor().unwrap();
    assert_eq!((actor.id, actor.username.as_str()), (Some(57), "mkrystof"));
    // Head commit "2024-06-05T10:12:54+00:00".
    assert_eq!(unix(event.updated_at()), Some(1717582374));
}

#[test]
fn pipelines() {
    let event = typed("pipeline.success");
    let GitlabEvent::Pipeline(e) = &event else {
        panic!("{event:?}")
    };
    let p = &e.object_attributes;
    assert_eq!(p.status, PipelineStatus::Success);
    assert_eq!(p.ref_name.as_deref(), Some("main"));
    assert_eq!(p.stages, ["build", "test", "deploy"]);
    assert_eq!(p.duration, Some(508.0));
    assert!(e.merge_request.is_none());
    assert_eq!(e.builds.len(), 3);
    assert!(e.builds.iter().all(|b| b.status == PipelineStatus::Success));
    // finished_at "2024-06-05 10:21:40 UTC"
    assert_eq!(unix(event.updated_at()), Some(1717582900));

    let event = typed("pipeline.failed");
    let GitlabEvent::Pipeline(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.object_attributes.status, PipelineStatus::Failed);
    assert_eq!(
        e.object_attributes.source.as_deref(),
        Some("merge_request_event")
    );
    assert_eq!(e.merge_request.as_ref().unwrap().iid, 34);
    let failed = e
        .builds
        .iter()
        .find(|b| b.status == PipelineStatus::Failed)
        .unwrap();
    assert_eq!(failed.failure_reason.as_deref(), Some("script_failure"));
    assert_eq!(failed.name.as_deref(), Some("unit"));
}

#[test]
fn other_noteables_and_work_items() {
    let project = r#""project":{"id":5,"path_with_namespace":"g/p","web_url":"https://x/g/p"}"#;
    let commit_note = format!(
        r#"{{"object_kind":"note",{project},"user":{{"username":"root"}},
        "object_attributes":{{"id":1243,"note":"n","noteable_type":"Commit","noteable_id":null,
          "commit_id":"cfe32cf61b73a0d5e9f13e774abde7ff789b1660"}},
        "commit":{{"id":"cfe32cf61b73a0d5e9f13e774abde7ff789b1660","timestamp":"2015-04-08T21: 00:25-07:00"}}}}"#
    );
    let event = GitlabEvent::from_json("Note Hook", commit_note.as_bytes()).unwrap();
    assert_eq!(event.name(), "note");
    assert_eq!(
        event.subject().as_deref(),
        Some("gitlab:g/p/commit/cfe32cf61b73a0d5e9f13e774abde7ff789b1660")
    );
    // GitLab's own documentation has this broken timestamp: it reads as None.
    let GitlabEvent::Note(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.commit.as_ref().unwrap().timestamp, None);

    let snippet_note = format!(
        r#"{{"object_kind":"note",{project},"object_attributes":{{"id":1245,"note":"n",
        "noteable_type":"Snippet","noteable_id":53}},"snippet":{{"id":53,"title":"t"}}}}"#
    );
    let event = GitlabEvent::from_json("Note Hook", snippet_note.as_bytes()).unwrap();
    assert_eq!(event.subject().as_deref(), Some("gitlab:g/p/snippet/53"));
    assert!(event.actor().is_none());

    let epic = r#"{"object_kind":"work_item","event_type":"work_item","user":{"username":"root"},
        "object_attributes":{"id":777,"iid":3,"title":"Epic","type":"Epic","action":"reopen"}}"#;
    let event = GitlabEvent::from_json("Issue Hook", epic.as_bytes()).unwrap();
    assert_eq!(event.name(), "work_item.reopen");
    assert_eq!(event.subject().as_deref(), Some("gitlab:work_item/777"));

    let task = format!(
        r#"{{"object_kind":"work_item",{project},"object_attributes":{{"id":9,"iid":41,
        "title":"Task","type":"Task","action":"update"}}}}"#
    );
    let event = GitlabEvent::from_json("Issue Hook", task.as_bytes()).unwrap();
    assert_eq!(event.subject().as_deref(), Some("gitlab:g/p#41"));
}

#[test]
fn confidential_and_system_hooks_are_typed_by_object_kind() {
    let (_, issue) = sample("issue.open");
    let event = GitlabEvent::from_json("Confidential Issue Hook", issue.as_bytes()).unwrap();
    assert_eq!(event.name(), "issue.open");
    let (_, note) = sample("note.create");
    let event = GitlabEvent::from_json("Confidential Note Hook", note.as_bytes()).unwrap();
    assert!(matches!(event, GitlabEvent::Note(_)));
    let (_, push) = sample("push");
    let event = GitlabEvent::from_json("System Hook", push.as_bytes()).unwrap();
    assert!(matches!(event, GitlabEvent::Push(_)));
}

#[test]
fn unknown_event_is_untyped_and_kept() {
    let json = br#"{"object_kind":"wiki_page","user":{"id":1,"username":"root"},
        "project":{"id":1,"path_with_namespace":"root/awesome-project","web_url":"http://x"},
        "object_attributes":{"title":"Awesome","slug":"awesome","action":"create"}}"#;
    let event = GitlabEvent::from_json("Wiki Page Hook", json).unwrap();
    let GitlabEvent::Untyped(u) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(u.event, "Wiki Page Hook");
    assert_eq!(u.object_kind.as_deref(), Some("wiki_page"));
    assert_eq!(u.action.as_deref(), Some("create"));
    assert_eq!(u.reason, None);
    assert_eq!(u.payload["object_attributes"]["slug"], "awesome");
    assert_eq!(event.name(), "wiki_page.create");
    assert_eq!(
        event.subject().as_deref(),
        Some("gitlab:root/awesome-project")
    );
    assert_eq!(event.actor().unwrap().username, "root");
    assert_eq!(event.updated_at(), None);

    // Tag pushes are untyped, with the pusher still known.
    let tag = br#"{"object_kind":"tag_push","ref":"refs/tags/v1.0.0","user_id":1,
        "user_name":"John Smith","user_username":"jsmith",
        "project":{"path_with_namespace":"jsmith/example","web_url":"http://x"}}"#;
    let event = GitlabEvent::from_json("Tag Push Hook", tag).unwrap();
    assert_eq!(event.name(), "tag_push");
    assert_eq!(event.actor().unwrap().username, "jsmith");

    // System hooks name their event in `event_name`; no object kind at all: the header.
    let system = br#"{"event_name":"project_create","name":"x"}"#;
    assert_eq!(
        GitlabEvent::from_json("System Hook", system)
            .unwrap()
            .name(),
        "project_create"
    );
    let bare = GitlabEvent::from_json("Emoji Hook", b"{}").unwrap();
    assert_eq!(bare.name(), "Emoji Hook");
    assert_eq!(bare.subject(), None);
    assert!(bare.actor().is_none());
}

#[test]
fn unknown_event_through_the_provider() {
    let gitlab = provider();
    let json = br#"{"object_kind":"deployment","status":"success","deployment_id":15,
        "project":{"path_with_namespace":"acme/platform/checkout-api","web_url":"http://x"}}"#;
    let signed = gitlab.sign("Deployment Hook", json, "d-1", now()).unwrap();
    let event = gitlab.parse(&received(&signed)).unwrap();
    assert_eq!(event.name().as_str(), "deployment");
    assert_eq!(
        event.subject().unwrap().as_str(),
        "gitlab:acme/platform/checkout-api"
    );
    assert!(matches!(
        event.payload::<GitlabEvent>(),
        Some(GitlabEvent::Untyped(_))
    ));
}

#[test]
fn unknown_fields_and_values() {
    let json = br#"{"object_kind":"merge_request","brand_new":[1,{"x":null}],
        "project":{"path_with_namespace":"g/p","web_url":"https://x/g/p","new":true},
        "object_attributes":{"id":1,"iid":2,"title":"t","source_branch":"a","target_branch":"b",
          "action":"auto_merge_enabled","labels":null,"updated_at":"someday","future":{"a":1}},
        "changes":null,"assignees":null}"#;
    let event = GitlabEvent::from_json("Merge Request Hook", json).unwrap();
    let GitlabEvent::MergeRequest(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(
        e.object_attributes.action,
        Some(MergeRequestAction::Other("auto_merge_enabled".into()))
    );
    assert_eq!(event.name(), "merge_request.auto_merge_enabled");
    assert!(
        e.object_attributes.labels.is_empty() && e.changes.is_empty() && e.assignees.is_empty()
    );
    assert_eq!(event.updated_at(), None);
    let value = serde_json::to_value(&event).unwrap();
    assert_eq!(value["event"], "merge_request");
    assert_eq!(
        value["payload"]["object_attributes"]["action"],
        "auto_merge_enabled"
    );

    let json = br#"{"object_kind":"pipeline","project":{"path_with_namespace":"g/p","web_url":"u"},
        "object_attributes":{"id":7,"status":"teleporting"}}"#;
    let event = GitlabEvent::from_json("Pipeline Hook", json).unwrap();
    assert_eq!(event.name(), "pipeline.teleporting");
}

#[test]
fn wrong_shape_of_known_event_is_untyped_with_reason() {
    let json = br#"{"object_kind":"merge_request","project":{"path_with_namespace":"g/p","web_url":"u"},
        "object_attributes":{"id":1,"iid":"two","title":"t","source_branch":"a","target_branch":"b","action":"open"}}"#;
    let event = GitlabEvent::from_json("Merge Request Hook", json).unwrap();
    let GitlabEvent::Untyped(u) = &event else {
        panic!("{event:?}")
    };
    assert!(
        u.reason.as_deref().unwrap().contains("invalid type"),
        "{:?}",
        u.reason
    );
    assert_eq!(event.name(), "merge_request.open");
    assert_eq!(event.subject().as_deref(), Some("gitlab:g/p"));

    let event = GitlabEvent::from_json("Push Hook", br#"{"object_kind":"push"}"#).unwrap();
    let GitlabEvent::Untyped(u) = &event else {
        panic!("{event:?}")
    };
    assert!(u.reason.is_some());

    let event = GitlabEvent::from_json("Push Hook", br#"{"object_kind":5}"#).unwrap();
    assert!(matches!(
        event,
        GitlabEvent::Untyped(UntypedEvent {
            reason: Some(_),
            ..
        })
    ));
}

#[test]
fn malformed_or_non_object_json_is_an_error() {
    for json in [
        &br#"{"object_kind":"push","ref":"#[..],
        br#"{"object_kind":"push",}"#,
        br#"{"object_kind":"wiki_page"} {}"#,
        b"",
        b"[]",
        b"\"push\"",
        b"null",
    ] {
        assert!(
            GitlabEvent::from_json("Push Hook", json).is_err(),
            "{:?}",
            String::from_utf8_lossy(json)
        );
    }
    let gitlab = provider();
    let delivery = received(
        &gitlab
            .sign("Push Hook", b"{\"object_kind\":", "m", now())
            .unwrap(),
    );
    gitlab.verify(&delivery).unwrap();
    assert!(gitlab.identify(&delivery).is_err());
    assert!(gitlab.parse(&delivery).is_err());
}

#[test]
fn verification_through_the_provider() {
    let (header, json) = sample("push");
    let signed = provider()
        .sign(header, json.as_bytes(), "v", now())
        .unwrap();
    // Wrong token.
    let other = Gitlab::new(vec![Secret::new("other-token")], GitlabOptions::default()).unwrap();
    assert!(matches!(
        other.verify(&received(&signed)),
        Err(VerifyError::Mismatch { .. })
    ));
    // Rotation.
    let rotating = Gitlab::new(
        vec![Secret::new("new-token"), Secret::new(SECRET)],
        GitlabOptions::default(),
    )
    .unwrap();
    assert_eq!(rotating.verify(&received(&signed)).unwrap().secret_index, 1);
    // Missing token.
    let mut missing = received(&signed);
    missing.headers.remove("x-gitlab-token");
    assert!(matches!(
        provider().verify(&missing),
        Err(VerifyError::MissingSignature { .. })
    ));
}

#[test]
fn deduplication_keys() {
    let gitlab = provider();
    let (header, json) = sample("issue.open");
    let signed = gitlab
        .sign(header, json.as_bytes(), "idem-1", now())
        .unwrap();
    // A retry carries the same Idempotency-Key, whatever the per-request UUIDs say.
    let mut retry = received(&signed);
    retry
        .headers
        .insert("x-gitlab-webhook-uuid", "another-request".parse().unwrap());
    retry
        .headers
        .insert("x-gitlab-event-uuid", "another-event".parse().unwrap());
    assert_eq!(
        gitlab.identify(&retry).unwrap().delivery_id,
        gitlab.identify(&received(&signed)).unwrap().delivery_id
    );
    // Without Idempotency-Key (GitLab < 17.4): the body hash, the same for a retry.
    let mut old = received(&signed);
    old.headers.remove("idempotency-key");
    let key = gitlab.identify(&old).unwrap().delivery_id;
    assert!(key.as_str().starts_with("sha256:"), "{key}");
    old.headers
        .insert("x-gitlab-event-uuid", "yet-another-event".parse().unwrap());
    assert_eq!(gitlab.identify(&old).unwrap().delivery_id, key);
}

#[test]
fn build_from_toml_options() {
    let gitlab = Gitlab::new(
        vec![Secret::new(SECRET)],
        toml::Table::new().try_into().unwrap(),
    )
    .unwrap();
    assert_eq!(gitlab.kind().as_str(), "gitlab");
    assert!(!format!("{gitlab:?}").contains(SECRET));
}
