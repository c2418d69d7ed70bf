//! Typed Asana webhook payloads.
//!
//! An Asana delivery is a batch, `{"events": [...]}`, of compact change events: who
//! (`user`), when (`created_at`), what happened (`action`: changed, added, removed, deleted,
//! undeleted) to which resource (`resource`, by gid and type), where (`parent`), and for
//! `changed`, which field changed (`change`). Webhook events carry ids, not the new state:
//! a rule fetches the resource from the API. An empty batch is a heartbeat.
//!
//! [`AsanaEvent::from_json`] types a batch. Parsing is forward compatible:
//!
//! - unknown fields are ignored (no type here uses `deny_unknown_fields`);
//! - unknown actions and resource types become the `Other(String)` variant of their enum;
//! - a batch that does not fit the typed shape (an event without `resource`, say) becomes
//!   [`AsanaEvent::Untyped`], with the whole payload kept as JSON and the reason.
//!
//! ```
//! use hookbridge_providers::asana::events::{AsanaEvent, EventAction};
//!
//! let json = br#"{"events":[{"user":{"gid":"1201119191231293","resource_type":"user"},
//!   "created_at":"2024-05-17T09:21:03.512Z","action":"changed",
//!   "resource":{"gid":"1207332211000001","resource_type":"task","resource_subtype":"default_task"},
//!   "parent":null,"change":{"field":"completed","action":"changed"}}]}"#;
//! let event = AsanaEvent::from_json(json).unwrap();
//! assert_eq!(event.name(), "task.changed");
//! assert_eq!(event.subject(), "asana:task/1207332211000001");
//! let AsanaEvent::Batch(batch) = &event else { panic!("not typed") };
//! assert_eq!(batch.events[0].action, EventAction::Changed);
//!
//! let heartbeat = AsanaEvent::from_json(br#"{"events":[]}"#).unwrap();
//! assert_eq!(heartbeat.name(), "heartbeat");
//! ```

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::common::expect_json_object;

string_enum! {
    /// What happened to an event's resource.
    EventAction {
        Changed => "changed",
        Added => "added",
        Removed => "removed",
        Deleted => "deleted",
        Undeleted => "undeleted",
    }
}

string_enum! {
    /// What happened to the field named by a `change`.
    ChangeAction {
        Changed => "changed",
        Added => "added",
        Removed => "removed",
    }
}

string_enum! {
    /// The kind of an Asana resource (`resource_type`).
    ResourceType {
        Task => "task",
        Story => "story",
        Project => "project",
        Section => "section",
        Tag => "tag",
        User => "user",
        Workspace => "workspace",
        Team => "team",
        Attachment => "attachment",
        CustomField => "custom_field",
        Portfolio => "portfolio",
        Goal => "goal",
    }
}

/// An Asana resource in compact form, as webhook events name them: `resource`, `parent`,
/// `user`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resource {
    /// The resource's globally unique id (a decimal string).
    pub gid: String,
    /// What kind of resource it is.
    pub resource_type: ResourceType,
    /// Its subtype, for resources that have one (`default_task`, `milestone`,
    /// `comment_added`, `assigned`, ...).
    #[serde(default)]
    pub resource_subtype: Option<String>,
    /// Its name, when the event includes it.
    #[serde(default)]
    pub name: Option<String>,
}

/// The field change of a `changed` event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    /// The field that changed (`name`, `completed`, `assignee`, `custom_fields`, ...).
    pub field: String,
    /// How it changed.
    pub action: ChangeAction,
    /// For `changed`, when the new value is a resource: its gid and type.
    #[serde(default)]
    pub new_value: Option<serde_json::Value>,
    /// For `added`, when the added value is a resource: its gid and type.
    #[serde(default)]
    pub added_value: Option<serde_json::Value>,
    /// For `removed`, when the removed value is a resource: its gid and type.
    #[serde(default)]
    pub removed_value: Option<serde_json::Value>,
}

/// One change event of a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AsanaEventItem {
    /// Who made the change; absent for changes Asana itself made.
    #[serde(default)]
    pub user: Option<Resource>,
    /// When the change happened.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// What happened to the resource.
    pub action: EventAction,
    /// The resource that changed.
    pub resource: Resource,
    /// For `added` / `removed` events, the resource it was added to or removed from (a
    /// story's task, a task's project); for stories, the task they are on.
    #[serde(default)]
    pub parent: Option<Resource>,
    /// For `changed` events, the field that changed.
    #[serde(default)]
    pub change: Option<Change>,
}

impl AsanaEventItem {
    /// The object this event is about, for keying: the task a story is on (a comment is
    /// about its task), otherwise the resource itself.
    pub fn object(&self) -> &Resource {
        match (&self.resource.resource_type, &self.parent) {
            (ResourceType::Story, Some(parent)) => parent,
            _ => &self.resource,
        }
    }
}

/// A delivery's batch of events. Empty for a heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AsanaBatch {
    /// The events, oldest first.
    pub events: Vec<AsanaEventItem>,
}

/// A batch whose shape does not fit the typed one, kept whole.
#[derive(Debug, Clone, Serialize)]
pub struct UntypedEvent {
    /// Why typing failed (the serde error text).
    pub reason: Option<String>,
    /// The whole payload (always a JSON object).
    pub payload: serde_json::Value,
}

/// An Asana webhook delivery, typed. Forward compatible: unknown actions, resource types and
/// fields never fail parsing.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum AsanaEvent {
    /// The batch, typed (an empty one is a heartbeat).
    Batch(AsanaBatch),
    /// A batch that does not fit the typed shape: kept whole, with the raw JSON.
    Untyped(UntypedEvent),
}

/// The name of a batch from its events' (resource type, action) pairs: `heartbeat` when
/// empty, `<resource_type>.<action>` when every event shares them, else `batch`. Shared with
/// identification, which reads only these two fields.
pub(crate) fn batch_name<'a>(mut pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let Some(first) = pairs.next() else {
        return "heartbeat".to_owned();
    };
    if pairs.all(|pair| pair == first) {
        format!("{}.{}", first.0, first.1)
    } else {
        "batch".to_owned()
    }
}

impl AsanaEvent {
    /// Parses a delivery body. Err only when `json` is not well-formed JSON (syntax) or not a
    /// JSON object; a well-formed object that does not fit the typed batch becomes `Untyped`
    /// with `reason` set.
    pub fn from_json(json: &[u8]) -> Result<AsanaEvent, serde_json::Error> {
        // A derived struct also accepts a JSON array (positionally): rule non-objects out first.
        expect_json_object(json)?;
        match serde_json::from_slice::<AsanaBatch>(json) {
            Ok(batch) => Ok(AsanaEvent::Batch(batch)),
            // A shape mismatch: keep the batch whole if the document is well-formed (the
            // re-parse returns the syntax error if the mismatch hid one further on).
            Err(e) if e.is_data() => Ok(AsanaEvent::Untyped(UntypedEvent {
                reason: Some(e.to_string()),
                payload: serde_json::from_slice(json)?,
            })),
            Err(e) => Err(e),
        }
    }

    /// The typed events; empty for a heartbeat and for an untyped batch.
    pub fn events(&self) -> &[AsanaEventItem] {
        match self {
            AsanaEvent::Batch(batch) => &batch.events,
            AsanaEvent::Untyped(_) => &[],
        }
    }

    /// How many events the batch holds (untyped: as many as its `events` array).
    pub fn len(&self) -> usize {
        match self {
            AsanaEvent::Batch(batch) => batch.events.len(),
            AsanaEvent::Untyped(untyped) => {
                untyped.payload["events"].as_array().map_or(0, Vec::len)
            }
        }
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a heartbeat: a typed batch with no event, which Asana sends to show
    /// the webhook is alive.
    pub fn is_heartbeat(&self) -> bool {
        matches!(self, AsanaEvent::Batch(batch) if batch.events.is_empty())
    }

    /// The delivery's name: `heartbeat` for an empty batch, `<resource_type>.<action>`
    /// (`task.changed`, `story.added`) when every event shares both, `batch` otherwise
    /// (untyped batches included).
    pub fn name(&self) -> String {
        match self {
            AsanaEvent::Batch(batch) => batch_name(
                batch
                    .events
                    .iter()
                    .map(|e| (e.resource.resource_type.as_str(), e.action.as_str())),
            ),
            AsanaEvent::Untyped(_) => "batch".to_owned(),
        }
    }

    /// The object the batch is about, as a stable key for per-object ordering and links:
    /// `asana:<resource_type>/<gid>` (`asana:task/1207332211000001`) when every event is about
    /// the same object (a story counts as its task, see [`AsanaEventItem::object`]),
    /// `asana:batch` otherwise (heartbeats and untyped batches included).
    pub fn subject(&self) -> String {
        let mut objects = self.events().iter().map(AsanaEventItem::object);
        match objects.next() {
            Some(first)
                if matches!(self, AsanaEvent::Batch(_))
                    && objects
                        .all(|o| o.gid == first.gid && o.resource_type == first.resource_type) =>
            {
                format!("asana:{}/{}", first.resource_type, first.gid)
            }
            _ => "asana:batch".to_owned(),
        }
    }

    /// Who made the first change of the batch (its `user`).
    pub fn user(&self) -> Option<&Resource> {
        self.events().first().and_then(|e| e.user.as_ref())
    }

    /// The time of the batch's latest event, for recognising stale events; None for a
    /// heartbeat, an untyped batch, or events without `created_at`.
    pub fn updated_at(&self) -> Option<OffsetDateTime> {
        self.events().iter().filter_map(|e| e.created_at).max()
    }
}
