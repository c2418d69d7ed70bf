//! Typed PagerDuty webhook payloads, V3 and legacy V2.
//!
//! [`PagerdutyEvent::from_json`] turns the JSON document of a delivery into a typed event.
//! Both webhook generations map onto the same types, so a rule written for
//! `incident.triggered` sees V3 and V2 deliveries alike; [`Envelope::format`] says which one
//! a delivery came in:
//!
//! - **V3** (`{"event": {"id", "event_type", "resource_type", "occurred_at", "agent",
//!   "client", "data"}}`, <https://developer.pagerduty.com/docs/webhooks/v3-overview>):
//!   `incident.*` events become [`PagerdutyEvent::Incident`], `service.*` events
//!   [`PagerdutyEvent::Service`], the test event `pagey.ping` [`PagerdutyEvent::Ping`];
//! - **V2** (`{"messages": [{"id", "event", "created_on", "incident", "log_entries", ...}]}`,
//!   <https://developer.pagerduty.com/docs/webhooks/v2-overview>): each message becomes an
//!   [`IncidentEvent`] named after its V3 equivalent (`incident.trigger` ->
//!   `incident.triggered`, `incident.assign` -> `incident.reassigned`, ...; see
//!   [`IncidentEventType::from_v2`]). A batch of several messages, which PagerDuty documents
//!   it no longer sends, becomes [`PagerdutyEvent::V2Batch`] holding each message typed.
//!
//! Parsing is forward compatible:
//!
//! - unknown fields are ignored;
//! - an unknown `incident.*` event type whose data is a known kind (an incident, a note, ...)
//!   stays typed, with [`IncidentEventType::Other`] keeping the name; likewise for
//!   `service.*`;
//! - unknown resources, unknown data kinds and known events whose payload does not fit the
//!   typed shape become [`PagerdutyEvent::Untyped`], with the whole payload kept as JSON.
//!
//! ```
//! use hookbridge_providers::pagerduty::events::{IncidentEventType, PagerdutyEvent, WebhookFormat};
//!
//! let json = br#"{"event":{"id":"01DEN4HPBQAAAG05V5QQYBRZMF","event_type":"incident.triggered",
//!   "resource_type":"incident","occurred_at":"2024-05-17T09:21:03.412Z",
//!   "agent":{"id":"PLH1HKV","type":"user_reference","summary":"Tenex Engineer"},
//!   "client":null,
//!   "data":{"id":"Q1EZAYE5KCTLMW","type":"incident","number":4182,"status":"triggered",
//!     "title":"Checkout API 5xx rate above 5%","urgency":"high",
//!     "priority":{"id":"PSO75BM","type":"priority_reference","summary":"P1"}}}}"#;
//! let event = PagerdutyEvent::from_json(json).unwrap();
//! assert_eq!(event.name(), "incident.triggered");
//! assert_eq!(event.subject().as_deref(), Some("pagerduty:incident/Q1EZAYE5KCTLMW"));
//! let PagerdutyEvent::Incident(incident) = &event else { panic!("not typed") };
//! assert_eq!(incident.event_type, IncidentEventType::Triggered);
//! assert_eq!(incident.envelope.format, WebhookFormat::V3);
//! assert_eq!(incident.incident.priority.as_ref().unwrap().summary.as_deref(), Some("P1"));
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::common::{expect_json_object, null_as_default, str_at};

string_enum! {
    /// The `event_type` of a V3 `incident.*` event (V2 events are mapped onto these, see
    /// [`IncidentEventType::from_v2`]).
    IncidentEventType {
        Triggered => "incident.triggered",
        Acknowledged => "incident.acknowledged",
        Unacknowledged => "incident.unacknowledged",
        Resolved => "incident.resolved",
        Reassigned => "incident.reassigned",
        Escalated => "incident.escalated",
        Delegated => "incident.delegated",
        PriorityUpdated => "incident.priority_updated",
        Annotated => "incident.annotated",
        Reopened => "incident.reopened",
        ServiceUpdated => "incident.service_updated",
        IncidentTypeChanged => "incident.incident_type.changed",
        ResponderAdded => "incident.responder.added",
        ResponderReplied => "incident.responder.replied",
        StatusUpdatePublished => "incident.status_update_published",
        ConferenceBridgeUpdated => "incident.conference_bridge.updated",
        CustomFieldValuesUpdated => "incident.custom_field_values.updated",
        WorkflowStarted => "incident.workflow.started",
        WorkflowCompleted => "incident.workflow.completed",
    }
}

impl IncidentEventType {
    /// The V3 equivalent of a V2 message's `event`, as PagerDuty's V2 documentation describes
    /// each: `incident.trigger` -> `incident.triggered`, `incident.acknowledge` ->
    /// `incident.acknowledged`, `incident.unacknowledge` -> `incident.unacknowledged`,
    /// `incident.resolve` -> `incident.resolved`, `incident.assign` -> `incident.reassigned`,
    /// `incident.escalate` -> `incident.escalated`, `incident.delegate` ->
    /// `incident.delegated`, `incident.annotate` -> `incident.annotated`. None for anything
    /// else.
    pub fn from_v2(event: &str) -> Option<Self> {
        Some(match event {
            "incident.trigger" => Self::Triggered,
            "incident.acknowledge" => Self::Acknowledged,
            "incident.unacknowledge" => Self::Unacknowledged,
            "incident.resolve" => Self::Resolved,
            "incident.assign" => Self::Reassigned,
            "incident.escalate" => Self::Escalated,
            "incident.delegate" => Self::Delegated,
            "incident.annotate" => Self::Annotated,
            _ => return None,
        })
    }
}

string_enum! {
    /// The `event_type` of a V3 `service.*` event.
    ServiceEventType {
        Created => "service.created",
        Updated => "service.updated",
        Deleted => "service.deleted",
    }
}

string_enum! {
    /// An incident's `status`.
    IncidentStatus {
        Triggered => "triggered",
        Acknowledged => "acknowledged",
        Resolved => "resolved",
    }
}

string_enum! {
    /// An incident's `urgency`.
    Urgency {
        High => "high",
        Low => "low",
    }
}

/// Which webhook generation a delivery came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// V3 webhook subscriptions: one `event` per delivery, signed.
    V3,
    /// Legacy V2 webhook extensions: a `messages` array, unsigned by PagerDuty.
    V2,
}

// ---------------------------------------------------------------------------------------------
// Shared objects
// ---------------------------------------------------------------------------------------------

/// A reference to another PagerDuty object (`user_reference`, `service_reference`,
/// `priority_reference`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// The object's id (`PLH1HKV`).
    pub id: String,
    /// The reference type, e.g. `user_reference` or `service_reference`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// A short human-readable name (a user's name, `P1` for a priority).
    #[serde(default)]
    pub summary: Option<String>,
    /// The object's page in the PagerDuty web app.
    #[serde(default)]
    pub html_url: Option<String>,
    /// The object's REST API URL.
    #[serde(rename = "self", default)]
    pub self_url: Option<String>,
}

impl Reference {
    /// Whether the reference is to a user (`user_reference`), as opposed to a service, an
    /// integration or PagerDuty itself.
    pub fn is_user(&self) -> bool {
        self.kind.as_deref() == Some("user_reference")
    }
}

/// Where a V3 event was triggered from (`event.client`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// The client's name, e.g. `PagerDuty`.
    #[serde(default)]
    pub name: Option<String>,
}

/// An incident type (`incident_type` of an incident).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentType {
    /// The type's name, e.g. `major`.
    #[serde(default)]
    pub name: Option<String>,
}

/// An incident, as V3 `incident` data and V2 messages carry it, normalized.
///
/// For events whose data is not the incident itself (a note, a responder, ...; see
/// [`IncidentDetail`]) only the reference fields are known: `id`, `summary`, `html_url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// The incident's id (`Q1EZAYE5KCTLMW`): the key to the REST API and of the subject.
    pub id: String,
    /// The incident's number, unique in the account (V2: `incident_number`).
    #[serde(default)]
    pub number: Option<u64>,
    /// The title.
    #[serde(default)]
    pub title: Option<String>,
    /// A short summary, `[#4182] Checkout API 5xx rate above 5%` (references and V2).
    #[serde(default)]
    pub summary: Option<String>,
    /// `triggered`, `acknowledged` or `resolved`.
    #[serde(default)]
    pub status: Option<IncidentStatus>,
    /// `high` or `low`.
    #[serde(default)]
    pub urgency: Option<Urgency>,
    /// The priority (`summary` is its name, `P1`); None when the incident has none.
    #[serde(default)]
    pub priority: Option<Reference>,
    /// The users the incident is assigned to (V2: from `assignments[].assignee`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub assignees: Vec<Reference>,
    /// The service the incident belongs to.
    #[serde(default)]
    pub service: Option<Reference>,
    /// The escalation policy the incident follows.
    #[serde(default)]
    pub escalation_policy: Option<Reference>,
    /// The teams involved.
    #[serde(default, deserialize_with = "null_as_default")]
    pub teams: Vec<Reference>,
    /// The incident's page in the PagerDuty web app.
    #[serde(default)]
    pub html_url: Option<String>,
    /// The incident's de-duplication key (the Events API `dedup_key`).
    #[serde(default)]
    pub incident_key: Option<String>,
    /// When the incident was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// Why the incident was resolved (V3: an object such as a merge; V2: a string), kept as
    /// sent.
    #[serde(default)]
    pub resolve_reason: Option<Value>,
    /// The incident type.
    #[serde(default)]
    pub incident_type: Option<IncidentType>,
}

impl Incident {
    /// An incident known only by reference.
    fn from_reference(reference: Reference) -> Self {
        Incident {
            id: reference.id,
            number: None,
            title: None,
            summary: reference.summary,
            status: None,
            urgency: None,
            priority: None,
            assignees: Vec::new(),
            service: None,
            escalation_policy: None,
            teams: Vec::new(),
            html_url: reference.html_url,
            incident_key: None,
            created_at: None,
            resolve_reason: None,
            incident_type: None,
        }
    }
}

/// A note added to an incident (`incident_note`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// The note's id.
    #[serde(default)]
    pub id: Option<String>,
    /// The note's text.
    pub content: String,
    /// Whether PagerDuty shortened the text to fit the webhook.
    #[serde(default)]
    pub trimmed: bool,
}

/// A responder request on an incident (`incident_responder`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Responder {
    /// The user asked to respond.
    #[serde(default)]
    pub user: Option<Reference>,
    /// The escalation policy asked to respond.
    #[serde(default)]
    pub escalation_policy: Option<Reference>,
    /// The request's message.
    #[serde(default)]
    pub message: Option<String>,
    /// `pending`, `joined`, `declined`, ...
    #[serde(default)]
    pub state: Option<String>,
}

/// A status update published on an incident (`incident_status_update`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// The status update's id.
    #[serde(default)]
    pub id: Option<String>,
    /// The update's text.
    pub message: String,
    /// Whether PagerDuty shortened the text to fit the webhook.
    #[serde(default)]
    pub trimmed: bool,
}

/// One dial-in number of a conference bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceNumber {
    /// A label for the number, possibly empty.
    #[serde(default)]
    pub label: Option<String>,
    /// The number, with any access codes.
    pub number: String,
}

/// An incident's conference bridge (`incident_conference_bridge`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceBridge {
    /// The bridge's URL.
    #[serde(default)]
    pub conference_url: Option<String>,
    /// The dial-in numbers.
    #[serde(default, deserialize_with = "null_as_default")]
    pub conference_numbers: Vec<ConferenceNumber>,
}

/// The value of one custom field of an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldValue {
    /// The field's id.
    pub id: String,
    /// The field's name.
    pub name: String,
    /// `string`, `integer`, `boolean`, `url`, `datetime`, ...
    #[serde(default)]
    pub data_type: Option<String>,
    /// `single_value`, `single_value_fixed`, `multi_value`, ...
    #[serde(default)]
    pub field_type: Option<String>,
    /// The value, as sent (a string, a number, a list, or null).
    #[serde(default)]
    pub value: Value,
}

/// An incident's custom field values (`incident_field_values`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldValues {
    /// Every custom field of the incident, with its value.
    #[serde(default, deserialize_with = "null_as_default")]
    pub custom_fields: Vec<FieldValue>,
    /// The fields that changed, with their new values.
    #[serde(default, deserialize_with = "null_as_default")]
    pub changed_custom_fields: Vec<FieldValue>,
}

/// An incident workflow run (`incident_workflow_instance`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowInstance {
    /// The run's id.
    pub id: String,
    /// The run's name.
    #[serde(default)]
    pub summary: Option<String>,
    /// The workflow that ran.
    #[serde(default)]
    pub incident_workflow: Option<Reference>,
    /// The trigger that started it.
    #[serde(default)]
    pub workflow_trigger: Option<Reference>,
    /// The incident's service.
    #[serde(default)]
    pub service: Option<Reference>,
}

/// What an incident event carries besides the incident, by its `data.type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum IncidentDetail {
    /// The data is the incident itself (`incident`), complete in [`IncidentEvent::incident`].
    /// Every V2 message is of this kind: it carries the whole incident and its log entries.
    Incident,
    /// `incident_note` (`incident.annotated`).
    Note(Note),
    /// `incident_responder` (`incident.responder.added`, `incident.responder.replied`).
    Responder(Responder),
    /// `incident_status_update` (`incident.status_update_published`).
    StatusUpdate(StatusUpdate),
    /// `incident_conference_bridge` (`incident.conference_bridge.updated`).
    ConferenceBridge(ConferenceBridge),
    /// `incident_field_values` (`incident.custom_field_values.updated`).
    FieldValues(FieldValues),
    /// `incident_workflow_instance` (`incident.workflow.started`, `.completed`).
    Workflow(WorkflowInstance),
}

/// A V2 log entry: what happened to the incident, by whom, through which channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The log entry's id.
    pub id: String,
    /// `trigger_log_entry`, `acknowledge_log_entry`, `annotate_log_entry`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// A human-readable summary (`Acknowledged by Laura Haley`).
    #[serde(default)]
    pub summary: Option<String>,
    /// When it happened.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// Who or what did it.
    #[serde(default)]
    pub agent: Option<Reference>,
    /// How it was done (for a trigger, the original event; for a note, its text), as sent.
    #[serde(default)]
    pub channel: Option<Value>,
    /// The note, for log entries that carry one.
    #[serde(default)]
    pub note: Option<String>,
    /// The users assigned, for `assign_log_entry` and `escalate_log_entry`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub assignees: Vec<Reference>,
}

/// What every event has: its id, type, time, agent, and the webhook generation it came in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    /// V3 or V2.
    pub format: WebhookFormat,
    /// The event's id: V3 `event.id`, V2 `messages[].id`.
    pub id: String,
    /// The event type exactly as sent: V3 `event.event_type` (`incident.triggered`), V2
    /// `messages[].event` (`incident.trigger`).
    pub event_type: String,
    /// V3 `event.resource_type` (`incident`, `service`, `pagey`); None for V2.
    pub resource_type: Option<String>,
    /// When the event happened: V3 `event.occurred_at`, V2 `messages[].created_on`.
    pub occurred_at: Option<OffsetDateTime>,
    /// Who or what caused the event: V3 `event.agent`, V2 the agent of the first log entry.
    pub agent: Option<Reference>,
    /// V3 `event.client`; None for V2.
    pub client: Option<Client>,
}

/// An `incident.*` event, V3 or V2.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentEvent {
    /// Id, time, agent and format.
    pub envelope: Envelope,
    /// What happened, by its V3 name (V2 events mapped, see [`IncidentEventType::from_v2`]).
    pub event_type: IncidentEventType,
    /// The incident: complete when `detail` is [`IncidentDetail::Incident`], its reference
    /// fields only (`id`, `summary`, `html_url`) otherwise.
    pub incident: Incident,
    /// What the event carries besides the incident.
    pub detail: IncidentDetail,
    /// V2 only: the log entries of the action the message reports (empty for V3).
    pub log_entries: Vec<LogEntry>,
}

/// A service, as `service.*` events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// The service's id.
    pub id: String,
    /// The service's name.
    #[serde(default)]
    pub summary: Option<String>,
    /// The service's name, where sent as `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// The service's description.
    #[serde(default)]
    pub description: Option<String>,
    /// `active`, `warning`, `critical`, `maintenance`, `disabled`.
    #[serde(default)]
    pub status: Option<String>,
    /// How events on the service create alerts and incidents.
    #[serde(default)]
    pub alert_creation: Option<String>,
    /// The teams owning the service.
    #[serde(default, deserialize_with = "null_as_default")]
    pub teams: Vec<Reference>,
    /// The service's page in the PagerDuty web app.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// A `service.*` event (V3 only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceEvent {
    /// Id, time, agent and format.
    pub envelope: Envelope,
    /// `service.created`, `service.updated` or `service.deleted`.
    pub event_type: ServiceEventType,
    /// The service.
    pub service: Service,
}

/// `pagey.ping`: the test event PagerDuty sends from a V3 subscription's "Send Test Event".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PingEvent {
    /// Id, time, agent and format.
    pub envelope: Envelope,
    /// `Hello from your friend Pagey!`
    pub message: Option<String>,
}

/// A V2 delivery with several messages, each typed on its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct V2Batch {
    /// The messages, in the order sent.
    pub messages: Vec<PagerdutyEvent>,
}

/// An event this crate has no type for, or a known event whose payload did not fit the typed
/// shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UntypedEvent {
    /// V3 or V2 (V3 for a body that is neither).
    pub format: WebhookFormat,
    /// The event type as sent (V3 `event.event_type`, V2 `messages[].event`), if any.
    pub event_type: Option<String>,
    /// Why typing failed for a known event (the serde error text); None for unknown events.
    pub reason: Option<String>,
    /// The whole body (always a JSON object); for one message of a V2 batch, that message.
    pub payload: Value,
}

/// A PagerDuty webhook event, typed. Forward compatible: unknown events, unknown event types
/// of known resources and unknown fields never fail parsing.
// One value per delivery, built once and moved into an `Arc`: boxing the large incident
// variant would only cost every user a `Box` in their patterns.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum PagerdutyEvent {
    /// `incident.*`, V3 or V2.
    Incident(IncidentEvent),
    /// `service.*`.
    Service(ServiceEvent),
    /// `pagey.ping`.
    Ping(PingEvent),
    /// A V2 delivery of several messages.
    V2Batch(V2Batch),
    /// Anything else, kept whole.
    Untyped(UntypedEvent),
}

// ---------------------------------------------------------------------------------------------
// Wire shapes
// ---------------------------------------------------------------------------------------------

/// `event` of a V3 body, with `data` kept for a second, kind-specific pass.
#[derive(Deserialize)]
struct V3Wire {
    id: String,
    event_type: String,
    #[serde(default)]
    resource_type: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    occurred_at: Option<OffsetDateTime>,
    #[serde(default)]
    agent: Option<Reference>,
    #[serde(default)]
    client: Option<Client>,
    #[serde(default)]
    data: Value,
}

/// The `incident` reference carried by every incident data kind but `incident` itself.
#[derive(Deserialize)]
struct HasIncident {
    incident: Reference,
}

/// One V2 message.
#[derive(Deserialize)]
struct V2MessageWire {
    id: String,
    event: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    created_on: Option<OffsetDateTime>,
    incident: V2Incident,
    #[serde(default, deserialize_with = "null_as_default")]
    log_entries: Vec<LogEntry>,
}

/// V2 `assignments[]`.
#[derive(Deserialize)]
struct V2Assignment {
    assignee: Reference,
}

/// The V2 incident object, whose names differ from V3's (`incident_number`, `assignments`).
#[derive(Deserialize)]
struct V2Incident {
    id: String,
    #[serde(default)]
    incident_number: Option<u64>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    status: Option<IncidentStatus>,
    #[serde(default)]
    urgency: Option<Urgency>,
    #[serde(default)]
    priority: Option<Reference>,
    #[serde(default, deserialize_with = "null_as_default")]
    assignments: Vec<V2Assignment>,
    #[serde(default)]
    service: Option<Reference>,
    #[serde(default)]
    escalation_policy: Option<Reference>,
    #[serde(default, deserialize_with = "null_as_default")]
    teams: Vec<Reference>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    incident_key: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    created_at: Option<OffsetDateTime>,
    #[serde(default)]
    resolve_reason: Option<Value>,
}

impl From<V2Incident> for Incident {
    fn from(v2: V2Incident) -> Self {
        Incident {
            id: v2.id,
            number: v2.incident_number,
            title: v2.title,
            summary: v2.summary,
            status: v2.status,
            urgency: v2.urgency,
            priority: v2.priority,
            assignees: v2.assignments.into_iter().map(|a| a.assignee).collect(),
            service: v2.service,
            escalation_policy: v2.escalation_policy,
            teams: v2.teams,
            html_url: v2.html_url,
            incident_key: v2.incident_key,
            created_at: v2.created_at,
            resolve_reason: v2.resolve_reason,
            incident_type: None,
        }
    }
}

fn untyped(
    format: WebhookFormat,
    event_type: Option<&str>,
    reason: Option<String>,
    payload: Value,
) -> PagerdutyEvent {
    PagerdutyEvent::Untyped(UntypedEvent {
        format,
        event_type: event_type.map(str::to_owned),
        reason,
        payload,
    })
}

/// The `data.type` PagerDuty documents for each V3 event type, for data that lacks one.
fn documented_data_type(event_type: &str) -> Option<&'static str> {
    Some(match IncidentEventType::from(event_type) {
        IncidentEventType::Annotated => "incident_note",
        IncidentEventType::ResponderAdded | IncidentEventType::ResponderReplied => {
            "incident_responder"
        }
        IncidentEventType::StatusUpdatePublished => "incident_status_update",
        IncidentEventType::ConferenceBridgeUpdated => "incident_conference_bridge",
        IncidentEventType::CustomFieldValuesUpdated => "incident_field_values",
        IncidentEventType::WorkflowStarted | IncidentEventType::WorkflowCompleted => {
            "incident_workflow_instance"
        }
        IncidentEventType::Other(_) => return None,
        _ => "incident",
    })
}

/// The incident data of a V3 event, by `data.type`; None for an unknown kind.
fn incident_data(
    data_type: &str,
    data: &Value,
) -> Option<Result<(Incident, IncidentDetail), serde_json::Error>> {
    fn with_ref<'a, T: Deserialize<'a>>(
        data: &'a Value,
        wrap: fn(T) -> IncidentDetail,
    ) -> Result<(Incident, IncidentDetail), serde_json::Error> {
        let incident = HasIncident::deserialize(data)?.incident;
        let detail = T::deserialize(data)?;
        Ok((Incident::from_reference(incident), wrap(detail)))
    }
    Some(match data_type {
        "incident" => Incident::deserialize(data).map(|i| (i, IncidentDetail::Incident)),
        "incident_note" => with_ref(data, IncidentDetail::Note),
        "incident_responder" => with_ref(data, IncidentDetail::Responder),
        "incident_status_update" => with_ref(data, IncidentDetail::StatusUpdate),
        "incident_conference_bridge" => with_ref(data, IncidentDetail::ConferenceBridge),
        "incident_field_values" => with_ref(data, IncidentDetail::FieldValues),
        "incident_workflow_instance" => with_ref(data, IncidentDetail::Workflow),
        _ => return None,
    })
}

fn from_v3(document: Value) -> PagerdutyEvent {
    let event_type = str_at(&document, "/event/event_type").map(str::to_owned);
    let fail = |reason: String, document: Value| {
        untyped(
            WebhookFormat::V3,
            event_type.as_deref(),
            Some(reason),
            document,
        )
    };
    let wire = match V3Wire::deserialize(&document["event"]) {
        Ok(wire) => wire,
        Err(e) => return fail(e.to_string(), document),
    };
    // `resource_type` is the leftmost part of `event_type`; trust the type when it is absent.
    let resource = wire
        .resource_type
        .clone()
        .unwrap_or_else(|| wire.event_type.split('.').next().unwrap_or("").to_owned());
    let envelope = Envelope {
        format: WebhookFormat::V3,
        id: wire.id,
        event_type: wire.event_type,
        resource_type: wire.resource_type,
        occurred_at: wire.occurred_at,
        agent: wire.agent,
        client: wire.client,
    };
    let data = &wire.data;
    match resource.as_str() {
        "incident" => {
            let data_type = data
                .get("type")
                .and_then(Value::as_str)
                .or_else(|| documented_data_type(&envelope.event_type));
            let Some(parsed) = data_type.and_then(|t| incident_data(t, data)) else {
                return untyped(WebhookFormat::V3, event_type.as_deref(), None, document);
            };
            match parsed {
                Ok((incident, detail)) => PagerdutyEvent::Incident(IncidentEvent {
                    event_type: IncidentEventType::from(envelope.event_type.as_str()),
                    envelope,
                    incident,
                    detail,
                    log_entries: Vec::new(),
                }),
                Err(e) => fail(e.to_string(), document),
            }
        }
        "service" => match Service::deserialize(data) {
            Ok(service) => PagerdutyEvent::Service(ServiceEvent {
                event_type: ServiceEventType::from(envelope.event_type.as_str()),
                envelope,
                service,
            }),
            Err(e) => fail(e.to_string(), document),
        },
        "pagey" if envelope.event_type == "pagey.ping" => PagerdutyEvent::Ping(PingEvent {
            message: str_at(data, "/message").map(str::to_owned),
            envelope,
        }),
        _ => untyped(WebhookFormat::V3, event_type.as_deref(), None, document),
    }
}

/// One V2 message, typed; `Err(reason)` when it does not fit (the reason is None for an
/// unknown event).
fn v2_message(message: &Value) -> Result<IncidentEvent, Option<String>> {
    let event = str_at(message, "/event").unwrap_or_default();
    let event_type = IncidentEventType::from_v2(event).ok_or(None)?;
    let wire = V2MessageWire::deserialize(message).map_err(|e| Some(e.to_string()))?;
    Ok(IncidentEvent {
        envelope: Envelope {
            format: WebhookFormat::V2,
            id: wire.id,
            event_type: wire.event,
            resource_type: None,
            occurred_at: wire.created_on,
            // V2 messages name no agent of their own: the log entry of the action does.
            agent: wire
                .log_entries
                .iter()
                .find_map(|entry| entry.agent.clone()),
            client: None,
        },
        event_type,
        incident: wire.incident.into(),
        detail: IncidentDetail::Incident,
        log_entries: wire.log_entries,
    })
}

fn from_v2(document: Value) -> PagerdutyEvent {
    let messages = match document.get("messages").and_then(Value::as_array) {
        Some(messages) if !messages.is_empty() => messages,
        _ => {
            let reason = "`messages` is not a non-empty array".to_owned();
            return untyped(WebhookFormat::V2, None, Some(reason), document);
        }
    };
    if messages.len() == 1 {
        let event_type = str_at(&messages[0], "/event").map(str::to_owned);
        return match v2_message(&messages[0]) {
            Ok(event) => PagerdutyEvent::Incident(event),
            Err(reason) => untyped(WebhookFormat::V2, event_type.as_deref(), reason, document),
        };
    }
    let messages = messages
        .iter()
        .map(|message| match v2_message(message) {
            Ok(event) => PagerdutyEvent::Incident(event),
            Err(reason) => untyped(
                WebhookFormat::V2,
                str_at(message, "/event"),
                reason,
                message.clone(),
            ),
        })
        .collect();
    PagerdutyEvent::V2Batch(V2Batch { messages })
}

/// The V3 `event.agent`, or the agent of the first V2 log entry, of an untyped payload.
fn untyped_agent(untyped: &UntypedEvent) -> Option<Reference> {
    let payload = &untyped.payload;
    let agent = match untyped.format {
        WebhookFormat::V3 => payload.pointer("/event/agent")?,
        WebhookFormat::V2 => payload
            .pointer("/messages/0/log_entries/0/agent")
            .or_else(|| payload.pointer("/log_entries/0/agent"))?,
    };
    Reference::deserialize(agent).ok()
}

impl PagerdutyEvent {
    /// Parses the JSON document of a delivery, V3 or V2 by its shape: an `event` object is
    /// V3, a `messages` array V2.
    ///
    /// Fails only when the document is not well-formed JSON or not a JSON object; anything
    /// else that does not fit becomes [`PagerdutyEvent::Untyped`].
    pub fn from_json(json: &[u8]) -> Result<PagerdutyEvent, serde_json::Error> {
        // Rule non-objects out first: everything below reads fields of an object.
        expect_json_object(json)?;
        let document: Value = serde_json::from_slice(json)?;
        if document.get("event").is_some_and(Value::is_object) {
            Ok(from_v3(document))
        } else if document.get("messages").is_some() {
            Ok(from_v2(document))
        } else {
            let reason = "neither a V3 `event` nor a V2 `messages` envelope".to_owned();
            Ok(untyped(WebhookFormat::V3, None, Some(reason), document))
        }
    }

    /// The event's name: its V3 event type (`incident.triggered`, `service.updated`,
    /// `pagey.ping`), V2 messages by their V3 equivalent; `v2.batch` for a V2 batch; for
    /// untyped events the type as sent, or `unknown`.
    pub fn name(&self) -> String {
        match self {
            PagerdutyEvent::Incident(e) => e.event_type.as_str().to_owned(),
            PagerdutyEvent::Service(e) => e.event_type.as_str().to_owned(),
            PagerdutyEvent::Ping(e) => e.envelope.event_type.clone(),
            PagerdutyEvent::V2Batch(_) => "v2.batch".to_owned(),
            PagerdutyEvent::Untyped(e) => e.event_type.clone().unwrap_or_else(|| "unknown".into()),
        }
    }

    /// Which webhook generation the event came in.
    pub fn format(&self) -> WebhookFormat {
        match self {
            PagerdutyEvent::Incident(e) => e.envelope.format,
            PagerdutyEvent::Service(e) => e.envelope.format,
            PagerdutyEvent::Ping(e) => e.envelope.format,
            PagerdutyEvent::V2Batch(_) => WebhookFormat::V2,
            PagerdutyEvent::Untyped(e) => e.format,
        }
    }

    /// The envelope (id, type, time, agent, format); None for batches and untyped events.
    pub fn envelope(&self) -> Option<&Envelope> {
        match self {
            PagerdutyEvent::Incident(e) => Some(&e.envelope),
            PagerdutyEvent::Service(e) => Some(&e.envelope),
            PagerdutyEvent::Ping(e) => Some(&e.envelope),
            PagerdutyEvent::V2Batch(_) | PagerdutyEvent::Untyped(_) => None,
        }
    }

    /// The id of the incident the event is about, if it is about one (a batch: only when all
    /// its messages are about the same incident).
    pub fn incident_id(&self) -> Option<String> {
        match self {
            PagerdutyEvent::Incident(e) => Some(e.incident.id.clone()),
            PagerdutyEvent::Service(_) | PagerdutyEvent::Ping(_) => None,
            PagerdutyEvent::V2Batch(batch) => {
                let mut ids = batch.messages.iter().map(PagerdutyEvent::incident_id);
                let first = ids.next()??;
                ids.all(|id| id.as_deref() == Some(first.as_str()))
                    .then_some(first)
            }
            PagerdutyEvent::Untyped(e) => untyped_incident_id(e).map(str::to_owned),
        }
    }

    /// The object the event is about, as a stable key used for per-object ordering and links:
    ///
    /// - incident events (V3 and V2): `pagerduty:incident/<incident id>`;
    /// - service events: `pagerduty:service/<service id>`;
    /// - a V2 batch: the incident's key when all messages are about the same incident;
    /// - untyped: the incident's key when the payload names one (`data.id` of `incident`
    ///   data, `data.incident.id`, or a V2 message's `incident.id`).
    ///
    /// None for `pagey.ping` and for events about no incident or service.
    pub fn subject(&self) -> Option<String> {
        match self {
            PagerdutyEvent::Service(e) => Some(format!("pagerduty:service/{}", e.service.id)),
            _ => self
                .incident_id()
                .map(|id| format!("pagerduty:incident/{id}")),
        }
    }

    /// Who or what caused the event: V3 `event.agent`; V2 the agent of the action's log
    /// entry; a batch: the agent when every message has the same one.
    pub fn agent(&self) -> Option<Reference> {
        match self {
            PagerdutyEvent::Incident(e) => e.envelope.agent.clone(),
            PagerdutyEvent::Service(e) => e.envelope.agent.clone(),
            PagerdutyEvent::Ping(e) => e.envelope.agent.clone(),
            PagerdutyEvent::V2Batch(batch) => {
                let mut agents = batch.messages.iter().map(PagerdutyEvent::agent);
                let first = agents.next()??;
                agents
                    .all(|agent| agent.as_ref().map(|a| &a.id) == Some(&first.id))
                    .then_some(first)
            }
            PagerdutyEvent::Untyped(e) => untyped_agent(e),
        }
    }

    /// The provider's timestamp of the event, for recognising stale events: V3
    /// `event.occurred_at`, V2 `created_on`; a batch: its latest message's.
    pub fn updated_at(&self) -> Option<OffsetDateTime> {
        match self {
            PagerdutyEvent::Incident(e) => e.envelope.occurred_at,
            PagerdutyEvent::Service(e) => e.envelope.occurred_at,
            PagerdutyEvent::Ping(e) => e.envelope.occurred_at,
            PagerdutyEvent::V2Batch(batch) => batch
                .messages
                .iter()
                .filter_map(PagerdutyEvent::updated_at)
                .max(),
            PagerdutyEvent::Untyped(_) => None,
        }
    }
}

fn untyped_incident_id(e: &UntypedEvent) -> Option<&str> {
    let payload = &e.payload;
    match e.format {
        WebhookFormat::V3 => {
            if str_at(payload, "/event/data/type") == Some("incident") {
                str_at(payload, "/event/data/id")
            } else {
                str_at(payload, "/event/data/incident/id")
            }
        }
        WebhookFormat::V2 => {
            str_at(payload, "/messages/0/incident/id").or_else(|| str_at(payload, "/incident/id"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> PagerdutyEvent {
        PagerdutyEvent::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn unknown_incident_event_of_known_data_kind_stays_typed() {
        let event = parse(
            r#"{"event":{"id":"E1","event_type":"incident.title_updated","resource_type":"incident",
              "occurred_at":"2024-05-17T09:21:03Z","agent":null,"client":null,
              "data":{"id":"PINC1","type":"incident","title":"New title"}}}"#,
        );
        let PagerdutyEvent::Incident(e) = &event else {
            panic!("{event:?}")
        };
        assert_eq!(
            e.event_type,
            IncidentEventType::Other("incident.title_updated".into())
        );
        assert_eq!(event.name(), "incident.title_updated");
        assert_eq!(event.subject().as_deref(), Some("pagerduty:incident/PINC1"));
    }

    #[test]
    fn unknown_data_kind_and_resource_are_untyped_with_a_subject_where_known() {
        let event = parse(
            r#"{"event":{"id":"E2","event_type":"incident.role.assigned","resource_type":"incident",
              "occurred_at":"2024-05-17T09:21:03Z",
              "agent":{"id":"PUSER1","type":"user_reference","summary":"Ana"},
              "data":{"type":"incident_role_assignment","incident":{"id":"PINC2"}}}}"#,
        );
        let PagerdutyEvent::Untyped(u) = &event else {
            panic!("{event:?}")
        };
        assert_eq!(u.reason, None);
        assert_eq!(event.name(), "incident.role.assigned");
        assert_eq!(event.subject().as_deref(), Some("pagerduty:incident/PINC2"));
        assert_eq!(event.agent().unwrap().id, "PUSER1");
        let other = parse(
            r#"{"event":{"id":"E3","event_type":"oncall.handoff","resource_type":"oncall","data":{}}}"#,
        );
        assert!(matches!(other, PagerdutyEvent::Untyped(_)));
        assert_eq!(other.subject(), None);
    }

    #[test]
    fn shape_mismatch_is_untyped_with_reason() {
        let event = parse(
            r#"{"event":{"id":"E4","event_type":"incident.triggered","resource_type":"incident",
              "data":{"type":"incident","number":"not a number","id":"PINC3"}}}"#,
        );
        let PagerdutyEvent::Untyped(u) = &event else {
            panic!("{event:?}")
        };
        assert!(u.reason.as_deref().unwrap().contains("invalid type"));
        assert_eq!(event.name(), "incident.triggered");
        assert_eq!(event.subject().as_deref(), Some("pagerduty:incident/PINC3"));
        let bad_time = parse(
            r#"{"event":{"id":"E5","event_type":"incident.triggered","occurred_at":"yesterday",
              "data":{"type":"incident","id":"PINC3"}}}"#,
        );
        assert!(matches!(bad_time, PagerdutyEvent::Untyped(_)));
    }

    #[test]
    fn missing_data_type_falls_back_to_the_documented_one() {
        let event = parse(
            r#"{"event":{"id":"E6","event_type":"incident.annotated",
              "data":{"incident":{"id":"PINC4"},"content":"looking"}}}"#,
        );
        let PagerdutyEvent::Incident(e) = &event else {
            panic!("{event:?}")
        };
        assert!(matches!(&e.detail, IncidentDetail::Note(n) if n.content == "looking"));
    }

    #[test]
    fn non_objects_and_bad_json_fail() {
        assert!(PagerdutyEvent::from_json(b"[1]").is_err());
        assert!(PagerdutyEvent::from_json(b"{\"event\":").is_err());
        assert!(PagerdutyEvent::from_json(b"").is_err());
        let neither = PagerdutyEvent::from_json(b"{\"hello\":1}").unwrap();
        assert!(matches!(
            neither,
            PagerdutyEvent::Untyped(UntypedEvent {
                reason: Some(_),
                ..
            })
        ));
    }

    #[test]
    fn v2_unknown_event_and_empty_batch_are_untyped() {
        let unknown =
            parse(r#"{"messages":[{"id":"m1","event":"incident.custom","incident":{"id":"PX"}}]}"#);
        let PagerdutyEvent::Untyped(u) = &unknown else {
            panic!("{unknown:?}")
        };
        assert_eq!(u.format, WebhookFormat::V2);
        assert_eq!(unknown.name(), "incident.custom");
        assert_eq!(unknown.subject().as_deref(), Some("pagerduty:incident/PX"));
        assert!(matches!(
            parse(r#"{"messages":[]}"#),
            PagerdutyEvent::Untyped(UntypedEvent {
                reason: Some(_),
                ..
            })
        ));
    }
}
