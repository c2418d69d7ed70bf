use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::{DeliveryId, EventName, ProviderKind, SubjectKey};

/// A provider's typed payload, carried by an [`Event`] without webhook-core knowing its
/// type. Implemented for every `Serialize + Debug` type.
pub trait EventPayload: Any + Send + Sync + fmt::Debug {
    /// The payload as JSON, for display and inspection.
    fn to_json(&self) -> serde_json::Value;
}

impl<T: Serialize + Any + Send + Sync + fmt::Debug> EventPayload for T {
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|e| serde_json::Value::String(e.to_string()))
    }
}

/// Who caused an event, as the provider reports it. Used to skip events caused by
/// hookbridge's own account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// The account's stable id at the provider, when given.
    pub id: Option<String>,
    /// The account's login or display name.
    pub name: String,
    /// Whether the provider marks the account as a bot or app.
    pub is_bot: bool,
}

/// A verified delivery, parsed: the metadata every rule needs, plus the provider's typed
/// payload (reach it with [`Event::payload`]).
#[derive(Clone, Debug)]
pub struct Event {
    provider: ProviderKind,
    name: EventName,
    delivery_id: DeliveryId,
    subject: Option<SubjectKey>,
    actor: Option<Actor>,
    occurred_at: Option<OffsetDateTime>,
    payload: Arc<dyn EventPayload>,
    raw_json: Option<bytes::Bytes>,
}

impl Event {
    /// An event with its required parts; add the optional ones with the `with_` methods.
    pub fn new(
        provider: ProviderKind,
        name: impl Into<EventName>,
        delivery_id: DeliveryId,
        payload: impl EventPayload,
    ) -> Self {
        Self {
            provider,
            name: name.into(),
            delivery_id,
            subject: None,
            actor: None,
            occurred_at: None,
            payload: Arc::new(payload),
            raw_json: None,
        }
    }

    /// Sets the object the event is about.
    pub fn with_subject(mut self, subject: Option<SubjectKey>) -> Self {
        self.subject = subject;
        self
    }

    /// Sets who caused the event.
    pub fn with_actor(mut self, actor: Option<Actor>) -> Self {
        self.actor = actor;
        self
    }

    /// Sets the provider's own timestamp of the object's state.
    pub fn with_occurred_at(mut self, at: Option<OffsetDateTime>) -> Self {
        self.occurred_at = at;
        self
    }

    /// Attaches the JSON document as the service sent it, for rules that read fields the
    /// typed payload does not model.
    pub fn with_raw_json(mut self, json: Option<bytes::Bytes>) -> Self {
        self.raw_json = json;
        self
    }

    /// The JSON document as the service sent it, when attached.
    pub fn raw_json(&self) -> Option<&[u8]> {
        self.raw_json.as_deref()
    }

    /// The provider that produced the event.
    pub fn provider(&self) -> ProviderKind {
        self.provider
    }

    /// The event's full name, e.g. `issues.opened`.
    pub fn name(&self) -> &EventName {
        &self.name
    }

    /// The delivery the event came from.
    pub fn delivery_id(&self) -> &DeliveryId {
        &self.delivery_id
    }

    /// The object the event is about, if it is about one.
    pub fn subject(&self) -> Option<&SubjectKey> {
        self.subject.as_ref()
    }

    /// Who caused the event.
    pub fn actor(&self) -> Option<&Actor> {
        self.actor.as_ref()
    }

    /// The provider's timestamp of the object's state, for recognising stale events.
    pub fn occurred_at(&self) -> Option<OffsetDateTime> {
        self.occurred_at
    }

    /// The typed payload, if it is a `T`.
    ///
    /// ```
    /// use hookbridge_core::{DeliveryId, Event, ProviderKind};
    /// #[derive(Debug, serde::Serialize)]
    /// struct Ping { zen: String }
    /// let event = Event::new(ProviderKind::new("demo"), "ping", DeliveryId::new("1"),
    ///     Ping { zen: "Keep it logically awesome.".into() });
    /// assert_eq!(event.payload::<Ping>().unwrap().zen, "Keep it logically awesome.");
    /// assert!(event.payload::<String>().is_none());
    /// ```
    pub fn payload<T: Any>(&self) -> Option<&T> {
        let any: &dyn Any = self.payload.as_ref();
        any.downcast_ref::<T>()
    }

    /// The typed payload as JSON.
    pub fn payload_json(&self) -> serde_json::Value {
        self.payload.to_json()
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Event", 7)?;
        s.serialize_field("provider", &self.provider)?;
        s.serialize_field("event", &self.name)?;
        s.serialize_field("delivery_id", &self.delivery_id)?;
        s.serialize_field("subject", &self.subject)?;
        s.serialize_field("actor", &self.actor)?;
        let occurred = self.occurred_at.and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
        s.serialize_field("occurred_at", &occurred)?;
        s.serialize_field("payload", &self.payload.to_json())?;
        s.end()
    }
}
