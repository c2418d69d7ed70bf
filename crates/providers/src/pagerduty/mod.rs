//! PagerDuty webhooks: `X-PagerDuty-Signature` verification (several signatures while
//! PagerDuty rotates a secret), V3 `event.id` identification, and typed incident and service
//! events from V3 subscriptions and legacy V2 extensions.
//!
//! # Verification
//!
//! Every delivery must carry `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>`
//! (possibly several, comma-separated); one of them must match one of the endpoint's secrets
//! (see [`verify`](Pagerduty#method.verify)). No timestamp is signed: a replayed delivery is
//! stopped by its dedup key, the event id inside the signed body.
//!
//! # Legacy V2 webhooks
//!
//! PagerDuty signs only V3 webhooks: its "Verifying Signatures" page is about V3, and the V2
//! documentation names no signature at all (V2 extensions offered mutual TLS, basic auth in
//! the URL and IP safelists instead). hookbridge verifies every delivery the same way,
//! whatever its body: **a V2 `{"messages": [...]}` body is accepted only when it carries a
//! valid `X-PagerDuty-Signature` like a V3 one** (for example when a relay in front of
//! hookbridge authenticates PagerDuty and re-signs, or from `hookbridge send`). A V2 delivery
//! straight from PagerDuty has no signature and is refused with 401, as any unsigned delivery
//! is. There is no option to accept unsigned V2 deliveries. V2 parsing also serves
//! [`crate::parser`] (inspecting captured or stored deliveries).
//!
//! A V2 delivery is deduplicated on its message id; for a batch of several messages (which
//! PagerDuty documents it no longer sends), on the ids of all its messages, sorted and joined
//! with `,`, which stays the same when PagerDuty retries the batch.
//!
//! # Events
//!
//! See [`events`]: names are V3 event types (`incident.triggered`, V2 `incident.trigger` too),
//! subjects `pagerduty:incident/<incident id>` and `pagerduty:service/<service id>`, the
//! actor is the event's `agent` (a bot unless it is a `user_reference`), the timestamp its
//! `occurred_at` (V2 `created_on`).
//!
//! ```
//! use hookbridge_core::{Provider, RawDelivery, Secret, signature};
//! use hookbridge_providers::pagerduty::{Pagerduty, PagerdutyOptions};
//!
//! let pagerduty = Pagerduty::new(vec![Secret::new("s3cret")], PagerdutyOptions::default()).unwrap();
//! let body = br#"{"event":{"id":"01DEN4HPBQAAAG05V5QQYBRZMF","event_type":"incident.acknowledged",
//!   "resource_type":"incident","occurred_at":"2024-05-17T09:25:40.077Z",
//!   "agent":{"id":"PLH1HKV","type":"user_reference","summary":"Tenex Engineer"},"client":null,
//!   "data":{"id":"Q1EZAYE5KCTLMW","type":"incident","number":4182,"status":"acknowledged"}}}"#;
//! let sig = hex::encode(signature::hmac(signature::Algorithm::Sha256, b"s3cret", &[body]));
//! let mut headers = http::HeaderMap::new();
//! headers.insert("x-pagerduty-signature", format!("v1=deadbeef,v1={sig}").parse().unwrap());
//! headers.insert("content-type", "application/json".parse().unwrap());
//! let delivery = RawDelivery::new("pagerduty", headers, &body[..]);
//!
//! pagerduty.verify(&delivery).unwrap();
//! let event = pagerduty.parse(&delivery).unwrap();
//! assert_eq!(event.delivery_id().as_str(), "01DEN4HPBQAAAG05V5QQYBRZMF");
//! assert_eq!(event.name().as_str(), "incident.acknowledged");
//! assert_eq!(event.subject().unwrap().as_str(), "pagerduty:incident/Q1EZAYE5KCTLMW");
//! assert_eq!(event.actor().unwrap().name, "Tenex Engineer");
//! ```

pub mod auth;
pub mod client;
pub mod events;
mod identify;
mod sign;
mod verify;

use hookbridge_core::{
    Actor, Event, IdentifyError, Identity, ParseError, Provider, ProviderKind, RawDelivery, Secret,
    SignError, SignedDelivery, SubjectKey, Verified, VerifyError,
};
use serde::Deserialize;

use crate::samples::samples;
use crate::{ProviderConfigError, Sample};
pub use events::PagerdutyEvent;

/// The provider kind of PagerDuty, `pagerduty`.
pub const KIND: ProviderKind = ProviderKind::new("pagerduty");

/// Sample deliveries, one per typed event: V3 events by name, V2 ones as `v2.<V2 event>`.
pub const SAMPLES: &[Sample] = samples!("pagerduty":
    "incident.acknowledged" => "incident.acknowledged",
    "incident.annotated" => "incident.annotated",
    "incident.conference_bridge.updated" => "incident.conference_bridge.updated",
    "incident.custom_field_values.updated" => "incident.custom_field_values.updated",
    "incident.delegated" => "incident.delegated",
    "incident.escalated" => "incident.escalated",
    "incident.incident_type.changed" => "incident.incident_type.changed",
    "incident.priority_updated" => "incident.priority_updated",
    "incident.reassigned" => "incident.reassigned",
    "incident.reopened" => "incident.reopened",
    "incident.resolved" => "incident.resolved",
    "incident.responder.added" => "incident.responder.added",
    "incident.responder.replied" => "incident.responder.replied",
    "incident.service_updated" => "incident.service_updated",
    "incident.status_update_published" => "incident.status_update_published",
    "incident.triggered" => "incident.triggered",
    "incident.unacknowledged" => "incident.unacknowledged",
    "incident.workflow.completed" => "incident.workflow.completed",
    "incident.workflow.started" => "incident.workflow.started",
    "pagey.ping" => "pagey.ping",
    "service.created" => "service.created",
    "service.deleted" => "service.deleted",
    "service.updated" => "service.updated",
    "v2.batch" => "v2.batch",
    "v2.incident.acknowledge" => "incident.acknowledge",
    "v2.incident.annotate" => "incident.annotate",
    "v2.incident.assign" => "incident.assign",
    "v2.incident.delegate" => "incident.delegate",
    "v2.incident.escalate" => "incident.escalate",
    "v2.incident.resolve" => "incident.resolve",
    "v2.incident.trigger" => "incident.trigger",
    "v2.incident.unacknowledge" => "incident.unacknowledge",
);

/// PagerDuty-specific endpoint options. There are none yet: verification is fixed (every
/// delivery, V3 or V2, must be signed), and the table must be empty.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyOptions {}

/// The PagerDuty provider for one endpoint: its secrets (several while rotating) and options.
#[derive(Debug)]
pub struct Pagerduty {
    secrets: Vec<Secret>,
    #[allow(dead_code)] // no option is read yet; kept for the shape every provider has
    options: PagerdutyOptions,
}

impl Pagerduty {
    /// A PagerDuty provider. PagerDuty endpoints must be signed: at least one non-empty
    /// secret (the subscription's signing secret; several while rotating).
    pub fn new(
        secrets: Vec<Secret>,
        options: PagerdutyOptions,
    ) -> Result<Self, ProviderConfigError> {
        crate::registry::require_secrets(KIND.as_str(), &secrets)?;
        Ok(Self { secrets, options })
    }

    /// A PagerDuty provider without secrets, for parsing only: its `verify` always fails.
    /// See [`crate::parser`].
    pub(crate) fn unverified() -> Self {
        Self {
            secrets: Vec::new(),
            options: PagerdutyOptions::default(),
        }
    }
}

impl Provider for Pagerduty {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn samples(&self) -> &'static [Sample] {
        SAMPLES
    }

    fn verify(&self, delivery: &RawDelivery) -> Result<Verified, VerifyError> {
        verify::verify(&self.secrets, delivery)
    }

    fn identify(&self, delivery: &RawDelivery) -> Result<Identity, IdentifyError> {
        identify::identify(delivery)
    }

    /// Signs with the first configured secret; the event type is read from the body, so
    /// `event_type` is not used.
    fn sign(
        &self,
        _event_type: &str,
        json: &[u8],
        delivery_id: &str,
        _now: time::OffsetDateTime,
    ) -> Result<SignedDelivery, SignError> {
        let secret = self.secrets.first().ok_or(SignError::NoSecret)?;
        sign::sign(&[secret], json, delivery_id)
    }

    fn parse(&self, delivery: &RawDelivery) -> Result<Event, ParseError> {
        let identity = identify::identify(delivery)?;
        let typed = PagerdutyEvent::from_json(&delivery.body)
            .map_err(|e| ParseError::Malformed(e.to_string()))?;
        let actor = typed.agent().map(|agent| Actor {
            is_bot: !agent.is_user(),
            name: agent.summary.clone().unwrap_or_else(|| agent.id.clone()),
            id: Some(agent.id),
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

    #[test]
    fn options_and_secrets() {
        assert!(Pagerduty::new(Vec::new(), PagerdutyOptions::default()).is_err());
        assert!(Pagerduty::new(vec![Secret::new("")], PagerdutyOptions::default()).is_err());
        let table: toml::Table = toml::from_str("allow_unsigned_v2 = true").unwrap();
        assert!(table.try_into::<PagerdutyOptions>().is_err());
        let empty: PagerdutyOptions = toml::Table::new().try_into().unwrap();
        let _ = empty;
    }

    #[test]
    fn unverified_never_verifies_and_cannot_sign() {
        let p = Pagerduty::unverified();
        let sample = SAMPLES[0];
        assert_eq!(
            p.sign(
                "x",
                sample.json.as_bytes(),
                "id",
                time::OffsetDateTime::now_utc()
            )
            .unwrap_err(),
            SignError::NoSecret
        );
        let mut headers = http::HeaderMap::new();
        headers.insert("x-pagerduty-signature", "v1=00".parse().unwrap());
        let d = RawDelivery::new("pd", headers, sample.json.as_bytes().to_vec());
        assert!(p.verify(&d).is_err());
    }
}
