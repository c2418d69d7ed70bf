use std::time::Duration;

use async_trait::async_trait;

use crate::Event;

/// What a rule did with an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleOutcome {
    /// The rule acted; each entry describes one action (for logs and dry runs).
    Applied {
        /// The actions taken, in order.
        actions: Vec<String>,
    },
    /// The rule had nothing to do (already in the desired state, or not relevant).
    Skipped {
        /// Why nothing was done.
        reason: String,
    },
}

/// Why a rule failed. The engine retries [`RuleError::Transient`] failures with backoff and
/// dead-letters [`RuleError::Permanent`] ones.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A failure that may pass (429, 5xx, timeout): try again later.
    #[error("transient failure: {message}")]
    Transient {
        /// What failed.
        message: String,
        /// When the service asked to be tried again, if it said.
        retry_after: Option<Duration>,
    },
    /// A failure that retrying will not fix (400, 403, a missing mapping).
    #[error("permanent failure: {message}")]
    Permanent {
        /// What failed.
        message: String,
    },
    /// Some steps failed; the others were applied. Retried if any failure is transient.
    #[error("{} step(s) failed: {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Partial(Vec<RuleError>),
}

impl RuleError {
    /// Whether retrying may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            RuleError::Transient { .. } => true,
            RuleError::Permanent { .. } => false,
            RuleError::Partial(errors) => errors.iter().any(RuleError::is_transient),
        }
    }
}

/// A rule that keeps objects in sync: it receives the events it [`matches`](SyncRule::matches)
/// and acts on other services through the context `C` the engine gives it (API clients,
/// links, rule state).
///
/// Rules should be desired-state: applying one twice to the same event changes nothing the
/// second time, because a job may run again after a worker dies mid-way.
#[async_trait]
pub trait SyncRule<C: ?Sized + Sync>: Send + Sync {
    /// A stable name, used in job records and configuration.
    fn name(&self) -> &str;

    /// Whether this rule wants the event. Cheap and pure.
    fn matches(&self, event: &Event) -> bool;

    /// Acts on the event.
    async fn apply(&self, ctx: &C, event: &Event) -> Result<RuleOutcome, RuleError>;
}
