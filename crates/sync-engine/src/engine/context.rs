//! What a rule sees while it runs: links, rule state, echo marks, throttling, the provider
//! clients it was given, and the dry-run switch.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookbridge_core::RuleError;
use time::OffsetDateTime;

use super::ratelimit::RateLimiter;
use crate::store::{EchoMark, JobId, Link, Store, StoreError};

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

/// The context of one rule applied to one event.
///
/// Side effects go through [`perform`](RuleContext::perform), which records each action and,
/// in a dry run, records it without doing it, so a dry run cannot call a service by mistake.
pub struct RuleContext {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) rule: String,
    pub(crate) job: Option<JobId>,
    pub(crate) dry_run: bool,
    pub(crate) echo_ttl: Duration,
    pub(crate) clients: Clients,
    pub(crate) limiter: Arc<RateLimiter>,
    pub(crate) actions: Mutex<Vec<String>>,
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
    /// `None` is returned.
    pub async fn perform<T, F>(
        &self,
        target: &str,
        description: impl Into<String>,
        effect: F,
    ) -> Result<Option<T>, RuleError>
    where
        F: Future<Output = Result<T, RuleError>>,
    {
        let description = description.into();
        if self.dry_run {
            self.record(format!("would: {description}"));
            return Ok(None);
        }
        self.limiter.acquire(target).await;
        let value = effect.await?;
        self.record(description);
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
        if let Ok(mut actions) = self.actions.lock() {
            actions.push(action.into());
        }
    }

    pub(crate) fn take_actions(&self) -> Vec<String> {
        self.actions
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap_or_default()
    }
}
