//! The reconciliation: brings the Jira issue of a GitHub object, the bot's comment naming it
//! and the status label to what the object's state asks for. Idempotent: the webhook path,
//! retries and rescans all run it, and a second run changes nothing.

use futures_util::TryStreamExt;
use hookbridge_core::{RuleError, RuleOutcome};
use hookbridge_providers::github::client::Repo;
use hookbridge_providers::jira::client::NewIssue;
use serde_json::{Value, json};

use super::GithubJira;
use super::config::CompiledMapping;
use super::template::Var;
use super::tracked::{LinkData, State, Tracked, github_key};
use crate::engine::RuleContext;

/// Longest GitHub body copied into a Jira description: Jira refuses descriptions over
/// 32 767 characters, and the template adds its own text.
const MAX_BODY_CHARS: usize = 30_000;

/// How much one reconciliation checks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Depth {
    /// Read the Jira status even when the GitHub state did not change, to fix the label
    /// (rescans; webhooks only act on what changed).
    pub(crate) full: bool,
    /// The object's labels are current (an API listing), so they need not be listed again.
    pub(crate) labels_current: bool,
}

impl Depth {
    /// A webhook: act on what the event changed.
    pub(crate) const EVENT: Depth = Depth {
        full: false,
        labels_current: false,
    };
    /// A rescan: check everything.
    pub(crate) const RESCAN: Depth = Depth {
        full: true,
        labels_current: true,
    };
}

pub(crate) fn eq_ci(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

fn permanent(message: impl Into<String>) -> RuleError {
    RuleError::Permanent {
        message: message.into(),
    }
}

/// The number of actions recorded so far, to tell "did something" from "already in sync".
fn recorded(ctx: &RuleContext) -> usize {
    ctx.actions.lock().map(|a| a.len()).unwrap_or(0)
}

/// Quotes a JQL string value.
fn jql_string(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

/// The field reference JQL takes for a field id: `cf[10904]` for `customfield_10904`.
fn jql_field(id: &str) -> String {
    match id.strip_prefix("customfield_") {
        Some(n) => format!("cf[{n}]"),
        None => id.to_owned(),
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}\n\n[... truncated]", &text[..at]),
        None => text.to_owned(),
    }
}

impl GithubJira {
    /// The Jira label that identifies the issue of `obj` when no `url_field` is configured.
    pub(crate) fn marker_label(obj: &Tracked) -> String {
        obj.key()
    }

    /// The page of Jira issue `key`.
    pub(crate) fn jira_url(&self, key: &str) -> String {
        let base = match &self.settings.browse_url {
            Some(url) => url.clone(),
            None => self.jira.api().base_url().to_string(),
        };
        format!("{}/browse/{key}", base.trim_end_matches('/'))
    }

    fn render_var(&self, obj: &Tracked, issue: Option<&str>, var: Var) -> String {
        match var {
            Var::Title => obj.title.clone(),
            Var::Body => truncate(&obj.body, MAX_BODY_CHARS),
            Var::Url => obj.url.clone(),
            Var::Number => obj.number.to_string(),
            Var::Repo => obj.repo.to_string(),
            Var::Author => obj.author.clone(),
            Var::AuthorUrl => obj.author_url.clone(),
            Var::Kind => obj.kind.noun().to_owned(),
            Var::Key => issue.unwrap_or_default().to_owned(),
            Var::JiraUrl => issue.map(|k| self.jira_url(k)).unwrap_or_default(),
        }
    }

    /// The Jira summary of `obj` (one line, as Jira requires).
    pub(crate) fn summary(&self, obj: &Tracked) -> String {
        let text = self
            .settings
            .summary
            .render(|v| self.render_var(obj, None, v));
        let line = text.replace(['\r', '\n'], " ");
        truncate(line.trim(), 250)
    }

    /// The mapping `obj` gets an issue under, or why it gets none.
    pub(crate) fn mapping_for(&self, obj: &Tracked) -> Result<&CompiledMapping, String> {
        let repo = obj.repo.to_string();
        if self.settings.gate_prefix.is_none() {
            return self
                .settings
                .mappings
                .iter()
                .find(|m| m.matches(&repo))
                .ok_or_else(|| format!("no mapping covers {repo}"));
        }
        for label in &obj.labels {
            let Some(name) = self.settings.gate_name(label) else {
                continue;
            };
            if let Some(m) = self.settings.mappings.iter().find(|m| {
                m.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
                    && m.matches(&repo)
            }) {
                return Ok(m);
            }
        }
        Err(format!(
            "{} has no gate label selecting a mapping for {repo}",
            obj.key()
        ))
    }

    /// Jira's current status of `issue`.
    pub(crate) async fn jira_status(&self, issue: &str) -> Result<String, RuleError> {
        let issue = self.jira.get_issue(issue, &["status"]).await?;
        Ok(issue.fields.status.map(|s| s.name).unwrap_or_default())
    }

    fn status_for(&self, state: State) -> &str {
        let s = &self.settings.statuses;
        match state {
            State::Draft => &s.draft,
            State::Open => &s.open,
            State::Closed => &s.closed,
            State::Merged => &s.merged,
            State::Done => &s.done,
        }
    }

    fn is_closing_status(&self, status: &str) -> bool {
        let s = &self.settings.statuses;
        [&s.closed, &s.merged, &s.done]
            .iter()
            .any(|c| !c.is_empty() && eq_ci(c, status))
    }

    /// The JQL finding the issue of `obj` by its marker (the URL field, or the marker label).
    async fn marker_jql(&self, obj: &Tracked) -> Result<String, RuleError> {
        Ok(match &self.settings.url_field {
            Some(field) => {
                let id = self.jira.field_id(field).await?;
                format!("{} = {}", jql_field(&id), jql_string(&obj.url))
            }
            None => format!("labels = {}", jql_string(&Self::marker_label(obj))),
        })
    }

    /// The issue of `obj`: one already carrying its marker (created by a run that died before
    /// linking it), else a new one. `None` in a dry run, where it would be created.
    async fn find_or_create(
        &self,
        ctx: &RuleContext,
        obj: &Tracked,
        mapping: &CompiledMapping,
    ) -> Result<Option<String>, RuleError> {
        let key = obj.key();
        let jql = self.marker_jql(obj).await?;
        let mut found = self.jira.search(&jql, &["status"]);
        if let Some(issue) = found.try_next().await? {
            ctx.record(format!("found {} for {key} by its marker", issue.key));
            return Ok(Some(issue.key));
        }
        let mut labels = self.settings.jira_labels.clone();
        let mut issue = NewIssue::new(&mapping.project, &mapping.issue_type, self.summary(obj))
            .description(
                self.settings
                    .description
                    .render(|v| self.render_var(obj, None, v)),
            );
        match &self.settings.url_field {
            Some(field) => {
                let id = self.jira.field_id(field).await?;
                issue = issue.field(id, Value::String(obj.url.clone()));
            }
            None => labels.push(Self::marker_label(obj)),
        }
        issue = issue.field("labels", json!(labels));
        let jira = self.jira.clone();
        let created = ctx
            .perform(
                "jira",
                format!(
                    "create a {} in {} for {key}",
                    mapping.issue_type, mapping.project
                ),
                async move { Ok(jira.create_issue(&issue).await?) },
            )
            .await?;
        if let Some(created) = &created {
            tracing::info!(integration = %self.name, object = %key, issue = %created.key, "created Jira issue");
        }
        Ok(created.map(|c| c.key))
    }

    async fn save(
        &self,
        ctx: &RuleContext,
        key: &str,
        issue: &str,
        data: &LinkData,
    ) -> Result<(), RuleError> {
        // A dry run would only print "would link" again for what is an update of the data.
        if ctx.dry_run() {
            return Ok(());
        }
        ctx.put_link(key, &format!("jira:{issue}"), data.to_json())
            .await
    }

    /// Creates or edits the bot's comment on `obj` naming `issue`.
    async fn comment(
        &self,
        ctx: &RuleContext,
        obj: &Tracked,
        issue: &str,
    ) -> Result<(), RuleError> {
        let body = self
            .settings
            .comment
            .render(|v| self.render_var(obj, Some(issue), v));
        let marker = format!("github-jira:{}", self.name);
        let (github, repo, number) = (self.github.clone(), obj.repo.clone(), obj.number);
        ctx.perform(
            "github",
            format!("comment on {} naming {issue}", obj.key()),
            async move {
                github
                    .upsert_own_comment(&repo, number, &marker, &body)
                    .await?;
                Ok(())
            },
        )
        .await?;
        Ok(())
    }

    /// Moves `issue` from `current` to `target` by the transition leading to it.
    async fn move_issue(
        &self,
        ctx: &RuleContext,
        issue: &str,
        current: &str,
        target: &str,
    ) -> Result<(), RuleError> {
        let transitions = self.jira.transitions(issue).await?;
        let Some(transition) = transitions.iter().find(|t| eq_ci(&t.to.name, target)) else {
            let reachable: Vec<&str> = transitions.iter().map(|t| t.to.name.as_str()).collect();
            return Err(permanent(format!(
                "no transition takes {issue} from {current:?} to {target:?} (reachable: {})",
                if reachable.is_empty() {
                    "none".to_owned()
                } else {
                    reachable.join(", ")
                }
            )));
        };
        // Marked before the write: the webhook Jira sends about it may beat the answer.
        ctx.mark_write(&format!("jira:{issue}"), "status", &target.to_lowercase())
            .await?;
        let (jira, id, key) = (self.jira.clone(), transition.id.clone(), issue.to_owned());
        ctx.perform(
            "jira",
            format!("move {issue} from {current:?} to {target:?}"),
            async move { Ok(jira.do_transition(&key, &id, None).await?) },
        )
        .await?;
        Ok(())
    }

    /// Brings the Jira status in line with a changed GitHub state; returns the status the
    /// issue has afterwards when known.
    async fn follow_state(
        &self,
        ctx: &RuleContext,
        obj: &Tracked,
        issue: &str,
        data: &mut LinkData,
    ) -> Result<Option<String>, RuleError> {
        let was_closed = data.state.is_some_and(State::is_closed);
        let reopening = was_closed && !obj.state.is_closed();
        let closing = obj.state.is_closed() && !was_closed;
        let target = match (reopening, data.pre_close.as_deref()) {
            // Reopened: back to where it was before it was closed.
            (true, Some(previous)) if !previous.is_empty() => previous.to_owned(),
            _ => self.status_for(obj.state).to_owned(),
        };
        if target.is_empty() {
            if reopening {
                data.pre_close = None;
            }
            data.state = Some(obj.state);
            return Ok(None);
        }
        let current = self.jira_status(issue).await?;
        let now = if eq_ci(&current, &target) {
            current.clone()
        } else {
            self.move_issue(ctx, issue, &current, &target).await?;
            target
        };
        if closing && !self.is_closing_status(&current) {
            data.pre_close = Some(current);
        }
        if reopening {
            data.pre_close = None;
        }
        data.state = Some(obj.state);
        Ok(Some(now))
    }

    /// Makes the bot's status label on `repo#number` show `status`, removing its other
    /// status labels and leaving every other label alone. `known`: the current labels, when
    /// the caller has them fresh.
    pub(crate) async fn ensure_label(
        &self,
        ctx: &RuleContext,
        repo: &Repo,
        number: u64,
        status: &str,
        known: Option<&[String]>,
    ) -> Result<(), RuleError> {
        let Some(desired) = self.settings.status_label(status) else {
            return Ok(());
        };
        if self.settings.gate_name(&desired).is_some() {
            // Never write a label that would select a mapping.
            ctx.record(format!(
                "not labelling {repo}#{number} {desired:?}: it is a gate label"
            ));
            return Ok(());
        }
        let current: Vec<String> = match known {
            Some(labels) => labels.to_vec(),
            None => {
                self.github
                    .list_labels(repo, number)
                    .map_ok(|l| l.name)
                    .try_collect()
                    .await?
            }
        };
        let add = !current.iter().any(|l| l.eq_ignore_ascii_case(&desired));
        let remove: Vec<String> = current
            .iter()
            .filter(|l| self.settings.owns_label(l) && !l.eq_ignore_ascii_case(&desired))
            .cloned()
            .collect();
        if !add && remove.is_empty() {
            return Ok(());
        }
        let key = github_key(repo, number);
        if add {
            ctx.mark_write(&key, "label", &format!("+{}", desired.to_lowercase()))
                .await?;
        }
        for label in &remove {
            ctx.mark_write(&key, "label", &format!("-{}", label.to_lowercase()))
                .await?;
        }
        let mut description = format!("label {repo}#{number}");
        if add {
            description.push_str(&format!(" {desired:?}"));
        }
        if !remove.is_empty() {
            description.push_str(&format!(" (removing {})", remove.join(", ")));
        }
        let (github, repo) = (self.github.clone(), repo.clone());
        ctx.perform("github", description, async move {
            if add {
                github.add_labels(&repo, number, &[desired]).await?;
            }
            for label in &remove {
                github.remove_label(&repo, number, label).await?;
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Brings the Jira side of `obj` to what its state asks for: issue (found or created),
    /// link, comment, status, label.
    pub(crate) async fn reconcile(
        &self,
        ctx: &RuleContext,
        obj: &Tracked,
        depth: Depth,
    ) -> Result<RuleOutcome, RuleError> {
        let before = recorded(ctx);
        let key = obj.key();
        let (issue, mut data) = match ctx.link_from(&key).await? {
            Some(link) => match link.b.strip_prefix("jira:") {
                Some(issue) => (issue.to_owned(), LinkData::from_json(&link.data)),
                None => {
                    return Err(permanent(format!(
                        "{key} is linked to {}, which is not a Jira issue",
                        link.b
                    )));
                }
            },
            None => {
                let mapping = match self.mapping_for(obj) {
                    Ok(mapping) => mapping,
                    Err(reason) => return Ok(RuleOutcome::Skipped { reason }),
                };
                if obj.state.is_closed() {
                    return Ok(RuleOutcome::Skipped {
                        reason: format!("{key} is closed and has no Jira issue"),
                    });
                }
                let Some(issue) = self.find_or_create(ctx, obj, mapping).await? else {
                    // A dry run: what follows needs the new issue's key.
                    ctx.record(format!("would: comment on {key} naming the new issue"));
                    ctx.record(format!(
                        "would: move the new issue to {:?}",
                        self.status_for(obj.state)
                    ));
                    return Ok(RuleOutcome::Applied {
                        actions: Vec::new(),
                    });
                };
                let data = LinkData {
                    project: mapping.project.clone(),
                    ..LinkData::default()
                };
                // Linked at once: from here on, a retry finds the issue through the link.
                ctx.put_link(&key, &format!("jira:{issue}"), data.to_json())
                    .await?;
                (issue, data)
            }
        };
        let mut errors = Vec::new();
        if !data.commented {
            match self.comment(ctx, obj, &issue).await {
                Ok(()) => {
                    data.commented = true;
                    self.save(ctx, &key, &issue, &data).await?;
                }
                Err(error) => errors.push(error),
            }
        }
        let mut status = None;
        if data.state != Some(obj.state) {
            match self.follow_state(ctx, obj, &issue, &mut data).await {
                Ok(now) => {
                    status = now;
                    self.save(ctx, &key, &issue, &data).await?;
                }
                Err(error) => errors.push(error),
            }
        }
        if status.is_none() && depth.full && self.settings.labels.is_some() {
            match self.jira_status(&issue).await {
                Ok(now) => status = Some(now),
                Err(error) => errors.push(error),
            }
        }
        if let Some(status) = status {
            let known = depth.labels_current.then_some(obj.labels.as_slice());
            if let Err(error) = self
                .ensure_label(ctx, &obj.repo, obj.number, &status, known)
                .await
            {
                errors.push(error);
            }
        }
        if !errors.is_empty() {
            return Err(match errors.len() {
                1 => errors.remove(0),
                _ => RuleError::Partial(errors),
            });
        }
        Ok(if recorded(ctx) > before {
            RuleOutcome::Applied {
                actions: Vec::new(),
            }
        } else {
            RuleOutcome::Skipped {
                reason: format!("{key} and {issue} are already in sync"),
            }
        })
    }

    /// Follows an edited title into the Jira summary.
    pub(crate) async fn follow_title(
        &self,
        ctx: &RuleContext,
        obj: &Tracked,
    ) -> Result<RuleOutcome, RuleError> {
        let key = obj.key();
        let Some(link) = ctx.link_from(&key).await? else {
            return Ok(RuleOutcome::Skipped {
                reason: format!("{key} has no Jira issue"),
            });
        };
        let Some(issue) = link.b.strip_prefix("jira:").map(str::to_owned) else {
            return Err(permanent(format!("{key} is linked to {}", link.b)));
        };
        let summary = self.summary(obj);
        let mut fields = serde_json::Map::new();
        fields.insert("summary".into(), Value::String(summary));
        let jira = self.jira.clone();
        let target = issue.clone();
        ctx.perform(
            "jira",
            format!("set the summary of {issue} from {key}'s title"),
            async move { Ok(jira.update_fields(&target, fields).await?) },
        )
        .await?;
        Ok(RuleOutcome::Applied {
            actions: Vec::new(),
        })
    }

    /// Mirrors a Jira status change onto the GitHub label, unless it is the echo of the
    /// bot's own transition.
    pub(crate) async fn follow_jira_status(
        &self,
        ctx: &RuleContext,
        issue: &str,
        status: &str,
    ) -> Result<RuleOutcome, RuleError> {
        let object = format!("jira:{issue}");
        if ctx
            .is_echo(&object, "status", &status.to_lowercase())
            .await?
        {
            return Ok(RuleOutcome::Skipped {
                reason: format!("echo of our own move of {issue} to {status:?}"),
            });
        }
        let Some(link) = ctx.link_to(&object).await? else {
            return Ok(RuleOutcome::Skipped {
                reason: format!("{issue} is not linked to a GitHub object"),
            });
        };
        let Some((repo, number)) = super::tracked::parse_github_key(&link.a) else {
            return Err(permanent(format!(
                "{issue} is linked to {}, not a GitHub issue",
                link.a
            )));
        };
        if self.settings.labels.is_none() {
            return Ok(RuleOutcome::Skipped {
                reason: "status labels are off".into(),
            });
        }
        let before = recorded(ctx);
        self.ensure_label(ctx, &repo, number, status, None).await?;
        Ok(if recorded(ctx) > before {
            RuleOutcome::Applied {
                actions: Vec::new(),
            }
        } else {
            RuleOutcome::Skipped {
                reason: format!("{} already shows {status:?}", link.a),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jql_and_text_helpers() {
        assert_eq!(jql_string(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(jql_field("customfield_10904"), "cf[10904]");
        assert_eq!(jql_field("labels"), "labels");
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc\n\n[... truncated]");
        assert!(eq_ci(" Needs Triage", "needs triage"));
    }
}
