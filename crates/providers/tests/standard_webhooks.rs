//! The Standard Webhooks / Svix / Stripe provider end to end: every sample signs, verifies,
//! identifies and parses with its scheme; options; the event rules.
#![cfg(feature = "standard-webhooks")]

use std::path::Path;

use hookbridge_core::signature::SignatureMismatch;
use hookbridge_core::{IdentifyError, Provider, RawDelivery, Secret, VerifyError};
use hookbridge_providers::standard_webhooks::events::StandardWebhooksEvent;
use hookbridge_providers::standard_webhooks::{
    SAMPLES, STANDARD_SAMPLES, STRIPE_SAMPLES, SVIX_SAMPLES, Scheme, StandardWebhooks,
    StandardWebhooksOptions,
};
use time::OffsetDateTime;

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const STRIPE_SECRET: &str = "whsec_9f3b1c2d4e5f60718293a4b5c6d7e8f9";

fn provider(scheme: Scheme) -> StandardWebhooks {
    let secret = match scheme {
        Scheme::Stripe => STRIPE_SECRET,
        Scheme::Standard | Scheme::Svix => WHSEC,
    };
    let options = StandardWebhooksOptions {
        scheme,
        ..Default::default()
    };
    StandardWebhooks::new(vec![Secret::new(secret)], options).unwrap()
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

fn signed(p: &StandardWebhooks, json: &str, id: &str, now: OffsetDateTime) -> RawDelivery {
    let signed = p.sign("ignored", json.as_bytes(), id, now).unwrap();
    assert!(signed.query.is_none());
    RawDelivery::new("sw", signed.headers, signed.body)
}

/// (sample, expected subject, expected occurred_at in unix seconds)
const EXPECTED: &[(&str, Option<&str>, Option<i64>)] = &[
    (
        "contact.created",
        Some("standard:1f81eb52-5198-4599-803e-771906343485"),
        Some(1667507170), // 2022-11-03T20:26:10.344522Z
    ),
    ("example.event", None, Some(1667507170)),
    ("message.attempt.exhausted", None, None),
    (
        "user.created",
        Some("svix:user_2gVD0S4S7Qm2KBHGFrwzb8Nn3nD"),
        None,
    ),
    (
        "checkout.session.completed",
        Some("stripe:cs_test_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0u1v2w3x4y5z6"),
        Some(1715938091),
    ),
    (
        "customer.subscription.updated",
        Some("stripe:sub_1OxyQ9LkdIwHu7ixk2nTtLmu"),
        Some(1715937977),
    ),
    (
        "invoice.paid",
        Some("stripe:in_1PHB4nLkdIwHu7ixy6d0Fh2r"),
        Some(1715937852),
    ),
    (
        "payment_intent.succeeded",
        Some("stripe:pi_3PHB2aLkdIwHu7ix0L8J0yWp"),
        Some(1715937663),
    ),
];

#[test]
fn every_sample_signs_verifies_identifies_and_parses() {
    let mut files: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/standard_webhooks"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json"))
            .map(|n| n.trim_end_matches(".json").to_owned())
            .collect();
    files.sort();
    let mut listed: Vec<&str> = SAMPLES.iter().map(|s| s.name).collect();
    listed.sort();
    assert_eq!(files, listed, "every sample file is listed in SAMPLES");
    assert_eq!(
        SAMPLES.len(),
        STANDARD_SAMPLES.len() + SVIX_SAMPLES.len() + STRIPE_SAMPLES.len()
    );

    let now = OffsetDateTime::now_utc();
    let mut seen = 0;
    for scheme in [Scheme::Standard, Scheme::Svix, Scheme::Stripe] {
        let p = provider(scheme);
        assert_eq!(p.scheme(), scheme);
        for sample in p.samples() {
            seen += 1;
            assert_eq!(sample.name, sample.event_type);
            let delivery = signed(&p, sample.json, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now);
            let verified = p
                .verify(&delivery)
                .unwrap_or_else(|e| panic!("{}: {e}", sample.name));
            let identity = p.identify(&delivery).unwrap();
            assert_eq!(identity.event_type, sample.event_type);
            let json: serde_json::Value = serde_json::from_str(sample.json).unwrap();
            match scheme {
                Scheme::Stripe => {
                    assert_eq!(verified.scheme, "stripe-signature");
                    assert_eq!(identity.delivery_id.as_str(), json["id"].as_str().unwrap());
                }
                Scheme::Svix => {
                    assert_eq!(verified.scheme, "svix-signature");
                    assert_eq!(
                        identity.delivery_id.as_str(),
                        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
                    );
                }
                Scheme::Standard => {
                    assert_eq!(verified.scheme, "webhook-signature");
                    assert_eq!(
                        identity.delivery_id.as_str(),
                        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
                    );
                }
            }

            let event = p.parse(&delivery).unwrap();
            assert_eq!(event.name().as_str(), sample.name);
            assert_eq!(event.provider().as_str(), "standard-webhooks");
            let (_, subject, occurred) = EXPECTED
                .iter()
                .find(|(name, _, _)| *name == sample.name)
                .unwrap_or_else(|| panic!("{} has no expectation", sample.name));
            assert_eq!(
                event.subject().map(|s| s.as_str()),
                *subject,
                "{}",
                sample.name
            );
            assert_eq!(
                event.occurred_at().map(|t| t.unix_timestamp()),
                *occurred,
                "{}",
                sample.name
            );
            assert!(event.actor().is_none());
            let payload = event.payload::<StandardWebhooksEvent>().unwrap();
            assert_eq!(payload.scheme(), scheme);
            assert_eq!(payload.payload(), &json);
            assert_eq!(event.payload_json()["event"], "untyped");
        }
    }
    assert_eq!(seen, SAMPLES.len());
}

#[test]
fn a_delivery_of_one_scheme_does_not_verify_as_another() {
    let now = OffsetDateTime::now_utc();
    let stripe = signed(&provider(Scheme::Stripe), STRIPE_SAMPLES[0].json, "x", now);
    assert_eq!(
        provider(Scheme::Standard).verify(&stripe),
        Err(VerifyError::MissingSignature {
            header: "webhook-signature"
        })
    );
    let standard = signed(
        &provider(Scheme::Standard),
        STANDARD_SAMPLES[0].json,
        "msg_1",
        now,
    );
    assert_eq!(
        provider(Scheme::Stripe).verify(&standard),
        Err(VerifyError::MissingSignature {
            header: "stripe-signature"
        })
    );
    assert!(
        provider(Scheme::Svix).verify(&standard).is_ok(),
        "svix endpoints read webhook- headers too"
    );
}

#[test]
fn tolerance_is_configurable_and_checked_both_ways() {
    let p = StandardWebhooks::new(
        vec![Secret::new(WHSEC)],
        toml::from_str("tolerance_secs = 10").unwrap(),
    )
    .unwrap();
    let delivery = signed(&p, STANDARD_SAMPLES[0].json, "msg_1", at(1_700_000_000));
    assert!(p.verify_at(&delivery, at(1_700_000_010)).is_ok());
    assert!(p.verify_at(&delivery, at(1_699_999_990)).is_ok());
    for now in [1_700_000_011, 1_699_999_989] {
        assert!(matches!(
            p.verify_at(&delivery, at(now)),
            Err(VerifyError::Stale(_))
        ));
    }
    // Through the trait, "now" is the clock: a delivery signed long ago is stale.
    assert!(matches!(p.verify(&delivery), Err(VerifyError::Stale(_))));

    let stripe = provider(Scheme::Stripe);
    let delivery = signed(&stripe, STRIPE_SAMPLES[0].json, "x", at(1_700_000_000));
    assert!(stripe.verify_at(&delivery, at(1_700_000_300)).is_ok());
    assert!(matches!(
        stripe.verify_at(&delivery, at(1_700_000_301)),
        Err(VerifyError::Stale(_))
    ));
}

#[test]
fn rotation_signs_with_every_key_and_verifies_with_any() {
    let old = "whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA==";
    let sender = StandardWebhooks::new(
        vec![Secret::new(WHSEC), Secret::new(old)],
        StandardWebhooksOptions::default(),
    )
    .unwrap();
    let now = OffsetDateTime::now_utc();
    let delivery = signed(&sender, STANDARD_SAMPLES[0].json, "msg_1", now);
    assert_eq!(
        delivery
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    let receiver_with_old_only =
        StandardWebhooks::new(vec![Secret::new(old)], StandardWebhooksOptions::default()).unwrap();
    assert!(receiver_with_old_only.verify(&delivery).is_ok());
    let receiver_rotating = StandardWebhooks::new(
        vec![
            Secret::new("whsec_bmV3LWtleS1ub3QteWV0LXVzZWQ="),
            Secret::new(old),
        ],
        StandardWebhooksOptions::default(),
    )
    .unwrap();
    assert_eq!(receiver_rotating.verify(&delivery).unwrap().secret_index, 1);
    let stranger = StandardWebhooks::new(
        vec![Secret::new("whsec_bmV3LWtleS1ub3QteWV0LXVzZWQ=")],
        StandardWebhooksOptions::default(),
    )
    .unwrap();
    assert_eq!(
        stranger.verify(&delivery),
        Err(VerifyError::Mismatch {
            header: "webhook-signature",
            source: SignatureMismatch::NoMatch(1)
        })
    );
}

#[test]
fn options_from_toml() {
    let o: StandardWebhooksOptions = toml::from_str("").unwrap();
    assert_eq!((o.scheme, o.tolerance_secs), (Scheme::Standard, 300));
    for (text, scheme) in [
        ("scheme = \"standard\"", Scheme::Standard),
        ("scheme = \"svix\"", Scheme::Svix),
        ("scheme = \"stripe\"", Scheme::Stripe),
    ] {
        let o: StandardWebhooksOptions = toml::from_str(text).unwrap();
        assert_eq!(o.scheme, scheme);
    }
    for bad in [
        "scheme = \"github\"",
        "scheme = \"Stripe\"",
        "tolerance_secs = -1",
        "tolerance = 300",
        "verify = false",
    ] {
        assert!(
            toml::from_str::<StandardWebhooksOptions>(bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn invalid_configurations() {
    let build = |secrets: Vec<&str>, options: &str| {
        StandardWebhooks::new(
            secrets.into_iter().map(Secret::new).collect(),
            toml::from_str(options).unwrap(),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    assert!(
        build(vec![], "")
            .unwrap_err()
            .contains("needs at least one secret")
    );
    assert!(build(vec![""], "").unwrap_err().contains("is empty"));
    let err = build(vec![WHSEC, "whsec_not base64!"], "").unwrap_err();
    assert!(
        err.contains("secret #2") && !err.contains("not base64!"),
        "{err}"
    );
    assert!(build(vec!["whsec_"], "").is_err());
    assert!(
        build(vec!["whpk_MCowBQYDK2VwAyEA"], "")
            .unwrap_err()
            .contains("asymmetric")
    );
    assert!(
        build(vec![WHSEC], "tolerance_secs = 0")
            .unwrap_err()
            .contains("tolerance_secs")
    );
    assert!(build(vec![WHSEC], "tolerance_secs = 86401").is_err());
    // Stripe secrets are used as written, whatever they look like.
    assert!(build(vec!["not base64!"], "scheme = \"stripe\"").is_ok());
    // Svix's libraries accept the base64 without its prefix.
    assert!(
        build(
            vec!["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            "scheme = \"svix\""
        )
        .is_ok()
    );
}

#[test]
fn secrets_never_show() {
    let p = StandardWebhooks::new(
        vec![Secret::new("whsec_VE9QU0VDUkVUVkFMVUU=")],
        StandardWebhooksOptions::default(),
    )
    .unwrap();
    let debug = format!("{p:?}");
    assert!(
        !debug.contains("VE9QU0VDUkVUVkFMVUU") && !debug.contains("TOPSECRETVALUE"),
        "{debug}"
    );
}

#[test]
fn bodies_without_a_type_and_identification_errors() {
    let p = provider(Scheme::Standard);
    let now = OffsetDateTime::now_utc();
    let delivery = signed(&p, r#"{"data":{"id":42}}"#, "msg_1", now);
    let event = p.parse(&delivery).unwrap();
    assert_eq!(event.name().as_str(), "untyped");
    assert_eq!(event.subject().unwrap().as_str(), "standard:42");

    let mut form = delivery.clone();
    form.headers.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    assert!(matches!(
        p.identify(&form),
        Err(IdentifyError::UnsupportedContentType(_))
    ));

    let stripe = provider(Scheme::Stripe);
    let no_id = signed(&stripe, r#"{"type":"invoice.paid"}"#, "x", now);
    assert!(stripe.verify(&no_id).is_ok());
    assert!(matches!(
        stripe.identify(&no_id),
        Err(IdentifyError::Malformed(_))
    ));
    assert!(stripe.parse(&no_id).is_err());
}

#[test]
fn from_json_keeps_everything_and_rejects_non_objects() {
    let json = br#"{"type":"order.shipped","id":"evt_9","timestamp":"2024-05-17T09:21:03Z",
        "data":{"object":{"id":"ord_1"},"id":"ignored"},"extra":[1,{"deep":true}]}"#;
    let event = StandardWebhooksEvent::from_json(Scheme::Svix, json).unwrap();
    let StandardWebhooksEvent::Untyped(u) = &event;
    assert_eq!(u.event_type.as_deref(), Some("order.shipped"));
    assert_eq!(u.id.as_deref(), Some("evt_9"));
    assert_eq!(u.payload["extra"][1]["deep"], true);
    assert_eq!(event.subject().as_deref(), Some("svix:ord_1"));
    assert_eq!(
        event.updated_at().map(|t| t.unix_timestamp()),
        Some(1715937663)
    );

    let only_id =
        StandardWebhooksEvent::from_json(Scheme::Stripe, br#"{"id":"evt_1","type":7}"#).unwrap();
    assert_eq!(only_id.name(), "untyped");
    assert_eq!(only_id.subject().as_deref(), Some("stripe:evt_1"));
    assert_eq!(only_id.updated_at(), None);

    for bad in [&b"[1]"[..], b"\"x\"", b"null", b"{", b"", b"{} x"] {
        assert!(
            StandardWebhooksEvent::from_json(Scheme::Standard, bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}
