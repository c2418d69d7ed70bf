//! A generic outgoing webhook, signed as [Standard Webhooks](https://www.standardwebhooks.com)
//! specifies ([spec](https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md)):
//! a JSON `POST` with
//!
//! - `webhook-id`: the message's id, the same on every retry of it (the receiver's dedup key);
//! - `webhook-timestamp`: the Unix time of this attempt;
//! - `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per
//!   secret (space-separated) while secrets are rotated.
//!
//! The secret is `whsec_` followed by the base64 key, as the spec's libraries take it. The
//! signing is [`crate::standard_webhooks`]'s own (the one its verifier is tested against), so
//! a receiver using any Standard Webhooks library, or hookbridge's `standard-webhooks`
//! provider, verifies it.
//!
//! The body follows the spec's recommended shape:
//! `{"type": "hookbridge.notification", "data": {"text", "markdown", "fields": [{"name",
//! "value"}], "url"}}`. It carries no time of its own, so a retried message has the same body
//! (and the same `webhook-id`) and differs only by `webhook-timestamp` and signature.

use std::fmt;

use async_trait::async_trait;
use hookbridge_core::{Provider, Secret};
use reqwest::Method;
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{Message, Notifier, SinkOptions, http_client, split_url};
use crate::api::{ApiClient, ApiError, Call};
use crate::standard_webhooks::{StandardWebhooks, StandardWebhooksOptions};

const SERVICE: &str = "webhook";

/// The `type` of the notifications sent.
pub const EVENT_TYPE: &str = "hookbridge.notification";

/// The Standard Webhooks headers, as the calls take them.
const ID_HEADER: &str = "webhook-id";
const TIMESTAMP_HEADER: &str = "webhook-timestamp";
const SIGNATURE_HEADER: &str = "webhook-signature";

/// An HTTP endpoint receiving signed notifications. `Debug` shows only the URL's origin (its
/// path may carry a token) and no secret.
pub struct SignedWebhook {
    api: ApiClient,
    path: Secret,
    signer: StandardWebhooks,
}

impl fmt::Debug for SignedWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedWebhook")
            .field("origin", &self.api.base_url().as_str())
            .field("path", &"[redacted]")
            .field("secrets", &"[redacted]")
            .finish()
    }
}

#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    event_type: &'static str,
    data: PayloadData<'a>,
}

#[derive(Serialize)]
struct PayloadData<'a> {
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    markdown: Option<&'a str>,
    fields: Vec<Field<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
}

#[derive(Serialize)]
struct Field<'a> {
    name: &'a str,
    value: &'a str,
}

impl SignedWebhook {
    /// The endpoint at `url`, signing with each of `secrets` (`whsec_<base64>`; the first
    /// is the current one, the others kept while the receiver rotates).
    pub fn new(url: &str, secrets: Vec<Secret>) -> Result<Self, ApiError> {
        Self::with_options(url, secrets, SinkOptions::default())
    }

    /// The same, with a retry policy and timeout.
    pub fn with_options(
        url: &str,
        secrets: Vec<Secret>,
        options: SinkOptions,
    ) -> Result<Self, ApiError> {
        let signer =
            StandardWebhooks::new(secrets, StandardWebhooksOptions::default()).map_err(|e| {
                ApiError::Config {
                    service: SERVICE,
                    message: e.to_string(),
                }
            })?;
        let split = split_url(SERVICE, "webhook URL", url)?;
        let api = ApiClient::builder(SERVICE, &split.origin)?
            .http(http_client(SERVICE, &options)?)
            .retry(options.retry)
            .build()?;
        Ok(Self {
            api,
            path: Secret::new(split.rest),
            signer,
        })
    }

    /// The JSON body sent for `message`.
    pub fn payload(message: &Message) -> serde_json::Value {
        let payload = Payload {
            event_type: EVENT_TYPE,
            data: PayloadData {
                text: &message.text,
                markdown: message.markdown.as_deref(),
                fields: message
                    .fields
                    .iter()
                    .map(|(name, value)| Field { name, value })
                    .collect(),
                url: message.url.as_deref(),
            },
        };
        // Serializing plain strings and vectors cannot fail.
        serde_json::to_value(payload).unwrap_or_default()
    }

    /// The `webhook-id` of `message`: its idempotency key when that is a plain token (the
    /// spec's ids are `msg_...`-like, and a `.` would make the signed content ambiguous),
    /// else a digest of it, the same on every retry.
    pub fn webhook_id(message: &Message) -> Result<String, ApiError> {
        let key = message.key(SERVICE)?;
        let plain = key.len() <= 64
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        Ok(if plain {
            key.to_owned()
        } else {
            format!("msg_{}", &hex::encode(Sha256::digest(key.as_bytes()))[..32])
        })
    }

    /// Posts `message` signed at `now` (a retry inside the client resends the same bytes
    /// and signature, within the receiver's tolerance).
    async fn send_at(&self, message: &Message, now: OffsetDateTime) -> Result<(), ApiError> {
        let id = Self::webhook_id(message)?;
        let payload = Self::payload(message);
        // The client serializes this same value to send it: the signed bytes are the sent ones.
        let body = serde_json::to_vec(&payload).map_err(|e| ApiError::Decode {
            service: SERVICE,
            message: e.to_string(),
        })?;
        let signed =
            self.signer
                .sign(EVENT_TYPE, &body, &id, now)
                .map_err(|e| ApiError::Config {
                    service: SERVICE,
                    message: e.to_string(),
                })?;
        let header = |name: &'static str| -> Result<String, ApiError> {
            signed
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| ApiError::Config {
                    service: SERVICE,
                    message: format!("the signature has no {name} header"),
                })
        };
        let path = std::str::from_utf8(self.path.expose()).map_err(|_| ApiError::Config {
            service: SERVICE,
            message: "the webhook URL is not UTF-8".into(),
        })?;
        // Safe to repeat: receivers deduplicate on `webhook-id`, which retries keep.
        let call = Call::new(Method::POST, path)
            .idempotent()
            .json(&payload)?
            .header(ID_HEADER, &header(ID_HEADER)?)
            .header(TIMESTAMP_HEADER, &header(TIMESTAMP_HEADER)?)
            .header(SIGNATURE_HEADER, &header(SIGNATURE_HEADER)?);
        self.api.send(call).await?;
        Ok(())
    }
}

#[async_trait]
impl Notifier for SignedWebhook {
    async fn notify(&self, message: &Message) -> Result<(), ApiError> {
        self.send_at(message, OffsetDateTime::now_utc()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_safe() {
        let plain = Message::new("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "t");
        assert_eq!(
            SignedWebhook::webhook_id(&plain).unwrap(),
            "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
        );
        let dotted = Message::new("travis:build/42.failed", "t");
        let id = SignedWebhook::webhook_id(&dotted).unwrap();
        assert!(id.starts_with("msg_") && !id.contains('.') && id.len() == 36);
        assert_eq!(id, SignedWebhook::webhook_id(&dotted).unwrap());
        assert!(SignedWebhook::webhook_id(&Message::new(" ", "t")).is_err());
    }

    #[test]
    fn payload_shape() {
        let message = Message::new("k", "Build failed")
            .with_field("Branch", "main")
            .with_url("https://ci.example.com/b/1");
        assert_eq!(
            SignedWebhook::payload(&message),
            serde_json::json!({"type": "hookbridge.notification", "data": {
                "text": "Build failed",
                "fields": [{"name": "Branch", "value": "main"}],
                "url": "https://ci.example.com/b/1"
            }})
        );
    }

    #[test]
    fn configuration() {
        let secret = || vec![Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")];
        assert!(SignedWebhook::new("https://example.com/hook?token=abc", secret()).is_ok());
        assert!(SignedWebhook::new("https://example.com/hook", vec![]).is_err());
        let e = SignedWebhook::new(
            "https://example.com/hook",
            vec![Secret::new("whsec_***not-base64")],
        )
        .unwrap_err();
        assert!(!e.to_string().contains("not-base64"), "{e}");
        let hook = SignedWebhook::new("https://example.com/hook?token=abc", secret()).unwrap();
        let debug = format!("{hook:?}");
        assert!(
            !debug.contains("token=abc") && !debug.contains("MfKQ9r8"),
            "{debug}"
        );
    }
}
