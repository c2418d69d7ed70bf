//! Typed Travis CI webhook notifications.
//!
//! Travis CI sends one kind of notification: the state of a build, as the JSON document in
//! the `payload` form field (documented under "Webhooks Delivery Format" in
//! <https://docs.travis-ci.com/user/notifications/#configuring-webhook-notifications>).
//! [`TravisEvent::from_json`] types it. Parsing is forward compatible:
//!
//! - unknown fields are ignored (no type here uses `deny_unknown_fields`);
//! - unknown values of `type`, `state` and `status_message` become the `Other(String)`
//!   variant of their enum, and serialize back to the same string;
//! - a document whose shape does not fit becomes [`TravisEvent::Untyped`], with the whole
//!   payload kept as JSON and the reason.
//!
//! Only what every notification carries (`id`, `state`, `repository`) is required; the rest
//! is an `Option` or defaults, since pending notifications leave many fields `null`.
//!
//! ```
//! use hookbridge_providers::travis::events::{BuildType, StatusMessage, TravisEvent};
//!
//! let json = br#"{"id":289215159,"number":"2848","type":"push","state":"failed",
//!   "status":1,"result":1,"status_message":"Still Failing","result_message":"Still Failing",
//!   "commit":"729f57937e1d91106c239d3e1c12e06181df7b9e","branch":"main",
//!   "committer_name":"Hiro Asari",
//!   "repository":{"id":1771959,"name":"docs-travis-ci-com","owner_name":"travis-ci","url":null}}"#;
//! let event = TravisEvent::from_json(json).unwrap();
//! assert_eq!(event.name(), "build.still_failing");
//! assert_eq!(event.subject().as_deref(), Some("travis:travis-ci/docs-travis-ci-com/build/289215159"));
//! let TravisEvent::Build(build) = &event else { panic!("not typed") };
//! assert_eq!(build.status_message, Some(StatusMessage::StillFailing));
//! assert_eq!(build.build_type, Some(BuildType::Push));
//! ```

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::common::expect_json_object;

string_enum! {
    /// What caused the build to run: the notification's `type`.
    BuildType {
        Push => "push",
        PullRequest => "pull_request",
        Cron => "cron",
        Api => "api",
    }
}

string_enum! {
    /// The state of a build or job: the notification's `state`.
    BuildState {
        Created => "created",
        Received => "received",
        Queued => "queued",
        Started => "started",
        Passed => "passed",
        Failed => "failed",
        Errored => "errored",
        Canceled => "canceled",
    }
}

string_enum! {
    /// The outcome of a build relative to the previous one on its branch: the
    /// notification's `status_message` and `result_message`.
    StatusMessage {
        Pending => "Pending",
        Passed => "Passed",
        Fixed => "Fixed",
        Broken => "Broken",
        Failed => "Failed",
        StillFailing => "Still Failing",
        Canceled => "Canceled",
        Errored => "Errored",
    }
}

impl StatusMessage {
    /// The message in snake case, as used in event names: `Still Failing` ->
    /// `still_failing`.
    pub fn snake_case(&self) -> String {
        snake_case(self.as_str())
    }
}

/// The repository a build belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Repository {
    /// Travis CI's numeric id of the repository.
    pub id: u64,
    /// The repository's name (`docs-travis-ci-com`).
    pub name: String,
    /// The owning account (`travis-ci`).
    pub owner_name: String,
    /// The repository's home page, when it has one.
    #[serde(default)]
    pub url: Option<String>,
}

impl Repository {
    /// `owner/name`, as in the `Travis-Repo-Slug` header.
    pub fn slug(&self) -> String {
        format!("{}/{}", self.owner_name, self.name)
    }
}

/// One job of a build's matrix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The job's numeric id.
    pub id: u64,
    /// The repository's numeric id.
    #[serde(default)]
    pub repository_id: Option<u64>,
    /// The build's numeric id.
    #[serde(default)]
    pub parent_id: Option<u64>,
    /// The job number (`2848.1`).
    #[serde(default)]
    pub number: Option<String>,
    /// The job's state.
    #[serde(default)]
    pub state: Option<BuildState>,
    /// The job's configuration, as expanded from `.travis.yml`.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// `0` passed, `1` failed or errored, `null` otherwise.
    #[serde(default)]
    pub status: Option<i64>,
    /// Same as `status`.
    #[serde(default)]
    pub result: Option<i64>,
    /// The commit sha.
    #[serde(default)]
    pub commit: Option<String>,
    /// The branch.
    #[serde(default)]
    pub branch: Option<String>,
    /// The commit message.
    #[serde(default)]
    pub message: Option<String>,
    /// The change view URL.
    #[serde(default)]
    pub compare_url: Option<String>,
    /// When the job started.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    /// When the job finished.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// When the commit was made.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub committed_at: Option<OffsetDateTime>,
    /// The commit author's name.
    #[serde(default)]
    pub author_name: Option<String>,
    /// The commit author's email.
    #[serde(default)]
    pub author_email: Option<String>,
    /// The committer's name.
    #[serde(default)]
    pub committer_name: Option<String>,
    /// The committer's email.
    #[serde(default)]
    pub committer_email: Option<String>,
    /// Whether the job may fail without failing the build.
    #[serde(default)]
    pub allow_failure: Option<bool>,
}

/// A build notification: the whole `payload` document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildNotification {
    /// The build's numeric id.
    pub id: u64,
    /// The build number in its repository (`2848`).
    #[serde(default)]
    pub number: Option<String>,
    /// What caused the build: push, pull_request, cron or api.
    #[serde(rename = "type", default)]
    pub build_type: Option<BuildType>,
    /// The build's state.
    pub state: BuildState,
    /// `0` passed, `1` failed or errored, `null` while pending.
    #[serde(default)]
    pub status: Option<i64>,
    /// Same as `status`.
    #[serde(default)]
    pub result: Option<i64>,
    /// The outcome relative to the previous build: `Passed`, `Still Failing`, ...
    #[serde(default)]
    pub status_message: Option<StatusMessage>,
    /// Same as `status_message`.
    #[serde(default)]
    pub result_message: Option<StatusMessage>,
    /// When the build started.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    /// When the build finished.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// The total duration of the build's jobs, in seconds.
    #[serde(default)]
    pub duration: Option<u64>,
    /// The build's page.
    #[serde(default)]
    pub build_url: Option<String>,
    /// Travis CI's id of the commit.
    #[serde(default)]
    pub commit_id: Option<u64>,
    /// The commit sha.
    #[serde(default)]
    pub commit: Option<String>,
    /// For pull requests: the base commit.
    #[serde(default)]
    pub base_commit: Option<String>,
    /// For pull requests: the head commit.
    #[serde(default)]
    pub head_commit: Option<String>,
    /// The branch (for pull requests, the target branch).
    #[serde(default)]
    pub branch: Option<String>,
    /// The commit message.
    #[serde(default)]
    pub message: Option<String>,
    /// The change view URL (a compare view, or the pull request).
    #[serde(default)]
    pub compare_url: Option<String>,
    /// When the commit was made.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub committed_at: Option<OffsetDateTime>,
    /// The commit author's name.
    #[serde(default)]
    pub author_name: Option<String>,
    /// The commit author's email.
    #[serde(default)]
    pub author_email: Option<String>,
    /// The committer's name.
    #[serde(default)]
    pub committer_name: Option<String>,
    /// The committer's email.
    #[serde(default)]
    pub committer_email: Option<String>,
    /// Whether the build is for a pull request.
    #[serde(default)]
    pub pull_request: Option<bool>,
    /// The pull request's number, for pull request builds.
    #[serde(default)]
    pub pull_request_number: Option<u64>,
    /// The pull request's title, for pull request builds.
    #[serde(default)]
    pub pull_request_title: Option<String>,
    /// The tag, for tag builds.
    #[serde(default)]
    pub tag: Option<String>,
    /// The repository.
    pub repository: Repository,
    /// The build's configuration, as expanded from `.travis.yml`.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// The build's jobs.
    #[serde(default)]
    pub matrix: Vec<Job>,
}

impl BuildNotification {
    /// Whether the build is for a pull request (by `type`, or the `pull_request` flag of
    /// payloads that predate `type`).
    pub fn is_pull_request(&self) -> bool {
        self.build_type == Some(BuildType::PullRequest) || self.pull_request == Some(true)
    }
}

/// A notification whose shape does not fit [`BuildNotification`], kept whole.
#[derive(Debug, Clone, Serialize)]
pub struct UntypedEvent {
    /// Why the typed parse failed.
    pub reason: Option<String>,
    /// The whole payload.
    pub payload: serde_json::Value,
}

/// A Travis CI notification, typed where its shape is known.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", content = "payload", rename_all = "snake_case")]
pub enum TravisEvent {
    /// A build notification (boxed: it is much larger than the untyped variant).
    Build(Box<BuildNotification>),
    /// A notification whose shape does not fit, kept as JSON.
    Untyped(UntypedEvent),
}

impl TravisEvent {
    /// Types the JSON document of a delivery (the decoded `payload` form field).
    ///
    /// Errors only when `json` is not a well-formed JSON object; a well-formed document of
    /// another shape becomes [`TravisEvent::Untyped`].
    pub fn from_json(json: &[u8]) -> Result<TravisEvent, serde_json::Error> {
        // A derived struct also accepts a JSON array (positionally): rule non-objects out.
        expect_json_object(json)?;
        match serde_json::from_slice::<BuildNotification>(json) {
            Ok(build) => Ok(TravisEvent::Build(Box::new(build))),
            // A shape mismatch: keep the document whole if it is well-formed (the re-parse
            // returns the syntax error if the mismatch hid one further on).
            Err(e) if e.is_data() => {
                let payload: serde_json::Value = serde_json::from_slice(json)?;
                Ok(TravisEvent::Untyped(UntypedEvent {
                    reason: Some(e.to_string()),
                    payload,
                }))
            }
            Err(e) => Err(e),
        }
    }

    /// Always `build`: Travis CI has one notification type.
    pub fn event_type(&self) -> &str {
        "build"
    }

    /// `build.<status_message in snake case>`, e.g. `build.passed`, `build.still_failing`;
    /// `build.<state>` when the message is `null`, and `build` when neither is known.
    pub fn name(&self) -> String {
        let (message, state) = match self {
            TravisEvent::Build(b) => (
                b.status_message.as_ref().map(StatusMessage::as_str),
                Some(b.state.as_str()),
            ),
            TravisEvent::Untyped(u) => (
                u.payload["status_message"].as_str(),
                u.payload["state"].as_str(),
            ),
        };
        match message.or(state).map(snake_case) {
            Some(suffix) if !suffix.is_empty() => format!("build.{suffix}"),
            _ => "build".to_owned(),
        }
    }

    /// `travis:<owner>/<repo>/build/<id>`; for untyped notifications, the same from the
    /// payload's `repository` and `id` when present.
    pub fn subject(&self) -> Option<String> {
        match self {
            TravisEvent::Build(b) => Some(format!(
                "travis:{}/{}/build/{}",
                b.repository.owner_name, b.repository.name, b.id
            )),
            TravisEvent::Untyped(u) => {
                let owner = u.payload.pointer("/repository/owner_name")?.as_str()?;
                let name = u.payload.pointer("/repository/name")?.as_str()?;
                let id = u.payload.get("id")?.as_u64()?;
                Some(format!("travis:{owner}/{name}/build/{id}"))
            }
        }
    }

    /// Who caused the build: the committer's name, else the author's (Travis reports git
    /// names, with no account id and no bot flag).
    pub fn actor_name(&self) -> Option<&str> {
        match self {
            TravisEvent::Build(b) => b.committer_name.as_deref().or(b.author_name.as_deref()),
            TravisEvent::Untyped(u) => u.payload["committer_name"]
                .as_str()
                .or(u.payload["author_name"].as_str()),
        }
    }

    /// The build's own timestamp, for recognising stale notifications: `finished_at`, else
    /// `started_at`; None while neither is set (a build just created) and for untyped
    /// notifications.
    pub fn updated_at(&self) -> Option<OffsetDateTime> {
        match self {
            TravisEvent::Build(b) => b.finished_at.or(b.started_at),
            TravisEvent::Untyped(_) => None,
        }
    }

    /// The repository, for typed notifications.
    pub fn repository(&self) -> Option<&Repository> {
        match self {
            TravisEvent::Build(b) => Some(&b.repository),
            TravisEvent::Untyped(_) => None,
        }
    }
}

/// Lower case ASCII letters and digits, every other run of characters one `_`.
fn snake_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_of_messages() {
        assert_eq!(StatusMessage::StillFailing.snake_case(), "still_failing");
        assert_eq!(StatusMessage::Passed.snake_case(), "passed");
        assert_eq!(snake_case("  Oddly -- Named!  "), "oddly_named");
        assert_eq!(snake_case("***"), "");
    }
}
