//! Slack incoming webhooks
//! ([Sending messages using incoming webhooks](https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks)):
//! `POST` a JSON message (`text`, and `blocks` for the formatted version) to the webhook's
//! URL. The URL is the credential: whoever has it can post to the channel, so it is held as
//! a [`Secret`], split so that only its origin (`https://hooks.slack.com/`) can ever appear in
//! `Debug` output, and never appears in an error.
//!
//! Slack answers `200 ok`, or an error status with a plain-text reason
//! ([changelog](https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks)):
//! 400 `invalid_payload` / `no_text` / `user_not_found` ([`ApiError::Validation`]), 403
//! `action_prohibited` ([`ApiError::Forbidden`]), 404 `channel_not_found` and 410
//! `channel_is_archived` ([`ApiError::NotFound`]), 500 `rollup_error` ([`ApiError::Server`],
//! retried), 429 with `Retry-After` ([`ApiError::RateLimited`]).
//!
//! The message's plain `text` is always sent (Slack's notification text and fallback). When
//! it has formatting, fields or a link, `blocks` are sent too: a `section` with the `mrkdwn`
//! text (3000 characters at most), `section`s of up to 10 fields (2000 characters each), and
//! a `context` with the link ([Block Kit](https://docs.slack.dev/reference/block-kit/blocks)).

use std::fmt;

use async_trait::async_trait;
use hookbridge_core::Secret;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Message, Notifier, SinkOptions, http_client, split_url, truncate};
use crate::api::{ApiClient, ApiError, Call};

const SERVICE: &str = "slack";

/// The longest text of a section block.
const SECTION_TEXT_MAX: usize = 3000;
/// The longest text of a section field.
const FIELD_TEXT_MAX: usize = 2000;
/// The most fields of one section block.
const FIELDS_PER_SECTION: usize = 10;
/// Slack takes at most 50 blocks a message: the text, the link, and 48 sections of fields.
const MAX_FIELD_SECTIONS: usize = 48;

/// A Slack incoming webhook. `Debug` shows only Slack's origin.
pub struct SlackWebhook {
    api: ApiClient,
    /// The URL's path and query: the credential.
    path: Secret,
}

impl fmt::Debug for SlackWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackWebhook")
            .field("origin", &self.api.base_url().as_str())
            .field("path", &"[redacted]")
            .finish()
    }
}

impl SlackWebhook {
    /// The incoming webhook at `url` (`https://hooks.slack.com/services/T.../B.../...`).
    pub fn new(url: Secret) -> Result<Self, ApiError> {
        Self::with_options(url, SinkOptions::default())
    }

    /// The same, with a retry policy and timeout.
    pub fn with_options(url: Secret, options: SinkOptions) -> Result<Self, ApiError> {
        let text = std::str::from_utf8(url.expose()).map_err(|_| ApiError::Config {
            service: SERVICE,
            message: "the Slack webhook URL is not UTF-8".into(),
        })?;
        let split = split_url(SERVICE, "Slack webhook URL", text)?;
        let api = ApiClient::builder(SERVICE, &split.origin)?
            .http(http_client(SERVICE, &options)?)
            .retry(options.retry)
            .build()?;
        Ok(Self {
            api,
            path: Secret::new(split.rest),
        })
    }

    /// The JSON body posted for `message`.
    pub fn payload(message: &Message) -> Value {
        let mut body = json!({ "text": message.text });
        if message.markdown.is_none() && message.fields.is_empty() && message.url.is_none() {
            return body;
        }
        let main = match &message.markdown {
            Some(markdown) => markdown.clone(),
            None => escape(&message.text),
        };
        let mut blocks = vec![json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(&main, SECTION_TEXT_MAX)},
        })];
        for chunk in message
            .fields
            .chunks(FIELDS_PER_SECTION)
            .take(MAX_FIELD_SECTIONS)
        {
            let fields: Vec<Value> = chunk
                .iter()
                .map(|(name, value)| {
                    let text = format!("*{}*\n{}", escape(name), escape(value));
                    json!({"type": "mrkdwn", "text": truncate(&text, FIELD_TEXT_MAX)})
                })
                .collect();
            blocks.push(json!({"type": "section", "fields": fields}));
        }
        if let Some(url) = &message.url {
            // `|` ends a link's URL in mrkdwn; `&`, `<`, `>` are Slack's control characters.
            let link = format!("<{}|Open>", escape(url).replace('|', "%7C"));
            blocks.push(json!({
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": link}],
            }));
        }
        body["blocks"] = Value::Array(blocks);
        body
    }
}

/// Escapes Slack's control characters in text that is not meant as markup
/// ([Formatting text](https://docs.slack.dev/messaging/formatting-message-text#escaping)).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[async_trait]
impl Notifier for SlackWebhook {
    async fn notify(&self, message: &Message) -> Result<(), ApiError> {
        let path = std::str::from_utf8(self.path.expose()).map_err(|_| ApiError::Config {
            service: SERVICE,
            message: "the Slack webhook URL is not UTF-8".into(),
        })?;
        // Repeated after a 5xx: a rare duplicate message beats a lost notification, and the
        // engine would repeat the whole job anyway.
        let call = Call::new(Method::POST, path)
            .idempotent()
            .json(&Self::payload(message))?;
        self.api.send(call).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages_send_text_only() {
        let message = Message::new("k", "Build #42 passed");
        assert_eq!(
            SlackWebhook::payload(&message),
            json!({"text": "Build #42 passed"})
        );
    }

    #[test]
    fn rich_messages_send_blocks_with_escaping() {
        let message = Message::new("k", "Build <42> & co failed")
            .with_field("Branch", "feature/<x>")
            .with_url("https://ci.example.com/b?a=1&b=2");
        let payload = SlackWebhook::payload(&message);
        assert_eq!(payload["text"], "Build <42> & co failed");
        assert_eq!(
            payload["blocks"][0]["text"]["text"],
            "Build &lt;42&gt; &amp; co failed"
        );
        assert_eq!(
            payload["blocks"][1]["fields"][0]["text"],
            "*Branch*\nfeature/&lt;x&gt;"
        );
        assert_eq!(
            payload["blocks"][2]["elements"][0]["text"],
            "<https://ci.example.com/b?a=1&amp;b=2|Open>"
        );
    }

    #[test]
    fn limits_are_kept() {
        let mut message = Message::new("k", "t").with_markdown("x".repeat(5000));
        for i in 0..25 {
            message = message.with_field(format!("f{i}"), "y".repeat(3000));
        }
        let payload = SlackWebhook::payload(&message);
        let blocks = payload["blocks"].as_array().unwrap();
        assert_eq!(
            blocks[0]["text"]["text"].as_str().unwrap().chars().count(),
            SECTION_TEXT_MAX
        );
        assert_eq!(blocks.len(), 4);
        assert_eq!(blocks[1]["fields"].as_array().unwrap().len(), 10);
        assert_eq!(blocks[3]["fields"].as_array().unwrap().len(), 5);
        assert!(
            blocks[1]["fields"][0]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= FIELD_TEXT_MAX
        );
    }

    #[test]
    fn the_url_never_shows() {
        let slack = SlackWebhook::new(Secret::new(
            "https://hooks.slack.com/services/T000/B000/XXXXsecret",
        ))
        .unwrap();
        let debug = format!("{slack:?}");
        assert!(debug.contains("hooks.slack.com") && !debug.contains("XXXXsecret"));
        let e = SlackWebhook::new(Secret::new("hooks.slack.com/services/T000/B000/XXXXsecret"))
            .unwrap_err();
        assert!(!e.to_string().contains("XXXXsecret"), "{e}");
    }
}
