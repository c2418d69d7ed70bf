//! Typed GitHub webhook payloads.
//!
//! [`GithubEvent::from_json`] turns the JSON document of a delivery and its `X-GitHub-Event`
//! header into a typed event. Parsing is forward compatible:
//!
//! - unknown fields are ignored (no type here uses `deny_unknown_fields`);
//! - unknown actions become the `Other(String)` variant of the event's action enum, and
//!   serialize back to the same string;
//! - unknown events, and known events whose payload does not fit the typed shape, become
//!   [`GithubEvent::Untyped`] with the whole payload kept as JSON.
//!
//! Only what every real payload of an event carries is required; everything GitHub documents
//! as nullable, or that is absent in some variants of an event, is an `Option` or defaults.
//!
//! ```
//! use hookbridge_providers::github::events::{GithubEvent, IssuesAction};
//!
//! let json = br#"{"action":"opened","issue":{"id":1,"number":12,"title":"Bug","state":"open",
//!   "html_url":"https://github.com/octo-org/octo-repo/issues/12",
//!   "user":{"login":"octocat","id":583231}},
//!   "repository":{"id":1296269,"name":"octo-repo","full_name":"octo-org/octo-repo",
//!   "html_url":"https://github.com/octo-org/octo-repo","owner":{"login":"octo-org","id":6811672}},
//!   "sender":{"login":"octocat","id":583231}}"#;
//! let event = GithubEvent::from_json("issues", json).unwrap();
//! assert_eq!(event.name(), "issues.opened");
//! assert_eq!(event.subject().as_deref(), Some("github:octo-org/octo-repo#12"));
//! let GithubEvent::Issues(issues) = &event else { panic!("not typed") };
//! assert_eq!(issues.action, IssuesAction::Opened);
//! ```

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::common::{expect_json_object, typed};

string_enum! {
    /// The `action` of an `issues` event.
    IssuesAction {
        Opened => "opened",
        Edited => "edited",
        Deleted => "deleted",
        Closed => "closed",
        Reopened => "reopened",
        Assigned => "assigned",
        Unassigned => "unassigned",
        Labeled => "labeled",
        Unlabeled => "unlabeled",
        Transferred => "transferred",
        Pinned => "pinned",
        Unpinned => "unpinned",
        Locked => "locked",
        Unlocked => "unlocked",
        Milestoned => "milestoned",
        Demilestoned => "demilestoned",
        Typed => "typed",
        Untyped => "untyped",
    }
}

string_enum! {
    /// The `action` of an `issue_comment` event.
    IssueCommentAction {
        Created => "created",
        Edited => "edited",
        Deleted => "deleted",
    }
}

string_enum! {
    /// The `action` of a `pull_request` event.
    PullRequestAction {
        Opened => "opened",
        Edited => "edited",
        Closed => "closed",
        Reopened => "reopened",
        Synchronize => "synchronize",
        ReadyForReview => "ready_for_review",
        ConvertedToDraft => "converted_to_draft",
        Labeled => "labeled",
        Unlabeled => "unlabeled",
        Assigned => "assigned",
        Unassigned => "unassigned",
        ReviewRequested => "review_requested",
        ReviewRequestRemoved => "review_request_removed",
        Locked => "locked",
        Unlocked => "unlocked",
        Milestoned => "milestoned",
        Demilestoned => "demilestoned",
        AutoMergeEnabled => "auto_merge_enabled",
        AutoMergeDisabled => "auto_merge_disabled",
        Enqueued => "enqueued",
        Dequeued => "dequeued",
    }
}

string_enum! {
    /// The `action` of a `pull_request_review` event.
    PullRequestReviewAction {
        Submitted => "submitted",
        Edited => "edited",
        Dismissed => "dismissed",
    }
}

string_enum! {
    /// The `action` of a `pull_request_review_comment` event.
    PullRequestReviewCommentAction {
        Created => "created",
        Edited => "edited",
        Deleted => "deleted",
    }
}

string_enum! {
    /// The `action` of a `label` event.
    LabelAction {
        Created => "created",
        Edited => "edited",
        Deleted => "deleted",
    }
}

string_enum! {
    /// The `action` of a `release` event.
    ReleaseAction {
        Published => "published",
        Unpublished => "unpublished",
        Created => "created",
        Edited => "edited",
        Deleted => "deleted",
        Prereleased => "prereleased",
        Released => "released",
    }
}

string_enum! {
    /// The `action` of an `installation` event.
    InstallationAction {
        Created => "created",
        Deleted => "deleted",
        Suspend => "suspend",
        Unsuspend => "unsuspend",
        NewPermissionsAccepted => "new_permissions_accepted",
    }
}

string_enum! {
    /// The `action` of an `installation_repositories` event.
    InstallationRepositoriesAction {
        Added => "added",
        Removed => "removed",
    }
}

string_enum! {
    /// The `action` of a `check_run` event.
    CheckRunAction {
        Created => "created",
        Completed => "completed",
        Rerequested => "rerequested",
        RequestedAction => "requested_action",
    }
}

string_enum! {
    /// The `action` of a `check_suite` event.
    CheckSuiteAction {
        Completed => "completed",
        Requested => "requested",
        Rerequested => "rerequested",
    }
}

string_enum! {
    /// The `action` of a `workflow_run` event.
    WorkflowRunAction {
        Requested => "requested",
        InProgress => "in_progress",
        Completed => "completed",
    }
}

string_enum! {
    /// The kind of git ref a `create` or `delete` event is about.
    RefType {
        Branch => "branch",
        Tag => "tag",
    }
}

string_enum! {
    /// The `status` of a check run, check suite or workflow run.
    CheckStatus {
        Requested => "requested",
        Queued => "queued",
        InProgress => "in_progress",
        Completed => "completed",
        Waiting => "waiting",
        Pending => "pending",
    }
}

string_enum! {
    /// The `conclusion` of a completed check run, check suite or workflow run.
    CheckConclusion {
        Success => "success",
        Failure => "failure",
        Neutral => "neutral",
        Cancelled => "cancelled",
        Skipped => "skipped",
        TimedOut => "timed_out",
        ActionRequired => "action_required",
        Stale => "stale",
        StartupFailure => "startup_failure",
    }
}

// ---------------------------------------------------------------------------------------------
// Shared objects
// ---------------------------------------------------------------------------------------------

/// A GitHub account as it appears in payloads: a user, an organization or a bot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// The account's login (`octocat`, `github-actions[bot]`).
    pub login: String,
    /// The account's numeric id.
    pub id: u64,
    /// `User`, `Organization` or `Bot`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The account's page on github.com.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// The account an app is installed on: a user or organization, or an enterprise (which has
/// a `slug` and `name` but no `login`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    /// The account's numeric id.
    pub id: u64,
    /// The login of a user or organization.
    #[serde(default)]
    pub login: Option<String>,
    /// The slug of an enterprise.
    #[serde(default)]
    pub slug: Option<String>,
    /// The display name of an enterprise.
    #[serde(default)]
    pub name: Option<String>,
    /// `User`, `Organization`, or absent for an enterprise.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The account's page on github.com.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// A repository, as carried by the `repository` field of repository-level events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Repository {
    /// The repository's numeric id.
    pub id: u64,
    /// The repository's name (`octo-repo`).
    pub name: String,
    /// `owner/name` (`octo-org/octo-repo`).
    pub full_name: String,
    /// The owning user or organization.
    pub owner: User,
    /// The repository's page on github.com.
    pub html_url: String,
    /// Whether the repository is private.
    #[serde(default)]
    pub private: bool,
    /// The default branch (`main`).
    #[serde(default)]
    pub default_branch: Option<String>,
}

/// The `installation` field of events delivered to a GitHub App.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstallationRef {
    /// The installation id, used to obtain an installation access token.
    pub id: u64,
}

/// An issue or pull request label.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Label {
    /// The label's numeric id.
    #[serde(default)]
    pub id: Option<u64>,
    /// The label's name.
    pub name: String,
    /// The label's colour, six hex digits without `#`.
    #[serde(default)]
    pub color: Option<String>,
    /// The label's description.
    #[serde(default)]
    pub description: Option<String>,
}

/// An issue (or, when `pull_request` is set, the issue side of a pull request).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Issue {
    /// The issue's numeric id.
    pub id: u64,
    /// The issue's number in its repository.
    pub number: u64,
    /// The title.
    pub title: String,
    /// The body, in Markdown.
    #[serde(default)]
    pub body: Option<String>,
    /// `open` or `closed`.
    pub state: String,
    /// Why the issue was closed or reopened: `completed`, `not_planned`, `reopened`, ...
    #[serde(default)]
    pub state_reason: Option<String>,
    /// The issue's page on github.com.
    pub html_url: String,
    /// The author.
    pub user: User,
    /// The labels.
    #[serde(default)]
    pub labels: Vec<Label>,
    /// The assignees.
    #[serde(default)]
    pub assignees: Vec<User>,
    /// When the issue was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When the issue was last updated.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    /// When the issue was closed, if it is.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    /// Set when the issue is a pull request: the links to the pull request.
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

/// The head or base of a pull request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GitRef {
    /// The branch name (`main`, not `refs/heads/main`).
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// The commit sha.
    pub sha: String,
    /// `owner:branch`.
    #[serde(default)]
    pub label: Option<String>,
}

/// A pull request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullRequest {
    /// The pull request's numeric id.
    pub id: u64,
    /// The pull request's number in its repository (shared with issues).
    pub number: u64,
    /// The title.
    pub title: String,
    /// The body, in Markdown.
    #[serde(default)]
    pub body: Option<String>,
    /// `open` or `closed` (a merged pull request is `closed` with `merged` true).
    pub state: String,
    /// Whether the pull request is a draft.
    #[serde(default)]
    pub draft: bool,
    /// Whether the pull request was merged; absent from the shorter pull request objects of
    /// review events.
    #[serde(default)]
    pub merged: Option<bool>,
    /// When the pull request was merged.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub merged_at: Option<OffsetDateTime>,
    /// Who merged it.
    #[serde(default)]
    pub merged_by: Option<User>,
    /// The merge commit, or the test merge commit while open.
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    /// The pull request's page on github.com.
    pub html_url: String,
    /// The author.
    pub user: User,
    /// The labels.
    #[serde(default)]
    pub labels: Vec<Label>,
    /// The assignees.
    #[serde(default)]
    pub assignees: Vec<User>,
    /// The branch with the changes.
    pub head: GitRef,
    /// The branch the changes go into.
    pub base: GitRef,
    /// When the pull request was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When the pull request was last updated.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    /// When the pull request was closed, if it is.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
}

/// The short pull request object of check runs, check suites and workflow runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullRequestRef {
    /// The pull request's numeric id.
    #[serde(default)]
    pub id: Option<u64>,
    /// The pull request's number.
    pub number: u64,
    /// The pull request's API URL.
    #[serde(default)]
    pub url: Option<String>,
    /// The branch with the changes.
    #[serde(default)]
    pub head: Option<GitRef>,
    /// The branch the changes go into.
    #[serde(default)]
    pub base: Option<GitRef>,
}

/// A comment on an issue or pull request conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comment {
    /// The comment's numeric id.
    pub id: u64,
    /// The comment's anchor on github.com.
    pub html_url: String,
    /// The body, in Markdown.
    #[serde(default)]
    pub body: Option<String>,
    /// The author.
    pub user: User,
    /// The author's relation to the repository (`OWNER`, `MEMBER`, `CONTRIBUTOR`, ...).
    #[serde(default)]
    pub author_association: Option<String>,
    /// When the comment was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When the comment was last updated.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

/// A pull request review.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Review {
    /// The review's numeric id.
    pub id: u64,
    /// The reviewer (GitHub documents it as nullable).
    #[serde(default)]
    pub user: Option<User>,
    /// The review's summary comment.
    #[serde(default)]
    pub body: Option<String>,
    /// `approved`, `changes_requested`, `commented`, `dismissed`, ...
    pub state: String,
    /// The review's anchor on github.com.
    pub html_url: String,
    /// The commit the review was made on.
    #[serde(default)]
    pub commit_id: Option<String>,
    /// When the review was submitted.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub submitted_at: Option<OffsetDateTime>,
}

/// A comment on a pull request's diff.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReviewComment {
    /// The comment's numeric id.
    pub id: u64,
    /// The review the comment belongs to.
    #[serde(default)]
    pub pull_request_review_id: Option<u64>,
    /// The comment's anchor on github.com.
    pub html_url: String,
    /// The body, in Markdown.
    #[serde(default)]
    pub body: Option<String>,
    /// The author.
    pub user: User,
    /// The file the comment is on.
    #[serde(default)]
    pub path: Option<String>,
    /// The line of the file the comment is on, if still in the diff.
    #[serde(default)]
    pub line: Option<u64>,
    /// The commit the comment was made on.
    #[serde(default)]
    pub commit_id: Option<String>,
    /// The diff hunk the comment is on.
    #[serde(default)]
    pub diff_hunk: Option<String>,
    /// The comment this one replies to.
    #[serde(default)]
    pub in_reply_to_id: Option<u64>,
    /// When the comment was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When the comment was last updated.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

/// The author or committer of a commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitAuthor {
    /// The git name.
    pub name: String,
    /// The git email.
    #[serde(default)]
    pub email: Option<String>,
    /// The GitHub login matched to the email, when there is one.
    #[serde(default)]
    pub username: Option<String>,
}

/// A commit, as listed by push events (and as the head commit of workflow runs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commit {
    /// The commit sha.
    pub id: String,
    /// The tree sha.
    #[serde(default)]
    pub tree_id: Option<String>,
    /// The commit message.
    pub message: String,
    /// The commit's author timestamp.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub timestamp: Option<OffsetDateTime>,
    /// The commit's page on github.com.
    #[serde(default)]
    pub url: Option<String>,
    /// The author.
    #[serde(default)]
    pub author: Option<CommitAuthor>,
    /// The committer.
    #[serde(default)]
    pub committer: Option<CommitAuthor>,
    /// Whether the commit is new to this push (not already on another ref).
    #[serde(default)]
    pub distinct: Option<bool>,
    /// Paths added by the commit.
    #[serde(default)]
    pub added: Vec<String>,
    /// Paths removed by the commit.
    #[serde(default)]
    pub removed: Vec<String>,
    /// Paths modified by the commit.
    #[serde(default)]
    pub modified: Vec<String>,
}

/// Who pushed, as git knows them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pusher {
    /// The git name (often the login).
    pub name: String,
    /// The git email.
    #[serde(default)]
    pub email: Option<String>,
}

/// A release.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Release {
    /// The release's numeric id.
    pub id: u64,
    /// The tag the release is for.
    pub tag_name: String,
    /// The release title.
    #[serde(default)]
    pub name: Option<String>,
    /// The release notes, in Markdown.
    #[serde(default)]
    pub body: Option<String>,
    /// Whether the release is a draft.
    #[serde(default)]
    pub draft: bool,
    /// Whether the release is a pre-release.
    #[serde(default)]
    pub prerelease: bool,
    /// The release's page on github.com.
    pub html_url: String,
    /// The branch or commit the tag is created from, if it does not exist yet.
    #[serde(default)]
    pub target_commitish: Option<String>,
    /// Who created the release.
    #[serde(default)]
    pub author: Option<User>,
    /// When the release was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When the release was published; None for drafts.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub published_at: Option<OffsetDateTime>,
}

/// A GitHub App installation, in full (installation events).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Installation {
    /// The installation id.
    pub id: u64,
    /// The account the app is installed on.
    #[serde(default)]
    pub account: Option<Account>,
    /// The app's id.
    #[serde(default)]
    pub app_id: Option<u64>,
    /// The app's slug.
    #[serde(default)]
    pub app_slug: Option<String>,
    /// The id of the account the app is installed on.
    #[serde(default)]
    pub target_id: Option<u64>,
    /// `User`, `Organization` or `Enterprise`.
    #[serde(default)]
    pub target_type: Option<String>,
    /// `all` or `selected`.
    #[serde(default)]
    pub repository_selection: Option<String>,
    /// The installation's settings page.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Permission name -> `read` / `write` / `admin`.
    #[serde(default)]
    pub permissions: Option<serde_json::Value>,
    /// The events the installation subscribes to.
    #[serde(default)]
    pub events: Vec<String>,
}

/// The short repository object of installation events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstallationRepository {
    /// The repository's numeric id.
    pub id: u64,
    /// The repository's name.
    pub name: String,
    /// `owner/name`.
    pub full_name: String,
    /// Whether the repository is private.
    #[serde(default)]
    pub private: bool,
}

/// A GitHub App, as the creator of check suites and runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    /// The app's numeric id.
    pub id: u64,
    /// The app's slug (`github-actions`).
    #[serde(default)]
    pub slug: Option<String>,
    /// The app's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The app's page on github.com.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// A check run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckRun {
    /// The check run's numeric id.
    pub id: u64,
    /// The check's name.
    pub name: String,
    /// The commit checked.
    pub head_sha: String,
    /// `queued`, `in_progress`, `completed`, ...
    pub status: CheckStatus,
    /// The outcome, once completed.
    #[serde(default)]
    pub conclusion: Option<CheckConclusion>,
    /// The check run's page on github.com.
    #[serde(default)]
    pub html_url: Option<String>,
    /// The integrator's page for the check.
    #[serde(default)]
    pub details_url: Option<String>,
    /// The integrator's reference for the check.
    #[serde(default)]
    pub external_id: Option<String>,
    /// When the check started.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    /// When the check completed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    /// The suite the check run belongs to.
    #[serde(default)]
    pub check_suite: Option<CheckSuite>,
    /// The app that created the check run.
    #[serde(default)]
    pub app: Option<App>,
    /// The pull requests whose head is the checked commit.
    #[serde(default)]
    pub pull_requests: Vec<PullRequestRef>,
}

/// A check suite.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckSuite {
    /// The check suite's numeric id.
    pub id: u64,
    /// The branch checked; None for a commit not on a branch (or from a fork).
    #[serde(default)]
    pub head_branch: Option<String>,
    /// The commit checked.
    pub head_sha: String,
    /// `queued`, `in_progress`, `completed`, ...
    #[serde(default)]
    pub status: Option<CheckStatus>,
    /// The outcome, once completed.
    #[serde(default)]
    pub conclusion: Option<CheckConclusion>,
    /// The sha before the push that created the suite.
    #[serde(default)]
    pub before: Option<String>,
    /// The sha after the push that created the suite.
    #[serde(default)]
    pub after: Option<String>,
    /// The app that owns the suite.
    #[serde(default)]
    pub app: Option<App>,
    /// The pull requests whose head is the checked commit.
    #[serde(default)]
    pub pull_requests: Vec<PullRequestRef>,
    /// How many check runs the suite has.
    #[serde(default)]
    pub latest_check_runs_count: Option<u64>,
    /// When the suite was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When the suite was last updated.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

/// A GitHub Actions workflow run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowRun {
    /// The run's numeric id.
    pub id: u64,
    /// The workflow's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The title shown for the run (commit message, PR title, ...).
    #[serde(default)]
    pub display_title: Option<String>,
    /// The branch the run is for.
    #[serde(default)]
    pub head_branch: Option<String>,
    /// The commit the run is for.
    pub head_sha: String,
    /// The workflow file path.
    #[serde(default)]
    pub path: Option<String>,
    /// The run's number within its workflow.
    #[serde(default)]
    pub run_number: Option<u64>,
    /// The attempt number, from 1.
    #[serde(default)]
    pub run_attempt: Option<u64>,
    /// The event that triggered the run (`push`, `pull_request`, ...).
    #[serde(default)]
    pub event: Option<String>,
    /// `requested`, `in_progress`, `completed`, ...
    #[serde(default)]
    pub status: Option<CheckStatus>,
    /// The outcome, once completed.
    #[serde(default)]
    pub conclusion: Option<CheckConclusion>,
    /// The workflow's id.
    #[serde(default)]
    pub workflow_id: Option<u64>,
    /// The check suite of the run.
    #[serde(default)]
    pub check_suite_id: Option<u64>,
    /// The run's page on github.com.
    pub html_url: String,
    /// The pull requests the run is for.
    #[serde(default)]
    pub pull_requests: Vec<PullRequestRef>,
    /// Who started the first attempt.
    #[serde(default)]
    pub actor: Option<User>,
    /// Who started this attempt.
    #[serde(default)]
    pub triggering_actor: Option<User>,
    /// The head commit.
    #[serde(default)]
    pub head_commit: Option<Commit>,
    /// When the run was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When the run was last updated.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    /// When this attempt started.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub run_started_at: Option<OffsetDateTime>,
}

/// A GitHub Actions workflow (the file, not a run of it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workflow {
    /// The workflow's numeric id.
    pub id: u64,
    /// The workflow's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The workflow file path.
    #[serde(default)]
    pub path: Option<String>,
    /// `active`, `disabled_manually`, ...
    #[serde(default)]
    pub state: Option<String>,
    /// The workflow file on github.com.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// A webhook, as described by the `ping` event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hook {
    /// The hook's numeric id.
    pub id: u64,
    /// `Repository`, `Organization`, `App`, ...
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Always `web` for webhooks.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether deliveries are sent.
    #[serde(default)]
    pub active: Option<bool>,
    /// The events subscribed to (`*` for all).
    #[serde(default)]
    pub events: Vec<String>,
    /// The app's id, for an app's webhook.
    #[serde(default)]
    pub app_id: Option<u64>,
    /// Where and how deliveries are sent (the secret is deliberately not kept).
    #[serde(default)]
    pub config: Option<HookConfig>,
    /// When the hook was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When the hook was last updated.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

/// The delivery configuration of a [`Hook`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookConfig {
    /// The payload URL.
    #[serde(default)]
    pub url: Option<String>,
    /// `json` or `form`.
    #[serde(default)]
    pub content_type: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// `issues`: an issue was opened, edited, closed, labeled, assigned, ...
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuesEvent {
    /// What happened.
    pub action: IssuesAction,
    /// The issue, as it is after the action.
    pub issue: Issue,
    /// For `edited`: the previous values of the changed fields.
    #[serde(default)]
    pub changes: Option<serde_json::Value>,
    /// For `labeled` / `unlabeled`: the label.
    #[serde(default)]
    pub label: Option<Label>,
    /// For `assigned` / `unassigned`: the assignee.
    #[serde(default)]
    pub assignee: Option<User>,
    /// The repository.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// Who performed the action.
    #[serde(default)]
    pub sender: Option<User>,
    /// The app installation the delivery is for.
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `issue_comment`: a comment on an issue or pull request was created, edited or deleted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssueCommentEvent {
    /// What happened.
    pub action: IssueCommentAction,
    /// The issue (or pull request) commented on.
    pub issue: Issue,
    /// The comment.
    pub comment: Comment,
    /// For `edited`: the previous values of the changed fields.
    #[serde(default)]
    pub changes: Option<serde_json::Value>,
    /// The repository.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// Who performed the action.
    #[serde(default)]
    pub sender: Option<User>,
    /// The app installation the delivery is for.
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `pull_request`: a pull request was opened, closed, synchronized, labeled, ...
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullRequestEvent {
    /// What happened.
    pub action: PullRequestAction,
    /// The pull request's number.
    #[serde(default)]
    pub number: Option<u64>,
    /// The pull request, as it is after the action.
    pub pull_request: PullRequest,
    /// For `edited`: the previous values of the changed fields.
    #[serde(default)]
    pub changes: Option<serde_json::Value>,
    /// For `labeled` / `unlabeled`: the label.
    #[serde(default)]
    pub label: Option<Label>,
    /// For `assigned` / `unassigned`: the assignee.
    #[serde(default)]
    pub assignee: Option<User>,
    /// For `review_requested` / `review_request_removed` of a user: the reviewer.
    #[serde(default)]
    pub requested_reviewer: Option<User>,
    /// For `synchronize`: the previous head sha.
    #[serde(default)]
    pub before: Option<String>,
    /// For `synchronize`: the new head sha.
    #[serde(default)]
    pub after: Option<String>,
    /// The repository.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// Who performed the action.
    #[serde(default)]
    pub sender: Option<User>,
    /// The app installation the delivery is for.
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `pull_request_review`: a review was submitted, edited or dismissed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullRequestReviewEvent {
    /// What happened.
    pub action: PullRequestReviewAction,
    /// The review.
    pub review: Review,
    /// The pull request reviewed.
    pub pull_request: PullRequest,
    /// For `edited`: the previous values of the changed fields.
    #[serde(default)]
    pub changes: Option<serde_json::Value>,
    /// The repository.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// Who performed the action.
    #[serde(default)]
    pub sender: Option<User>,
    /// The app installation the delivery is for.
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `pull_request_review_comment`: a comment on a pull request's diff was created, edited or
/// deleted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullRequestReviewCommentEvent {
    /// What happened.
    pub action: PullRequestReviewCommentAction,
    /// The comment.
    pub comment: ReviewComment,
    /// The pull request commented on.
    pub pull_request: PullRequest,
    /// For `edited`: the previous values of the changed fields.
    #[serde(default)]
    pub changes: Option<serde_json::Value>,
    /// The repository.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// Who performed the action.
    #[serde(default)]
    pub sender: Option<User>,
    /// The app installation the delivery is for.
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `push`: commits were pushed to a branch or tag (or the ref was created or deleted).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushEvent {
    /// The full ref pushed (`refs/heads/main`, `refs/tags/v1.0`).
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// The sha of the ref before the push (all zeros when created).
    pub before: String,
    /// The sha of the ref after the push (all zeros when deleted).
    pub after: String,
    /// Whether the push created the ref.
    #[serde(default)]
    pub created: bool,
    /// Whether the push deleted the ref.
    #[serde(default)]
    pub deleted: bool,
    /// Whether the push was a force push.
    #[serde(default)]
    pub forced: bool,
    /// For a tag push: the branch the tag points into, if any.
    #[serde(default)]
    pub base_ref: Option<String>,
    /// A URL comparing `before` and `after`.
    pub compare: String,
    /// The pushed commits (at most 20, oldest first).
    #[serde(default)]
    pub commits: Vec<Commit>,
    /// The commit the ref now points to; None when the ref was deleted.
    #[serde(default)]
    pub head_commit: Option<Commit>,
    /// Who pushed.
    pub pusher: Pusher,
    /// The repository.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// Who performed the action.
    #[serde(default)]
    pub sender: Option<User>,
    /// The app installation the delivery is for.
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `create`: a branch or tag was created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateEvent {
    /// The short name of the ref created (`feature-x`, `v1.0`).
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// Whether a branch or a tag was created.
    pub ref_type: RefType,
    /// The repository's default branch.
    #[serde(default)]
    pub master_branch: Option<String>,
    /// The repository's description.
    #[serde(default)]
    pub description: Option<String>,
    /// `user` or `deploy_key`.
    #[serde(default)]
    pub pusher_type: Option<String>,
    /// The repository.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// Who performed the action.
    #[serde(default)]
    pub sender: Option<User>,
    /// The app installation the delivery is for.
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `delete`: a branch or tag was deleted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteEvent {
    /// The short name of the ref deleted.
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// Whether a branch or a tag was deleted.
    pub ref_type: RefType,
    /// `user` or `deploy_key`.
    #[serde(default)]
    pub pusher_type: Option<String>,
    /// The repository.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// Who performed the action.
    #[serde(default)]
    pub sender: Option<User>,
    /// The app installation the delivery is for.
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `label`: a repository label was created, edited or deleted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelEvent {
    /// What happened.
    pub action: LabelAction,
    /// The label.
    pub label: Label,
    /// For `edited`: the previous values of the changed fields.
    #[serde(default)]
    pub changes: Option<serde_json::Value>,
    /// The repository.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// Who performed the action.
    #[serde(default)]
    pub sender: Option<User>,
    /// The app installation the delivery is for.
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `release`: a release was published, created, edited, deleted, ...
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseEvent {
    /// What happened.
    pub action: ReleaseAction,
    /// The release.
    pub release: Release,
    /// For `edited`: the previous values of the changed fields.
    #[serde(default)]
    pub changes: Option<serde_json::Value>,
    /// The repository.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// Who performed the action.
    #[serde(default)]
    pub sender: Option<User>,
    /// The app installation the delivery is for.
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `installation`: a GitHub App was installed, uninstalled, suspended, ...
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstallationEvent {
    /// What happened.
    pub action: InstallationAction,
    /// The installation, in full.
    pub installation: Installation,
    /// For `created`: the repositories the installation can access (when selected).
    #[serde(default)]
    pub repositories: Vec<InstallationRepository>,
    /// Who requested the installation, when someone did.
    #[serde(default)]
    pub requester: Option<User>,
    /// Absent for installation events; kept for a uniform shape.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// Who performed the action.
    #[serde(default)]
    pub sender: Option<User>,
}

/// `installation_repositories`: repositories were added to or removed from an installation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstallationRepositoriesEvent {
    /// What happened.
    pub action: InstallationRepositoriesAction,
    /// The installation, in full.
    pub installation: Installation,
    /// `all` or `selected`.
    #[serde(default)]
    pub repository_selection: Option<String>,
    /// The repositories added.
    #[serde(default)]
    pub repositories_added: Vec<InstallationRepository>,
    /// The repositories removed.
    #[serde(default)]
    pub repositories_removed: Vec<InstallationRepository>,
    /// Who requested the change, when someone did.
    #[serde(default)]
    pub requester: Option<User>,
    /// Absent for installation events; kept for a uniform shape.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// Who performed the action.
    #[serde(default)]
    pub sender: Option<User>,
}

/// `check_run`: a check run was created, completed, re-requested, ...
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckRunEvent {
    /// What happened.
    pub action: CheckRunAction,
    /// The check run.
    pub check_run: CheckRun,
    /// For `requested_action`: the action the user requested.
    #[serde(default)]
    pub requested_action: Option<serde_json::Value>,
    /// The repository.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// Who performed the action.
    #[serde(default)]
    pub sender: Option<User>,
    /// The app installation the delivery is for.
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `check_suite`: a check suite was requested, re-requested or completed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckSuiteEvent {
    /// What happened.
    pub action: CheckSuiteAction,
    /// The check suite.
    pub check_suite: CheckSuite,
    /// The repository.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// Who performed the action.
    #[serde(default)]
    pub sender: Option<User>,
    /// The app installation the delivery is for.
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `workflow_run`: a GitHub Actions workflow run was requested, started or completed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowRunEvent {
    /// What happened.
    pub action: WorkflowRunAction,
    /// The run.
    pub workflow_run: WorkflowRun,
    /// The workflow the run is of.
    #[serde(default)]
    pub workflow: Option<Workflow>,
    /// The repository.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// Who performed the action.
    #[serde(default)]
    pub sender: Option<User>,
    /// The app installation the delivery is for.
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `ping`: sent once when a webhook is created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PingEvent {
    /// A random line of GitHub zen.
    pub zen: String,
    /// The webhook's id.
    pub hook_id: u64,
    /// The webhook.
    #[serde(default)]
    pub hook: Option<Hook>,
    /// The repository, for a repository webhook.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// Who created the webhook.
    #[serde(default)]
    pub sender: Option<User>,
    /// The app installation the delivery is for.
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// An event this crate has no type for, or a known event whose payload did not fit the
/// typed shape.
#[derive(Debug, Clone, Serialize)]
pub struct UntypedEvent {
    /// The `X-GitHub-Event` header value.
    pub event: String,
    /// The payload's `action`, if it is a string.
    pub action: Option<String>,
    /// Why typing failed for a known event (the serde error text); None for unknown events.
    pub reason: Option<String>,
    /// The whole payload (always a JSON object).
    pub payload: serde_json::Value,
}

/// A GitHub webhook event, typed. Forward compatible: unknown events, unknown actions and
/// unknown fields never fail parsing.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", content = "payload", rename_all = "snake_case")]
pub enum GithubEvent {
    /// `issues`
    Issues(IssuesEvent),
    /// `issue_comment`
    IssueComment(IssueCommentEvent),
    /// `pull_request`
    PullRequest(PullRequestEvent),
    /// `pull_request_review`
    PullRequestReview(PullRequestReviewEvent),
    /// `pull_request_review_comment`
    PullRequestReviewComment(PullRequestReviewCommentEvent),
    /// `push`
    Push(PushEvent),
    /// `create`
    Create(CreateEvent),
    /// `delete`
    Delete(DeleteEvent),
    /// `label`
    Label(LabelEvent),
    /// `release`
    Release(ReleaseEvent),
    /// `installation`
    Installation(InstallationEvent),
    /// `installation_repositories`
    InstallationRepositories(InstallationRepositoriesEvent),
    /// `check_run`
    CheckRun(CheckRunEvent),
    /// `check_suite`
    CheckSuite(CheckSuiteEvent),
    /// `workflow_run`
    WorkflowRun(WorkflowRunEvent),
    /// `ping`
    Ping(PingEvent),
    /// Any event this crate has no type for, or a known event whose payload did not match
    /// the typed shape: kept whole, with the raw JSON.
    Untyped(UntypedEvent),
}

/// The fallback: the whole document as a `Value`, which must be a JSON object.
fn untyped(
    event: &str,
    json: &[u8],
    reason: Option<String>,
) -> Result<GithubEvent, serde_json::Error> {
    let payload: serde_json::Value = serde_json::from_slice(json)?;
    let Some(object) = payload.as_object() else {
        return Err(serde_json::Error::custom("expected a JSON object"));
    };
    let action = object
        .get("action")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    Ok(GithubEvent::Untyped(UntypedEvent {
        event: event.to_owned(),
        action,
        reason,
        payload,
    }))
}

fn repo_key(repository: Option<&Repository>, rest: fmt::Arguments<'_>) -> Option<String> {
    repository.map(|r| format!("github:{}{}", r.full_name, rest))
}

impl GithubEvent {
    /// Parses a JSON document (already decoded from a form body if needed) for the event named
    /// by the X-GitHub-Event header. Err only when `json` is not well-formed JSON (syntax) or
    /// not a JSON object; a well-formed object that does not fit the typed shape becomes
    /// `Untyped` with `reason` set.
    pub fn from_json(event: &str, json: &[u8]) -> Result<GithubEvent, serde_json::Error> {
        // A derived struct also accepts a JSON array (positionally): rule non-objects out first.
        expect_json_object(json)?;
        let result = match event {
            "issues" => typed(json, GithubEvent::Issues),
            "issue_comment" => typed(json, GithubEvent::IssueComment),
            "pull_request" => typed(json, GithubEvent::PullRequest),
            "pull_request_review" => typed(json, GithubEvent::PullRequestReview),
            "pull_request_review_comment" => typed(json, GithubEvent::PullRequestReviewComment),
            "push" => typed(json, GithubEvent::Push),
            "create" => typed(json, GithubEvent::Create),
            "delete" => typed(json, GithubEvent::Delete),
            "label" => typed(json, GithubEvent::Label),
            "release" => typed(json, GithubEvent::Release),
            "installation" => typed(json, GithubEvent::Installation),
            "installation_repositories" => typed(json, GithubEvent::InstallationRepositories),
            "check_run" => typed(json, GithubEvent::CheckRun),
            "check_suite" => typed(json, GithubEvent::CheckSuite),
            "workflow_run" => typed(json, GithubEvent::WorkflowRun),
            "ping" => typed(json, GithubEvent::Ping),
            _ => return untyped(event, json, None),
        };
        match result {
            Ok(typed) => Ok(typed),
            // A shape mismatch: keep the event whole if the document is well-formed (the
            // re-parse returns the syntax error if the mismatch hid one further on).
            Err(e) if e.is_data() => untyped(event, json, Some(e.to_string())),
            // Syntax error or truncated input: not well-formed, whatever the shape.
            Err(e) => Err(e),
        }
    }

    /// "issues.opened", "pull_request.closed", "push", "ping", "foo.bar" for untyped with an action.
    pub fn name(&self) -> String {
        match self.action() {
            Some(action) => format!("{}.{}", self.event_type(), action),
            None => self.event_type().to_owned(),
        }
    }

    /// "issues", "push", the header value for untyped.
    pub fn event_type(&self) -> &str {
        match self {
            GithubEvent::Issues(_) => "issues",
            GithubEvent::IssueComment(_) => "issue_comment",
            GithubEvent::PullRequest(_) => "pull_request",
            GithubEvent::PullRequestReview(_) => "pull_request_review",
            GithubEvent::PullRequestReviewComment(_) => "pull_request_review_comment",
            GithubEvent::Push(_) => "push",
            GithubEvent::Create(_) => "create",
            GithubEvent::Delete(_) => "delete",
            GithubEvent::Label(_) => "label",
            GithubEvent::Release(_) => "release",
            GithubEvent::Installation(_) => "installation",
            GithubEvent::InstallationRepositories(_) => "installation_repositories",
            GithubEvent::CheckRun(_) => "check_run",
            GithubEvent::CheckSuite(_) => "check_suite",
            GithubEvent::WorkflowRun(_) => "workflow_run",
            GithubEvent::Ping(_) => "ping",
            GithubEvent::Untyped(e) => &e.event,
        }
    }

    /// The payload's `action`; None for events without one (push, create, delete, ping).
    pub fn action(&self) -> Option<&str> {
        match self {
            GithubEvent::Issues(e) => Some(e.action.as_str()),
            GithubEvent::IssueComment(e) => Some(e.action.as_str()),
            GithubEvent::PullRequest(e) => Some(e.action.as_str()),
            GithubEvent::PullRequestReview(e) => Some(e.action.as_str()),
            GithubEvent::PullRequestReviewComment(e) => Some(e.action.as_str()),
            GithubEvent::Label(e) => Some(e.action.as_str()),
            GithubEvent::Release(e) => Some(e.action.as_str()),
            GithubEvent::Installation(e) => Some(e.action.as_str()),
            GithubEvent::InstallationRepositories(e) => Some(e.action.as_str()),
            GithubEvent::CheckRun(e) => Some(e.action.as_str()),
            GithubEvent::CheckSuite(e) => Some(e.action.as_str()),
            GithubEvent::WorkflowRun(e) => Some(e.action.as_str()),
            GithubEvent::Push(_)
            | GithubEvent::Create(_)
            | GithubEvent::Delete(_)
            | GithubEvent::Ping(_) => None,
            GithubEvent::Untyped(e) => e.action.as_deref(),
        }
    }

    /// Who performed the action (the payload's `sender`). None for untyped events: their
    /// payload is kept as JSON only.
    pub fn sender(&self) -> Option<&User> {
        match self {
            GithubEvent::Issues(e) => e.sender.as_ref(),
            GithubEvent::IssueComment(e) => e.sender.as_ref(),
            GithubEvent::PullRequest(e) => e.sender.as_ref(),
            GithubEvent::PullRequestReview(e) => e.sender.as_ref(),
            GithubEvent::PullRequestReviewComment(e) => e.sender.as_ref(),
            GithubEvent::Push(e) => e.sender.as_ref(),
            GithubEvent::Create(e) => e.sender.as_ref(),
            GithubEvent::Delete(e) => e.sender.as_ref(),
            GithubEvent::Label(e) => e.sender.as_ref(),
            GithubEvent::Release(e) => e.sender.as_ref(),
            GithubEvent::Installation(e) => e.sender.as_ref(),
            GithubEvent::InstallationRepositories(e) => e.sender.as_ref(),
            GithubEvent::CheckRun(e) => e.sender.as_ref(),
            GithubEvent::CheckSuite(e) => e.sender.as_ref(),
            GithubEvent::WorkflowRun(e) => e.sender.as_ref(),
            GithubEvent::Ping(e) => e.sender.as_ref(),
            GithubEvent::Untyped(_) => None,
        }
    }

    /// The repository the event happened in. None for org-level and installation events,
    /// and for untyped events (see [`UntypedEvent::payload`]).
    pub fn repository(&self) -> Option<&Repository> {
        match self {
            GithubEvent::Issues(e) => e.repository.as_ref(),
            GithubEvent::IssueComment(e) => e.repository.as_ref(),
            GithubEvent::PullRequest(e) => e.repository.as_ref(),
            GithubEvent::PullRequestReview(e) => e.repository.as_ref(),
            GithubEvent::PullRequestReviewComment(e) => e.repository.as_ref(),
            GithubEvent::Push(e) => e.repository.as_ref(),
            GithubEvent::Create(e) => e.repository.as_ref(),
            GithubEvent::Delete(e) => e.repository.as_ref(),
            GithubEvent::Label(e) => e.repository.as_ref(),
            GithubEvent::Release(e) => e.repository.as_ref(),
            GithubEvent::Installation(e) => e.repository.as_ref(),
            GithubEvent::InstallationRepositories(e) => e.repository.as_ref(),
            GithubEvent::CheckRun(e) => e.repository.as_ref(),
            GithubEvent::CheckSuite(e) => e.repository.as_ref(),
            GithubEvent::WorkflowRun(e) => e.repository.as_ref(),
            GithubEvent::Ping(e) => e.repository.as_ref(),
            GithubEvent::Untyped(_) => None,
        }
    }

    /// The GitHub App installation the delivery is for, when sent to an app (untyped events:
    /// from the payload's `installation.id`).
    pub fn installation_id(&self) -> Option<u64> {
        let short = |i: &Option<InstallationRef>| i.as_ref().map(|i| i.id);
        match self {
            GithubEvent::Issues(e) => short(&e.installation),
            GithubEvent::IssueComment(e) => short(&e.installation),
            GithubEvent::PullRequest(e) => short(&e.installation),
            GithubEvent::PullRequestReview(e) => short(&e.installation),
            GithubEvent::PullRequestReviewComment(e) => short(&e.installation),
            GithubEvent::Push(e) => short(&e.installation),
            GithubEvent::Create(e) => short(&e.installation),
            GithubEvent::Delete(e) => short(&e.installation),
            GithubEvent::Label(e) => short(&e.installation),
            GithubEvent::Release(e) => short(&e.installation),
            GithubEvent::Installation(e) => Some(e.installation.id),
            GithubEvent::InstallationRepositories(e) => Some(e.installation.id),
            GithubEvent::CheckRun(e) => short(&e.installation),
            GithubEvent::CheckSuite(e) => short(&e.installation),
            GithubEvent::WorkflowRun(e) => short(&e.installation),
            GithubEvent::Ping(e) => short(&e.installation),
            GithubEvent::Untyped(e) => e.payload.pointer("/installation/id")?.as_u64(),
        }
    }

    /// The object the event is about, as a stable key used for per-object ordering and links:
    ///
    /// - `issues`, `issue_comment`: `github:owner/repo#12`;
    /// - `pull_request`, `pull_request_review`, `pull_request_review_comment`:
    ///   `github:owner/repo#34`;
    /// - `push`, `create`, `delete`: `github:owner/repo@refs/heads/main` (create/delete: the
    ///   full ref from `ref_type` + `ref`, a tag giving `refs/tags/x`);
    /// - `label`: `github:owner/repo/label/<name>`;
    /// - `release`: `github:owner/repo/release/<id>`;
    /// - `check_run`, `check_suite`, `workflow_run`: `github:owner/repo/check_run/<id>`,
    ///   `.../check_suite/<id>`, `.../workflow_run/<id>`;
    /// - `installation`, `installation_repositories`: `github:installation/<id>`;
    /// - `ping`: `github:hook/<hook_id>`;
    /// - untyped: `github:owner/repo` from `payload.repository.full_name` if present.
    ///
    /// None when a repository-scoped event carries no repository, or an untyped one has no
    /// `repository.full_name`.
    pub fn subject(&self) -> Option<String> {
        match self {
            GithubEvent::Issues(e) => {
                repo_key(e.repository.as_ref(), format_args!("#{}", e.issue.number))
            }
            GithubEvent::IssueComment(e) => {
                repo_key(e.repository.as_ref(), format_args!("#{}", e.issue.number))
            }
            GithubEvent::PullRequest(e) => repo_key(
                e.repository.as_ref(),
                format_args!("#{}", e.pull_request.number),
            ),
            GithubEvent::PullRequestReview(e) => repo_key(
                e.repository.as_ref(),
                format_args!("#{}", e.pull_request.number),
            ),
            GithubEvent::PullRequestReviewComment(e) => repo_key(
                e.repository.as_ref(),
                format_args!("#{}", e.pull_request.number),
            ),
            GithubEvent::Push(e) => {
                repo_key(e.repository.as_ref(), format_args!("@{}", e.ref_name))
            }
            GithubEvent::Create(e) => repo_key(
                e.repository.as_ref(),
                format_args!("@{}{}", ref_prefix(&e.ref_type), e.ref_name),
            ),
            GithubEvent::Delete(e) => repo_key(
                e.repository.as_ref(),
                format_args!("@{}{}", ref_prefix(&e.ref_type), e.ref_name),
            ),
            GithubEvent::Label(e) => repo_key(
                e.repository.as_ref(),
                format_args!("/label/{}", e.label.name),
            ),
            GithubEvent::Release(e) => repo_key(
                e.repository.as_ref(),
                format_args!("/release/{}", e.release.id),
            ),
            GithubEvent::CheckRun(e) => repo_key(
                e.repository.as_ref(),
                format_args!("/check_run/{}", e.check_run.id),
            ),
            GithubEvent::CheckSuite(e) => repo_key(
                e.repository.as_ref(),
                format_args!("/check_suite/{}", e.check_suite.id),
            ),
            GithubEvent::WorkflowRun(e) => repo_key(
                e.repository.as_ref(),
                format_args!("/workflow_run/{}", e.workflow_run.id),
            ),
            GithubEvent::Installation(e) => {
                Some(format!("github:installation/{}", e.installation.id))
            }
            GithubEvent::InstallationRepositories(e) => {
                Some(format!("github:installation/{}", e.installation.id))
            }
            GithubEvent::Ping(e) => Some(format!("github:hook/{}", e.hook_id)),
            GithubEvent::Untyped(e) => e
                .payload
                .pointer("/repository/full_name")
                .and_then(serde_json::Value::as_str)
                .map(|full_name| format!("github:{full_name}")),
        }
    }

    /// The provider's own timestamp of the object's state, for recognising stale events later:
    /// issue, pull request and comment `updated_at`, review `submitted_at`, push head commit
    /// `timestamp`, check run `completed_at` (else `started_at`), check suite and workflow run
    /// `updated_at`, release `published_at` (else `created_at`); None otherwise.
    pub fn updated_at(&self) -> Option<OffsetDateTime> {
        match self {
            GithubEvent::Issues(e) => e.issue.updated_at,
            GithubEvent::IssueComment(e) => e.comment.updated_at,
            GithubEvent::PullRequest(e) => e.pull_request.updated_at,
            GithubEvent::PullRequestReview(e) => e.review.submitted_at,
            GithubEvent::PullRequestReviewComment(e) => e.comment.updated_at,
            GithubEvent::Push(e) => e.head_commit.as_ref().and_then(|c| c.timestamp),
            GithubEvent::CheckRun(e) => e.check_run.completed_at.or(e.check_run.started_at),
            GithubEvent::CheckSuite(e) => e.check_suite.updated_at,
            GithubEvent::WorkflowRun(e) => e.workflow_run.updated_at,
            GithubEvent::Release(e) => e.release.published_at.or(e.release.created_at),
            GithubEvent::Create(_)
            | GithubEvent::Delete(_)
            | GithubEvent::Label(_)
            | GithubEvent::Installation(_)
            | GithubEvent::InstallationRepositories(_)
            | GithubEvent::Ping(_)
            | GithubEvent::Untyped(_) => None,
        }
    }
}

/// The prefix that makes a full ref from the short name of a `create`/`delete` event.
fn ref_prefix(ref_type: &RefType) -> &'static str {
    match ref_type {
        RefType::Branch => "refs/heads/",
        RefType::Tag => "refs/tags/",
        RefType::Other(_) => "",
    }
}
