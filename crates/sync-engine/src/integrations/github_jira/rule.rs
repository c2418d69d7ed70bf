//! The rule: which events the integration takes (GitHub pull request and issue lifecycle,
//! gate labels, edited titles, rescans; Jira status changes) and what each one triggers.

use async_trait::async_trait;
use hookbridge_core::{EndpointName, Event, RuleError, RuleOutcome, SyncRule};
use hookbridge_providers::github::GithubEvent;
use hookbridge_providers::github::events::{
    IssuesAction, IssuesEvent, PullRequestAction, PullRequestEvent, User,
};
use hookbridge_providers::jira::JiraEvent;
use hookbridge_providers::jira::events::{IssueEvent, IssueWebhookEvent};

use super::GithubJira;
use super::reconcile::Depth;
use super::tracked::Tracked;
use crate::engine::RuleContext;
use crate::integrations::endpoint::on_endpoint;

/// The action a recurring rescan gives the events it stores (see [`super::rescan`]).
pub(crate) const RESCAN_ACTION: &str = "rescan";

/// What a GitHub event asks of the integration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ask {
    /// The object's state may have changed: reconcile.
    Lifecycle,
    /// A label was added or removed.
    Label { added: bool },
    /// The title may have changed.
    Edited,
    /// A rescan found the object: reconcile everything.
    Rescan,
}

fn pr_ask(action: &PullRequestAction) -> Option<Ask> {
    Some(match action {
        PullRequestAction::Opened
        | PullRequestAction::Reopened
        | PullRequestAction::Closed
        | PullRequestAction::ReadyForReview
        | PullRequestAction::ConvertedToDraft => Ask::Lifecycle,
        PullRequestAction::Labeled => Ask::Label { added: true },
        PullRequestAction::Unlabeled => Ask::Label { added: false },
        PullRequestAction::Edited => Ask::Edited,
        PullRequestAction::Other(other) if other == RESCAN_ACTION => Ask::Rescan,
        _ => return None,
    })
}

fn issue_ask(action: &IssuesAction) -> Option<Ask> {
    Some(match action {
        IssuesAction::Opened | IssuesAction::Reopened | IssuesAction::Closed => Ask::Lifecycle,
        IssuesAction::Labeled => Ask::Label { added: true },
        IssuesAction::Unlabeled => Ask::Label { added: false },
        IssuesAction::Edited => Ask::Edited,
        IssuesAction::Other(other) if other == RESCAN_ACTION => Ask::Rescan,
        _ => return None,
    })
}

fn title_changed(changes: Option<&serde_json::Value>) -> bool {
    changes.is_some_and(|c| c.get("title").is_some())
}

/// The parts of a `pull_request` or `issues` event the rule reads.
struct GithubChange<'a> {
    ask: Ask,
    repo: &'a str,
    label: Option<&'a str>,
    title_changed: bool,
    sender: Option<&'a User>,
}

impl<'a> GithubChange<'a> {
    fn of_pr(e: &'a PullRequestEvent) -> Option<Self> {
        Some(Self {
            ask: pr_ask(&e.action)?,
            repo: &e.repository.as_ref()?.full_name,
            label: e.label.as_ref().map(|l| l.name.as_str()),
            title_changed: title_changed(e.changes.as_ref()),
            sender: e.sender.as_ref(),
        })
    }

    fn of_issue(e: &'a IssuesEvent) -> Option<Self> {
        Some(Self {
            ask: issue_ask(&e.action)?,
            repo: &e.repository.as_ref()?.full_name,
            label: e.label.as_ref().map(|l| l.name.as_str()),
            title_changed: title_changed(e.changes.as_ref()),
            sender: e.sender.as_ref(),
        })
    }
}

/// The new status of a Jira `issue_updated` event that changed it.
fn jira_status_change(e: &IssueEvent) -> Option<&str> {
    if e.webhook_event != IssueWebhookEvent::Updated {
        return None;
    }
    e.changelog.as_ref()?.item("status")?.to_string.as_deref()
}

impl GithubJira {
    fn github_change<'a>(&self, event: &'a Event) -> Option<(GithubChange<'a>, Tracked)> {
        match event.payload::<GithubEvent>()? {
            GithubEvent::PullRequest(e) if self.settings.pull_requests => {
                let change = GithubChange::of_pr(e)?;
                let obj = Tracked::from_pr_event(change.repo, &e.pull_request).ok()?;
                Some((change, obj))
            }
            GithubEvent::Issues(e) if self.settings.issues && e.issue.pull_request.is_none() => {
                let change = GithubChange::of_issue(e)?;
                let obj = Tracked::from_issue_event(change.repo, &e.issue).ok()?;
                Some((change, obj))
            }
            _ => None,
        }
    }

    fn wants(&self, change: &GithubChange<'_>) -> bool {
        if !self.settings.covers(change.repo) {
            return false;
        }
        match change.ask {
            Ask::Lifecycle | Ask::Rescan => true,
            Ask::Edited => self.settings.sync_title && change.title_changed,
            Ask::Label { added } => change.label.is_some_and(|label| {
                self.settings.owns_label(label)
                    || (added && self.settings.gate_name(label).is_some())
            }),
        }
    }

    fn jira_change<'a>(&self, event: &'a Event) -> Option<(&'a str, &'a str)> {
        self.settings.jira_endpoint.as_ref()?;
        let JiraEvent::Issue(e) = event.payload::<JiraEvent>()? else {
            return None;
        };
        let status = jira_status_change(e)?;
        let key = e.issue.key.as_str();
        // Jira gives an issue moved to another project a new key: the prefix is the project.
        let project = key.rsplit_once('-').map(|(p, _)| p)?;
        self.settings
            .mappings
            .iter()
            .any(|m| m.project.eq_ignore_ascii_case(project))
            .then_some((key, status))
    }

    /// The bot's GitHub login: configured, or looked up once through the connection.
    async fn bot_login(&self) -> Result<String, RuleError> {
        match &self.settings.bot_login {
            Some(login) => Ok(login.clone()),
            None => Ok(self.github.bot_login().await?),
        }
    }

    async fn apply_github(
        &self,
        ctx: &RuleContext,
        change: GithubChange<'_>,
        obj: Tracked,
    ) -> Result<RuleOutcome, RuleError> {
        if let (Ask::Label { added }, Some(label)) = (change.ask, change.label)
            && self.settings.owns_label(label)
        {
            // Status labels are written from Jira; GitHub's account of a label change comes
            // back here, and is either the echo of our write or someone else's edit, which
            // is not synced back (the next status change or rescan restores the label).
            let value = format!("{}{}", if added { "+" } else { "-" }, label.to_lowercase());
            let reason = if ctx.is_echo(&obj.key(), "label", &value).await? {
                format!("echo of our own label write on {}", obj.key())
            } else {
                format!("{label:?} is a status label: it follows Jira, not the other way round")
            };
            return Ok(RuleOutcome::Skipped { reason });
        }
        if let Some(sender) = change.sender {
            let me = self.bot_login().await?;
            if sender.login.eq_ignore_ascii_case(&me) {
                return Ok(RuleOutcome::Skipped {
                    reason: format!("caused by the bot's own account {me}"),
                });
            }
        }
        match change.ask {
            Ask::Edited => self.follow_title(ctx, &obj).await,
            Ask::Rescan => self.reconcile(ctx, &obj, Depth::RESCAN).await,
            Ask::Lifecycle | Ask::Label { .. } => self.reconcile(ctx, &obj, Depth::EVENT).await,
        }
    }
}

#[async_trait]
impl SyncRule<RuleContext> for GithubJira {
    fn name(&self) -> &str {
        &self.name
    }

    fn matches(&self, event: &Event) -> bool {
        match event.provider() {
            p if p == hookbridge_providers::github::KIND => self
                .github_change(event)
                .is_some_and(|(change, _)| self.wants(&change)),
            p if p == hookbridge_providers::jira::KIND => self.jira_change(event).is_some(),
            _ => false,
        }
    }

    async fn apply(&self, ctx: &RuleContext, event: &Event) -> Result<RuleOutcome, RuleError> {
        // Several GitHub (or Jira) endpoints may feed integrations with other mappings: act
        // only on deliveries of this one's endpoints.
        let endpoint = if event.provider() == hookbridge_providers::github::KIND {
            Some(self.settings.endpoint.as_str())
        } else {
            self.settings.jira_endpoint.as_deref()
        };
        if let Some(endpoint) = endpoint
            && !on_endpoint(ctx, Some(&EndpointName::new(endpoint))).await?
        {
            return Ok(RuleOutcome::Skipped {
                reason: "delivered to another endpoint".into(),
            });
        }
        if let Some((change, obj)) = self.github_change(event) {
            if !self.wants(&change) {
                return Ok(RuleOutcome::Skipped {
                    reason: "not an event this integration acts on".into(),
                });
            }
            return self.apply_github(ctx, change, obj).await;
        }
        if let Some((issue, status)) = self.jira_change(event) {
            return self.follow_jira_status(ctx, issue, status).await;
        }
        Ok(RuleOutcome::Skipped {
            reason: format!("{} is not an event this integration acts on", event.name()),
        })
    }
}
