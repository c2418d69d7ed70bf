//! A typed client for Jira's REST API: REST v3 on Jira Cloud, REST v2 on Jira Data Center
//! (the version is a setting; the bodies that differ between them, rich text as Atlassian
//! Document Format on v3 and as a string on v2, are handled here).
//!
//! Built on [`ApiClient`] (base URL, retries, typed errors, pagination) with any
//! [`Authenticate`] from [`super::auth`]: email + API token, OAuth 1.0a RSA-SHA1, OAuth 2.0
//! (3LO) through `https://api.atlassian.com/ex/jira/{cloudid}`, or a personal access token.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hookbridge_providers::api::ApiError> {
//! use std::sync::Arc;
//! use hookbridge_core::Secret;
//! use hookbridge_providers::jira::auth::api_token;
//! use hookbridge_providers::jira::client::{JiraClient, JiraSettings, NewIssue, TransitionOutcome};
//!
//! let jira = JiraClient::from_settings(
//!     &JiraSettings::cloud("https://your-domain.atlassian.net"),
//!     Arc::new(api_token("bot@example.com", Secret::new("api-token"))),
//! )?;
//! let created = jira
//!     .create_issue(&NewIssue::new("OPS", "Bug", "Disk full on db-1").description("Seen at 03:00."))
//!     .await?;
//! let outcome = jira.transition_to_status(&created.key, "In Progress").await?;
//! assert!(matches!(outcome, TransitionOutcome::Transitioned { .. }));
//! # Ok(()) }
//! ```

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, TryStreamExt};
use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use super::auth::percent_encode;
use crate::api::{ApiClient, ApiError, Authenticate, Call};

/// The service name in errors.
pub const SERVICE: &str = "jira";

/// Where Jira Data Center's webhook REST API lives (relative to the base URL). Jira Data
/// Center 10 and later also publish `rest/jira-webhook/1.0/webhooks`, which takes the same
/// body; set [`JiraSettings::dc_webhook_path`] to use it.
pub const DEFAULT_DC_WEBHOOK_PATH: &str = "rest/webhooks/1.0/webhook";

/// Items per page of paginated calls (Jira's usual default and maximum for comments).
pub const DEFAULT_PAGE_SIZE: u32 = 50;

/// A stream of items of a paginated call.
pub type JiraStream<T> = Pin<Box<dyn Stream<Item = Result<T, ApiError>> + Send>>;

/// Which Jira.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Deployment {
    /// Jira Cloud (`*.atlassian.net`, or the OAuth 2.0 gateway `api.atlassian.com`).
    Cloud,
    /// Jira Data Center / Server.
    DataCenter,
}

impl Deployment {
    /// REST v3 on Cloud, v2 on Data Center (which has no v3).
    pub fn default_api_version(self) -> ApiVersion {
        match self {
            Deployment::Cloud => ApiVersion::V3,
            Deployment::DataCenter => ApiVersion::V2,
        }
    }

    /// Cloud for Atlassian-hosted hosts, Data Center otherwise.
    pub fn infer(base_url: &reqwest::Url) -> Self {
        let host = base_url.host_str().unwrap_or_default().to_ascii_lowercase();
        let cloud = host == "api.atlassian.com"
            || host.ends_with(".atlassian.net")
            || host.ends_with(".jira.com")
            || host.ends_with(".jira-dev.com");
        if cloud {
            Deployment::Cloud
        } else {
            Deployment::DataCenter
        }
    }
}

/// The REST API version: `/rest/api/2` or `/rest/api/3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ApiVersion {
    /// REST v2: rich text is a string (wiki markup).
    V2,
    /// REST v3 (Cloud only): rich text is an Atlassian Document Format document.
    V3,
}

impl ApiVersion {
    fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V2 => "2",
            ApiVersion::V3 => "3",
        }
    }
}

impl<'de> Deserialize<'de> for ApiVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(2) => Ok(ApiVersion::V2),
            Raw::Number(3) => Ok(ApiVersion::V3),
            Raw::Text(t) if matches!(t.trim(), "2" | "v2") => Ok(ApiVersion::V2),
            Raw::Text(t) if matches!(t.trim(), "3" | "v3") => Ok(ApiVersion::V3),
            _ => Err(serde::de::Error::custom("api_version must be 2 or 3")),
        }
    }
}

/// Configuration of a Jira client (credentials are separate, see [`super::auth`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraSettings {
    /// The site (`https://your-domain.atlassian.net`, `https://jira.example.com/jira`) or,
    /// with OAuth 2.0, `https://api.atlassian.com/ex/jira/{cloudid}`.
    pub base_url: String,
    /// Cloud or Data Center; inferred from `base_url` when absent.
    #[serde(default)]
    pub deployment: Option<Deployment>,
    /// 2 or 3; 3 on Cloud and 2 on Data Center when absent.
    #[serde(default)]
    pub api_version: Option<ApiVersion>,
    /// Data Center's webhook API path, [`DEFAULT_DC_WEBHOOK_PATH`] when absent.
    #[serde(default)]
    pub dc_webhook_path: Option<String>,
    /// Items per page, [`DEFAULT_PAGE_SIZE`] when absent.
    #[serde(default)]
    pub page_size: Option<u32>,
    /// Per-request timeout in seconds (default 30).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

impl JiraSettings {
    /// Settings for `base_url`, everything else inferred.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            deployment: None,
            api_version: None,
            dc_webhook_path: None,
            page_size: None,
            timeout_secs: None,
        }
    }

    /// Jira Cloud at `base_url`, REST v3.
    pub fn cloud(base_url: impl Into<String>) -> Self {
        Self {
            deployment: Some(Deployment::Cloud),
            api_version: Some(ApiVersion::V3),
            ..Self::new(base_url)
        }
    }

    /// Jira Data Center at `base_url`, REST v2.
    pub fn data_center(base_url: impl Into<String>) -> Self {
        Self {
            deployment: Some(Deployment::DataCenter),
            api_version: Some(ApiVersion::V2),
            ..Self::new(base_url)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rich text
// ---------------------------------------------------------------------------------------------

/// A rich-text value as Jira returns it: a string on REST v2, an Atlassian Document Format
/// document on REST v3.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TextBody {
    /// REST v2 (wiki markup).
    Plain(String),
    /// REST v3 (ADF).
    Adf(Value),
}

impl TextBody {
    /// The text, with ADF paragraphs separated by a blank line and hard breaks as newlines.
    pub fn to_plain_text(&self) -> String {
        match self {
            TextBody::Plain(text) => text.clone(),
            TextBody::Adf(doc) => adf_to_text(doc),
        }
    }
}

/// A minimal ADF document for `text`: one paragraph per blank-line-separated block, line
/// breaks as `hardBreak` nodes (ADF forbids empty text nodes, so none are produced).
pub fn adf_document(text: &str) -> Value {
    let text = text.replace("\r\n", "\n");
    let paragraphs: Vec<Value> = text
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut content = Vec::new();
            for (i, line) in block.split('\n').enumerate() {
                if i > 0 {
                    content.push(json!({"type": "hardBreak"}));
                }
                if !line.is_empty() {
                    content.push(json!({"type": "text", "text": line}));
                }
            }
            json!({"type": "paragraph", "content": content})
        })
        .collect();
    json!({"type": "doc", "version": 1, "content": paragraphs})
}

/// The text of an ADF document: top-level blocks joined by a blank line, `hardBreak` as a
/// newline, nested blocks (list items, table cells) on their own lines.
pub fn adf_to_text(doc: &Value) -> String {
    fn inline(node: &Value, out: &mut String) {
        match node.get("type").and_then(Value::as_str) {
            Some("text") => out.push_str(node.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("hardBreak") => out.push('\n'),
            _ => {
                let children = node.get("content").and_then(Value::as_array);
                for (i, child) in children.into_iter().flatten().enumerate() {
                    let is_block = child
                        .get("content")
                        .is_some_and(|c| c.is_array() && child.get("text").is_none());
                    if i > 0 && is_block && !out.ends_with('\n') {
                        out.push('\n');
                    }
                    inline(child, out);
                }
            }
        }
    }
    let blocks = doc.get("content").and_then(Value::as_array);
    blocks
        .into_iter()
        .flatten()
        .map(|block| {
            let mut text = String::new();
            inline(block, &mut text);
            text
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn normalized(text: &str) -> String {
    text.replace("\r\n", "\n").trim_end().to_owned()
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// Typed requests and responses
// ---------------------------------------------------------------------------------------------

/// An issue to create.
#[derive(Clone, Debug, Default)]
pub struct NewIssue {
    /// The project key (`fields.project.key`).
    pub project_key: String,
    /// The issue type name (`fields.issuetype.name`), e.g. `Bug`.
    pub issue_type: String,
    /// `fields.summary`.
    pub summary: String,
    /// `fields.description` as plain text (sent as ADF on REST v3).
    pub description: Option<String>,
    /// More fields by id (`customfield_10010`, `priority`, `labels`, ...), as the API takes
    /// them; see [`JiraClient::resolve_fields`] to start from field names.
    pub fields: Map<String, Value>,
}

impl NewIssue {
    /// An issue of `issue_type` in `project_key` with `summary`.
    pub fn new(
        project_key: impl Into<String>,
        issue_type: impl Into<String>,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            project_key: project_key.into(),
            issue_type: issue_type.into(),
            summary: summary.into(),
            ..Self::default()
        }
    }

    /// With a description.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// With another field, by id.
    pub fn field(mut self, id: impl Into<String>, value: Value) -> Self {
        self.fields.insert(id.into(), value);
        self
    }
}

/// The answer to creating an issue.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct CreatedIssue {
    /// The issue id.
    pub id: String,
    /// The issue key, e.g. `OPS-12`.
    pub key: String,
    /// The issue's REST URL.
    #[serde(rename = "self", default)]
    pub self_url: Option<String>,
}

/// An issue.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Issue {
    /// The issue id.
    pub id: String,
    /// The issue key.
    pub key: String,
    /// The issue's REST URL.
    #[serde(rename = "self", default)]
    pub self_url: Option<String>,
    /// The requested fields.
    #[serde(default)]
    pub fields: IssueFields,
}

/// The fields of an issue: the common system fields typed, the others (custom fields) in
/// `other` by id.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueFields {
    /// `summary`.
    #[serde(default)]
    pub summary: Option<String>,
    /// `status`.
    #[serde(default)]
    pub status: Option<Status>,
    /// `issuetype`.
    #[serde(default)]
    pub issuetype: Option<NamedRef>,
    /// `project`.
    #[serde(default)]
    pub project: Option<ProjectRef>,
    /// `description` (string on v2, ADF on v3).
    #[serde(default)]
    pub description: Option<TextBody>,
    /// `labels`.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// `priority`.
    #[serde(default)]
    pub priority: Option<NamedRef>,
    /// `resolution` (absent or null while unresolved).
    #[serde(default)]
    pub resolution: Option<NamedRef>,
    /// `assignee`.
    #[serde(default)]
    pub assignee: Option<User>,
    /// `reporter`.
    #[serde(default)]
    pub reporter: Option<User>,
    /// `created`, as Jira formats it (`2024-06-05T08:45:34.571+0000`).
    #[serde(default)]
    pub created: Option<String>,
    /// `updated`.
    #[serde(default)]
    pub updated: Option<String>,
    /// Every other field, by id.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A reference with a name (issue type, priority, resolution).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct NamedRef {
    /// The id.
    #[serde(default)]
    pub id: Option<String>,
    /// The name.
    #[serde(default)]
    pub name: String,
}

/// A project reference.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ProjectRef {
    /// The id.
    #[serde(default)]
    pub id: Option<String>,
    /// The key.
    #[serde(default)]
    pub key: String,
    /// The name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A workflow status.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The id.
    #[serde(default)]
    pub id: Option<String>,
    /// The name, e.g. `In Progress`.
    #[serde(default)]
    pub name: String,
    /// Its category.
    #[serde(default)]
    pub status_category: Option<StatusCategory>,
}

/// A status category: `new`, `indeterminate` or `done`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct StatusCategory {
    /// The key.
    #[serde(default)]
    pub key: String,
    /// The name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A user: Cloud identifies users by `accountId`, Data Center by `name` and `key`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Cloud account id.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Data Center user name.
    #[serde(default)]
    pub name: Option<String>,
    /// Data Center user key.
    #[serde(default)]
    pub key: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Email, when visible.
    #[serde(default)]
    pub email_address: Option<String>,
}

/// A workflow transition available on an issue.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    /// The id to POST.
    pub id: String,
    /// The transition's name (e.g. `Start Progress`), not the status it leads to.
    #[serde(default)]
    pub name: String,
    /// The status it leads to.
    pub to: Status,
    /// Whether it has a screen.
    #[serde(default)]
    pub has_screen: Option<bool>,
}

#[derive(Deserialize)]
struct Transitions {
    #[serde(default, deserialize_with = "nullable")]
    transitions: Vec<Transition>,
}

/// What [`JiraClient::transition_to_status`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransitionOutcome {
    /// The issue already had the status: nothing was sent.
    AlreadyInStatus {
        /// The status name as Jira spells it.
        status: String,
    },
    /// A transition was performed.
    Transitioned {
        /// Its id.
        transition_id: String,
        /// Its name.
        transition_name: String,
        /// The status reached, as Jira spells it.
        status: String,
    },
}

/// A comment.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    /// The id.
    pub id: String,
    /// The body (string on v2, ADF on v3).
    pub body: TextBody,
    /// The author.
    #[serde(default)]
    pub author: Option<User>,
    /// When created.
    #[serde(default)]
    pub created: Option<String>,
    /// When last updated.
    #[serde(default)]
    pub updated: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommentsPage {
    #[serde(default)]
    start_at: u64,
    #[serde(default)]
    total: u64,
    #[serde(default, deserialize_with = "nullable")]
    comments: Vec<Comment>,
}

/// What [`JiraClient::upsert_comment`] did.
#[derive(Clone, Debug)]
pub enum CommentUpsert {
    /// No comment carried the marker: one was added.
    Created(Comment),
    /// The marked comment had another text: it was edited.
    Updated(Comment),
    /// The marked comment already had the text: nothing was sent.
    Unchanged(Comment),
}

impl CommentUpsert {
    /// The comment as it is now.
    pub fn comment(&self) -> &Comment {
        match self {
            CommentUpsert::Created(c) | CommentUpsert::Updated(c) | CommentUpsert::Unchanged(c) => {
                c
            }
        }
    }
}

/// An issue link type, e.g. `Blocks` (outward `blocks`, inward `is blocked by`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct IssueLinkType {
    /// The id.
    pub id: String,
    /// The name.
    pub name: String,
    /// The inward description.
    #[serde(default)]
    pub inward: String,
    /// The outward description.
    #[serde(default)]
    pub outward: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IssueLinkTypes {
    #[serde(default, deserialize_with = "nullable")]
    issue_link_types: Vec<IssueLinkType>,
}

/// A field (system or custom).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Field {
    /// The id used in requests: `summary`, `customfield_10010`.
    pub id: String,
    /// The display name.
    #[serde(default)]
    pub name: String,
    /// Whether it is a custom field.
    #[serde(default)]
    pub custom: bool,
    /// Its type.
    #[serde(default)]
    pub schema: Option<FieldSchema>,
}

/// A field's type.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldSchema {
    /// `string`, `number`, `array`, `option`, `user`, ...
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The item type of an array.
    #[serde(default)]
    pub items: Option<String>,
    /// The custom field type key.
    #[serde(default)]
    pub custom: Option<String>,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct SearchJqlRequest {
    jql: String,
    max_results: u32,
    fields: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchJqlPage {
    #[serde(default, deserialize_with = "nullable")]
    issues: Vec<Issue>,
    #[serde(default)]
    next_page_token: Option<String>,
    #[serde(default)]
    is_last: Option<bool>,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct SearchRequest {
    jql: String,
    start_at: u64,
    max_results: u32,
    fields: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchPage {
    #[serde(default)]
    start_at: u64,
    #[serde(default)]
    total: u64,
    #[serde(default, deserialize_with = "nullable")]
    issues: Vec<Issue>,
}

/// A dynamic webhook to register on Jira Cloud.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// The issues it is sent for; only a subset of JQL is allowed (`project`, `issuetype`,
    /// `status`, `assignee`, `reporter`, `issue.property`, `issueKey` with `=`, `!=`, `IN`,
    /// `NOT IN`).
    pub jql_filter: String,
    /// The events, e.g. `jira:issue_created`, `comment_created`.
    pub events: Vec<String>,
    /// Only send `jira:issue_updated` when one of these fields changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub field_ids_filter: Vec<String>,
    /// Only send `issue_property_*` events for these property keys.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub issue_property_keys_filter: Vec<String>,
}

impl WebhookSpec {
    /// A webhook for `events` on issues matching `jql_filter`.
    pub fn new(jql_filter: impl Into<String>, events: &[&str]) -> Self {
        Self {
            jql_filter: jql_filter.into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            field_ids_filter: Vec::new(),
            issue_property_keys_filter: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookRegistration {
    #[serde(default, deserialize_with = "nullable")]
    webhook_registration_result: Vec<WebhookRegistrationResult>,
}

/// The outcome of registering one [`WebhookSpec`], in the order sent.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRegistrationResult {
    /// The new webhook's id, on success.
    #[serde(default)]
    pub created_webhook_id: Option<u64>,
    /// Why it was refused.
    #[serde(default, deserialize_with = "nullable")]
    pub errors: Vec<String>,
}

/// A timestamp Jira gives either as epoch milliseconds or as text (the webhook API documents
/// an integer and shows strings in its examples).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum JiraTimestamp {
    /// Milliseconds since the epoch.
    Millis(i64),
    /// `2019-06-01T12:42:30.000+0000`.
    Text(String),
}

/// A dynamic webhook registered by this app on Jira Cloud.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// The id.
    pub id: u64,
    /// Its JQL filter.
    #[serde(default)]
    pub jql_filter: String,
    /// Its events.
    #[serde(default, deserialize_with = "nullable")]
    pub events: Vec<String>,
    /// When it stops being sent unless refreshed (30 days after registration or refresh).
    #[serde(default)]
    pub expiration_date: Option<JiraTimestamp>,
    /// Where it is sent.
    #[serde(default)]
    pub url: Option<String>,
    /// Its field filter.
    #[serde(default, deserialize_with = "nullable")]
    pub field_ids_filter: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookPage {
    #[serde(default)]
    start_at: u64,
    #[serde(default)]
    is_last: Option<bool>,
    #[serde(default)]
    total: Option<u64>,
    #[serde(default, deserialize_with = "nullable")]
    values: Vec<Webhook>,
}

/// A webhook Jira Cloud failed to deliver after its retries
/// ([Get failed webhooks](https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-webhooks/#api-rest-api-3-webhook-failed-get)).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedWebhook {
    /// The webhook's id: the `X-Atlassian-Webhook-Identifier` it was sent with.
    pub id: String,
    /// The payload, as it was sent (absent when Jira no longer has it).
    #[serde(default)]
    pub body: Option<String>,
    /// Where it was sent.
    #[serde(default)]
    pub url: String,
    /// When Jira gave up (its last failed retry), in milliseconds since the epoch.
    pub failure_time: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailedWebhookPage {
    #[serde(default, deserialize_with = "nullable")]
    values: Vec<FailedWebhook>,
}

/// The new expiry of refreshed webhooks.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookExpiration {
    /// When the refreshed webhooks expire.
    #[serde(default)]
    pub expiration_date: Option<JiraTimestamp>,
}

/// A webhook to register on Jira Data Center.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DcWebhookSpec {
    /// Its name.
    pub name: String,
    /// Where Jira posts.
    pub url: String,
    /// The events, e.g. `jira:issue_created`.
    pub events: Vec<String>,
    /// `{"issue-related-events-section": "<jql>"}` when a JQL filter is set.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub filters: Map<String, Value>,
    /// Whether to send the event without a body.
    pub exclude_body: bool,
}

impl DcWebhookSpec {
    /// A webhook called `name` posting `events` to `url`, for issues matching `jql` when
    /// given.
    pub fn new(
        name: impl Into<String>,
        url: impl Into<String>,
        events: &[&str],
        jql: Option<&str>,
    ) -> Self {
        let mut filters = Map::new();
        if let Some(jql) = jql {
            filters.insert("issue-related-events-section".into(), jql.into());
        }
        Self {
            name: name.into(),
            url: url.into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            filters,
            exclude_body: false,
        }
    }
}

/// A webhook registered on Jira Data Center.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DcWebhook {
    /// The id (Jira 10's API); the legacy API only gives `self`.
    #[serde(default)]
    pub id: Option<Value>,
    /// Its REST URL, ending with the id (legacy API).
    #[serde(rename = "self", default)]
    pub self_url: Option<String>,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Where Jira posts.
    #[serde(default)]
    pub url: String,
    /// Its events.
    #[serde(default, deserialize_with = "nullable")]
    pub events: Vec<String>,
    /// Its filters.
    #[serde(default, deserialize_with = "nullable")]
    pub filters: Map<String, Value>,
    /// Whether it is enabled.
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl DcWebhook {
    /// The id for [`JiraClient::delete_dc_webhook`]: `id`, else the last segment of `self`.
    pub fn webhook_id(&self) -> Option<String> {
        match &self.id {
            Some(Value::Number(n)) => return Some(n.to_string()),
            Some(Value::String(s)) if !s.is_empty() => return Some(s.clone()),
            _ => {}
        }
        let url = self.self_url.as_deref()?;
        let last = url.trim_end_matches('/').rsplit('/').next()?;
        (!last.is_empty()).then(|| last.to_owned())
    }

    /// Its JQL filter, if any.
    pub fn jql(&self) -> Option<&str> {
        self.filters
            .get("issue-related-events-section")
            .and_then(Value::as_str)
    }
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

/// A Jira REST API client. Cheap to clone (the field cache is shared).
#[derive(Clone)]
pub struct JiraClient {
    api: ApiClient,
    deployment: Deployment,
    version: ApiVersion,
    dc_webhook_path: Arc<str>,
    page_size: u32,
    fields: Arc<tokio::sync::Mutex<Option<Arc<Vec<Field>>>>>,
}

impl fmt::Debug for JiraClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JiraClient")
            .field("api", &self.api)
            .field("deployment", &self.deployment)
            .field("version", &self.version)
            .finish()
    }
}

/// Percent-encodes one path segment (issue keys and ids are safe already; this keeps a
/// hostile key from changing the path).
fn segment(value: &str) -> String {
    percent_encode(value)
}

fn validation(status: u16, message: String) -> ApiError {
    ApiError::Validation {
        service: SERVICE,
        status,
        message,
    }
}

fn once_error<T: Send + 'static>(error: ApiError) -> JiraStream<T> {
    Box::pin(futures_util::stream::once(async move { Err(error) }))
}

enum FieldLookup {
    Found(String),
    Ambiguous(Vec<String>),
    Missing,
}

fn find_field(fields: &[Field], name: &str) -> FieldLookup {
    // An id is accepted as is: rules may name fields either way.
    if let Some(field) = fields.iter().find(|f| f.id == name) {
        return FieldLookup::Found(field.id.clone());
    }
    let matches: Vec<String> = fields
        .iter()
        .filter(|f| eq_ignore_case(&f.name, name))
        .map(|f| f.id.clone())
        .collect();
    match matches.len() {
        0 => FieldLookup::Missing,
        1 => FieldLookup::Found(matches.into_iter().next().unwrap_or_default()),
        _ => FieldLookup::Ambiguous(matches),
    }
}

impl JiraClient {
    /// A client on `api`, with the deployment inferred from its base URL (Cloud for
    /// Atlassian-hosted hosts) and that deployment's default API version.
    pub fn new(api: ApiClient) -> Self {
        let deployment = Deployment::infer(api.base_url());
        Self::with_options(api, deployment, deployment.default_api_version())
    }

    /// A client on `api` for `deployment` speaking REST `version`.
    pub fn with_options(api: ApiClient, deployment: Deployment, version: ApiVersion) -> Self {
        Self {
            api,
            deployment,
            version,
            dc_webhook_path: Arc::from(DEFAULT_DC_WEBHOOK_PATH),
            page_size: DEFAULT_PAGE_SIZE,
            fields: Arc::default(),
        }
    }

    /// A client from settings and credentials (see [`super::auth`]).
    pub fn from_settings(
        settings: &JiraSettings,
        auth: Arc<dyn Authenticate>,
    ) -> Result<Self, ApiError> {
        let mut builder = ApiClient::builder(SERVICE, &settings.base_url)?
            .auth_arc(auth)
            .header("accept", "application/json")?;
        if let Some(secs) = settings.timeout_secs {
            builder = builder.timeout(Duration::from_secs(secs));
        }
        let api = builder.build()?;
        let deployment = settings
            .deployment
            .unwrap_or_else(|| Deployment::infer(api.base_url()));
        let version = settings
            .api_version
            .unwrap_or_else(|| deployment.default_api_version());
        if deployment == Deployment::DataCenter && version == ApiVersion::V3 {
            return Err(ApiError::Config {
                service: SERVICE,
                message: "Jira Data Center has no REST API v3".into(),
            });
        }
        let mut client = Self::with_options(api, deployment, version);
        if let Some(path) = &settings.dc_webhook_path {
            client = client.with_dc_webhook_path(path);
        }
        if let Some(size) = settings.page_size {
            client = client.with_page_size(size);
        }
        Ok(client)
    }

    /// Uses `path` for Data Center's webhook API.
    pub fn with_dc_webhook_path(mut self, path: &str) -> Self {
        self.dc_webhook_path = Arc::from(path.trim_matches('/'));
        self
    }

    /// Items per page of paginated calls (1 to 1000).
    pub fn with_page_size(mut self, size: u32) -> Self {
        self.page_size = size.clamp(1, 1000);
        self
    }

    /// The underlying API client.
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// Cloud or Data Center.
    pub fn deployment(&self) -> Deployment {
        self.deployment
    }

    /// The REST API version.
    pub fn api_version(&self) -> ApiVersion {
        self.version
    }

    fn path(&self, rest: &str) -> String {
        format!("rest/api/{}/{}", self.version.as_str(), rest)
    }

    fn issue_path(&self, key: &str, rest: &str) -> String {
        let base = format!("issue/{}", segment(key));
        if rest.is_empty() {
            self.path(&base)
        } else {
            self.path(&format!("{base}/{rest}"))
        }
    }

    fn require(&self, deployment: Deployment, what: &str) -> Result<(), ApiError> {
        if self.deployment == deployment {
            return Ok(());
        }
        Err(ApiError::Config {
            service: SERVICE,
            message: format!("{what} exist only on Jira {deployment:?}"),
        })
    }

    /// Rich text in the form this API version takes: a string on v2, ADF on v3. For
    /// `description`, `comment` and text-area custom fields in [`JiraClient::update_fields`].
    pub fn rich_text(&self, text: &str) -> Value {
        match self.version {
            ApiVersion::V2 => Value::String(text.to_owned()),
            ApiVersion::V3 => adf_document(text),
        }
    }

    // -- issues -----------------------------------------------------------------------------

    /// Creates an issue: `POST /rest/api/{v}/issue` with `fields.project.key`,
    /// `fields.issuetype.name`, `fields.summary`, `fields.description` and the extra fields.
    pub async fn create_issue(&self, issue: &NewIssue) -> Result<CreatedIssue, ApiError> {
        let mut fields = issue.fields.clone();
        fields.insert("project".into(), json!({"key": issue.project_key}));
        fields.insert("issuetype".into(), json!({"name": issue.issue_type}));
        fields.insert("summary".into(), Value::String(issue.summary.clone()));
        if let Some(description) = &issue.description {
            fields.insert("description".into(), self.rich_text(description));
        }
        let call =
            Call::new(Method::POST, self.path("issue")).json(&json!({ "fields": fields }))?;
        self.api.send_json(call).await
    }

    /// Reads an issue: `GET /rest/api/{v}/issue/{key}?fields=...` (all fields when `fields`
    /// is empty).
    pub async fn get_issue(&self, key: &str, fields: &[&str]) -> Result<Issue, ApiError> {
        let mut call = Call::new(Method::GET, self.issue_path(key, ""));
        if !fields.is_empty() {
            call = call.query("fields", fields.join(","));
        }
        self.api.send_json(call).await
    }

    /// Sets fields by id: `PUT /rest/api/{v}/issue/{key}` with `{"fields": ...}` (204).
    pub async fn update_fields(
        &self,
        key: &str,
        fields: Map<String, Value>,
    ) -> Result<(), ApiError> {
        let call =
            Call::new(Method::PUT, self.issue_path(key, "")).json(&json!({ "fields": fields }))?;
        self.api.send(call).await.map(drop)
    }

    /// Adds and removes labels, leaving the others alone: `PUT /rest/api/{v}/issue/{key}`
    /// with `{"update": {"labels": [{"add": ...}, {"remove": ...}]}}`.
    pub async fn edit_labels(
        &self,
        key: &str,
        add: &[&str],
        remove: &[&str],
    ) -> Result<(), ApiError> {
        let ops: Vec<Value> = add
            .iter()
            .map(|l| json!({"add": l}))
            .chain(remove.iter().map(|l| json!({"remove": l})))
            .collect();
        if ops.is_empty() {
            return Ok(());
        }
        let call = Call::new(Method::PUT, self.issue_path(key, ""))
            .json(&json!({"update": {"labels": ops}}))?;
        self.api.send(call).await.map(drop)
    }

    // -- transitions ------------------------------------------------------------------------

    /// The transitions available now: `GET /rest/api/{v}/issue/{key}/transitions`.
    pub async fn transitions(&self, key: &str) -> Result<Vec<Transition>, ApiError> {
        let page: Transitions = self
            .api
            .get_json(&self.issue_path(key, "transitions"))
            .await?;
        Ok(page.transitions)
    }

    /// Performs a transition: `POST /rest/api/{v}/issue/{key}/transitions` with
    /// `{"transition": {"id": ...}}` and optional screen fields (204).
    pub async fn do_transition(
        &self,
        key: &str,
        transition_id: &str,
        fields: Option<Map<String, Value>>,
    ) -> Result<(), ApiError> {
        let mut body = json!({"transition": {"id": transition_id}});
        if let Some(fields) = fields {
            body["fields"] = Value::Object(fields);
        }
        let call = Call::new(Method::POST, self.issue_path(key, "transitions")).json(&body)?;
        self.api.send(call).await.map(drop)
    }

    /// Moves the issue to the status named `status` (case-insensitive): nothing when it is
    /// already there (`GET issue?fields=status`), else the first transition whose `to.name`
    /// is that status (`GET .../transitions`, `POST .../transitions`). When no transition
    /// reaches it, a [`ApiError::Validation`] (409) names the statuses that are reachable.
    pub async fn transition_to_status(
        &self,
        key: &str,
        status: &str,
    ) -> Result<TransitionOutcome, ApiError> {
        let issue = self.get_issue(key, &["status"]).await?;
        let current = issue.fields.status.map(|s| s.name).unwrap_or_default();
        if eq_ignore_case(&current, status) {
            return Ok(TransitionOutcome::AlreadyInStatus { status: current });
        }
        let transitions = self.transitions(key).await?;
        let Some(transition) = transitions
            .iter()
            .find(|t| eq_ignore_case(&t.to.name, status))
        else {
            let reachable: Vec<&str> = transitions.iter().map(|t| t.to.name.as_str()).collect();
            return Err(validation(
                409,
                format!(
                    "no transition takes {key} from {current:?} to status {status:?} \
                     (reachable: {})",
                    if reachable.is_empty() {
                        "none".to_owned()
                    } else {
                        reachable.join(", ")
                    }
                ),
            ));
        };
        self.do_transition(key, &transition.id, None).await?;
        Ok(TransitionOutcome::Transitioned {
            transition_id: transition.id.clone(),
            transition_name: transition.name.clone(),
            status: transition.to.name.clone(),
        })
    }

    // -- comments ---------------------------------------------------------------------------

    /// Adds a comment: `POST /rest/api/{v}/issue/{key}/comment` with `{"body": ...}` (string
    /// on v2, ADF on v3).
    pub async fn add_comment(&self, key: &str, body: &str) -> Result<Comment, ApiError> {
        let call = Call::new(Method::POST, self.issue_path(key, "comment"))
            .json(&json!({"body": self.rich_text(body)}))?;
        self.api.send_json(call).await
    }

    /// Edits a comment: `PUT /rest/api/{v}/issue/{key}/comment/{id}` with `{"body": ...}`.
    pub async fn edit_comment(&self, key: &str, id: &str, body: &str) -> Result<Comment, ApiError> {
        let call = Call::new(
            Method::PUT,
            self.issue_path(key, &format!("comment/{}", segment(id))),
        )
        .json(&json!({"body": self.rich_text(body)}))?;
        self.api.send_json(call).await
    }

    /// All comments, oldest first: `GET /rest/api/{v}/issue/{key}/comment?startAt=&maxResults=`
    /// page after page (`startAt`/`total`).
    pub fn comments(&self, key: &str) -> JiraStream<Comment> {
        let path = self.issue_path(key, "comment");
        let size = self.page_size;
        let call = move |start: u64| {
            Call::new(Method::GET, path.clone())
                .query("startAt", start)
                .query("maxResults", size)
        };
        let first = call(0);
        Box::pin(self.api.paginate(first, move |page: CommentsPage, _| {
            let next_start = page.start_at + page.comments.len() as u64;
            let more = !page.comments.is_empty() && next_start < page.total;
            Ok((page.comments, more.then(|| call(next_start))))
        }))
    }

    /// Keeps one comment per `marker` (a string that only the bot writes, e.g. an HTML
    /// comment or `[hookbridge:pr-12]`): edits the first comment containing it when its text
    /// differs from `body`, adds `body` when none does. `body` must contain `marker`.
    pub async fn upsert_comment(
        &self,
        key: &str,
        marker: &str,
        body: &str,
    ) -> Result<CommentUpsert, ApiError> {
        if marker.is_empty() || !body.contains(marker) {
            return Err(ApiError::Config {
                service: SERVICE,
                message: "the comment body must contain its non-empty marker".into(),
            });
        }
        let comments: Vec<Comment> = self.comments(key).try_collect().await?;
        let existing = comments
            .into_iter()
            .find(|c| c.body.to_plain_text().contains(marker));
        match existing {
            None => Ok(CommentUpsert::Created(self.add_comment(key, body).await?)),
            Some(c) if normalized(&c.body.to_plain_text()) == normalized(body) => {
                Ok(CommentUpsert::Unchanged(c))
            }
            Some(c) => Ok(CommentUpsert::Updated(
                self.edit_comment(key, &c.id, body).await?,
            )),
        }
    }

    // -- links ------------------------------------------------------------------------------

    /// The link types: `GET /rest/api/{v}/issueLinkType`.
    pub async fn link_types(&self) -> Result<Vec<IssueLinkType>, ApiError> {
        let types: IssueLinkTypes = self.api.get_json(&self.path("issueLinkType")).await?;
        Ok(types.issue_link_types)
    }

    /// Links two issues with the link type named `type_name` (case-insensitive, looked up
    /// with [`JiraClient::link_types`]): `POST /rest/api/{v}/issueLink` with
    /// `{"type": {"id"}, "inwardIssue": {"key"}, "outwardIssue": {"key"}}`. Returns the type.
    pub async fn create_link(
        &self,
        type_name: &str,
        inward_key: &str,
        outward_key: &str,
    ) -> Result<IssueLinkType, ApiError> {
        let types = self.link_types().await?;
        let Some(link_type) = types.iter().find(|t| eq_ignore_case(&t.name, type_name)) else {
            let known: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
            return Err(ApiError::NotFound {
                service: SERVICE,
                message: format!(
                    "no issue link type named {type_name:?} (known: {})",
                    known.join(", ")
                ),
            });
        };
        let call = Call::new(Method::POST, self.path("issueLink")).json(&json!({
            "type": {"id": link_type.id},
            "inwardIssue": {"key": inward_key},
            "outwardIssue": {"key": outward_key},
        }))?;
        self.api.send(call).await?;
        Ok(link_type.clone())
    }

    // -- search -----------------------------------------------------------------------------

    /// Every issue matching `jql`, with `fields` (`*navigable` when empty). On Cloud:
    /// `POST /rest/api/{v}/search/jql` page after page by `nextPageToken` (the older
    /// `/search` is removed from Cloud); on Data Center: `POST /rest/api/2/search` by
    /// `startAt`/`total`.
    pub fn search(&self, jql: &str, fields: &[&str]) -> JiraStream<Issue> {
        let fields: Vec<String> = if fields.is_empty() {
            vec!["*navigable".to_owned()]
        } else {
            fields.iter().map(|f| (*f).to_owned()).collect()
        };
        match self.deployment {
            Deployment::Cloud => {
                let path = self.path("search/jql");
                let request = SearchJqlRequest {
                    jql: jql.to_owned(),
                    max_results: self.page_size,
                    fields,
                    next_page_token: None,
                };
                let first = match Call::new(Method::POST, path.clone())
                    .idempotent()
                    .json(&request)
                {
                    Ok(call) => call,
                    Err(e) => return once_error(e),
                };
                Box::pin(self.api.paginate(first, move |page: SearchJqlPage, _| {
                    let token = page.next_page_token.filter(|t| !t.is_empty());
                    let next = match token {
                        Some(token) if page.is_last != Some(true) && !page.issues.is_empty() => {
                            let request = SearchJqlRequest {
                                next_page_token: Some(token),
                                ..request.clone()
                            };
                            Some(
                                Call::new(Method::POST, path.clone())
                                    .idempotent()
                                    .json(&request)?,
                            )
                        }
                        _ => None,
                    };
                    Ok((page.issues, next))
                }))
            }
            Deployment::DataCenter => {
                let path = self.path("search");
                let request = SearchRequest {
                    jql: jql.to_owned(),
                    start_at: 0,
                    max_results: self.page_size,
                    fields,
                };
                let first = match Call::new(Method::POST, path.clone())
                    .idempotent()
                    .json(&request)
                {
                    Ok(call) => call,
                    Err(e) => return once_error(e),
                };
                Box::pin(self.api.paginate(first, move |page: SearchPage, _| {
                    let next_start = page.start_at + page.issues.len() as u64;
                    let next = if !page.issues.is_empty() && next_start < page.total {
                        let request = SearchRequest {
                            start_at: next_start,
                            ..request.clone()
                        };
                        Some(
                            Call::new(Method::POST, path.clone())
                                .idempotent()
                                .json(&request)?,
                        )
                    } else {
                        None
                    };
                    Ok((page.issues, next))
                }))
            }
        }
    }

    // -- fields -----------------------------------------------------------------------------

    /// All fields, fetched once (`GET /rest/api/{v}/field`) and cached.
    pub async fn fields(&self) -> Result<Arc<Vec<Field>>, ApiError> {
        // Held across the fetch, so concurrent first lookups make one request.
        let mut cache = self.fields.lock().await;
        if let Some(fields) = cache.as_ref() {
            return Ok(fields.clone());
        }
        let fields: Arc<Vec<Field>> = Arc::new(self.api.get_json(&self.path("field")).await?);
        *cache = Some(fields.clone());
        Ok(fields)
    }

    /// Forgets the cached fields.
    pub async fn refresh_fields(&self) {
        *self.fields.lock().await = None;
    }

    /// The id of the field named `name` (case-insensitive), or `name` itself when it is an
    /// id. A name not in the cache refetches the fields once (it may be new).
    pub async fn field_id(&self, name: &str) -> Result<String, ApiError> {
        let mut refetched = false;
        loop {
            match find_field(&self.fields().await?, name) {
                FieldLookup::Found(id) => return Ok(id),
                FieldLookup::Ambiguous(ids) => {
                    return Err(validation(
                        409,
                        format!(
                            "several fields are named {name:?} ({}): use an id",
                            ids.join(", ")
                        ),
                    ));
                }
                FieldLookup::Missing if !refetched => {
                    refetched = true;
                    self.refresh_fields().await;
                }
                FieldLookup::Missing => {
                    return Err(ApiError::NotFound {
                        service: SERVICE,
                        message: format!("no field named {name:?}"),
                    });
                }
            }
        }
    }

    /// Rewrites a map keyed by field names (or ids) to one keyed by ids.
    pub async fn resolve_fields(
        &self,
        by_name: Map<String, Value>,
    ) -> Result<Map<String, Value>, ApiError> {
        let mut by_id = Map::new();
        for (name, value) in by_name {
            by_id.insert(self.field_id(&name).await?, value);
        }
        Ok(by_id)
    }

    // -- webhooks: Jira Cloud ---------------------------------------------------------------

    /// Registers dynamic webhooks (OAuth 2.0 and Connect apps only):
    /// `POST /rest/api/{v}/webhook` with `{"url", "webhooks": [...]}`. One result per spec.
    pub async fn register_webhooks(
        &self,
        url: &str,
        webhooks: &[WebhookSpec],
    ) -> Result<Vec<WebhookRegistrationResult>, ApiError> {
        self.require(Deployment::Cloud, "dynamic webhooks")?;
        let call = Call::new(Method::POST, self.path("webhook"))
            .json(&json!({"url": url, "webhooks": webhooks}))?;
        let answer: WebhookRegistration = self.api.send_json(call).await?;
        Ok(answer.webhook_registration_result)
    }

    /// The dynamic webhooks this app registered:
    /// `GET /rest/api/{v}/webhook?startAt=&maxResults=`, page after page (`isLast`).
    pub fn webhooks(&self) -> JiraStream<Webhook> {
        if let Err(e) = self.require(Deployment::Cloud, "dynamic webhooks") {
            return once_error(e);
        }
        let path = self.path("webhook");
        let size = self.page_size;
        let call = move |start: u64| {
            Call::new(Method::GET, path.clone())
                .query("startAt", start)
                .query("maxResults", size)
        };
        let first = call(0);
        Box::pin(self.api.paginate(first, move |page: WebhookPage, _| {
            let next_start = page.start_at + page.values.len() as u64;
            let more = match (page.is_last, page.total) {
                (Some(is_last), _) => !is_last,
                (None, Some(total)) => next_start < total,
                (None, None) => false,
            };
            let more = more && !page.values.is_empty();
            Ok((page.values, more.then(|| call(next_start))))
        }))
    }

    /// Deletes dynamic webhooks: `DELETE /rest/api/{v}/webhook` with `{"webhookIds": [...]}`.
    pub async fn delete_webhooks(&self, ids: &[u64]) -> Result<(), ApiError> {
        self.require(Deployment::Cloud, "dynamic webhooks")?;
        let call =
            Call::new(Method::DELETE, self.path("webhook")).json(&json!({"webhookIds": ids}))?;
        self.api.send(call).await.map(drop)
    }

    /// Extends dynamic webhooks by 30 days (they expire otherwise):
    /// `PUT /rest/api/{v}/webhook/refresh` with `{"webhookIds": [...]}`.
    pub async fn refresh_webhooks(&self, ids: &[u64]) -> Result<WebhookExpiration, ApiError> {
        self.require(Deployment::Cloud, "dynamic webhooks")?;
        let call = Call::new(Method::PUT, self.path("webhook/refresh"))
            .json(&json!({"webhookIds": ids}))?;
        self.api.send_json(call).await
    }

    // -- webhooks: Jira Data Center ---------------------------------------------------------

    /// Registers an admin webhook on Data Center (administrator permission):
    /// `POST /rest/webhooks/1.0/webhook` (or the configured path).
    pub async fn register_dc_webhook(&self, spec: &DcWebhookSpec) -> Result<DcWebhook, ApiError> {
        self.require(Deployment::DataCenter, "admin webhooks through this API")?;
        let call = Call::new(Method::POST, self.dc_webhook_path.to_string()).json(spec)?;
        self.api.send_json(call).await
    }

    /// The webhooks registered on Data Center: `GET /rest/webhooks/1.0/webhook`.
    pub async fn dc_webhooks(&self) -> Result<Vec<DcWebhook>, ApiError> {
        self.require(Deployment::DataCenter, "admin webhooks through this API")?;
        self.api.get_json(&self.dc_webhook_path).await
    }

    /// Deletes a Data Center webhook: `DELETE /rest/webhooks/1.0/webhook/{id}`.
    pub async fn delete_dc_webhook(&self, id: &str) -> Result<(), ApiError> {
        self.require(Deployment::DataCenter, "admin webhooks through this API")?;
        let path = format!("{}/{}", self.dc_webhook_path, segment(id));
        self.api
            .send(Call::new(Method::DELETE, path))
            .await
            .map(drop)
    }

    // -- failed webhooks: Jira Cloud --------------------------------------------------------

    /// The webhooks Jira Cloud gave up delivering to this app after its retries, oldest
    /// failure first, every page: `GET /rest/api/{v}/webhook/failed?maxResults=&after=`
    /// ([Get failed webhooks](https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-webhooks/#api-rest-api-3-webhook-failed-get)).
    /// `after` (milliseconds since the epoch) keeps failures that happened after it. Jira
    /// keeps failures for about 72 hours; only apps (Connect, and OAuth 2.0 apps for the
    /// webhooks they registered) can read them.
    ///
    /// Pages follow each other by the last failure time of the page (Jira's `next` link
    /// names the site's own host, which an OAuth 2.0 client at `api.atlassian.com` must not
    /// follow); a page shorter than `maxResults` is the last. Jira never splits failures of
    /// one time across pages, so no failure is skipped.
    pub fn failed_webhooks(&self, after: Option<i64>) -> JiraStream<FailedWebhook> {
        if let Err(e) = self.require(Deployment::Cloud, "failed webhooks") {
            return once_error(e);
        }
        let path = self.path("webhook/failed");
        let size = self.page_size.min(100);
        let call = move |after: Option<i64>| {
            let call = Call::new(Method::GET, path.clone()).query("maxResults", size);
            match after {
                Some(after) => call.query("after", after),
                None => call,
            }
        };
        let first = call(after);
        // The `after` of the page being read: a page whose failures are no later than it
        // ends the listing (a misbehaving server would otherwise be asked forever).
        let asked_after = std::sync::atomic::AtomicI64::new(after.unwrap_or(i64::MIN));
        Box::pin(self.api.paginate(first, move |page: FailedWebhookPage, _| {
            let last = page.values.iter().map(|w| w.failure_time).max();
            let next = match last {
                Some(last)
                    if page.values.len() as u64 >= u64::from(size)
                        && last > asked_after.swap(last, std::sync::atomic::Ordering::Relaxed) =>
                {
                    Some(call(Some(last)))
                }
                _ => None,
            };
            Ok((page.values, next))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adf_round_trips_paragraphs_and_breaks() {
        let text = "First line\nsecond line\n\nNext paragraph <!-- hb:1 -->";
        let doc = adf_document(text);
        assert_eq!(doc["type"], "doc");
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["content"].as_array().unwrap().len(), 2);
        assert_eq!(doc["content"][0]["content"][1]["type"], "hardBreak");
        assert_eq!(adf_to_text(&doc), text);
        assert_eq!(TextBody::Adf(doc).to_plain_text(), text);
    }

    #[test]
    fn adf_never_has_empty_text_nodes() {
        let doc = adf_document("a\n\n\n\nb\n");
        let s = doc.to_string();
        assert!(!s.contains(r#""text":"""#), "{s}");
    }

    #[test]
    fn adf_text_of_nested_blocks() {
        let doc = json!({"type": "doc", "version": 1, "content": [
            {"type": "bulletList", "content": [
                {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "one"}]}]},
                {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "two"}]}]}
            ]}
        ]});
        assert_eq!(adf_to_text(&doc), "one\ntwo");
    }

    #[test]
    fn deployment_is_inferred_from_the_host() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert_eq!(
            Deployment::infer(&url("https://acme.atlassian.net")),
            Deployment::Cloud
        );
        assert_eq!(
            Deployment::infer(&url("https://api.atlassian.com/ex/jira/abc")),
            Deployment::Cloud
        );
        assert_eq!(
            Deployment::infer(&url("https://jira.example.com/jira")),
            Deployment::DataCenter
        );
    }

    #[test]
    fn settings_parse() {
        let s: JiraSettings =
            toml::from_str("base_url = \"https://jira.example.com\"\napi_version = 2\n").unwrap();
        assert_eq!(s.api_version, Some(ApiVersion::V2));
        let s: JiraSettings = toml::from_str(
            "base_url = \"https://x.atlassian.net\"\ndeployment = \"cloud\"\napi_version = \"3\"\n",
        )
        .unwrap();
        assert_eq!(s.deployment, Some(Deployment::Cloud));
        assert_eq!(s.api_version, Some(ApiVersion::V3));
        assert!(toml::from_str::<JiraSettings>("base_url = \"x\"\napi_version = 4\n").is_err());
        assert!(toml::from_str::<JiraSettings>("base_url = \"x\"\nbogus = 1\n").is_err());
    }

    #[test]
    fn dc_webhook_ids() {
        let legacy: DcWebhook = serde_json::from_value(json!({
            "self": "https://jira.example.com/rest/webhooks/1.0/webhook/7",
            "name": "hb", "url": "https://hooks.example.com/hooks/jira",
            "events": ["jira:issue_created"],
            "filters": {"issue-related-events-section": "project = OPS"},
            "excludeBody": false, "enabled": true, "lastUpdated": 1367846406000i64
        }))
        .unwrap();
        assert_eq!(legacy.webhook_id().as_deref(), Some("7"));
        assert_eq!(legacy.jql(), Some("project = OPS"));
        let v10: DcWebhook =
            serde_json::from_value(json!({"id": 12, "name": "hb", "url": "u"})).unwrap();
        assert_eq!(v10.webhook_id().as_deref(), Some("12"));
    }
}
