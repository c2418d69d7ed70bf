//! A typed client for PagerDuty's REST API v2: incidents (read, acknowledge, resolve,
//! priority), notes, log entries (the poller's feed), priorities and users.
//!
//! Every request carries `Accept: application/vnd.pagerduty+json;version=2`: the OpenAPI
//! description declares this `Accept` header required on every operation, and without it the
//! API version is whatever the token was created with
//! ([Versioning](https://developer.pagerduty.com/docs/rest-api-v2/versioning/)). Writes carry
//! `From: <email>` when one is configured: PagerDuty requires it for account-level API keys
//! (`from_header` in the OpenAPI description of `PUT /incidents/{id}` and
//! `POST /incidents/{id}/notes`).
//!
//! Listings use PagerDuty's classic pagination (`limit`, `offset`, `more`) and come as
//! streams. PagerDuty refuses offsets past 10 000 results (`offset + limit > 10000` answers
//! 400): narrow `since`/`until` rather than paging that deep.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hookbridge_providers::api::ApiError> {
//! use futures_util::TryStreamExt;
//! use hookbridge_core::Secret;
//! use hookbridge_providers::pagerduty::auth::PagerdutyCredentials;
//! use hookbridge_providers::pagerduty::client::{
//!     IncidentTarget, LogEntryQuery, PagerdutyClient, PagerdutySettings, StatusChange,
//! };
//!
//! let settings = PagerdutySettings::new(PagerdutyCredentials::ApiKey(Secret::new("y_NbAkKc66ryYTWUXYEu")))
//!     .from("bot@example.com");
//! let pagerduty = PagerdutyClient::from_settings(settings)?;
//!
//! // Desired state: one read, one write with only what differs.
//! let target = IncidentTarget { status: Some(StatusChange::Acknowledged), priority: Some("P1".into()) };
//! pagerduty.sync_incident("PT4KHLK", &target).await?;
//!
//! // The poller's feed.
//! let since = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
//! let entries: Vec<_> = pagerduty
//!     .log_entries(&LogEntryQuery { since: Some(since), ..Default::default() })
//!     .try_collect()
//!     .await?;
//! # let _ = entries;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures_util::{Stream, TryStreamExt};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::auth::{PagerdutyCredentials, SERVICE};
use super::events::{IncidentStatus, Reference, Urgency};
use crate::api::{ApiClient, ApiError, Call, RetryPolicy};
use crate::common::null_as_default;

/// PagerDuty's REST API.
pub const DEFAULT_BASE_URL: &str = "https://api.pagerduty.com";

/// The versioning `Accept` header value sent with every request.
pub const ACCEPT_V2: &str = "application/vnd.pagerduty+json;version=2";

/// Results per page: PagerDuty's maximum for classic pagination.
const PAGE_LIMIT: u64 = 100;

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/// An assignment of an incident to a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// When the assignment was made.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
    /// The assignee (`user_reference`).
    pub assignee: Reference,
}

/// An acknowledgement of an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// When the incident was acknowledged.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
    /// Who acknowledged it (a user or a service reference).
    pub acknowledger: Reference,
}

/// An incident as the REST API returns it (`GET /incidents/{id}`), or a reference to one (in
/// log entries), in which case only `id`, `summary` and the URLs are set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// The incident's id (`PT4KHLK`).
    pub id: String,
    /// `incident` or `incident_reference`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The incident's number, unique in the account.
    #[serde(default)]
    pub incident_number: Option<u64>,
    /// The title.
    #[serde(default)]
    pub title: Option<String>,
    /// `[#1234] The server is on fire.`
    #[serde(default)]
    pub summary: Option<String>,
    /// `triggered`, `acknowledged` or `resolved`.
    #[serde(default)]
    pub status: Option<IncidentStatus>,
    /// `high` or `low`.
    #[serde(default)]
    pub urgency: Option<Urgency>,
    /// The priority (`summary` is its name); None when the incident has none.
    #[serde(default)]
    pub priority: Option<Reference>,
    /// The service.
    #[serde(default)]
    pub service: Option<Reference>,
    /// The escalation policy.
    #[serde(default)]
    pub escalation_policy: Option<Reference>,
    /// Current assignments (empty once resolved).
    #[serde(default, deserialize_with = "null_as_default")]
    pub assignments: Vec<Assignment>,
    /// Current acknowledgements (empty unless acknowledged).
    #[serde(default, deserialize_with = "null_as_default")]
    pub acknowledgements: Vec<Acknowledgement>,
    /// The teams involved.
    #[serde(default, deserialize_with = "null_as_default")]
    pub teams: Vec<Reference>,
    /// The de-duplication key.
    #[serde(default)]
    pub incident_key: Option<String>,
    /// When the incident was triggered.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When the status last changed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_status_change_at: Option<OffsetDateTime>,
    /// Who changed the status last (a user, service or integration reference).
    #[serde(default)]
    pub last_status_change_by: Option<Reference>,
    /// Why the incident was resolved (a merge), as sent.
    #[serde(default)]
    pub resolve_reason: Option<Value>,
    /// The incident's page in the web app.
    #[serde(default)]
    pub html_url: Option<String>,
    /// The incident's API URL.
    #[serde(rename = "self", default)]
    pub self_url: Option<String>,
}

impl Incident {
    /// The priority's id, if the incident has one.
    pub fn priority_id(&self) -> Option<&str> {
        self.priority.as_ref().map(|p| p.id.as_str())
    }

    /// The ids of the users the incident is assigned to.
    pub fn assignee_ids(&self) -> impl Iterator<Item = &str> {
        self.assignments.iter().map(|a| a.assignee.id.as_str())
    }
}

/// A note on an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentNote {
    /// The note's id.
    #[serde(default)]
    pub id: Option<String>,
    /// Who wrote it.
    #[serde(default)]
    pub user: Option<Reference>,
    /// The text.
    #[serde(default)]
    pub content: String,
    /// When it was written.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

string_enum! {
    /// A log entry's `type`: what happened to the incident.
    LogEntryType {
        Acknowledge => "acknowledge_log_entry",
        Annotate => "annotate_log_entry",
        Assign => "assign_log_entry",
        Escalate => "escalate_log_entry",
        ExhaustEscalationPath => "exhaust_escalation_path_log_entry",
        Notify => "notify_log_entry",
        ReachTriggerLimit => "reach_trigger_limit_log_entry",
        RepeatEscalationPath => "repeat_escalation_path_log_entry",
        Resolve => "resolve_log_entry",
        Snooze => "snooze_log_entry",
        Trigger => "trigger_log_entry",
        Unacknowledge => "unacknowledge_log_entry",
    }
}

/// How a log entry's action was channeled (`api`, `email`, `web_trigger`, `note`, `auto`,
/// `timeout`, ...). Its other fields depend on the type and are not typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// The channel type.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// A summary, for the channel types that have one.
    #[serde(default)]
    pub summary: Option<String>,
}

/// An incident log entry: one event in an incident's life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The log entry's id (`Q02JTSNZWHSEKV`): unique, the poller's dedup key.
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: LogEntryType,
    /// A human-readable summary (`Triggered through the API`).
    #[serde(default)]
    pub summary: Option<String>,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who did it: a user, service or integration reference.
    #[serde(default)]
    pub agent: Option<Reference>,
    /// How it was channeled.
    #[serde(default)]
    pub channel: Option<Channel>,
    /// The incident (a reference, or the full incident with `include[]=incidents`).
    #[serde(default)]
    pub incident: Option<Incident>,
    /// The service.
    #[serde(default)]
    pub service: Option<Reference>,
    /// The teams.
    #[serde(default, deserialize_with = "null_as_default")]
    pub teams: Vec<Reference>,
    /// A note included with the entry.
    #[serde(default)]
    pub note: Option<String>,
    /// For `assign_log_entry` and `escalate_log_entry`: the user assigned.
    #[serde(default)]
    pub assigned_user: Option<Reference>,
    /// For `notify_log_entry`: the user notified.
    #[serde(default)]
    pub user: Option<Reference>,
    /// Details of the event (`description`), as sent.
    #[serde(default)]
    pub event_details: Option<Value>,
    /// The entry's page in the web app.
    #[serde(default)]
    pub html_url: Option<String>,
}

impl LogEntry {
    /// The incident's id, if the entry is about one.
    pub fn incident_id(&self) -> Option<&str> {
        self.incident.as_ref().map(|i| i.id.as_str())
    }

    /// Whether a user did it (as opposed to a service, an integration or PagerDuty).
    pub fn by_user(&self) -> bool {
        self.agent.as_ref().is_some_and(Reference::is_user)
    }
}

/// An incident priority (`P1`, ...), a Standard and Enterprise plan feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Priority {
    /// The priority's id (`PSLWBL8`): what an incident update takes.
    pub id: String,
    /// Its short name (`P1`).
    #[serde(default)]
    pub name: String,
    /// Its summary (the name).
    #[serde(default)]
    pub summary: Option<String>,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
}

/// A PagerDuty user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's id (`PXPGF42`).
    pub id: String,
    /// The user's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The login email.
    #[serde(default)]
    pub email: Option<String>,
    /// The summary (the name).
    #[serde(default)]
    pub summary: Option<String>,
    /// The role (`admin`, `user`, `limited_user`, ...).
    #[serde(default)]
    pub role: Option<String>,
    /// The user's time zone.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// The job title.
    #[serde(default)]
    pub job_title: Option<String>,
    /// The teams the user is on.
    #[serde(default, deserialize_with = "null_as_default")]
    pub teams: Vec<Reference>,
    /// The user's page in the web app.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// The statuses an incident can be moved to through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusChange {
    /// `acknowledged`.
    Acknowledged,
    /// `resolved`.
    Resolved,
}

impl StatusChange {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusChange::Acknowledged => "acknowledged",
            StatusChange::Resolved => "resolved",
        }
    }
}

/// The fields of an incident update (`PUT /incidents/{id}`); unset fields are left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentUpdate {
    /// The new status.
    pub status: Option<StatusChange>,
    /// The new priority's id (see [`PagerdutyClient::priority_by_name`]).
    pub priority_id: Option<String>,
    /// With `status: resolved`: the resolution, added to the resolve log entry.
    pub resolution: Option<String>,
    /// The new title.
    pub title: Option<String>,
    /// The new urgency.
    pub urgency: Option<Urgency>,
    /// Escalate to this level of the escalation policy.
    pub escalation_level: Option<u32>,
}

impl IncidentUpdate {
    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == IncidentUpdate::default()
    }

    /// The request body: `{"incident": {"type": "incident_reference", ...}}`.
    fn body(&self) -> Value {
        let mut incident = serde_json::Map::new();
        incident.insert("type".into(), json!("incident_reference"));
        if let Some(status) = self.status {
            incident.insert("status".into(), json!(status.as_str()));
        }
        if let Some(id) = &self.priority_id {
            incident.insert(
                "priority".into(),
                json!({"id": id, "type": "priority_reference"}),
            );
        }
        if let Some(resolution) = &self.resolution {
            incident.insert("resolution".into(), json!(resolution));
        }
        if let Some(title) = &self.title {
            incident.insert("title".into(), json!(title));
        }
        if let Some(urgency) = &self.urgency {
            incident.insert("urgency".into(), json!(urgency.as_str()));
        }
        if let Some(level) = self.escalation_level {
            incident.insert("escalation_level".into(), json!(level));
        }
        json!({ "incident": incident })
    }
}

/// The desired state of an incident, for [`PagerdutyClient::sync_incident`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentTarget {
    /// The status it should have. `acknowledged` leaves a resolved incident resolved (the
    /// API cannot reopen one).
    pub status: Option<StatusChange>,
    /// The name of the priority it should have (`P1`).
    pub priority: Option<String>,
}

/// What [`PagerdutyClient::sync_incident`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncOutcome {
    /// The incident already matched: nothing was written.
    Unchanged(Incident),
    /// The incident was updated with these fields.
    Updated {
        /// The incident as PagerDuty returned it after the update.
        incident: Incident,
        /// What was sent.
        update: IncidentUpdate,
    },
}

impl SyncOutcome {
    /// The incident after the sync.
    pub fn incident(&self) -> &Incident {
        match self {
            SyncOutcome::Unchanged(incident) | SyncOutcome::Updated { incident, .. } => incident,
        }
    }
}

string_enum! {
    /// Related objects to include in full in log entries (`include[]`).
    LogEntryInclude {
        Incidents => "incidents",
        Services => "services",
        Channels => "channels",
        Teams => "teams",
    }
}

/// Filters of a log entry listing (`GET /log_entries`, `GET /incidents/{id}/log_entries`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogEntryQuery {
    /// The start of the date range (`since`).
    pub since: Option<OffsetDateTime>,
    /// The end of the date range (`until`).
    pub until: Option<OffsetDateTime>,
    /// Only the most important changes (`is_overview=true`).
    pub is_overview: bool,
    /// Related objects to include in full (`include[]`).
    pub include: Vec<LogEntryInclude>,
    /// The time zone dates are rendered in (`time_zone`; PagerDuty's default is UTC).
    pub time_zone: Option<String>,
}

impl LogEntryQuery {
    fn params(&self) -> Result<Vec<(String, String)>, ApiError> {
        let mut params = Vec::new();
        let rfc3339 = |t: &OffsetDateTime| {
            t.format(&Rfc3339).map_err(|e| ApiError::Config {
                service: SERVICE,
                message: format!("unformattable date: {e}"),
            })
        };
        if let Some(since) = &self.since {
            params.push(("since".to_owned(), rfc3339(since)?));
        }
        if let Some(until) = &self.until {
            params.push(("until".to_owned(), rfc3339(until)?));
        }
        if self.is_overview {
            params.push(("is_overview".to_owned(), "true".to_owned()));
        }
        for include in &self.include {
            params.push(("include[]".to_owned(), include.as_str().to_owned()));
        }
        if let Some(zone) = &self.time_zone {
            params.push(("time_zone".to_owned(), zone.clone()));
        }
        Ok(params)
    }
}

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// What [`PagerdutyClient::from_settings`] needs.
#[derive(Debug, Clone)]
pub struct PagerdutySettings {
    /// The API base URL ([`DEFAULT_BASE_URL`]; a mock server in tests).
    pub base_url: String,
    /// The credentials.
    pub credentials: PagerdutyCredentials,
    /// The `From` email sent with writes (required with account-level API keys).
    pub from: Option<String>,
    /// Retries of 429/5xx inside the client.
    pub retry: RetryPolicy,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl PagerdutySettings {
    /// Settings for `credentials` with the defaults: the public API, no `From`, the default
    /// retry policy, 30 s timeout.
    pub fn new(credentials: PagerdutyCredentials) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            credentials,
            from: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        }
    }

    /// Sets the `From` email.
    pub fn from(mut self, email: impl Into<String>) -> Self {
        self.from = Some(email.into());
        self
    }

    /// Sets the base URL.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// PagerDuty's REST API. Cheap to clone (the priority cache is shared between clones).
#[derive(Clone)]
pub struct PagerdutyClient {
    api: ApiClient,
    from: Option<String>,
    priorities: Arc<RwLock<Option<Vec<Priority>>>>,
}

impl fmt::Debug for PagerdutyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerdutyClient")
            .field("api", &self.api)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// A single wrapped object (`{"incident": {...}}`).
fn unwrap_field<T: DeserializeOwned>(mut body: Value, key: &str) -> Result<T, ApiError> {
    let value = body
        .get_mut(key)
        .map(Value::take)
        .ok_or_else(|| ApiError::Decode {
            service: SERVICE,
            message: format!("the answer has no `{key}`"),
        })?;
    serde_json::from_value(value).map_err(|e| ApiError::Decode {
        service: SERVICE,
        message: format!("`{key}`: {e}"),
    })
}

/// Percent-encodes one path segment (ids come from payloads and configuration): nothing but
/// unreserved characters stays as is, and `.`/`..` cannot climb the path.
fn segment(value: &str) -> String {
    if value == "." || value == ".." {
        return value.replace('.', "%2E");
    }
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl PagerdutyClient {
    /// A client over `api` (built for [`DEFAULT_BASE_URL`] or another base with PagerDuty
    /// credentials, e.g. from [`PagerdutyCredentials::authenticator`]). Writes carry no
    /// `From` header: set one with [`with_from`](Self::with_from) for account-level keys.
    pub fn new(api: ApiClient) -> Self {
        Self {
            api,
            from: None,
            priorities: Arc::new(RwLock::new(None)),
        }
    }

    /// Sends `From: <email>` with writes.
    pub fn with_from(mut self, email: impl Into<String>) -> Result<Self, ApiError> {
        let email = email.into();
        // Call::header drops values it cannot send: refuse them here instead.
        if email.is_empty() || reqwest::header::HeaderValue::from_str(&email).is_err() {
            return Err(ApiError::Config {
                service: SERVICE,
                message: "the From email is not a valid header value".into(),
            });
        }
        self.from = Some(email);
        Ok(self)
    }

    /// A client from settings: credentials, base URL, `From`, retries and timeout.
    pub fn from_settings(settings: PagerdutySettings) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            // Credentials must never follow a redirect to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hookbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Config {
                service: SERVICE,
                message: e.to_string(),
            })?;
        let auth = settings.credentials.authenticator(http.clone())?;
        let api = ApiClient::builder(SERVICE, &settings.base_url)?
            .auth_arc(auth)
            .retry(settings.retry)
            .timeout(settings.timeout)
            .header("accept", ACCEPT_V2)?
            .http(http)
            .build()?;
        let client = Self::new(api);
        match settings.from {
            Some(from) => client.with_from(from),
            None => Ok(client),
        }
    }

    /// The underlying API client.
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    fn call(&self, method: Method, path: impl Into<String>) -> Call {
        let call = Call::new(method.clone(), path).header("accept", ACCEPT_V2);
        match (&self.from, method == Method::GET) {
            (Some(from), false) => call.header("from", from),
            _ => call,
        }
    }

    /// `GET /incidents/{id}`: an incident by id (or number).
    pub async fn get_incident(&self, id: &str) -> Result<Incident, ApiError> {
        let body: Value = self
            .api
            .send_json(self.call(Method::GET, format!("incidents/{}", segment(id))))
            .await?;
        unwrap_field(body, "incident")
    }

    /// `PUT /incidents/{id}` with `{"incident": {"type": "incident_reference", ...}}`.
    pub async fn update_incident(
        &self,
        id: &str,
        update: &IncidentUpdate,
    ) -> Result<Incident, ApiError> {
        let call = self
            .call(Method::PUT, format!("incidents/{}", segment(id)))
            .json(&update.body())?;
        let body: Value = self.api.send_json(call).await?;
        unwrap_field(body, "incident")
    }

    /// Acknowledges an incident (`PUT /incidents/{id}`, `status: acknowledged`).
    pub async fn acknowledge_incident(&self, id: &str) -> Result<Incident, ApiError> {
        let update = IncidentUpdate {
            status: Some(StatusChange::Acknowledged),
            ..Default::default()
        };
        self.update_incident(id, &update).await
    }

    /// Resolves an incident (`PUT /incidents/{id}`, `status: resolved`), with an optional
    /// resolution note for the resolve log entry.
    pub async fn resolve_incident(
        &self,
        id: &str,
        resolution: Option<&str>,
    ) -> Result<Incident, ApiError> {
        let update = IncidentUpdate {
            status: Some(StatusChange::Resolved),
            resolution: resolution.map(str::to_owned),
            ..Default::default()
        };
        self.update_incident(id, &update).await
    }

    /// Sets an incident's priority by the priority's name (`P1`): the id comes from the
    /// cached `GET /priorities`, then `PUT /incidents/{id}`.
    pub async fn set_incident_priority(
        &self,
        id: &str,
        priority_name: &str,
    ) -> Result<Incident, ApiError> {
        let priority = self.require_priority(priority_name).await?;
        let update = IncidentUpdate {
            priority_id: Some(priority.id),
            ..Default::default()
        };
        self.update_incident(id, &update).await
    }

    /// Brings an incident to `target` with one read (`GET /incidents/{id}`) and, only if
    /// something differs, one write (`PUT /incidents/{id}`) with just the differing fields.
    /// Safe to repeat: a second run finds nothing to change.
    pub async fn sync_incident(
        &self,
        id: &str,
        target: &IncidentTarget,
    ) -> Result<SyncOutcome, ApiError> {
        let current = self.get_incident(id).await?;
        let mut update = IncidentUpdate::default();
        if let Some(status) = target.status {
            let needed = match (status, current.status.as_ref()) {
                // Already there, or past it: the API cannot move a resolved incident back.
                (_, Some(IncidentStatus::Resolved)) => false,
                (StatusChange::Acknowledged, Some(IncidentStatus::Acknowledged)) => false,
                _ => true,
            };
            if needed {
                update.status = Some(status);
            }
        }
        if let Some(name) = &target.priority {
            let priority = self.require_priority(name).await?;
            if current.priority_id() != Some(priority.id.as_str()) {
                update.priority_id = Some(priority.id);
            }
        }
        if update.is_empty() {
            return Ok(SyncOutcome::Unchanged(current));
        }
        let incident = self.update_incident(id, &update).await?;
        Ok(SyncOutcome::Updated { incident, update })
    }

    /// `POST /incidents/{id}/notes` with `{"note": {"content": ...}}`.
    pub async fn add_note(
        &self,
        incident_id: &str,
        content: &str,
    ) -> Result<IncidentNote, ApiError> {
        let call = self
            .call(
                Method::POST,
                format!("incidents/{}/notes", segment(incident_id)),
            )
            .json(&json!({ "note": { "content": content } }))?;
        let body: Value = self.api.send_json(call).await?;
        unwrap_field(body, "note")
    }

    /// `GET /incidents/{id}/notes`: every note (the endpoint is not paginated).
    pub async fn list_notes(&self, incident_id: &str) -> Result<Vec<IncidentNote>, ApiError> {
        let body: Value = self
            .api
            .send_json(self.call(
                Method::GET,
                format!("incidents/{}/notes", segment(incident_id)),
            ))
            .await?;
        unwrap_field(body, "notes")
    }

    /// Adds a note containing `marker` unless one already does (PagerDuty notes cannot be
    /// edited): a retried job does not add the same note twice. Returns the existing or the
    /// new note. `content` should contain `marker`; it is appended on a new line otherwise.
    pub async fn add_note_once(
        &self,
        incident_id: &str,
        marker: &str,
        content: &str,
    ) -> Result<(IncidentNote, bool), ApiError> {
        let notes = self.list_notes(incident_id).await?;
        if let Some(existing) = notes.into_iter().find(|n| n.content.contains(marker)) {
            return Ok((existing, false));
        }
        let text = if content.contains(marker) {
            content.to_owned()
        } else {
            format!("{content}\n{marker}")
        };
        Ok((self.add_note(incident_id, &text).await?, true))
    }

    /// `GET /log_entries`: every log entry of the account in the range, as a stream (pages
    /// of 100 by `offset` until `more` is false).
    pub fn log_entries(
        &self,
        query: &LogEntryQuery,
    ) -> impl Stream<Item = Result<LogEntry, ApiError>> + Send + 'static {
        let params = query.params();
        self.offset_stream("log_entries".to_owned(), params, "log_entries")
    }

    /// `GET /incidents/{id}/log_entries`: one incident's log entries, as a stream.
    pub fn incident_log_entries(
        &self,
        incident_id: &str,
        query: &LogEntryQuery,
    ) -> impl Stream<Item = Result<LogEntry, ApiError>> + Send + 'static {
        let params = query.params();
        self.offset_stream(
            format!("incidents/{}/log_entries", segment(incident_id)),
            params,
            "log_entries",
        )
    }

    /// `GET /priorities`, every page, fresh (and stored in the cache).
    pub async fn list_priorities(&self) -> Result<Vec<Priority>, ApiError> {
        let priorities: Vec<Priority> = self
            .offset_stream("priorities".to_owned(), Ok(Vec::new()), "priorities")
            .try_collect()
            .await?;
        *self
            .priorities
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(priorities.clone());
        Ok(priorities)
    }

    /// The priority named `name` (case-insensitive), from the cache; the cache is filled on
    /// first use and refreshed once when the name is not in it (a priority added since).
    pub async fn priority_by_name(&self, name: &str) -> Result<Option<Priority>, ApiError> {
        let find = |list: &[Priority]| {
            list.iter()
                .find(|p| p.name.eq_ignore_ascii_case(name))
                .cloned()
        };
        let cached = self
            .priorities
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_deref()
            .map(find);
        if let Some(Some(priority)) = cached {
            return Ok(Some(priority));
        }
        Ok(find(&self.list_priorities().await?))
    }

    async fn require_priority(&self, name: &str) -> Result<Priority, ApiError> {
        self.priority_by_name(name)
            .await?
            .ok_or_else(|| ApiError::NotFound {
                service: SERVICE,
                message: format!(
                    "no priority named {name:?} (priorities need a Standard or Enterprise plan)"
                ),
            })
    }

    /// Forgets the cached priorities.
    pub fn invalidate_priorities(&self) {
        *self
            .priorities
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// `GET /users/{id}`.
    pub async fn get_user(&self, id: &str) -> Result<User, ApiError> {
        let body: Value = self
            .api
            .send_json(self.call(Method::GET, format!("users/{}", segment(id))))
            .await?;
        unwrap_field(body, "user")
    }

    /// `GET /users` (with `query`, which matches names and emails), as a stream.
    pub fn list_users(
        &self,
        query: Option<&str>,
    ) -> impl Stream<Item = Result<User, ApiError>> + Send + 'static {
        let params = query
            .map(|q| vec![("query".to_owned(), q.to_owned())])
            .unwrap_or_default();
        self.offset_stream("users".to_owned(), Ok(params), "users")
    }

    /// The user whose email is `email` (case-insensitive): `GET /users?query=<email>`, then
    /// an exact match (the query also matches parts of names and other addresses).
    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, ApiError> {
        let users: Vec<User> = self.list_users(Some(email)).try_collect().await?;
        Ok(users.into_iter().find(|u| {
            u.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        }))
    }

    /// Classic pagination over `path`: `limit=100&offset=N` until `more` is false, the items
    /// under `key` of each page.
    fn offset_stream<T>(
        &self,
        path: String,
        params: Result<Vec<(String, String)>, ApiError>,
        key: &'static str,
    ) -> impl Stream<Item = Result<T, ApiError>> + Send + 'static
    where
        T: DeserializeOwned + Send + 'static,
    {
        use futures_util::future::Either;
        let params = match params {
            Ok(params) => params,
            // A query that cannot be built fails before any request.
            Err(error) => return Either::Left(futures_util::stream::iter([Err(error)])),
        };
        let first = self.page_call(&path, &params, 0);
        // The offset of the page being read: the next one starts after its items. Tracked
        // here rather than trusting the echoed `offset`, which a page may omit.
        let offset = Arc::new(AtomicU64::new(0));
        let client = self.clone();
        Either::Right(self.api.paginate(first, move |page: Value, _| {
            let more = page.get("more").and_then(Value::as_bool).unwrap_or(false);
            let items: Vec<T> = unwrap_field(page, key)?;
            let next_offset = offset.load(Ordering::SeqCst) + items.len() as u64;
            // An empty page that claims more would loop forever: stop there.
            let next = (more && !items.is_empty()).then(|| {
                offset.store(next_offset, Ordering::SeqCst);
                client.page_call(&path, &params, next_offset)
            });
            Ok((items, next))
        }))
    }

    fn page_call(&self, path: &str, params: &[(String, String)], offset: u64) -> Call {
        let mut call = self.call(Method::GET, path.to_owned());
        for (key, value) in params {
            call = call.query(key, value);
        }
        call.query("limit", PAGE_LIMIT).query("offset", offset)
    }

    /// `GET /log_entries` like [`log_entries`](Self::log_entries), each entry as the JSON
    /// PagerDuty sent: for the fields [`LogEntry`] does not model, such as the
    /// `channel.old_priority` and `channel.new_priority` of a `priority_change_log_entry`.
    pub fn log_entries_json(
        &self,
        query: &LogEntryQuery,
    ) -> impl Stream<Item = Result<Value, ApiError>> + Send + 'static {
        let params = query.params();
        self.offset_stream("log_entries".to_owned(), params, "log_entries")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_body_has_only_the_set_fields() {
        let update = IncidentUpdate {
            status: Some(StatusChange::Resolved),
            priority_id: Some("P53ZZH5".into()),
            resolution: Some("fixed".into()),
            ..Default::default()
        };
        assert_eq!(
            update.body(),
            json!({"incident": {"type": "incident_reference", "status": "resolved",
                "priority": {"id": "P53ZZH5", "type": "priority_reference"}, "resolution": "fixed"}})
        );
        assert!(IncidentUpdate::default().is_empty());
    }

    #[test]
    fn log_entry_query_params() {
        let query = LogEntryQuery {
            since: Some(time::macros::datetime!(2024-05-17 09:00 UTC)),
            until: Some(time::macros::datetime!(2024-05-17 10:00 UTC)),
            is_overview: true,
            include: vec![LogEntryInclude::Incidents, LogEntryInclude::Channels],
            time_zone: None,
        };
        let params = query.params().unwrap();
        let pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("since", "2024-05-17T09:00:00Z"),
                ("until", "2024-05-17T10:00:00Z"),
                ("is_overview", "true"),
                ("include[]", "incidents"),
                ("include[]", "channels"),
            ]
        );
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("PT4KHLK"), "PT4KHLK");
        assert_eq!(segment("../users"), "..%2Fusers");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("a b"), "a%20b");
    }

    #[test]
    fn a_bad_from_is_refused() {
        let api = ApiClient::builder(SERVICE, DEFAULT_BASE_URL)
            .unwrap()
            .build()
            .unwrap();
        assert!(PagerdutyClient::new(api.clone()).with_from("a\nb").is_err());
        assert!(
            PagerdutyClient::new(api)
                .with_from("bot@example.com")
                .is_ok()
        );
    }
}
