//! Typed GitLab webhook payloads.
//!
//! [`GitlabEvent::from_json`] turns the JSON document of a delivery into a typed event, by
//! the payload's `object_kind` (which the `X-Gitlab-Event` header agrees with: `Issue Hook`
//! is `issue`, `Merge Request Hook` is `merge_request`, ...; system hooks send `System Hook`
//! with the same payloads). Parsing is forward compatible:
//!
//! - unknown fields are ignored (no type here uses `deny_unknown_fields`);
//! - unknown actions and statuses become the `Other(String)` variant of their enum;
//! - unknown events, and known events whose payload does not fit the typed shape, become
//!   [`GitlabEvent::Untyped`] with the whole payload kept as JSON;
//! - timestamps come in two forms (`2013-12-03T17:15:43Z` and `2015-05-17 18:08:09 UTC`) and
//!   are read leniently: an unreadable timestamp is `None`, never a failed parse.
//!
//! Payload shapes follow GitLab's "Webhook events" page
//! (<https://docs.gitlab.com/user/project/integrations/webhook_events/>).
//!
//! ```
//! use hookbridge_providers::gitlab::events::{GitlabEvent, MergeRequestAction};
//!
//! let json = br#"{"object_kind":"merge_request","event_type":"merge_request",
//!   "user":{"id":1,"name":"Administrator","username":"root"},
//!   "project":{"id":1,"path_with_namespace":"gitlabhq/gitlab-test",
//!     "web_url":"http://example.com/gitlabhq/gitlab-test"},
//!   "object_attributes":{"id":99,"iid":34,"title":"MS-Viewport","state":"merged",
//!     "source_branch":"ms-viewport","target_branch":"master","action":"merge",
//!     "updated_at":"2013-12-03T17:23:34Z"}}"#;
//! let event = GitlabEvent::from_json("Merge Request Hook", json).unwrap();
//! assert_eq!(event.name(), "merge_request.merge");
//! assert_eq!(event.subject().as_deref(), Some("gitlab:gitlabhq/gitlab-test!34"));
//! let GitlabEvent::MergeRequest(mr) = &event else { panic!("not typed") };
//! assert_eq!(mr.object_attributes.action, Some(MergeRequestAction::Merge));
//! assert_eq!(event.updated_at().unwrap().unix_timestamp(), 1386091414);
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::common::{expect_json_object, null_as_default, typed};

string_enum! {
    /// The `object_attributes.action` of an issue (or work item) event.
    IssueAction {
        Open => "open",
        Close => "close",
        Reopen => "reopen",
        Update => "update",
    }
}

string_enum! {
    /// The `object_attributes.action` of a merge request event.
    MergeRequestAction {
        Open => "open",
        Close => "close",
        Reopen => "reopen",
        Update => "update",
        Approved => "approved",
        Unapproved => "unapproved",
        Approval => "approval",
        Unapproval => "unapproval",
        Merge => "merge",
    }
}

string_enum! {
    /// The `object_attributes.action` of a comment event (GitLab 16.11 and later).
    NoteAction {
        Create => "create",
        Update => "update",
    }
}

string_enum! {
    /// What a comment is on: `object_attributes.noteable_type`.
    NoteableType {
        Issue => "Issue",
        MergeRequest => "MergeRequest",
        Commit => "Commit",
        Snippet => "Snippet",
    }
}

string_enum! {
    /// The status of a pipeline or a job.
    PipelineStatus {
        Created => "created",
        WaitingForResource => "waiting_for_resource",
        Preparing => "preparing",
        Pending => "pending",
        Running => "running",
        Success => "success",
        Failed => "failed",
        Canceling => "canceling",
        Canceled => "canceled",
        Skipped => "skipped",
        Manual => "manual",
        Scheduled => "scheduled",
    }
}

// ---------------------------------------------------------------------------------------------
// Lenient field readers
// ---------------------------------------------------------------------------------------------

/// Parses a GitLab timestamp: RFC 3339 (`2013-12-03T17:15:43Z`, `2019-06-05T14:32:20.211Z`,
/// `2012-01-03T23:36:29+02:00`), or Rails' `to_s` form (`2015-05-17 18:08:09 UTC`,
/// `2015-05-17 20:08:09 +0200`). None if it is none of these.
///
/// ```
/// use hookbridge_providers::gitlab::events::parse_gitlab_time;
/// let t = parse_gitlab_time("2015-05-17 18:08:09 UTC").unwrap();
/// assert_eq!(t.unix_timestamp(), 1431886089);
/// assert_eq!(parse_gitlab_time("2015-05-17T18:08:09Z"), Some(t));
/// assert_eq!(parse_gitlab_time("2015-05-17 20:08:09 +0200"), Some(t));
/// assert!(parse_gitlab_time("2015-04-08T21: 00:25-07:00").is_none());
/// ```
pub fn parse_gitlab_time(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    if let Some(naive) = text.strip_suffix(" UTC") {
        return time::PrimitiveDateTime::parse(
            naive,
            format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
            ),
        )
        .ok()
        .map(time::PrimitiveDateTime::assume_utc);
    }
    OffsetDateTime::parse(
        text,
        format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]] \
             [offset_hour sign:mandatory][optional [:]][offset_minute]"
        ),
    )
    .ok()
}

/// GitLab timestamps in typed fields: read leniently (see [`parse_gitlab_time`]), written
/// as RFC 3339.
mod gitlab_time {
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
                Some(serde_json::Value::String(text)) => super::parse_gitlab_time(&text),
                _ => None,
            },
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Shared objects
// ---------------------------------------------------------------------------------------------

/// A GitLab user as payloads carry it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// The user's numeric id (absent from payloads of old GitLab versions).
    #[serde(default)]
    pub id: Option<u64>,
    /// The display name.
    #[serde(default)]
    pub name: Option<String>,
    /// The username (login).
    pub username: String,
    /// The public e-mail address; `[REDACTED]` when the user has none.
    #[serde(default)]
    pub email: Option<String>,
    /// The avatar's URL.
    #[serde(default)]
    pub avatar_url: Option<String>,
}

impl User {
    /// Whether the user is the bot user of a project or group access token. Payloads have no
    /// bot flag, but GitLab names these users `project_<id>_bot...` / `group_<id>_bot...`
    /// (`project_123_bot`, `project_123_bot1`, `project_123_bot_<random>`), which is what an
    /// integration acting through an access token appears as.
    pub fn is_bot(&self) -> bool {
        ["project_", "group_"].iter().any(|prefix| {
            self.username.strip_prefix(prefix).is_some_and(|rest| {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                digits > 0 && rest[digits..].starts_with("_bot")
            })
        })
    }
}

/// The project an event happened in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Project {
    /// The project's numeric id.
    #[serde(default)]
    pub id: Option<u64>,
    /// The project's name.
    #[serde(default)]
    pub name: Option<String>,
    /// `group/subgroup/project`: what subjects are keyed by.
    pub path_with_namespace: String,
    /// The project's page.
    pub web_url: String,
    /// The namespace's display name.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The default branch.
    #[serde(default)]
    pub default_branch: Option<String>,
    /// The HTTP clone URL.
    #[serde(default)]
    pub git_http_url: Option<String>,
}

/// A label.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Label {
    /// The label's numeric id.
    #[serde(default)]
    pub id: Option<u64>,
    /// The label's title.
    pub title: String,
    /// The label's colour (`#ffffff`).
    #[serde(default)]
    pub color: Option<String>,
    /// The label's description.
    #[serde(default)]
    pub description: Option<String>,
    /// `ProjectLabel` or `GroupLabel`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// One changed attribute, in an event's `changes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    /// The value before.
    #[serde(default)]
    pub previous: serde_json::Value,
    /// The value after.
    #[serde(default)]
    pub current: serde_json::Value,
}

/// The author of a commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitAuthor {
    /// The git name.
    #[serde(default)]
    pub name: Option<String>,
    /// The git e-mail (`[REDACTED]` when hidden).
    #[serde(default)]
    pub email: Option<String>,
}

/// A commit, as push, merge request, note and pipeline events list it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commit {
    /// The commit sha.
    pub id: String,
    /// The commit message.
    #[serde(default)]
    pub message: Option<String>,
    /// The first line of the message.
    #[serde(default)]
    pub title: Option<String>,
    /// The author timestamp.
    #[serde(default, with = "gitlab_time")]
    pub timestamp: Option<OffsetDateTime>,
    /// The commit's page.
    #[serde(default)]
    pub url: Option<String>,
    /// The author.
    #[serde(default)]
    pub author: Option<CommitAuthor>,
    /// Paths added.
    #[serde(default, deserialize_with = "null_as_default")]
    pub added: Vec<String>,
    /// Paths modified.
    #[serde(default, deserialize_with = "null_as_default")]
    pub modified: Vec<String>,
    /// Paths removed.
    #[serde(default, deserialize_with = "null_as_default")]
    pub removed: Vec<String>,
}

/// An issue (or another work item), as `object_attributes` of issue events and as the
/// `issue` a comment is on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssueAttributes {
    /// The global id.
    pub id: u64,
    /// The number in the project (`#23`).
    pub iid: u64,
    /// The title.
    pub title: String,
    /// The description, in Markdown.
    #[serde(default)]
    pub description: Option<String>,
    /// `opened` or `closed`.
    #[serde(default)]
    pub state: Option<String>,
    /// What happened (issue events only).
    #[serde(default)]
    pub action: Option<IssueAction>,
    /// The issue's page.
    #[serde(default)]
    pub url: Option<String>,
    /// The work item type: `Issue`, `Incident`, `Task`, `Epic`, ... (GitLab 17.2 and later).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Whether the issue is confidential.
    #[serde(default)]
    pub confidential: Option<bool>,
    /// The author's id.
    #[serde(default)]
    pub author_id: Option<u64>,
    /// The assignees' ids.
    #[serde(default, deserialize_with = "null_as_default")]
    pub assignee_ids: Vec<u64>,
    /// The labels.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<Label>,
    /// The milestone's id.
    #[serde(default)]
    pub milestone_id: Option<u64>,
    /// The due date (`2024-06-30`).
    #[serde(default)]
    pub due_date: Option<String>,
    /// Incident severity (`high`, ...), for incidents.
    #[serde(default)]
    pub severity: Option<String>,
    /// When the issue was created.
    #[serde(default, with = "gitlab_time")]
    pub created_at: Option<OffsetDateTime>,
    /// When the issue was last updated.
    #[serde(default, with = "gitlab_time")]
    pub updated_at: Option<OffsetDateTime>,
    /// When the issue was closed.
    #[serde(default, with = "gitlab_time")]
    pub closed_at: Option<OffsetDateTime>,
}

/// A merge request, as `object_attributes` of merge request events and as the
/// `merge_request` of comment and pipeline events (which carry fewer attributes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergeRequestAttributes {
    /// The global id.
    pub id: u64,
    /// The number in the target project (`!34`).
    pub iid: u64,
    /// The title.
    pub title: String,
    /// The description, in Markdown.
    #[serde(default)]
    pub description: Option<String>,
    /// `opened`, `closed`, `merged`, `locked`.
    #[serde(default)]
    pub state: Option<String>,
    /// What happened (merge request events only).
    #[serde(default)]
    pub action: Option<MergeRequestAction>,
    /// The branch with the changes.
    pub source_branch: String,
    /// The branch the changes go into.
    pub target_branch: String,
    /// The project of the source branch.
    #[serde(default)]
    pub source_project_id: Option<u64>,
    /// The project of the target branch.
    #[serde(default)]
    pub target_project_id: Option<u64>,
    /// The merge request's page.
    #[serde(default)]
    pub url: Option<String>,
    /// The author's id.
    #[serde(default)]
    pub author_id: Option<u64>,
    /// The assignees' ids.
    #[serde(default, deserialize_with = "null_as_default")]
    pub assignee_ids: Vec<u64>,
    /// The reviewers' ids.
    #[serde(default, deserialize_with = "null_as_default")]
    pub reviewer_ids: Vec<u64>,
    /// The labels.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<Label>,
    /// Whether the merge request is a draft.
    #[serde(default)]
    pub draft: Option<bool>,
    /// The merge status (deprecated by GitLab for `detailed_merge_status`).
    #[serde(default)]
    pub merge_status: Option<String>,
    /// `mergeable`, `checking`, `ci_must_pass`, `not_approved`, ...
    #[serde(default)]
    pub detailed_merge_status: Option<String>,
    /// The merge commit, once merged.
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    /// The head commit before this update, when new code was pushed.
    #[serde(default)]
    pub oldrev: Option<String>,
    /// The newest commit of the source branch.
    #[serde(default)]
    pub last_commit: Option<Box<Commit>>,
    /// When the merge request was created.
    #[serde(default, with = "gitlab_time")]
    pub created_at: Option<OffsetDateTime>,
    /// When the merge request was last updated.
    #[serde(default, with = "gitlab_time")]
    pub updated_at: Option<OffsetDateTime>,
}

/// A comment, as `object_attributes` of comment events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoteAttributes {
    /// The comment's id.
    pub id: u64,
    /// The comment, in Markdown.
    pub note: String,
    /// What the comment is on.
    pub noteable_type: NoteableType,
    /// The id of what the comment is on (None for commits).
    #[serde(default)]
    pub noteable_id: Option<u64>,
    /// The commented commit, for comments on commits (and diff comments).
    #[serde(default)]
    pub commit_id: Option<String>,
    /// Created or edited (GitLab 16.11 and later).
    #[serde(default)]
    pub action: Option<NoteAction>,
    /// The author's id.
    #[serde(default)]
    pub author_id: Option<u64>,
    /// Whether GitLab wrote the comment itself (state changes, ...).
    #[serde(default)]
    pub system: Option<bool>,
    /// Whether the comment is internal (visible to project members only).
    #[serde(default)]
    pub internal: Option<bool>,
    /// The thread the comment belongs to.
    #[serde(default)]
    pub discussion_id: Option<String>,
    /// The comment's anchor.
    #[serde(default)]
    pub url: Option<String>,
    /// When the comment was created.
    #[serde(default, with = "gitlab_time")]
    pub created_at: Option<OffsetDateTime>,
    /// When the comment was last updated.
    #[serde(default, with = "gitlab_time")]
    pub updated_at: Option<OffsetDateTime>,
}

/// A code snippet a comment is on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snippet {
    /// The snippet's id.
    pub id: u64,
    /// The title.
    #[serde(default)]
    pub title: Option<String>,
    /// The file name.
    #[serde(default)]
    pub file_name: Option<String>,
    /// The snippet's page.
    #[serde(default)]
    pub url: Option<String>,
}

/// A pipeline, as `object_attributes` of pipeline events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineAttributes {
    /// The pipeline's global id.
    pub id: u64,
    /// The pipeline's number in the project.
    #[serde(default)]
    pub iid: Option<u64>,
    /// The pipeline's name (GitLab 16.1 and later).
    #[serde(default)]
    pub name: Option<String>,
    /// The branch or tag (`master`, not `refs/heads/master`).
    #[serde(rename = "ref", default)]
    pub ref_name: Option<String>,
    /// Whether `ref` is a tag.
    #[serde(default)]
    pub tag: Option<bool>,
    /// The commit the pipeline runs for.
    #[serde(default)]
    pub sha: Option<String>,
    /// The commit before it.
    #[serde(default)]
    pub before_sha: Option<String>,
    /// What started it: `push`, `merge_request_event`, `schedule`, `web`, ...
    #[serde(default)]
    pub source: Option<String>,
    /// The status.
    pub status: PipelineStatus,
    /// The status as shown (`passed`, `failed`, ...).
    #[serde(default)]
    pub detailed_status: Option<String>,
    /// The stages, in order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub stages: Vec<String>,
    /// How long it ran, in seconds.
    #[serde(default)]
    pub duration: Option<f64>,
    /// How long it waited, in seconds.
    #[serde(default)]
    pub queued_duration: Option<f64>,
    /// The pipeline's page.
    #[serde(default)]
    pub url: Option<String>,
    /// When it was created.
    #[serde(default, with = "gitlab_time")]
    pub created_at: Option<OffsetDateTime>,
    /// When it finished.
    #[serde(default, with = "gitlab_time")]
    pub finished_at: Option<OffsetDateTime>,
}

/// A job of a pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Build {
    /// The job's id.
    pub id: u64,
    /// The stage.
    #[serde(default)]
    pub stage: Option<String>,
    /// The job's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The status.
    pub status: PipelineStatus,
    /// Why it failed (`script_failure`, ...).
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// Whether its failure is allowed.
    #[serde(default)]
    pub allow_failure: Option<bool>,
    /// Whether it is a manual job.
    #[serde(default)]
    pub manual: Option<bool>,
    /// How long it ran, in seconds.
    #[serde(default)]
    pub duration: Option<f64>,
    /// When it started.
    #[serde(default, with = "gitlab_time")]
    pub started_at: Option<OffsetDateTime>,
    /// When it finished.
    #[serde(default, with = "gitlab_time")]
    pub finished_at: Option<OffsetDateTime>,
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// `Issue Hook` (and `Confidential Issue Hook`): an issue or other work item was opened,
/// updated, closed or reopened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssueEvent {
    /// `issue`, or `work_item` for work items other than issues (tasks, epics, ...).
    pub object_kind: String,
    /// `issue`, `confidential_issue`, `work_item`.
    #[serde(default)]
    pub event_type: Option<String>,
    /// Who did it.
    #[serde(default)]
    pub user: Option<User>,
    /// The project (absent for group-level work items such as epics).
    #[serde(default)]
    pub project: Option<Project>,
    /// The issue.
    pub object_attributes: IssueAttributes,
    /// The labels.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<Label>,
    /// The assignees.
    #[serde(default, deserialize_with = "null_as_default")]
    pub assignees: Vec<User>,
    /// What changed, by attribute (`labels`, `state_id`, `title`, ...).
    #[serde(default, deserialize_with = "null_as_default")]
    pub changes: BTreeMap<String, Change>,
}

/// `Merge Request Hook`: a merge request was opened, updated, approved, merged, closed, ...
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergeRequestEvent {
    /// `merge_request`.
    #[serde(default)]
    pub event_type: Option<String>,
    /// Who did it.
    #[serde(default)]
    pub user: Option<User>,
    /// The target project.
    pub project: Project,
    /// The merge request.
    pub object_attributes: MergeRequestAttributes,
    /// The labels.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<Label>,
    /// The assignees.
    #[serde(default, deserialize_with = "null_as_default")]
    pub assignees: Vec<User>,
    /// The reviewers.
    #[serde(default, deserialize_with = "null_as_default")]
    pub reviewers: Vec<User>,
    /// What changed, by attribute.
    #[serde(default, deserialize_with = "null_as_default")]
    pub changes: BTreeMap<String, Change>,
}

/// `Note Hook` (and `Confidential Note Hook`): a comment was made or edited on an issue, a
/// merge request, a commit or a snippet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoteEvent {
    /// `note` or `confidential_note`.
    #[serde(default)]
    pub event_type: Option<String>,
    /// Who commented.
    #[serde(default)]
    pub user: Option<User>,
    /// The project.
    pub project: Project,
    /// The comment.
    pub object_attributes: NoteAttributes,
    /// The issue, for comments on issues. (Boxed, like the other optional large objects, to
    /// keep [`GitlabEvent`]'s variants of similar size.)
    #[serde(default)]
    pub issue: Option<Box<IssueAttributes>>,
    /// The merge request, for comments on merge requests.
    #[serde(default)]
    pub merge_request: Option<Box<MergeRequestAttributes>>,
    /// The commit, for comments on commits.
    #[serde(default)]
    pub commit: Option<Commit>,
    /// The snippet, for comments on snippets.
    #[serde(default)]
    pub snippet: Option<Snippet>,
}

/// `Push Hook`: commits were pushed to a branch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushEvent {
    /// The head before the push (all zeros for a new branch).
    pub before: String,
    /// The head after the push (all zeros for a deleted branch).
    pub after: String,
    /// The full ref (`refs/heads/main`).
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// Whether the branch is protected.
    #[serde(default)]
    pub ref_protected: Option<bool>,
    /// The commit checked out after the push.
    #[serde(default)]
    pub checkout_sha: Option<String>,
    /// The pusher's id.
    #[serde(default)]
    pub user_id: Option<u64>,
    /// The pusher's display name.
    #[serde(default)]
    pub user_name: Option<String>,
    /// The pusher's username.
    #[serde(default)]
    pub user_username: Option<String>,
    /// The pusher's e-mail.
    #[serde(default)]
    pub user_email: Option<String>,
    /// The project.
    pub project: Project,
    /// The newest 20 commits at most, oldest first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub commits: Vec<Commit>,
    /// How many commits were pushed.
    #[serde(default)]
    pub total_commits_count: Option<u64>,
}

impl PushEvent {
    /// The commit the branch points to after the push, if it is listed.
    pub fn head_commit(&self) -> Option<&Commit> {
        self.commits.iter().rev().find(|c| c.id == self.after)
    }

    /// Whether the push created the branch.
    pub fn created(&self) -> bool {
        is_null_sha(&self.before)
    }

    /// Whether the push deleted the branch.
    pub fn deleted(&self) -> bool {
        is_null_sha(&self.after)
    }
}

fn is_null_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

/// `Pipeline Hook`: a pipeline's status changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineEvent {
    /// The pipeline.
    pub object_attributes: PipelineAttributes,
    /// The merge request, for merge request pipelines.
    #[serde(default)]
    pub merge_request: Option<Box<MergeRequestAttributes>>,
    /// Who started the pipeline.
    #[serde(default)]
    pub user: Option<User>,
    /// The project.
    pub project: Project,
    /// The commit.
    #[serde(default)]
    pub commit: Option<Commit>,
    /// The jobs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub builds: Vec<Build>,
}

/// An event kept as JSON: an event this crate does not type, or a known event whose payload
/// did not fit the typed shape.
#[derive(Debug, Clone, Serialize)]
pub struct UntypedEvent {
    /// The `X-Gitlab-Event` header value.
    pub event: String,
    /// The payload's `object_kind` (or, for system hooks, `event_name`), if a string.
    pub object_kind: Option<String>,
    /// The payload's `object_attributes.action`, if a string.
    pub action: Option<String>,
    /// Why typing failed for a known event (the serde error text); None for events this
    /// crate does not type.
    pub reason: Option<String>,
    /// The whole payload (always a JSON object).
    pub payload: serde_json::Value,
}

/// A GitLab webhook event, typed. Forward compatible: unknown events, unknown actions and
/// unknown fields never fail parsing.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", content = "payload", rename_all = "snake_case")]
pub enum GitlabEvent {
    /// `object_kind` `issue` or `work_item`
    Issue(IssueEvent),
    /// `object_kind` `merge_request`
    MergeRequest(MergeRequestEvent),
    /// `object_kind` `note`
    Note(NoteEvent),
    /// `object_kind` `push`
    Push(PushEvent),
    /// `object_kind` `pipeline`
    Pipeline(PipelineEvent),
    /// Anything else, as JSON.
    Untyped(UntypedEvent),
}

/// The fallback: the whole document as a `Value`, which must be a JSON object.
fn untyped(
    event: &str,
    json: &[u8],
    reason: Option<String>,
) -> Result<GitlabEvent, serde_json::Error> {
    let payload: serde_json::Value = serde_json::from_slice(json)?;
    if !payload.is_object() {
        return Err(serde_json::Error::custom("expected a JSON object"));
    }
    let text = |pointer: &str| {
        payload
            .pointer(pointer)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    Ok(GitlabEvent::Untyped(UntypedEvent {
        event: event.to_owned(),
        object_kind: text("/object_kind").or_else(|| text("/event_name")),
        action: text("/object_attributes/action"),
        reason,
        payload,
    }))
}

/// Reads `object_kind` only; the rest is checked for syntax.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    object_kind: Option<String>,
}

fn with_action(kind: &str, action: Option<&str>) -> String {
    match action {
        Some(action) => format!("{kind}.{action}"),
        None => kind.to_owned(),
    }
}

fn project_key(project: &Project, rest: fmt::Arguments<'_>) -> String {
    format!("gitlab:{}{}", project.path_with_namespace, rest)
}

impl GitlabEvent {
    /// Parses a delivery's JSON document; `event` is the `X-Gitlab-Event` header value, kept
    /// for untyped events. Err only when `json` is not well-formed JSON or not a JSON object;
    /// a well-formed object that does not fit the typed shape becomes `Untyped` with `reason`
    /// set.
    pub fn from_json(event: &str, json: &[u8]) -> Result<GitlabEvent, serde_json::Error> {
        // A derived struct also accepts a JSON array (positionally): rule non-objects out first.
        expect_json_object(json)?;
        let kind = match serde_json::from_slice::<Head>(json) {
            Ok(head) => head.object_kind,
            Err(e) if e.is_data() => return untyped(event, json, Some(e.to_string())),
            Err(e) => return Err(e),
        };
        let result = match kind.as_deref() {
            Some("issue" | "work_item") => typed(json, GitlabEvent::Issue),
            Some("merge_request") => typed(json, GitlabEvent::MergeRequest),
            Some("note") => typed(json, GitlabEvent::Note),
            Some("push") => typed(json, GitlabEvent::Push),
            Some("pipeline") => typed(json, GitlabEvent::Pipeline),
            _ => return untyped(event, json, None),
        };
        match result {
            Ok(typed) => Ok(typed),
            // A shape mismatch: keep the event whole (the head parse above already read the
            // whole document, so no syntax error hides behind it).
            Err(e) if e.is_data() => untyped(event, json, Some(e.to_string())),
            Err(e) => Err(e),
        }
    }

    /// The event's name: `<object_kind>.<action>` where the payload has an action
    /// (`issue.open`, `merge_request.merge`, `note.create`), `pipeline.<status>`
    /// (`pipeline.success`), or the object kind alone (`push`, and events of GitLab versions
    /// that send no action). Untyped events: their `object_kind` (or `event_name`, or the
    /// header) and action the same way.
    pub fn name(&self) -> String {
        match self {
            GitlabEvent::Issue(e) => with_action(
                &e.object_kind,
                e.object_attributes.action.as_ref().map(IssueAction::as_str),
            ),
            GitlabEvent::MergeRequest(e) => with_action(
                "merge_request",
                e.object_attributes
                    .action
                    .as_ref()
                    .map(MergeRequestAction::as_str),
            ),
            GitlabEvent::Note(e) => with_action(
                "note",
                e.object_attributes.action.as_ref().map(NoteAction::as_str),
            ),
            GitlabEvent::Push(_) => "push".to_owned(),
            GitlabEvent::Pipeline(e) => {
                with_action("pipeline", Some(e.object_attributes.status.as_str()))
            }
            GitlabEvent::Untyped(e) => with_action(
                e.object_kind.as_deref().unwrap_or(&e.event),
                e.action.as_deref(),
            ),
        }
    }

    /// The payload's `object_kind` (`issue`, `work_item`, `merge_request`, `note`, `push`,
    /// `pipeline`); for untyped events, the payload's own or the header value.
    pub fn object_kind(&self) -> &str {
        match self {
            GitlabEvent::Issue(e) => &e.object_kind,
            GitlabEvent::MergeRequest(_) => "merge_request",
            GitlabEvent::Note(_) => "note",
            GitlabEvent::Push(_) => "push",
            GitlabEvent::Pipeline(_) => "pipeline",
            GitlabEvent::Untyped(e) => e.object_kind.as_deref().unwrap_or(&e.event),
        }
    }

    /// The project the event happened in (None for group-level work items and untyped
    /// events; see [`UntypedEvent::payload`]).
    pub fn project(&self) -> Option<&Project> {
        match self {
            GitlabEvent::Issue(e) => e.project.as_ref(),
            GitlabEvent::MergeRequest(e) => Some(&e.project),
            GitlabEvent::Note(e) => Some(&e.project),
            GitlabEvent::Push(e) => Some(&e.project),
            GitlabEvent::Pipeline(e) => Some(&e.project),
            GitlabEvent::Untyped(_) => None,
        }
    }

    /// Who caused the event, for loop prevention: the payload's `user`; for push events the
    /// pusher (`user_id`, `user_name`, `user_username`); for untyped events the same, read
    /// from the JSON.
    pub fn actor(&self) -> Option<User> {
        match self {
            GitlabEvent::Issue(e) => e.user.clone(),
            GitlabEvent::MergeRequest(e) => e.user.clone(),
            GitlabEvent::Note(e) => e.user.clone(),
            GitlabEvent::Pipeline(e) => e.user.clone(),
            GitlabEvent::Push(e) => Some(User {
                id: e.user_id,
                name: e.user_name.clone(),
                username: e.user_username.clone()?,
                email: e.user_email.clone(),
                avatar_url: None,
            }),
            GitlabEvent::Untyped(e) => {
                let payload = &e.payload;
                if let Some(user) = payload.get("user").and_then(|u| User::deserialize(u).ok()) {
                    return Some(user);
                }
                Some(User {
                    id: payload.get("user_id").and_then(serde_json::Value::as_u64),
                    name: payload
                        .get("user_name")
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned),
                    username: payload.get("user_username")?.as_str()?.to_owned(),
                    email: None,
                    avatar_url: None,
                })
            }
        }
    }

    /// The object the event is about, as a stable key for per-object ordering and links:
    ///
    /// - issues: `gitlab:group/project#12` (a group-level work item without a project:
    ///   `gitlab:work_item/<id>`);
    /// - merge requests: `gitlab:group/project!34`;
    /// - comments: the key of what they are on (`#12`, `!34`), or
    ///   `gitlab:group/project/commit/<sha>`, `gitlab:group/project/snippet/<id>`;
    /// - pushes: `gitlab:group/project@refs/heads/main`;
    /// - pipelines: `gitlab:group/project/pipeline/<id>`;
    /// - untyped: `gitlab:group/project` from the payload's `project.path_with_namespace`.
    pub fn subject(&self) -> Option<String> {
        match self {
            GitlabEvent::Issue(e) => Some(match &e.project {
                Some(project) => project_key(project, format_args!("#{}", e.object_attributes.iid)),
                None => format!("gitlab:work_item/{}", e.object_attributes.id),
            }),
            GitlabEvent::MergeRequest(e) => Some(project_key(
                &e.project,
                format_args!("!{}", e.object_attributes.iid),
            )),
            GitlabEvent::Note(e) => {
                let note = &e.object_attributes;
                let rest = match (&note.noteable_type, &e.issue, &e.merge_request) {
                    (NoteableType::Issue, Some(issue), _) => format!("#{}", issue.iid),
                    (NoteableType::MergeRequest, _, Some(mr)) => format!("!{}", mr.iid),
                    (NoteableType::Commit, _, _) => {
                        match e
                            .commit
                            .as_ref()
                            .map(|c| c.id.as_str())
                            .or(note.commit_id.as_deref().filter(|sha| !sha.is_empty()))
                        {
                            Some(sha) => format!("/commit/{sha}"),
                            None => format!("/note/{}", note.id),
                        }
                    }
                    (NoteableType::Snippet, _, _) => {
                        match e.snippet.as_ref().map(|s| s.id).or(note.noteable_id) {
                            Some(id) => format!("/snippet/{id}"),
                            None => format!("/note/{}", note.id),
                        }
                    }
                    _ => format!("/note/{}", note.id),
                };
                Some(project_key(&e.project, format_args!("{rest}")))
            }
            GitlabEvent::Push(e) => Some(project_key(&e.project, format_args!("@{}", e.ref_name))),
            GitlabEvent::Pipeline(e) => Some(project_key(
                &e.project,
                format_args!("/pipeline/{}", e.object_attributes.id),
            )),
            GitlabEvent::Untyped(e) => e
                .payload
                .pointer("/project/path_with_namespace")
                .and_then(serde_json::Value::as_str)
                .map(|path| format!("gitlab:{path}")),
        }
    }

    /// The provider's own timestamp of the object's state, for recognising stale events:
    /// the issue's, merge request's or comment's `updated_at`; a push's head commit
    /// timestamp; a pipeline's `finished_at`, else `created_at`. None otherwise.
    pub fn updated_at(&self) -> Option<OffsetDateTime> {
        match self {
            GitlabEvent::Issue(e) => e.object_attributes.updated_at,
            GitlabEvent::MergeRequest(e) => e.object_attributes.updated_at,
            GitlabEvent::Note(e) => e.object_attributes.updated_at,
            GitlabEvent::Push(e) => e.head_commit().and_then(|c| c.timestamp),
            GitlabEvent::Pipeline(e) => e
                .object_attributes
                .finished_at
                .or(e.object_attributes.created_at),
            GitlabEvent::Untyped(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitlab_times() {
        let utc = parse_gitlab_time("2016-08-12 15:23:28 UTC").unwrap();
        assert_eq!(utc.unix_timestamp(), 1471015408);
        assert_eq!(parse_gitlab_time("2016-08-12T15:23:28Z"), Some(utc));
        assert_eq!(parse_gitlab_time("2016-08-12T17:23:28+02:00"), Some(utc));
        assert_eq!(parse_gitlab_time("2016-08-12 17:23:28 +0200"), Some(utc));
        assert_eq!(parse_gitlab_time("2016-08-12 17:23:28 +02:00"), Some(utc));
        let frac = parse_gitlab_time("2019-06-05 14:32:20.211 UTC").unwrap();
        assert_eq!(frac.millisecond(), 211);
        for bad in [
            "",
            "UTC",
            "2016-08-12",
            "2016-08-12 15:23 UTC",
            "2015-04-08T21: 00:25-07:00",
        ] {
            assert_eq!(parse_gitlab_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn bot_usernames() {
        let user = |username: &str| User {
            id: None,
            name: None,
            username: username.to_owned(),
            email: None,
            avatar_url: None,
        };
        for bot in [
            "project_123_bot",
            "project_123_bot1",
            "project_7_bot_3f9a2c",
            "group_42_bot_x",
        ] {
            assert!(user(bot).is_bot(), "{bot}");
        }
        for person in [
            "root",
            "project_bot",
            "project__bot",
            "projectx_1_bot",
            "group_x_bot",
            "bot",
        ] {
            assert!(!user(person).is_bot(), "{person}");
        }
    }

    #[test]
    fn null_shas() {
        assert!(is_null_sha("0000000000000000000000000000000000000000"));
        assert!(!is_null_sha("95790bf891e76fee5e1747ab589903a6a1f80f22"));
        assert!(!is_null_sha(""));
    }
}
