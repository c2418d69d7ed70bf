//! Pollers: sources of events for services that do not send the webhook needed (PagerDuty's
//! log entries), and recurring jobs such as rescans. What a source produces enters the same
//! inbox as webhooks, with its cursor moved in the same transaction.

use std::time::Duration;

use async_trait::async_trait;

use crate::store::NewDelivery;

/// One poll's result: the deliveries found and the cursor to resume from.
#[derive(Debug)]
pub struct Poll {
    /// New deliveries; ids must be stable so that overlapping windows deduplicate.
    pub deliveries: Vec<NewDelivery>,
    /// Where the next poll starts.
    pub cursor: String,
}

/// Why a poll failed. The engine logs it and tries again at the next interval.
#[derive(Debug, thiserror::Error)]
#[error("poll of {source_name} failed: {message}")]
pub struct PollError {
    /// The source.
    pub source_name: String,
    /// What failed.
    pub message: String,
}

/// A poller. Runs on one instance at a time (the engine holds a lease named after it).
#[async_trait]
pub trait Source: Send + Sync {
    /// A stable name: the cursor and the lease are stored under it.
    fn name(&self) -> &str;

    /// Time between polls.
    fn interval(&self) -> Duration;

    /// Polls from `cursor` (`None` the first time).
    async fn poll(&self, cursor: Option<String>) -> Result<Poll, PollError>;
}
