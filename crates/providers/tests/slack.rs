//! The Slack provider end to end: every sample signs, verifies, identifies and parses to its
//! typed event; the `url_verification` handshake answers only signed challenges; retries
//! share a delivery id; stale requests, unknown events, unknown fields and malformed bodies
//! are handled as documented.
#![cfg(feature = "slack")]

use std::collections::BTreeSet;
use std::path::Path;

use hookbridge_core::{
    Event, IdentifyError, ParseError, Provider, RawDelivery, Secret, VerifyError,
};
use hookbridge_providers::slack::events::*;
use hookbridge_providers::slack::{SAMPLES, Slack, SlackOptions};
use time::{Duration, OffsetDateTime};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const TEAM: &str = "T0AB12CD3";
const CHANNEL: &str = "C04MX3Q6W9K";
/// The verification token in the samples: a shared secret that must never be kept.
const TOKEN: &str = "Jhj5dZrVaK7ZwHHjRyZWjbDl";

fn provider(secrets: &[&str]) -> Slack {
    Slack::new(
        secrets.iter().map(|s| Secret::new(*s)).collect(),
        SlackOptions::default(),
    )
    .unwrap()
}

fn sample(name: &str) -> (&'static str, &'static str) {
    let s = SAMPLES
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no sample {name}"));
    (s.event_type, s.json)
}

/// Signs a request as Slack would at `now` and returns it as received.
fn signed_at(event_type: &str, json: &str, now: OffsetDateTime) -> RawDelivery {
    let signed = provider(&[SECRET])
        .sign(event_type, json.as_bytes(), "unused", now)
        .unwrap();
    RawDelivery::new("slack", signed.headers, signed.body)
}

fn signed(event_type: &str, json: &str) -> RawDelivery {
    signed_at(event_type, json, OffsetDateTime::now_utc())
}

/// The whole path: handshake (none), verify, identify, parse.
fn receive(event_type: &str, json: &str) -> (Event, SlackEvent) {
    let p = provider(&[SECRET]);
    let delivery = signed(event_type, json);
    assert!(p.handshake(&delivery).is_none());
    p.verify(&delivery).unwrap();
    let identity = p.identify(&delivery).unwrap();
    assert_eq!(identity.event_type, event_type);
    let event = p.parse(&delivery).unwrap();
    assert_eq!(event.delivery_id(), &identity.delivery_id);
    assert_eq!(event.provider().as_str(), "slack");
    let json = serde_json::to_string(&event).unwrap();
    assert!(
        !json.contains(TOKEN),
        "the verification token leaked: {json}"
    );
    let typed = event.payload::<SlackEvent>().unwrap().clone();
    (event, typed)
}

fn receive_sample(name: &str) -> (Event, SlackEvent) {
    let (event_type, json) = sample(name);
    receive(event_type, json)
}

fn callback(typed: &SlackEvent) -> &EventCallback {
    match typed {
        SlackEvent::EventCallback(e) => e,
        other => panic!("not an event_callback: {other:?}"),
    }
}

/// An expected actor: (id, is a bot).
type Actor = Option<(&'static str, bool)>;

fn message_key(ts: &str) -> String {
    format!("slack:{TEAM}/{CHANNEL}/{ts}")
}

#[test]
fn every_sample_is_listed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/slack");
    let files: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|name| name.strip_suffix(".json").map(str::to_owned))
        .collect();
    let listed: BTreeSet<String> = SAMPLES.iter().map(|s| s.name.to_owned()).collect();
    assert_eq!(files, listed);
}

#[test]
fn every_sample_signs_verifies_identifies_and_parses_typed() {
    #[rustfmt::skip]
    let expected: &[(&str, String, &str, Actor)] = &[
        ("message", message_key("1715937663.000200"), "Ev07355Y8N3C", Some(("U061F7AUR", false))),
        ("message.bot_message", message_key("1715937665.000300"), "Ev07355Z1Q7D", Some(("B04PD8Q2K1X", true))),
        ("message.message_changed", message_key("1715937663.000200"), "Ev0735605R2E", Some(("U061F7AUR", false))),
        ("app_mention", message_key("1715937720.000400"), "Ev0735639S4F", Some(("U061F7AUR", false))),
        ("reaction_added", message_key("1715937663.000200"), "Ev07356B2T5G", Some(("U0G9QF9C6", false))),
        ("interactive", format!("slack:{TEAM}"), "interactive:7123456789012.1234567890123.0a1b2c3d4e5f60718293a4b5c6d7e8f9", Some(("U061F7AUR", false))),
    ];
    assert_eq!(expected.len(), SAMPLES.len());
    for (name, subject, delivery_id, actor) in expected {
        let (event, typed) = receive_sample(name);
        match &typed {
            SlackEvent::EventCallback(e) => {
                if let InnerEvent::Untyped(u) = &e.event {
                    panic!("{name}: inner event untyped, reason {:?}", u.reason);
                }
                assert!(event.occurred_at().is_some(), "{name}");
            }
            SlackEvent::Interactive(_) => assert_eq!(*name, "interactive"),
            SlackEvent::Untyped(u) => panic!("{name}: untyped, reason {:?}", u.reason),
        }
        assert_eq!(event.name().as_str(), *name);
        assert_eq!(typed.name(), *name);
        assert_eq!(
            event.subject().map(|s| s.as_str()),
            Some(subject.as_str()),
            "{name}"
        );
        assert_eq!(event.delivery_id().as_str(), *delivery_id, "{name}");
        assert_eq!(
            event.actor().map(|a| (a.name.as_str(), a.is_bot)),
            *actor,
            "{name}"
        );
    }
}

#[test]
fn message() {
    let (event, typed) = receive_sample("message");
    let e = callback(&typed);
    assert_eq!(e.team_id, TEAM);
    assert_eq!(e.api_app_id.as_deref(), Some("A06QJ2M8W4K"));
    assert_eq!(e.event_id, "Ev07355Y8N3C");
    assert_eq!(e.is_ext_shared_channel, Some(false));
    assert_eq!(e.authorizations[0].user_id.as_deref(), Some("U06QJ4B0Z2R"));
    assert!(e.authorizations[0].is_bot);
    let InnerEvent::Message(m) = &e.event else {
        panic!("{:?}", e.event)
    };
    assert_eq!(m.channel, CHANNEL);
    assert_eq!(m.user.as_deref(), Some("U061F7AUR"));
    assert!(
        m.text
            .as_deref()
            .unwrap()
            .starts_with("Checkout API error rate")
    );
    assert_eq!(m.subtype, None);
    assert_eq!(m.channel_type.as_deref(), Some("channel"));
    assert!(m.bot_id.is_none());
    assert_eq!(
        event.occurred_at().map(OffsetDateTime::unix_timestamp),
        Some(1715937663)
    );
}

#[test]
fn bot_messages_are_bots() {
    let (event, typed) = receive_sample("message.bot_message");
    let InnerEvent::Message(m) = &callback(&typed).event else {
        panic!()
    };
    assert_eq!(m.subtype, Some(MessageSubtype::BotMessage));
    assert_eq!(m.username.as_deref(), Some("PagerDuty"));
    assert!(m.user.is_none());
    let actor = event.actor().unwrap();
    assert!(actor.is_bot);
    assert_eq!(actor.id.as_deref(), Some("B04PD8Q2K1X"));
    // A message posted by an app's bot user carries both `user` and `bot_id`: still a bot.
    let mut doc: serde_json::Value = serde_json::from_str(sample("message").1).unwrap();
    doc["event"]["bot_id"] = serde_json::json!("B06QJ4B0Z2S");
    let (event, _) = receive("message", &doc.to_string());
    let actor = event.actor().unwrap();
    assert_eq!(
        (actor.id.as_deref(), actor.is_bot),
        (Some("U061F7AUR"), true)
    );
}

#[test]
fn edits_are_about_the_edited_message() {
    let (event, typed) = receive_sample("message.message_changed");
    let InnerEvent::Message(m) = &callback(&typed).event else {
        panic!()
    };
    assert_eq!(m.subtype, Some(MessageSubtype::MessageChanged));
    assert!(m.hidden);
    assert_eq!(m.ts, "1715937702.000300");
    assert_eq!(m.message_ts(), "1715937663.000200");
    assert_eq!(m.author(), Some("U061F7AUR"));
    // The same subject as the original message: edits queue behind it.
    let (original, _) = receive_sample("message");
    assert_eq!(event.subject(), original.subject());
}

#[test]
fn mentions_and_reactions() {
    let (_, typed) = receive_sample("app_mention");
    let InnerEvent::AppMention(m) = &callback(&typed).event else {
        panic!()
    };
    assert!(m.text.starts_with("<@U06QJ4B0Z2R>"));
    assert_eq!(m.thread_ts.as_deref(), Some("1715937665.000300"));
    let (_, typed) = receive_sample("reaction_added");
    let InnerEvent::ReactionAdded(r) = &callback(&typed).event else {
        panic!()
    };
    assert_eq!(r.reaction, "white_check_mark");
    assert_eq!(r.item.kind, "message");
    assert_eq!(r.item_user.as_deref(), Some("U061F7AUR"));
    // A reaction to a file is about the workspace.
    let mut doc: serde_json::Value = serde_json::from_str(sample("reaction_added").1).unwrap();
    doc["event"]["item"] = serde_json::json!({"type": "file", "file": "F0RDC39U1"});
    let (event, _) = receive("reaction_added", &doc.to_string());
    assert_eq!(
        event.subject().map(|s| s.as_str().to_owned()),
        Some(format!("slack:{TEAM}"))
    );
}

#[test]
fn interactivity_is_kept_as_json() {
    let (event, typed) = receive_sample("interactive");
    let SlackEvent::Interactive(i) = &typed else {
        panic!("{typed:?}")
    };
    assert_eq!(i.kind, "block_actions");
    assert_eq!(i.team_id.as_deref(), Some(TEAM));
    assert_eq!(i.user_name.as_deref(), Some("maya.okafor"));
    assert_eq!(i.payload["actions"][0]["value"], "Q1EZAYE5KCTLMW");
    assert!(i.payload.get("token").is_none());
    assert!(event.occurred_at().is_none());
    let delivery = signed("interactive", sample("interactive").1);
    assert_eq!(
        delivery.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert!(delivery.body.starts_with(b"payload=%7B"));
}

/// Slack's documented example body is a slash command: it parses as an interactive event.
#[test]
fn slash_commands_are_interactive() {
    let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    headers.insert("x-slack-request-timestamp", "1531420618".parse().unwrap());
    headers.insert(
        "x-slack-signature",
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
            .parse()
            .unwrap(),
    );
    let delivery = RawDelivery::new("slack", headers, body);
    let p = provider(&["8f742231b10e8888abcd99yyyzzz85a5"]);
    // Signed correctly, but in 2018: a replay today.
    assert!(matches!(p.verify(&delivery), Err(VerifyError::Stale(_))));
    let event = p.parse(&delivery).unwrap();
    assert_eq!(event.name().as_str(), "interactive");
    assert_eq!(
        event.delivery_id().as_str(),
        "interactive:398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    );
    assert_eq!(event.subject().unwrap().as_str(), "slack:T1DC2JH3J");
    assert_eq!(event.actor().unwrap().name, "U2CERLKJA");
    let SlackEvent::Interactive(i) = event.payload::<SlackEvent>().unwrap() else {
        panic!()
    };
    assert_eq!(i.kind, "slash_command");
    assert_eq!(i.payload["command"], "/webhook-collect");
    assert!(
        !event
            .payload_json()
            .to_string()
            .contains("xyzz0WbapA4vBCDEFasx0q6G")
    );
}

#[test]
fn url_verification_handshake_needs_a_valid_signature() {
    let challenge = r#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let p = provider(&[SECRET]);
    let ok = signed("url_verification", challenge);
    let answer = p.handshake(&ok).expect("a signed challenge is answered");
    assert_eq!(answer.status, http::StatusCode::OK);
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        body["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    // The server's path for a forged or replayed challenge: no handshake, then 401.
    let forged = {
        let s = provider(&["someone else's secret"])
            .sign(
                "url_verification",
                challenge.as_bytes(),
                "x",
                OffsetDateTime::now_utc(),
            )
            .unwrap();
        RawDelivery::new("slack", s.headers, s.body)
    };
    assert!(p.handshake(&forged).is_none());
    assert!(matches!(
        p.verify(&forged),
        Err(VerifyError::Mismatch { .. })
    ));
    let replayed = signed_at(
        "url_verification",
        challenge,
        OffsetDateTime::now_utc() - Duration::minutes(6),
    );
    assert!(p.handshake(&replayed).is_none());
    assert!(matches!(p.verify(&replayed), Err(VerifyError::Stale(_))));
    let mut unsigned = signed("url_verification", challenge);
    unsigned.headers.remove("x-slack-signature");
    assert!(p.handshake(&unsigned).is_none());
    assert!(matches!(
        p.verify(&unsigned),
        Err(VerifyError::MissingSignature { .. })
    ));
    // A rotating endpoint answers challenges signed with either secret.
    assert!(provider(&["next secret", SECRET]).handshake(&ok).is_some());
}

#[test]
fn retries_share_the_event_id() {
    let (_, json) = sample("message");
    let p = provider(&[SECRET]);
    let first = p.identify(&signed("message", json)).unwrap();
    let mut retry = signed("message", json);
    retry
        .headers
        .insert("x-slack-retry-num", "1".parse().unwrap());
    retry
        .headers
        .insert("x-slack-retry-reason", "http_timeout".parse().unwrap());
    assert!(p.verify(&retry).is_ok());
    assert_eq!(p.identify(&retry).unwrap().delivery_id, first.delivery_id);
}

#[test]
fn stale_requests_and_rotation() {
    let (event_type, json) = sample("app_mention");
    let p = provider(&[SECRET]);
    let old = signed_at(
        event_type,
        json,
        OffsetDateTime::now_utc() - Duration::minutes(10),
    );
    assert!(matches!(p.verify(&old), Err(VerifyError::Stale(_))));
    let future = signed_at(
        event_type,
        json,
        OffsetDateTime::now_utc() + Duration::minutes(10),
    );
    assert!(matches!(p.verify(&future), Err(VerifyError::Stale(_))));
    let rotating = provider(&["previous", SECRET]);
    assert_eq!(
        rotating
            .verify(&signed(event_type, json))
            .unwrap()
            .secret_index,
        1
    );
}

#[test]
fn unknown_events_are_kept() {
    let json = format!(
        r#"{{"token":"{TOKEN}","team_id":"{TEAM}","api_app_id":"A06QJ2M8W4K","type":"event_callback",
          "event":{{"type":"channel_created","channel":{{"id":"C0NEW","name":"inc-4183","created":1715938000,"creator":"U061F7AUR"}},
            "event_ts":"1715938000.000100"}},
          "event_id":"Ev0736AA1B2C","event_time":1715938000}}"#
    );
    let (event, typed) = receive("channel_created", &json);
    let InnerEvent::Untyped(u) = &callback(&typed).event else {
        panic!("{typed:?}")
    };
    assert_eq!(u.event_type, "channel_created");
    assert_eq!(u.reason, None);
    assert_eq!(u.payload["channel"]["name"], "inc-4183");
    assert_eq!(event.name().as_str(), "channel_created");
    assert_eq!(
        event.subject().map(|s| s.as_str().to_owned()),
        Some(format!("slack:{TEAM}"))
    );
    assert_eq!(
        event.occurred_at().map(OffsetDateTime::unix_timestamp),
        Some(1715938000)
    );

    let limited = format!(
        r#"{{"token":"{TOKEN}","type":"app_rate_limited","team_id":"{TEAM}","minute_rate_limited":1518467820,"api_app_id":"A06QJ2M8W4K"}}"#
    );
    let (event, typed) = receive("app_rate_limited", &limited);
    assert!(matches!(typed, SlackEvent::Untyped(_)));
    assert_eq!(event.name().as_str(), "app_rate_limited");
    assert_eq!(
        event.delivery_id().as_str(),
        format!("app_rate_limited:{TEAM}:1518467820")
    );
}

#[test]
fn unknown_fields_are_ignored() {
    let mut doc: serde_json::Value = serde_json::from_str(sample("reaction_added").1).unwrap();
    doc["brand_new_envelope_field"] = serde_json::json!({"a": [1]});
    doc["event"]["brand_new_event_field"] = serde_json::json!(true);
    doc["event"]["item"]["extra"] = serde_json::json!("x");
    doc["authorizations"][0]["new_flag"] = serde_json::json!(1);
    let (_, typed) = receive("reaction_added", &doc.to_string());
    assert!(matches!(
        &callback(&typed).event,
        InnerEvent::ReactionAdded(_)
    ));
}

#[test]
fn malformed_bodies_are_rejected() {
    let p = provider(&[SECRET]);
    for body in ["{\"type\":\"event_callback\",", "[]", "{}", "null"] {
        let delivery = signed("message", body);
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
    let not_json_payload = signed("interactive", "{not json");
    assert!(matches!(
        p.identify(&not_json_payload),
        Err(IdentifyError::Malformed(_))
    ));
    let mut xml = signed("message", sample("message").1);
    xml.headers
        .insert("content-type", "application/xml".parse().unwrap());
    assert!(matches!(
        p.identify(&xml),
        Err(IdentifyError::UnsupportedContentType(_))
    ));
    assert!(SlackEvent::from_json(b"{\"type\":").is_err());
}
