//! The records the store keeps: deliveries, jobs and their attempts, links, echo marks,
//! tokens.

use bytes::Bytes;
use hookbridge_core::{DeliveryId, EndpointName, RawDelivery};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Serialize;
use time::OffsetDateTime;

/// Headers never stored: they carry credentials, not information about the event
/// (GitLab's `X-Gitlab-Token` is the endpoint's secret itself; Asana's `X-Hook-Secret` is
/// the secret being handed over).
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-gitlab-token",
    "x-hook-secret",
];

/// A delivery to put in the inbox.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    /// The endpoint it arrived on.
    pub endpoint: EndpointName,
    /// The provider kind of that endpoint.
    pub provider: String,
    /// The provider's delivery id; (endpoint, delivery id) is unique.
    pub delivery_id: DeliveryId,
    /// The event type as the provider named it.
    pub event_type: String,
    /// The request headers worth keeping (see [`NewDelivery::from_raw`]).
    pub headers: Vec<(String, String)>,
    /// The body exactly as received.
    pub body: Bytes,
    /// When it was received.
    pub received_at: OffsetDateTime,
}

impl NewDelivery {
    /// Builds the record of a verified, identified delivery. Credential headers
    /// (`Authorization`, `Cookie`) and headers that are not valid text are left out.
    pub fn from_raw(
        raw: &RawDelivery,
        provider: &str,
        delivery_id: DeliveryId,
        event_type: String,
    ) -> Self {
        let headers = raw
            .headers
            .iter()
            .filter(|(name, _)| !CREDENTIAL_HEADERS.contains(&name.as_str()))
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_owned(), v.to_owned()))
            })
            .collect();
        Self {
            endpoint: raw.endpoint.clone(),
            provider: provider.to_owned(),
            delivery_id,
            event_type,
            headers,
            body: raw.body.clone(),
            received_at: raw.received_at,
        }
    }
}

/// What inserting a delivery did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The delivery is new and now durable, at this inbox sequence number.
    Inserted {
        /// The inbox sequence number.
        seq: i64,
    },
    /// A delivery with the same (endpoint, delivery id) was already stored; nothing changed.
    Duplicate,
}

/// A delivery as stored in the inbox.
#[derive(Clone, Debug, Serialize)]
pub struct StoredDelivery {
    /// The inbox sequence number, increasing with arrival.
    pub seq: i64,
    /// The endpoint it arrived on.
    pub endpoint: EndpointName,
    /// The provider kind.
    pub provider: String,
    /// The provider's delivery id.
    pub delivery_id: DeliveryId,
    /// The event type as the provider named it.
    pub event_type: String,
    /// The stored headers.
    pub headers: Vec<(String, String)>,
    /// The body as received.
    #[serde(skip)]
    pub body: Bytes,
    /// When it was received.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// Processing status (`received` until the engine takes it).
    pub status: String,
}

impl StoredDelivery {
    /// The delivery as the provider sent it, to verify or parse again.
    pub fn to_raw(&self) -> RawDelivery {
        let mut headers = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(n, v);
            }
        }
        RawDelivery {
            endpoint: self.endpoint.clone(),
            method: Method::POST,
            uri: http::Uri::from_static("/"),
            headers,
            body: self.body.clone(),
            received_at: self.received_at,
        }
    }
}

/// Which deliveries to list, newest first.
#[derive(Clone, Debug)]
pub struct DeliveryFilter {
    /// Only this endpoint.
    pub endpoint: Option<EndpointName>,
    /// Only deliveries with a sequence number below this one (for paging).
    pub before_seq: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

impl Default for DeliveryFilter {
    fn default() -> Self {
        Self {
            endpoint: None,
            before_seq: None,
            limit: 50,
        }
    }
}

/// Where a delivery is in its processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Stored, not yet turned into jobs.
    Received,
    /// Parsed; one job per matching rule was created.
    Dispatched,
    /// Parsed; no rule wanted it.
    NoRules,
    /// Could not be parsed (kept for inspection and replay).
    Unparseable,
}

impl DeliveryStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Received => "received",
            DeliveryStatus::Dispatched => "dispatched",
            DeliveryStatus::NoRules => "no_rules",
            DeliveryStatus::Unparseable => "unparseable",
        }
    }
}

/// The identifier of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting to run (first time, or after a retryable failure at `run_at`).
    Pending,
    /// Claimed by a worker until its lease expires.
    Running,
    /// Applied.
    Done,
    /// The rule decided there was nothing to do (including echoes of our own writes).
    Skipped,
    /// Out of attempts, or failed permanently: a dead letter, replayable.
    Dead,
}

impl JobState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Skipped => "skipped",
            JobState::Dead => "dead",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => JobState::Pending,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "skipped" => JobState::Skipped,
            "dead" => JobState::Dead,
            _ => return None,
        })
    }
}

/// A job to create: one rule to apply to one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// The rule's name.
    pub rule: String,
    /// The object the job touches; jobs of one rule on one subject run one at a time, in order.
    pub subject: Option<String>,
    /// How many attempts before the job is dead-lettered.
    pub max_attempts: u32,
}

/// What the engine decided for a delivery: the status it moves to and the jobs it creates.
///
/// Handed to [`Store::insert_dispatched`](super::Store::insert_dispatched) with the delivery
/// itself, it is stored in the delivery's own transaction, so a delivery the engine could
/// plan while it was being received never needs the dispatcher's second write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dispatch {
    /// [`DeliveryStatus::Dispatched`] with jobs; `NoRules` or `Unparseable` without.
    pub status: DeliveryStatus,
    /// One job per matching rule, in rule order.
    pub jobs: Vec<NewJob>,
}

/// A job as stored.
#[derive(Clone, Debug, Serialize)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// The delivery it applies.
    pub delivery_seq: i64,
    /// The rule.
    pub rule: String,
    /// The object it touches.
    pub subject: Option<String>,
    /// Its state.
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When it may run (next).
    #[serde(with = "time::serde::rfc3339")]
    pub run_at: OffsetDateTime,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A job claimed by a worker, with its delivery.
#[derive(Clone, Debug)]
pub struct ClaimedJob {
    /// The job (state `running`, `attempts` counting this attempt).
    pub job: Job,
    /// The delivery to apply.
    pub delivery: StoredDelivery,
}

/// What became of one attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// 1-based attempt number.
    pub number: u32,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// `applied`, `skipped`, `retry` or `failed`.
    pub outcome: String,
    /// The error, if it failed.
    pub error: Option<String>,
    /// The actions taken (or, in a dry run, that would have been).
    pub actions: Vec<String>,
    /// The calls to services the attempt made, structured: service, method, target,
    /// summary, and the answer's status or the error. Attempts recorded before calls were
    /// structured have none (their actions are in `actions`).
    pub calls: Vec<CallRecord>,
}

/// The state a finished attempt moves its job to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobNext {
    /// Applied: `done`.
    Done,
    /// Nothing to do: `skipped`.
    Skipped,
    /// Try again at this time: `pending`.
    RetryAt(OffsetDateTime),
    /// Give up: `dead`.
    Dead,
}

/// Which jobs to list, newest first.
#[derive(Clone, Debug)]
pub struct JobFilter {
    /// Only in this state.
    pub state: Option<JobState>,
    /// Only of this rule.
    pub rule: Option<String>,
    /// Only for this delivery.
    pub delivery_seq: Option<i64>,
    /// Only jobs with an id below this one (paging).
    pub before_id: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

impl Default for JobFilter {
    fn default() -> Self {
        Self {
            state: None,
            rule: None,
            delivery_seq: None,
            before_id: None,
            limit: 50,
        }
    }
}

/// A link between an object at one service and its counterpart at another, kept per rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Link {
    /// The rule that owns the link.
    pub rule: String,
    /// The source object's key, e.g. `github:org/repo#12`.
    pub a: String,
    /// The counterpart's key, e.g. `jira:PROJ-7`.
    pub b: String,
    /// Anything the rule wants to remember with the link (JSON).
    pub data: serde_json::Value,
}

/// A record of a write hookbridge made, so that the webhook it causes is recognised as an
/// echo and not synced back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EchoMark {
    /// The object written, e.g. `jira:PROJ-7`.
    pub target: String,
    /// The field written, e.g. `status`.
    pub field: String,
    /// The value written.
    pub value: String,
    /// When the mark stops counting.
    pub expires_at: OffsetDateTime,
}

/// A stored OAuth token set for one connection.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The access token.
    pub access_token: hookbridge_core::Secret,
    /// The refresh token, if any.
    pub refresh_token: Option<hookbridge_core::Secret>,
    /// When the access token expires.
    pub expires_at: Option<OffsetDateTime>,
    /// Granted scopes, space-separated.
    pub scopes: String,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Which deliveries the dashboard lists, newest first: every field that is set must hold.
#[derive(Clone, Debug)]
pub struct DeliverySearch {
    /// Only this endpoint.
    pub endpoint: Option<EndpointName>,
    /// Only this event type, as the provider named it.
    pub event_type: Option<String>,
    /// Only deliveries in this processing status.
    pub status: Option<DeliveryStatus>,
    /// Only deliveries with at least one dead-lettered job.
    pub failed: bool,
    /// Only deliveries received at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only deliveries received before this time.
    pub until: Option<OffsetDateTime>,
    /// Only the delivery with this delivery id, or deliveries with a job whose subject
    /// contains this text.
    pub text: Option<String>,
    /// Only deliveries with a sequence number below this one (paging).
    pub before_seq: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

impl Default for DeliverySearch {
    fn default() -> Self {
        Self {
            endpoint: None,
            event_type: None,
            status: None,
            failed: false,
            since: None,
            until: None,
            text: None,
            before_seq: None,
            limit: 50,
        }
    }
}

impl DeliveryStatus {
    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "received" => DeliveryStatus::Received,
            "dispatched" => DeliveryStatus::Dispatched,
            "no_rules" => DeliveryStatus::NoRules,
            "unparseable" => DeliveryStatus::Unparseable,
            _ => return None,
        })
    }
}

/// The deliveries one endpoint received in one time bucket, for the dashboard's overview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeliveryBucket {
    /// The endpoint.
    pub endpoint: EndpointName,
    /// The bucket's start (buckets are aligned to multiples of their length since the epoch).
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    /// Deliveries received in the bucket.
    pub deliveries: u64,
    /// Of those, the ones that failed: unparseable, or with a dead-lettered job.
    pub failed: u64,
}

/// One call a job made to a service (or, in a dry run, would make), as the job's page in the
/// CLI and admin API shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CallRecord {
    /// The service called: the circuit breaker's and rate limiter's target (`jira`, or an
    /// HTTP action's host).
    pub service: String,
    /// The method (`POST`, `transition`, ...), empty when the rule did not give one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// What was called: a path, an object (`jira:PROJ-7`), empty when not given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// A short summary of the call.
    pub summary: String,
    /// The answer's status, when the rule reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The error, when the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CallRecord {
    /// The call without its outcome (`jira POST /rest/api/3/issue: create PROJ`), to compare
    /// what a rule did with what it would do now.
    pub fn plan(&self) -> String {
        let mut out = self.service.clone();
        for part in [&self.method, &self.target] {
            if !part.is_empty() {
                out.push(' ');
                out.push_str(part);
            }
        }
        // An HTTP action's summary is its method and URL: not said twice.
        let said = format!("{} {}", self.method, self.target);
        if !self.summary.is_empty() && self.summary != said {
            out.push_str(": ");
            out.push_str(&self.summary);
        }
        out
    }
}

impl std::fmt::Display for CallRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.plan())?;
        match (self.status, &self.error) {
            (Some(status), Some(error)) => write!(f, " -> {status}, error: {error}"),
            (Some(status), None) => write!(f, " -> {status}"),
            (None, Some(error)) => write!(f, " -> error: {error}"),
            (None, None) => Ok(()),
        }
    }
}

/// The stored form of an attempt's actions: one JSON array holding the action lines
/// (strings, as every release stored them) followed by the calls (objects).
pub(crate) fn encode_actions(lines: &[String], calls: &[CallRecord]) -> String {
    let values: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::Value::String(line.clone()))
        .chain(
            calls
                .iter()
                .filter_map(|call| serde_json::to_value(call).ok()),
        )
        .collect();
    serde_json::Value::Array(values).to_string()
}

/// Reads what [`encode_actions`] stored, and the arrays of strings older rows hold.
pub(crate) fn decode_actions(text: &str) -> (Vec<String>, Vec<CallRecord>) {
    let mut lines = Vec::new();
    let mut calls = Vec::new();
    let values: Vec<serde_json::Value> = serde_json::from_str(text).unwrap_or_default();
    for value in values {
        match value {
            serde_json::Value::String(line) => lines.push(line),
            object @ serde_json::Value::Object(_) => {
                if let Ok(call) = serde_json::from_value(object) {
                    calls.push(call);
                }
            }
            _ => {}
        }
    }
    (lines, calls)
}

/// Which deliveries are unfinished: a job pending (waiting for its first run or for a
/// retry), running or dead, or not dispatched yet. Oldest first.
#[derive(Clone, Debug)]
pub struct UnfinishedFilter {
    /// Only deliveries received before this time (`--older-than`).
    pub received_before: Option<OffsetDateTime>,
    /// Only this endpoint.
    pub endpoint: Option<EndpointName>,
    /// Only deliveries with an unfinished job of this rule (undispatched deliveries, which
    /// have no job yet, are then left out).
    pub rule: Option<String>,
    /// Only deliveries with a sequence number above this one (paging).
    pub after_seq: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

impl Default for UnfinishedFilter {
    fn default() -> Self {
        Self {
            received_before: None,
            endpoint: None,
            rule: None,
            after_seq: None,
            limit: 50,
        }
    }
}

/// An unfinished delivery and its unfinished jobs.
#[derive(Clone, Debug, Serialize)]
pub struct UnfinishedDelivery {
    /// The delivery.
    pub delivery: StoredDelivery,
    /// Its jobs that are pending, running or dead (of the filter's rule, if one was given),
    /// by id; empty for a delivery not dispatched yet.
    pub jobs: Vec<Job>,
}

impl Job {
    /// Where an unfinished job stands: `retrying` for a pending job that failed before,
    /// otherwise its state (`pending`, `running`, `dead`, ...).
    pub fn progress(&self) -> &'static str {
        match self.state {
            JobState::Pending if self.attempts > 0 => "retrying",
            state => state.as_str(),
        }
    }
}

/// Which jobs to select for a bulk replay: every field that is set must hold. By id.
#[derive(Clone, Debug)]
pub struct JobSearch {
    /// Only jobs of deliveries received at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only jobs of deliveries received before this time.
    pub until: Option<OffsetDateTime>,
    /// Only jobs of deliveries of this endpoint.
    pub endpoint: Option<EndpointName>,
    /// Only jobs of this rule.
    pub rule: Option<String>,
    /// Only jobs in one of these states (any state, if empty).
    pub states: Vec<JobState>,
    /// Only jobs with an id above this one (paging).
    pub after_id: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

impl Default for JobSearch {
    fn default() -> Self {
        Self {
            since: None,
            until: None,
            endpoint: None,
            rule: None,
            states: Vec::new(),
            after_id: None,
            limit: 500,
        }
    }
}
