//! A typed client for Asana's REST API (<https://developers.asana.com/reference>): tasks,
//! comments (stories), workspaces, projects, users and webhooks.
//!
//! Every answer wraps its payload in `{"data": ...}`; lists are paginated with `limit` (at
//! most 100) and an opaque `offset` token that the previous page gave in
//! `next_page.offset` ([Pagination](https://developers.asana.com/docs/pagination)). Errors come
//! as `{"errors": [{"message": ...}]}`, and a rate-limited call as 429 with `Retry-After`
//! ([Rate limits](https://developers.asana.com/docs/rate-limits)); [`ApiClient`] maps and
//! retries them.
//!
//! Finding the task that mirrors an object elsewhere: the sync rules keep links (the task gid)
//! and read it with [`AsanaClient::get_task`]. Without a link there are two documented ways:
//! an app-specific [external id](https://developers.asana.com/docs/custom-external-data)
//! ([`AsanaClient::find_task_by_external_id`], OAuth apps only), or a custom field holding the
//! other object's key, found with the
//! [task search](https://developers.asana.com/reference/searchtasksforworkspace)
//! ([`AsanaClient::find_task_by_custom_field`]; premium workspaces only, eventually consistent
//! by 10 to 60 s). [`AsanaClient::tasks_for_project`] lists a project's tasks for a rescan.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hookbridge_providers::api::ApiError> {
//! use hookbridge_core::Secret;
//! use hookbridge_providers::asana::client::{AsanaClient, DEFAULT_BASE_URL, NewTask};
//!
//! let asana = AsanaClient::personal_access_token(DEFAULT_BASE_URL, Secret::new("2/1204.../1205...:abc"))?;
//! let task = asana
//!     .create_task(&NewTask::in_project("1204512345678901", "Fix login redirect")
//!         .notes("From GitHub: octo/app#12")
//!         .custom_field("1204599999999999", "octo/app#12"))
//!     .await?;
//! asana.add_comment(&task.gid, &hookbridge_providers::asana::client::NewComment::text("Linked")).await?;
//! asana.set_completed(&task.gid, true).await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use futures_util::Stream;
use hookbridge_core::Secret;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::auth::personal_access_token;
use crate::api::{ApiClient, ApiClientBuilder, ApiError, Authenticate, Call};

/// Asana's API root.
pub const DEFAULT_BASE_URL: &str = "https://app.asana.com/api/1.0";
/// The page size asked for (Asana's maximum).
pub const PAGE_SIZE: u32 = 100;

const SERVICE: &str = "asana";

/// The task fields read by [`AsanaClient::get_task`] and the listings (`opt_fields`): the
/// defaults of a full task record plus the opt-in `html_notes`. `external` is left out: it is
/// readable by OAuth apps only.
pub const TASK_FIELDS: &str = "name,resource_subtype,notes,html_notes,completed,completed_at,\
created_at,modified_at,assignee,assignee.name,projects,projects.name,workspace,workspace.name,\
parent,parent.name,permalink_url,custom_fields,custom_fields.name,custom_fields.type,\
custom_fields.display_value,custom_fields.text_value,custom_fields.number_value,\
custom_fields.enum_value,custom_fields.enum_value.name";

/// The story fields read by [`AsanaClient::stories`] (a listing returns compact stories,
/// without `html_text`, otherwise).
pub const STORY_FIELDS: &str =
    "created_at,created_by,created_by.name,resource_subtype,type,text,html_text,is_pinned";

/// The webhook fields read by [`AsanaClient::webhooks`].
pub const WEBHOOK_FIELDS: &str = "active,resource,resource.name,target,created_at,\
last_failure_at,last_failure_content,last_success_at,filters,filters.resource_type,\
filters.resource_subtype,filters.action,filters.fields";

/// A builder for an Asana [`ApiClient`] at `base_url` ([`DEFAULT_BASE_URL`], or a test
/// server): add `.auth(...)` (a [`personal_access_token`] or
/// [`AsanaOAuth`](super::auth::AsanaOAuth)), optionally `.retry(...)`, then `.build()`.
pub fn api_builder(base_url: &str) -> Result<ApiClientBuilder, ApiError> {
    ApiClient::builder(SERVICE, base_url)?.header("accept", "application/json")
}

/// Percent-encodes a path segment (a gid, an email, an external id), so no value can change
/// the path it is put in.
fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'@') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Asana's envelope of a single object.
#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

/// Asana's envelope of a request body.
#[derive(Serialize)]
struct Body<T> {
    data: T,
}

/// One page of a listing.
#[derive(Deserialize)]
struct Page<T> {
    data: Vec<T>,
    #[serde(default)]
    next_page: Option<NextPage>,
}

/// Where the next page starts.
#[derive(Deserialize)]
struct NextPage {
    #[serde(default)]
    offset: Option<String>,
}

/// A reference to another object: its gid and, where asked for, its name.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Resource {
    /// The object's gid.
    pub gid: String,
    /// Its name, when the answer includes it.
    #[serde(default)]
    pub name: Option<String>,
    /// Its type (`task`, `user`, `project`, ...), when the answer includes it.
    #[serde(default)]
    pub resource_type: Option<String>,
}

/// An enum option of a custom field.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct EnumOption {
    /// The option's gid (what a task's `custom_fields` takes for an enum field).
    pub gid: String,
    /// The option's name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A custom field's value on a task.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct CustomFieldValue {
    /// The custom field's gid (the same as the field definition's).
    pub gid: String,
    /// The field's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its type: `text`, `number`, `enum`, `multi_enum`, `date`, `people`.
    #[serde(default, rename = "type")]
    pub field_type: Option<String>,
    /// The value as Asana displays it, whatever the type.
    #[serde(default)]
    pub display_value: Option<String>,
    /// The value of a text field.
    #[serde(default)]
    pub text_value: Option<String>,
    /// The value of a number field.
    #[serde(default)]
    pub number_value: Option<f64>,
    /// The value of an enum field.
    #[serde(default)]
    pub enum_value: Option<EnumOption>,
}

/// An app's external data on a task (OAuth apps only): an id the task can be found by, and a
/// data blob.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct External {
    /// The external id (up to 1024 characters); `external:<gid>` then names the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// The data blob (up to 32768 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// A task, with the fields of [`TASK_FIELDS`] (a listing without them has only `gid` and
/// `name`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct Task {
    /// The task's gid.
    pub gid: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// `default_task`, `milestone` or `approval`.
    #[serde(default)]
    pub resource_subtype: Option<String>,
    /// The description, as plain text.
    #[serde(default)]
    pub notes: Option<String>,
    /// The description, as Asana's rich text (`<body>...</body>`).
    #[serde(default)]
    pub html_notes: Option<String>,
    /// Whether it is complete.
    #[serde(default)]
    pub completed: bool,
    /// When it was completed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    /// When it was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When it was last modified.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub modified_at: Option<OffsetDateTime>,
    /// Its assignee.
    #[serde(default)]
    pub assignee: Option<Resource>,
    /// The projects it is in.
    #[serde(default)]
    pub projects: Vec<Resource>,
    /// Its workspace.
    #[serde(default)]
    pub workspace: Option<Resource>,
    /// Its parent task, for a subtask.
    #[serde(default)]
    pub parent: Option<Resource>,
    /// Its URL in Asana.
    #[serde(default)]
    pub permalink_url: Option<String>,
    /// Its custom field values.
    #[serde(default)]
    pub custom_fields: Vec<CustomFieldValue>,
    /// The app's external data (OAuth apps, when set).
    #[serde(default)]
    pub external: Option<External>,
}

impl Task {
    /// The value of the custom field `field_gid`, as displayed (text, number, enum name, ...).
    pub fn custom_field_display(&self, field_gid: &str) -> Option<&str> {
        self.custom_fields
            .iter()
            .find(|f| f.gid == field_gid)
            .and_then(|f| f.display_value.as_deref().or(f.text_value.as_deref()))
    }
}

/// A task to create (`POST /tasks`), in a project (or a workspace, or under a parent).
#[derive(Clone, Debug, Default, Serialize)]
pub struct NewTask {
    /// The name.
    pub name: String,
    /// A plain-text description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// A rich-text description: valid XML in a `<body>` element, of the tags Asana allows
    /// ([rich text](https://developers.asana.com/docs/rich-text)). Use it or `notes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html_notes: Option<String>,
    /// The assignee: a user gid, an email, or `me`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Project gids to create the task in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<String>,
    /// The workspace gid (needed only without `projects` and `parent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// The parent task gid, to create a subtask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Custom field values by field gid: a string for text, a number, an enum option gid.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_fields: BTreeMap<String, serde_json::Value>,
    /// Whether it starts complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<bool>,
    /// External data (OAuth apps only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<External>,
}

impl NewTask {
    /// A task named `name` in the project `project_gid`.
    pub fn in_project(project_gid: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            projects: vec![project_gid.into()],
            ..Self::default()
        }
    }

    /// Sets the plain-text description.
    pub fn notes(mut self, notes: impl Into<String>) -> Self {
        self.notes = Some(notes.into());
        self
    }

    /// Sets the rich-text description (`<body>...</body>`).
    pub fn html_notes(mut self, html: impl Into<String>) -> Self {
        self.html_notes = Some(html.into());
        self
    }

    /// Sets the assignee (user gid, email or `me`).
    pub fn assignee(mut self, user: impl Into<String>) -> Self {
        self.assignee = Some(user.into());
        self
    }

    /// Sets a custom field's value.
    pub fn custom_field(
        mut self,
        field_gid: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.custom_fields.insert(field_gid.into(), value.into());
        self
    }

    /// Sets the external id (OAuth apps only).
    pub fn external_id(mut self, id: impl Into<String>) -> Self {
        self.external.get_or_insert_with(External::default).gid = Some(id.into());
        self
    }
}

/// Changes to a task (`PUT /tasks/{gid}`): only the fields set are sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TaskUpdate {
    /// A new name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new plain-text description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// A new rich-text description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html_notes: Option<String>,
    /// A new assignee: `Some(None)` unassigns (sends `null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<Option<String>>,
    /// Complete (`true`) or reopen (`false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<bool>,
    /// Custom field values by field gid (`null` clears one).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_fields: BTreeMap<String, serde_json::Value>,
}

impl TaskUpdate {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// What of `self` differs from `task`, as read with [`TASK_FIELDS`]: the write a desired
    /// state needs (nothing, when the task is already so; then no write, and no webhook echo).
    /// The assignee compares by gid, so give gids, not emails. Custom fields compare text and
    /// number values and enum option gids.
    pub fn changes_from(&self, task: &Task) -> TaskUpdate {
        let differs = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().filter(|w| Some(*w) != have.as_ref()).cloned()
        };
        let custom_fields = self
            .custom_fields
            .iter()
            .filter(|(gid, want)| {
                let have = task.custom_fields.iter().find(|f| &f.gid == *gid);
                !custom_field_equals(have, want)
            })
            .map(|(gid, want)| (gid.clone(), want.clone()))
            .collect();
        TaskUpdate {
            name: self.name.as_ref().filter(|n| **n != task.name).cloned(),
            notes: differs(&self.notes, &task.notes),
            html_notes: differs(&self.html_notes, &task.html_notes),
            assignee: self
                .assignee
                .as_ref()
                .filter(|want| want.as_deref() != task.assignee.as_ref().map(|a| a.gid.as_str()))
                .cloned(),
            completed: self.completed.filter(|c| *c != task.completed),
            custom_fields,
        }
    }
}

fn custom_field_equals(have: Option<&CustomFieldValue>, want: &serde_json::Value) -> bool {
    let Some(have) = have else {
        return want.is_null();
    };
    match want {
        serde_json::Value::Null => {
            have.text_value.is_none() && have.number_value.is_none() && have.enum_value.is_none()
        }
        serde_json::Value::String(s) => {
            have.text_value.as_deref() == Some(s.as_str())
                || have.enum_value.as_ref().is_some_and(|e| &e.gid == s)
        }
        serde_json::Value::Number(n) => have.number_value == n.as_f64(),
        _ => false,
    }
}

/// A comment to add to a task (`POST /tasks/{gid}/stories`): plain text or rich text.
#[derive(Clone, Debug, Serialize)]
pub struct NewComment {
    /// Plain text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Rich text (`<body>...</body>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html_text: Option<String>,
    /// Whether it is pinned to the task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_pinned: Option<bool>,
}

impl NewComment {
    /// A plain-text comment.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            html_text: None,
            is_pinned: None,
        }
    }

    /// A rich-text comment (`<body>...</body>`).
    pub fn html(html: impl Into<String>) -> Self {
        Self {
            text: None,
            html_text: Some(html.into()),
            is_pinned: None,
        }
    }
}

/// A story: a comment, or a change Asana recorded on a task.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Story {
    /// The story's gid.
    pub gid: String,
    /// When it was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// Who created it.
    #[serde(default)]
    pub created_by: Option<Resource>,
    /// `comment_added`, `assigned`, `marked_complete`, ...
    #[serde(default)]
    pub resource_subtype: Option<String>,
    /// `comment` or `system`.
    #[serde(default, rename = "type")]
    pub story_type: Option<String>,
    /// The text.
    #[serde(default)]
    pub text: Option<String>,
    /// The rich text.
    #[serde(default)]
    pub html_text: Option<String>,
    /// Whether it is pinned.
    #[serde(default)]
    pub is_pinned: Option<bool>,
}

impl Story {
    /// Whether the story is a comment (rather than a change Asana recorded).
    pub fn is_comment(&self) -> bool {
        self.story_type.as_deref() == Some("comment")
            || self.resource_subtype.as_deref() == Some("comment_added")
    }
}

/// A workspace or organization.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Workspace {
    /// Its gid.
    pub gid: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
}

/// A project.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Project {
    /// Its gid.
    pub gid: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Whether it is archived (full records only).
    #[serde(default)]
    pub archived: Option<bool>,
    /// Its workspace (full records only).
    #[serde(default)]
    pub workspace: Option<Resource>,
    /// Its URL in Asana (full records only).
    #[serde(default)]
    pub permalink_url: Option<String>,
}

/// A user.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct User {
    /// Its gid.
    pub gid: String,
    /// The name.
    #[serde(default)]
    pub name: String,
    /// The email, when visible to the caller.
    #[serde(default)]
    pub email: Option<String>,
    /// The workspaces the user shares with the caller.
    #[serde(default)]
    pub workspaces: Vec<Resource>,
}

/// A webhook filter: which events of the resource are delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct WebhookFilter {
    /// The type of the resource changed, e.g. `task`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// Its subtype, e.g. `milestone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_subtype: Option<String>,
    /// `changed`, `added`, `removed`, `deleted` or `undeleted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// For `changed`: the fields whose change is delivered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

/// A webhook subscription.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Webhook {
    /// Its gid.
    pub gid: String,
    /// Whether it delivers events.
    #[serde(default)]
    pub active: bool,
    /// The resource it watches.
    pub resource: Resource,
    /// The URL it delivers to.
    #[serde(default)]
    pub target: String,
    /// When it was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When a delivery last failed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_failure_at: Option<OffsetDateTime>,
    /// What the target answered then.
    #[serde(default)]
    pub last_failure_content: Option<String>,
    /// When a delivery last succeeded.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    /// Its filters.
    #[serde(default)]
    pub filters: Vec<WebhookFilter>,
}

/// A webhook just created, with the secret of its handshake when the answer carries it.
#[derive(Clone, Debug)]
pub struct CreatedWebhook {
    /// The webhook.
    pub webhook: Webhook,
    /// The `X-Hook-Secret` the handshake used (the answer's documented `X-Hook-Secret`
    /// field). The server learned the same secret in the handshake itself.
    pub secret: Option<Secret>,
}

#[derive(Deserialize)]
struct CreatedWebhookBody {
    data: Webhook,
    #[serde(default, rename = "X-Hook-Secret")]
    secret: Option<String>,
}

#[derive(Serialize)]
struct NewWebhook<'a> {
    resource: &'a str,
    target: &'a str,
    #[serde(skip_serializing_if = "<[WebhookFilter]>::is_empty")]
    filters: &'a [WebhookFilter],
}

#[derive(Serialize)]
struct StoryUpdate<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    html_text: Option<&'a str>,
}

#[derive(Serialize)]
struct Completed {
    completed: bool,
}

/// A query of the task search (`GET /workspaces/{gid}/tasks/search`): a filter per custom
/// field, optional project and completion filters. Asana's search has no pagination: one
/// page of up to [`PAGE_SIZE`].
#[derive(Clone, Debug, Default)]
pub struct TaskSearch {
    /// Full-text search on names and descriptions.
    pub text: Option<String>,
    /// Only tasks in any of these projects (`projects.any`).
    pub projects_any: Vec<String>,
    /// Exact custom field values: `custom_fields.{gid}.value` (text, number, enum option gid).
    pub custom_field_values: Vec<(String, String)>,
    /// Only complete or incomplete tasks.
    pub completed: Option<bool>,
    /// At most this many (Asana caps it at 100).
    pub limit: Option<u32>,
}

/// Options of [`AsanaClient::tasks_for_project`].
#[derive(Clone, Debug, Default)]
pub struct ProjectTasks {
    /// Only tasks incomplete or completed since then (`completed_since`; `now` lists only
    /// incomplete tasks).
    pub completed_since: Option<String>,
    /// Fields to read instead of [`TASK_FIELDS`].
    pub opt_fields: Option<String>,
}

/// Asana's REST API.
#[derive(Clone, Debug)]
pub struct AsanaClient {
    api: ApiClient,
}

impl AsanaClient {
    /// A client over `api` (see [`api_builder`]).
    pub fn new(api: ApiClient) -> Self {
        Self { api }
    }

    /// A client at `base_url` ([`DEFAULT_BASE_URL`]) authenticated with a personal access
    /// token.
    pub fn personal_access_token(base_url: &str, token: Secret) -> Result<Self, ApiError> {
        if token.is_empty() {
            return Err(ApiError::Config {
                service: SERVICE,
                message: "the personal access token is empty".into(),
            });
        }
        Ok(Self::new(
            api_builder(base_url)?
                .auth(personal_access_token(token))
                .build()?,
        ))
    }

    /// A client at `base_url` with any credentials (e.g. an
    /// [`AsanaOAuth`](super::auth::AsanaOAuth)).
    pub fn with_auth(base_url: &str, auth: impl Authenticate + 'static) -> Result<Self, ApiError> {
        Ok(Self::new(api_builder(base_url)?.auth(auth).build()?))
    }

    /// The underlying client, for calls this client does not wrap.
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    async fn data<T: DeserializeOwned>(&self, call: Call) -> Result<T, ApiError> {
        Ok(self.api.send_json::<Data<T>>(call).await?.data)
    }

    /// Pages through `path` with `query`, following `next_page.offset`.
    fn list<T>(
        &self,
        path: String,
        query: Vec<(&'static str, String)>,
    ) -> impl Stream<Item = Result<T, ApiError>> + Send + 'static
    where
        T: DeserializeOwned + Send + 'static,
    {
        let call = move |offset: Option<&str>| {
            let mut call = Call::new(Method::GET, path.clone()).query("limit", PAGE_SIZE);
            for (key, value) in &query {
                call = call.query(key, value);
            }
            if let Some(offset) = offset {
                call = call.query("offset", offset);
            }
            call
        };
        let first = call(None);
        self.api.paginate(first, move |page: Page<T>, _| {
            let next = page
                .next_page
                .and_then(|n| n.offset)
                .filter(|o| !o.is_empty())
                .map(|offset| call(Some(&offset)));
            Ok((page.data, next))
        })
    }

    // ---- tasks ------------------------------------------------------------------------------

    /// Creates a task: `POST /tasks`. Returns it with [`TASK_FIELDS`].
    pub async fn create_task(&self, task: &NewTask) -> Result<Task, ApiError> {
        let call = Call::new(Method::POST, "tasks")
            .query("opt_fields", TASK_FIELDS)
            .json(&Body { data: task })?;
        self.data(call).await
    }

    /// Reads a task: `GET /tasks/{gid}` with [`TASK_FIELDS`].
    pub async fn get_task(&self, task_gid: &str) -> Result<Task, ApiError> {
        let call = Call::new(Method::GET, format!("tasks/{}", segment(task_gid)))
            .query("opt_fields", TASK_FIELDS);
        self.data(call).await
    }

    /// Reads a task, `None` when it does not exist (deleted, or never there).
    pub async fn find_task(&self, task_gid: &str) -> Result<Option<Task>, ApiError> {
        not_found_as_none(self.get_task(task_gid).await)
    }

    /// The task whose external id (set by this OAuth app) is `external_id`:
    /// `GET /tasks/external:{id}`. `None` when there is none.
    pub async fn find_task_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<Task>, ApiError> {
        let call = Call::new(
            Method::GET,
            format!("tasks/external:{}", segment(external_id)),
        )
        .query("opt_fields", TASK_FIELDS);
        not_found_as_none(self.data(call).await)
    }

    /// Updates a task: `PUT /tasks/{gid}` with the fields set in `update`. Returns it with
    /// [`TASK_FIELDS`].
    pub async fn update_task(&self, task_gid: &str, update: &TaskUpdate) -> Result<Task, ApiError> {
        let call = Call::new(Method::PUT, format!("tasks/{}", segment(task_gid)))
            .query("opt_fields", TASK_FIELDS)
            .json(&Body { data: update })?;
        self.data(call).await
    }

    /// Brings a task to `desired`: reads it, and writes only what differs
    /// ([`TaskUpdate::changes_from`]). Returns the task as written, or `None` when it already
    /// was as desired (nothing written).
    pub async fn sync_task(
        &self,
        task_gid: &str,
        desired: &TaskUpdate,
    ) -> Result<Option<Task>, ApiError> {
        let task = self.get_task(task_gid).await?;
        let changes = desired.changes_from(&task);
        if changes.is_empty() {
            return Ok(None);
        }
        self.update_task(task_gid, &changes).await.map(Some)
    }

    /// Completes (`true`) or reopens (`false`) a task: `PUT /tasks/{gid}` with `completed`.
    pub async fn set_completed(&self, task_gid: &str, completed: bool) -> Result<Task, ApiError> {
        let call = Call::new(Method::PUT, format!("tasks/{}", segment(task_gid)))
            .query("opt_fields", TASK_FIELDS)
            .json(&Body {
                data: Completed { completed },
            })?;
        self.data(call).await
    }

    /// The tasks of a project: `GET /projects/{gid}/tasks`, all pages. Top-level tasks only:
    /// subtasks are not listed.
    pub fn tasks_for_project(
        &self,
        project_gid: &str,
        options: &ProjectTasks,
    ) -> impl Stream<Item = Result<Task, ApiError>> + Send + 'static {
        let mut query = vec![(
            "opt_fields",
            options
                .opt_fields
                .clone()
                .unwrap_or_else(|| TASK_FIELDS.to_owned()),
        )];
        if let Some(since) = &options.completed_since {
            query.push(("completed_since", since.clone()));
        }
        self.list(format!("projects/{}/tasks", segment(project_gid)), query)
    }

    /// Searches a workspace's tasks: `GET /workspaces/{gid}/tasks/search`. Premium workspaces
    /// only (else 402, an [`ApiError::Validation`]), limited to 60 calls a minute, and
    /// eventually consistent: a task created or changed in the last minute may be missing.
    pub async fn search_tasks(
        &self,
        workspace_gid: &str,
        search: &TaskSearch,
    ) -> Result<Vec<Task>, ApiError> {
        let mut call = Call::new(
            Method::GET,
            format!("workspaces/{}/tasks/search", segment(workspace_gid)),
        )
        .query("opt_fields", TASK_FIELDS)
        .query("limit", search.limit.unwrap_or(PAGE_SIZE).min(PAGE_SIZE))
        // Oldest first: when a key was copied onto several tasks, the original comes first.
        .query("sort_by", "created_at")
        .query("sort_ascending", true);
        if let Some(text) = &search.text {
            call = call.query("text", text);
        }
        if !search.projects_any.is_empty() {
            call = call.query("projects.any", search.projects_any.join(","));
        }
        for (field, value) in &search.custom_field_values {
            call = call.query(&format!("custom_fields.{field}.value"), value);
        }
        if let Some(completed) = search.completed {
            call = call.query("completed", completed);
        }
        self.data(call).await
    }

    /// The oldest task of the workspace (and of `project_gid`, if given) whose text custom
    /// field `field_gid` is `value`, through [`search_tasks`](Self::search_tasks) (premium,
    /// eventually consistent: prefer a stored link when there is one).
    pub async fn find_task_by_custom_field(
        &self,
        workspace_gid: &str,
        project_gid: Option<&str>,
        field_gid: &str,
        value: &str,
    ) -> Result<Option<Task>, ApiError> {
        let search = TaskSearch {
            projects_any: project_gid.map(|p| vec![p.to_owned()]).unwrap_or_default(),
            custom_field_values: vec![(field_gid.to_owned(), value.to_owned())],
            limit: Some(10),
            ..TaskSearch::default()
        };
        let tasks = self.search_tasks(workspace_gid, &search).await?;
        // The search matches; the exact value is checked too, in case it matched loosely.
        Ok(tasks.into_iter().find(|t| {
            t.custom_fields.is_empty()
                || t.custom_fields
                    .iter()
                    .any(|f| f.gid == field_gid && f.text_value.as_deref() == Some(value))
        }))
    }

    // ---- stories ----------------------------------------------------------------------------

    /// Adds a comment to a task: `POST /tasks/{gid}/stories`.
    pub async fn add_comment(
        &self,
        task_gid: &str,
        comment: &NewComment,
    ) -> Result<Story, ApiError> {
        let call = Call::new(Method::POST, format!("tasks/{}/stories", segment(task_gid)))
            .query("opt_fields", STORY_FIELDS)
            .json(&Body { data: comment })?;
        self.data(call).await
    }

    /// Edits a comment: `PUT /stories/{gid}` with `text` or `html_text` (only comments can
    /// be edited, and only one of the two may be given).
    pub async fn update_comment(
        &self,
        story_gid: &str,
        comment: &NewComment,
    ) -> Result<Story, ApiError> {
        let update = match (&comment.html_text, &comment.text) {
            (Some(html), _) => StoryUpdate {
                text: None,
                html_text: Some(html),
            },
            (None, text) => StoryUpdate {
                text: Some(text.as_deref().unwrap_or_default()),
                html_text: None,
            },
        };
        let call = Call::new(Method::PUT, format!("stories/{}", segment(story_gid)))
            .query("opt_fields", STORY_FIELDS)
            .json(&Body { data: update })?;
        self.data(call).await
    }

    /// The stories (comments and recorded changes) of a task: `GET /tasks/{gid}/stories`,
    /// all pages, oldest first.
    pub fn stories(
        &self,
        task_gid: &str,
    ) -> impl Stream<Item = Result<Story, ApiError>> + Send + 'static {
        self.list(
            format!("tasks/{}/stories", segment(task_gid)),
            vec![("opt_fields", STORY_FIELDS.to_owned())],
        )
    }

    /// Finds the comment whose text contains `marker` (by `author_gid`, if given) and edits
    /// it to `comment`, or adds `comment` when there is none. `comment` should contain the
    /// marker so it is found next time. Returns the comment as written.
    pub async fn upsert_comment(
        &self,
        task_gid: &str,
        marker: &str,
        author_gid: Option<&str>,
        comment: &NewComment,
    ) -> Result<Story, ApiError> {
        use futures_util::TryStreamExt;
        let mut stories = std::pin::pin!(self.stories(task_gid));
        let mut found = None;
        while let Some(story) = stories.try_next().await? {
            let by_author = author_gid
                .is_none_or(|gid| story.created_by.as_ref().map(|u| u.gid.as_str()) == Some(gid));
            if story.is_comment()
                && by_author
                && story.text.as_deref().is_some_and(|t| t.contains(marker))
            {
                found = Some(story);
            }
        }
        match found {
            Some(story) => {
                let unchanged = match (&comment.html_text, &comment.text) {
                    (Some(html), _) => story.html_text.as_deref() == Some(html.as_str()),
                    (None, Some(text)) => story.text.as_deref() == Some(text.as_str()),
                    (None, None) => true,
                };
                if unchanged {
                    Ok(story)
                } else {
                    self.update_comment(&story.gid, comment).await
                }
            }
            None => self.add_comment(task_gid, comment).await,
        }
    }

    // ---- workspaces, projects, users --------------------------------------------------------

    /// The workspaces and organizations the caller is in: `GET /workspaces`, all pages.
    pub fn workspaces(&self) -> impl Stream<Item = Result<Workspace, ApiError>> + Send + 'static {
        self.list("workspaces".to_owned(), Vec::new())
    }

    /// The projects of a workspace: `GET /workspaces/{gid}/projects`, all pages; only archived
    /// or unarchived ones when `archived` is given.
    pub fn projects(
        &self,
        workspace_gid: &str,
        archived: Option<bool>,
    ) -> impl Stream<Item = Result<Project, ApiError>> + Send + 'static {
        let query = archived
            .map(|a| vec![("archived", a.to_string())])
            .unwrap_or_default();
        self.list(
            format!("workspaces/{}/projects", segment(workspace_gid)),
            query,
        )
    }

    /// Reads a project: `GET /projects/{gid}`.
    pub async fn get_project(&self, project_gid: &str) -> Result<Project, ApiError> {
        self.data(Call::new(
            Method::GET,
            format!("projects/{}", segment(project_gid)),
        ))
        .await
    }

    /// Reads a user by gid, email or `me`: `GET /users/{user}`.
    pub async fn get_user(&self, user: &str) -> Result<User, ApiError> {
        self.data(Call::new(Method::GET, format!("users/{}", segment(user))))
            .await
    }

    /// The authenticated user (`GET /users/me`): whose writes are the bot's own.
    pub async fn me(&self) -> Result<User, ApiError> {
        self.get_user("me").await
    }

    /// The user with `email` in a workspace: `GET /workspaces/{gid}/users/{email}`. `None`
    /// when no such user is in the workspace.
    pub async fn find_user_by_email(
        &self,
        workspace_gid: &str,
        email: &str,
    ) -> Result<Option<User>, ApiError> {
        let call = Call::new(
            Method::GET,
            format!(
                "workspaces/{}/users/{}",
                segment(workspace_gid),
                segment(email)
            ),
        );
        not_found_as_none(self.data(call).await)
    }

    // ---- webhooks ---------------------------------------------------------------------------

    /// Creates a webhook on `resource_gid` delivering to `target`: `POST /webhooks`.
    ///
    /// Asana answers only after its handshake with `target` succeeded: during this call it
    /// POSTs to `target` with `X-Hook-Secret`, which must be echoed back. So the server must
    /// be reachable from Asana at `target` (public HTTPS; `localhost` and the like get 403),
    /// already running, and answering the handshake for that endpoint while this call is in
    /// flight (the endpoint must accept the handshake: no secret yet, or a registration
    /// pending). Never call this from inside the request that serves the handshake.
    pub async fn create_webhook(
        &self,
        resource_gid: &str,
        target: &str,
        filters: &[WebhookFilter],
    ) -> Result<CreatedWebhook, ApiError> {
        let call = Call::new(Method::POST, "webhooks").json(&Body {
            data: NewWebhook {
                resource: resource_gid,
                target,
                filters,
            },
        })?;
        let body: CreatedWebhookBody = self.api.send_json(call).await?;
        Ok(CreatedWebhook {
            webhook: body.data,
            secret: body.secret.filter(|s| !s.is_empty()).map(Secret::new),
        })
    }

    /// The webhooks this app registered in a workspace (for `resource_gid` only, if given):
    /// `GET /webhooks?workspace=`, all pages.
    pub fn webhooks(
        &self,
        workspace_gid: &str,
        resource_gid: Option<&str>,
    ) -> impl Stream<Item = Result<Webhook, ApiError>> + Send + 'static {
        let mut query = vec![
            ("workspace", workspace_gid.to_owned()),
            ("opt_fields", WEBHOOK_FIELDS.to_owned()),
        ];
        if let Some(resource) = resource_gid {
            query.push(("resource", resource.to_owned()));
        }
        self.list("webhooks".to_owned(), query)
    }

    /// Deletes a webhook: `DELETE /webhooks/{gid}`. A delivery already in flight may still
    /// arrive.
    pub async fn delete_webhook(&self, webhook_gid: &str) -> Result<(), ApiError> {
        self.api
            .send(Call::new(
                Method::DELETE,
                format!("webhooks/{}", segment(webhook_gid)),
            ))
            .await?;
        Ok(())
    }
}

fn not_found_as_none<T>(result: Result<T, ApiError>) -> Result<Option<T>, ApiError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("1204512345678901"), "1204512345678901");
        assert_eq!(segment("me@example.com"), "me@example.com");
        assert_eq!(segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
        assert_eq!(segment("github:octo/app#1"), "github%3Aocto%2Fapp%231");
    }

    #[test]
    fn bodies_send_only_what_is_set() {
        let task = NewTask::in_project("1", "Name")
            .notes("n")
            .custom_field("9", "v")
            .custom_field("8", 3);
        let json = serde_json::to_value(Body { data: &task }).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"data": {"name": "Name", "notes": "n", "projects": ["1"],
                "custom_fields": {"8": 3, "9": "v"}}})
        );
        let unassign = TaskUpdate {
            assignee: Some(None),
            ..TaskUpdate::default()
        };
        assert_eq!(
            serde_json::to_value(&unassign).unwrap(),
            serde_json::json!({"assignee": null})
        );
        assert_eq!(
            serde_json::to_value(TaskUpdate::default()).unwrap(),
            serde_json::json!({})
        );
    }

    #[test]
    fn desired_state_diff() {
        let task: Task = serde_json::from_value(serde_json::json!({
            "gid": "1", "name": "Same", "notes": "old", "completed": false,
            "assignee": {"gid": "42", "name": "Ann"},
            "custom_fields": [
                {"gid": "9", "type": "text", "text_value": "octo/app#1", "display_value": "octo/app#1"},
                {"gid": "8", "type": "enum", "enum_value": {"gid": "81", "name": "High"}}
            ]
        }))
        .unwrap();
        let desired = TaskUpdate {
            name: Some("Same".into()),
            notes: Some("new".into()),
            assignee: Some(Some("42".into())),
            completed: Some(true),
            custom_fields: [
                ("9".to_owned(), serde_json::json!("octo/app#1")),
                ("8".to_owned(), serde_json::json!("82")),
            ]
            .into(),
            ..TaskUpdate::default()
        };
        let changes = desired.changes_from(&task);
        assert_eq!(
            changes,
            TaskUpdate {
                notes: Some("new".into()),
                completed: Some(true),
                custom_fields: [("8".to_owned(), serde_json::json!("82"))].into(),
                ..TaskUpdate::default()
            }
        );
        assert!(TaskUpdate::default().changes_from(&task).is_empty());
        assert_eq!(task.custom_field_display("9"), Some("octo/app#1"));
    }
}
