//! A tracked GitHub object (pull request or issue) as the reconciliation sees it, whether it
//! comes from a webhook payload or from an API listing, and the link data kept with it.

use hookbridge_core::RuleError;
use hookbridge_providers::github::client::{self, IssueState, Repo, StateReason};
use hookbridge_providers::github::events;
use serde::{Deserialize, Serialize};

/// Pull request or issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    PullRequest,
    Issue,
}

impl Kind {
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Kind::PullRequest => "pull request",
            Kind::Issue => "issue",
        }
    }
}

/// The GitHub state that decides the Jira status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum State {
    /// A draft pull request.
    Draft,
    /// Open (a pull request ready for review).
    Open,
    /// A pull request closed unmerged, an issue closed as not planned.
    Closed,
    /// A merged pull request.
    Merged,
    /// An issue closed as completed.
    Done,
}

impl State {
    pub(crate) fn is_closed(self) -> bool {
        matches!(self, State::Closed | State::Merged | State::Done)
    }
}

/// A pull request or issue, reduced to what the integration uses.
#[derive(Clone, Debug)]
pub(crate) struct Tracked {
    pub(crate) repo: Repo,
    pub(crate) number: u64,
    pub(crate) kind: Kind,
    pub(crate) title: String,
    pub(crate) body: String,
    pub(crate) url: String,
    pub(crate) author: String,
    pub(crate) author_url: String,
    pub(crate) state: State,
    pub(crate) labels: Vec<String>,
}

/// The object key of a GitHub issue or pull request, `github:owner/name#12`.
pub(crate) fn github_key(repo: &Repo, number: u64) -> String {
    format!("github:{repo}#{number}")
}

/// Parses [`github_key`]'s output.
pub(crate) fn parse_github_key(key: &str) -> Option<(Repo, u64)> {
    let rest = key.strip_prefix("github:")?;
    let (repo, number) = rest.rsplit_once('#')?;
    Some((repo.parse().ok()?, number.parse().ok()?))
}

fn permanent(message: String) -> RuleError {
    RuleError::Permanent { message }
}

fn parse_repo(full_name: &str) -> Result<Repo, RuleError> {
    full_name
        .parse()
        .map_err(|e: client::InvalidRepo| permanent(e.to_string()))
}

fn author_url(user: Option<&events::User>) -> (String, String) {
    match user {
        Some(u) => (
            u.login.clone(),
            u.html_url
                .clone()
                .unwrap_or_else(|| format!("https://github.com/{}", u.login)),
        ),
        None => ("ghost".into(), "https://github.com/ghost".into()),
    }
}

fn pr_state(closed: bool, merged: bool, draft: bool) -> State {
    match (closed, merged, draft) {
        (_, true, _) => State::Merged,
        (true, false, _) => State::Closed,
        (false, false, true) => State::Draft,
        (false, false, false) => State::Open,
    }
}

fn issue_state(closed: bool, not_planned: bool) -> State {
    match (closed, not_planned) {
        (false, _) => State::Open,
        (true, true) => State::Closed,
        (true, false) => State::Done,
    }
}

impl Tracked {
    /// The object key, `github:owner/name#12`.
    pub(crate) fn key(&self) -> String {
        github_key(&self.repo, self.number)
    }

    /// From a `pull_request` webhook's pull request.
    pub(crate) fn from_pr_event(
        full_name: &str,
        pr: &events::PullRequest,
    ) -> Result<Self, RuleError> {
        let (author, author_url) = author_url(Some(&pr.user));
        let merged = pr.merged.unwrap_or(pr.merged_at.is_some());
        Ok(Self {
            repo: parse_repo(full_name)?,
            number: pr.number,
            kind: Kind::PullRequest,
            title: pr.title.clone(),
            body: pr.body.clone().unwrap_or_default(),
            url: pr.html_url.clone(),
            author,
            author_url,
            state: pr_state(pr.state == "closed", merged, pr.draft),
            labels: pr.labels.iter().map(|l| l.name.clone()).collect(),
        })
    }

    /// From an `issues` webhook's issue.
    pub(crate) fn from_issue_event(
        full_name: &str,
        issue: &events::Issue,
    ) -> Result<Self, RuleError> {
        let (author, author_url) = author_url(Some(&issue.user));
        Ok(Self {
            repo: parse_repo(full_name)?,
            number: issue.number,
            kind: Kind::Issue,
            title: issue.title.clone(),
            body: issue.body.clone().unwrap_or_default(),
            url: issue.html_url.clone(),
            author,
            author_url,
            state: issue_state(
                issue.state == "closed",
                issue.state_reason.as_deref() == Some("not_planned"),
            ),
            labels: issue.labels.iter().map(|l| l.name.clone()).collect(),
        })
    }

    /// From a pull request of the API.
    pub(crate) fn from_api_pr(repo: &Repo, pr: &client::PullRequest) -> Self {
        let (author, author_url) = author_url(pr.user.as_ref());
        Self {
            repo: repo.clone(),
            number: pr.number,
            kind: Kind::PullRequest,
            title: pr.title.clone(),
            body: pr.body.clone().unwrap_or_default(),
            url: pr.html_url.clone(),
            author,
            author_url,
            state: pr_state(pr.state == IssueState::Closed, pr.is_merged(), pr.draft),
            labels: pr.labels.iter().map(|l| l.name.clone()).collect(),
        }
    }

    /// From an issue of the API.
    pub(crate) fn from_api_issue(repo: &Repo, issue: &client::Issue) -> Self {
        let (author, author_url) = author_url(issue.user.as_ref());
        Self {
            repo: repo.clone(),
            number: issue.number,
            kind: Kind::Issue,
            title: issue.title.clone(),
            body: issue.body.clone().unwrap_or_default(),
            url: issue.html_url.clone(),
            author,
            author_url,
            state: issue_state(
                issue.state == IssueState::Closed,
                issue.state_reason == Some(StateReason::NotPlanned),
            ),
            labels: issue.labels.iter().map(|l| l.name.clone()).collect(),
        }
    }
}

/// What is remembered with the link `github:..#n -> jira:KEY`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LinkData {
    /// The Jira project the issue was created in.
    #[serde(default)]
    pub(crate) project: String,
    /// The GitHub state the Jira status was last brought in line with.
    #[serde(default)]
    pub(crate) state: Option<State>,
    /// The Jira status before the object was closed, restored when it is reopened.
    #[serde(default)]
    pub(crate) pre_close: Option<String>,
    /// Whether the comment naming the issue was written on GitHub.
    #[serde(default)]
    pub(crate) commented: bool,
}

impl LinkData {
    pub(crate) fn from_json(value: &serde_json::Value) -> Self {
        // A link written by another version or by hand still gets reconciled from scratch.
        serde_json::from_value(value.clone()).unwrap_or_default()
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_keys() {
        assert_eq!(pr_state(false, false, true), State::Draft);
        assert_eq!(pr_state(true, true, false), State::Merged);
        assert_eq!(pr_state(true, false, false), State::Closed);
        assert_eq!(pr_state(false, false, false), State::Open);
        assert_eq!(issue_state(true, true), State::Closed);
        assert_eq!(issue_state(true, false), State::Done);
        let repo: Repo = "octo-org/octo-repo".parse().unwrap();
        let key = github_key(&repo, 12);
        assert_eq!(key, "github:octo-org/octo-repo#12");
        assert_eq!(parse_github_key(&key), Some((repo, 12)));
        assert_eq!(parse_github_key("jira:OPS-1"), None);
        let data = LinkData {
            project: "OPS".into(),
            state: Some(State::Merged),
            pre_close: Some("In Progress".into()),
            commented: true,
        };
        assert_eq!(LinkData::from_json(&data.to_json()), data);
        assert_eq!(
            LinkData::from_json(&serde_json::json!("junk")),
            LinkData::default()
        );
    }
}
