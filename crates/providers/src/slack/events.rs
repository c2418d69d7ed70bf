//! Typed Slack Events API and interactivity payloads.
//!
//! [`SlackEvent::from_json`] types the JSON body of an Events API request
//! (<https://api.slack.com/apis/events-api>): an `event_callback` envelope becomes
//! [`SlackEvent::EventCallback`], whose inner `event` is typed for `message`, `app_mention` and
//! `reaction_added` ([`InnerEvent`]). [`SlackEvent::from_form`] types a form-encoded body:
//! interactivity (`payload=<JSON>`: block actions, shortcuts, view submissions) and slash
//! commands become [`SlackEvent::Interactive`], their content kept as JSON.
//!
//! Parsing is forward compatible:
//!
//! - unknown fields are ignored;
//! - unknown message subtypes become [`MessageSubtype::Other`];
//! - unknown inner event types, and known ones whose shape does not fit, become
//!   [`InnerEvent::Untyped`] inside a typed envelope (so the event id, team and time stay
//!   typed);
//! - other envelopes (`app_rate_limited`, `url_verification` outside the handshake, unknown
//!   ones) and envelopes that do not fit become [`SlackEvent::Untyped`].
//!
//! The envelope's `token` (the deprecated verification token, a shared secret) is never kept:
//! it is not a field of the typed envelope and is removed from every JSON document kept.
//!
//! ```
//! use hookbridge_providers::slack::events::{InnerEvent, SlackEvent};
//!
//! let json = br#"{"token":"XXYYZZ","team_id":"T0AB12CD3","api_app_id":"A0KRD7HC3",
//!   "event":{"type":"message","channel":"C2147483705","user":"U2147483697",
//!     "text":"Deploy finished","ts":"1715937663.000200","channel_type":"channel"},
//!   "type":"event_callback","event_id":"Ev0PV52K21","event_time":1715937663}"#;
//! let event = SlackEvent::from_json(json).unwrap();
//! assert_eq!(event.name(), "message");
//! assert_eq!(event.subject().as_deref(), Some("slack:T0AB12CD3/C2147483705/1715937663.000200"));
//! let SlackEvent::EventCallback(callback) = &event else { panic!("not typed") };
//! let InnerEvent::Message(message) = &callback.event else { panic!("not a message") };
//! assert_eq!(message.text.as_deref(), Some("Deploy finished"));
//! ```

use serde::de::Error as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::common::{expect_json_object, null_as_default, str_at};

string_enum! {
    /// The `subtype` of a `message` event.
    MessageSubtype {
        BotMessage => "bot_message",
        MeMessage => "me_message",
        MessageChanged => "message_changed",
        MessageDeleted => "message_deleted",
        MessageReplied => "message_replied",
        ThreadBroadcast => "thread_broadcast",
        FileShare => "file_share",
        ChannelJoin => "channel_join",
        ChannelLeave => "channel_leave",
        ChannelTopic => "channel_topic",
        ChannelPurpose => "channel_purpose",
        ChannelName => "channel_name",
        ChannelArchive => "channel_archive",
        ChannelUnarchive => "channel_unarchive",
        Tombstone => "tombstone",
    }
}

/// One installation the event is visible to (`authorizations[]` of the envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    /// The Enterprise Grid organization, if any.
    #[serde(default)]
    pub enterprise_id: Option<String>,
    /// The workspace.
    #[serde(default)]
    pub team_id: Option<String>,
    /// The user (or bot user) the installation acts as.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Whether `user_id` is a bot user.
    #[serde(default)]
    pub is_bot: bool,
    /// Whether the app is installed org-wide.
    #[serde(default)]
    pub is_enterprise_install: bool,
}

/// A `message` event: a message posted, or (with a `subtype`) changed, deleted, or a channel
/// notice (<https://api.slack.com/events/message>).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageEvent {
    /// The conversation (`C...` channel, `G...` private group, `D...` direct message).
    pub channel: String,
    /// The author; absent from some subtypes (`bot_message`, `message_changed`).
    #[serde(default)]
    pub user: Option<String>,
    /// The text, in Slack's `mrkdwn`.
    #[serde(default)]
    pub text: Option<String>,
    /// The message's timestamp, its id in the conversation (`1715937663.000200`).
    pub ts: String,
    /// The parent's `ts` when the message is in a thread.
    #[serde(default)]
    pub thread_ts: Option<String>,
    /// What kind of message this is; None for a plain message.
    #[serde(default)]
    pub subtype: Option<MessageSubtype>,
    /// Set when a bot (an app, an integration) posted the message.
    #[serde(default)]
    pub bot_id: Option<String>,
    /// The display name a bot posted under.
    #[serde(default)]
    pub username: Option<String>,
    /// `channel`, `group`, `im` or `mpim`.
    #[serde(default)]
    pub channel_type: Option<String>,
    /// The workspace of the author.
    #[serde(default)]
    pub team: Option<String>,
    /// When the event happened (`ts` of the event, not of the message, for edits).
    #[serde(default)]
    pub event_ts: Option<String>,
    /// The client's id of the message, stable across retries of a post.
    #[serde(default)]
    pub client_msg_id: Option<String>,
    /// `message_changed`: the message after the change, as sent.
    #[serde(default)]
    pub message: Option<Value>,
    /// `message_changed`, `message_deleted`: the message before, as sent.
    #[serde(default)]
    pub previous_message: Option<Value>,
    /// `message_deleted`: the `ts` of the deleted message.
    #[serde(default)]
    pub deleted_ts: Option<String>,
    /// Whether this is a hidden notice (edits, deletions), not shown in the conversation.
    #[serde(default)]
    pub hidden: bool,
}

impl MessageEvent {
    /// The `ts` of the message the event is about: the edited message's for
    /// `message_changed`, the deleted one's for `message_deleted`, this message's otherwise.
    pub fn message_ts(&self) -> &str {
        match self.subtype {
            Some(MessageSubtype::MessageChanged) => self
                .message
                .as_ref()
                .and_then(|m| m.get("ts"))
                .and_then(Value::as_str)
                .unwrap_or(&self.ts),
            Some(MessageSubtype::MessageDeleted) => self.deleted_ts.as_deref().unwrap_or(&self.ts),
            _ => &self.ts,
        }
    }

    /// The author of the message: `user`, or for `message_changed` the edited message's
    /// `user`.
    pub fn author(&self) -> Option<&str> {
        self.user.as_deref().or_else(|| {
            self.message
                .as_ref()
                .and_then(|m| m.get("user"))
                .and_then(Value::as_str)
        })
    }

    /// The bot that posted the message: `bot_id`, or for `message_changed` the edited
    /// message's `bot_id`.
    pub fn bot(&self) -> Option<&str> {
        self.bot_id.as_deref().or_else(|| {
            self.message
                .as_ref()
                .and_then(|m| m.get("bot_id"))
                .and_then(Value::as_str)
        })
    }
}

/// An `app_mention` event: a message that mentions the app
/// (<https://api.slack.com/events/app_mention>).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppMentionEvent {
    /// The conversation.
    pub channel: String,
    /// The author.
    #[serde(default)]
    pub user: Option<String>,
    /// The text, with the mention as `<@U...>`.
    pub text: String,
    /// The message's timestamp.
    pub ts: String,
    /// The parent's `ts` when the mention is in a thread.
    #[serde(default)]
    pub thread_ts: Option<String>,
    /// Set when a bot posted the mention.
    #[serde(default)]
    pub bot_id: Option<String>,
    /// The workspace of the author.
    #[serde(default)]
    pub team: Option<String>,
    /// When the event happened.
    #[serde(default)]
    pub event_ts: Option<String>,
}

/// What a reaction was added to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionItem {
    /// `message`, `file` or `file_comment`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The message's conversation.
    #[serde(default)]
    pub channel: Option<String>,
    /// The message's timestamp.
    #[serde(default)]
    pub ts: Option<String>,
    /// The file's id.
    #[serde(default)]
    pub file: Option<String>,
    /// The file comment's id.
    #[serde(default)]
    pub file_comment: Option<String>,
}

/// A `reaction_added` event (<https://api.slack.com/events/reaction_added>).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionAddedEvent {
    /// Who reacted.
    pub user: String,
    /// The emoji's name, without colons (`white_check_mark`).
    pub reaction: String,
    /// The author of the item reacted to.
    #[serde(default)]
    pub item_user: Option<String>,
    /// The item reacted to.
    pub item: ReactionItem,
    /// When the event happened.
    #[serde(default)]
    pub event_ts: Option<String>,
}

/// An inner event this crate has no type for, or a known one whose shape did not fit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UntypedInnerEvent {
    /// The inner event's `type`.
    pub event_type: String,
    /// Why typing failed for a known type (the serde error text); None for unknown types.
    pub reason: Option<String>,
    /// The inner event, as sent.
    pub payload: Value,
}

/// The `event` of an `event_callback` envelope.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "event", rename_all = "snake_case")]
pub enum InnerEvent {
    /// `message`, with any subtype.
    Message(MessageEvent),
    /// `app_mention`.
    AppMention(AppMentionEvent),
    /// `reaction_added`.
    ReactionAdded(ReactionAddedEvent),
    /// Any other event type, kept whole.
    Untyped(UntypedInnerEvent),
}

impl InnerEvent {
    /// The inner event's `type` (`message`, `app_mention`, `channel_created`, ...).
    pub fn event_type(&self) -> &str {
        match self {
            InnerEvent::Message(_) => "message",
            InnerEvent::AppMention(_) => "app_mention",
            InnerEvent::ReactionAdded(_) => "reaction_added",
            InnerEvent::Untyped(e) => &e.event_type,
        }
    }
}

/// An `event_callback` envelope: one Events API event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventCallback {
    /// The workspace the event happened in.
    pub team_id: String,
    /// The app the event is delivered to.
    pub api_app_id: Option<String>,
    /// The event's id, unique per app; retries (`X-Slack-Retry-Num`) repeat it.
    pub event_id: String,
    /// When the event happened, Unix seconds.
    pub event_time: Option<i64>,
    /// The Enterprise Grid organization, if any.
    pub enterprise_id: Option<String>,
    /// The workspace the event is about, for events in shared channels.
    pub context_team_id: Option<String>,
    /// The Enterprise Grid organization the event is about.
    pub context_enterprise_id: Option<String>,
    /// Whether the event happened in a channel shared with another organization.
    pub is_ext_shared_channel: Option<bool>,
    /// An opaque id of the event's context, for `apps.event.authorizations.list`.
    pub event_context: Option<String>,
    /// The installations the event is visible to.
    pub authorizations: Vec<Authorization>,
    /// The event.
    pub event: InnerEvent,
}

/// An interactivity request (`payload=<JSON>`: `block_actions`, `shortcut`,
/// `message_action`, `view_submission`, `view_closed`, ...) or a slash command, kept as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InteractiveEvent {
    /// The payload's `type`, or `slash_command` for a slash command.
    pub kind: String,
    /// The workspace (`team.id`; a slash command's `team_id`).
    pub team_id: Option<String>,
    /// Who interacted (`user.id`; a slash command's `user_id`).
    pub user_id: Option<String>,
    /// Their name (`user.username`, else `user.name`; a slash command's `user_name`).
    pub user_name: Option<String>,
    /// The trigger id, to open a modal in answer (valid for 3 seconds).
    pub trigger_id: Option<String>,
    /// The payload (a slash command's fields as a JSON object of strings), without `token`.
    pub payload: Value,
}

/// An envelope this crate has no type for, or an `event_callback` that did not fit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UntypedEvent {
    /// The envelope's `type` (`app_rate_limited`, `url_verification`, ...), if any.
    pub envelope_type: Option<String>,
    /// Why typing failed for a known envelope (the serde error text); None otherwise.
    pub reason: Option<String>,
    /// The whole body, without `token` (always a JSON object).
    pub payload: Value,
}

/// A Slack request, typed. Forward compatible: unknown envelopes, event types, subtypes and
/// fields never fail parsing.
// One value per request, built once and moved into an `Arc`: boxing the large envelope
// variant would only cost every user a `Box` in their patterns.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum SlackEvent {
    /// An Events API `event_callback`.
    EventCallback(EventCallback),
    /// An interactivity request or slash command (form-encoded).
    Interactive(InteractiveEvent),
    /// Anything else, kept whole.
    Untyped(UntypedEvent),
}

// ---------------------------------------------------------------------------------------------
// Wire shapes
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct EventCallbackWire {
    team_id: String,
    #[serde(default)]
    api_app_id: Option<String>,
    event_id: String,
    #[serde(default)]
    event_time: Option<i64>,
    #[serde(default)]
    enterprise_id: Option<String>,
    #[serde(default)]
    context_team_id: Option<String>,
    #[serde(default)]
    context_enterprise_id: Option<String>,
    #[serde(default)]
    is_ext_shared_channel: Option<bool>,
    #[serde(default)]
    event_context: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    authorizations: Vec<Authorization>,
    event: Value,
}

/// Parses a JSON object, refusing anything else.
fn object(json: &[u8]) -> Result<Value, serde_json::Error> {
    expect_json_object(json)?;
    serde_json::from_slice(json)
}

/// Removes the verification token: a shared secret that must not reach storage views,
/// `inspect` output or logs.
fn without_token(mut document: Value) -> Value {
    if let Some(map) = document.as_object_mut() {
        map.remove("token");
    }
    document
}

fn inner_event(event: Value) -> InnerEvent {
    fn typed<T: serde::de::DeserializeOwned>(
        event: Value,
        wrap: fn(T) -> InnerEvent,
    ) -> InnerEvent {
        match T::deserialize(&event) {
            Ok(typed) => wrap(typed),
            Err(e) => InnerEvent::Untyped(UntypedInnerEvent {
                event_type: str_at(&event, "/type").unwrap_or_default().to_owned(),
                reason: Some(e.to_string()),
                payload: event,
            }),
        }
    }
    match str_at(&event, "/type") {
        Some("message") => typed(event, InnerEvent::Message),
        Some("app_mention") => typed(event, InnerEvent::AppMention),
        Some("reaction_added") => typed(event, InnerEvent::ReactionAdded),
        other => InnerEvent::Untyped(UntypedInnerEvent {
            event_type: other.unwrap_or("unknown").to_owned(),
            reason: other
                .is_none()
                .then(|| "the event has no string `type`".to_owned()),
            payload: event,
        }),
    }
}

impl SlackEvent {
    /// Parses the JSON body of an Events API request.
    ///
    /// Fails only when the body is not well-formed JSON or not a JSON object; anything else
    /// that does not fit becomes [`SlackEvent::Untyped`] (or an [`InnerEvent::Untyped`]).
    pub fn from_json(json: &[u8]) -> Result<SlackEvent, serde_json::Error> {
        let document = without_token(object(json)?);
        let envelope_type = str_at(&document, "/type").map(str::to_owned);
        if envelope_type.as_deref() != Some("event_callback") {
            return Ok(SlackEvent::Untyped(UntypedEvent {
                envelope_type,
                reason: None,
                payload: document,
            }));
        }
        match EventCallbackWire::deserialize(&document) {
            Ok(wire) => Ok(SlackEvent::EventCallback(EventCallback {
                team_id: wire.team_id,
                api_app_id: wire.api_app_id,
                event_id: wire.event_id,
                event_time: wire.event_time,
                enterprise_id: wire.enterprise_id,
                context_team_id: wire.context_team_id,
                context_enterprise_id: wire.context_enterprise_id,
                is_ext_shared_channel: wire.is_ext_shared_channel,
                event_context: wire.event_context,
                authorizations: wire.authorizations,
                event: inner_event(wire.event),
            })),
            Err(e) => Ok(SlackEvent::Untyped(UntypedEvent {
                envelope_type,
                reason: Some(e.to_string()),
                payload: document,
            })),
        }
    }

    /// Parses the JSON of an interactivity request's `payload` field.
    ///
    /// Fails only when it is not well-formed JSON or not a JSON object.
    pub fn from_interactive_json(json: &[u8]) -> Result<SlackEvent, serde_json::Error> {
        let payload = without_token(object(json)?);
        let user_name = str_at(&payload, "/user/username")
            .or_else(|| str_at(&payload, "/user/name"))
            .map(str::to_owned);
        Ok(SlackEvent::Interactive(InteractiveEvent {
            kind: str_at(&payload, "/type").unwrap_or("unknown").to_owned(),
            team_id: str_at(&payload, "/team/id").map(str::to_owned),
            user_id: str_at(&payload, "/user/id").map(str::to_owned),
            user_name,
            trigger_id: str_at(&payload, "/trigger_id").map(str::to_owned),
            payload,
        }))
    }

    /// Parses a form-encoded body: an interactivity request (`payload=<JSON>`) or a slash
    /// command (`command=/deploy&text=...`).
    ///
    /// Fails when the form has neither a `payload` nor a `command`, or its `payload` is not
    /// a JSON object.
    pub fn from_form(body: &[u8]) -> Result<SlackEvent, serde_json::Error> {
        if let Some((_, payload)) = form_urlencoded::parse(body).find(|(k, _)| k == "payload") {
            return Self::from_interactive_json(payload.as_bytes());
        }
        let fields: Map<String, Value> = form_urlencoded::parse(body)
            .filter(|(key, _)| key != "token")
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        if !fields.contains_key("command") {
            return Err(serde_json::Error::custom(
                "a form body needs a `payload` (interactivity) or a `command` (slash command)",
            ));
        }
        let field = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
        Ok(SlackEvent::Interactive(InteractiveEvent {
            kind: "slash_command".to_owned(),
            team_id: field("team_id"),
            user_id: field("user_id"),
            user_name: field("user_name"),
            trigger_id: field("trigger_id"),
            payload: Value::Object(fields),
        }))
    }

    /// The event's name: for an `event_callback`, its inner event type, with a message's
    /// subtype after a dot (`message`, `message.bot_message`, `app_mention`,
    /// `reaction_added`, `channel_created`); `interactive` for interactivity and slash
    /// commands; for other envelopes, their type (`app_rate_limited`), or `unknown`.
    pub fn name(&self) -> String {
        match self {
            SlackEvent::EventCallback(e) => match &e.event {
                InnerEvent::Message(MessageEvent {
                    subtype: Some(subtype),
                    ..
                }) => format!("message.{subtype}"),
                inner => inner.event_type().to_owned(),
            },
            SlackEvent::Interactive(_) => "interactive".to_owned(),
            SlackEvent::Untyped(e) => e.envelope_type.clone().unwrap_or_else(|| "unknown".into()),
        }
    }

    /// The workspace the event happened in.
    pub fn team_id(&self) -> Option<&str> {
        match self {
            SlackEvent::EventCallback(e) => Some(&e.team_id),
            SlackEvent::Interactive(e) => e.team_id.as_deref(),
            SlackEvent::Untyped(e) => str_at(&e.payload, "/team_id"),
        }
    }

    /// The object the event is about, as a stable key used for per-object ordering and links:
    ///
    /// - `message` and `app_mention`: `slack:<team>/<channel>/<ts>`, the `ts` of the message
    ///   the event is about (the edited message for `message_changed`, the deleted one for
    ///   `message_deleted`, see [`MessageEvent::message_ts`]);
    /// - `reaction_added` to a message: that message's key, `slack:<team>/<channel>/<ts>`;
    /// - anything else: `slack:<team>`.
    ///
    /// None when no team is known (an untyped body without `team_id`).
    pub fn subject(&self) -> Option<String> {
        let team = self.team_id()?;
        let message = |channel: &str, ts: &str| format!("slack:{team}/{channel}/{ts}");
        Some(match self {
            SlackEvent::EventCallback(e) => match &e.event {
                InnerEvent::Message(m) => message(&m.channel, m.message_ts()),
                InnerEvent::AppMention(m) => message(&m.channel, &m.ts),
                InnerEvent::ReactionAdded(ReactionAddedEvent {
                    item:
                        ReactionItem {
                            kind,
                            channel: Some(channel),
                            ts: Some(ts),
                            ..
                        },
                    ..
                }) if kind == "message" => message(channel, ts),
                _ => format!("slack:{team}"),
            },
            _ => format!("slack:{team}"),
        })
    }

    /// Who caused the event: `(user id, is a bot)`. For events, the inner event's `user` (a
    /// message's author, see [`MessageEvent::author`]), a bot when `bot_id` is set; a bot
    /// message without a user is attributed to its `bot_id`. For interactivity, the user who
    /// interacted.
    pub fn actor(&self) -> Option<(String, bool)> {
        match self {
            SlackEvent::EventCallback(e) => match &e.event {
                InnerEvent::Message(m) => match (m.author(), m.bot()) {
                    (Some(user), bot) => Some((user.to_owned(), bot.is_some())),
                    (None, Some(bot)) => Some((bot.to_owned(), true)),
                    (None, None) => None,
                },
                InnerEvent::AppMention(m) => m
                    .user
                    .clone()
                    .or_else(|| m.bot_id.clone())
                    .map(|user| (user, m.bot_id.is_some())),
                InnerEvent::ReactionAdded(r) => Some((r.user.clone(), false)),
                InnerEvent::Untyped(u) => {
                    let bot = str_at(&u.payload, "/bot_id");
                    str_at(&u.payload, "/user")
                        .or(bot)
                        .map(|user| (user.to_owned(), bot.is_some()))
                }
            },
            SlackEvent::Interactive(e) => e.user_id.clone().map(|user| (user, false)),
            SlackEvent::Untyped(_) => None,
        }
    }

    /// The provider's timestamp of the event, for recognising stale events: the envelope's
    /// `event_time`; None for interactivity and untyped envelopes.
    pub fn updated_at(&self) -> Option<OffsetDateTime> {
        match self {
            SlackEvent::EventCallback(e) => e
                .event_time
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
            SlackEvent::Interactive(_) | SlackEvent::Untyped(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callback(event: &str) -> SlackEvent {
        let json = format!(
            r#"{{"token":"secret-token","team_id":"T1","api_app_id":"A1","event":{event},
               "type":"event_callback","event_id":"Ev1","event_time":1715937663}}"#
        );
        SlackEvent::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn message_subtypes_name_and_subject() {
        let edited = callback(
            r#"{"type":"message","subtype":"message_changed","channel":"C1","hidden":true,
                "ts":"1715937700.000300","message":{"type":"message","user":"U9","text":"v2",
                "ts":"1715937663.000200"},"previous_message":{"text":"v1"}}"#,
        );
        assert_eq!(edited.name(), "message.message_changed");
        assert_eq!(
            edited.subject().as_deref(),
            Some("slack:T1/C1/1715937663.000200")
        );
        assert_eq!(edited.actor(), Some(("U9".to_owned(), false)));
        let deleted = callback(
            r#"{"type":"message","subtype":"message_deleted","channel":"C1","hidden":true,
                "ts":"1715937800.000400","deleted_ts":"1715937663.000200"}"#,
        );
        assert_eq!(
            deleted.subject().as_deref(),
            Some("slack:T1/C1/1715937663.000200")
        );
        assert_eq!(deleted.actor(), None);
        let new_subtype =
            callback(r#"{"type":"message","subtype":"huddle_thread","channel":"C1","ts":"1.2"}"#);
        assert_eq!(new_subtype.name(), "message.huddle_thread");
    }

    #[test]
    fn token_is_never_kept() {
        let json = br#"{"token":"secret-token","type":"app_rate_limited","team_id":"T1",
            "minute_rate_limited":1518467820,"api_app_id":"A1"}"#;
        let event = SlackEvent::from_json(json).unwrap();
        let SlackEvent::Untyped(u) = &event else {
            panic!("{event:?}")
        };
        assert_eq!(u.envelope_type.as_deref(), Some("app_rate_limited"));
        assert!(u.payload.get("token").is_none());
        assert_eq!(event.subject().as_deref(), Some("slack:T1"));
        let typed = callback(r#"{"type":"channel_created","channel":{"id":"C9"}}"#);
        assert!(
            !serde_json::to_string(&typed)
                .unwrap()
                .contains("secret-token")
        );
        let form =
            SlackEvent::from_form(b"token=secret-token&team_id=T1&command=%2Fdeploy").unwrap();
        assert!(
            !serde_json::to_string(&form)
                .unwrap()
                .contains("secret-token")
        );
        let interactive = SlackEvent::from_form(
            b"payload=%7B%22type%22%3A%22shortcut%22%2C%22token%22%3A%22secret-token%22%7D",
        )
        .unwrap();
        assert!(
            !serde_json::to_string(&interactive)
                .unwrap()
                .contains("secret-token")
        );
    }

    #[test]
    fn envelope_and_inner_mismatches() {
        let no_event_id = SlackEvent::from_json(
            br#"{"type":"event_callback","team_id":"T1","event":{"type":"message"}}"#,
        )
        .unwrap();
        assert!(matches!(
            no_event_id,
            SlackEvent::Untyped(UntypedEvent {
                reason: Some(_),
                ..
            })
        ));
        let bad_message = callback(r#"{"type":"message","text":"no channel"}"#);
        let SlackEvent::EventCallback(e) = &bad_message else {
            panic!()
        };
        assert!(matches!(&e.event, InnerEvent::Untyped(u) if u.reason.is_some()));
        assert_eq!(bad_message.name(), "message");
        assert_eq!(bad_message.subject().as_deref(), Some("slack:T1"));
        let no_type = callback(r#"{"user":"U1"}"#);
        assert_eq!(no_type.name(), "unknown");
        assert_eq!(no_type.actor(), Some(("U1".to_owned(), false)));
    }

    #[test]
    fn forms_and_bad_input() {
        assert!(SlackEvent::from_form(b"text=hi").is_err());
        assert!(SlackEvent::from_form(b"payload=%5B1%5D").is_err());
        assert!(SlackEvent::from_form(b"payload=%7B").is_err());
        assert!(SlackEvent::from_json(b"[1]").is_err());
        assert!(SlackEvent::from_json(b"{\"type\":").is_err());
        let slash = SlackEvent::from_form(
            b"team_id=T1&user_id=U2&user_name=ana&command=%2Fdeploy&text=api+prod&trigger_id=13345224609.738474920.8088930838d88f008e0",
        )
        .unwrap();
        let SlackEvent::Interactive(i) = &slash else {
            panic!()
        };
        assert_eq!(i.kind, "slash_command");
        assert_eq!(i.payload["text"], "api prod");
        assert_eq!(slash.subject().as_deref(), Some("slack:T1"));
        assert_eq!(slash.actor(), Some(("U2".to_owned(), false)));
    }
}
