//! The Jira provider end to end: every sample signs, verifies, identifies and parses to its
//! typed variant; the typed fields of each sample; forward compatibility and error rules of
//! `JiraEvent::from_json`; signed and unsigned (URL token) endpoints through the public API.
#![cfg(feature = "jira")]

use hookbridge_core::{Provider, RawDelivery, Secret, SignedDelivery, VerifyError};
use hookbridge_providers::jira::events::*;
use hookbridge_providers::jira::{Jira, JiraOptions, SAMPLES};
use time::OffsetDateTime;

const SECRET: &str = "jira-webhook-secret";
const TOKEN: &str = "Zq3-yT8_uW1.kP5~nR7sV2xL";

fn signed_provider() -> Jira {
    Jira::new(vec![Secret::new(SECRET)], JiraOptions::default()).unwrap()
}

fn unsigned_provider() -> Jira {
    Jira::new(
        vec![],
        JiraOptions {
            unsigned: true,
            token: Some(Secret::new(TOKEN)),
        },
    )
    .unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_717_600_000).unwrap()
}

/// What the server receives for a signed delivery.
fn received(signed: &SignedDelivery) -> RawDelivery {
    let mut d = RawDelivery::new("jira", signed.headers.clone(), signed.body.clone());
    d.uri = match &signed.query {
        Some(q) => format!("/hooks/jira?{q}").parse().unwrap(),
        None => "/hooks/jira".parse().unwrap(),
    };
    d
}

fn sample(name: &str) -> &'static str {
    SAMPLES
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no sample {name}"))
        .json
}

fn typed(name: &str) -> JiraEvent {
    let event = JiraEvent::from_json(sample(name).as_bytes()).unwrap();
    if let JiraEvent::Untyped(u) = &event {
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
        ("jira:issue_created", "jira:OPS-12", Some("Mia Krystof")),
        ("jira:issue_updated", "jira:OPS-12", Some("Mia Krystof")),
        ("jira:issue_deleted", "jira:OPS-9", Some("John Smith")),
        ("comment_created", "jira:OPS-12", Some("Tomás Oliveira")),
        ("comment_updated", "jira:OPS-8", Some("hookbridge sync")),
        (
            "comment_deleted",
            "jira:OPS-12",
            Some("Automation for Jira"),
        ),
        ("issuelink_created", "jira:link/10021", None),
        ("issuelink_deleted", "jira:link/10019", None),
    ];
    assert_eq!(SAMPLES.len(), expected.len());
    for (provider, name) in [
        (signed_provider(), "signed"),
        (unsigned_provider(), "unsigned"),
    ] {
        for (sample, (event_name, subject, actor)) in SAMPLES.iter().zip(expected) {
            assert_eq!(sample.name, event_name);
            assert_eq!(sample.event_type, event_name);
            let delivery_id = format!("{name}-{event_name}");
            let signed = provider
                .sign(
                    sample.event_type,
                    sample.json.as_bytes(),
                    &delivery_id,
                    now(),
                )
                .unwrap();
            let delivery = received(&signed);
            provider
                .verify(&delivery)
                .unwrap_or_else(|e| panic!("{name} {event_name}: {e}"));
            let identity = provider.identify(&delivery).unwrap();
            assert_eq!(identity.delivery_id.as_str(), delivery_id);
            assert_eq!(identity.event_type, event_name);
            let event = provider.parse(&delivery).unwrap();
            assert_eq!(event.name().as_str(), event_name);
            assert_eq!(event.subject().unwrap().as_str(), subject, "{event_name}");
            assert_eq!(
                event.actor().map(|a| a.name.as_str()),
                actor,
                "{event_name}"
            );
            assert!(event.occurred_at().is_some(), "{event_name}");
            let payload = event.payload::<JiraEvent>().unwrap();
            assert!(
                !matches!(payload, JiraEvent::Untyped(_)),
                "{event_name}: untyped"
            );
            assert_eq!(payload.name(), event_name);
            assert_eq!(
                event.payload_json()["event"],
                match payload {
                    JiraEvent::Issue(_) => "issue",
                    JiraEvent::Comment(_) => "comment",
                    JiraEvent::IssueLink(_) => "issue_link",
                    JiraEvent::Untyped(_) => "untyped",
                }
            );
        }
    }
}

#[test]
fn samples_are_on_disk() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/jira");
    let files = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(files, SAMPLES.len());
}

#[test]
fn issue_created() {
    let event = typed("jira:issue_created");
    let JiraEvent::Issue(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.webhook_event, IssueWebhookEvent::Created);
    assert_eq!(e.issue_event_type_name, Some(IssueEventTypeName::Created));
    assert_eq!(e.issue.id, "10042");
    assert_eq!(e.issue.key, "OPS-12");
    let f = &e.issue.fields;
    assert_eq!(
        f.summary.as_deref(),
        Some("Checkout API returns 502 for EU customers")
    );
    let status = f.status.as_ref().unwrap();
    assert_eq!(status.name, "To Do");
    assert_eq!(status.id.as_deref(), Some("10000"));
    let category = status.status_category.as_ref().unwrap();
    assert_eq!(category.id.as_deref(), Some("2"));
    assert_eq!(category.key.as_deref(), Some("new"));
    assert_eq!(f.priority.as_ref().unwrap().name, "Highest");
    assert_eq!(f.issuetype.as_ref().unwrap().name, "Bug");
    let project = f.project.as_ref().unwrap();
    assert_eq!(
        (
            project.key.as_str(),
            project.id.as_deref(),
            project.name.as_deref()
        ),
        ("OPS", Some("10001"), Some("Operations"))
    );
    assert!(f.assignee.is_none());
    assert_eq!(
        f.reporter.as_ref().unwrap().account_id.as_deref(),
        Some("5b10ac8d82e05b22cc7d4ef5")
    );
    assert_eq!(f.labels, ["incident", "eu"]);
    assert!(f.resolution.is_none());
    assert!(f.description_text().unwrap().contains("*502*"));
    // Custom and other fields are kept as JSON, by id.
    assert_eq!(f.other["customfield_10042"]["value"], "P1");
    assert!(f.other["customfield_10020"].is_null());
    assert_eq!(f.other["components"][0]["name"], "checkout-api");
    assert!(!f.other.contains_key("summary"));
    assert_eq!(e.issue.field("customfield_10042").unwrap()["id"], "10033");
    assert_eq!(
        e.issue.field("summary").unwrap(),
        "Checkout API returns 502 for EU customers"
    );
    assert_eq!(e.issue.field("customfield_99999"), None);
    // 2024-06-05T08:41:02.113+0000
    assert_eq!(unix(f.created), Some(1717576862));
    assert_eq!(f.created.unwrap().millisecond(), 113);
    assert_eq!(unix(event.updated_at()), Some(1717576862));
    assert_eq!(unix(event.timestamp()), Some(1717576862));
    let user = e.user.as_ref().unwrap();
    assert_eq!(user.id(), Some("5b10ac8d82e05b22cc7d4ef5"));
    assert!(!user.is_app());
}

#[test]
fn issue_updated_with_changelog() {
    let event = typed("jira:issue_updated");
    let JiraEvent::Issue(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.issue_event_type_name, Some(IssueEventTypeName::Generic));
    let changelog = e.changelog.as_ref().unwrap();
    assert_eq!(changelog.id.as_deref(), Some("10561"));
    assert_eq!(changelog.items.len(), 3);
    let status = changelog.item("status").unwrap();
    assert_eq!(status.fieldtype.as_deref(), Some("jira"));
    assert_eq!(
        (status.from.as_deref(), status.from_string.as_deref()),
        (Some("10000"), Some("To Do"))
    );
    assert_eq!(
        (status.to.as_deref(), status.to_string.as_deref()),
        (Some("3"), Some("In Progress"))
    );
    let assignee = changelog.item("assignee").unwrap();
    assert_eq!(assignee.from, None);
    assert_eq!(assignee.to_string.as_deref(), Some("Tomás Oliveira"));
    // Custom fields are found by id or by name.
    let sprint = changelog.item("customfield_10020").unwrap();
    assert_eq!(sprint.field, "Sprint");
    assert_eq!(changelog.item("Sprint").unwrap().to.as_deref(), Some("37"));
    let f = &e.issue.fields;
    assert_eq!(
        f.status
            .as_ref()
            .unwrap()
            .status_category
            .as_ref()
            .unwrap()
            .key
            .as_deref(),
        Some("indeterminate")
    );
    assert_eq!(
        f.assignee.as_ref().unwrap().display_name.as_deref(),
        Some("Tomás Oliveira")
    );
    assert_eq!(f.other["customfield_10020"][0]["name"], "OPS Sprint 24");
    // fields.updated 2024-06-05T08:45:34.571+0000.
    assert_eq!(unix(event.updated_at()), Some(1717577134));
}

#[test]
fn issue_deleted_from_data_center() {
    let event = typed("jira:issue_deleted");
    let JiraEvent::Issue(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.webhook_event, IssueWebhookEvent::Deleted);
    let user = e.user.as_ref().unwrap();
    assert_eq!(user.account_id, None);
    assert_eq!(user.name.as_deref(), Some("jsmith"));
    // Data Center users are identified by key.
    assert_eq!(user.id(), Some("JIRAUSER10100"));
    assert_eq!(user.label(), Some("John Smith"));
    // "2024-06-04T16:58:31.000+0200": an offset other than +0000.
    assert_eq!(unix(e.issue.fields.updated), Some(1717513111));
    // A deletion is as recent as its `timestamp`, not as the issue's last edit.
    assert_eq!(unix(event.updated_at()), Some(1717513929));
    assert!(e.issue.fields.description.is_none());
    assert_eq!(e.issue.fields.description_text(), None);
}

#[test]
fn comment_created_with_adf_body() {
    let event = typed("comment_created");
    let JiraEvent::Comment(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.webhook_event, CommentWebhookEvent::Created);
    assert_eq!(e.comment.id, "10118");
    assert!(e.comment.body.as_ref().unwrap().is_object());
    assert_eq!(
        e.comment.body_text().as_deref(),
        Some(
            "Rolled back checkout-api v2.14.0, error rate is back under 0.1%. @Mia Krystof can \
             you confirm from the EU dashboards?\nRoot cause to follow."
        )
    );
    assert_eq!(e.comment.jsd_public, Some(true));
    let issue = e.issue.as_ref().unwrap();
    assert_eq!(issue.key, "OPS-12");
    assert_eq!(issue.fields.status.as_ref().unwrap().name, "In Progress");
    assert!(e.user.is_none());
    // The actor is the comment's (last) author.
    assert_eq!(
        event.actor().unwrap().account_id.as_deref(),
        Some("712020:0e3b1c4f-8a2d-4e6b-9c1a-5f7d3e2b1a09")
    );
    assert_eq!(unix(event.updated_at()), Some(1717578137));
}

#[test]
fn comment_updated_with_string_body() {
    let event = typed("comment_updated");
    let JiraEvent::Comment(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.webhook_event, CommentWebhookEvent::Updated);
    assert!(
        e.comment
            .body_text()
            .unwrap()
            .starts_with("Failover test planned")
    );
    assert_eq!(
        e.comment.author.as_ref().unwrap().name.as_deref(),
        Some("jsmith")
    );
    // The last editor is who caused the update.
    assert_eq!(event.actor().unwrap().name.as_deref(), Some("hookbridge"));
    // "2024-06-05T11:30:45.220+0200".
    assert_eq!(unix(event.updated_at()), Some(1717579845));
    assert!(e.issue.as_ref().unwrap().fields.assignee.is_none());
}

#[test]
fn comment_deleted_by_an_app() {
    let event = typed("comment_deleted");
    let JiraEvent::Comment(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.webhook_event, CommentWebhookEvent::Deleted);
    assert!(event.actor().unwrap().is_app());
    // Deleted: the deletion's time, not the comment's last edit.
    assert_eq!(unix(event.updated_at()), Some(1717582263));
    assert_eq!(unix(e.comment.updated), Some(1717577560));

    // Through the provider, the app account is a bot.
    let provider = signed_provider();
    let signed = provider
        .sign(
            "comment_deleted",
            sample("comment_deleted").as_bytes(),
            "d",
            now(),
        )
        .unwrap();
    let actor = provider
        .parse(&received(&signed))
        .unwrap()
        .actor()
        .cloned()
        .unwrap();
    assert!(actor.is_bot);
    assert_eq!(
        actor.id.as_deref(),
        Some("557058:f58131cb-b67d-43c7-b30d-6b58d40bd077")
    );
}

#[test]
fn issue_links() {
    let event = typed("issuelink_created");
    let JiraEvent::IssueLink(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.webhook_event, IssueLinkWebhookEvent::Created);
    let link = &e.issue_link;
    // Numbers in the payload, text here.
    assert_eq!(
        (
            link.id.as_str(),
            link.source_issue_id.as_str(),
            link.destination_issue_id.as_str()
        ),
        ("10021", "10042", "10038")
    );
    let kind = link.issue_link_type.as_ref().unwrap();
    assert_eq!(kind.name, "Blocks");
    assert_eq!(kind.outward_name.as_deref(), Some("blocks"));
    assert_eq!(kind.inward_name.as_deref(), Some("is blocked by"));
    assert_eq!(kind.id.as_deref(), Some("10000"));
    assert_eq!(link.system_link, Some(false));
    assert!(event.actor().is_none());
    assert!(event.issue().is_none());
    assert_eq!(unix(event.updated_at()), Some(1717582491));

    let event = typed("issuelink_deleted");
    assert_eq!(event.subject().as_deref(), Some("jira:link/10019"));
    let JiraEvent::IssueLink(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(e.webhook_event, IssueLinkWebhookEvent::Deleted);
}

#[test]
fn unknown_event_is_untyped_and_kept() {
    let json = br#"{"timestamp":1717582491377,"webhookEvent":"worklog_created",
        "worklog":{"id":"10400","issueId":"10042","timeSpentSeconds":1800},
        "user":{"accountId":"abc","displayName":"Ana","accountType":"app"}}"#;
    let event = JiraEvent::from_json(json).unwrap();
    let JiraEvent::Untyped(u) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(u.event, "worklog_created");
    assert_eq!(u.reason, None);
    assert_eq!(u.payload["worklog"]["timeSpentSeconds"], 1800);
    assert_eq!(event.name(), "worklog_created");
    assert_eq!(event.subject(), None);
    let actor = event.actor().unwrap();
    assert_eq!(actor.label(), Some("Ana"));
    assert!(actor.is_app());
    assert_eq!(unix(event.updated_at()), Some(1717582491));

    // An untyped event about an issue still has the issue's subject.
    let json = br#"{"webhookEvent":"issue_property_set","issue":{"id":"1","key":"OPS-3"}}"#;
    assert_eq!(
        JiraEvent::from_json(json).unwrap().subject().as_deref(),
        Some("jira:OPS-3")
    );
}

#[test]
fn unknown_event_through_the_provider() {
    let provider = signed_provider();
    let json = br#"{"timestamp":1717582491377,"webhookEvent":"sprint_started","sprint":{"id":37}}"#;
    let signed = provider.sign("sprint_started", json, "s-1", now()).unwrap();
    let event = provider.parse(&received(&signed)).unwrap();
    assert_eq!(event.name().as_str(), "sprint_started");
    assert!(event.subject().is_none());
    assert!(matches!(
        event.payload::<JiraEvent>(),
        Some(JiraEvent::Untyped(_))
    ));
    assert_eq!(event.payload_json()["event"], "untyped");
}

#[test]
fn unknown_fields_and_values_are_kept_or_ignored() {
    let json = br#"{"timestamp":1,"webhookEvent":"jira:issue_updated",
        "issue_event_type_name":"issue_escalated_by_robot","brand_new":{"x":[1,2]},
        "issue":{"id":10042,"key":"OPS-12","unknownTop":true,
          "fields":{"summary":"s","status":{"name":"Triage","newThing":1},
            "labels":null,"customfield_1":"v","updated":"not a time"}},
        "changelog":{"items":[{"field":"Story Points","from":3,"to":5.5,"fromString":"3","toString":"5.5"}]}}"#;
    let event = JiraEvent::from_json(json).unwrap();
    let JiraEvent::Issue(e) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(
        e.issue_event_type_name,
        Some(IssueEventTypeName::Other("issue_escalated_by_robot".into()))
    );
    // A numeric issue id is read as text.
    assert_eq!(e.issue.id, "10042");
    assert!(e.issue.fields.labels.is_empty());
    assert_eq!(e.issue.fields.other["customfield_1"], "v");
    // An unreadable timestamp is None, not a failed parse; the event time is used instead.
    assert_eq!(e.issue.fields.updated, None);
    assert_eq!(event.updated_at().unwrap().unix_timestamp(), 0);
    let item = &e.changelog.as_ref().unwrap().items[0];
    assert_eq!(
        (item.from.as_deref(), item.to.as_deref()),
        (Some("3"), Some("5.5"))
    );
    assert_eq!(item.field_id, None);
    // Serializes the Other value back verbatim.
    let value = serde_json::to_value(&event).unwrap();
    assert_eq!(
        value["payload"]["issue_event_type_name"],
        "issue_escalated_by_robot"
    );
}

#[test]
fn wrong_shape_of_known_event_is_untyped_with_reason() {
    let json = br#"{"timestamp":1,"webhookEvent":"jira:issue_created","issue":{"id":"1"}}"#;
    let event = JiraEvent::from_json(json).unwrap();
    let JiraEvent::Untyped(u) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(u.event, "jira:issue_created");
    assert!(
        u.reason.as_deref().unwrap().contains("key"),
        "{:?}",
        u.reason
    );
    assert_eq!(event.name(), "jira:issue_created");

    let event = JiraEvent::from_json(br#"{"timestamp":1}"#).unwrap();
    assert_eq!(event.name(), "unknown");
    let JiraEvent::Untyped(u) = &event else {
        panic!("{event:?}")
    };
    assert!(u.reason.as_deref().unwrap().contains("webhookEvent"));

    let event = JiraEvent::from_json(br#"{"webhookEvent":7}"#).unwrap();
    assert!(matches!(
        event,
        JiraEvent::Untyped(UntypedEvent {
            reason: Some(_),
            ..
        })
    ));
}

#[test]
fn malformed_or_non_object_json_is_an_error() {
    for json in [
        &br#"{"webhookEvent":"jira:issue_created","issue":"#[..],
        br#"{"webhookEvent":"jira:issue_created",}"#,
        br#"{"webhookEvent":"sprint_started"} trailing"#,
        b"",
        b"   ",
        b"[1,2]",
        b"\"jira:issue_created\"",
        b"null",
    ] {
        assert!(
            JiraEvent::from_json(json).is_err(),
            "{:?}",
            String::from_utf8_lossy(json)
        );
    }
    // Through the provider: identify refuses it first.
    let provider = signed_provider();
    let signed = provider
        .sign("jira:issue_created", b"{\"webhookEvent\":", "m", now())
        .unwrap();
    let delivery = received(&signed);
    provider.verify(&delivery).unwrap();
    assert!(provider.identify(&delivery).is_err());
    assert!(provider.parse(&delivery).is_err());
}

#[test]
fn verification_matrix_through_the_provider() {
    let body = sample("jira:issue_updated").as_bytes();
    let signed = signed_provider()
        .sign("jira:issue_updated", body, "v-1", now())
        .unwrap();

    // Wrong secret.
    let other = Jira::new(vec![Secret::new("other")], JiraOptions::default()).unwrap();
    assert!(matches!(
        other.verify(&received(&signed)),
        Err(VerifyError::Mismatch { .. })
    ));
    // Rotation: the second secret matches.
    let rotating = Jira::new(
        vec![Secret::new("new-secret"), Secret::new(SECRET)],
        JiraOptions::default(),
    )
    .unwrap();
    assert_eq!(rotating.verify(&received(&signed)).unwrap().secret_index, 1);
    // Tampered body.
    let mut tampered = received(&signed);
    let mut bytes = tampered.body.to_vec();
    let at = bytes.iter().position(|b| *b == b'3').unwrap();
    bytes[at] = b'4';
    tampered.body = bytes.into();
    assert!(matches!(
        signed_provider().verify(&tampered),
        Err(VerifyError::Mismatch { .. })
    ));
    // Missing signature.
    let mut unsigned = received(&signed);
    unsigned.headers.remove("x-hub-signature");
    assert!(matches!(
        signed_provider().verify(&unsigned),
        Err(VerifyError::MissingSignature { .. })
    ));
    // The unsigned endpoint wants its token, and nothing else will do.
    assert!(matches!(
        unsigned_provider().verify(&received(&signed)),
        Err(VerifyError::MissingSignature { .. })
    ));
    let mut with_token = received(&signed);
    with_token.uri = format!("/hooks/jira?token={TOKEN}").parse().unwrap();
    assert!(unsigned_provider().verify(&with_token).is_ok());
    with_token.uri = "/hooks/jira?token=Zq3-yT8_uW1.kP5~nR7sV2xM"
        .parse()
        .unwrap();
    assert!(matches!(
        unsigned_provider().verify(&with_token),
        Err(VerifyError::Mismatch { .. })
    ));
    // A percent-encoded token is decoded before the comparison.
    with_token.uri = "/hooks/jira?token=Zq3-yT8_uW1.kP5%7EnR7sV2xL"
        .parse()
        .unwrap();
    assert!(unsigned_provider().verify(&with_token).is_ok());
}

#[test]
fn sign_refuses_a_sample_of_another_event() {
    assert!(
        signed_provider()
            .sign(
                "comment_created",
                sample("jira:issue_created").as_bytes(),
                "x",
                now()
            )
            .is_err()
    );
}

#[test]
fn build_from_toml_options() {
    let options: toml::Table =
        toml::from_str(&format!("unsigned = true\ntoken = \"{TOKEN}\"\n")).unwrap();
    let jira = Jira::new(vec![], options.try_into().unwrap()).unwrap();
    assert!(!format!("{jira:?}").contains(TOKEN));
    assert_eq!(jira.kind().as_str(), "jira");
}
