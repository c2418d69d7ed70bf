//! Standard Webhooks (<https://www.standardwebhooks.com>), Svix and Stripe: three dialects of
//! HMAC-SHA256 signing over an id or timestamp and the raw body, chosen per endpoint with the
//! `scheme` option.
//!
//! | `scheme` | signature header | signed content | secret | delivery id |
//! |---|---|---|---|---|
//! | `standard` (default) | `webhook-signature: v1,<base64>[ v1,...]` | `{webhook-id}.{webhook-timestamp}.{body}` | `whsec_<base64>`, decoded | `webhook-id` |
//! | `svix` | `svix-signature` (or `webhook-signature`) | `{svix-id}.{svix-timestamp}.{body}` | `whsec_<base64>`, decoded | `svix-id` |
//! | `stripe` | `Stripe-Signature: t=<ts>,v1=<hex>[,v1=...]` | `{t}.{body}` | `whsec_...` as written | the body's `id` |
//!
//! Every scheme signs a timestamp, checked against `tolerance_secs` (default 300) in both
//! directions; every configured secret is tried (rotation). Events are the JSON body, named by
//! its `type`.
//!
//! ```
//! use hookbridge_core::{Provider, RawDelivery, Secret};
//! use hookbridge_providers::standard_webhooks::{StandardWebhooks, StandardWebhooksOptions};
//!
//! let provider = StandardWebhooks::new(
//!     vec![Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
//!     StandardWebhooksOptions::default(),
//! ).unwrap();
//! let body = br#"{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z",
//!   "data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}"#;
//! let now = time::OffsetDateTime::now_utc();
//! let signed = provider.sign("contact.created", body, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now).unwrap();
//! let delivery = RawDelivery::new("contacts", signed.headers, signed.body);
//!
//! provider.verify(&delivery).unwrap();
//! let event = provider.parse(&delivery).unwrap();
//! assert_eq!(event.name().as_str(), "contact.created");
//! assert_eq!(event.delivery_id().as_str(), "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W");
//! assert_eq!(event.subject().unwrap().as_str(), "standard:1f81eb52-5198-4599-803e-771906343485");
//! ```

pub mod events;
mod identify;
mod sign;
mod verify;

use std::fmt;

use base64::Engine as _;
use hookbridge_core::{
    Event, IdentifyError, Identity, ParseError, Provider, ProviderKind, RawDelivery, Secret,
    SignError, SignedDelivery, SubjectKey, Verified, VerifyError,
};
use serde::{Deserialize, Serialize};
use time::Duration;

use crate::samples::samples;
use crate::{ProviderConfigError, Sample};
pub use events::StandardWebhooksEvent;

/// The provider kind, `standard-webhooks`.
pub const KIND: ProviderKind = ProviderKind::new("standard-webhooks");

/// Samples of the `standard` scheme: the spec's own example payloads.
pub const STANDARD_SAMPLES: &[Sample] = samples!("standard_webhooks":
    "contact.created" => "contact.created",
    "example.event" => "example.event",
);

/// Samples of the `svix` scheme: Svix's own operational webhook, and a Svix-delivered
/// sender's event (Clerk's `user.created`).
pub const SVIX_SAMPLES: &[Sample] = samples!("standard_webhooks":
    "message.attempt.exhausted" => "message.attempt.exhausted",
    "user.created" => "user.created",
);

/// Samples of the `stripe` scheme: Stripe event objects.
pub const STRIPE_SAMPLES: &[Sample] = samples!("standard_webhooks":
    "checkout.session.completed" => "checkout.session.completed",
    "customer.subscription.updated" => "customer.subscription.updated",
    "invoice.paid" => "invoice.paid",
    "payment_intent.succeeded" => "payment_intent.succeeded",
);

/// Every sample, of all three schemes (names are unique across them). Send each with an
/// endpoint of its scheme: see [`StandardWebhooks::samples`].
pub const SAMPLES: &[Sample] = samples!("standard_webhooks":
    "contact.created" => "contact.created",
    "example.event" => "example.event",
    "message.attempt.exhausted" => "message.attempt.exhausted",
    "user.created" => "user.created",
    "checkout.session.completed" => "checkout.session.completed",
    "customer.subscription.updated" => "customer.subscription.updated",
    "invoice.paid" => "invoice.paid",
    "payment_intent.succeeded" => "payment_intent.succeeded",
);

/// Which dialect an endpoint speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    #[default]
    Standard,
    /// Svix: the same with `svix-` headers (or `webhook-` ones).
    Svix,
    /// Stripe: `Stripe-Signature`.
    Stripe,
}

impl Scheme {
    /// `standard`, `svix` or `stripe`: the option value, and the prefix of subjects.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Standard => "standard",
            Scheme::Svix => "svix",
            Scheme::Stripe => "stripe",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The default timestamp tolerance, five minutes: the spec's libraries' and Stripe's.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;
/// The largest tolerance accepted: a wider window lets a captured delivery be replayed for
/// longer (within it, only the delivery id's dedup stops a replay).
pub const MAX_TOLERANCE_SECS: u64 = 86_400;

/// Endpoint options.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandardWebhooksOptions {
    /// `standard` (default), `svix` or `stripe`.
    #[serde(default)]
    pub scheme: Scheme,
    /// How far the signed timestamp may be from now, in seconds, either way: default 300,
    /// at least 1, at most 86400.
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
}

fn default_tolerance() -> u64 {
    DEFAULT_TOLERANCE_SECS
}

impl Default for StandardWebhooksOptions {
    fn default() -> Self {
        Self {
            scheme: Scheme::default(),
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
        }
    }
}

/// The provider for one endpoint: its HMAC keys (several while rotating) and options.
#[derive(Debug)]
pub struct StandardWebhooks {
    /// The HMAC keys: the decoded `whsec_` secrets, or Stripe's secrets as written.
    keys: Vec<Secret>,
    scheme: Scheme,
    tolerance: Duration,
    /// Parsing only: read each delivery's scheme from its headers, since stored deliveries of
    /// all three schemes come to the same parser.
    detect_scheme: bool,
}

/// The HMAC key of a Standard Webhooks / Svix secret: `whsec_` (optional, as Svix's libraries
/// accept) followed by base64. None when it is not that, or decodes to nothing.
pub(crate) fn decode_key(secret: &Secret) -> Option<Secret> {
    let text = std::str::from_utf8(secret.expose()).ok()?.trim();
    let encoded = text.strip_prefix("whsec_").unwrap_or(text);
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    (!key.is_empty()).then(|| Secret::new(key))
}

impl StandardWebhooks {
    /// A provider. At least one non-empty secret: `whsec_<base64>` for `standard` and `svix`
    /// (asymmetric `whpk_`/`whsk_` keys are not supported), Stripe's `whsec_...` for `stripe`.
    pub fn new(
        secrets: Vec<Secret>,
        options: StandardWebhooksOptions,
    ) -> Result<Self, ProviderConfigError> {
        crate::registry::require_secrets(KIND.as_str(), &secrets)?;
        let invalid = |message: String| ProviderConfigError::Options {
            kind: KIND.as_str(),
            message,
        };
        if !(1..=MAX_TOLERANCE_SECS).contains(&options.tolerance_secs) {
            return Err(invalid(format!(
                "tolerance_secs must be between 1 and {MAX_TOLERANCE_SECS}"
            )));
        }
        let keys = match options.scheme {
            Scheme::Stripe => secrets,
            Scheme::Standard | Scheme::Svix => secrets
                .iter()
                .enumerate()
                .map(|(i, secret)| {
                    if secret.expose().starts_with(b"whpk_")
                        || secret.expose().starts_with(b"whsk_")
                    {
                        return Err(invalid(format!(
                            "secret #{} is an asymmetric (v1a) key, which is not supported",
                            i + 1
                        )));
                    }
                    decode_key(secret).ok_or_else(|| {
                        invalid(format!(
                            "secret #{} is not `whsec_` followed by base64",
                            i + 1
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Self {
            keys,
            scheme: options.scheme,
            tolerance: Duration::seconds(options.tolerance_secs as i64),
            detect_scheme: false,
        })
    }

    /// A provider without keys, for parsing only: its `verify` always fails. It takes each
    /// delivery's scheme from its headers (`Stripe-Signature`: stripe, `svix-id`: svix, else
    /// standard). See [`crate::parser`].
    pub(crate) fn unverified() -> Self {
        Self {
            keys: Vec::new(),
            scheme: Scheme::Standard,
            tolerance: Duration::seconds(DEFAULT_TOLERANCE_SECS as i64),
            detect_scheme: true,
        }
    }

    /// The scheme to read `delivery` with.
    fn scheme_of(&self, delivery: &RawDelivery) -> Scheme {
        if !self.detect_scheme {
            self.scheme
        } else if delivery.headers.contains_key(verify::STRIPE_HEADER) {
            Scheme::Stripe
        } else if delivery.headers.contains_key(verify::SVIX_HEADERS.id) {
            Scheme::Svix
        } else {
            Scheme::Standard
        }
    }

    /// The endpoint's scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The samples of this endpoint's scheme.
    pub fn samples(&self) -> &'static [Sample] {
        match self.scheme {
            Scheme::Standard => STANDARD_SAMPLES,
            Scheme::Svix => SVIX_SAMPLES,
            Scheme::Stripe => STRIPE_SAMPLES,
        }
    }

    /// [`Provider::verify`] at a given time, for deterministic tests and replays.
    pub fn verify_at(
        &self,
        delivery: &RawDelivery,
        now: time::OffsetDateTime,
    ) -> Result<Verified, VerifyError> {
        verify::verify(self.scheme, &self.keys, self.tolerance, delivery, now)
    }
}

impl Provider for StandardWebhooks {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn samples(&self) -> &'static [Sample] {
        StandardWebhooks::samples(self)
    }

    fn verify(&self, delivery: &RawDelivery) -> Result<Verified, VerifyError> {
        self.verify_at(delivery, time::OffsetDateTime::now_utc())
    }

    fn identify(&self, delivery: &RawDelivery) -> Result<Identity, IdentifyError> {
        identify::identify(self.scheme_of(delivery), delivery)
    }

    fn sign(
        &self,
        _event_type: &str,
        json: &[u8],
        delivery_id: &str,
        now: time::OffsetDateTime,
    ) -> Result<SignedDelivery, SignError> {
        sign::sign(self.scheme, &self.keys, json, delivery_id, now)
    }

    fn parse(&self, delivery: &RawDelivery) -> Result<Event, ParseError> {
        let scheme = self.scheme_of(delivery);
        let identity = identify::identify(scheme, delivery)?;
        let typed = StandardWebhooksEvent::from_json(scheme, &delivery.body)
            .map_err(|e| ParseError::Malformed(e.to_string()))?;
        Ok(
            Event::new(KIND, typed.name(), identity.delivery_id, typed.clone())
                .with_subject(typed.subject().map(SubjectKey::new))
                .with_occurred_at(typed.updated_at()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_key_rules() {
        let key = |s: &str| decode_key(&Secret::new(s)).map(|k| k.expose().to_vec());
        assert_eq!(key("whsec_dGVzdA=="), Some(b"test".to_vec()));
        assert_eq!(key("dGVzdA=="), Some(b"test".to_vec()));
        assert_eq!(key(" whsec_dGVzdA==\n"), Some(b"test".to_vec()));
        assert_eq!(key("whsec_"), None);
        assert_eq!(key("whsec_***"), None);
    }

    #[test]
    fn the_parser_reads_each_delivery_with_its_own_scheme() {
        let parser = StandardWebhooks::unverified();
        let now = time::OffsetDateTime::now_utc();
        for (scheme, secret, json) in [
            (Scheme::Standard, "whsec_dGVzdA==", STANDARD_SAMPLES[0].json),
            (Scheme::Svix, "whsec_dGVzdA==", SVIX_SAMPLES[1].json),
            (Scheme::Stripe, "whsec_test", STRIPE_SAMPLES[0].json),
        ] {
            let sender = StandardWebhooks::new(
                vec![Secret::new(secret)],
                StandardWebhooksOptions {
                    scheme,
                    ..Default::default()
                },
            )
            .unwrap();
            let signed = sender.sign("x", json.as_bytes(), "msg_1", now).unwrap();
            let delivery = RawDelivery::new("stored", signed.headers, signed.body);
            let event = parser.parse(&delivery).unwrap();
            let subject = event.subject().unwrap().as_str().to_owned();
            assert!(subject.starts_with(scheme.as_str()), "{subject}");
            // The parser never vouches for a delivery.
            assert!(parser.verify(&delivery).is_err());
        }
    }
}
