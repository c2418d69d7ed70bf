//! The Trello provider end to end: every sample signs, verifies, identifies and parses to its
//! typed envelope; the HEAD check; forward compatibility and error rules.
#![cfg(feature = "trello")]

use hookbridge_core::signature::{Encoding, SignatureMismatch};
use hookbridge_core::{IdentifyError, ParseError, Provider, RawDelivery, Secret, VerifyError};
use hookbridge_providers::trello::events::{ActionType, CheckItemState, TrelloEvent};
use hookbridge_providers::trello::{SAMPLES, Trello, TrelloOptions};
use http::{HeaderMap, Method, StatusCode};
use time::OffsetDateTime;

const CALLBACK: &str = "https://hooks.example.com/hooks/trello?board=65e9a0b1c2d3e4f5a6b7c000";
const CARD: &str = "trello:card/65f1d2e3a4b5c6d7e8f90a1b";
const LIST: &str = "trello:list/65e9a0b1c2d3e4f5a6b7c102";
const BOARD: &str = "trello:board/65e9a0b1c2d3e4f5a6b7c000";
const ALICE_ID: &str = "5a1b2c3d4e5f60718293a4b5";

fn trello() -> Trello {
    Trello::new(
        vec![Secret::new("old-app-secret"), Secret::new("app-secret")],
        TrelloOptions {
            callback_url: CALLBACK.into(),
        },
    )
    .unwrap()
}

/// Signs with a provider whose first secret is `app-secret`, as Trello would.
fn signed(body: &[u8]) -> RawDelivery {
    let signer = Trello::new(
        vec![Secret::new("app-secret")],
        TrelloOptions {
            callback_url: CALLBACK.into(),
        },
    )
    .unwrap();
    let signed = signer
        .sign("", body, "", OffsetDateTime::now_utc())
        .unwrap();
    assert_eq!(signed.query, None);
    RawDelivery::new("trello", signed.headers, signed.body)
}

fn sample(name: &str) -> &'static str {
    SAMPLES
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no sample {name}"))
        .json
}

/// Parses a sample through the whole provider path and returns the typed event.
fn parsed(name: &str) -> (hookbridge_core::Event, TrelloEvent) {
    let provider = trello();
    let delivery = signed(sample(name).as_bytes());
    let verified = provider.verify(&delivery).unwrap();
    assert_eq!(verified.secret_index, 1, "{name}: rotation");
    let identity = provider.identify(&delivery).unwrap();
    assert_eq!(identity.event_type, name);
    let event = provider.parse(&delivery).unwrap();
    assert_eq!(event.delivery_id(), &identity.delivery_id);
    let typed = event.payload::<TrelloEvent>().unwrap().clone();
    (event, typed)
}

#[test]
fn every_sample_is_listed_signed_verified_and_typed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/trello");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut listed: Vec<String> = SAMPLES.iter().map(|s| format!("{}.json", s.name)).collect();
    listed.sort();
    assert_eq!(files, listed);
    assert!(SAMPLES.len() >= 14);

    let expected_subject = |name: &str| match name {
        "createList" | "updateList" => LIST,
        "updateBoard" => BOARD,
        _ => CARD,
    };
    for s in SAMPLES {
        assert_eq!(s.name, s.event_type);
        let (event, typed) = parsed(s.name);
        let TrelloEvent::Action(payload) = &typed else {
            panic!("{}: untyped: {typed:?}", s.name)
        };
        assert!(
            !matches!(payload.action.kind, ActionType::Other(_)),
            "{}: known type",
            s.name
        );
        assert_eq!(payload.action.kind.as_str(), s.name);
        assert_eq!(event.name().as_str(), s.name);
        assert_eq!(event.provider().as_str(), "trello");
        assert_eq!(
            event.subject().map(|k| k.as_str()),
            Some(expected_subject(s.name)),
            "{}",
            s.name
        );
        let actor = event.actor().unwrap();
        assert_eq!(actor.id.as_deref(), Some(ALICE_ID));
        assert_eq!(actor.name, "alicemartin");
        assert!(!actor.is_bot);
        assert_eq!(event.occurred_at(), Some(payload.action.date));
        assert_eq!(
            payload.model.as_ref().map(|m| m.id.len()),
            Some(24),
            "{}",
            s.name
        );
        // `inspect` output: the typed payload serializes back with its wire names.
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["payload"]["kind"], "action");
        assert_eq!(json["payload"]["payload"]["action"]["type"], s.name);
    }
}

#[test]
fn update_card_exposes_the_changed_fields() {
    let (_, typed) = parsed("updateCard");
    assert_eq!(typed.changed_fields(), ["idList"]);
    let data = &typed.payload().unwrap().action.data;
    let old = data.old.as_ref().unwrap();
    assert_eq!(old["idList"], "65e9a0b1c2d3e4f5a6b7c100");
    assert_eq!(
        data.card.as_ref().unwrap().id_list.as_deref(),
        Some("65e9a0b1c2d3e4f5a6b7c101")
    );
    assert_eq!(
        data.list_before.as_ref().unwrap().name.as_deref(),
        Some("To Do")
    );
    assert_eq!(
        data.list_after.as_ref().unwrap().name.as_deref(),
        Some("Doing")
    );
    assert_eq!(
        typed.updated_at().map(|t| t.unix_timestamp()),
        Some(1715936703) // 2024-05-17T09:05:03Z
    );

    let (_, list) = parsed("updateList");
    assert_eq!(list.changed_fields(), ["name"]);
    let (_, board) = parsed("updateBoard");
    assert_eq!(board.changed_fields(), ["name"]);
    let (_, created) = parsed("createCard");
    assert!(created.changed_fields().is_empty());
}

#[test]
fn sample_details() {
    let (_, comment) = parsed("commentCard");
    let data = &comment.payload().unwrap().action.data;
    // Non-ASCII text went through signing and verification on the raw UTF-8 bytes.
    assert!(
        data.text
            .as_deref()
            .unwrap()
            .contains("staging – the redirect")
    );
    let card = data.card.as_ref().unwrap();
    assert_eq!(card.id_short, Some(42));
    assert_eq!(card.short_link.as_deref(), Some("Zt7mW2qR"));

    let (_, to_board) = parsed("moveCardToBoard");
    let data = &to_board.payload().unwrap().action.data;
    assert_eq!(
        data.board.as_ref().unwrap().name.as_deref(),
        Some("Operations")
    );
    assert_eq!(
        data.board_source.as_ref().unwrap().id,
        "65e9a0b1c2d3e4f5a6b7c000"
    );
    let (_, from_board) = parsed("moveCardFromBoard");
    let data = &from_board.payload().unwrap().action.data;
    assert_eq!(
        data.board_target.as_ref().unwrap().name.as_deref(),
        Some("Operations")
    );

    let (_, added) = parsed("addMemberToCard");
    let action = &added.payload().unwrap().action;
    assert_eq!(
        action.data.id_member.as_deref(),
        Some("5b6c7d8e9f00112233445566")
    );
    assert_eq!(
        action.data.member.as_ref().unwrap().name.as_deref(),
        Some("Bob Okafor")
    );
    assert_eq!(
        action.member.as_ref().unwrap().username.as_deref(),
        Some("bobokafor")
    );
    let (_, removed) = parsed("removeMemberFromCard");
    assert_eq!(
        removed.action_type(),
        Some(&ActionType::RemoveMemberFromCard)
    );

    let (_, label) = parsed("addLabelToCard");
    let l = label.payload().unwrap().action.data.label.clone().unwrap();
    assert_eq!(
        (l.name.as_deref(), l.color.as_deref()),
        (Some("Bug"), Some("red"))
    );

    let (_, check) = parsed("updateCheckItemStateOnCard");
    let data = &check.payload().unwrap().action.data;
    assert_eq!(
        data.check_item.as_ref().unwrap().state,
        Some(CheckItemState::Complete)
    );
    assert_eq!(
        data.checklist.as_ref().unwrap().name.as_deref(),
        Some("Done when")
    );

    let (_, deleted) = parsed("deleteCard");
    let card = deleted.payload().unwrap().action.data.card.clone().unwrap();
    assert_eq!(card.name, None);
}

#[test]
fn head_check_is_answered_without_signature() {
    let mut check = RawDelivery::new("trello", HeaderMap::new(), Vec::new());
    check.method = Method::HEAD;
    let answer = trello().handshake(&check).unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.is_empty());
    assert!(answer.headers.is_empty());
    assert!(answer.learned_secret.is_none());
    // A POST is never a handshake, signed or not.
    assert!(
        trello()
            .handshake(&signed(sample("createCard").as_bytes()))
            .is_none()
    );
}

#[test]
fn verification_matrix() {
    let provider = trello();
    let body = sample("commentCard").as_bytes();
    let good = signed(body);

    let mut tampered = good.clone();
    tampered.body = String::from_utf8(body.to_vec())
        .unwrap()
        .replace("Fix in #214", "Fix in #215")
        .into_bytes()
        .into();
    let mismatch = provider.verify(&tampered).unwrap_err();
    assert_eq!(
        mismatch,
        VerifyError::Mismatch {
            header: "x-trello-webhook",
            source: SignatureMismatch::NoMatch(2)
        }
    );
    let single_mismatch = VerifyError::Mismatch {
        header: "x-trello-webhook",
        source: SignatureMismatch::NoMatch(1),
    };

    let other_url = Trello::new(
        vec![Secret::new("app-secret")],
        TrelloOptions {
            callback_url: "https://hooks.example.com/hooks/trello".into(),
        },
    )
    .unwrap();
    assert_eq!(other_url.verify(&good).unwrap_err(), single_mismatch);

    let wrong_secret = Trello::new(
        vec![Secret::new("someone-else")],
        TrelloOptions {
            callback_url: CALLBACK.into(),
        },
    )
    .unwrap();
    assert_eq!(wrong_secret.verify(&good).unwrap_err(), single_mismatch);

    let mut missing = good.clone();
    missing.headers.remove("x-trello-webhook");
    let missing = provider.verify(&missing).unwrap_err();
    assert_eq!(
        missing,
        VerifyError::MissingSignature {
            header: "x-trello-webhook"
        }
    );

    let mut malformed = good.clone();
    malformed
        .headers
        .insert("x-trello-webhook", "%%%".parse().unwrap());
    let malformed = provider.verify(&malformed).unwrap_err();
    assert_eq!(
        malformed,
        VerifyError::Mismatch {
            header: "x-trello-webhook",
            source: SignatureMismatch::Malformed(Encoding::Base64)
        }
    );
    let distinct = [mismatch.clone(), missing, malformed];
    for (i, a) in distinct.iter().enumerate() {
        for b in &distinct[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // No error message carries a secret.
    for e in &distinct {
        assert!(!e.to_string().contains("app-secret"));
    }
}

#[test]
fn unknown_action_type_stays_typed() {
    let json =
        br#"{"model":{"id":"65e9a0b1c2d3e4f5a6b7c000"},"action":{"id":"6647ff5fa1b2c3d4e5f60718",
        "idMemberCreator":"5a1b2c3d4e5f60718293a4b5","type":"addAttachmentToCard",
        "date":"2024-05-17T10:00:00.000Z","data":{"attachment":{"id":"a1","name":"trace.log"},
        "card":{"id":"65f1d2e3a4b5c6d7e8f90a1b"},"board":{"id":"65e9a0b1c2d3e4f5a6b7c000"}},
        "memberCreator":{"id":"5a1b2c3d4e5f60718293a4b5","username":"alicemartin"}}}"#;
    let event = trello().parse(&signed(json)).unwrap();
    assert_eq!(event.name().as_str(), "addAttachmentToCard");
    assert_eq!(event.subject().unwrap().as_str(), CARD);
    let typed = event.payload::<TrelloEvent>().unwrap();
    assert_eq!(
        typed.action_type(),
        Some(&ActionType::Other("addAttachmentToCard".into()))
    );
    // The unknown type serializes back unchanged.
    assert_eq!(
        serde_json::to_value(typed).unwrap()["payload"]["action"]["type"],
        "addAttachmentToCard"
    );
}

#[test]
fn unknown_fields_are_ignored() {
    let mut doc: serde_json::Value = serde_json::from_str(sample("createCard")).unwrap();
    doc["brandNew"] = serde_json::json!({"nested": [1, {"deep": true}]});
    doc["action"]["data"]["card"]["cover"] = serde_json::json!({"color": "sky"});
    doc["action"]["display"] = serde_json::json!({"translationKey": "action_create_card"});
    doc["webhook"] = serde_json::json!({"id": "w1", "idModel": "65e9a0b1c2d3e4f5a6b7c000",
        "callbackURL": CALLBACK, "active": true, "consecutiveFailures": 0});
    let body = serde_json::to_vec(&doc).unwrap();
    let event = trello().parse(&signed(&body)).unwrap();
    let typed = event.payload::<TrelloEvent>().unwrap();
    let payload = typed.payload().expect("typed");
    assert_eq!(payload.action.kind, ActionType::CreateCard);
    assert_eq!(
        payload.webhook.as_ref().unwrap().callback_url.as_deref(),
        Some(CALLBACK)
    );
}

#[test]
fn wrong_shape_is_untyped_with_reason() {
    // A date that is not RFC 3339 and a card without id: well-formed, but not the envelope.
    let json =
        br#"{"action":{"id":"6647fe5fa1b2c3d4e5f60718","type":"updateCard","date":"yesterday",
        "data":{"card":{"name":"no id"},"list":{"id":"65e9a0b1c2d3e4f5a6b7c101"}},
        "memberCreator":{"id":"5a1b2c3d4e5f60718293a4b5","username":"alicemartin"}}}"#;
    let event = trello().parse(&signed(json)).unwrap();
    let TrelloEvent::Untyped(untyped) = event.payload::<TrelloEvent>().unwrap() else {
        panic!("typed")
    };
    assert!(untyped.reason.is_some());
    assert_eq!(untyped.action_type.as_deref(), Some("updateCard"));
    assert_eq!(event.name().as_str(), "updateCard");
    // Keyed from the raw data: the card has no id, so the list.
    assert_eq!(
        event.subject().unwrap().as_str(),
        "trello:list/65e9a0b1c2d3e4f5a6b7c101"
    );
    assert_eq!(event.actor().unwrap().name, "alicemartin");
    assert_eq!(event.occurred_at(), None);
}

#[test]
fn malformed_bodies_are_rejected() {
    let provider = trello();
    for body in [&b"{\"action\":"[..], b"[]", b"", b"not json"] {
        assert!(TrelloEvent::from_json(body).is_err());
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
    let mut text = signed(sample("createCard").as_bytes());
    text.headers
        .insert("content-type", "text/plain".parse().unwrap());
    assert_eq!(
        provider.identify(&text),
        Err(IdentifyError::UnsupportedContentType("text/plain".into()))
    );
}
