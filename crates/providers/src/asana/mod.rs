//! Asana webhooks: the `X-Hook-Secret` handshake (whose secret the server keeps and hands
//! back with [`Provider::learn_secret`]), `X-Hook-Signature` verification, dedup by body
//! digest, heartbeats, and typed event batches.
//!
//! An Asana endpoint may start with no secret: Asana hands one over when the webhook is
//! created, in a POST carrying `X-Hook-Secret`, which must be echoed back.
//! [`handshake`](Provider::handshake) answers it and returns the secret in
//! [`Handshake::learned_secret`]; the server decides whether to keep it (only for an endpoint
//! with no secret yet or a registration pending, never to replace one), stores it durably
//! and calls [`learn_secret`](Provider::learn_secret), here and after every restart. Until
//! then, [`verify`](Provider::verify) refuses everything, saying the handshake has not
//! happened.
//!
//! ```
//! use hookbridge_core::{Provider, RawDelivery};
//! use hookbridge_providers::asana::{Asana, AsanaOptions};
//!
//! let asana = Asana::new(vec![], AsanaOptions::default()).unwrap();
//! let mut headers = http::HeaderMap::new();
//! headers.insert("x-hook-secret", "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81".parse().unwrap());
//! let handshake = RawDelivery::new("asana", headers, Vec::new());
//! let answer = asana.handshake(&handshake).unwrap();
//! assert_eq!(answer.status, http::StatusCode::OK);
//! assert_eq!(answer.headers["x-hook-secret"], handshake.headers["x-hook-secret"]);
//!
//! // The server accepts the secret (the endpoint had none) and hands it back.
//! assert!(!asana.has_secret());
//! assert!(asana.learn_secret(answer.learned_secret.unwrap()));
//!
//! let body = br#"{"events":[{"user":{"gid":"1201119191231293","resource_type":"user"},
//!   "created_at":"2024-05-17T09:21:03.512Z","action":"changed",
//!   "resource":{"gid":"1207332211000001","resource_type":"task"},
//!   "change":{"field":"completed","action":"changed"}}]}"#;
//! let signed = asana.sign("", body, "", time::OffsetDateTime::now_utc()).unwrap();
//! let delivery = RawDelivery::new("asana", signed.headers, signed.body);
//! asana.verify(&delivery).unwrap();
//! let event = asana.parse(&delivery).unwrap();
//! assert_eq!(event.name().as_str(), "task.changed");
//! assert_eq!(event.subject().unwrap().as_str(), "asana:task/1207332211000001");
//! assert!(event.delivery_id().as_str().starts_with("sha256:"));
//! ```

pub mod auth;
pub mod client;
pub mod events;
mod identify;
mod sign;
mod verify;

use std::sync::{PoisonError, RwLock};

use hookbridge_core::{
    Actor, Event, Handshake, IdentifyError, Identity, ParseError, Provider, ProviderKind,
    RawDelivery, Secret, SignError, SignedDelivery, SubjectKey, Verified, VerifyError,
};
use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;

use crate::samples::samples;
use crate::{ProviderConfigError, Sample};
pub use events::AsanaEvent;

/// The provider kind of Asana, `asana`.
pub const KIND: ProviderKind = ProviderKind::new("asana");

/// The handshake header, request and answer.
const SECRET_HEADER: &str = "x-hook-secret";
/// Asana's secrets are 64 hex digits; anything far longer is not a handshake from Asana.
const MAX_SECRET_LEN: usize = 256;

/// Sample deliveries, one per typed shape of batch.
pub const SAMPLES: &[Sample] = samples!("asana":
    "batch" => "batch",
    "heartbeat" => "heartbeat",
    "story.added" => "story.added",
    "task.added" => "task.added",
    "task.changed" => "task.changed",
);

/// Asana-specific endpoint options. There are none yet; unknown keys are refused.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsanaOptions {}

/// The Asana provider for one endpoint: its secrets, configured or learned in handshakes
/// (several while an old webhook and its replacement both deliver).
#[derive(Debug)]
pub struct Asana {
    // Behind a lock because secrets arrive after construction, through `learn_secret`, while
    // deliveries are being verified.
    secrets: RwLock<Vec<Secret>>,
    #[allow(dead_code)] // no options yet; kept for the shape every provider shares
    options: AsanaOptions,
    /// False for the parse-only provider, which must never come to verify anything.
    learns: bool,
}

impl Asana {
    /// An Asana provider. Secrets are optional (an endpoint may wait for its handshake), but
    /// a given one must not be empty.
    pub fn new(secrets: Vec<Secret>, options: AsanaOptions) -> Result<Self, ProviderConfigError> {
        if !secrets.is_empty() {
            crate::registry::require_secrets(KIND.as_str(), &secrets)?;
        }
        Ok(Self {
            secrets: RwLock::new(secrets),
            options,
            learns: true,
        })
    }

    /// An Asana provider without secrets, for parsing only: its `verify` always fails and it
    /// learns no secret. See [`crate::parser`].
    pub(crate) fn unverified() -> Self {
        Self {
            secrets: RwLock::new(Vec::new()),
            options: AsanaOptions::default(),
            learns: false,
        }
    }

    /// Whether the endpoint has a secret, configured or learned. The server accepts a
    /// handshake's secret only while this is false (or a registration is pending).
    pub fn has_secret(&self) -> bool {
        self.secret_count() > 0
    }

    /// How many secrets the endpoint verifies with.
    pub fn secret_count(&self) -> usize {
        self.read_secrets().len()
    }

    // A panic while holding the lock cannot leave the list half-updated (a push either
    // happened or not), so a poisoned lock is still safe to use.
    fn read_secrets(&self) -> std::sync::RwLockReadGuard<'_, Vec<Secret>> {
        self.secrets.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Provider for Asana {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn samples(&self) -> &'static [Sample] {
        SAMPLES
    }

    /// Answers Asana's webhook-creation handshake: a POST carrying `X-Hook-Secret`, answered
    /// 200 with the same header, the secret handed to the server in `learned_secret`. A
    /// handshake whose secret is empty, oversized or not printable ASCII is answered 400 and
    /// hands over nothing.
    fn handshake(&self, delivery: &RawDelivery) -> Option<Handshake> {
        let value = delivery.headers.get(SECRET_HEADER)?;
        if delivery.method != Method::POST {
            return None;
        }
        let bytes = value.as_bytes();
        if bytes.is_empty()
            || bytes.len() > MAX_SECRET_LEN
            || !bytes.iter().all(u8::is_ascii_graphic)
        {
            return Some(Handshake::status(StatusCode::BAD_REQUEST));
        }
        let mut headers = HeaderMap::new();
        headers.insert(SECRET_HEADER, value.clone());
        Some(Handshake {
            status: StatusCode::OK,
            headers,
            body: bytes::Bytes::new(),
            learned_secret: Some(Secret::new(bytes)),
        })
    }

    fn verify(&self, delivery: &RawDelivery) -> Result<Verified, VerifyError> {
        verify::verify(&self.read_secrets(), delivery)
    }

    fn identify(&self, delivery: &RawDelivery) -> Result<Identity, IdentifyError> {
        identify::identify(delivery)
    }

    fn sign(
        &self,
        _event_type: &str,
        json: &[u8],
        _delivery_id: &str,
        _now: time::OffsetDateTime,
    ) -> Result<SignedDelivery, SignError> {
        // Asana sends neither an event name nor a delivery id: the body says it all.
        let secrets = self.read_secrets();
        let secret = secrets.first().ok_or(SignError::NoSecret)?;
        sign::sign(secret, json)
    }

    fn parse(&self, delivery: &RawDelivery) -> Result<Event, ParseError> {
        let identity = identify::identify(delivery)?;
        let typed = AsanaEvent::from_json(&delivery.body)
            .map_err(|e| ParseError::Malformed(e.to_string()))?;
        let user_gid = match &typed {
            AsanaEvent::Batch(_) => typed.user().map(|u| u.gid.clone()),
            // Untyped batches still name their first user; loop prevention needs it.
            AsanaEvent::Untyped(untyped) => untyped
                .payload
                .pointer("/events/0/user/gid")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
        };
        // Webhook events name users by gid only.
        let actor = user_gid.map(|gid| Actor {
            id: Some(gid.clone()),
            name: gid,
            is_bot: false,
        });
        let name = typed.name();
        let subject = SubjectKey::new(typed.subject());
        let occurred_at = typed.updated_at();
        Ok(Event::new(KIND, name, identity.delivery_id, typed)
            .with_subject(Some(subject))
            .with_actor(actor)
            .with_occurred_at(occurred_at))
    }

    /// Starts verifying with `secret`, learned in a handshake (once the server accepted it)
    /// or restored from the store. A secret already known is not added twice. Returns false
    /// for an empty secret and for the parse-only provider.
    fn has_secret(&self) -> bool {
        Asana::has_secret(self)
    }

    fn learn_secret(&self, secret: Secret) -> bool {
        if !self.learns || secret.is_empty() {
            return false;
        }
        let mut secrets = self.secrets.write().unwrap_or_else(PoisonError::into_inner);
        if !secrets.contains(&secret) {
            secrets.push(secret);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake_request(method: Method, secret: &[u8]) -> RawDelivery {
        let mut headers = HeaderMap::new();
        headers.insert(
            SECRET_HEADER,
            http::HeaderValue::from_bytes(secret).unwrap(),
        );
        let mut d = RawDelivery::new("asana", headers, Vec::new());
        d.method = method;
        d
    }

    #[test]
    fn configuration() {
        assert!(
            !Asana::new(vec![], AsanaOptions::default())
                .unwrap()
                .has_secret()
        );
        let configured = Asana::new(vec![Secret::new("s")], AsanaOptions::default()).unwrap();
        assert!(configured.has_secret());
        assert!(matches!(
            Asana::new(vec![Secret::new("")], AsanaOptions::default()),
            Err(ProviderConfigError::EmptySecret {
                kind: "asana",
                index: 1
            })
        ));
        let unknown: toml::Table = toml::from_str(r#"secret_header = "x""#).unwrap();
        assert!(unknown.try_into::<AsanaOptions>().is_err());
        let empty: AsanaOptions = toml::Table::new().try_into().unwrap();
        let _ = empty;
    }

    #[test]
    fn handshake_echoes_and_hands_over_the_secret() {
        let asana = Asana::new(vec![], AsanaOptions::default()).unwrap();
        // Asana's documented example (https://developers.asana.com/reference/createwebhook).
        let secret = b"b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81";
        let answer = asana
            .handshake(&handshake_request(Method::POST, secret))
            .unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.headers[SECRET_HEADER].as_bytes(), secret);
        assert!(answer.body.is_empty());
        assert_eq!(answer.learned_secret, Some(Secret::new(&secret[..])));
        // The handshake itself changes nothing: the server decides.
        assert!(!asana.has_secret());
    }

    #[test]
    fn what_is_not_a_handshake() {
        let asana = Asana::new(vec![], AsanaOptions::default()).unwrap();
        let plain = RawDelivery::new("asana", HeaderMap::new(), &b"{\"events\":[]}"[..]);
        assert!(asana.handshake(&plain).is_none());
        assert!(
            asana
                .handshake(&handshake_request(Method::GET, b"abc"))
                .is_none()
        );
        for bad in [&b""[..], b"has space", &[b'a'; MAX_SECRET_LEN + 1]] {
            let answer = asana
                .handshake(&handshake_request(Method::POST, bad))
                .unwrap();
            assert_eq!(answer.status, StatusCode::BAD_REQUEST);
            assert!(answer.learned_secret.is_none() && answer.headers.is_empty());
        }
    }

    #[test]
    fn learning_secrets() {
        let asana = Asana::new(vec![], AsanaOptions::default()).unwrap();
        assert!(!asana.learn_secret(Secret::new("")));
        assert!(asana.learn_secret(Secret::new("first")));
        assert!(asana.learn_secret(Secret::new("first")));
        assert_eq!(asana.secret_count(), 1);
        assert!(asana.learn_secret(Secret::new("second")));
        assert_eq!(asana.secret_count(), 2);

        let parser = Asana::unverified();
        assert!(!parser.learn_secret(Secret::new("first")));
        assert!(!parser.has_secret());
    }

    #[test]
    fn debug_shows_no_secret() {
        let asana =
            Asana::new(vec![Secret::new("hunter2-secret")], AsanaOptions::default()).unwrap();
        assert!(!format!("{asana:?}").contains("hunter2"));
    }
}
