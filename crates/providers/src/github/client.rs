//! A typed client for the parts of GitHub's REST API the sync rules use: issues, pull
//! requests, issue comments, labels, commit statuses and repository webhooks, with the
//! desired-state helpers rules need ([`GithubClient::upsert_own_comment`],
//! [`GithubClient::set_owned_labels`]) and reads that wait out GitHub's replication lag right
//! after a webhook ([`GithubClient::get_issue_fresh`]).
//!
//! Every request carries `Accept: application/vnd.github+json` and
//! `X-GitHub-Api-Version: 2022-11-28`, as the REST reference recommends. Retries, the mapping
//! of error statuses to [`ApiError`], rate limits and `Link` pagination come from
//! [`crate::api`]. Endpoint shapes follow <https://docs.github.com/en/rest> (linked on each
//! method).
//!
//! ```no_run
//! # async fn demo() -> Result<(), hookbridge_providers::api::ApiError> {
//! use futures_util::TryStreamExt;
//! use hookbridge_core::Secret;
//! use hookbridge_providers::github::client::*;
//!
//! let settings = GithubClientSettings::new(GithubCredentials::Token(Secret::new("ghp_...")));
//! let github = GithubClient::from_settings(&settings)?;
//! let repo: Repo = "octo-org/octo-repo".parse()?;
//! let issue = github.get_issue_fresh(&repo, 12, std::time::Duration::from_secs(10)).await?;
//! github
//!     .upsert_own_comment(&repo, issue.number, "jira-link", "Tracked in PROJ-7")
//!     .await?;
//! github
//!     .set_owned_labels(&repo, issue.number, &OwnedLabels::prefix("jira:"), &["jira:In Progress"])
//!     .await?;
//! let open: Vec<PullRequest> = github
//!     .list_pull_requests(&repo, &PullFilter::default())
//!     .try_collect()
//!     .await?;
//! # let _ = open; Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::{Stream, TryStreamExt};
use hookbridge_core::Secret;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use super::auth::{GithubApp, GithubAppAuth};
pub use super::events::{GitRef, Hook, Label, User};
use crate::api::{ApiClient, ApiClientBuilder, ApiError, Auth, Call, PageInfo, RetryPolicy};
use crate::common::null_as_default;

/// github.com's REST API.
pub const DEFAULT_BASE_URL: &str = "https://api.github.com";

/// The REST API version every request asks for (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";

const SERVICE: &str = "github";

/// The largest page GitHub serves (`per_page`, max 100).
const PER_PAGE: u32 = 100;

/// First wait of [`GithubClient::get_issue_fresh`] after a 404; doubles up to
/// [`FRESH_MAX_DELAY`].
const FRESH_FIRST_DELAY: Duration = Duration::from_millis(200);
const FRESH_MAX_DELAY: Duration = Duration::from_secs(2);

/// The REST API root of a GitHub Enterprise Server host: `https://HOST/api/v3`.
pub fn enterprise_base_url(host: &str) -> String {
    format!("https://{}/api/v3", host.trim_end_matches('/'))
}

/// An [`ApiClient`] builder for GitHub's REST API at `base_url`, with GitHub's `Accept` and
/// `X-GitHub-Api-Version` headers. Add credentials with `.auth(..)`: [`Auth::Bearer`] for a
/// personal access token, [`GithubAppAuth`] for an app installation, [`GithubApp`] for the
/// app-level endpoints.
pub fn api_builder(base_url: &str) -> Result<ApiClientBuilder, ApiError> {
    ApiClient::builder(SERVICE, base_url)?
        .header("accept", "application/vnd.github+json")?
        .header("x-github-api-version", API_VERSION)
}

fn config_error(message: impl Into<String>) -> ApiError {
    ApiError::Config {
        service: SERVICE,
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

/// A name that is not a valid GitHub owner or repository name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid GitHub repository {0:?}: expected owner/name of letters, digits, '-', '_', '.'")]
pub struct InvalidRepo(pub String);

impl From<InvalidRepo> for ApiError {
    fn from(error: InvalidRepo) -> Self {
        config_error(error.to_string())
    }
}

/// A repository, `owner/name`. Both parts are checked when built, so they are safe in a URL
/// path (GitHub allows letters, digits, `-`, `_` and `.` in them).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Repo {
    owner: String,
    name: String,
}

impl Repo {
    /// The repository `name` of `owner`.
    pub fn new(owner: impl Into<String>, name: impl Into<String>) -> Result<Self, InvalidRepo> {
        let (owner, name) = (owner.into(), name.into());
        let valid = |part: &str| {
            !part.is_empty()
                && part.len() <= 100
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        if valid(&owner) && valid(&name) {
            Ok(Self { owner, name })
        } else {
            Err(InvalidRepo(format!("{owner}/{name}")))
        }
    }

    /// The owning user or organization.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The repository's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn path(&self, rest: &str) -> String {
        format!("repos/{}/{}/{rest}", self.owner, self.name)
    }
}

impl FromStr for Repo {
    type Err = InvalidRepo;

    /// Parses `owner/name` (a repository's `full_name`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (owner, name) = s.split_once('/').ok_or_else(|| InvalidRepo(s.to_owned()))?;
        Self::new(owner, name)
    }
}

impl fmt::Display for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// Percent-encodes `value` as one URL path segment (everything but RFC 3986 unreserved
/// characters), refusing `.` and `..`, which a URL parser would resolve as dot segments. (`%`
/// is encoded too, so an encoded dot in the value stays literal.)
fn segment(value: &str) -> Result<String, ApiError> {
    if value.is_empty() || value == "." || value == ".." {
        return Err(config_error(format!(
            "{value:?} cannot be used as a URL path segment"
        )));
    }
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Response types
// ---------------------------------------------------------------------------------------------

string_enum! {
    /// The state of an issue or pull request.
    IssueState {
        Open => "open",
        Closed => "closed",
    }
}

string_enum! {
    /// Why an issue is in its state
    /// ([Update an issue](https://docs.github.com/en/rest/issues/issues#update-an-issue)).
    StateReason {
        Completed => "completed",
        NotPlanned => "not_planned",
        Reopened => "reopened",
    }
}

string_enum! {
    /// Which pull requests to list by state.
    PullState {
        Open => "open",
        Closed => "closed",
        All => "all",
    }
}

string_enum! {
    /// What to sort listed pull requests by.
    PullSort {
        Created => "created",
        Updated => "updated",
        Popularity => "popularity",
        LongRunning => "long-running",
    }
}

string_enum! {
    /// A sort direction.
    SortDirection {
        Asc => "asc",
        Desc => "desc",
    }
}

string_enum! {
    /// The state of a commit status.
    StatusState {
        Error => "error",
        Failure => "failure",
        Pending => "pending",
        Success => "success",
    }
}

/// GitHub documents an issue's labels as label objects or bare names; both are read.
fn labels<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Label>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum LabelOrName {
        Label(Label),
        Name(String),
    }
    let items: Option<Vec<LabelOrName>> = Option::deserialize(deserializer)?;
    Ok(items
        .unwrap_or_default()
        .into_iter()
        .map(|item| match item {
            LabelOrName::Label(label) => label,
            LabelOrName::Name(name) => Label {
                id: None,
                name,
                color: None,
                description: None,
            },
        })
        .collect())
}

/// An issue ([Get an issue](https://docs.github.com/en/rest/issues/issues#get-an-issue)).
/// Pull requests are issues too: their issue has `pull_request` set.
#[derive(Clone, Debug, Deserialize, Serialize)]
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
    pub state: IssueState,
    /// Why the issue is closed or was reopened.
    #[serde(default)]
    pub state_reason: Option<StateReason>,
    /// The issue's page.
    pub html_url: String,
    /// The author (GitHub documents it as nullable).
    #[serde(default)]
    pub user: Option<User>,
    /// The labels.
    #[serde(default, deserialize_with = "labels")]
    pub labels: Vec<Label>,
    /// The assignees.
    #[serde(default, deserialize_with = "null_as_default")]
    pub assignees: Vec<User>,
    /// When the issue was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When the issue was last updated.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    /// When the issue was closed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    /// Set when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

impl Issue {
    /// Whether the issue is the issue side of a pull request.
    pub fn is_pull_request(&self) -> bool {
        self.pull_request.as_ref().is_some_and(|v| !v.is_null())
    }
}

/// A pull request ([Get a pull request](https://docs.github.com/en/rest/pulls/pulls#get-a-pull-request);
/// listings return the shorter form, without `merged`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PullRequest {
    /// The pull request's numeric id.
    pub id: u64,
    /// The pull request's number in its repository.
    pub number: u64,
    /// The title.
    pub title: String,
    /// The body, in Markdown.
    #[serde(default)]
    pub body: Option<String>,
    /// `open` or `closed` (a merged pull request is closed, with `merged_at` set).
    pub state: IssueState,
    /// Whether it is a draft.
    #[serde(default)]
    pub draft: bool,
    /// Whether it was merged (only in the single pull request answer).
    #[serde(default)]
    pub merged: Option<bool>,
    /// When it was merged.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub merged_at: Option<OffsetDateTime>,
    /// The merge commit, or the test merge commit while open.
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    /// The pull request's page.
    pub html_url: String,
    /// The author (nullable in listings).
    #[serde(default)]
    pub user: Option<User>,
    /// The labels.
    #[serde(default, deserialize_with = "labels")]
    pub labels: Vec<Label>,
    /// The assignees.
    #[serde(default, deserialize_with = "null_as_default")]
    pub assignees: Vec<User>,
    /// The branch with the changes.
    pub head: GitRef,
    /// The branch the changes go into.
    pub base: GitRef,
    /// When it was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When it was last updated.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    /// When it was closed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
}

impl PullRequest {
    /// Whether it was merged, from `merged` or, in listings, `merged_at`.
    pub fn is_merged(&self) -> bool {
        self.merged.unwrap_or(self.merged_at.is_some())
    }
}

/// A comment on an issue or pull request conversation
/// ([Issue comments](https://docs.github.com/en/rest/issues/comments)).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct IssueComment {
    /// The comment's numeric id.
    pub id: u64,
    /// The comment's anchor.
    pub html_url: String,
    /// The body, in Markdown.
    #[serde(default)]
    pub body: Option<String>,
    /// The author (nullable).
    #[serde(default)]
    pub user: Option<User>,
    /// The author's relation to the repository (`OWNER`, `MEMBER`, `NONE`, ...).
    #[serde(default)]
    pub author_association: Option<String>,
    /// When it was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When it was last updated.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

/// A commit status ([Create a commit status](https://docs.github.com/en/rest/commits/statuses#create-a-commit-status)).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct CommitStatus {
    /// The status's numeric id.
    pub id: u64,
    /// Its state.
    pub state: StatusState,
    /// Its short description.
    #[serde(default)]
    pub description: Option<String>,
    /// The link shown with it.
    #[serde(default)]
    pub target_url: Option<String>,
    /// The label telling it from other systems' statuses (`default` when none was given).
    #[serde(default)]
    pub context: Option<String>,
    /// Who created it.
    #[serde(default)]
    pub creator: Option<User>,
    /// When it was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When it was last updated.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

// ---------------------------------------------------------------------------------------------
// Request types
// ---------------------------------------------------------------------------------------------

/// A new issue ([Create an issue](https://docs.github.com/en/rest/issues/issues#create-an-issue)).
#[derive(Clone, Debug, Default, Serialize)]
pub struct NewIssue {
    /// The title (required).
    pub title: String,
    /// The body, in Markdown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Label names (applied only with push access; GitHub silently drops them otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Logins to assign.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assignees: Vec<String>,
}

impl NewIssue {
    /// An issue titled `title`.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            ..Self::default()
        }
    }

    /// With this body.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }
}

/// Changes to an issue ([Update an issue](https://docs.github.com/en/rest/issues/issues#update-an-issue));
/// unset fields are left as they are.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IssueUpdate {
    /// A new title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A new body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A new state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<IssueState>,
    /// Why; GitHub ignores it unless `state` changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<StateReason>,
}

impl IssueUpdate {
    /// Sets the title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Closes the issue for `reason` (`completed` or `not_planned`).
    pub fn close(mut self, reason: StateReason) -> Self {
        self.state = Some(IssueState::Closed);
        self.state_reason = Some(reason);
        self
    }

    /// Reopens the issue (state reason `reopened`).
    pub fn reopen(mut self) -> Self {
        self.state = Some(IssueState::Open);
        self.state_reason = Some(StateReason::Reopened);
        self
    }
}

/// Which pull requests [`GithubClient::list_pull_requests`] lists
/// ([List pull requests](https://docs.github.com/en/rest/pulls/pulls#list-pull-requests)).
#[derive(Clone, Debug)]
pub struct PullFilter {
    /// By state (default: open).
    pub state: PullState,
    /// Only those into this base branch.
    pub base: Option<String>,
    /// The order (GitHub's default: `created`).
    pub sort: Option<PullSort>,
    /// The direction (GitHub's default: `desc` for `created`, `asc` otherwise).
    pub direction: Option<SortDirection>,
}

impl Default for PullFilter {
    fn default() -> Self {
        Self::state(PullState::Open)
    }
}

impl PullFilter {
    /// The pull requests in `state`, in GitHub's default order.
    pub fn state(state: PullState) -> Self {
        Self {
            state,
            base: None,
            sort: None,
            direction: None,
        }
    }

    /// Most recently updated first: what a rescan wants.
    pub fn recently_updated(mut self) -> Self {
        self.sort = Some(PullSort::Updated);
        self.direction = Some(SortDirection::Desc);
        self
    }
}

/// A new commit status ([Create a commit status](https://docs.github.com/en/rest/commits/statuses#create-a-commit-status)).
#[derive(Clone, Debug, Serialize)]
pub struct NewStatus {
    /// The state.
    pub state: StatusState,
    /// A link shown with the status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
    /// A short description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The label that tells this status from other systems' (GitHub's default: `default`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

string_enum! {
    /// How GitHub encodes webhook payloads.
    HookContentType {
        Json => "json",
        Form => "form",
    }
}

/// Where and how a repository webhook delivers
/// ([Create a repository webhook](https://docs.github.com/en/rest/repos/webhooks#create-a-repository-webhook)).
#[derive(Clone, Debug)]
pub struct HookConfigInput {
    /// The payload URL.
    pub url: String,
    /// The payload encoding (hookbridge reads both; `json` is simpler).
    pub content_type: HookContentType,
    /// The HMAC secret GitHub signs deliveries with.
    pub secret: Option<Secret>,
    /// Skip TLS verification of `url` (strongly discouraged; GitHub sends `"1"`/`"0"`).
    pub insecure_ssl: bool,
}

impl HookConfigInput {
    /// JSON deliveries to `url`, signed with `secret`, TLS verified.
    pub fn new(url: impl Into<String>, secret: Secret) -> Self {
        Self {
            url: url.into(),
            content_type: HookContentType::Json,
            secret: Some(secret),
            insecure_ssl: false,
        }
    }
}

impl Serialize for HookConfigInput {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("url", &self.url)?;
        map.serialize_entry("content_type", &self.content_type)?;
        if let Some(secret) = &self.secret {
            // The only place the secret leaves: the request body GitHub stores it from.
            map.serialize_entry("secret", &String::from_utf8_lossy(secret.expose()))?;
        }
        map.serialize_entry("insecure_ssl", if self.insecure_ssl { "1" } else { "0" })?;
        map.end()
    }
}

/// A new repository webhook; GitHub's `name` is always `web`.
#[derive(Clone, Debug)]
pub struct NewHook {
    /// Where and how to deliver.
    pub config: HookConfigInput,
    /// The events (`*` for all; GitHub's default is `push`).
    pub events: Vec<String>,
    /// Whether deliveries are sent.
    pub active: bool,
}

impl Serialize for NewHook {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("name", "web")?;
        map.serialize_entry("config", &self.config)?;
        map.serialize_entry("events", &self.events)?;
        map.serialize_entry("active", &self.active)?;
        map.end()
    }
}

/// Changes to a repository webhook
/// ([Update a repository webhook](https://docs.github.com/en/rest/repos/webhooks#update-a-repository-webhook)).
/// A `config` replaces the whole configuration: give the secret again, or GitHub removes it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HookUpdate {
    /// A new configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<HookConfigInput>,
    /// Replaces the events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// Events to add.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_events: Vec<String>,
    /// Events to remove.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove_events: Vec<String>,
    /// Turns deliveries on or off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Desired-state helpers
// ---------------------------------------------------------------------------------------------

/// Which labels the bot owns and may remove: the others are never touched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedLabels {
    /// Labels whose name starts with this prefix (ASCII case-insensitively), e.g. `jira:`.
    Prefix(String),
    /// Exactly these labels (case-insensitively, as GitHub compares label names).
    Names(Vec<String>),
}

impl OwnedLabels {
    /// Labels starting with `prefix`.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        Self::Prefix(prefix.into())
    }

    /// Whether the bot owns label `name`.
    pub fn owns(&self, name: &str) -> bool {
        match self {
            Self::Prefix(prefix) => name
                .get(..prefix.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(prefix)),
            Self::Names(names) => names.iter().any(|n| n.eq_ignore_ascii_case(name)),
        }
    }
}

/// The label changes that bring an issue to its desired owned labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelChanges {
    /// Labels added.
    pub added: Vec<String>,
    /// Owned labels removed.
    pub removed: Vec<String>,
}

impl LabelChanges {
    /// What to add and remove so that the owned labels among `current` become exactly
    /// `desired` (every one of which must be owned), leaving the others alone. Names compare
    /// case-insensitively, as GitHub does.
    pub fn plan<C: AsRef<str>, D: AsRef<str>>(
        current: &[C],
        owned: &OwnedLabels,
        desired: &[D],
    ) -> Result<Self, ApiError> {
        if let Some(stray) = desired.iter().find(|d| !owned.owns(d.as_ref())) {
            return Err(config_error(format!(
                "label {:?} is not owned by the bot ({owned:?}): it could never be removed again",
                stray.as_ref()
            )));
        }
        let has = |set: &[C], name: &str| set.iter().any(|c| c.as_ref().eq_ignore_ascii_case(name));
        let mut added: Vec<String> = Vec::new();
        for want in desired {
            let want = want.as_ref();
            if !has(current, want) && !added.iter().any(|a| a.eq_ignore_ascii_case(want)) {
                added.push(want.to_owned());
            }
        }
        let removed = current
            .iter()
            .map(AsRef::as_ref)
            .filter(|name| owned.owns(name))
            .filter(|name| {
                !desired
                    .iter()
                    .any(|d| d.as_ref().eq_ignore_ascii_case(name))
            })
            .map(str::to_owned)
            .collect();
        Ok(Self { added, removed })
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// What [`GithubClient::upsert_own_comment`] did.
#[derive(Clone, Debug)]
pub enum CommentUpsert {
    /// No comment of ours had the marker: one was created.
    Created(IssueComment),
    /// Our comment with the marker had another text: it was edited.
    Updated(IssueComment),
    /// Our comment with the marker already said this: nothing was written.
    Unchanged(IssueComment),
}

impl CommentUpsert {
    /// The comment as it now is.
    pub fn comment(&self) -> &IssueComment {
        match self {
            Self::Created(c) | Self::Updated(c) | Self::Unchanged(c) => c,
        }
    }
}

/// The hidden HTML comment that marks a comment as ours: `<!-- hookbridge:<marker> -->`.
pub fn comment_marker(marker: &str) -> Result<String, ApiError> {
    let valid = !marker.is_empty()
        && marker.len() <= 100
        && marker.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'#')
        });
    if !valid {
        return Err(config_error(format!(
            "comment marker {marker:?} must be 1 to 100 letters, digits or -_.:/#"
        )));
    }
    Ok(format!("<!-- hookbridge:{marker} -->"))
}

/// Compares comment bodies as GitHub may store them (line endings, trailing whitespace).
fn same_text(a: &str, b: &str) -> bool {
    a.replace("\r\n", "\n").trim_end() == b.replace("\r\n", "\n").trim_end()
}

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// How the client authenticates.
#[derive(Clone, Debug)]
pub enum GithubCredentials {
    /// A personal access token (classic or fine-grained) or OAuth token, sent as
    /// `Authorization: Bearer`.
    Token(Secret),
    /// A GitHub App installation: tokens are fetched and refreshed with the app's JWT.
    App {
        /// The app's client ID (recommended by GitHub) or numeric app ID.
        app_id: String,
        /// The app's private key, PEM.
        private_key_pem: Secret,
        /// The installation to act as (the `installation.id` of the webhooks).
        installation_id: u64,
    },
}

/// What [`GithubClient::from_settings`] needs: what a server reads from its configuration.
#[derive(Clone, Debug)]
pub struct GithubClientSettings {
    /// The API root: [`DEFAULT_BASE_URL`], [`enterprise_base_url`] or a test server.
    pub base_url: String,
    /// The credentials.
    pub credentials: GithubCredentials,
    /// The login the bot writes as (`my-bot[bot]` for an app), to recognise its own comments;
    /// looked up with `GET /app` or `GET /user` when unset.
    pub bot_login: Option<String>,
    /// The client's own retries.
    pub retry: RetryPolicy,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl GithubClientSettings {
    /// github.com with these credentials and the default retries and 30 s timeout.
    pub fn new(credentials: GithubCredentials) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            credentials,
            bot_login: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

/// GitHub's REST API. Cheap to clone; clones share connections, tokens and the bot login.
#[derive(Clone, Debug)]
pub struct GithubClient {
    api: ApiClient,
    /// Set when authenticated as an app installation: names the bot account.
    app: Option<Arc<GithubAppAuth>>,
    bot_login: Arc<OnceLock<String>>,
}

impl GithubClient {
    /// A client over `api`, which should come from [`api_builder`] (GitHub's headers) with
    /// credentials.
    pub fn new(api: ApiClient) -> Self {
        Self {
            api,
            app: None,
            bot_login: Arc::new(OnceLock::new()),
        }
    }

    /// A client from configuration: base URL, token or app credentials, retries, timeout.
    pub fn from_settings(settings: &GithubClientSettings) -> Result<Self, ApiError> {
        let builder = api_builder(&settings.base_url)?
            .retry(settings.retry)
            .timeout(settings.timeout);
        let client = match &settings.credentials {
            GithubCredentials::Token(token) => {
                Self::new(builder.auth(Auth::Bearer(token.clone())).build()?)
            }
            GithubCredentials::App {
                app_id,
                private_key_pem,
                installation_id,
            } => {
                let app = GithubApp::new(app_id.clone(), private_key_pem)?;
                let app_api = api_builder(&settings.base_url)?
                    .retry(settings.retry)
                    .timeout(settings.timeout)
                    .auth(app.clone())
                    .build()?;
                let auth = Arc::new(GithubAppAuth::with_api(app, *installation_id, app_api));
                Self::new(builder.auth_arc(auth.clone()).build()?).with_app(auth)
            }
        };
        Ok(match &settings.bot_login {
            Some(login) => client.with_bot_login(login.clone()),
            None => client,
        })
    }

    /// Names the login the bot writes as, so [`GithubClient::upsert_own_comment`] needs no
    /// lookup.
    pub fn with_bot_login(self, login: impl Into<String>) -> Self {
        let bot_login = OnceLock::new();
        let _ = bot_login.set(login.into());
        Self {
            bot_login: Arc::new(bot_login),
            ..self
        }
    }

    /// Tells the client it acts as this app installation (the same one its `ApiClient`
    /// authenticates with), so the bot login can be looked up with `GET /app`.
    pub fn with_app(mut self, app: Arc<GithubAppAuth>) -> Self {
        self.app = Some(app);
        self
    }

    /// The underlying API client, for endpoints this client does not cover.
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// The login the bot writes as: the configured one, else `<slug>[bot]` from `GET /app`
    /// for an app installation, else the token owner's from `GET /user`
    /// ([Get the authenticated user](https://docs.github.com/en/rest/users/users#get-the-authenticated-user)).
    /// Looked up once per client.
    pub async fn bot_login(&self) -> Result<String, ApiError> {
        if let Some(login) = self.bot_login.get() {
            return Ok(login.clone());
        }
        let login = match &self.app {
            Some(app) => app.app_info().await?.bot_login().ok_or(ApiError::Decode {
                service: SERVICE,
                message: "GET /app returned no slug".into(),
            })?,
            None => self.api.get_json::<User>("user").await?.login,
        };
        // Two concurrent lookups find the same login; the first one stored wins.
        Ok(self.bot_login.get_or_init(|| login).clone())
    }

    fn pages<T: DeserializeOwned + Send + 'static>(
        &self,
        first: Call,
    ) -> impl Stream<Item = Result<T, ApiError>> + Send + 'static {
        self.api.paginate(
            first.query("per_page", PER_PAGE),
            |page: Vec<T>, info: PageInfo| {
                // The `next` link carries every query parameter of the listing.
                Ok((page, info.link_next.map(|url| Call::new(Method::GET, url))))
            },
        )
    }

    // ----- issues --------------------------------------------------------------------------

    /// `GET /repos/{owner}/{repo}/issues/{issue_number}`
    /// ([Get an issue](https://docs.github.com/en/rest/issues/issues#get-an-issue)).
    pub async fn get_issue(&self, repo: &Repo, number: u64) -> Result<Issue, ApiError> {
        self.api
            .get_json(&repo.path(&format!("issues/{number}")))
            .await
    }

    /// [`GithubClient::get_issue`], retrying 404s for up to `window`: GitHub can send a
    /// webhook before the object it describes is readable through the API. After the window
    /// the 404 is returned.
    pub async fn get_issue_fresh(
        &self,
        repo: &Repo,
        number: u64,
        window: Duration,
    ) -> Result<Issue, ApiError> {
        retry_not_found(window, || self.get_issue(repo, number)).await
    }

    /// `POST /repos/{owner}/{repo}/issues`
    /// ([Create an issue](https://docs.github.com/en/rest/issues/issues#create-an-issue)).
    pub async fn create_issue(&self, repo: &Repo, issue: &NewIssue) -> Result<Issue, ApiError> {
        self.api
            .send_json(Call::new(Method::POST, repo.path("issues")).json(issue)?)
            .await
    }

    /// `PATCH /repos/{owner}/{repo}/issues/{issue_number}`
    /// ([Update an issue](https://docs.github.com/en/rest/issues/issues#update-an-issue)).
    pub async fn update_issue(
        &self,
        repo: &Repo,
        number: u64,
        update: &IssueUpdate,
    ) -> Result<Issue, ApiError> {
        let call = Call::new(Method::PATCH, repo.path(&format!("issues/{number}"))).json(update)?;
        self.api.send_json(call).await
    }

    // ----- pull requests -------------------------------------------------------------------

    /// `GET /repos/{owner}/{repo}/pulls/{pull_number}`
    /// ([Get a pull request](https://docs.github.com/en/rest/pulls/pulls#get-a-pull-request)).
    pub async fn get_pull_request(
        &self,
        repo: &Repo,
        number: u64,
    ) -> Result<PullRequest, ApiError> {
        self.api
            .get_json(&repo.path(&format!("pulls/{number}")))
            .await
    }

    /// [`GithubClient::get_pull_request`], retrying 404s for up to `window`.
    pub async fn get_pull_request_fresh(
        &self,
        repo: &Repo,
        number: u64,
        window: Duration,
    ) -> Result<PullRequest, ApiError> {
        retry_not_found(window, || self.get_pull_request(repo, number)).await
    }

    /// `GET /repos/{owner}/{repo}/pulls?state=..`, every page
    /// ([List pull requests](https://docs.github.com/en/rest/pulls/pulls#list-pull-requests)).
    pub fn list_pull_requests(
        &self,
        repo: &Repo,
        filter: &PullFilter,
    ) -> impl Stream<Item = Result<PullRequest, ApiError>> + Send + 'static {
        let mut call = Call::new(Method::GET, repo.path("pulls")).query("state", &filter.state);
        if let Some(base) = &filter.base {
            call = call.query("base", base);
        }
        if let Some(sort) = &filter.sort {
            call = call.query("sort", sort);
        }
        if let Some(direction) = &filter.direction {
            call = call.query("direction", direction);
        }
        self.pages(call)
    }

    // ----- comments ------------------------------------------------------------------------

    /// `GET /repos/{owner}/{repo}/issues/{issue_number}/comments`, every page, oldest first
    /// ([List issue comments](https://docs.github.com/en/rest/issues/comments#list-issue-comments)).
    pub fn list_comments(
        &self,
        repo: &Repo,
        number: u64,
    ) -> impl Stream<Item = Result<IssueComment, ApiError>> + Send + 'static {
        self.pages(Call::new(
            Method::GET,
            repo.path(&format!("issues/{number}/comments")),
        ))
    }

    /// `POST /repos/{owner}/{repo}/issues/{issue_number}/comments`
    /// ([Create an issue comment](https://docs.github.com/en/rest/issues/comments#create-an-issue-comment)).
    pub async fn create_comment(
        &self,
        repo: &Repo,
        number: u64,
        body: &str,
    ) -> Result<IssueComment, ApiError> {
        let call = Call::new(
            Method::POST,
            repo.path(&format!("issues/{number}/comments")),
        )
        .json(&serde_json::json!({ "body": body }))?;
        self.api.send_json(call).await
    }

    /// `PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}`
    /// ([Update an issue comment](https://docs.github.com/en/rest/issues/comments#update-an-issue-comment)).
    pub async fn edit_comment(
        &self,
        repo: &Repo,
        comment_id: u64,
        body: &str,
    ) -> Result<IssueComment, ApiError> {
        let call = Call::new(
            Method::PATCH,
            repo.path(&format!("issues/comments/{comment_id}")),
        )
        .json(&serde_json::json!({ "body": body }))?;
        self.api.send_json(call).await
    }

    /// Keeps one comment of the bot's on an issue or pull request saying `body`: finds the
    /// bot's comment carrying [`comment_marker`]`(marker)` (listing the comments), edits it
    /// if its text differs, or creates it. The marker, a hidden HTML comment, is put on the
    /// first line. Comments by anyone else are never edited, even if they carry the marker.
    pub async fn upsert_own_comment(
        &self,
        repo: &Repo,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<CommentUpsert, ApiError> {
        let tag = comment_marker(marker)?;
        let text = format!("{tag}\n{body}");
        let me = self.bot_login().await?;
        let comments = self.list_comments(repo, number);
        let mut comments = std::pin::pin!(comments);
        let mut ours = None;
        while let Some(comment) = comments.try_next().await? {
            let by_us = comment
                .user
                .as_ref()
                .is_some_and(|user| user.login.eq_ignore_ascii_case(&me));
            if by_us && comment.body.as_deref().is_some_and(|b| b.contains(&tag)) {
                ours = Some(comment);
                break;
            }
        }
        Ok(match ours {
            Some(comment) if comment.body.as_deref().is_some_and(|b| same_text(b, &text)) => {
                CommentUpsert::Unchanged(comment)
            }
            Some(comment) => {
                CommentUpsert::Updated(self.edit_comment(repo, comment.id, &text).await?)
            }
            None => CommentUpsert::Created(self.create_comment(repo, number, &text).await?),
        })
    }

    // ----- labels --------------------------------------------------------------------------

    /// `GET /repos/{owner}/{repo}/issues/{issue_number}/labels`, every page
    /// ([List labels for an issue](https://docs.github.com/en/rest/issues/labels#list-labels-for-an-issue)).
    pub fn list_labels(
        &self,
        repo: &Repo,
        number: u64,
    ) -> impl Stream<Item = Result<Label, ApiError>> + Send + 'static {
        self.pages(Call::new(
            Method::GET,
            repo.path(&format!("issues/{number}/labels")),
        ))
    }

    /// `POST /repos/{owner}/{repo}/issues/{issue_number}/labels` with `{"labels": [..]}`;
    /// returns every label now on the issue
    /// ([Add labels to an issue](https://docs.github.com/en/rest/issues/labels#add-labels-to-an-issue)).
    /// GitHub would remove every label if given none: an empty `names` only lists them.
    pub async fn add_labels<S: AsRef<str>>(
        &self,
        repo: &Repo,
        number: u64,
        names: &[S],
    ) -> Result<Vec<Label>, ApiError> {
        if names.is_empty() {
            return self.list_labels(repo, number).try_collect().await;
        }
        let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
        let call = Call::new(Method::POST, repo.path(&format!("issues/{number}/labels")))
            .json(&serde_json::json!({ "labels": names }))?;
        self.api.send_json(call).await
    }

    /// `DELETE /repos/{owner}/{repo}/issues/{issue_number}/labels/{name}`
    /// ([Remove a label from an issue](https://docs.github.com/en/rest/issues/labels#remove-a-label-from-an-issue)).
    /// Returns whether the label was there: GitHub's 404 for an absent label is success.
    pub async fn remove_label(
        &self,
        repo: &Repo,
        number: u64,
        name: &str,
    ) -> Result<bool, ApiError> {
        let path = repo.path(&format!("issues/{number}/labels/{}", segment(name)?));
        match self.api.send(Call::new(Method::DELETE, path)).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Makes the bot's labels on an issue exactly `desired`, preserving every label `owned`
    /// does not cover: lists the labels, then adds what is missing (one call) and removes
    /// owned labels not desired (one call each). Already in the desired state: no write.
    pub async fn set_owned_labels<S: AsRef<str>>(
        &self,
        repo: &Repo,
        number: u64,
        owned: &OwnedLabels,
        desired: &[S],
    ) -> Result<LabelChanges, ApiError> {
        // Checked before any call.
        LabelChanges::plan::<&str, S>(&[], owned, desired)?;
        let current: Vec<Label> = self.list_labels(repo, number).try_collect().await?;
        let names: Vec<&str> = current.iter().map(|l| l.name.as_str()).collect();
        let changes = LabelChanges::plan(&names, owned, desired)?;
        if !changes.added.is_empty() {
            self.add_labels(repo, number, &changes.added).await?;
        }
        for name in &changes.removed {
            self.remove_label(repo, number, name).await?;
        }
        Ok(changes)
    }

    // ----- commit statuses -----------------------------------------------------------------

    /// `POST /repos/{owner}/{repo}/statuses/{sha}`
    /// ([Create a commit status](https://docs.github.com/en/rest/commits/statuses#create-a-commit-status)).
    pub async fn create_status(
        &self,
        repo: &Repo,
        sha: &str,
        status: &NewStatus,
    ) -> Result<CommitStatus, ApiError> {
        let call = Call::new(
            Method::POST,
            repo.path(&format!("statuses/{}", segment(sha)?)),
        )
        .json(status)?;
        self.api.send_json(call).await
    }

    // ----- repository webhooks -------------------------------------------------------------

    /// `GET /repos/{owner}/{repo}/hooks`, every page
    /// ([List repository webhooks](https://docs.github.com/en/rest/repos/webhooks#list-repository-webhooks)).
    pub fn list_hooks(
        &self,
        repo: &Repo,
    ) -> impl Stream<Item = Result<Hook, ApiError>> + Send + 'static {
        self.pages(Call::new(Method::GET, repo.path("hooks")))
    }

    /// `POST /repos/{owner}/{repo}/hooks`
    /// ([Create a repository webhook](https://docs.github.com/en/rest/repos/webhooks#create-a-repository-webhook)).
    pub async fn create_hook(&self, repo: &Repo, hook: &NewHook) -> Result<Hook, ApiError> {
        self.api
            .send_json(Call::new(Method::POST, repo.path("hooks")).json(hook)?)
            .await
    }

    /// `PATCH /repos/{owner}/{repo}/hooks/{hook_id}`
    /// ([Update a repository webhook](https://docs.github.com/en/rest/repos/webhooks#update-a-repository-webhook)).
    pub async fn update_hook(
        &self,
        repo: &Repo,
        hook_id: u64,
        update: &HookUpdate,
    ) -> Result<Hook, ApiError> {
        let call = Call::new(Method::PATCH, repo.path(&format!("hooks/{hook_id}"))).json(update)?;
        self.api.send_json(call).await
    }

    /// `DELETE /repos/{owner}/{repo}/hooks/{hook_id}`
    /// ([Delete a repository webhook](https://docs.github.com/en/rest/repos/webhooks#delete-a-repository-webhook)).
    pub async fn delete_hook(&self, repo: &Repo, hook_id: u64) -> Result<(), ApiError> {
        self.api
            .send(Call::new(
                Method::DELETE,
                repo.path(&format!("hooks/{hook_id}")),
            ))
            .await
            .map(drop)
    }

    // ----- issue listings ------------------------------------------------------------------

    /// `GET /repos/{owner}/{repo}/issues?state=..&sort=updated&direction=desc[&since=..]`,
    /// every page, most recently updated first
    /// ([List repository issues](https://docs.github.com/en/rest/issues/issues#list-repository-issues)).
    /// `since` keeps only issues updated at or after that time. GitHub lists pull requests
    /// here too: tell them apart with [`Issue::is_pull_request`].
    pub fn list_issues(
        &self,
        repo: &Repo,
        state: PullState,
        since: Option<OffsetDateTime>,
    ) -> impl Stream<Item = Result<Issue, ApiError>> + Send + 'static {
        let mut call = Call::new(Method::GET, repo.path("issues"))
            .query("state", &state)
            .query("sort", "updated")
            .query("direction", "desc");
        if let Some(since) = since {
            // GitHub documents `YYYY-MM-DDTHH:MM:SSZ`: whole seconds, in UTC.
            let since = since.to_offset(time::UtcOffset::UTC);
            let text = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                since.year(),
                u8::from(since.month()),
                since.day(),
                since.hour(),
                since.minute(),
                since.second()
            );
            call = call.query("since", text);
        }
        self.pages(call)
    }

    // ----- review requests -------------------------------------------------------------------

    /// `GET /repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers`: the users whose
    /// review is requested (teams left out: they cannot be assigned anything)
    /// ([Get all requested reviewers](https://docs.github.com/en/rest/pulls/review-requests#get-all-requested-reviewers-for-a-pull-request)).
    pub async fn requested_reviewers(
        &self,
        repo: &Repo,
        number: u64,
    ) -> Result<Vec<User>, ApiError> {
        #[derive(Deserialize)]
        struct Requested {
            #[serde(default)]
            users: Vec<User>,
        }
        let requested: Requested = self
            .api
            .get_json(&repo.path(&format!("pulls/{number}/requested_reviewers")))
            .await?;
        Ok(requested.users)
    }

    // ----- webhook delivery logs (gap healing) ----------------------------------------------

    /// `GET /orgs/{org}/hooks`, every page
    /// ([List organization webhooks](https://docs.github.com/en/rest/orgs/webhooks#list-organization-webhooks)).
    /// Needs an organization owner's token (`admin:org_hook`) or an app's "Webhooks"
    /// organization permission.
    pub fn list_org_hooks(
        &self,
        org: &str,
    ) -> impl Stream<Item = Result<Hook, ApiError>> + Send + 'static {
        match segment(org) {
            Ok(org) => futures_util::future::Either::Right(
                self.pages(Call::new(Method::GET, format!("orgs/{org}/hooks"))),
            ),
            Err(error) => futures_util::future::Either::Left(futures_util::stream::once(
                async move { Err(error) },
            )),
        }
    }

    /// The delivery log of a webhook, newest first, every page (GitHub keeps 3 days of it,
    /// 7 on GitHub Enterprise Server): `GET .../deliveries?per_page=100`, then the `Link`
    /// header's `cursor` pages
    /// ([repository](https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook),
    /// [organization](https://docs.github.com/en/rest/orgs/webhooks#list-deliveries-for-an-organization-webhook),
    /// [app](https://docs.github.com/en/rest/apps/webhooks#list-deliveries-for-an-app-webhook)).
    /// The stream is lazy: pages are fetched as it is read, so a reader that stops at the
    /// deliveries it already knows spends no more calls. An app's log needs a client from
    /// [`GithubClient::as_app`].
    pub fn list_hook_deliveries(
        &self,
        hook: &HookRef,
    ) -> impl Stream<Item = Result<HookDelivery, ApiError>> + Send + 'static {
        match hook.path("deliveries") {
            Ok(path) => {
                futures_util::future::Either::Right(self.pages(Call::new(Method::GET, path)))
            }
            Err(error) => futures_util::future::Either::Left(futures_util::stream::once(
                async move { Err(error) },
            )),
        }
    }

    /// Asks GitHub to send a logged delivery again (same `X-GitHub-Delivery` GUID, signed
    /// with the hook's current secret): `POST .../deliveries/{delivery_id}/attempts`, which
    /// GitHub answers `202 Accepted` before it sends
    /// ([repository](https://docs.github.com/en/rest/repos/webhooks#redeliver-a-delivery-for-a-repository-webhook),
    /// [organization](https://docs.github.com/en/rest/orgs/webhooks#redeliver-a-delivery-for-an-organization-webhook),
    /// [app](https://docs.github.com/en/rest/apps/webhooks#redeliver-a-delivery-for-an-app-webhook)).
    /// Like every `POST`, it is not repeated after a 5xx or a timeout (GitHub may have
    /// queued it); a 429 is.
    pub async fn redeliver_hook_delivery(
        &self,
        hook: &HookRef,
        delivery_id: u64,
    ) -> Result<(), ApiError> {
        let path = hook.path(&format!("deliveries/{delivery_id}/attempts"))?;
        self.api.send(Call::new(Method::POST, path)).await.map(drop)
    }

    /// A client authenticated as the GitHub App itself (a JWT signed with its key), for the
    /// app-level endpoints such as [`HookRef::App`]'s delivery log. Only for a client built
    /// with app credentials ([`GithubCredentials::App`]).
    pub fn as_app(&self) -> Result<GithubClient, ApiError> {
        let app = self.app.as_ref().ok_or_else(|| {
            config_error("the app's webhook needs GitHub App credentials (app_id, private_key)")
        })?;
        let api = api_builder(self.api.base_url().as_str())?
            .auth(app.app().clone())
            .build()?;
        Ok(GithubClient::new(api))
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook delivery logs
// ---------------------------------------------------------------------------------------------

/// A webhook whose delivery log can be read: a repository's, an organization's, or the
/// webhook of the GitHub App the client authenticates as.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HookRef {
    /// A repository webhook.
    Repo {
        /// The repository.
        repo: Repo,
        /// The hook's id.
        hook_id: u64,
    },
    /// An organization webhook.
    Org {
        /// The organization's login.
        org: String,
        /// The hook's id.
        hook_id: u64,
    },
    /// The GitHub App's own webhook (use a client from [`GithubClient::as_app`]).
    App,
}

impl HookRef {
    /// The API path of the hook followed by `rest`.
    fn path(&self, rest: &str) -> Result<String, ApiError> {
        Ok(match self {
            HookRef::Repo { repo, hook_id } => repo.path(&format!("hooks/{hook_id}/{rest}")),
            HookRef::Org { org, hook_id } => {
                format!("orgs/{}/hooks/{hook_id}/{rest}", segment(org)?)
            }
            HookRef::App => format!("app/hook/{rest}"),
        })
    }
}

impl fmt::Display for HookRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookRef::Repo { repo, hook_id } => write!(f, "repository {repo} hook {hook_id}"),
            HookRef::Org { org, hook_id } => write!(f, "organization {org} hook {hook_id}"),
            HookRef::App => f.write_str("app hook"),
        }
    }
}

/// One attempt in a webhook's delivery log. A redelivery is a new attempt, with its own
/// `id` and the `guid` of the delivery it repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookDelivery {
    /// The attempt's id (what [`GithubClient::redeliver_hook_delivery`] takes).
    pub id: u64,
    /// The delivery's GUID: its `X-GitHub-Delivery` header, shared by its redeliveries.
    pub guid: String,
    /// When the attempt was made.
    #[serde(with = "time::serde::rfc3339")]
    pub delivered_at: OffsetDateTime,
    /// Whether the attempt is a redelivery.
    #[serde(default, deserialize_with = "null_as_default")]
    pub redelivery: bool,
    /// Seconds the receiver took to answer.
    #[serde(default)]
    pub duration: Option<f64>,
    /// GitHub's description of the result (`OK`, `failed to connect`, `timed out`, ...).
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    /// The receiver's HTTP status (0 or 5xx when it could not be reached).
    #[serde(default, deserialize_with = "null_as_default")]
    pub status_code: u16,
    /// The event (`X-GitHub-Event`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub event: String,
    /// The payload's `action`, for events that have one.
    #[serde(default)]
    pub action: Option<String>,
    /// The app installation the event belongs to.
    #[serde(default)]
    pub installation_id: Option<u64>,
    /// The repository the event belongs to.
    #[serde(default)]
    pub repository_id: Option<u64>,
}

impl HookDelivery {
    /// Whether the receiver answered 2xx.
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status_code)
    }
}

/// Calls `get` until it succeeds, fails otherwise than with a 404, or `window` has passed,
/// waiting 200 ms, then twice as long each time (at most 2 s), never past the window.
async fn retry_not_found<T, F, Fut>(window: Duration, mut get: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let deadline = tokio::time::Instant::now() + window;
    let mut delay = FRESH_FIRST_DELAY;
    loop {
        match get().await {
            Err(error) if error.is_not_found() => {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Err(error);
                }
                let wait = delay.min(deadline - now);
                tracing::debug!(?wait, "GitHub object not readable yet; retrying");
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(FRESH_MAX_DELAY);
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repos_are_checked_and_parsed() {
        let repo: Repo = "octo-org/octo-repo".parse().unwrap();
        assert_eq!((repo.owner(), repo.name()), ("octo-org", "octo-repo"));
        assert_eq!(repo.to_string(), "octo-org/octo-repo");
        assert_eq!(repo.path("issues/1"), "repos/octo-org/octo-repo/issues/1");
        for bad in [
            "octo-org", "/repo", "octo/", "octo/..", "../x", "a/b/c", "a b/c", "a/b?x",
        ] {
            assert!(bad.parse::<Repo>().is_err(), "{bad}");
        }
        // Enterprise Managed Users have underscores.
        assert!("octocat_acme/my.repo".parse::<Repo>().is_ok());
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("help wanted").unwrap(), "help%20wanted");
        assert_eq!(segment("jira:In Progress").unwrap(), "jira%3AIn%20Progress");
        assert_eq!(segment("a/b?c#d%").unwrap(), "a%2Fb%3Fc%23d%25");
        assert_eq!(segment("ünï").unwrap(), "%C3%BCn%C3%AF");
        for bad in ["", ".", ".."] {
            assert!(segment(bad).is_err(), "{bad}");
        }
        assert_eq!(segment("%2e%2e").unwrap(), "%252e%252e");
    }

    #[test]
    fn owned_labels_and_plans() {
        let owned = OwnedLabels::prefix("jira:");
        assert!(owned.owns("jira:Done") && owned.owns("JIRA:done"));
        assert!(!owned.owns("bug") && !owned.owns("jir") && !owned.owns("é"));
        let current = ["bug", "jira:To Do", "jira:stale"];
        let plan =
            LabelChanges::plan(&current, &owned, &["jira:In Progress", "JIRA:to do"]).unwrap();
        assert_eq!(plan.added, ["jira:In Progress"]);
        assert_eq!(plan.removed, ["jira:stale"]);
        let same = LabelChanges::plan(&current, &owned, &["jira:to do", "jira:STALE"]).unwrap();
        assert!(same.is_empty());
        assert!(LabelChanges::plan(&current, &owned, &["bug"]).is_err());
        let set = OwnedLabels::Names(vec!["synced".into()]);
        let plan = LabelChanges::plan(&["Synced", "bug"], &set, &[] as &[&str]).unwrap();
        assert_eq!(plan.removed, ["Synced"]);
    }

    #[test]
    fn markers_are_checked() {
        assert_eq!(
            comment_marker("jira-link").unwrap(),
            "<!-- hookbridge:jira-link -->"
        );
        assert!(comment_marker("x -->").is_err());
        assert!(comment_marker("").is_err());
        assert!(same_text("a\r\nb\n", "a\nb"));
    }

    #[test]
    fn hook_secrets_go_in_the_body_but_not_in_debug() {
        let hook = NewHook {
            config: HookConfigInput::new("https://hooks.example.com/github", Secret::new("s3cr3t")),
            events: vec!["issues".into()],
            active: true,
        };
        let json = serde_json::to_value(&hook).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "web", "active": true, "events": ["issues"],
                "config": {"url": "https://hooks.example.com/github", "content_type": "json",
                    "secret": "s3cr3t", "insecure_ssl": "0"}})
        );
        assert!(!format!("{hook:?}").contains("s3cr3t"));
    }

    #[test]
    fn enterprise_urls() {
        assert_eq!(
            enterprise_base_url("github.example.com"),
            "https://github.example.com/api/v3"
        );
    }
}
