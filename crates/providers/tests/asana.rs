//! The Asana provider end to end: the handshake and learned secrets, every sample signed,
//! verified, identified and parsed to a typed batch, forward compatibility and error rules.
#![cfg(feature = "asana")]

use hookbridge_core::signature::{Encoding, SignatureMismatch};
use hookbridge_core::{
    IdentifyError, ParseError, Provider, RawDelivery, Secret, SignError, VerifyError,
};
use hookbridge_providers::asana::events::{AsanaEvent, ChangeAction, EventAction, ResourceType};
use hookbridge_providers::asana::{Asana, AsanaOptions, SAMPLES};
use http::{HeaderMap, Method, StatusCode};
use time::OffsetDateTime;

/// Asana's documented handshake secret (https://developers.asana.com/reference/createwebhook).
const HOOK_SECRET: &str = "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81";
const T1: &str = "asana:task/1207332211000001";
const ALICE: &str = "1201119191231293";
const BOB: &str = "1201119191231377";

fn asana(secrets: &[&str]) -> Asana {
    Asana::new(
        secrets.iter().map(|s| Secret::new(*s)).collect(),
        AsanaOptions::default(),
    )
    .unwrap()
}

fn signed(body: &[u8]) -> RawDelivery {
    let signed = asana(&[HOOK_SECRET])
        .sign("", body, "", OffsetDateTime::now_utc())
        .unwrap();
    assert_eq!(signed.query, None);
    RawDelivery::new("asana", signed.headers, signed.body)
}

fn sample(name: &str) -> &'static str {
    SAMPLES
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no sample {name}"))
        .json
}

/// Parses a sample through the whole path with an endpoint that learned its secret after an
/// older one was configured (rotation).
fn parsed(name: &str) -> (hookbridge_core::Event, AsanaEvent) {
    let provider = asana(&["secret-of-the-previous-webhook"]);
    assert!(provider.learn_secret(Secret::new(HOOK_SECRET)));
    let delivery = signed(sample(name).as_bytes());
    assert_eq!(provider.verify(&delivery).unwrap().secret_index, 1);
    let identity = provider.identify(&delivery).unwrap();
    assert_eq!(identity.event_type, name);
    let event = provider.parse(&delivery).unwrap();
    assert_eq!(event.delivery_id(), &identity.delivery_id);
    let typed = event.payload::<AsanaEvent>().unwrap().clone();
    (event, typed)
}

#[test]
fn handshake_then_learned_secret_then_deliveries() {
    let provider = asana(&[]);
    let heartbeat = signed(sample("heartbeat").as_bytes());

    // Before the handshake nothing verifies, and the error says why.
    let before = provider.verify(&heartbeat).unwrap_err();
    assert!(
        before.to_string().contains("handshake has not happened"),
        "{before}"
    );

    let mut headers = HeaderMap::new();
    headers.insert("x-hook-secret", HOOK_SECRET.parse().unwrap());
    let request = RawDelivery::new("asana", headers, Vec::new());
    let answer = provider.handshake(&request).unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["x-hook-secret"], HOOK_SECRET);
    assert!(answer.body.is_empty());
    // The handshake grants nothing by itself: the server decides (no secret yet here).
    assert!(!provider.has_secret());
    assert!(provider.verify(&heartbeat).is_err());

    assert!(provider.learn_secret(answer.learned_secret.unwrap()));
    assert!(provider.has_secret());
    let ok = provider.verify(&heartbeat).unwrap();
    assert_eq!((ok.scheme, ok.secret_index), ("x-hook-signature", 0));

    // Deliveries are never handshakes.
    assert!(provider.handshake(&heartbeat).is_none());
    let mut get = request.clone();
    get.method = Method::GET;
    assert!(provider.handshake(&get).is_none());
}

#[test]
fn every_sample_is_listed_signed_verified_and_typed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/asana");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut listed: Vec<String> = SAMPLES.iter().map(|s| format!("{}.json", s.name)).collect();
    listed.sort();
    assert_eq!(files, listed);

    for s in SAMPLES {
        assert_eq!(s.name, s.event_type);
        let (event, typed) = parsed(s.name);
        let AsanaEvent::Batch(batch) = &typed else {
            panic!("{}: untyped: {typed:?}", s.name)
        };
        assert_eq!(event.name().as_str(), s.name);
        assert_eq!(event.provider().as_str(), "asana");
        let subject = match s.name {
            "batch" | "heartbeat" => "asana:batch",
            _ => T1,
        };
        assert_eq!(event.subject().unwrap().as_str(), subject, "{}", s.name);
        assert!(event.delivery_id().as_str().starts_with("sha256:"));
        assert_eq!(event.delivery_id().as_str().len(), "sha256:".len() + 64);
        for item in &batch.events {
            assert!(!matches!(item.action, EventAction::Other(_)), "{}", s.name);
            assert!(!matches!(
                item.resource.resource_type,
                ResourceType::Other(_)
            ));
        }
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["payload"]["kind"], "batch");
    }
}

#[test]
fn heartbeat() {
    let (event, typed) = parsed("heartbeat");
    assert!(typed.is_heartbeat() && typed.is_empty());
    assert_eq!(event.actor(), None);
    assert_eq!(event.occurred_at(), None);
    // Every heartbeat has the same key: the next one is a duplicate, acknowledged and dropped.
    let provider = asana(&[HOOK_SECRET]);
    let a = provider.identify(&signed(b"{\"events\":[]}")).unwrap();
    let b = provider
        .identify(&signed(sample("heartbeat").as_bytes()))
        .unwrap();
    assert_eq!(
        a.delivery_id.as_str(),
        "sha256:24de1c4a19c43ad41b013f13dcd858c17b0daa7f33a53f19913e5b11366d1c2e"
    );
    assert_eq!(b.event_type, "heartbeat");
}

#[test]
fn task_added_and_changed() {
    let (event, added) = parsed("task.added");
    let item = &added.events()[0];
    assert_eq!(item.action, EventAction::Added);
    assert_eq!(
        item.resource.name.as_deref(),
        Some("Fix login redirect loop")
    );
    assert_eq!(
        item.parent.as_ref().unwrap().resource_type,
        ResourceType::Project
    );
    assert_eq!(event.actor().unwrap().id.as_deref(), Some(ALICE));
    assert_eq!(
        event.occurred_at().map(|t| t.unix_timestamp()),
        Some(1715936463) // 2024-05-17T09:01:03Z
    );

    let (event, changed) = parsed("task.changed");
    assert_eq!(changed.len(), 3);
    let fields: Vec<&str> = changed
        .events()
        .iter()
        .map(|e| e.change.as_ref().unwrap().field.as_str())
        .collect();
    assert_eq!(fields, ["name", "assignee", "custom_fields"]);
    let assignee = changed.events()[1].change.as_ref().unwrap();
    assert_eq!(assignee.action, ChangeAction::Changed);
    assert_eq!(assignee.new_value.as_ref().unwrap()["gid"], BOB);
    assert_eq!(
        changed.events()[2]
            .change
            .as_ref()
            .unwrap()
            .new_value
            .as_ref()
            .unwrap()["enum_value"]["resource_type"],
        "enum_option"
    );
    // The latest event's time.
    assert_eq!(
        event.occurred_at().map(|t| t.unix_timestamp()),
        Some(1715936712) // 2024-05-17T09:05:12Z
    );
}

#[test]
fn story_added_is_about_its_task() {
    let (event, typed) = parsed("story.added");
    let item = &typed.events()[0];
    assert_eq!(item.resource.resource_type, ResourceType::Story);
    assert_eq!(
        item.resource.resource_subtype.as_deref(),
        Some("comment_added")
    );
    assert_eq!(item.object().gid, "1207332211000001");
    assert_eq!(event.subject().unwrap().as_str(), T1);
    let actor = event.actor().unwrap();
    assert_eq!((actor.id.as_deref(), actor.name.as_str()), (Some(BOB), BOB));
    assert!(!actor.is_bot);
}

#[test]
fn mixed_batch() {
    let (event, typed) = parsed("batch");
    assert_eq!(typed.len(), 4);
    assert_eq!(event.name().as_str(), "batch");
    assert_eq!(event.subject().unwrap().as_str(), "asana:batch");
    // The first event's user.
    assert_eq!(event.actor().unwrap().id.as_deref(), Some(BOB));
    let memberships = typed.events()[3].change.as_ref().unwrap();
    assert_eq!(memberships.action, ChangeAction::Added);
    assert_eq!(
        memberships.added_value.as_ref().unwrap()["resource_type"],
        "section"
    );
}

#[test]
fn verification_matrix() {
    let provider = asana(&[HOOK_SECRET]);
    let body = sample("task.changed").as_bytes();
    let good = signed(body);
    provider.verify(&good).unwrap();

    let mut tampered = good.clone();
    tampered.body = String::from_utf8(body.to_vec())
        .unwrap()
        .replace("\"name\"", "\"notes\"")
        .into_bytes()
        .into();
    let mismatch = provider.verify(&tampered).unwrap_err();
    assert_eq!(
        mismatch,
        VerifyError::Mismatch {
            header: "x-hook-signature",
            source: SignatureMismatch::NoMatch(1)
        }
    );
    assert_eq!(asana(&["other"]).verify(&good).unwrap_err(), mismatch);

    let mut missing = good.clone();
    missing.headers.remove("x-hook-signature");
    let missing = provider.verify(&missing).unwrap_err();
    assert_eq!(
        missing,
        VerifyError::MissingSignature {
            header: "x-hook-signature"
        }
    );

    let mut malformed = good.clone();
    malformed
        .headers
        .insert("x-hook-signature", "sha256=abc".parse().unwrap());
    let malformed = provider.verify(&malformed).unwrap_err();
    assert_eq!(
        malformed,
        VerifyError::Mismatch {
            header: "x-hook-signature",
            source: SignatureMismatch::Malformed(Encoding::Hex)
        }
    );

    let no_handshake = asana(&[]).verify(&good).unwrap_err();
    let distinct = [mismatch, missing, malformed, no_handshake];
    for (i, a) in distinct.iter().enumerate() {
        for b in &distinct[i + 1..] {
            assert_ne!(a, b);
        }
        assert!(!a.to_string().contains(HOOK_SECRET));
    }
}

#[test]
fn the_parser_never_verifies_nor_learns() {
    let parser = hookbridge_providers::parser("asana");
    // Only when the lead has wired the parser; until then the kind is unknown.
    if let Ok(parser) = parser {
        assert!(!parser.learn_secret(Secret::new(HOOK_SECRET)));
        assert!(parser.verify(&signed(b"{\"events\":[]}")).is_err());
    }
    assert!(matches!(
        asana(&[]).sign("", b"{}", "", OffsetDateTime::now_utc()),
        Err(SignError::NoSecret)
    ));
}

#[test]
fn unknown_actions_and_resource_types_stay_typed() {
    let json = br#"{"events":[{"user":{"gid":"1201119191231293","resource_type":"user"},
        "created_at":"2024-05-17T10:00:00.000Z","action":"archived",
        "resource":{"gid":"1207332211009999","resource_type":"status_update"},"parent":null}]}"#;
    let event = asana(&[HOOK_SECRET]).parse(&signed(json)).unwrap();
    assert_eq!(event.name().as_str(), "status_update.archived");
    assert_eq!(
        event.subject().unwrap().as_str(),
        "asana:status_update/1207332211009999"
    );
    let typed = event.payload::<AsanaEvent>().unwrap();
    let item = &typed.events()[0];
    assert_eq!(item.action, EventAction::Other("archived".into()));
    assert_eq!(
        item.resource.resource_type,
        ResourceType::Other("status_update".into())
    );
    let json = serde_json::to_value(typed).unwrap();
    assert_eq!(json["payload"]["events"][0]["action"], "archived");
}

#[test]
fn unknown_fields_are_ignored() {
    let mut doc: serde_json::Value = serde_json::from_str(sample("task.changed")).unwrap();
    doc["brand_new"] = serde_json::json!({"nested": [1, {"deep": true}]});
    doc["events"][0]["resource"]["color"] = serde_json::json!("red");
    doc["events"][0]["type"] = serde_json::json!("task");
    let body = serde_json::to_vec(&doc).unwrap();
    let event = asana(&[HOOK_SECRET]).parse(&signed(&body)).unwrap();
    assert_eq!(event.name().as_str(), "task.changed");
    assert!(matches!(
        event.payload::<AsanaEvent>().unwrap(),
        AsanaEvent::Batch(_)
    ));
}

#[test]
fn wrong_shape_is_untyped_with_reason() {
    // An event without `resource`: well-formed, but not the typed batch.
    let json = br#"{"events":[{"user":{"gid":"1201119191231293","resource_type":"user"},
        "created_at":"2024-05-17T10:00:00.000Z","action":"changed"}]}"#;
    let provider = asana(&[HOOK_SECRET]);
    let delivery = signed(json);
    assert_eq!(
        provider.identify(&delivery).unwrap().event_type,
        "unknown.changed"
    );
    let event = provider.parse(&delivery).unwrap();
    let AsanaEvent::Untyped(untyped) = event.payload::<AsanaEvent>().unwrap() else {
        panic!("typed")
    };
    assert!(untyped.reason.as_deref().unwrap().contains("resource"));
    assert_eq!(event.name().as_str(), "batch");
    assert_eq!(event.subject().unwrap().as_str(), "asana:batch");
    assert_eq!(event.actor().unwrap().id.as_deref(), Some(ALICE));
    assert_eq!(event.payload::<AsanaEvent>().unwrap().len(), 1);
}

#[test]
fn malformed_bodies_are_rejected() {
    let provider = asana(&[HOOK_SECRET]);
    for body in [&b"{\"events\":"[..], b"[]", b"", b"{}", b"not json"] {
        let d = signed(body);
        provider.verify(&d).unwrap();
        assert!(matches!(
            provider.identify(&d),
            Err(IdentifyError::Malformed(_))
        ));
        assert!(matches!(
            provider.parse(&d),
            Err(ParseError::Identify(IdentifyError::Malformed(_)))
        ));
    }
    for body in [&b"{\"events\":"[..], b"[]", b"", b"not json"] {
        assert!(AsanaEvent::from_json(body).is_err());
    }
    let mut form = signed(sample("heartbeat").as_bytes());
    form.headers.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    assert!(matches!(
        provider.identify(&form),
        Err(IdentifyError::UnsupportedContentType(_))
    ));
}
