//! The Jira side of the rule: the incident's issue (found again by its marker label before
//! one is created), its status and priority, and the issues linked to it (the assignee's
//! record, stakeholders, the checklist, the timeline). Every write goes through
//! `RuleContext::perform`, so dry runs record it instead.

use futures_util::TryStreamExt;
use hookbridge_core::RuleError;
use hookbridge_providers::jira::client::{Issue, JiraClient, NewIssue, TransitionOutcome};
use hookbridge_providers::pagerduty::client::PagerdutyClient;
use hookbridge_providers::pagerduty::events::{Incident, Reference};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::config::{Question, Settings, SeverityFormat};
use super::mapping::{
    self, Observation, PolledLogEntry, checklist_label, clip, issue_description, issue_summary,
    label_jql, marker_label, priority_name, render_jql, timeline_label,
};
use crate::engine::RuleContext;

/// What the rule remembers with the link `pagerduty:<incident>` -> `jira:<KEY>`: the last
/// PagerDuty state it saw (so only changes follow, and older states do not overwrite newer
/// ones), and which of the linked issues are done (so a retry redoes only what failed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LinkState {
    /// The incident's last status seen.
    #[serde(default)]
    pub pd_status: Option<String>,
    /// The incident's last priority seen.
    #[serde(default)]
    pub pd_priority: Option<String>,
    /// PagerDuty's time of that state, unix nanoseconds.
    #[serde(default)]
    pub pd_at: Option<i64>,
    /// The record issue linked, once done (`""` when the user has none).
    #[serde(default)]
    pub record: Option<String>,
    /// The stakeholder issues linked.
    #[serde(default)]
    pub stakeholders: Vec<String>,
    /// The checklist questions whose issue exists (and is linked), by summary.
    #[serde(default)]
    pub checklist: Vec<String>,
}

impl LinkState {
    pub(crate) fn from_json(value: &Value) -> Self {
        serde_json::from_value(value.clone()).unwrap_or_default()
    }

    pub(crate) fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The Jira side of one integration.
pub(crate) struct JiraSide<'a> {
    pub settings: &'a Settings,
    pub jira: &'a JiraClient,
    pub pagerduty: &'a PagerdutyClient,
}

fn permanent(message: impl Into<String>) -> RuleError {
    RuleError::Permanent {
        message: message.into(),
    }
}

impl JiraSide<'_> {
    /// The first `limit` issues matching `jql`.
    async fn search(
        &self,
        jql: &str,
        fields: &[&str],
        limit: usize,
    ) -> Result<Vec<Issue>, RuleError> {
        let mut stream = self.jira.search(jql, fields);
        let mut out = Vec::new();
        while out.len() < limit {
            match stream.try_next().await? {
                Some(issue) => out.push(issue),
                None => break,
            }
        }
        Ok(out)
    }

    fn extra_labels(&self, marker: String) -> Value {
        let mut labels = vec![marker];
        labels.extend(self.settings.config.labels.iter().cloned());
        json!(labels)
    }

    /// The severity field's id and value for a PagerDuty priority, if configured and mapped.
    async fn severity(
        &self,
        pd_priority: Option<&str>,
    ) -> Result<Option<(String, Value)>, RuleError> {
        let Some(severity) = &self.settings.config.severity else {
            return Ok(None);
        };
        let Some(value) = pd_priority.and_then(|p| lookup(&severity.values, p)) else {
            return Ok(None);
        };
        let id = match self.jira.field_id(&severity.field).await {
            Ok(id) => id,
            // As the original did: the field is set when the site has it.
            Err(error) if error.is_not_found() => {
                tracing::warn!(field = %severity.field, "no severity field of that name; left unset");
                return Ok(None);
            }
            Err(error) => return Err(error.into()),
        };
        let value = match severity.format {
            SeverityFormat::Option => json!({"value": value}),
            SeverityFormat::Text => json!(value),
        };
        Ok(Some((id, value)))
    }

    /// The incident's issue: found by its marker label (a retry after a crash between
    /// creating it and storing the link), else created. None in a dry run.
    pub async fn find_or_create(
        &self,
        ctx: &RuleContext,
        obs: &Observation,
    ) -> Result<Option<(String, bool)>, RuleError> {
        let config = &self.settings.config;
        let incident = &obs.incident;
        let marker = marker_label(&config.marker_label_prefix, &incident.id);
        let jql = label_jql(&config.project, &marker, None);
        if let Some(existing) = self.search(&jql, &["summary"], 1).await?.into_iter().next() {
            return Ok(Some((existing.key, false)));
        }
        let mut issue = NewIssue::new(&config.project, &config.issue_type, issue_summary(incident))
            .description(issue_description(incident, obs.details.as_deref()))
            .field("labels", self.extra_labels(marker));
        let pd_priority = priority_name(incident);
        if let Some(jira_priority) = pd_priority.and_then(|p| lookup(&config.priority_map, p)) {
            issue = issue.field("priority", json!({"name": jira_priority}));
        }
        if let Some((id, value)) = self.severity(pd_priority).await? {
            issue = issue.field(id, value);
        }
        let created = ctx
            .perform(
                "jira",
                format!(
                    "create {} issue for PagerDuty incident {}",
                    config.project, incident.id
                ),
                async { Ok(self.jira.create_issue(&issue).await?) },
            )
            .await?;
        Ok(created.map(|c| (c.key, true)))
    }

    /// Moves the issue to `status` unless it is there already, with an echo mark so the
    /// webhook of the move is not synced back.
    pub async fn set_status(
        &self,
        ctx: &RuleContext,
        key: &str,
        status: &str,
    ) -> Result<bool, RuleError> {
        let object = mapping::issue_key(key);
        let value = status.to_lowercase();
        ctx.mark_write(&object, "status", &value).await?;
        let outcome = ctx
            .perform("jira", format!("move {key} to {status}"), async {
                Ok(self.jira.transition_to_status(key, status).await?)
            })
            .await;
        match outcome {
            Ok(Some(TransitionOutcome::Transitioned { .. })) => Ok(true),
            Ok(Some(TransitionOutcome::AlreadyInStatus { .. })) | Ok(None) => {
                // Nothing was written, so no webhook will come back: drop the mark, or a
                // genuine change to this status would be taken for an echo.
                ctx.is_echo(&object, "status", &value).await?;
                Ok(false)
            }
            Err(error) => {
                ctx.is_echo(&object, "status", &value).await?;
                Err(error)
            }
        }
    }

    /// Gives the issue the Jira priority (and severity) of `pd_priority`, when it differs.
    pub async fn set_priority(
        &self,
        ctx: &RuleContext,
        key: &str,
        pd_priority: &str,
    ) -> Result<bool, RuleError> {
        let Some(jira_priority) = lookup(&self.settings.config.priority_map, pd_priority) else {
            ctx.record(format!(
                "no Jira priority for PagerDuty priority {pd_priority}"
            ));
            return Ok(false);
        };
        let severity = self.severity(Some(pd_priority)).await?;
        let mut wanted: Vec<&str> = vec!["priority"];
        if let Some((id, _)) = &severity {
            wanted.push(id);
        }
        let current = self.jira.get_issue(key, &wanted).await?;
        let mut fields = Map::new();
        let current_priority = current.fields.priority.as_ref().map(|p| p.name.as_str());
        if !current_priority.is_some_and(|p| p.eq_ignore_ascii_case(jira_priority)) {
            fields.insert("priority".into(), json!({"name": jira_priority}));
        }
        if let Some((id, value)) = severity
            && current.fields.other.get(&id).map(severity_text) != Some(severity_text(&value))
        {
            fields.insert(id, value);
        }
        if fields.is_empty() {
            return Ok(false);
        }
        let object = mapping::issue_key(key);
        let value = jira_priority.to_lowercase();
        let marks_priority = fields.contains_key("priority");
        if marks_priority {
            ctx.mark_write(&object, "priority", &value).await?;
        }
        let result = ctx
            .perform(
                "jira",
                format!("set {key} priority to {jira_priority}"),
                async { Ok(self.jira.update_fields(key, fields).await?) },
            )
            .await;
        if let Err(error) = result {
            if marks_priority {
                ctx.is_echo(&object, "priority", &value).await?;
            }
            return Err(error);
        }
        Ok(true)
    }

    /// Links the issue to the record issue of the incident's assignee (else of the user who
    /// caused the event). Ok(None) when there is no user to look up yet.
    pub async fn link_record(
        &self,
        ctx: &RuleContext,
        key: &str,
        obs: &Observation,
    ) -> Result<Option<String>, RuleError> {
        let Some(record) = &self.settings.config.record else {
            return Ok(Some(String::new()));
        };
        let user: Option<&Reference> = obs
            .incident
            .assignees
            .first()
            .or_else(|| obs.agent.as_ref().filter(|a| a.is_user()));
        let Some(user) = user else {
            return Ok(None);
        };
        let name = user.summary.clone().unwrap_or_default();
        let email = if record.jql.contains("{email}") {
            self.pagerduty
                .get_user(&user.id)
                .await?
                .email
                .unwrap_or_default()
        } else {
            String::new()
        };
        let jql = render_jql(
            &record.jql,
            &[
                ("project", &record.project),
                ("name", &name),
                ("email", &email),
                ("id", &user.id),
            ],
        );
        let hits = self.search(&jql, &["summary"], 20).await?;
        // The original took the first hit of a fuzzy `summary ~`: prefer an exact name.
        let hit =
            hits.iter()
                .find(|i| {
                    i.fields.summary.as_deref().is_some_and(|s| {
                        !name.is_empty() && s.trim().eq_ignore_ascii_case(name.trim())
                    })
                })
                .or(hits.first());
        let Some(hit) = hit else {
            ctx.record(format!("no record issue for PagerDuty user {}", user.id));
            return Ok(Some(String::new()));
        };
        self.link(ctx, &record.link_type, key, &hit.key).await?;
        Ok(Some(hit.key.clone()))
    }

    /// Links `incident_issue` (as `inwardIssue`) to `other` (as `outwardIssue`).
    pub async fn link(
        &self,
        ctx: &RuleContext,
        link_type: &str,
        incident_issue: &str,
        other: &str,
    ) -> Result<(), RuleError> {
        ctx.perform(
            "jira",
            format!("link {incident_issue} to {other} ({link_type})"),
            async {
                Ok(self
                    .jira
                    .create_link(link_type, incident_issue, other)
                    .await?)
            },
        )
        .await?;
        Ok(())
    }

    /// Creates the checklist issues not yet created, sub-tasks of the issue or issues linked
    /// to it; `done` holds the questions done, and grows as each one is (the caller stores
    /// it whether or not a later question failed).
    pub async fn checklist(
        &self,
        ctx: &RuleContext,
        key: &str,
        incident_id: &str,
        done: &mut Vec<String>,
    ) -> Result<(), RuleError> {
        let config = &self.settings.config;
        let Some(checklist) = &config.checklist else {
            return Ok(());
        };
        let pending: Vec<&Question> = self
            .settings
            .questions
            .iter()
            .filter(|q| !done.iter().any(|d| d == q.summary()))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let project = checklist.project.as_deref().unwrap_or(&config.project);
        let label = checklist_label(&config.marker_label_prefix, incident_id);
        // Issues created by an attempt that died before recording them.
        let existing = self
            .search(&label_jql(project, &label, None), &["summary"], 1000)
            .await?;
        for question in pending {
            let summary = clip(question.summary(), 254);
            let found = existing
                .iter()
                .find(|i| i.fields.summary.as_deref().map(str::trim) == Some(summary.as_str()))
                .map(|i| i.key.clone());
            let question_key = match found {
                Some(k) => Some(k),
                None => {
                    let mut issue = NewIssue::new(project, &checklist.issue_type, &summary)
                        .field("labels", self.extra_labels(label.clone()));
                    if let Some(description) = question.description() {
                        issue = issue.description(description);
                    }
                    if checklist.link_type.is_none() {
                        issue = issue.field("parent", json!({"key": key}));
                    }
                    ctx.perform(
                        "jira",
                        format!("create checklist issue {summary:?} for {key}"),
                        async { Ok(self.jira.create_issue(&issue).await?) },
                    )
                    .await?
                    .map(|c| c.key)
                }
            };
            if let (Some(link_type), Some(question_key)) = (&checklist.link_type, &question_key) {
                self.link(ctx, link_type, key, question_key).await?;
            }
            done.push(question.summary().to_owned());
        }
        Ok(())
    }

    /// The timeline issue of a log entry, once: found by its label when an attempt died
    /// after creating it. Returns its key (None in a dry run).
    pub async fn timeline(
        &self,
        ctx: &RuleContext,
        key: &str,
        entry: &PolledLogEntry,
        incident: &Incident,
    ) -> Result<Option<String>, RuleError> {
        let Some(timeline) = &self.settings.config.timeline else {
            return Ok(None);
        };
        let label = timeline_label(&self.settings.config.marker_label_prefix, &entry.id);
        let jql = label_jql(&timeline.project, &label, None);
        let existing = self.search(&jql, &["summary"], 1).await?.into_iter().next();
        let entry_key = match existing {
            Some(issue) => Some(issue.key),
            None => {
                let issue = NewIssue::new(
                    &timeline.project,
                    &timeline.issue_type,
                    mapping::timeline_summary(entry, incident),
                )
                .description(mapping::timeline_description(entry))
                .field("labels", self.extra_labels(label));
                ctx.perform(
                    "jira",
                    format!("create timeline issue for log entry {}", entry.id),
                    async { Ok(self.jira.create_issue(&issue).await?) },
                )
                .await?
                .map(|c| c.key)
            }
        };
        if let Some(entry_key) = &entry_key {
            self.link(ctx, &timeline.link_type, key, entry_key).await?;
        }
        Ok(entry_key)
    }
}

/// A map lookup by PagerDuty priority name, case-insensitive.
pub(crate) fn lookup<'m>(
    map: &'m std::collections::BTreeMap<String, String>,
    key: &str,
) -> Option<&'m str> {
    map.get(key)
        .or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
}

/// The text of a severity value, whether a select option or a string.
fn severity_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        other => other.to_string(),
    }
}

/// An error that says which step failed.
pub(crate) fn step_error(step: &str, error: RuleError) -> RuleError {
    match error {
        RuleError::Transient {
            message,
            retry_after,
        } => RuleError::Transient {
            message: format!("{step}: {message}"),
            retry_after,
        },
        RuleError::Permanent { message } => permanent(format!("{step}: {message}")),
        partial => partial,
    }
}
