//! Slack: Events API requests (`application/json`), interactivity and slash commands
//! (`application/x-www-form-urlencoded`), verified with the app's signing secret
//! (`X-Slack-Signature` over `v0:{X-Slack-Request-Timestamp}:{raw body}`, timestamp within
//! five minutes), identified by `event_id`, typed for `message`, `app_mention` and
//! `reaction_added`.
//!
//! # The `url_verification` handshake
//!
//! When an Events API request URL is saved, Slack posts
//! `{"token", "challenge", "type": "url_verification"}` and expects the challenge back. Slack
//! signs that request like any other, and the server asks for the handshake before it
//! verifies, so [`handshake`](Slack#method.handshake) verifies the signature itself: a
//! correctly signed `url_verification` is answered `200` with `{"challenge": "..."}`; one that
//! fails verification gets no handshake answer and falls through to verification, which
//! refuses it with 401. Nothing is stored either way. A handshake grants nothing: it only
//! proves to Slack that this endpoint holds the signing secret.
//!
//! # Identification
//!
//! `event_callback` envelopes are deduplicated on their `event_id`, which Slack repeats when it
//! retries (`X-Slack-Retry-Num`); interactivity requests on their `trigger_id` (see
//! `identify`). The stored event type is the inner event's type (`message`), or
//! `interactive`.
//!
//! # Events
//!
//! See [`events`]. Subjects are `slack:<team>/<channel>/<ts>` for messages and mentions (and
//! reactions to a message: the message's key), `slack:<team>` otherwise; the actor is the
//! event's `user`, a bot when the message has a `bot_id`; the timestamp is `event_time`.
//!
//! ```
//! use hookbridge_core::{Provider, RawDelivery, Secret, signature};
//! use hookbridge_providers::slack::{Slack, SlackOptions};
//!
//! let slack = Slack::new(vec![Secret::new("s3cret")], SlackOptions::default()).unwrap();
//! let body = br#"{"team_id":"T0AB12CD3","api_app_id":"A0KRD7HC3","type":"event_callback",
//!   "event":{"type":"app_mention","user":"U2147483697","text":"<@U0LAN0Z89> deploy api",
//!     "ts":"1715937663.000200","channel":"C2147483705","event_ts":"1715937663.000200"},
//!   "event_id":"Ev0PV52K21","event_time":1715937663}"#;
//! let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
//! let mac = signature::hmac(signature::Algorithm::Sha256, b"s3cret",
//!     &[b"v0:", timestamp.as_bytes(), b":", body]);
//! let mut headers = http::HeaderMap::new();
//! headers.insert("x-slack-request-timestamp", timestamp.parse().unwrap());
//! headers.insert("x-slack-signature", format!("v0={}", hex::encode(mac)).parse().unwrap());
//! headers.insert("content-type", "application/json".parse().unwrap());
//! let delivery = RawDelivery::new("slack", headers, &body[..]);
//!
//! assert!(slack.handshake(&delivery).is_none());
//! slack.verify(&delivery).unwrap();
//! let event = slack.parse(&delivery).unwrap();
//! assert_eq!(event.delivery_id().as_str(), "Ev0PV52K21");
//! assert_eq!(event.name().as_str(), "app_mention");
//! assert_eq!(event.subject().unwrap().as_str(), "slack:T0AB12CD3/C2147483705/1715937663.000200");
//! ```

pub mod events;
mod identify;
mod sign;
mod verify;

use bytes::Bytes;
use hookbridge_core::{
    Actor, Event, Handshake, IdentifyError, Identity, ParseError, Provider, ProviderKind,
    RawDelivery, Secret, SignError, SignedDelivery, SubjectKey, Verified, VerifyError,
};
use http::{HeaderValue, Method, StatusCode};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use crate::samples::samples;
use crate::{ProviderConfigError, Sample};
pub use events::SlackEvent;

/// The provider kind of Slack, `slack`.
pub const KIND: ProviderKind = ProviderKind::new("slack");

/// Sample requests, one per typed event; `interactive` is sent form-encoded.
pub const SAMPLES: &[Sample] = samples!("slack":
    "app_mention" => "app_mention",
    "interactive" => "interactive",
    "message" => "message",
    "message.bot_message" => "message",
    "message.message_changed" => "message",
    "reaction_added" => "reaction_added",
);

/// Slack recommends refusing requests more than five minutes from now.
const DEFAULT_TOLERANCE_SECONDS: u32 = 300;
/// A wider window only widens the replay window: an hour is already generous for clock skew.
const MAX_TOLERANCE_SECONDS: u32 = 3600;
/// Slack's challenges are about 50 characters; a much longer one is not from Slack.
const MAX_CHALLENGE_LEN: usize = 512;

/// Slack-specific endpoint options.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackOptions {
    /// How far, in seconds, `X-Slack-Request-Timestamp` may be from the server's clock before
    /// a request is refused as a possible replay. Default 300 (Slack's recommendation); 1 to
    /// 3600.
    #[serde(default = "default_tolerance")]
    pub timestamp_tolerance_seconds: u32,
}

fn default_tolerance() -> u32 {
    DEFAULT_TOLERANCE_SECONDS
}

impl Default for SlackOptions {
    fn default() -> Self {
        Self {
            timestamp_tolerance_seconds: DEFAULT_TOLERANCE_SECONDS,
        }
    }
}

/// The Slack provider for one endpoint: its signing secrets (several while rotating) and
/// options.
#[derive(Debug)]
pub struct Slack {
    secrets: Vec<Secret>,
    options: SlackOptions,
}

impl Slack {
    /// A Slack provider. Slack endpoints must be signed: at least one non-empty secret (the
    /// app's signing secret, not its verification token).
    pub fn new(secrets: Vec<Secret>, options: SlackOptions) -> Result<Self, ProviderConfigError> {
        crate::registry::require_secrets(KIND.as_str(), &secrets)?;
        if !(1..=MAX_TOLERANCE_SECONDS).contains(&options.timestamp_tolerance_seconds) {
            return Err(ProviderConfigError::Options {
                kind: KIND.as_str(),
                message: format!(
                    "timestamp_tolerance_seconds must be between 1 and {MAX_TOLERANCE_SECONDS}"
                ),
            });
        }
        Ok(Self { secrets, options })
    }

    /// A Slack provider without secrets, for parsing only: its `verify` always fails (and so
    /// does every handshake). See [`crate::parser`].
    pub(crate) fn unverified() -> Self {
        Self {
            secrets: Vec::new(),
            options: SlackOptions::default(),
        }
    }

    fn tolerance(&self) -> Duration {
        Duration::seconds(i64::from(self.options.timestamp_tolerance_seconds))
    }

    fn verify_at(
        &self,
        delivery: &RawDelivery,
        now: OffsetDateTime,
    ) -> Result<Verified, VerifyError> {
        verify::verify(&self.secrets, self.tolerance(), delivery, now)
    }

    /// The answer to a verified `url_verification` request at `now`; None for anything else,
    /// including a `url_verification` that fails verification.
    fn url_verification(&self, delivery: &RawDelivery, now: OffsetDateTime) -> Option<Handshake> {
        #[derive(Deserialize)]
        struct Challenge {
            #[serde(rename = "type")]
            kind: String,
            challenge: String,
        }
        if delivery.method != Method::POST
            || delivery.media_type().as_deref() != Some("application/json")
        {
            return None;
        }
        // Every Events API request passes here before verification: parse only the bodies
        // that can be a handshake.
        if !delivery
            .body
            .windows(b"url_verification".len())
            .any(|w| w == b"url_verification")
        {
            return None;
        }
        let request: Challenge = serde_json::from_slice(&delivery.body).ok()?;
        if request.kind != "url_verification"
            || request.challenge.is_empty()
            || request.challenge.len() > MAX_CHALLENGE_LEN
        {
            return None;
        }
        // Slack signs the handshake too. Unverified, it is not answered: the server then
        // verifies the request and refuses it with 401.
        self.verify_at(delivery, now).ok()?;
        let body =
            serde_json::to_vec(&serde_json::json!({ "challenge": request.challenge })).ok()?;
        let mut handshake = Handshake::status(StatusCode::OK);
        handshake.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        handshake.body = Bytes::from(body);
        Some(handshake)
    }
}

impl Provider for Slack {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn samples(&self) -> &'static [Sample] {
        SAMPLES
    }

    /// Answers a correctly signed `url_verification` request with its challenge.
    fn handshake(&self, delivery: &RawDelivery) -> Option<Handshake> {
        self.url_verification(delivery, OffsetDateTime::now_utc())
    }

    fn verify(&self, delivery: &RawDelivery) -> Result<Verified, VerifyError> {
        self.verify_at(delivery, OffsetDateTime::now_utc())
    }

    fn identify(&self, delivery: &RawDelivery) -> Result<Identity, IdentifyError> {
        identify::identify(delivery)
    }

    /// Signs with the first configured secret at `now`; `event_type` `interactive` sends the
    /// JSON form-encoded as an interactivity payload.
    fn sign(
        &self,
        event_type: &str,
        json: &[u8],
        _delivery_id: &str,
        now: OffsetDateTime,
    ) -> Result<SignedDelivery, SignError> {
        let secret = self.secrets.first().ok_or(SignError::NoSecret)?;
        sign::sign(secret, event_type, json, now)
    }

    fn parse(&self, delivery: &RawDelivery) -> Result<Event, ParseError> {
        let identity = identify::identify(delivery)?;
        let typed = match identify::body_kind(delivery)? {
            identify::Body::Json => SlackEvent::from_json(&delivery.body),
            identify::Body::Form => SlackEvent::from_form(&delivery.body),
        }
        .map_err(|e| ParseError::Malformed(e.to_string()))?;
        // Slack events name users by id only.
        let actor = typed.actor().map(|(id, is_bot)| Actor {
            id: Some(id.clone()),
            name: id,
            is_bot,
        });
        Ok(
            Event::new(KIND, typed.name(), identity.delivery_id, typed.clone())
                .with_subject(typed.subject().map(SubjectKey::new))
                .with_actor(actor)
                .with_occurred_at(typed.updated_at()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookbridge_core::signature::{Algorithm, hmac};

    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const CHALLENGE_BODY: &str = r#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;

    fn slack() -> Slack {
        Slack::new(vec![Secret::new(SECRET)], SlackOptions::default()).unwrap()
    }

    fn request(body: &str, secret: &str, timestamp: i64) -> RawDelivery {
        let ts = timestamp.to_string();
        let mac = hmac(
            Algorithm::Sha256,
            secret.as_bytes(),
            &[b"v0:", ts.as_bytes(), b":", body.as_bytes()],
        );
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("x-slack-request-timestamp", ts.parse().unwrap());
        headers.insert(
            "x-slack-signature",
            format!("v0={}", hex::encode(mac)).parse().unwrap(),
        );
        RawDelivery::new("slack", headers, body.as_bytes().to_vec())
    }

    const NOW: i64 = 1_715_937_663;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(NOW).unwrap()
    }

    #[test]
    fn signed_challenge_is_answered() {
        let answer = slack()
            .url_verification(&request(CHALLENGE_BODY, SECRET, NOW), now())
            .unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.headers["content-type"], "application/json");
        assert!(answer.learned_secret.is_none());
        let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
        );
        // Through the trait, with the real clock.
        let fresh = request(
            CHALLENGE_BODY,
            SECRET,
            OffsetDateTime::now_utc().unix_timestamp(),
        );
        assert!(slack().handshake(&fresh).is_some());
    }

    #[test]
    fn unverified_challenge_falls_through_to_verification() {
        let p = slack();
        // Wrong secret, stale, unsigned: no answer, and verification refuses it.
        let forged = request(CHALLENGE_BODY, "not the secret", NOW);
        assert!(p.url_verification(&forged, now()).is_none());
        assert!(matches!(
            p.verify_at(&forged, now()),
            Err(VerifyError::Mismatch { .. })
        ));
        let stale = request(CHALLENGE_BODY, SECRET, NOW - 301);
        assert!(p.url_verification(&stale, now()).is_none());
        assert!(matches!(
            p.verify_at(&stale, now()),
            Err(VerifyError::Stale(_))
        ));
        let mut unsigned = request(CHALLENGE_BODY, SECRET, NOW);
        unsigned.headers.remove("x-slack-signature");
        assert!(p.url_verification(&unsigned, now()).is_none());
        // A parser never answers, nor verifies.
        let parser = Slack::unverified();
        let signed = request(CHALLENGE_BODY, SECRET, NOW);
        assert!(parser.url_verification(&signed, now()).is_none());
        assert!(parser.verify_at(&signed, now()).is_err());
    }

    #[test]
    fn only_challenges_are_handshakes() {
        let p = slack();
        for body in [
            r#"{"type":"event_callback","event_id":"Ev1","team_id":"T1","event":{"type":"message","text":"url_verification"}}"#,
            r#"{"type":"url_verification"}"#,
            r#"{"type":"url_verification","challenge":""}"#,
            r#"{"type":"url_verification","challenge":7}"#,
            r#"{"type":"url_verification","challenge":"x""#,
        ] {
            assert!(
                p.url_verification(&request(body, SECRET, NOW), now())
                    .is_none(),
                "{body}"
            );
        }
        let long = format!(
            r#"{{"type":"url_verification","challenge":"{}"}}"#,
            "x".repeat(MAX_CHALLENGE_LEN + 1)
        );
        assert!(
            p.url_verification(&request(&long, SECRET, NOW), now())
                .is_none()
        );
        let mut get = request(CHALLENGE_BODY, SECRET, NOW);
        get.method = Method::GET;
        assert!(p.url_verification(&get, now()).is_none());
        let mut form = request(CHALLENGE_BODY, SECRET, NOW);
        form.headers.insert(
            "content-type",
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        assert!(p.url_verification(&form, now()).is_none());
        // Reaching identification (a challenge the handshake did not answer) is a 400.
        assert!(matches!(
            p.identify(&request(CHALLENGE_BODY, SECRET, NOW)),
            Err(IdentifyError::Malformed(_))
        ));
    }

    #[test]
    fn options() {
        assert_eq!(SlackOptions::default().timestamp_tolerance_seconds, 300);
        let empty: SlackOptions = toml::Table::new().try_into().unwrap();
        assert_eq!(empty.timestamp_tolerance_seconds, 300);
        let wide: SlackOptions = toml::from_str("timestamp_tolerance_seconds = 600").unwrap();
        let p = Slack::new(vec![Secret::new(SECRET)], wide).unwrap();
        assert!(
            p.verify_at(&request("{}", SECRET, NOW - 599), now())
                .is_ok()
        );
        assert!(toml::from_str::<SlackOptions>("tolerance = 600").is_err());
        for bad in [0, MAX_TOLERANCE_SECONDS + 1] {
            let options = SlackOptions {
                timestamp_tolerance_seconds: bad,
            };
            assert!(matches!(
                Slack::new(vec![Secret::new(SECRET)], options),
                Err(ProviderConfigError::Options { .. })
            ));
        }
        assert!(Slack::new(Vec::new(), SlackOptions::default()).is_err());
    }
}
