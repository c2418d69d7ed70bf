//! What the events of each side say, and what is built from it for the other side: the
//! incident an event reports (webhook or polled log entry), the change a Jira update
//! reports, and the Jira texts, labels and JQL made from an incident. Pure functions.

use hookbridge_core::Event;
use hookbridge_providers::jira::events::JiraEvent;
use hookbridge_providers::pagerduty::events::{
    Incident, IncidentDetail, IncidentEvent, PagerdutyEvent, Reference, WebhookFormat,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// The `event.client.name` of the deliveries the log-entries poller stores, which carry the
/// log entry as `event.log_entry`.
pub const POLLER_CLIENT: &str = "hookbridge log-entries poller";

/// The prefix of the event type of polled log entries: `incident.log_entry.<type>`, with
/// `<type>` the entry's type without `_log_entry` (`incident.log_entry.priority_change`).
/// Not PagerDuty's own event names, so rules written for its webhooks do not see a change
/// twice (once by webhook, once by the poller).
pub const LOG_ENTRY_EVENT_PREFIX: &str = "incident.log_entry.";

/// Log entry types that record a change of the incident's status or priority: the poller
/// gives the incident's status or priority as of the entry for these.
pub(crate) const STATE_ENTRY_TYPES: &[&str] = &[
    "trigger_log_entry",
    "acknowledge_log_entry",
    "unacknowledge_log_entry",
    "resolve_log_entry",
    "priority_change_log_entry",
];

/// A log entry as the poller stores it with its event (`event.log_entry`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolledLogEntry {
    /// The log entry's id: unique, the key that stops a timeline issue being created twice.
    pub id: String,
    /// `trigger_log_entry`, `priority_change_log_entry`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// PagerDuty's summary (`Priority changed from "P3" to "P1"`).
    #[serde(default)]
    pub summary: Option<String>,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who or what did it.
    #[serde(default)]
    pub agent: Option<Reference>,
    /// The channel, as PagerDuty sent it (a priority change's `new_priority` is here).
    #[serde(default)]
    pub channel: Option<Value>,
    /// The entry's page in the web app.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// What one event says about one incident.
#[derive(Clone, Debug)]
pub(crate) struct Observation {
    /// The incident, as of the event.
    pub incident: Incident,
    /// PagerDuty's time of that state: `occurred_at` of a webhook, `created_at` of a log
    /// entry.
    pub at: Option<OffsetDateTime>,
    /// Who caused it.
    pub agent: Option<Reference>,
    /// The log entry, for polled events.
    pub log_entry: Option<PolledLogEntry>,
    /// Whether the incident's status and priority are those at `at` (webhooks, and log
    /// entries of a status or priority change), so they may be synced.
    pub carries_state: bool,
    /// Text about the trigger (a V2 trigger entry's channel summary and details).
    pub details: Option<String>,
}

/// The incidents an event reports: one per incident event whose data is the incident (V3
/// and V2; each message of a V2 batch), none for notes, responders and other data kinds.
pub(crate) fn observations(event: &Event) -> Vec<Observation> {
    let Some(payload) = event.payload::<PagerdutyEvent>() else {
        return Vec::new();
    };
    let polled = polled_entry(event);
    let mut out = Vec::new();
    collect(payload, polled.as_ref(), &mut out);
    out
}

fn collect(payload: &PagerdutyEvent, polled: Option<&PolledLogEntry>, out: &mut Vec<Observation>) {
    match payload {
        PagerdutyEvent::Incident(e) if e.detail == IncidentDetail::Incident => {
            out.push(observation(e, polled));
        }
        PagerdutyEvent::V2Batch(batch) => {
            for message in &batch.messages {
                collect(message, None, out);
            }
        }
        _ => {}
    }
}

fn observation(e: &IncidentEvent, polled: Option<&PolledLogEntry>) -> Observation {
    match polled {
        Some(entry) => Observation {
            incident: e.incident.clone(),
            at: Some(entry.created_at),
            agent: entry.agent.clone().or_else(|| e.envelope.agent.clone()),
            log_entry: Some(entry.clone()),
            carries_state: STATE_ENTRY_TYPES.contains(&entry.kind.as_str()),
            details: None,
        },
        None => Observation {
            incident: e.incident.clone(),
            at: e.envelope.occurred_at,
            agent: e.envelope.agent.clone(),
            log_entry: None,
            carries_state: true,
            details: (e.envelope.format == WebhookFormat::V2)
                .then(|| v2_trigger_details(e))
                .flatten(),
        },
    }
}

/// The log entry of a delivery the poller stored; None for PagerDuty's own webhooks.
fn polled_entry(event: &Event) -> Option<PolledLogEntry> {
    if !event.name().as_str().starts_with(LOG_ENTRY_EVENT_PREFIX) {
        return None;
    }
    let document: Value = serde_json::from_slice(event.raw_json()?).ok()?;
    if document
        .pointer("/event/client/name")
        .and_then(Value::as_str)
        != Some(POLLER_CLIENT)
    {
        return None;
    }
    PolledLogEntry::deserialize(document.pointer("/event/log_entry")?).ok()
}

/// The original's issue description: a V2 trigger entry's channel summary and details.
fn v2_trigger_details(e: &IncidentEvent) -> Option<String> {
    let entry = e
        .log_entries
        .iter()
        .find(|l| l.kind == "trigger_log_entry")?;
    let channel = entry.channel.as_ref()?;
    let mut parts = Vec::new();
    if let Some(summary) = channel.get("summary").and_then(Value::as_str) {
        parts.push(summary.to_owned());
    }
    match channel.get("details") {
        Some(Value::String(s)) => parts.push(s.clone()),
        Some(Value::Null) | None => {}
        Some(other) => parts.push(other.to_string()),
    }
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// The incident's priority name (`P1`), if it has one.
pub(crate) fn priority_name(incident: &Incident) -> Option<&str> {
    incident
        .priority
        .as_ref()
        .and_then(|p| p.summary.as_deref())
        .filter(|s| !s.is_empty())
}

/// The new priority of a `priority_change_log_entry`: `channel.new_priority` (its `summary`
/// or `name`), else read from the summary (`Priority changed from "P3" to "P1"`,
/// `Changed the priority to P1`). None when the priority was removed.
pub(crate) fn new_priority(entry: &Value) -> Option<(Option<String>, String)> {
    if let Some(new) = entry
        .pointer("/channel/new_priority")
        .filter(|v| v.is_object())
    {
        let name = new
            .get("summary")
            .or_else(|| new.get("name"))
            .and_then(Value::as_str)?;
        let id = new.get("id").and_then(Value::as_str).map(str::to_owned);
        return Some((id, name.to_owned()));
    }
    let summary = entry.get("summary").and_then(Value::as_str)?;
    let (_, to) = summary.rsplit_once(" to ")?;
    let name = to
        .trim()
        .trim_matches(|c: char| c == '"' || c == '.' || c == '\'');
    (!name.is_empty() && !name.contains(' ')).then(|| (None, name.to_owned()))
}

/// What a Jira issue update changed that may follow back to PagerDuty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IssueChange {
    /// The issue key.
    pub key: String,
    /// The status it moved to.
    pub status_to: Option<String>,
    /// Whether a resolution was set where there was none.
    pub resolution_set: bool,
    /// The priority it got.
    pub priority_to: Option<String>,
}

/// The change a `jira:issue_updated` event reports on an issue of `project`; None for other
/// events, other projects, and changes of nothing synced.
pub(crate) fn issue_change(event: &Event, project: &str) -> Option<IssueChange> {
    let JiraEvent::Issue(e) = event.payload::<JiraEvent>()? else {
        return None;
    };
    if e.webhook_event.as_str() != "jira:issue_updated" {
        return None;
    }
    let in_project = match &e.issue.fields.project {
        Some(p) => p.key.eq_ignore_ascii_case(project),
        None => e
            .issue
            .key
            .split_once('-')
            .is_some_and(|(p, _)| p.eq_ignore_ascii_case(project)),
    };
    if !in_project {
        return None;
    }
    let changelog = e.changelog.as_ref()?;
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let status_to = changelog.item("status").and_then(|i| text(&i.to_string));
    let resolution_set = changelog
        .item("resolution")
        .is_some_and(|i| text(&i.to_string).is_some() && text(&i.from_string).is_none());
    let priority_to = changelog.item("priority").and_then(|i| text(&i.to_string));
    if status_to.is_none() && !resolution_set && priority_to.is_none() {
        return None;
    }
    Some(IssueChange {
        key: e.issue.key.clone(),
        status_to,
        resolution_set,
        priority_to,
    })
}

/// The object key of an incident in links and echo marks.
pub(crate) fn incident_key(id: &str) -> String {
    format!("pagerduty:{id}")
}

/// The object key of a Jira issue in links and echo marks.
pub(crate) fn issue_key(key: &str) -> String {
    format!("jira:{key}")
}

/// The label that finds an incident's issue again: `<prefix><incident id>`.
pub(crate) fn marker_label(prefix: &str, incident_id: &str) -> String {
    format!("{prefix}{}", label_safe(incident_id))
}

/// The label of an incident's checklist issues.
pub(crate) fn checklist_label(prefix: &str, incident_id: &str) -> String {
    format!("{prefix}{}-checklist", label_safe(incident_id))
}

/// The label of the timeline issue of a log entry.
pub(crate) fn timeline_label(prefix: &str, entry_id: &str) -> String {
    format!("{prefix}log-{}", label_safe(entry_id))
}

/// Ids from payloads as label text: letters, digits, `-` and `_` kept, anything else `_`.
fn label_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A value inside a JQL double-quoted string.
pub(crate) fn jql_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `template` with each `{key}` replaced by its value, escaped for a JQL string.
pub(crate) fn render_jql(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (key, value) in values {
        out = out.replace(&format!("{{{key}}}"), &jql_string(value));
    }
    out
}

/// JQL finding the issues that carry `label` in `project`, optionally of one issue type.
pub(crate) fn label_jql(project: &str, label: &str, issue_type: Option<&str>) -> String {
    let mut jql = format!(
        "project = \"{}\" AND labels = \"{}\"",
        jql_string(project),
        jql_string(label)
    );
    if let Some(issue_type) = issue_type {
        jql.push_str(&format!(" AND issuetype = \"{}\"", jql_string(issue_type)));
    }
    jql
}

/// Jira's summary limit.
const SUMMARY_MAX: usize = 254;

/// Text cut to at most `max` characters, with `…` when cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The issue summary of an incident: `[#4182] Checkout API 5xx rate above 5%`.
pub(crate) fn issue_summary(incident: &Incident) -> String {
    let title = incident
        .title
        .as_deref()
        .or(incident.summary.as_deref())
        .filter(|t| !t.trim().is_empty())
        .unwrap_or("PagerDuty incident");
    let text = match incident.number {
        Some(n) if !title.starts_with(&format!("[#{n}]")) => format!("[#{n}] {title}"),
        _ => title.to_owned(),
    };
    clip(&text, SUMMARY_MAX)
}

/// The issue description of an incident: its title, page, service, urgency, priority, and
/// the trigger's details when known.
pub(crate) fn issue_description(incident: &Incident, details: Option<&str>) -> String {
    let mut lines = Vec::new();
    let number = incident
        .number
        .map(|n| format!(" #{n}"))
        .unwrap_or_default();
    lines.push(format!(
        "PagerDuty incident{number}: {}",
        incident
            .title
            .as_deref()
            .or(incident.summary.as_deref())
            .unwrap_or(&incident.id)
    ));
    if let Some(url) = &incident.html_url {
        lines.push(url.clone());
    }
    if let Some(service) = incident.service.as_ref().and_then(|s| s.summary.as_deref()) {
        lines.push(format!("Service: {service}"));
    }
    if let Some(urgency) = &incident.urgency {
        lines.push(format!("Urgency: {}", urgency.as_str()));
    }
    if let Some(priority) = priority_name(incident) {
        lines.push(format!("Priority: {priority}"));
    }
    let mut text = lines.join("\n");
    if let Some(details) = details.filter(|d| !d.trim().is_empty()) {
        text.push_str("\n\n");
        text.push_str(&clip(details, 20_000));
    }
    text
}

/// The summary of a log entry's timeline issue.
pub(crate) fn timeline_summary(entry: &PolledLogEntry, incident: &Incident) -> String {
    let what = entry
        .summary
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| entry.kind.trim_end_matches("_log_entry").replace('_', " "));
    let text = match incident.number {
        Some(n) => format!("[#{n}] {what}"),
        None => what,
    };
    clip(&text, SUMMARY_MAX)
}

/// The description of a log entry's timeline issue.
pub(crate) fn timeline_description(entry: &PolledLogEntry) -> String {
    let mut lines = Vec::new();
    if let Ok(at) = entry
        .created_at
        .format(&time::format_description::well_known::Rfc3339)
    {
        lines.push(format!("At: {at}"));
    }
    lines.push(format!("Type: {}", entry.kind));
    if let Some(agent) = entry.agent.as_ref().and_then(|a| a.summary.as_deref()) {
        lines.push(format!("By: {agent}"));
    }
    if let Some(url) = &entry.html_url {
        lines.push(url.clone());
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jira_event(json: Value) -> Event {
        let typed = JiraEvent::from_json(&serde_json::to_vec(&json).unwrap()).unwrap();
        Event::new(
            hookbridge_core::ProviderKind::new("jira"),
            typed.name(),
            hookbridge_core::DeliveryId::new("d1"),
            typed,
        )
    }

    #[test]
    fn jira_changes_of_the_project_only() {
        let update = |project: &str, items: Value| {
            jira_event(json!({"webhookEvent": "jira:issue_updated",
                "issue": {"id": "1", "key": format!("{project}-7"), "fields": {"project": {"key": project}}},
                "changelog": {"items": items}}))
        };
        let event = update(
            "INC",
            json!([{"field": "status", "fieldId": "status", "fromString": "To Do", "toString": "Done"},
                   {"field": "resolution", "fieldId": "resolution", "fromString": null, "toString": "Done"},
                   {"field": "priority", "fieldId": "priority", "fromString": "High", "toString": "Highest"}]),
        );
        assert_eq!(
            issue_change(&event, "inc"),
            Some(IssueChange {
                key: "INC-7".into(),
                status_to: Some("Done".into()),
                resolution_set: true,
                priority_to: Some("Highest".into()),
            })
        );
        assert_eq!(issue_change(&event, "OPS"), None);
        // A resolution cleared, a summary edited: nothing that follows.
        let event = update(
            "INC",
            json!([{"field": "resolution", "fromString": "Done", "toString": null},
                   {"field": "summary", "fromString": "a", "toString": "b"}]),
        );
        assert_eq!(issue_change(&event, "INC"), None);
    }

    #[test]
    fn a_v2_batch_is_one_observation_per_incident_message() {
        let json = json!({"messages": [
            {"id": "m1", "event": "incident.trigger", "created_on": "2024-05-17T09:00:00Z",
             "incident": {"id": "PA", "status": "triggered", "priority": {"id": "P", "summary": "P1"}},
             "log_entries": [{"id": "L1", "type": "trigger_log_entry",
                "channel": {"summary": "Disk full", "details": "on db-1"}}]},
            {"id": "m2", "event": "incident.custom", "incident": {"id": "PB"}},
            {"id": "m3", "event": "incident.resolve", "created_on": "2024-05-17T09:05:00Z",
             "incident": {"id": "PA", "status": "resolved"}}
        ]});
        let typed = PagerdutyEvent::from_json(&serde_json::to_vec(&json).unwrap()).unwrap();
        let event = Event::new(
            hookbridge_core::ProviderKind::new("pagerduty"),
            typed.name(),
            hookbridge_core::DeliveryId::new("m1,m2,m3"),
            typed,
        );
        let seen = observations(&event);
        assert_eq!(seen.len(), 2);
        assert_eq!(priority_name(&seen[0].incident), Some("P1"));
        assert_eq!(seen[0].details.as_deref(), Some("Disk full\n\non db-1"));
        assert!(seen[0].carries_state && seen[0].log_entry.is_none());
        assert_eq!(
            seen[1].incident.status.as_ref().map(|s| s.as_str()),
            Some("resolved")
        );
    }

    #[test]
    fn new_priority_from_channel_or_summary() {
        let entry = json!({"channel": {"type": "web_trigger",
            "old_priority": {"id": "PX", "summary": "P3"},
            "new_priority": {"id": "PSO75BM", "summary": "P1"}}});
        assert_eq!(
            new_priority(&entry),
            Some((Some("PSO75BM".into()), "P1".into()))
        );
        let entry = json!({"channel": {"new_priority": {"id": "PY", "name": "P2"}}});
        assert_eq!(new_priority(&entry), Some((Some("PY".into()), "P2".into())));
        let entry = json!({"summary": "Priority changed from \"P3\" to \"P1\"", "channel": {"type": "web"}});
        assert_eq!(new_priority(&entry), Some((None, "P1".into())));
        let entry = json!({"summary": "Changed the priority to P2."});
        assert_eq!(new_priority(&entry), Some((None, "P2".into())));
        assert_eq!(new_priority(&json!({"summary": "Acknowledged"})), None);
    }

    #[test]
    fn jql_values_are_escaped() {
        assert_eq!(jql_string(r#"Ann "AJ" O\Neil"#), r#"Ann \"AJ\" O\\Neil"#);
        assert_eq!(
            render_jql(
                r#"project = "{project}" AND summary ~ "{name}""#,
                &[("project", "PERSON"), ("name", "Bo\"b\nX")]
            ),
            r#"project = "PERSON" AND summary ~ "Bo\"b X""#
        );
        assert_eq!(
            label_jql("INC", "pagerduty-Q1", Some("Incident")),
            r#"project = "INC" AND labels = "pagerduty-Q1" AND issuetype = "Incident""#
        );
    }

    #[test]
    fn labels_are_single_words() {
        assert_eq!(marker_label("pagerduty-", "Q1EZ AYE"), "pagerduty-Q1EZ_AYE");
        assert_eq!(checklist_label("pd-", "Q1"), "pd-Q1-checklist");
        assert_eq!(timeline_label("pd-", "R2"), "pd-log-R2");
    }

    #[test]
    fn summaries_are_numbered_and_clipped() {
        let mut incident: Incident =
            serde_json::from_value(json!({"id": "Q1", "number": 7, "title": "Disk full"})).unwrap();
        assert_eq!(issue_summary(&incident), "[#7] Disk full");
        incident.title = Some("x".repeat(400));
        let summary = issue_summary(&incident);
        assert_eq!(summary.chars().count(), SUMMARY_MAX);
        assert!(summary.ends_with('…'));
        incident.title = None;
        incident.number = None;
        assert_eq!(issue_summary(&incident), "PagerDuty incident");
    }
}
