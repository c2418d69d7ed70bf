//! Typed Jira webhook payloads.
//!
//! [`JiraEvent::from_json`] turns the JSON document of a delivery into a typed event, by its
//! `webhookEvent`. Parsing is forward compatible:
//!
//! - unknown fields are ignored, except in an issue's `fields`, where everything beyond the
//!   common system fields (custom fields above all, whose ids differ from site to site) is
//!   kept as JSON in [`IssueFields::other`];
//! - unknown values of string enums become their `Other(String)` variant;
//! - unknown events, and known events whose payload does not fit the typed shape, become
//!   [`JiraEvent::Untyped`] with the whole payload kept as JSON.
//!
//! Jira Cloud and Jira Data Center differ in details that are absorbed here: ids are strings
//! in some places and numbers in others (both are read as strings); users have an
//! `accountId` on Cloud and a `name`/`key` on Data Center; a comment body is a string (Data
//! Center, REST v2) or an Atlassian Document Format document (Cloud REST v3), kept as JSON
//! with [`Comment::body_text`] to flatten it; timestamps are written
//! `2024-01-02T03:04:05.678+0000`, with no colon in the offset, and are read leniently (an
//! unreadable timestamp is `None`, never a failed parse).
//!
//! ```
//! use hookbridge_providers::jira::events::{IssueWebhookEvent, JiraEvent};
//!
//! let json = br#"{"timestamp":1717577134571,"webhookEvent":"jira:issue_updated",
//!   "issue_event_type_name":"issue_generic",
//!   "user":{"accountId":"5b10ac8d82e05b22cc7d4ef5","displayName":"Mia Krystof"},
//!   "issue":{"id":"10042","key":"OPS-12","fields":{"summary":"Disk full",
//!     "status":{"id":"3","name":"In Progress"},"customfield_10020":7,
//!     "updated":"2024-06-05T08:45:34.571+0000"}},
//!   "changelog":{"id":"10561","items":[{"field":"status","fieldtype":"jira",
//!     "from":"10000","fromString":"To Do","to":"3","toString":"In Progress"}]}}"#;
//! let event = JiraEvent::from_json(json).unwrap();
//! assert_eq!(event.name(), "jira:issue_updated");
//! assert_eq!(event.subject().as_deref(), Some("jira:OPS-12"));
//! let JiraEvent::Issue(e) = &event else { panic!("not typed") };
//! assert_eq!(e.webhook_event, IssueWebhookEvent::Updated);
//! assert_eq!(e.issue.fields.status.as_ref().unwrap().name, "In Progress");
//! assert_eq!(e.issue.fields.other["customfield_10020"], 7);
//! let status = e.changelog.as_ref().unwrap().item("status").unwrap();
//! assert_eq!(status.to_string.as_deref(), Some("In Progress"));
//! assert_eq!(event.updated_at().unwrap().unix_timestamp(), 1717577134);
//! ```

use std::fmt;

use serde::de::{self, Deserializer, Error as _, Visitor};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::common::{expect_json_object, null_as_default, typed};

string_enum! {
    /// The `webhookEvent` of an issue event.
    IssueWebhookEvent {
        Created => "jira:issue_created",
        Updated => "jira:issue_updated",
        Deleted => "jira:issue_deleted",
    }
}

string_enum! {
    /// The `webhookEvent` of a comment event.
    CommentWebhookEvent {
        Created => "comment_created",
        Updated => "comment_updated",
        Deleted => "comment_deleted",
    }
}

string_enum! {
    /// The `webhookEvent` of an issue link event.
    IssueLinkWebhookEvent {
        Created => "issuelink_created",
        Deleted => "issuelink_deleted",
    }
}

string_enum! {
    /// The `issue_event_type_name` of an issue event: Jira's own, finer name for what
    /// happened (an edit, a transition and a comment all arrive as `jira:issue_updated`).
    /// Sites can add their own event types, which arrive as `Other`.
    IssueEventTypeName {
        Created => "issue_created",
        Updated => "issue_updated",
        Generic => "issue_generic",
        Assigned => "issue_assigned",
        Resolved => "issue_resolved",
        Closed => "issue_closed",
        Reopened => "issue_reopened",
        Commented => "issue_commented",
        CommentEdited => "issue_comment_edited",
        CommentDeleted => "issue_comment_deleted",
        Moved => "issue_moved",
        Deleted => "issue_deleted",
        WorkLogged => "issue_work_logged",
        WorkStarted => "issue_work_started",
        WorkStopped => "issue_work_stopped",
        WorklogUpdated => "issue_worklog_updated",
        WorklogDeleted => "issue_worklog_deleted",
    }
}

// ---------------------------------------------------------------------------------------------
// Lenient field readers
// ---------------------------------------------------------------------------------------------

/// Reads an id or a short text that Jira writes as a string in some payloads and as a number
/// in others (issue link ids, status category ids).
struct FlexText;

impl Visitor<'_> for FlexText {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
}

fn flex_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    deserializer.deserialize_any(FlexText)
}

fn flex_text_opt<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "flex_text")] String);
    Option::<Wrapped>::deserialize(deserializer).map(|w| w.map(|w| w.0))
}

/// Parses a Jira timestamp: RFC 3339, or Jira's own form with an offset written without a
/// colon (`2024-01-02T03:04:05.678+0000`, `...-0530`). None if it is neither.
///
/// ```
/// use hookbridge_providers::jira::events::parse_jira_time;
/// let t = parse_jira_time("2024-01-02T03:04:05.678+0000").unwrap();
/// assert_eq!(t.unix_timestamp(), 1704164645);
/// assert_eq!(t.millisecond(), 678);
/// let t = parse_jira_time("2024-01-02T08:34:05+0530").unwrap();
/// assert_eq!(t.unix_timestamp(), 1704164645);
/// assert_eq!(parse_jira_time("2024-01-02T03:04:05Z").unwrap().unix_timestamp(), 1704164645);
/// assert!(parse_jira_time("yesterday").is_none());
/// ```
pub fn parse_jira_time(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    // `+hhmm` / `-hhmm` at the end: insert the colon RFC 3339 wants.
    let bytes = text.as_bytes();
    let n = bytes.len();
    if n > 5 && matches!(bytes[n - 5], b'+' | b'-') && bytes[n - 4..].iter().all(u8::is_ascii_digit)
    {
        let fixed = format!("{}:{}", &text[..n - 2], &text[n - 2..]);
        return OffsetDateTime::parse(&fixed, &Rfc3339).ok();
    }
    None
}

/// `timestamp` values: milliseconds since the Unix epoch.
fn from_epoch_millis(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// Jira timestamps in typed fields: read leniently (see [`parse_jira_time`]; epoch
/// milliseconds are accepted too), written as RFC 3339.
mod jira_time {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub(super) fn serialize<S: Serializer>(
        value: &Option<OffsetDateTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        time::serde::rfc3339::option::serialize(value, serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        // Whatever the value is, it never fails the parse of the whole event.
        Ok(
            match Option::<serde_json::Value>::deserialize(deserializer)? {
                Some(serde_json::Value::String(text)) => super::parse_jira_time(&text),
                Some(serde_json::Value::Number(n)) => n.as_i64().and_then(super::from_epoch_millis),
                _ => None,
            },
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Shared objects
// ---------------------------------------------------------------------------------------------

/// A Jira user: Cloud identifies users by `accountId`, Data Center by `name` and `key`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The Cloud account id (`5b10ac8d82e05b22cc7d4ef5`).
    #[serde(default)]
    pub account_id: Option<String>,
    /// The name shown in Jira.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The Data Center user name (login).
    #[serde(default)]
    pub name: Option<String>,
    /// The Data Center user key.
    #[serde(default)]
    pub key: Option<String>,
    /// The e-mail address, when the user's privacy settings show it.
    #[serde(default)]
    pub email_address: Option<String>,
    /// Cloud: `atlassian` for people, `app` for app and bot accounts, `customer` for Jira
    /// Service Management customers.
    #[serde(default)]
    pub account_type: Option<String>,
    /// Whether the account is active.
    #[serde(default)]
    pub active: Option<bool>,
    /// The user's REST URL.
    #[serde(rename = "self", default)]
    pub self_url: Option<String>,
}

impl User {
    /// A stable id: the Cloud account id, else the Data Center user key, else the user name.
    pub fn id(&self) -> Option<&str> {
        self.account_id
            .as_deref()
            .or(self.key.as_deref())
            .or(self.name.as_deref())
    }

    /// A name for people: the display name, else the user name, else the account id.
    pub fn label(&self) -> Option<&str> {
        self.display_name
            .as_deref()
            .or(self.name.as_deref())
            .or(self.account_id.as_deref())
    }

    /// Whether Jira Cloud marks the account as an app's (`accountType: "app"`), as it does
    /// for the account an integration's API calls act as.
    pub fn is_app(&self) -> bool {
        self.account_type.as_deref() == Some("app")
    }
}

/// The category of a status (`new`, `indeterminate`, `done`): what sync rules usually map.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCategory {
    /// The category id (a number in payloads, kept as text).
    #[serde(default, deserialize_with = "flex_text_opt")]
    pub id: Option<String>,
    /// `new`, `indeterminate`, `done` (or `undefined`).
    #[serde(default)]
    pub key: Option<String>,
    /// `To Do`, `In Progress`, `Done`.
    #[serde(default)]
    pub name: Option<String>,
    /// The colour Jira shows the category in.
    #[serde(default)]
    pub color_name: Option<String>,
}

/// An issue's workflow status.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The status id.
    #[serde(default, deserialize_with = "flex_text_opt")]
    pub id: Option<String>,
    /// The status name (`In Progress`), as configured on the site.
    pub name: String,
    /// The status's category.
    #[serde(default)]
    pub status_category: Option<StatusCategory>,
}

/// An issue's priority.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Priority {
    /// The priority id.
    #[serde(default, deserialize_with = "flex_text_opt")]
    pub id: Option<String>,
    /// The priority name (`Highest`, `P1`, ...), as configured on the site.
    pub name: String,
}

/// An issue's type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssueType {
    /// The issue type id.
    #[serde(default, deserialize_with = "flex_text_opt")]
    pub id: Option<String>,
    /// The issue type name (`Bug`, `Task`, `Incident`).
    pub name: String,
    /// Whether the type is a sub-task type.
    #[serde(default)]
    pub subtask: Option<bool>,
}

/// The project an issue belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    /// The project id.
    #[serde(default, deserialize_with = "flex_text_opt")]
    pub id: Option<String>,
    /// The project key (`OPS`).
    pub key: String,
    /// The project name.
    #[serde(default)]
    pub name: Option<String>,
    /// `software`, `service_desk`, `business`.
    #[serde(default)]
    pub project_type_key: Option<String>,
}

/// An issue's resolution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resolution {
    /// The resolution id.
    #[serde(default, deserialize_with = "flex_text_opt")]
    pub id: Option<String>,
    /// The resolution name (`Done`, `Won't Do`).
    pub name: String,
}

/// An issue's fields: the common system fields typed, every other field (custom fields
/// above all) kept as JSON in [`IssueFields::other`], keyed by field id.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IssueFields {
    /// The summary (title).
    #[serde(default)]
    pub summary: Option<String>,
    /// The description: a string (Data Center, REST v2 payloads) or an Atlassian Document
    /// Format document (Cloud REST v3). See [`IssueFields::description_text`].
    #[serde(default)]
    pub description: Option<serde_json::Value>,
    /// The workflow status.
    #[serde(default)]
    pub status: Option<Status>,
    /// The priority.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// The issue type.
    #[serde(default)]
    pub issuetype: Option<IssueType>,
    /// The project.
    #[serde(default)]
    pub project: Option<Project>,
    /// The assignee; None when unassigned.
    #[serde(default)]
    pub assignee: Option<User>,
    /// The reporter.
    #[serde(default)]
    pub reporter: Option<User>,
    /// The labels.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<String>,
    /// The resolution; None while unresolved.
    #[serde(default)]
    pub resolution: Option<Resolution>,
    /// When the issue was created.
    #[serde(default, with = "jira_time")]
    pub created: Option<OffsetDateTime>,
    /// When the issue was last updated.
    #[serde(default, with = "jira_time")]
    pub updated: Option<OffsetDateTime>,
    /// When the issue was resolved.
    #[serde(default, with = "jira_time")]
    pub resolutiondate: Option<OffsetDateTime>,
    /// Every other field, by field id (`customfield_10020`, `components`, `duedate`, ...).
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl IssueFields {
    /// The description as plain text, whether it is a string or a document.
    pub fn description_text(&self) -> Option<String> {
        self.description.as_ref().and_then(rich_text)
    }
}

/// An issue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Issue {
    /// The issue id (`10042`).
    #[serde(deserialize_with = "flex_text")]
    pub id: String,
    /// The issue key (`OPS-12`): changes when the issue moves to another project.
    pub key: String,
    /// The issue's REST URL.
    #[serde(rename = "self", default)]
    pub self_url: Option<String>,
    /// The fields (comment events carry only a few).
    #[serde(default)]
    pub fields: IssueFields,
}

impl Issue {
    /// A field by id (`customfield_10020`), typed or not, as JSON.
    pub fn field(&self, id: &str) -> Option<serde_json::Value> {
        if let Some(value) = self.fields.other.get(id) {
            return Some(value.clone());
        }
        serde_json::to_value(&self.fields)
            .ok()?
            .get(id)
            .filter(|v| !v.is_null())
            .cloned()
    }
}

/// One changed field in a changelog.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangelogItem {
    /// The field's name (`status`, `assignee`, or a custom field's name).
    pub field: String,
    /// `jira` for system fields, `custom` for custom fields.
    #[serde(default)]
    pub fieldtype: Option<String>,
    /// The field id (`status`, `customfield_10020`); Cloud only.
    #[serde(rename = "fieldId", default)]
    pub field_id: Option<String>,
    /// The old value (an id, for fields that have one).
    #[serde(default, deserialize_with = "flex_text_opt")]
    pub from: Option<String>,
    /// The old value as shown to people.
    #[serde(rename = "fromString", default, deserialize_with = "flex_text_opt")]
    pub from_string: Option<String>,
    /// The new value (an id, for fields that have one).
    #[serde(default, deserialize_with = "flex_text_opt")]
    pub to: Option<String>,
    /// The new value as shown to people.
    #[serde(rename = "toString", default, deserialize_with = "flex_text_opt")]
    pub to_string: Option<String>,
}

/// What an update changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Changelog {
    /// The changelog id.
    #[serde(default, deserialize_with = "flex_text_opt")]
    pub id: Option<String>,
    /// The changed fields.
    #[serde(default, deserialize_with = "null_as_default")]
    pub items: Vec<ChangelogItem>,
}

impl Changelog {
    /// The change of a field, looked up by field id or field name.
    pub fn item(&self, field: &str) -> Option<&ChangelogItem> {
        self.items
            .iter()
            .find(|i| i.field_id.as_deref() == Some(field) || i.field == field)
    }
}

/// A comment on an issue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    /// The comment id.
    #[serde(deserialize_with = "flex_text")]
    pub id: String,
    /// The comment's REST URL.
    #[serde(rename = "self", default)]
    pub self_url: Option<String>,
    /// The body: a string (Data Center, REST v2 payloads) or an Atlassian Document Format
    /// document (Cloud REST v3). See [`Comment::body_text`].
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// Who wrote the comment.
    #[serde(default)]
    pub author: Option<User>,
    /// Who last edited the comment.
    #[serde(default)]
    pub update_author: Option<User>,
    /// When the comment was created.
    #[serde(default, with = "jira_time")]
    pub created: Option<OffsetDateTime>,
    /// When the comment was last edited.
    #[serde(default, with = "jira_time")]
    pub updated: Option<OffsetDateTime>,
    /// Jira Service Management: whether customers see the comment.
    #[serde(default)]
    pub jsd_public: Option<bool>,
}

impl Comment {
    /// The body as plain text: the string itself, or the text of an Atlassian Document
    /// Format document (text nodes joined, blocks and hard breaks as new lines, mentions and
    /// emoji by their text, links by their URL). None without a body.
    ///
    /// ```
    /// use hookbridge_providers::jira::events::Comment;
    /// let adf: Comment = serde_json::from_str(r#"{"id":"1","body":{"type":"doc","version":1,
    ///   "content":[{"type":"paragraph","content":[{"type":"text","text":"Hi "},
    ///   {"type":"mention","attrs":{"id":"5b10","text":"@Mia"}},{"type":"text","text":"!"}]},
    ///   {"type":"paragraph","content":[{"type":"text","text":"Done."}]}]}}"#).unwrap();
    /// assert_eq!(adf.body_text().as_deref(), Some("Hi @Mia!\nDone."));
    /// let plain: Comment = serde_json::from_str(r#"{"id":"2","body":"*bold* text"}"#).unwrap();
    /// assert_eq!(plain.body_text().as_deref(), Some("*bold* text"));
    /// ```
    pub fn body_text(&self) -> Option<String> {
        self.body.as_ref().and_then(rich_text)
    }
}

/// A string as itself, an ADF document flattened; None for anything else.
fn rich_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Object(_) => Some(adf_text(value)),
        _ => None,
    }
}

/// Flattens an Atlassian Document Format node to plain text.
pub fn adf_text(node: &serde_json::Value) -> String {
    let mut out = String::new();
    adf_walk(node, &mut out);
    out.trim_end_matches('\n').to_owned()
}

fn adf_walk(node: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match node {
        Value::Array(nodes) => nodes.iter().for_each(|n| adf_walk(n, out)),
        Value::Object(map) => {
            let kind = map.get("type").and_then(Value::as_str).unwrap_or_default();
            let attr = |name: &str| {
                map.get("attrs")
                    .and_then(|a| a.get(name))
                    .and_then(Value::as_str)
            };
            match kind {
                "text" => out.push_str(map.get("text").and_then(Value::as_str).unwrap_or_default()),
                "hardBreak" => out.push('\n'),
                "mention" => out.push_str(attr("text").or(attr("id")).unwrap_or_default()),
                "emoji" => out.push_str(attr("text").or(attr("shortName")).unwrap_or_default()),
                "status" | "date" => out.push_str(attr("text").unwrap_or_default()),
                "inlineCard" | "blockCard" | "embedCard" => {
                    out.push_str(attr("url").unwrap_or_default())
                }
                _ => {}
            }
            if let Some(content) = map.get("content") {
                adf_walk(content, out);
            }
            // Block nodes end a line.
            if matches!(
                kind,
                "paragraph"
                    | "heading"
                    | "codeBlock"
                    | "blockquote"
                    | "listItem"
                    | "rule"
                    | "tableRow"
                    | "blockCard"
                    | "panel"
            ) && !out.is_empty()
                && !out.ends_with('\n')
            {
                out.push('\n');
            }
        }
        _ => {}
    }
}

/// The kind of link between two issues.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueLinkType {
    /// The link type id.
    #[serde(default, deserialize_with = "flex_text_opt")]
    pub id: Option<String>,
    /// The link type name (`Blocks`, `Duplicate`).
    pub name: String,
    /// How the source relates to the destination (`blocks`).
    #[serde(default)]
    pub outward_name: Option<String>,
    /// How the destination relates to the source (`is blocked by`).
    #[serde(default)]
    pub inward_name: Option<String>,
}

/// A link between two issues. Jira names the issues by id only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueLink {
    /// The link id (a number in payloads, kept as text).
    #[serde(deserialize_with = "flex_text")]
    pub id: String,
    /// The id of the issue the link goes out of.
    #[serde(deserialize_with = "flex_text")]
    pub source_issue_id: String,
    /// The id of the issue the link goes into.
    #[serde(deserialize_with = "flex_text")]
    pub destination_issue_id: String,
    /// The kind of link.
    #[serde(default)]
    pub issue_link_type: Option<IssueLinkType>,
    /// Whether Jira made the link itself (sub-task and epic links).
    #[serde(default)]
    pub system_link: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// `jira:issue_created`, `jira:issue_updated`, `jira:issue_deleted`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssueEvent {
    /// Which issue event.
    #[serde(rename = "webhookEvent")]
    pub webhook_event: IssueWebhookEvent,
    /// When Jira raised the event, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// Jira's finer name for what happened.
    #[serde(default)]
    pub issue_event_type_name: Option<IssueEventTypeName>,
    /// Who caused the event.
    #[serde(default)]
    pub user: Option<User>,
    /// The issue as it is after the change (for a deletion, as it was).
    pub issue: Issue,
    /// What changed; on updates.
    #[serde(default)]
    pub changelog: Option<Changelog>,
    /// The comment, when the update was a comment.
    #[serde(default)]
    pub comment: Option<Comment>,
}

/// `comment_created`, `comment_updated`, `comment_deleted`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentEvent {
    /// Which comment event.
    #[serde(rename = "webhookEvent")]
    pub webhook_event: CommentWebhookEvent,
    /// When Jira raised the event, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// The comment.
    pub comment: Comment,
    /// The issue commented on (with a few fields only); absent from some Data Center
    /// versions' payloads.
    #[serde(default)]
    pub issue: Option<Issue>,
    /// Who caused the event, when the payload names them (otherwise see the comment's
    /// `updateAuthor`).
    #[serde(default)]
    pub user: Option<User>,
}

/// `issuelink_created`, `issuelink_deleted`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssueLinkEvent {
    /// Which issue link event.
    #[serde(rename = "webhookEvent")]
    pub webhook_event: IssueLinkWebhookEvent,
    /// When Jira raised the event, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// The link.
    #[serde(rename = "issueLink")]
    pub issue_link: IssueLink,
}

/// An event kept as JSON: an event this crate does not type, or a known event whose payload
/// did not fit the typed shape.
#[derive(Debug, Clone, Serialize)]
pub struct UntypedEvent {
    /// The payload's `webhookEvent` (empty if it has none).
    pub event: String,
    /// Why typing failed for a known event (the serde error text), or why the event could
    /// not be named; None for events this crate does not type.
    pub reason: Option<String>,
    /// The whole payload (always a JSON object).
    pub payload: serde_json::Value,
}

/// A Jira webhook event, typed. Forward compatible: unknown events, unknown enum values and
/// unknown fields never fail parsing.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", content = "payload", rename_all = "snake_case")]
pub enum JiraEvent {
    /// `jira:issue_created`, `jira:issue_updated`, `jira:issue_deleted`
    Issue(IssueEvent),
    /// `comment_created`, `comment_updated`, `comment_deleted`
    Comment(CommentEvent),
    /// `issuelink_created`, `issuelink_deleted`
    IssueLink(IssueLinkEvent),
    /// Anything else, as JSON.
    Untyped(UntypedEvent),
}

/// The fallback: the whole document as a `Value`, which must be a JSON object.
fn untyped(
    event: &str,
    json: &[u8],
    reason: Option<String>,
) -> Result<JiraEvent, serde_json::Error> {
    let payload: serde_json::Value = serde_json::from_slice(json)?;
    if !payload.is_object() {
        return Err(serde_json::Error::custom("expected a JSON object"));
    }
    Ok(JiraEvent::Untyped(UntypedEvent {
        event: event.to_owned(),
        reason,
        payload,
    }))
}

/// Reads `webhookEvent` only; the rest is checked for syntax.
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "webhookEvent", default)]
    webhook_event: Option<String>,
}

impl JiraEvent {
    /// Parses a delivery's JSON document, typed by its `webhookEvent`. Err only when `json`
    /// is not well-formed JSON or not a JSON object; a well-formed object that does not fit
    /// the typed shape (or has no `webhookEvent`) becomes `Untyped` with `reason` set.
    pub fn from_json(json: &[u8]) -> Result<JiraEvent, serde_json::Error> {
        // A derived struct also accepts a JSON array (positionally): rule non-objects out first.
        expect_json_object(json)?;
        let event = match serde_json::from_slice::<Head>(json) {
            Ok(Head {
                webhook_event: Some(event),
            }) => event,
            Ok(Head {
                webhook_event: None,
            }) => return untyped("", json, Some("the payload has no `webhookEvent`".into())),
            Err(e) if e.is_data() => return untyped("", json, Some(e.to_string())),
            Err(e) => return Err(e),
        };
        let result = match event.as_str() {
            "jira:issue_created" | "jira:issue_updated" | "jira:issue_deleted" => {
                typed(json, JiraEvent::Issue)
            }
            "comment_created" | "comment_updated" | "comment_deleted" => {
                typed(json, JiraEvent::Comment)
            }
            "issuelink_created" | "issuelink_deleted" => typed(json, JiraEvent::IssueLink),
            _ => return untyped(&event, json, None),
        };
        match result {
            Ok(typed) => Ok(typed),
            // A shape mismatch: keep the event whole (the re-parse cannot hide a syntax
            // error, the head parse above already read the whole document).
            Err(e) if e.is_data() => untyped(&event, json, Some(e.to_string())),
            Err(e) => Err(e),
        }
    }

    /// The event's name: its `webhookEvent` (`jira:issue_updated`, `comment_created`), or
    /// `unknown` for a payload without one.
    pub fn name(&self) -> String {
        match self.webhook_event() {
            "" => "unknown".to_owned(),
            event => event.to_owned(),
        }
    }

    /// The payload's `webhookEvent` (empty for an untyped payload without one).
    pub fn webhook_event(&self) -> &str {
        match self {
            JiraEvent::Issue(e) => e.webhook_event.as_str(),
            JiraEvent::Comment(e) => e.webhook_event.as_str(),
            JiraEvent::IssueLink(e) => e.webhook_event.as_str(),
            JiraEvent::Untyped(e) => &e.event,
        }
    }

    /// When Jira raised the event (the payload's `timestamp`).
    pub fn timestamp(&self) -> Option<OffsetDateTime> {
        let ms = match self {
            JiraEvent::Issue(e) => e.timestamp,
            JiraEvent::Comment(e) => e.timestamp,
            JiraEvent::IssueLink(e) => e.timestamp,
            JiraEvent::Untyped(e) => e.payload.get("timestamp").and_then(|t| t.as_i64()),
        };
        ms.and_then(from_epoch_millis)
    }

    /// The issue the event is about, when it names one.
    pub fn issue(&self) -> Option<&Issue> {
        match self {
            JiraEvent::Issue(e) => Some(&e.issue),
            JiraEvent::Comment(e) => e.issue.as_ref(),
            JiraEvent::IssueLink(_) | JiraEvent::Untyped(_) => None,
        }
    }

    /// Who caused the event, for loop prevention: the payload's `user`; for comment events
    /// without one, the comment's last editor (else its author); for untyped events, a
    /// top-level `user` read from the JSON. Issue link events name no one.
    pub fn actor(&self) -> Option<User> {
        match self {
            JiraEvent::Issue(e) => e.user.clone(),
            JiraEvent::Comment(e) => e
                .user
                .as_ref()
                .or(e.comment.update_author.as_ref())
                .or(e.comment.author.as_ref())
                .cloned(),
            JiraEvent::IssueLink(_) => None,
            JiraEvent::Untyped(e) => e
                .payload
                .get("user")
                .and_then(|user| User::deserialize(user).ok()),
        }
    }

    /// The object the event is about, as a stable key for per-object ordering and links:
    ///
    /// - issue and comment events: `jira:<ISSUE-KEY>` (`jira:OPS-12`);
    /// - issue link events: `jira:link/<link id>`;
    /// - untyped events: `jira:<ISSUE-KEY>` from the payload's `issue.key`, if any.
    ///
    /// None for a comment event without its issue, or an untyped event without `issue.key`.
    pub fn subject(&self) -> Option<String> {
        match self {
            JiraEvent::Issue(e) => Some(format!("jira:{}", e.issue.key)),
            JiraEvent::Comment(e) => e.issue.as_ref().map(|i| format!("jira:{}", i.key)),
            JiraEvent::IssueLink(e) => Some(format!("jira:link/{}", e.issue_link.id)),
            JiraEvent::Untyped(e) => e
                .payload
                .pointer("/issue/key")
                .and_then(serde_json::Value::as_str)
                .map(|key| format!("jira:{key}")),
        }
    }

    /// The provider's own timestamp of the object's state, for recognising stale events:
    /// the issue's `fields.updated` for issue events and the comment's `updated` for comment
    /// events, else the event's `timestamp`; for deletions (and issue links) the event's
    /// `timestamp` first, since the deleted object's last edit is older than its deletion.
    pub fn updated_at(&self) -> Option<OffsetDateTime> {
        match self {
            JiraEvent::Issue(e) if e.webhook_event == IssueWebhookEvent::Deleted => {
                self.timestamp().or(e.issue.fields.updated)
            }
            JiraEvent::Issue(e) => e.issue.fields.updated.or_else(|| self.timestamp()),
            JiraEvent::Comment(e) if e.webhook_event == CommentWebhookEvent::Deleted => {
                self.timestamp().or(e.comment.updated)
            }
            JiraEvent::Comment(e) => e.comment.updated.or_else(|| self.timestamp()),
            JiraEvent::IssueLink(_) | JiraEvent::Untyped(_) => self.timestamp(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jira_times() {
        let t = parse_jira_time("2024-01-02T03:04:05.678+0000").unwrap();
        assert_eq!(t.unix_timestamp(), 1704164645);
        assert_eq!(
            parse_jira_time("2024-01-02T03:04:05.678-0100")
                .unwrap()
                .unix_timestamp(),
            1704164645 + 3600
        );
        assert_eq!(
            parse_jira_time(" 2024-01-02T03:04:05.678+00:00 ")
                .unwrap()
                .unix_timestamp(),
            1704164645
        );
        for bad in [
            "",
            "+0000",
            "2024-01-02",
            "2024-01-02T03:04:05.678+00",
            "2024-13-02T03:04:05+0000",
            "2024-01-02T03:04:05.678+0a00",
        ] {
            assert_eq!(parse_jira_time(bad), None, "{bad}");
        }
        assert_eq!(
            from_epoch_millis(1717577134571).unwrap().unix_timestamp(),
            1717577134
        );
    }

    #[test]
    fn adf_flattening() {
        let doc: serde_json::Value = serde_json::from_str(
            r#"{"type":"doc","version":1,"content":[
              {"type":"heading","attrs":{"level":2},"content":[{"type":"text","text":"Impact"}]},
              {"type":"paragraph","content":[{"type":"text","text":"line one"},{"type":"hardBreak"},
                {"type":"text","text":"line two","marks":[{"type":"strong"}]}]},
              {"type":"bulletList","content":[
                {"type":"listItem","content":[{"type":"paragraph","content":[{"type":"text","text":"a"}]}]},
                {"type":"listItem","content":[{"type":"paragraph","content":[{"type":"emoji","attrs":{"shortName":":fire:","text":"🔥"}}]}]}]},
              {"type":"paragraph","content":[{"type":"inlineCard","attrs":{"url":"https://example.com/x"}}]},
              {"type":"codeBlock","content":[{"type":"text","text":"df -h"}]},
              {"type":"rule"},
              {"type":"unknownNode","content":[{"type":"text","text":"kept"}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            adf_text(&doc),
            "Impact\nline one\nline two\na\n🔥\nhttps://example.com/x\ndf -h\nkept"
        );
        assert_eq!(
            adf_text(&serde_json::json!({"type":"doc","content":[]})),
            ""
        );
        assert_eq!(rich_text(&serde_json::json!(5)), None);
    }
}
