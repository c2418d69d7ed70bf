//! What a rule sees while it runs: links, rule state, echo marks, throttling, the provider
//! clients it was given, and the dry-run switch.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookbridge_core::RuleError;
use time::OffsetDateTime;

use super::circuit::{Admission, DownstreamHandle, JobNotes, Pause, Permit};
use super::ratelimit::RateLimiter;
use crate::store::{CallRecord, EchoMark, JobId, Link, Store, StoreError};

/// Shared API clients, by type: rules fetch the ones they need with [`Clients::get`].
///
/// ```
/// use hookbridge_sync_engine::engine::Clients;
/// struct JiraClient { base: String }
/// let clients = Clients::default().with(JiraClient { base: "https://jira.example".into() });
/// assert_eq!(clients.get::<JiraClient>().unwrap().base, "https://jira.example");
/// assert!(clients.get::<String>().is_none());
/// ```
#[derive(Clone, Default)]
pub struct Clients {
    by_type: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Clients {
    /// Adds (or replaces) the client of type `T`.
    pub fn with<T: Any + Send + Sync>(mut self, client: T) -> Self {
        self.by_type.insert(TypeId::of::<T>(), Arc::new(client));
        self
    }

    /// The client of type `T`, if one was added.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.by_type
            .get(&TypeId::of::<T>())
            .cloned()
            .and_then(|c| c.downcast::<T>().ok())
    }
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("count", &self.by_type.len())
            .finish()
    }
}

impl From<StoreError> for RuleError {
    fn from(error: StoreError) -> Self {
        RuleError::Transient {
            message: error.to_string(),
            retry_after: None,
        }
    }
}

/// A call to a service, as a rule describes it to [`RuleContext::perform_call`]: recorded
/// with the job (with the answer's status, see [`report_status`], or the error), shown on the
/// delivery's page in the CLI and the admin API, and compared by `replay --dry-run`.
///
/// ```
/// use hookbridge_sync_engine::engine::Call;
/// let call = Call::new("jira", "POST", "/rest/api/3/issue", "create the issue of github:o/r#12");
/// assert_eq!(call.service, "jira");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Call {
    /// The service: the target of rate limits and of the circuit breaker (`jira`, a host).
    pub service: String,
    /// The method (`POST`, or an API operation such as `transition`); may be empty.
    pub method: String,
    /// What is called: a path or an object key (`jira:PROJ-7`); may be empty.
    pub target: String,
    /// A short summary, also recorded as the job's action line.
    pub summary: String,
}

impl Call {
    /// A call to `service`.
    pub fn new(
        service: impl Into<String>,
        method: impl Into<String>,
        target: impl Into<String>,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            service: service.into(),
            method: method.into(),
            target: target.into(),
            summary: summary.into(),
        }
    }

    fn record(&self, status: Option<u16>, error: Option<String>) -> CallRecord {
        CallRecord {
            service: self.service.clone(),
            method: self.method.clone(),
            target: self.target.clone(),
            summary: self.summary.clone(),
            status,
            error,
        }
    }
}

tokio::task_local! {
    /// The status reported for the call being performed.
    static CALL_STATUS: std::cell::Cell<Option<u16>>;
}

/// Reports the status of the service's answer to the call being performed: call it inside
/// the effect given to [`RuleContext::perform_call`] (or [`RuleContext::perform`]), e.g.
/// with `response.status().as_u16()`; it is recorded with the call. Does nothing elsewhere.
pub fn report_status(status: u16) {
    let _ = CALL_STATUS.try_with(|cell| cell.set(Some(status)));
}

/// What a context records, in order: action lines, structured calls, and a pause asked for
/// by an open circuit.
#[derive(Debug)]
pub(crate) enum Entry {
    Line(String),
    Call(CallRecord),
    Paused(Pause),
}

/// The context of one rule applied to one event.
///
/// Side effects go through [`perform`](RuleContext::perform) or
/// [`perform_call`](RuleContext::perform_call), which record each action and, in a dry run,
/// record it without doing it, so a dry run cannot call a service by mistake.
pub struct RuleContext {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) rule: String,
    pub(crate) job: Option<JobId>,
    pub(crate) dry_run: bool,
    pub(crate) echo_ttl: Duration,
    pub(crate) clients: Clients,
    pub(crate) limiter: Arc<RateLimiter>,
    pub(crate) actions: Mutex<Vec<Entry>>,
}

impl RuleContext {
    /// The rule's name.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// Whether this is a dry run: actions are recorded, not performed.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// A key that is the same on every attempt of this job, for services that accept an
    /// idempotency key (so a retried write is not applied twice).
    pub fn idempotency_key(&self) -> String {
        match self.job {
            Some(id) => format!("hookbridge-{}-{id}", self.rule),
            None => format!("hookbridge-{}-dry-run", self.rule),
        }
    }

    /// The API clients given to the engine.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// Performs a side effect described by `description`, after waiting for `target`'s rate
    /// limit. In a dry run the effect is recorded as `would: <description>` and not run, and
    /// `None` is returned. Recorded as a call to service `target` with `description` as its
    /// summary (see [`perform_call`](RuleContext::perform_call), which records more).
    pub async fn perform<T, F>(
        &self,
        target: &str,
        description: impl Into<String>,
        effect: F,
    ) -> Result<Option<T>, RuleError>
    where
        F: Future<Output = Result<T, RuleError>>,
    {
        let call = Call {
            service: target.to_owned(),
            summary: description.into(),
            ..Call::default()
        };
        self.perform_call(call, effect).await
    }

    /// Performs a call to a service, after waiting for the service's rate limit, and records
    /// it (service, method, target, summary, and the status given to [`report_status`] or
    /// the error). The summary is also recorded as an action line, as
    /// [`perform`](RuleContext::perform) records its description.
    ///
    /// While the service's circuit is open (after consecutive transient failures, see
    /// `engine::CircuitConfig`), the effect is not run: a transient error is returned, and
    /// the engine puts the job back to wait for the cool-down without counting an attempt.
    /// In a dry run the call is recorded (the line as `would: <summary>`), not made, and
    /// `None` is returned.
    pub async fn perform_call<T, F>(&self, call: Call, effect: F) -> Result<Option<T>, RuleError>
    where
        F: Future<Output = Result<T, RuleError>>,
    {
        if self.dry_run {
            self.record(format!("would: {}", call.summary));
            self.push(Entry::Call(call.record(None, None)));
            return Ok(None);
        }
        let circuits = self
            .clients
            .get::<DownstreamHandle>()
            .and_then(|handle| handle.0.circuits.clone());
        let permit = match circuits.map(|c| c.admit(&call.service)) {
            Some(Admission::Go(permit)) => permit,
            Some(Admission::Wait(until)) => {
                self.push(Entry::Paused(Pause {
                    target: call.service.clone(),
                    until,
                }));
                let wait = until - OffsetDateTime::now_utc();
                return Err(RuleError::Transient {
                    message: format!(
                        "the circuit of {} is open: not called (paused until the cool-down ends)",
                        call.service
                    ),
                    retry_after: Duration::try_from(wait).ok(),
                });
            }
            None => Permit::unguarded(),
        };
        self.limiter.acquire(&call.service).await;
        let (result, status) = CALL_STATUS
            .scope(std::cell::Cell::new(None), async {
                let result = effect.await;
                (result, CALL_STATUS.try_with(|c| c.get()).ok().flatten())
            })
            .await;
        match &result {
            Err(error) if error.is_transient() => permit.finish(Err(&error.to_string())),
            // Answered: a refusal (4xx) says nothing against the service's health.
            _ => permit.finish(Ok(())),
        }
        let error = result.as_ref().err().map(ToString::to_string);
        self.push(Entry::Call(call.record(status, error)));
        let value = result?;
        self.record(call.summary);
        Ok(Some(value))
    }

    /// Records a write to `target`'s `field` with `value`, so that the webhook the write
    /// causes is recognised by [`is_echo`](RuleContext::is_echo) and not synced back.
    pub async fn mark_write(
        &self,
        target: &str,
        field: &str,
        value: &str,
    ) -> Result<(), RuleError> {
        if self.dry_run {
            return Ok(());
        }
        let mark = EchoMark {
            target: target.to_owned(),
            field: field.to_owned(),
            value: value.to_owned(),
            expires_at: OffsetDateTime::now_utc() + self.echo_ttl,
        };
        Ok(self.store.put_echo_mark(&mark).await?)
    }

    /// Whether a change of `target`'s `field` to `value` is the echo of hookbridge's own
    /// write; the mark is consumed, so a later genuine change with the same value is synced.
    pub async fn is_echo(&self, target: &str, field: &str, value: &str) -> Result<bool, RuleError> {
        if self.dry_run {
            return Ok(false);
        }
        Ok(self
            .store
            .take_echo_mark(target, field, value, OffsetDateTime::now_utc())
            .await?)
    }

    /// The link of this rule from object `a`.
    pub async fn link_from(&self, a: &str) -> Result<Option<Link>, RuleError> {
        Ok(self.store.link_from(&self.rule, a).await?)
    }

    /// The link of this rule to object `b`.
    pub async fn link_to(&self, b: &str) -> Result<Option<Link>, RuleError> {
        Ok(self.store.link_to(&self.rule, b).await?)
    }

    /// Links `a` to `b` for this rule (replacing `a`'s previous link). Not stored in a dry run.
    pub async fn put_link(
        &self,
        a: &str,
        b: &str,
        data: serde_json::Value,
    ) -> Result<(), RuleError> {
        if self.dry_run {
            self.record(format!("would link {a} -> {b}"));
            return Ok(());
        }
        let link = Link {
            rule: self.rule.clone(),
            a: a.to_owned(),
            b: b.to_owned(),
            data,
        };
        Ok(self.store.put_link(&link).await?)
    }

    /// This rule's stored value for `key`.
    pub async fn state(&self, key: &str) -> Result<Option<serde_json::Value>, RuleError> {
        Ok(self.store.state(&self.rule, key).await?)
    }

    /// Stores this rule's value for `key`. Not stored in a dry run.
    pub async fn put_state(&self, key: &str, value: &serde_json::Value) -> Result<(), RuleError> {
        if self.dry_run {
            return Ok(());
        }
        Ok(self.store.put_state(&self.rule, key, value).await?)
    }

    /// Records an action description (for logs, attempts and dry runs).
    pub fn record(&self, action: impl Into<String>) {
        self.push(Entry::Line(action.into()));
    }

    fn push(&self, entry: Entry) {
        if let Ok(mut actions) = self.actions.lock() {
            actions.push(entry);
        }
    }

    /// Takes the action lines recorded so far. The calls stay, for
    /// [`take_calls`](RuleContext::take_calls) or, in a job, for its worker.
    pub(crate) fn take_actions(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Ok(mut actions) = self.actions.lock() {
            actions.retain_mut(|entry| match entry {
                Entry::Line(line) => {
                    lines.push(std::mem::take(line));
                    false
                }
                _ => true,
            });
        }
        lines
    }

    /// Takes the calls (and a pause) recorded so far.
    pub(crate) fn take_notes(&self) -> JobNotes {
        let mut notes = JobNotes::default();
        if let Ok(mut actions) = self.actions.lock() {
            actions.retain_mut(|entry| match entry {
                Entry::Line(_) => true,
                Entry::Call(call) => {
                    notes.calls.push(std::mem::take(call));
                    false
                }
                Entry::Paused(pause) => {
                    notes.paused = Some(pause.clone());
                    false
                }
            });
        }
        notes
    }

    /// Takes the calls recorded so far (a dry run's).
    pub(crate) fn take_calls(&self) -> Vec<CallRecord> {
        self.take_notes().calls
    }
}

impl Drop for RuleContext {
    /// A job's calls go to its worker, which records them with the attempt.
    fn drop(&mut self) {
        let (Some(job), Some(handle)) = (self.job, self.clients.get::<DownstreamHandle>()) else {
            return;
        };
        let notes = self.take_notes();
        if !notes.calls.is_empty() || notes.paused.is_some() {
            handle.0.deposit(job, notes);
        }
    }
}
