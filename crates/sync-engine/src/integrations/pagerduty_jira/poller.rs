//! The log-entries poller: `GET /log_entries` on an interval, each new entry stored as a
//! delivery on the PagerDuty endpoint, in a V3 shape the PagerDuty provider parses.
//!
//! The cursor is the end of the last window read completely. Each poll reads from a little
//! before it (`overlap_secs`, for entries PagerDuty lists late) to now, at most
//! `max_window_secs` at a time; entries read twice have the same delivery id
//! (`log_entry:<id>`) and are skipped by the inbox. The engine stores the deliveries and the
//! new cursor in one transaction, and a poll that fails part-way returns an error and moves
//! nothing: no entry is skipped or stored twice.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt;
use hookbridge_core::{DeliveryId, EndpointName};
use hookbridge_providers::api::ApiError;
use hookbridge_providers::pagerduty::client::{LogEntryInclude, LogEntryQuery, PagerdutyClient};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::config::LogEntriesConfig;
use super::mapping::{LOG_ENTRY_EVENT_PREFIX, POLLER_CLIENT, new_priority};
use crate::engine::{Poll, PollError, Source};
use crate::store::NewDelivery;

/// The smallest window a poll narrows to when PagerDuty refuses a window as too large.
const MIN_WINDOW: time::Duration = time::Duration::minutes(1);

/// The poller of one integration, named `<integration>:log-entries`.
pub struct LogEntriesSource {
    name: String,
    endpoint: EndpointName,
    client: PagerdutyClient,
    config: LogEntriesConfig,
}

impl std::fmt::Debug for LogEntriesSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogEntriesSource")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl LogEntriesSource {
    /// A poller named `<integration>:log-entries` storing on `endpoint`.
    pub fn new(
        integration: &str,
        endpoint: EndpointName,
        client: PagerdutyClient,
        config: LogEntriesConfig,
    ) -> Self {
        Self {
            name: format!("{integration}:log-entries"),
            endpoint,
            client,
            config,
        }
    }

    /// Polls as if it were `now`: the window after `cursor` (an RFC 3339 time).
    pub async fn poll_at(
        &self,
        cursor: Option<String>,
        now: OffsetDateTime,
    ) -> Result<Poll, PollError> {
        let previous = cursor.as_deref().and_then(|c| match OffsetDateTime::parse(c, &Rfc3339) {
            Ok(t) => Some(t),
            Err(error) => {
                // A cursor that cannot be read would stop the poller for good: start over
                // from the initial look-back instead, and say so.
                tracing::warn!(source = %self.name, %error, "unreadable cursor; starting from the initial look-back");
                None
            }
        });
        let start = match previous {
            Some(at) => at - secs(self.config.overlap_secs),
            None => now - secs(self.config.initial_lookback_secs),
        };
        if start >= now {
            // A cursor ahead of this clock: nothing to read yet.
            return Ok(Poll {
                deliveries: Vec::new(),
                cursor: format_time(previous.unwrap_or(now), &self.name)?,
            });
        }
        let mut until = (start + secs(self.config.max_window_secs)).min(now);
        let entries = loop {
            match self.fetch(start, until).await {
                Ok(entries) => break entries,
                // PagerDuty refuses to page past 10 000 entries with a 400: read less.
                Err(ApiError::Validation { status: 400, .. }) if until - start > MIN_WINDOW * 2 => {
                    until = start + (until - start) / 2;
                    tracing::info!(source = %self.name, window_secs = (until - start).whole_seconds(), "window refused; narrowing it");
                }
                Err(error) => {
                    return Err(PollError {
                        source_name: self.name.clone(),
                        message: error.to_string(),
                    });
                }
            }
        };
        let mut deliveries = Vec::with_capacity(entries.len());
        for entry in entries {
            if let Some(delivery) = self.delivery(&entry, now) {
                deliveries.push(delivery);
            }
        }
        // Never move the cursor back (a narrowed window can end before it).
        let cursor = previous.map_or(until, |p| p.max(until));
        Ok(Poll {
            deliveries,
            cursor: format_time(cursor, &self.name)?,
        })
    }

    async fn fetch(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<Value>, ApiError> {
        let query = LogEntryQuery {
            since: Some(since),
            until: Some(until),
            is_overview: false,
            include: vec![LogEntryInclude::Incidents],
            time_zone: None,
        };
        let mut entries: Vec<Value> = self.client.log_entries_json(&query).try_collect().await?;
        // Oldest first, so an incident's entries are handled in the order they happened.
        entries.sort_by(|a, b| {
            let key = |v: &Value| {
                (
                    v.get("created_at")
                        .and_then(Value::as_str)
                        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()),
                    v.get("id").and_then(Value::as_str).map(str::to_owned),
                )
            };
            key(a).cmp(&key(b))
        });
        Ok(entries)
    }

    /// The delivery of one entry; None for skipped types and entries about no incident.
    fn delivery(&self, entry: &Value, now: OffsetDateTime) -> Option<NewDelivery> {
        let kind = entry.get("type").and_then(Value::as_str)?;
        if self.config.skip_types.iter().any(|t| t == kind) {
            return None;
        }
        let Some(document) = delivery_document(entry) else {
            tracing::debug!(source = %self.name, kind, "log entry skipped: no incident, id or time");
            return None;
        };
        let id = document.pointer("/event/id")?.as_str()?.to_owned();
        let event_type = document.pointer("/event/event_type")?.as_str()?.to_owned();
        let body = serde_json::to_vec(&document).ok()?;
        Some(NewDelivery {
            endpoint: self.endpoint.clone(),
            provider: "pagerduty".into(),
            delivery_id: DeliveryId::new(id),
            event_type,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-hookbridge-source".into(), self.name.clone()),
            ],
            body: Bytes::from(body),
            received_at: now,
        })
    }
}

#[async_trait]
impl Source for LogEntriesSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn interval(&self) -> Duration {
        self.config.interval()
    }

    async fn poll(&self, cursor: Option<String>) -> Result<Poll, PollError> {
        self.poll_at(cursor, OffsetDateTime::now_utc()).await
    }
}

fn secs(n: u64) -> time::Duration {
    time::Duration::seconds(i64::try_from(n).unwrap_or(i64::MAX / 1_000_000_000))
}

fn format_time(t: OffsetDateTime, source: &str) -> Result<String, PollError> {
    t.format(&Rfc3339).map_err(|e| PollError {
        source_name: source.to_owned(),
        message: format!("cannot format the cursor: {e}"),
    })
}

/// A reference object (`{"id", "type", "summary", ...}`) kept when it has a string id.
fn reference(value: Option<&Value>) -> Option<Value> {
    let value = value?;
    value.get("id").and_then(Value::as_str)?;
    Some(value.clone())
}

/// The V3-shaped document of a log entry (`GET /log_entries` with `include[]=incidents`):
///
/// ```json
/// {"event": {"id": "log_entry:<entry id>", "event_type": "incident.log_entry.<type>",
///   "resource_type": "incident", "agent": <entry agent>,
///   "client": {"name": "hookbridge log-entries poller"},
///   "data": <the incident, V3 shape>, "log_entry": <the entry>}}
/// ```
///
/// `data` is the incident as PagerDuty lists it now, except that a status or priority change
/// entry gives the status or priority as of the entry. No `occurred_at`: the entry's time is
/// in `log_entry.created_at`, and a poll arriving after newer webhooks must not be dropped
/// as stale by the engine (the rule orders changes itself).
pub(crate) fn delivery_document(entry: &Value) -> Option<Value> {
    let id = entry.get("id").and_then(Value::as_str)?;
    let kind = entry.get("type").and_then(Value::as_str)?;
    let created_at = entry
        .get("created_at")
        .and_then(Value::as_str)
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())?;
    let incident = entry.get("incident").filter(|i| i.is_object())?;
    let incident_id = incident.get("id").and_then(Value::as_str)?;
    let valid = |s: &str| {
        !s.is_empty() && s.len() <= 100 && s.bytes().all(|b| b.is_ascii_graphic() && b != b',')
    };
    if !valid(id) || !valid(kind) || !valid(incident_id) {
        return None;
    }
    let mut data = Map::new();
    data.insert("id".into(), json!(incident_id));
    data.insert("type".into(), json!("incident"));
    for key in [
        "title",
        "summary",
        "status",
        "urgency",
        "html_url",
        "incident_key",
    ] {
        if let Some(v) = incident.get(key).filter(|v| v.is_string()) {
            data.insert(key.into(), v.clone());
        }
    }
    if let Some(n) = incident.get("incident_number").filter(|v| v.is_u64()) {
        data.insert("number".into(), n.clone());
    }
    if let Some(t) = incident
        .get("created_at")
        .and_then(Value::as_str)
        .filter(|t| OffsetDateTime::parse(t, &Rfc3339).is_ok())
    {
        data.insert("created_at".into(), json!(t));
    }
    for key in ["priority", "service", "escalation_policy"] {
        if let Some(r) = reference(incident.get(key)) {
            data.insert(key.into(), r);
        }
    }
    let list = |v: Option<&Value>, inner: Option<&str>| -> Vec<Value> {
        v.and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| reference(inner.map_or(Some(item), |k| item.get(k))))
                    .collect()
            })
            .unwrap_or_default()
    };
    data.insert(
        "assignees".into(),
        Value::Array(list(incident.get("assignments"), Some("assignee"))),
    );
    data.insert(
        "teams".into(),
        Value::Array(list(incident.get("teams"), None)),
    );
    // The state as of the entry, for the entries that change it.
    let status = match kind {
        "trigger_log_entry" | "unacknowledge_log_entry" => Some("triggered"),
        "acknowledge_log_entry" => Some("acknowledged"),
        "resolve_log_entry" => Some("resolved"),
        _ => None,
    };
    if let Some(status) = status {
        data.insert("status".into(), json!(status));
    }
    if kind == "priority_change_log_entry" {
        match new_priority(entry) {
            Some((id, name)) => {
                data.insert(
                    "priority".into(),
                    json!({"id": id.unwrap_or_default(), "type": "priority_reference", "summary": name}),
                );
            }
            None => {
                data.remove("priority");
            }
        }
    }
    let agent = reference(entry.get("agent"));
    let mut log_entry = Map::new();
    log_entry.insert("id".into(), json!(id));
    log_entry.insert("type".into(), json!(kind));
    log_entry.insert(
        "created_at".into(),
        json!(created_at.format(&Rfc3339).ok()?),
    );
    if let Some(summary) = entry.get("summary").filter(|v| v.is_string()) {
        log_entry.insert("summary".into(), summary.clone());
    }
    if let Some(agent) = &agent {
        log_entry.insert("agent".into(), agent.clone());
    }
    if let Some(channel) = entry.get("channel").filter(|v| v.is_object()) {
        log_entry.insert("channel".into(), channel.clone());
    }
    if let Some(url) = entry.get("html_url").filter(|v| v.is_string()) {
        log_entry.insert("html_url".into(), url.clone());
    }
    let short = kind.strip_suffix("_log_entry").unwrap_or(kind);
    Some(json!({"event": {
        "id": format!("log_entry:{id}"),
        "event_type": format!("{LOG_ENTRY_EVENT_PREFIX}{short}"),
        "resource_type": "incident",
        "agent": agent,
        "client": {"name": POLLER_CLIENT},
        "data": data,
        "log_entry": log_entry,
    }}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookbridge_providers::pagerduty::events::{IncidentDetail, IncidentStatus, PagerdutyEvent};

    fn entry(kind: &str) -> Value {
        json!({
            "id": "Q3HAGH2MDC1NCY", "type": kind,
            "summary": "Priority changed from \"P3\" to \"P1\"",
            "created_at": "2024-05-17T09:30:00Z",
            "agent": {"id": "PXPGF42", "type": "user_reference", "summary": "Earline Greenholt"},
            "channel": {"type": "web_trigger", "new_priority": {"id": "PSO75BM", "summary": "P1"}},
            "incident": {
                "id": "PT4KHLK", "type": "incident", "incident_number": 1234,
                "title": "The server is on fire.", "status": "acknowledged", "urgency": "high",
                "html_url": "https://subdomain.pagerduty.com/incidents/PT4KHLK",
                "created_at": "2024-05-17T09:00:00Z",
                "priority": {"id": "PX3", "type": "priority_reference", "summary": "P3"},
                "service": {"id": "PIJ90N7", "type": "service_reference", "summary": "Mail"},
                "assignments": [{"at": "2024-05-17T09:00:00Z",
                    "assignee": {"id": "PXPGF42", "type": "user_reference", "summary": "Earline Greenholt"}}],
                "teams": [{"id": "PQ9K7I8", "type": "team_reference", "summary": "Engineering"}]
            }
        })
    }

    fn parse(document: &Value) -> PagerdutyEvent {
        PagerdutyEvent::from_json(&serde_json::to_vec(document).unwrap()).unwrap()
    }

    #[test]
    fn a_priority_change_is_an_incident_event_with_the_new_priority() {
        let document = delivery_document(&entry("priority_change_log_entry")).unwrap();
        let event = parse(&document);
        assert_eq!(event.name(), "incident.log_entry.priority_change");
        assert_eq!(
            event.subject().as_deref(),
            Some("pagerduty:incident/PT4KHLK")
        );
        assert_eq!(event.agent().unwrap().id, "PXPGF42");
        // No time of its own: the engine must not take a poll as stale.
        assert_eq!(event.updated_at(), None);
        let PagerdutyEvent::Incident(e) = &event else {
            panic!("{event:?}")
        };
        assert_eq!(e.detail, IncidentDetail::Incident);
        assert_eq!(
            e.incident.priority.as_ref().unwrap().summary.as_deref(),
            Some("P1")
        );
        assert_eq!(e.incident.number, Some(1234));
        assert_eq!(
            e.incident.assignees[0].summary.as_deref(),
            Some("Earline Greenholt")
        );
        assert_eq!(e.envelope.id, "log_entry:Q3HAGH2MDC1NCY");
        assert_eq!(
            document["event"]["log_entry"]["channel"]["new_priority"]["summary"],
            "P1"
        );
    }

    #[test]
    fn status_entries_give_the_status_of_their_time() {
        let document = delivery_document(&entry("resolve_log_entry")).unwrap();
        let PagerdutyEvent::Incident(e) = parse(&document) else {
            panic!()
        };
        assert_eq!(e.incident.status, Some(IncidentStatus::Resolved));
        // Not a priority change: the incident's current priority.
        assert_eq!(
            e.incident.priority.as_ref().unwrap().summary.as_deref(),
            Some("P3")
        );
        let document = delivery_document(&entry("annotate_log_entry")).unwrap();
        let PagerdutyEvent::Incident(e) = parse(&document) else {
            panic!()
        };
        assert_eq!(e.incident.status, Some(IncidentStatus::Acknowledged));
    }

    #[test]
    fn entries_without_incident_id_or_time_are_skipped() {
        let mut e = entry("trigger_log_entry");
        e["incident"] = Value::Null;
        assert!(delivery_document(&e).is_none());
        let mut e = entry("trigger_log_entry");
        e["created_at"] = json!("yesterday");
        assert!(delivery_document(&e).is_none());
        let mut e = entry("trigger_log_entry");
        e["id"] = json!("a,b");
        assert!(delivery_document(&e).is_none());
        // A reference-only incident still makes an event (the rule reads what it has).
        let mut e = entry("trigger_log_entry");
        e["incident"] = json!({"id": "PT4KHLK", "type": "incident_reference"});
        e["incident"]["created_at"] = json!("not a time");
        let document = delivery_document(&e).unwrap();
        assert!(matches!(parse(&document), PagerdutyEvent::Incident(_)));
    }
}
