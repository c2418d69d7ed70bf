//! The GitHub issue or pull request an event is about, as the rule needs it.

use hookbridge_core::Event;
use hookbridge_providers::github::GithubEvent;

use super::config::Object;

/// An issue or pull request, from an `issues` or `pull_request` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) object: Object,
    /// The event's action (`opened`, `edited`, ...).
    pub(crate) action: String,
    /// The repository owner's login.
    pub(crate) owner: String,
    /// The repository's name.
    pub(crate) repo: String,
    /// `owner/repo`.
    pub(crate) full_name: String,
    pub(crate) number: u64,
    pub(crate) title: String,
    pub(crate) body: String,
    pub(crate) url: String,
    pub(crate) author: String,
    pub(crate) closed: bool,
    /// The assignees' logins, in GitHub's order.
    pub(crate) assignees: Vec<String>,
    /// The requested reviewers' logins (pull requests), when the payload carries them.
    pub(crate) requested_reviewers: Option<Vec<String>>,
}

/// Actions that may reopen a completed task: a stale event of another kind (an `edited`
/// delivered after the close) must not, and a task completed by hand in Asana stays
/// completed until the item is reopened, reassigned or marked ready on GitHub.
pub(crate) const REOPENING_ACTIONS: &[&str] =
    &["opened", "reopened", "assigned", "ready_for_review"];

impl Item {
    /// The item of an `issues` or `pull_request` event; `None` for other events (and for an
    /// `issues` event about a pull request, whose `pull_request` events are used instead).
    pub(crate) fn from_event(event: &Event) -> Option<Item> {
        match event.payload::<GithubEvent>()? {
            GithubEvent::Issues(e) => {
                if e.issue.pull_request.as_ref().is_some_and(|v| !v.is_null()) {
                    return None;
                }
                let repository = e.repository.as_ref()?;
                Some(Item {
                    object: Object::Issues,
                    action: e.action.as_str().to_owned(),
                    owner: repository.owner.login.clone(),
                    repo: repository.name.clone(),
                    full_name: repository.full_name.clone(),
                    number: e.issue.number,
                    title: e.issue.title.clone(),
                    body: e.issue.body.clone().unwrap_or_default(),
                    url: e.issue.html_url.clone(),
                    author: e.issue.user.login.clone(),
                    closed: e.issue.state == "closed",
                    assignees: e.issue.assignees.iter().map(|u| u.login.clone()).collect(),
                    requested_reviewers: None,
                })
            }
            GithubEvent::PullRequest(e) => {
                let repository = e.repository.as_ref()?;
                let pr = &e.pull_request;
                Some(Item {
                    object: Object::PullRequests,
                    action: e.action.as_str().to_owned(),
                    owner: repository.owner.login.clone(),
                    repo: repository.name.clone(),
                    full_name: repository.full_name.clone(),
                    number: pr.number,
                    title: pr.title.clone(),
                    body: pr.body.clone().unwrap_or_default(),
                    url: pr.html_url.clone(),
                    author: pr.user.login.clone(),
                    closed: pr.state == "closed",
                    assignees: pr.assignees.iter().map(|u| u.login.clone()).collect(),
                    // The typed payload does not model them; the document as GitHub sent
                    // it does.
                    requested_reviewers: event.raw_json().and_then(requested_reviewers),
                })
            }
            _ => None,
        }
    }

    /// What `matches` needs, without reading the raw document: the kind of object, the
    /// repository's `owner/repo` and owner.
    pub(crate) fn peek(event: &Event) -> Option<(Object, &str, &str)> {
        let (object, repository) = match event.payload::<GithubEvent>()? {
            GithubEvent::Issues(e) => {
                if e.issue.pull_request.as_ref().is_some_and(|v| !v.is_null()) {
                    return None;
                }
                (Object::Issues, e.repository.as_ref()?)
            }
            GithubEvent::PullRequest(e) => (Object::PullRequests, e.repository.as_ref()?),
            _ => return None,
        };
        Some((
            object,
            repository.full_name.as_str(),
            repository.owner.login.as_str(),
        ))
    }

    /// The object key links use: `github:owner/repo#N`.
    pub(crate) fn key(&self) -> String {
        format!("github:{}#{}", self.full_name, self.number)
    }

    /// `issue` or `pull request`, for templates and messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self.object {
            Object::Issues => "issue",
            Object::PullRequests => "pull request",
        }
    }

    /// Whether this event's action may reopen a completed task.
    pub(crate) fn may_reopen(&self) -> bool {
        REOPENING_ACTIONS.contains(&self.action.as_str())
    }

    /// The value of a template placeholder.
    pub(crate) fn field(&self, name: &str, number: &str) -> String {
        match name {
            "title" => self.title.clone(),
            "number" => number.to_owned(),
            "url" => self.url.clone(),
            "body" => self.body.clone(),
            "repo" => self.full_name.clone(),
            "org" => self.owner.clone(),
            "kind" => self.kind().to_owned(),
            "author" => self.author.clone(),
            _ => String::new(),
        }
    }
}

/// `pull_request.requested_reviewers[].login` of a raw `pull_request` document (users only:
/// teams cannot be assigned a task).
fn requested_reviewers(raw: &[u8]) -> Option<Vec<String>> {
    let doc: serde_json::Value = serde_json::from_slice(raw).ok()?;
    let list = doc
        .pointer("/pull_request/requested_reviewers")?
        .as_array()?;
    Some(
        list.iter()
            .filter_map(|u| u.get("login")?.as_str().map(str::to_owned))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookbridge_core::Provider;
    use hookbridge_providers::github::{Github, GithubOptions};

    fn event(event_type: &str, sample: &str) -> Event {
        let github = Github::new(
            vec![hookbridge_core::Secret::new("s")],
            GithubOptions::default(),
        )
        .unwrap();
        let json = hookbridge_providers::github::SAMPLES
            .iter()
            .find(|s| s.name == sample)
            .unwrap()
            .json;
        let mut headers = http::HeaderMap::new();
        headers.insert("x-github-event", event_type.parse().unwrap());
        headers.insert("x-github-delivery", "d-1".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        let raw = hookbridge_core::RawDelivery::new("github", headers, json.as_bytes().to_vec());
        github
            .parse(&raw)
            .unwrap()
            .with_raw_json(Some(bytes::Bytes::from(json)))
    }

    #[test]
    fn reads_issues_and_pull_requests() {
        let issue = Item::from_event(&event("issues", "issues.opened")).unwrap();
        assert_eq!(issue.object, Object::Issues);
        assert_eq!(issue.key(), "github:octo-org/octo-repo#12");
        assert_eq!(issue.action, "opened");
        assert!(!issue.closed);
        assert!(issue.may_reopen());
        assert_eq!(issue.requested_reviewers, None);

        let closed = Item::from_event(&event("issues", "issues.closed")).unwrap();
        assert!(closed.closed);
        assert_eq!(closed.assignees, vec!["monalisa".to_owned()]);
        assert!(!closed.may_reopen());

        let pr = Item::from_event(&event("pull_request", "pull_request.opened")).unwrap();
        assert_eq!(pr.object, Object::PullRequests);
        assert_eq!(pr.kind(), "pull request");
        assert_eq!(pr.requested_reviewers, Some(vec!["monalisa".to_owned()]));
        assert_eq!(pr.field("number", "34"), "34");

        assert!(Item::from_event(&event("push", "push")).is_none());
        assert_eq!(
            Item::peek(&event("pull_request", "pull_request.opened")),
            Some((Object::PullRequests, "octo-org/octo-repo", "octo-org"))
        );
        assert!(Item::peek(&event("push", "push")).is_none());
    }
}
