//! The rule: one rule for both directions (links, state and echo marks are scoped by rule
//! name, so the two directions must share one).
//!
//! - PagerDuty -> Jira, from webhooks (V3 and V2) and polled log entries: an incident of a
//!   configured priority without an issue gets one (with the record, stakeholder and
//!   checklist issues); a linked incident's status and priority changes move the issue; a
//!   polled log entry of a linked incident gets a timeline issue.
//! - Jira -> PagerDuty, from `jira:issue_updated`: a move to a resolving status (or a
//!   resolution set) resolves the incident; a priority change sets the incident's priority.
//!
//! Loops stop three ways: echo marks on every write (the write's own webhook is skipped),
//! change detection (only a status or priority that differs from the last one seen is
//! synced, and a state older than the last one seen is not), and desired-state writes (a
//! write that would change nothing is not sent).

use std::sync::Arc;

use async_trait::async_trait;
use hookbridge_core::{EndpointName, Event, RuleError, RuleOutcome, SyncRule};
use hookbridge_providers::jira::client::JiraClient;
use hookbridge_providers::pagerduty::client::{
    IncidentTarget, PagerdutyClient, StatusChange, SyncOutcome,
};
use hookbridge_providers::pagerduty::events::{IncidentDetail, PagerdutyEvent};
use serde_json::json;
use time::OffsetDateTime;

use super::config::Settings;
use super::issues::{JiraSide, LinkState, step_error};
use super::mapping::{self, IssueChange, Observation, incident_key, issue_key, priority_name};
use crate::engine::RuleContext;
use crate::integrations::endpoint::on_endpoint;

/// The rule of a `pagerduty-jira` integration, named after it.
pub struct PagerdutyJiraRule {
    name: String,
    settings: Arc<Settings>,
    pagerduty: PagerdutyClient,
    jira: JiraClient,
}

impl std::fmt::Debug for PagerdutyJiraRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagerdutyJiraRule")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What one observation led to.
enum Step {
    /// Something was written or remembered.
    Applied,
    /// Nothing to do, and why.
    Skipped(String),
}

impl PagerdutyJiraRule {
    /// The rule `name` with validated settings and its clients.
    pub(crate) fn new(
        name: &str,
        settings: Arc<Settings>,
        pagerduty: PagerdutyClient,
        jira: JiraClient,
    ) -> Self {
        Self {
            name: name.to_owned(),
            settings,
            pagerduty,
            jira,
        }
    }

    fn side(&self) -> JiraSide<'_> {
        JiraSide {
            settings: &self.settings,
            jira: &self.jira,
            pagerduty: &self.pagerduty,
        }
    }

    fn creates(&self, priority: Option<&str>) -> bool {
        priority.is_some_and(|p| {
            self.settings
                .config
                .create_priorities
                .iter()
                .any(|c| c.eq_ignore_ascii_case(p))
        })
    }

    /// The Jira status a PagerDuty status moves the issue to, if mapped.
    fn status_target(&self, status: &str) -> Option<&str> {
        let map = &self.settings.config.status_map;
        let target = match status {
            "triggered" => &map.triggered,
            "acknowledged" => &map.acknowledged,
            "resolved" => &map.resolved,
            _ => return None,
        };
        Some(target.trim()).filter(|t| !t.is_empty())
    }

    async fn apply_pagerduty(
        &self,
        ctx: &RuleContext,
        event: &Event,
    ) -> Result<RuleOutcome, RuleError> {
        let observations = mapping::observations(event);
        if observations.is_empty() {
            return Ok(RuleOutcome::Skipped {
                reason: "the event carries no incident state".into(),
            });
        }
        let mut applied = false;
        let mut reasons = Vec::new();
        let mut errors = Vec::new();
        for obs in &observations {
            match self.apply_observation(ctx, obs).await {
                Ok(Step::Applied) => applied = true,
                Ok(Step::Skipped(reason)) => reasons.push(reason),
                Err(error) => errors.push(error),
            }
        }
        finish(applied, reasons, errors)
    }

    async fn apply_observation(
        &self,
        ctx: &RuleContext,
        obs: &Observation,
    ) -> Result<Step, RuleError> {
        let config = &self.settings.config;
        let incident = &obs.incident;
        let pd_key = incident_key(&incident.id);
        let priority = priority_name(incident).map(str::to_owned);
        let side = self.side();
        let (key, mut state, created) = match ctx.link_from(&pd_key).await? {
            Some(link) => {
                let Some(key) = link.b.strip_prefix("jira:") else {
                    return Err(RuleError::Permanent {
                        message: format!("{pd_key} is linked to {}, not a Jira issue", link.b),
                    });
                };
                (key.to_owned(), LinkState::from_json(&link.data), false)
            }
            None => {
                if !self.creates(priority.as_deref()) {
                    return Ok(Step::Skipped(format!(
                        "incident {} has priority {}, which creates no issue",
                        incident.id,
                        priority.as_deref().unwrap_or("none")
                    )));
                }
                let Some((key, created_now)) = side.find_or_create(ctx, obs).await? else {
                    // A dry run: the creation is recorded, nothing follows from it.
                    return Ok(Step::Applied);
                };
                let state = LinkState {
                    // A new issue was created with the incident's priority.
                    pd_priority: if created_now { priority.clone() } else { None },
                    ..LinkState::default()
                };
                // Stored at once: from here on a retry finds the issue by its link.
                ctx.put_link(&pd_key, &issue_key(&key), state.to_json())
                    .await?;
                tracing::info!(rule = %self.name, incident = %incident.id, issue = %key, created_now, "incident linked to its issue");
                (key, state, true)
            }
        };
        let before = state.clone();
        let mut errors = Vec::new();

        if obs.carries_state && is_fresh(obs.at, state.pd_at) {
            if let Some(status) = incident.status.as_ref().map(|s| s.as_str().to_owned())
                && state.pd_status.as_deref() != Some(status.as_str())
            {
                let result = if ctx.is_echo(&pd_key, "status", &status).await? {
                    ctx.record(format!(
                        "{pd_key} status {status} is hookbridge's own write"
                    ));
                    Ok(())
                } else if let Some(target) = self.status_target(&status) {
                    side.set_status(ctx, &key, target).await.map(drop)
                } else {
                    Ok(())
                };
                match result {
                    Ok(()) => state.pd_status = Some(status),
                    Err(e) => errors.push(step_error("status", e)),
                }
            }
            if let Some(p) = &priority
                && state.pd_priority.as_deref() != Some(p.as_str())
            {
                let result = if ctx.is_echo(&pd_key, "priority", &p.to_lowercase()).await? {
                    ctx.record(format!("{pd_key} priority {p} is hookbridge's own write"));
                    Ok(())
                } else {
                    side.set_priority(ctx, &key, p).await.map(drop)
                };
                match result {
                    Ok(()) => state.pd_priority = Some(p.clone()),
                    Err(e) => errors.push(step_error("priority", e)),
                }
            }
            if let Some(at) = obs.at.map(unix_nanos) {
                state.pd_at = Some(state.pd_at.map_or(at, |prev| prev.max(at)));
            }
        }

        // The issues linked with a new incident issue; each is recorded when done, so a
        // retry (or the next event) does only what is missing.
        if config.record.is_some() && state.record.is_none() {
            match side.link_record(ctx, &key, obs).await {
                Ok(done) => state.record = done,
                Err(e) => errors.push(step_error("record link", e)),
            }
        }
        if let Some(stakeholders) = &config.stakeholders {
            for other in &stakeholders.issues {
                if state.stakeholders.contains(other) {
                    continue;
                }
                match side.link(ctx, &stakeholders.link_type, &key, other).await {
                    Ok(()) => state.stakeholders.push(other.clone()),
                    Err(e) => {
                        errors.push(step_error("stakeholder link", e));
                        break;
                    }
                }
            }
        }
        if let Err(e) = side
            .checklist(ctx, &key, &incident.id, &mut state.checklist)
            .await
        {
            errors.push(step_error("checklist", e));
        }
        if state != before {
            ctx.put_link(&pd_key, &issue_key(&key), state.to_json())
                .await?;
        }

        let mut timeline_done = false;
        if let Some(entry) = &obs.log_entry
            && config.timeline.is_some()
        {
            let state_key = format!("timeline:{}", entry.id);
            if ctx.state(&state_key).await?.is_none() {
                match side.timeline(ctx, &key, entry, incident).await {
                    Ok(Some(entry_key)) => {
                        ctx.put_state(&state_key, &json!(entry_key)).await?;
                        timeline_done = true;
                    }
                    Ok(None) => {}
                    Err(e) => errors.push(step_error("timeline", e)),
                }
            }
        }

        if !errors.is_empty() {
            return Err(one_or_partial(errors));
        }
        if created || timeline_done || state != before {
            Ok(Step::Applied)
        } else {
            Ok(Step::Skipped(format!(
                "{key} already matches incident {}",
                incident.id
            )))
        }
    }

    async fn apply_jira(
        &self,
        ctx: &RuleContext,
        change: IssueChange,
    ) -> Result<RuleOutcome, RuleError> {
        let jira_key = issue_key(&change.key);
        let Some(link) = ctx.link_to(&jira_key).await? else {
            return Ok(RuleOutcome::Skipped {
                reason: format!("{} is not an incident's issue", change.key),
            });
        };
        let Some(incident_id) = link.a.strip_prefix("pagerduty:") else {
            return Ok(RuleOutcome::Skipped {
                reason: format!("{} is linked to {}, not an incident", change.key, link.a),
            });
        };
        let pd_key = link.a.clone();
        let mut target = IncidentTarget::default();
        let mut reasons = Vec::new();
        let mut status_is_echo = false;
        if let Some(status) = &change.status_to {
            let value = status.to_lowercase();
            if ctx.is_echo(&jira_key, "status", &value).await? {
                status_is_echo = true;
                reasons.push(format!("status {status} is hookbridge's own write"));
            } else if self.settings.resolve_statuses.contains(&value) {
                target.status = Some(StatusChange::Resolved);
            }
        }
        // A resolution set with hookbridge's own move is part of that move.
        if change.resolution_set && !status_is_echo && self.settings.config.resolve_on_resolution {
            target.status = Some(StatusChange::Resolved);
        }
        if let Some(priority) = &change.priority_to {
            let value = priority.to_lowercase();
            if ctx.is_echo(&jira_key, "priority", &value).await? {
                reasons.push(format!("priority {priority} is hookbridge's own write"));
            } else if let Some(pd) = self.settings.jira_to_pd_priority.get(&value) {
                target.priority = Some(pd.clone());
            } else {
                reasons.push(format!(
                    "no PagerDuty priority for Jira priority {priority}"
                ));
            }
        }
        if target == IncidentTarget::default() {
            if reasons.is_empty() {
                reasons.push(format!(
                    "nothing in the change of {} follows to PagerDuty",
                    change.key
                ));
            }
            return Ok(RuleOutcome::Skipped {
                reason: reasons.join("; "),
            });
        }
        // Marked before the write: its webhook may be handled before the write returns.
        if target.status.is_some() {
            ctx.mark_write(&pd_key, "status", "resolved").await?;
        }
        let priority_mark = target.priority.as_ref().map(|p| p.to_lowercase());
        if let Some(p) = &priority_mark {
            ctx.mark_write(&pd_key, "priority", p).await?;
        }
        let mut description = format!("update PagerDuty incident {incident_id}:");
        if target.status.is_some() {
            description.push_str(" resolve");
        }
        if let Some(p) = &target.priority {
            description.push_str(&format!(" priority {p}"));
        }
        let outcome = ctx
            .perform("pagerduty", description, async {
                Ok(self.pagerduty.sync_incident(incident_id, &target).await?)
            })
            .await;
        // Marks of fields not written are taken back: no webhook will consume them.
        let (status_written, priority_written) = match &outcome {
            Ok(Some(SyncOutcome::Updated { update, .. })) => {
                (update.status.is_some(), update.priority_id.is_some())
            }
            _ => (false, false),
        };
        if target.status.is_some() && !status_written {
            ctx.is_echo(&pd_key, "status", "resolved").await?;
        }
        if let Some(p) = &priority_mark
            && !priority_written
        {
            ctx.is_echo(&pd_key, "priority", p).await?;
        }
        match outcome? {
            Some(SyncOutcome::Unchanged(_)) => Ok(RuleOutcome::Skipped {
                reason: format!("incident {incident_id} already matches {}", change.key),
            }),
            _ => Ok(RuleOutcome::Applied {
                actions: Vec::new(),
            }),
        }
    }
}

#[async_trait]
impl SyncRule<RuleContext> for PagerdutyJiraRule {
    fn name(&self) -> &str {
        &self.name
    }

    fn matches(&self, event: &Event) -> bool {
        match event.provider().as_str() {
            "pagerduty" => event
                .payload::<PagerdutyEvent>()
                .is_some_and(carries_incident),
            "jira" => mapping::issue_change(event, &self.settings.config.project).is_some(),
            _ => false,
        }
    }

    async fn apply(&self, ctx: &RuleContext, event: &Event) -> Result<RuleOutcome, RuleError> {
        // Several PagerDuty (or Jira) endpoints may feed integrations with other mappings:
        // act only on deliveries of this one's endpoints.
        let endpoint = match event.provider().as_str() {
            "pagerduty" => &self.settings.config.pagerduty_endpoint,
            _ => &self.settings.config.jira_endpoint,
        };
        if !on_endpoint(ctx, Some(&EndpointName::new(endpoint.as_str()))).await? {
            return Ok(RuleOutcome::Skipped {
                reason: "delivered to another endpoint".into(),
            });
        }
        match event.provider().as_str() {
            "pagerduty" => self.apply_pagerduty(ctx, event).await,
            "jira" => match mapping::issue_change(event, &self.settings.config.project) {
                Some(change) => self.apply_jira(ctx, change).await,
                None => Ok(RuleOutcome::Skipped {
                    reason: "no change that follows to PagerDuty".into(),
                }),
            },
            other => Ok(RuleOutcome::Skipped {
                reason: format!("not a PagerDuty or Jira event ({other})"),
            }),
        }
    }
}

/// Whether a PagerDuty event carries an incident's state (not a note, a responder, ...).
fn carries_incident(event: &PagerdutyEvent) -> bool {
    match event {
        PagerdutyEvent::Incident(e) => e.detail == IncidentDetail::Incident,
        PagerdutyEvent::V2Batch(batch) => batch.messages.iter().any(carries_incident),
        _ => false,
    }
}

/// Whether a state of `at` is not older than the last one seen.
fn is_fresh(at: Option<OffsetDateTime>, seen: Option<i64>) -> bool {
    match (at, seen) {
        (Some(at), Some(seen)) => unix_nanos(at) >= seen,
        _ => true,
    }
}

fn unix_nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

fn one_or_partial(mut errors: Vec<RuleError>) -> RuleError {
    if errors.len() == 1 {
        errors.remove(0)
    } else {
        RuleError::Partial(errors)
    }
}

fn finish(
    applied: bool,
    reasons: Vec<String>,
    errors: Vec<RuleError>,
) -> Result<RuleOutcome, RuleError> {
    if !errors.is_empty() {
        return Err(one_or_partial(errors));
    }
    if applied {
        Ok(RuleOutcome::Applied {
            actions: Vec::new(),
        })
    } else {
        Ok(RuleOutcome::Skipped {
            reason: reasons.join("; "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness() {
        let t = time::macros::datetime!(2024-05-17 09:00 UTC);
        assert!(is_fresh(Some(t), None));
        assert!(is_fresh(None, Some(5)));
        assert!(is_fresh(Some(t), Some(unix_nanos(t))));
        assert!(!is_fresh(Some(t), Some(unix_nanos(t) + 1)));
    }

    #[test]
    fn errors_are_combined() {
        let e = one_or_partial(vec![RuleError::Permanent {
            message: "x".into(),
        }]);
        assert!(matches!(e, RuleError::Permanent { .. }));
        let e = one_or_partial(vec![
            RuleError::Permanent {
                message: "x".into(),
            },
            RuleError::Transient {
                message: "y".into(),
                retry_after: None,
            },
        ]);
        assert!(e.is_transient());
        assert!(matches!(
            finish(false, vec!["a".into(), "b".into()], vec![]).unwrap(),
            RuleOutcome::Skipped { reason } if reason == "a; b"
        ));
    }
}
