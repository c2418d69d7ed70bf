//! Jira Cloud and Jira Data Center webhooks: `X-Hub-Signature` (HMAC-SHA256) verification
//! for webhooks registered with a secret, an unguessable URL token for legacy webhooks
//! without one, `X-Atlassian-Webhook-Identifier` identification, and typed events.
//!
//! Jira signs the raw body of a webhook registered with a secret with HMAC-SHA256 and sends
//! `X-Hub-Signature: sha256=<hex>` (Jira Cloud "secure admin webhooks", and Jira Data
//! Center). Webhooks registered without a secret (older Data Center versions, webhooks of
//! Connect or OAuth apps) are not signed at all: such an endpoint must say so with
//! `unsigned = true` and is then authenticated by a `token` that Jira sends back in the URL
//! (`https://hooks.example.com/hooks/jira?token=...`), compared in constant time.
//!
//! ```
//! use hookbridge_core::{Provider, RawDelivery, Secret, signature};
//! use hookbridge_providers::jira::{Jira, JiraOptions};
//!
//! let jira = Jira::new(vec![Secret::new("s3cret")], JiraOptions::default()).unwrap();
//! let body = br#"{"timestamp":1717577134571,"webhookEvent":"jira:issue_updated",
//!   "issue":{"id":"10042","key":"OPS-12","fields":{"summary":"Disk full",
//!   "updated":"2024-06-05T08:45:34.571+0000"}}}"#;
//! let sig = hex::encode(signature::hmac(signature::Algorithm::Sha256, b"s3cret", &[body]));
//! let mut headers = http::HeaderMap::new();
//! headers.insert("x-hub-signature", format!("sha256={sig}").parse().unwrap());
//! headers.insert("x-atlassian-webhook-identifier", "6f3a21d7-0c15".parse().unwrap());
//! headers.insert("content-type", "application/json".parse().unwrap());
//! let delivery = RawDelivery::new("jira", headers, &body[..]);
//!
//! jira.verify(&delivery).unwrap();
//! let event = jira.parse(&delivery).unwrap();
//! assert_eq!(event.name().as_str(), "jira:issue_updated");
//! assert_eq!(event.subject().unwrap().as_str(), "jira:OPS-12");
//! assert_eq!(event.delivery_id().as_str(), "6f3a21d7-0c15");
//! ```

pub mod auth;
pub mod client;
pub mod events;
mod identify;
mod sign;
mod verify;

use hookbridge_core::{
    Actor, Event, IdentifyError, Identity, ParseError, Provider, ProviderKind, RawDelivery, Secret,
    SignError, SignedDelivery, SubjectKey, Verified, VerifyError,
};
use serde::{Deserialize, Deserializer};

use crate::{ProviderConfigError, Sample};
pub use events::JiraEvent;

/// The provider kind of Jira, `jira`.
pub const KIND: ProviderKind = ProviderKind::new("jira");

/// Declares the samples. Jira's event names contain `:` (`jira:issue_created`), which is not
/// allowed in file names on Windows, so each sample names its file separately instead of
/// using the shared `samples!` macro (which derives the file name from the event name).
macro_rules! jira_samples {
    ($($name:literal => $file:literal),* $(,)?) => {
        &[$(Sample {
            name: $name,
            // Jira has no event header: the event type is the payload's `webhookEvent`,
            // which is the event's full name.
            event_type: $name,
            json: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/jira/", $file, ".json")),
        }),*]
    };
}

/// Sample deliveries, one per typed event.
pub const SAMPLES: &[Sample] = jira_samples!(
    "jira:issue_created" => "jira_issue_created",
    "jira:issue_updated" => "jira_issue_updated",
    "jira:issue_deleted" => "jira_issue_deleted",
    "comment_created" => "comment_created",
    "comment_updated" => "comment_updated",
    "comment_deleted" => "comment_deleted",
    "issuelink_created" => "issuelink_created",
    "issuelink_deleted" => "issuelink_deleted",
);

/// The shortest `token` accepted: the token is all that authenticates an unsigned webhook.
pub const MIN_TOKEN_LEN: usize = 16;

/// Jira-specific endpoint options.
///
/// A Jira endpoint is either signed (one or more secrets, the default) or explicitly
/// `unsigned = true` with a `token`; anything else is a configuration error, so an endpoint
/// can never end up accepting unauthenticated deliveries by omission.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraOptions {
    /// The Jira webhook has no secret, so deliveries carry no `X-Hub-Signature`: authenticate
    /// them by `token` alone. Requires `token`, and no `secret`/`secrets`. Off by default.
    #[serde(default)]
    pub unsigned: bool,
    /// A token that Jira sends back in the webhook URL's `token` query parameter
    /// (register the webhook as `https://<host>/hooks/<endpoint>?token=<token>`), compared in
    /// constant time. Required when `unsigned`; on a signed endpoint it is checked as well
    /// when set. At least 16 characters, only letters, digits, `-`, `.`, `_` and `~` (it
    /// travels in a URL). Held as a [`Secret`] from the moment it is read: never printed.
    #[serde(default, deserialize_with = "token_option")]
    pub token: Option<Secret>,
}

/// Reads `token` as a string and wraps it in a [`Secret`] at once. Errors never contain the
/// value.
fn token_option<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Secret>, D::Error> {
    Option::<String>::deserialize(deserializer).map(|token| token.map(Secret::new))
}

/// The Jira provider for one endpoint: its secrets (several while rotating), or its URL
/// token for an unsigned endpoint.
#[derive(Debug)]
pub struct Jira {
    secrets: Vec<Secret>,
    options: JiraOptions,
}

impl Jira {
    /// A Jira provider. Signed endpoints need at least one non-empty secret; an endpoint
    /// without secrets must set `unsigned = true` and a `token` (see [`JiraOptions`]).
    pub fn new(secrets: Vec<Secret>, options: JiraOptions) -> Result<Self, ProviderConfigError> {
        let kind = KIND.as_str();
        let invalid = |message: &str| ProviderConfigError::Options {
            kind,
            message: message.to_owned(),
        };
        if let Some(index) = secrets.iter().position(Secret::is_empty) {
            return Err(ProviderConfigError::EmptySecret {
                kind,
                index: index + 1,
            });
        }
        match (options.unsigned, secrets.is_empty()) {
            (true, false) => {
                return Err(invalid(
                    "`unsigned = true` but a secret is configured: remove `unsigned` to verify \
                     X-Hub-Signature with the secret, or remove the secret",
                ));
            }
            (false, true) => {
                return Err(invalid(
                    "no secret: set the webhook's secret (Jira signs deliveries with \
                     X-Hub-Signature), or, for a webhook without a secret, set `unsigned = true` \
                     and a `token`",
                ));
            }
            _ => {}
        }
        match &options.token {
            Some(token) => validate_token(token).map_err(invalid)?,
            None if options.unsigned => {
                return Err(invalid(
                    "`unsigned = true` needs a `token`, sent by Jira in the webhook URL's `token` \
                     query parameter",
                ));
            }
            None => {}
        }
        Ok(Self { secrets, options })
    }

    /// A Jira provider without secrets, for parsing only: its `verify` always fails.
    /// See [`crate::parser`].
    pub(crate) fn unverified() -> Self {
        Self {
            secrets: Vec::new(),
            options: JiraOptions::default(),
        }
    }
}

/// A token must be long enough not to be guessed, and URL-safe so that it reaches us exactly
/// as configured (the query decoder turns `+` into a space, `%` starts an escape, ...).
/// The message never contains the token.
fn validate_token(token: &Secret) -> Result<(), &'static str> {
    let bytes = token.expose();
    if bytes.is_empty() {
        return Err("`token` is empty");
    }
    if bytes.len() < MIN_TOKEN_LEN {
        return Err("`token` must be at least 16 characters long");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return Err(
            "`token` may contain only letters, digits, `-`, `.`, `_` and `~` (it is sent in a URL)",
        );
    }
    Ok(())
}

impl Provider for Jira {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn samples(&self) -> &'static [Sample] {
        SAMPLES
    }

    fn verify(&self, delivery: &RawDelivery) -> Result<Verified, VerifyError> {
        verify::verify(
            &self.secrets,
            self.options.unsigned,
            self.options.token.as_ref(),
            delivery,
        )
    }

    fn identify(&self, delivery: &RawDelivery) -> Result<Identity, IdentifyError> {
        identify::identify(delivery)
    }

    fn sign(
        &self,
        event_type: &str,
        json: &[u8],
        delivery_id: &str,
        _now: time::OffsetDateTime,
    ) -> Result<SignedDelivery, SignError> {
        sign::sign(
            self.secrets.first(),
            self.options.token.as_ref(),
            event_type,
            json,
            delivery_id,
        )
    }

    fn parse(&self, delivery: &RawDelivery) -> Result<Event, ParseError> {
        let identity = identify::identify(delivery)?;
        let typed = JiraEvent::from_json(&delivery.body)
            .map_err(|e| ParseError::Malformed(e.to_string()))?;
        let actor = typed.actor().and_then(actor_of);
        Ok(
            Event::new(KIND, typed.name(), identity.delivery_id, typed.clone())
                .with_subject(typed.subject().map(SubjectKey::new))
                .with_actor(actor)
                .with_occurred_at(typed.updated_at()),
        )
    }
}

/// The engine's view of a Jira user: the Cloud account id (Data Center: the user key, else
/// the user name), the display name, and whether the account is an app's (Cloud marks app
/// and bot accounts with `accountType: "app"`; Data Center has no such marker).
fn actor_of(user: events::User) -> Option<Actor> {
    let name = user.label()?.to_owned();
    Some(Actor {
        id: user.id().map(str::to_owned),
        name,
        is_bot: user.is_app(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(unsigned: bool, token: Option<&str>) -> JiraOptions {
        JiraOptions {
            unsigned,
            token: token.map(Secret::new),
        }
    }

    fn message(err: ProviderConfigError) -> String {
        match err {
            ProviderConfigError::Options { message, .. } => message,
            other => panic!("not an options error: {other:?}"),
        }
    }

    const TOKEN: &str = "t0k3n-0123456789abcdef";

    #[test]
    fn signed_and_unsigned_configurations() {
        Jira::new(vec![Secret::new("s")], options(false, None)).unwrap();
        Jira::new(vec![Secret::new("s")], options(false, Some(TOKEN))).unwrap();
        Jira::new(vec![], options(true, Some(TOKEN))).unwrap();
    }

    #[test]
    fn inconsistent_configurations_are_rejected() {
        let m = message(Jira::new(vec![Secret::new("s")], options(true, Some(TOKEN))).unwrap_err());
        assert!(m.contains("`unsigned = true` but a secret"), "{m}");
        let m = message(Jira::new(vec![], options(false, None)).unwrap_err());
        assert!(m.contains("no secret"), "{m}");
        let m = message(Jira::new(vec![], options(false, Some(TOKEN))).unwrap_err());
        assert!(m.contains("no secret"), "{m}");
        let m = message(Jira::new(vec![], options(true, None)).unwrap_err());
        assert!(m.contains("needs a `token`"), "{m}");
        assert!(matches!(
            Jira::new(vec![Secret::new("")], options(false, None)),
            Err(ProviderConfigError::EmptySecret { index: 1, .. })
        ));
    }

    #[test]
    fn weak_tokens_are_rejected_without_echoing_them() {
        for (token, expected) in [
            ("", "empty"),
            ("short-token", "at least 16"),
            ("has a space in it 123", "may contain only"),
            ("plus+sign+is+decoded+", "may contain only"),
        ] {
            let m = message(Jira::new(vec![], options(true, Some(token))).unwrap_err());
            assert!(m.contains(expected), "{token:?}: {m}");
            if !token.is_empty() {
                assert!(!m.contains(token), "{m}");
            }
        }
    }

    #[test]
    fn options_from_toml_keep_the_token_secret() {
        let table: toml::Table =
            toml::from_str(&format!("unsigned = true\ntoken = \"{TOKEN}\"\n")).unwrap();
        let parsed: JiraOptions = table.try_into().unwrap();
        assert!(parsed.unsigned);
        assert_eq!(parsed.token.as_ref().unwrap().expose(), TOKEN.as_bytes());
        let debug = format!("{parsed:?}");
        assert!(!debug.contains(TOKEN), "{debug}");
        assert!(debug.contains("redacted"), "{debug}");

        let unknown: toml::Table = toml::from_str("tokn = \"x\"\n").unwrap();
        assert!(unknown.try_into::<JiraOptions>().is_err());
        let wrong_type: toml::Table = toml::from_str(&format!("token = [\"{TOKEN}\"]\n")).unwrap();
        let err = wrong_type
            .try_into::<JiraOptions>()
            .unwrap_err()
            .to_string();
        assert!(!err.contains(TOKEN), "{err}");
    }

    #[test]
    fn unverified_never_verifies() {
        let jira = Jira::unverified();
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-hub-signature",
            format!("sha256={}", "0".repeat(64)).parse().unwrap(),
        );
        let mut delivery = RawDelivery::new("jira", headers, &b"{}"[..]);
        delivery.uri = "/hooks/jira?token=anything-at-all-here".parse().unwrap();
        assert!(jira.verify(&delivery).is_err());
        delivery.headers.clear();
        assert!(jira.verify(&delivery).is_err());
    }
}
