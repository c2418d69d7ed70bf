//! Chat sinks for notifications: where a rule (a Travis CI build result, an incident) posts a
//! message. Each sink implements [`Notifier`]:
//!
//! - [`slack::SlackWebhook`]: a Slack incoming webhook (its URL is the credential);
//! - [`matrix::MatrixRoom`]: a Matrix room, through the client-server API;
//! - [`webhook::SignedWebhook`]: any HTTP endpoint, signed as Standard Webhooks do (with the
//!   `standard-webhooks` feature).
//!
//! Every sink retries 429 (honouring `Retry-After`), 5xx and timeouts through
//! [`ApiClient`](crate::api::ApiClient), follows no redirect, and keeps its credentials (the
//! Slack URL, the Matrix token, the signing secret) out of `Debug` output and errors.
//!
//! A [`Message`] carries an idempotency key, unique per message and the same on every retry
//! of it (the engine's job key is a good one): Matrix deduplicates by it (the transaction id)
//! and a signed webhook's receiver by its `webhook-id`, so a message retried after a lost
//! answer is posted once. Slack's incoming webhooks have no such key: a retry after a lost
//! answer may post twice.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hookbridge_providers::api::ApiError> {
//! use hookbridge_core::Secret;
//! use hookbridge_providers::sinks::{Message, Notifier, slack::SlackWebhook};
//!
//! let slack = SlackWebhook::new(Secret::new("https://hooks.slack.com/services/T000/B000/XXXX"))?;
//! let message = Message::new("travis:build/4242:failed", "Build #42 of octo/app failed")
//!     .with_markdown("*Build #42* of `octo/app` failed")
//!     .with_field("Branch", "main")
//!     .with_url("https://app.travis-ci.com/github/octo/app/builds/4242");
//! slack.notify(&message).await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;

use crate::api::{ApiError, RetryPolicy};

pub mod matrix;
pub mod slack;
#[cfg(feature = "standard-webhooks")]
pub mod webhook;

/// A notification: plain text (always), optional rich text, key/value fields and a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Unique per message and the same on every retry of it (e.g. the job's idempotency
    /// key): Matrix's transaction id, a signed webhook's `webhook-id`.
    pub idempotency_key: String,
    /// The message as plain text: the notification text, and the fallback of clients that
    /// show no formatting.
    pub text: String,
    /// The message with formatting, in Slack's `mrkdwn` (used by Slack; Matrix shows the
    /// plain text, formatted as HTML; a signed webhook passes it on).
    pub markdown: Option<String>,
    /// Key/value details (branch, status, assignee...), in order.
    pub fields: Vec<(String, String)>,
    /// A link to the object the message is about.
    pub url: Option<String>,
}

impl Message {
    /// A plain-text message with its idempotency key.
    pub fn new(idempotency_key: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            idempotency_key: idempotency_key.into(),
            text: text.into(),
            markdown: None,
            fields: Vec::new(),
            url: None,
        }
    }

    /// Adds the formatted version (Slack `mrkdwn`).
    pub fn with_markdown(mut self, markdown: impl Into<String>) -> Self {
        self.markdown = Some(markdown.into());
        self
    }

    /// Adds a key/value field.
    pub fn with_field(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.push((name.into(), value.into()));
        self
    }

    /// Adds a link.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The idempotency key, refused when empty (a sink that deduplicates by it cannot do
    /// without it).
    fn key(&self, service: &'static str) -> Result<&str, ApiError> {
        if self.idempotency_key.trim().is_empty() {
            return Err(ApiError::Config {
                service,
                message: "the message has no idempotency key".into(),
            });
        }
        Ok(&self.idempotency_key)
    }
}

/// Posts [`Message`]s somewhere.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Posts `message`, retrying transient failures; errors are typed like every API call's
    /// (a refused message is [`ApiError::Validation`], an outage [`ApiError::Server`]).
    async fn notify(&self, message: &Message) -> Result<(), ApiError>;
}

/// How a sink sends: its retry policy and per-request timeout.
#[derive(Clone, Copy, Debug)]
pub struct SinkOptions {
    /// Retries of 429, 5xx and timeouts (the engine retries the job on top).
    pub retry: RetryPolicy,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(15),
        }
    }
}

/// The HTTP client of a sink: no redirect (a configured URL is where messages go, not where
/// an answer points), the options' timeout.
fn http_client(service: &'static str, options: &SinkOptions) -> Result<reqwest::Client, ApiError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(options.timeout)
        .user_agent(concat!("hookbridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ApiError::Config {
            service,
            message: e.to_string(),
        })
}

/// A URL split into its origin (the client's base URL, which `Debug` may show) and the rest
/// (path and query, which may be a credential, as Slack's is).
struct SplitUrl {
    origin: String,
    rest: String,
}

fn split_url(service: &'static str, what: &str, url: &str) -> Result<SplitUrl, ApiError> {
    // The parse error is not shown: it could quote the URL.
    let invalid = || ApiError::Config {
        service,
        message: format!("the {what} is not a valid http(s) URL"),
    };
    let parsed = Url::parse(url.trim()).map_err(|_| invalid())?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return Err(invalid());
    }
    let origin = format!("{}/", parsed.origin().ascii_serialization());
    let mut rest = parsed.path().trim_start_matches('/').to_owned();
    if let Some(query) = parsed.query() {
        rest.push('?');
        rest.push_str(query);
    }
    Ok(SplitUrl { origin, rest })
}

/// Cuts `text` to at most `max` characters, marking the cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_origin_and_secret_rest() {
        let split = split_url(
            "slack",
            "Slack webhook URL",
            "https://hooks.slack.com/services/T000/B000/XXXX?x=1",
        )
        .unwrap();
        assert_eq!(split.origin, "https://hooks.slack.com/");
        assert_eq!(split.rest, "services/T000/B000/XXXX?x=1");
        for bad in [
            "",
            "hooks.slack.com/services/x",
            "ftp://hooks.slack.com/x",
            "https://user:pw@hooks.slack.com/x",
        ] {
            let e = split_url("slack", "Slack webhook URL", bad)
                .err()
                .unwrap()
                .to_string();
            assert!(!e.contains("hooks.slack.com") && !e.contains("pw"), "{e}");
        }
    }

    #[test]
    fn truncation_keeps_char_boundaries() {
        assert_eq!(truncate("héllo", 10), "héllo");
        assert_eq!(truncate("héllo", 3), "hé…");
        assert_eq!(truncate("", 0), "");
    }
}
