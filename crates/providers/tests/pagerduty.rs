//! The PagerDuty provider end to end: every sample signs, verifies, identifies and parses to
//! its typed event; V2 deliveries map onto the V3 names and need a signature like V3 ones;
//! unknown events are kept, unknown fields ignored, malformed bodies rejected.
#![cfg(feature = "pagerduty")]

use std::collections::BTreeSet;
use std::path::Path;

use hookbridge_core::{
    Event, IdentifyError, ParseError, Provider, RawDelivery, Secret, VerifyError,
    signature::SignatureMismatch,
};
use hookbridge_providers::pagerduty::events::*;
use hookbridge_providers::pagerduty::{Pagerduty, PagerdutyOptions, SAMPLES};
use time::OffsetDateTime;

const SECRET: &str = "whsec-pd-4f1c2a9e7b";
const INCIDENT: &str = "pagerduty:incident/Q1EZAYE5KCTLMW";
const V2_INCIDENT: &str = "pagerduty:incident/PRORDTY";

fn provider(secrets: &[&str]) -> Pagerduty {
    Pagerduty::new(
        secrets.iter().map(|s| Secret::new(*s)).collect(),
        PagerdutyOptions::default(),
    )
    .unwrap()
}

fn sample(name: &str) -> &'static str {
    SAMPLES
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no sample {name}"))
        .json
}

/// Signs `json` as PagerDuty would with `SECRET` and returns the delivery as received.
fn signed(json: &str) -> RawDelivery {
    let signed = provider(&[SECRET])
        .sign(
            "",
            json.as_bytes(),
            "3f6e1f0a-webhook-id",
            OffsetDateTime::now_utc(),
        )
        .unwrap();
    RawDelivery::new("pagerduty", signed.headers, signed.body)
}

/// The whole path the server and a worker take: verify, identify, parse.
fn receive(json: &str) -> (Event, PagerdutyEvent) {
    let p = provider(&[SECRET]);
    let delivery = signed(json);
    p.verify(&delivery).unwrap();
    let identity = p.identify(&delivery).unwrap();
    let event = p.parse(&delivery).unwrap();
    assert_eq!(event.delivery_id(), &identity.delivery_id);
    assert_eq!(event.provider().as_str(), "pagerduty");
    let typed = event.payload::<PagerdutyEvent>().unwrap().clone();
    (event, typed)
}

fn incident(typed: &PagerdutyEvent) -> &IncidentEvent {
    match typed {
        PagerdutyEvent::Incident(e) => e,
        other => panic!("not an incident event: {other:?}"),
    }
}

/// Unix seconds, so the tests need no date parsing.
fn unix(t: Option<OffsetDateTime>) -> Option<i64> {
    t.map(OffsetDateTime::unix_timestamp)
}

/// (event name, subject, delivery id, stored event type, actor (name, is a bot), V2)
type Row = (
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    Option<(&'static str, bool)>,
    bool,
);
const MAYA: Option<(&str, bool)> = Some(("Maya Okafor", false));
const PRIYA: Option<(&str, bool)> = Some(("Priya Raman", false));
const SERVICE: Option<(&str, bool)> = Some(("Checkout API", true));
const LAURA: Option<(&str, bool)> = Some(("Laura Haley", false));
const XDB: Option<(&str, bool)> = Some(("Production XDB Cluster", true));
#[rustfmt::skip]
const EXPECTED: &[(&str, Row)] = &[
    ("incident.triggered", ("incident.triggered", Some(INCIDENT), "01HY2R9ZK8F6W3Q0PJX4B7TNCM", "incident.triggered", SERVICE, false)),
    ("incident.acknowledged", ("incident.acknowledged", Some(INCIDENT), "01HY2RH3V0MZ5S1D8KQ2E6YGTA", "incident.acknowledged", MAYA, false)),
    ("incident.unacknowledged", ("incident.unacknowledged", Some(INCIDENT), "01HY2TJ6P4XW9C2N7R5D1HBQEV", "incident.unacknowledged", SERVICE, false)),
    ("incident.reassigned", ("incident.reassigned", Some(INCIDENT), "01HY2TQ0A7GJ3K8M2F6V9XRWSD", "incident.reassigned", MAYA, false)),
    ("incident.escalated", ("incident.escalated", Some(INCIDENT), "01HY2V0D5R3T8Y1B6N4C7ZKMPQ", "incident.escalated", Some(("Jonas Lindqvist", false)), false)),
    ("incident.delegated", ("incident.delegated", Some(INCIDENT), "01HY2V8W2C6E1H5J9L3N7QSXUA", "incident.delegated", PRIYA, false)),
    ("incident.priority_updated", ("incident.priority_updated", Some(INCIDENT), "01HY2VF4T9B2D6G0K3M8P1RVWY", "incident.priority_updated", PRIYA, false)),
    ("incident.annotated", ("incident.annotated", Some(INCIDENT), "01HY2VM7Q1S4V8X2Z5C9F3HJLN", "incident.annotated", PRIYA, false)),
    ("incident.resolved", ("incident.resolved", Some(INCIDENT), "01HY2W1K6N0Q3T7W1Y4B8D2FGH", "incident.resolved", PRIYA, false)),
    ("incident.reopened", ("incident.reopened", Some(INCIDENT), "01HY2X3C8F1J4M7P0S3V6Y9BDG", "incident.reopened", MAYA, false)),
    ("incident.service_updated", ("incident.service_updated", Some(INCIDENT), "01HY2X9H2K5N8Q1T4W7Z0C3FJM", "incident.service_updated", MAYA, false)),
    ("incident.incident_type.changed", ("incident.incident_type.changed", Some(INCIDENT), "01HY2XD5M8P1S4V7Y0B3E6HKNQ", "incident.incident_type.changed", MAYA, false)),
    ("incident.responder.added", ("incident.responder.added", Some(INCIDENT), "01HY2XK0R3U6X9A2D5G8J1MPST", "incident.responder.added", MAYA, false)),
    ("incident.responder.replied", ("incident.responder.replied", Some(INCIDENT), "01HY2XQ4V7Y0B3E6H9K2N5QTWZ", "incident.responder.replied", PRIYA, false)),
    ("incident.status_update_published", ("incident.status_update_published", Some(INCIDENT), "01HY2XW8Z1C4F7J0M3P6S9VYBE", "incident.status_update_published", MAYA, false)),
    ("incident.conference_bridge.updated", ("incident.conference_bridge.updated", Some(INCIDENT), "01HY2Y2D3G6K9N2Q5T8W1Z4CFJ", "incident.conference_bridge.updated", MAYA, false)),
    ("incident.custom_field_values.updated", ("incident.custom_field_values.updated", Some(INCIDENT), "01HY2Y7J8M1Q4T7W0Z3C6F9JLN", "incident.custom_field_values.updated", MAYA, false)),
    ("incident.workflow.started", ("incident.workflow.started", Some(INCIDENT), "01HY2YC0P3S6V9Y2B5E8H1KMQT", "incident.workflow.started", None, false)),
    ("incident.workflow.completed", ("incident.workflow.completed", Some(INCIDENT), "01HY2YC9T2W5Z8C1F4J7M0PSVY", "incident.workflow.completed", None, false)),
    ("service.created", ("service.created", Some("pagerduty:service/PN7XK3R"), "01HY3A1B4E7H0K3N6Q9T2W5Z8C", "service.created", MAYA, false)),
    ("service.updated", ("service.updated", Some("pagerduty:service/PN7XK3R"), "01HY3A6G9K2N5Q8T1W4Z7C0F3J", "service.updated", MAYA, false)),
    ("service.deleted", ("service.deleted", Some("pagerduty:service/PN7XK3R"), "01HY3AB3F6J9M2P5S8V1Y4B7EH", "service.deleted", MAYA, false)),
    ("pagey.ping", ("pagey.ping", None, "01HY3B0X5A8D1G4K7N0R3U6X9A", "pagey.ping", Some(("PLH1HKV", false)), false)),
    ("v2.incident.trigger", ("incident.triggered", Some(V2_INCIDENT), "69a7ced0-a2cd-11e7-a799-22000a15839c", "incident.trigger", XDB, true)),
    ("v2.incident.acknowledge", ("incident.acknowledged", Some(V2_INCIDENT), "82a33960-a2cd-11e7-8f69-22000affca53", "incident.acknowledge", LAURA, true)),
    ("v2.incident.unacknowledge", ("incident.unacknowledged", Some(V2_INCIDENT), "c0d6a2f0-a2cf-11e7-8f69-22000affca53", "incident.unacknowledge", XDB, true)),
    ("v2.incident.resolve", ("incident.resolved", Some(V2_INCIDENT), "e82195c0-a2cd-11e7-8f69-22000affca53", "incident.resolve", LAURA, true)),
    ("v2.incident.assign", ("incident.reassigned", Some(V2_INCIDENT), "9e7850d0-a2cd-11e7-8f69-22000affca53", "incident.assign", LAURA, true)),
    ("v2.incident.escalate", ("incident.escalated", Some(V2_INCIDENT), "3f0f5a10-a2ce-11e7-a799-22000a15839c", "incident.escalate", XDB, true)),
    ("v2.incident.delegate", ("incident.delegated", Some(V2_INCIDENT), "5b7e2e40-a2ce-11e7-8f69-22000affca53", "incident.delegate", LAURA, true)),
    ("v2.incident.annotate", ("incident.annotated", Some(V2_INCIDENT), "7a1c3e60-a2ce-11e7-a799-22000a15839c", "incident.annotate", LAURA, true)),
    ("v2.batch", ("v2.batch", Some(V2_INCIDENT), "82a33960-a2cd-11e7-8f69-22000affca53,9e7850d0-a2cd-11e7-8f69-22000affca53", "v2.batch", LAURA, true)),
];

#[test]
fn every_sample_is_listed_and_every_file_is_a_sample() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/pagerduty");
    let files: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|name| name.strip_suffix(".json").map(str::to_owned))
        .collect();
    let listed: BTreeSet<String> = SAMPLES.iter().map(|s| s.name.to_owned()).collect();
    let expected: BTreeSet<String> = EXPECTED.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(files, listed);
    assert_eq!(listed, expected);
}

#[test]
fn every_sample_signs_verifies_identifies_and_parses_typed() {
    for (name, (event_name, subject, delivery_id, stored_type, actor, v2)) in EXPECTED {
        let s = SAMPLES.iter().find(|s| s.name == *name).unwrap();
        let (event, typed) = receive(s.json);
        if let PagerdutyEvent::Untyped(u) = &typed {
            panic!("{name}: untyped, reason {:?}", u.reason);
        }
        assert_eq!(event.name().as_str(), *event_name, "{name}");
        assert_eq!(typed.name(), *event_name, "{name}");
        assert_eq!(event.subject().map(|s| s.as_str()), *subject, "{name}");
        assert_eq!(event.delivery_id().as_str(), *delivery_id, "{name}");
        let identity = provider(&[SECRET]).identify(&signed(s.json)).unwrap();
        assert_eq!(identity.event_type, *stored_type, "{name}");
        assert_eq!(s.event_type, *stored_type, "{name}");
        assert_eq!(
            event.actor().map(|a| (a.name.as_str(), a.is_bot)),
            *actor,
            "{name}"
        );
        let format = if *v2 {
            WebhookFormat::V2
        } else {
            WebhookFormat::V3
        };
        assert_eq!(typed.format(), format, "{name}");
        assert!(event.occurred_at().is_some(), "{name}");
        // The JSON view for `inspect` works.
        assert!(event.payload_json().is_object(), "{name}");
    }
}

#[test]
fn triggered_v3() {
    let (event, typed) = receive(sample("incident.triggered"));
    let e = incident(&typed);
    assert_eq!(e.event_type, IncidentEventType::Triggered);
    assert_eq!(e.envelope.resource_type.as_deref(), Some("incident"));
    assert_eq!(e.envelope.client, None);
    assert_eq!(e.detail, IncidentDetail::Incident);
    assert!(e.log_entries.is_empty());
    let i = &e.incident;
    assert_eq!(i.id, "Q1EZAYE5KCTLMW");
    assert_eq!(i.number, Some(4182));
    assert_eq!(i.title.as_deref(), Some("Checkout API 5xx rate above 5%"));
    assert_eq!(i.status, Some(IncidentStatus::Triggered));
    assert_eq!(i.urgency, Some(Urgency::High));
    let priority = i.priority.as_ref().unwrap();
    assert_eq!(
        (priority.id.as_str(), priority.summary.as_deref()),
        ("PSO75BM", Some("P1"))
    );
    assert_eq!(i.assignees[0].summary.as_deref(), Some("Maya Okafor"));
    assert_eq!(i.service.as_ref().unwrap().id, "PF9KMXH");
    assert_eq!(i.escalation_policy.as_ref().unwrap().id, "PUS0KTE");
    assert_eq!(i.teams.len(), 1);
    assert_eq!(
        i.incident_key.as_deref(),
        Some("c24117fc42e44b44b4d6876190583378")
    );
    assert_eq!(
        i.html_url.as_deref(),
        Some("https://acme.pagerduty.com/incidents/Q1EZAYE5KCTLMW")
    );
    assert_eq!(unix(i.created_at), Some(1715937663)); // 2024-05-17T09:21:03Z
    assert_eq!(
        i.incident_type.as_ref().unwrap().name.as_deref(),
        Some("incident_default")
    );
    let actor = event.actor().unwrap();
    assert_eq!(actor.id.as_deref(), Some("PF9KMXH"));
    assert!(actor.is_bot);
    // 2024-05-17T09:21:03.412Z, to the second.
    assert_eq!(unix(event.occurred_at()), Some(1715937663));
    assert_eq!(
        event.occurred_at().unwrap().millisecond(),
        412,
        "sub-second precision is kept"
    );
}

#[test]
fn status_and_assignment_events() {
    let status = |name: &str| incident(&receive(sample(name)).1).incident.status.clone();
    assert_eq!(
        status("incident.acknowledged"),
        Some(IncidentStatus::Acknowledged)
    );
    assert_eq!(status("incident.resolved"), Some(IncidentStatus::Resolved));
    assert_eq!(status("incident.reopened"), Some(IncidentStatus::Triggered));
    let (_, reassigned) = receive(sample("incident.reassigned"));
    assert_eq!(incident(&reassigned).incident.assignees[0].id, "PTUXL6G");
    let (_, delegated) = receive(sample("incident.delegated"));
    assert_eq!(
        incident(&delegated)
            .incident
            .escalation_policy
            .as_ref()
            .unwrap()
            .summary
            .as_deref(),
        Some("Database Escalation")
    );
    let (_, moved) = receive(sample("incident.service_updated"));
    assert_eq!(
        incident(&moved).incident.service.as_ref().unwrap().id,
        "PX4ML2Q"
    );
    let (_, retyped) = receive(sample("incident.incident_type.changed"));
    assert_eq!(
        incident(&retyped).event_type,
        IncidentEventType::IncidentTypeChanged
    );
    assert_eq!(
        incident(&retyped)
            .incident
            .incident_type
            .as_ref()
            .unwrap()
            .name
            .as_deref(),
        Some("major")
    );
}

#[test]
fn incident_data_kinds_other_than_the_incident() {
    let (_, annotated) = receive(sample("incident.annotated"));
    let e = incident(&annotated);
    // Only the reference fields of the incident are known.
    assert_eq!(e.incident.id, "Q1EZAYE5KCTLMW");
    assert_eq!(
        e.incident.summary.as_deref(),
        Some("Checkout API 5xx rate above 5%")
    );
    assert_eq!(e.incident.status, None);
    let IncidentDetail::Note(note) = &e.detail else {
        panic!("{:?}", e.detail)
    };
    assert_eq!(note.id.as_deref(), Some("PWL7QXS"));
    assert!(note.content.starts_with("Rolled back checkout-api"));
    assert!(!note.trimmed);

    let (_, added) = receive(sample("incident.responder.added"));
    let IncidentDetail::Responder(r) = &incident(&added).detail else {
        panic!()
    };
    assert_eq!(
        r.user.as_ref().unwrap().summary.as_deref(),
        Some("Priya Raman")
    );
    assert_eq!(r.state.as_deref(), Some("pending"));
    let (_, replied) = receive(sample("incident.responder.replied"));
    let IncidentDetail::Responder(r) = &incident(&replied).detail else {
        panic!()
    };
    assert_eq!(r.state.as_deref(), Some("joined"));

    let (_, update) = receive(sample("incident.status_update_published"));
    let IncidentDetail::StatusUpdate(u) = &incident(&update).detail else {
        panic!()
    };
    assert!(u.message.contains("degraded"));

    let (_, bridge) = receive(sample("incident.conference_bridge.updated"));
    let IncidentDetail::ConferenceBridge(b) = &incident(&bridge).detail else {
        panic!()
    };
    assert_eq!(b.conference_numbers.len(), 2);
    assert_eq!(
        b.conference_url.as_deref(),
        Some("https://meet.example.com/checkout-war-room")
    );

    let (_, fields) = receive(sample("incident.custom_field_values.updated"));
    let IncidentDetail::FieldValues(f) = &incident(&fields).detail else {
        panic!()
    };
    assert_eq!(f.custom_fields.len(), 2);
    assert_eq!(f.changed_custom_fields[0].name, "region");
    assert_eq!(f.changed_custom_fields[0].value, "eu-west-1");

    for name in ["incident.workflow.started", "incident.workflow.completed"] {
        let (event, workflow) = receive(sample(name));
        let IncidentDetail::Workflow(w) = &incident(&workflow).detail else {
            panic!()
        };
        assert_eq!(w.id, "P3SNKQS");
        assert_eq!(
            w.incident_workflow.as_ref().unwrap().summary.as_deref(),
            Some("Major incident kickoff")
        );
        // Workflows run with no agent.
        assert!(event.actor().is_none());
    }
}

#[test]
fn service_events_and_ping() {
    let (_, created) = receive(sample("service.created"));
    let PagerdutyEvent::Service(s) = &created else {
        panic!("{created:?}")
    };
    assert_eq!(s.event_type, ServiceEventType::Created);
    assert_eq!(s.service.summary.as_deref(), Some("Checkout Search"));
    assert_eq!(
        s.service.alert_creation.as_deref(),
        Some("create_alerts_and_incidents")
    );
    let (_, deleted) = receive(sample("service.deleted"));
    assert!(
        matches!(&deleted, PagerdutyEvent::Service(s) if s.event_type == ServiceEventType::Deleted)
    );

    let (event, ping) = receive(sample("pagey.ping"));
    let PagerdutyEvent::Ping(p) = &ping else {
        panic!("{ping:?}")
    };
    assert_eq!(p.message.as_deref(), Some("Hello from your friend Pagey!"));
    assert_eq!(p.envelope.resource_type.as_deref(), Some("pagey"));
    assert!(event.subject().is_none());
    // The ping's agent has no summary: the actor is named by id.
    assert_eq!(event.actor().unwrap().id.as_deref(), Some("PLH1HKV"));
}

#[test]
fn v2_messages_map_onto_the_v3_names_and_types() {
    let (event, typed) = receive(sample("v2.incident.trigger"));
    let e = incident(&typed);
    assert_eq!(e.envelope.format, WebhookFormat::V2);
    assert_eq!(e.envelope.event_type, "incident.trigger");
    assert_eq!(e.event_type, IncidentEventType::Triggered);
    assert_eq!(e.envelope.resource_type, None);
    assert_eq!(e.detail, IncidentDetail::Incident);
    // The V2 incident object is normalized: incident_number, assignments[].assignee.
    assert_eq!(e.incident.number, Some(33));
    assert_eq!(
        e.incident.assignees[0].summary.as_deref(),
        Some("Laura Haley")
    );
    assert_eq!(e.incident.status, Some(IncidentStatus::Triggered));
    assert_eq!(
        e.incident.priority.as_ref().unwrap().summary.as_deref(),
        Some("P1")
    );
    assert_eq!(e.incident.service.as_ref().unwrap().id, "PN49J75");
    assert_eq!(e.log_entries.len(), 1);
    assert_eq!(e.log_entries[0].kind, "trigger_log_entry");
    assert_eq!(unix(event.occurred_at()), Some(1506438876)); // 2017-09-26T15:14:36Z
    for (sample_name, expected) in [
        ("v2.incident.acknowledge", IncidentEventType::Acknowledged),
        (
            "v2.incident.unacknowledge",
            IncidentEventType::Unacknowledged,
        ),
        ("v2.incident.resolve", IncidentEventType::Resolved),
        ("v2.incident.assign", IncidentEventType::Reassigned),
        ("v2.incident.escalate", IncidentEventType::Escalated),
        ("v2.incident.delegate", IncidentEventType::Delegated),
        ("v2.incident.annotate", IncidentEventType::Annotated),
    ] {
        let (_, typed) = receive(sample(sample_name));
        let e = incident(&typed);
        assert_eq!(e.event_type, expected, "{sample_name}");
        assert_eq!(e.envelope.format, WebhookFormat::V2, "{sample_name}");
        assert_eq!(
            Some(&e.envelope.event_type[..]),
            sample_name.strip_prefix("v2."),
            "{sample_name}"
        );
    }
    let (_, assign) = receive(sample("v2.incident.assign"));
    assert_eq!(incident(&assign).log_entries[0].assignees[0].id, "PFBSJ2Z");
    let (_, annotate) = receive(sample("v2.incident.annotate"));
    assert_eq!(
        incident(&annotate).log_entries[0].kind,
        "annotate_log_entry"
    );
}

#[test]
fn v2_batch_types_each_message_and_dedups_on_all_ids() {
    let (event, typed) = receive(sample("v2.batch"));
    let PagerdutyEvent::V2Batch(batch) = &typed else {
        panic!("{typed:?}")
    };
    let names: Vec<String> = batch.messages.iter().map(PagerdutyEvent::name).collect();
    assert_eq!(names, ["incident.reassigned", "incident.acknowledged"]);
    assert_eq!(typed.format(), WebhookFormat::V2);
    // The latest message's time.
    assert_eq!(unix(event.occurred_at()), Some(1506438965)); // 2017-09-26T15:16:05Z
    // The key is the sorted ids, whatever the order of the messages.
    let mut doc: serde_json::Value = serde_json::from_str(sample("v2.batch")).unwrap();
    doc["messages"].as_array_mut().unwrap().reverse();
    let (reversed, _) = receive(&doc.to_string());
    assert_eq!(reversed.delivery_id(), event.delivery_id());
}

#[test]
fn v2_needs_the_same_signature_as_v3() {
    let p = provider(&[SECRET]);
    for name in ["v2.incident.trigger", "v2.batch"] {
        let mut unsigned = signed(sample(name));
        unsigned.headers.remove("x-pagerduty-signature");
        assert_eq!(
            p.verify(&unsigned),
            Err(VerifyError::MissingSignature {
                header: "x-pagerduty-signature"
            }),
            "{name}"
        );
        let other = Pagerduty::new(vec![Secret::new("not ours")], PagerdutyOptions::default())
            .unwrap()
            .sign("", sample(name).as_bytes(), "x", OffsetDateTime::now_utc())
            .unwrap();
        let forged = RawDelivery::new("pagerduty", other.headers, other.body);
        assert!(
            matches!(
                p.verify(&forged),
                Err(VerifyError::Mismatch {
                    source: SignatureMismatch::NoMatch(1),
                    ..
                })
            ),
            "{name}"
        );
        assert!(p.verify(&signed(sample(name))).is_ok(), "{name}");
    }
}

#[test]
fn rotation_and_tampering() {
    let delivery = signed(sample("incident.triggered"));
    let rotating = provider(&["the previous secret", SECRET]);
    assert_eq!(rotating.verify(&delivery).unwrap().secret_index, 1);
    // The signature covers the raw bytes: the same JSON re-serialized does not verify.
    let reserialized: serde_json::Value = serde_json::from_slice(&delivery.body).unwrap();
    let mut changed = delivery.clone();
    changed.body = serde_json::to_vec(&reserialized).unwrap().into();
    assert_ne!(changed.body, delivery.body);
    assert!(matches!(
        rotating.verify(&changed),
        Err(VerifyError::Mismatch { .. })
    ));
}

#[test]
fn unknown_events_are_kept_untyped() {
    let json = r#"{"event":{"id":"01HY4C2F5J8M1Q4T7W0Z3C6F9J","event_type":"incident.role.assigned",
        "resource_type":"incident","occurred_at":"2024-05-17T12:30:00.000Z",
        "agent":{"id":"PLH1HKV","type":"user_reference","summary":"Maya Okafor"},"client":null,
        "data":{"type":"incident_role_assignment","role":{"name":"Incident Commander"},
          "incident":{"id":"Q1EZAYE5KCTLMW","type":"incident_reference"}}}}"#;
    let (event, typed) = receive(json);
    let PagerdutyEvent::Untyped(u) = &typed else {
        panic!("{typed:?}")
    };
    assert_eq!(u.event_type.as_deref(), Some("incident.role.assigned"));
    assert_eq!(u.reason, None);
    assert_eq!(
        u.payload["event"]["data"]["role"]["name"],
        "Incident Commander"
    );
    assert_eq!(event.name().as_str(), "incident.role.assigned");
    assert_eq!(event.subject().map(|s| s.as_str()), Some(INCIDENT));
    // Loop prevention still sees who did it.
    assert_eq!(event.actor().unwrap().name, "Maya Okafor");
}

#[test]
fn unknown_fields_are_ignored() {
    let mut doc: serde_json::Value = serde_json::from_str(sample("incident.triggered")).unwrap();
    doc["event"]["brand_new"] = serde_json::json!({"x": [1, 2]});
    doc["event"]["data"]["brand_new_field"] = serde_json::json!(true);
    doc["event"]["data"]["priority"]["colour"] = serde_json::json!("red");
    doc["top_level_extra"] = serde_json::json!(null);
    let (_, typed) = receive(&doc.to_string());
    assert_eq!(incident(&typed).event_type, IncidentEventType::Triggered);
    let mut v2: serde_json::Value = serde_json::from_str(sample("v2.incident.resolve")).unwrap();
    v2["messages"][0]["incident"]["new_thing"] = serde_json::json!({"a": 1});
    let (_, typed) = receive(&v2.to_string());
    assert_eq!(incident(&typed).event_type, IncidentEventType::Resolved);
}

#[test]
fn malformed_bodies_are_rejected() {
    let p = provider(&[SECRET]);
    for body in [
        "{\"event\":{\"id\":\"x\",",
        "[]",
        "\"text\"",
        "{}",
        "{\"messages\":[]}",
    ] {
        let delivery = signed(body);
        assert!(p.verify(&delivery).is_ok(), "{body}");
        assert!(
            matches!(p.identify(&delivery), Err(IdentifyError::Malformed(_))),
            "{body}"
        );
        assert!(
            matches!(
                p.parse(&delivery),
                Err(ParseError::Identify(IdentifyError::Malformed(_)))
            ),
            "{body}"
        );
    }
    let mut form = signed(sample("pagey.ping"));
    form.headers.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    assert!(matches!(
        p.identify(&form),
        Err(IdentifyError::UnsupportedContentType(_))
    ));
    assert!(PagerdutyEvent::from_json(b"{\"event\":").is_err());
}

#[test]
fn registry_style_options() {
    let options: PagerdutyOptions = toml::Table::new().try_into().unwrap();
    assert!(Pagerduty::new(vec![Secret::new(SECRET)], options).is_ok());
    let unknown: toml::Table = toml::from_str("accept_unsigned_v2 = true").unwrap();
    assert!(unknown.try_into::<PagerdutyOptions>().is_err());
}
