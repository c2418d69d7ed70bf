//! Events of Standard Webhooks, Svix and Stripe senders.
//!
//! Each sender defines its own payloads, so events are kept as JSON with what the envelope
//! says: the event `type` (the Standard Webhooks spec's recommended payload structure, and
//! Stripe's event object), the object the event is about, and its timestamp. The enum leaves
//! room for typed variants of particular senders later without changing how rules match.
//!
//! ```
//! use hookbridge_providers::standard_webhooks::{Scheme, events::StandardWebhooksEvent};
//!
//! let json = br#"{"id":"evt_1","object":"event","type":"invoice.paid","created":1715937663,
//!   "data":{"object":{"id":"in_1PHB2a","object":"invoice","status":"paid"}}}"#;
//! let event = StandardWebhooksEvent::from_json(Scheme::Stripe, json).unwrap();
//! assert_eq!(event.name(), "invoice.paid");
//! assert_eq!(event.subject().as_deref(), Some("stripe:in_1PHB2a"));
//! assert_eq!(event.payload()["data"]["object"]["status"], "paid");
//! ```

use serde::Serialize;
use serde::de::Error as _;
use time::OffsetDateTime;

use super::Scheme;
use super::identify::UNTYPED;

/// An event, kept as JSON with its envelope's fields picked out.
#[derive(Debug, Clone, Serialize)]
pub struct UntypedEvent {
    /// The scheme the endpoint speaks: `standard`, `svix` or `stripe`.
    pub scheme: Scheme,
    /// The body's `type`, when it is a string.
    pub event_type: Option<String>,
    /// The body's own `id`, when it has one (Stripe's `evt_...`).
    pub id: Option<String>,
    /// The whole body.
    pub payload: serde_json::Value,
}

/// An event from a Standard Webhooks, Svix or Stripe sender.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", content = "payload", rename_all = "snake_case")]
pub enum StandardWebhooksEvent {
    /// The event as JSON (every event, for now: payloads are the sender's own).
    Untyped(UntypedEvent),
}

impl StandardWebhooksEvent {
    /// Reads the JSON body of a delivery. Errors only when it is not a well-formed JSON
    /// object.
    pub fn from_json(
        scheme: Scheme,
        json: &[u8],
    ) -> Result<StandardWebhooksEvent, serde_json::Error> {
        let payload: serde_json::Value = serde_json::from_slice(json)?;
        if !payload.is_object() {
            return Err(serde_json::Error::custom("expected a JSON object"));
        }
        let text = |key: &str| payload.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        Ok(StandardWebhooksEvent::Untyped(UntypedEvent {
            scheme,
            event_type: text("type"),
            id: text("id"),
            payload,
        }))
    }

    fn inner(&self) -> &UntypedEvent {
        match self {
            StandardWebhooksEvent::Untyped(e) => e,
        }
    }

    /// The event name: the body's `type` (`invoice.paid`, `contact.created`), or `untyped`
    /// for a body without one.
    pub fn name(&self) -> String {
        self.event_type().to_owned()
    }

    /// The body's `type`, or `untyped`.
    pub fn event_type(&self) -> &str {
        self.inner().event_type.as_deref().unwrap_or(UNTYPED)
    }

    /// The scheme of the endpoint that received the event.
    pub fn scheme(&self) -> Scheme {
        self.inner().scheme
    }

    /// The whole body.
    pub fn payload(&self) -> &serde_json::Value {
        &self.inner().payload
    }

    /// The object the event is about: `<scheme>:<id>`, the id being the first of
    /// `data.object.id` (Stripe's shape), `data.id` (the Standard Webhooks spec's example
    /// shape, and Svix senders such as Clerk) and the body's own `id`. None when there is
    /// none of them.
    pub fn subject(&self) -> Option<String> {
        let payload = self.payload();
        ["/data/object/id", "/data/id", "/id"]
            .iter()
            .find_map(|pointer| id_text(payload.pointer(pointer)?))
            .map(|id| format!("{}:{id}", self.scheme().as_str()))
    }

    /// The sender's timestamp of the event: Stripe's `created` (unix seconds); for Standard
    /// Webhooks and Svix, the payload's `timestamp` when it is RFC 3339 text, as the spec's
    /// payload structure has it.
    pub fn updated_at(&self) -> Option<OffsetDateTime> {
        let payload = self.payload();
        match self.scheme() {
            Scheme::Stripe => payload
                .get("created")?
                .as_i64()
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
            Scheme::Standard | Scheme::Svix => OffsetDateTime::parse(
                payload.get("timestamp")?.as_str()?,
                &time::format_description::well_known::Rfc3339,
            )
            .ok(),
        }
    }
}

/// A non-empty string id, or a numeric one as its decimal text.
fn id_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
