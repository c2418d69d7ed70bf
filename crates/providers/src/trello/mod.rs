//! Trello webhooks: the `HEAD` check answered at webhook creation, `X-Trello-Webhook`
//! verification (HMAC-SHA1 over the body and the registered callback URL), identification by
//! action id, and typed actions.
//!
//! Trello signs the callback URL along with the body, so an endpoint must be configured with
//! `callback_url`: the URL exactly as it was given to Trello when the webhook was created
//! (scheme, host, path, query, trailing slash and all), not as this server sees it behind a
//! proxy. The secret is the Trello application's secret (several while rotating).
//!
//! ```
//! use hookbridge_core::{Provider, RawDelivery, Secret};
//! use hookbridge_providers::trello::{Trello, TrelloOptions};
//!
//! let options = TrelloOptions { callback_url: "https://hooks.example.com/hooks/trello".into() };
//! let trello = Trello::new(vec![Secret::new("app-secret")], options).unwrap();
//!
//! // Trello checks the callback URL with a HEAD request when the webhook is created.
//! let mut check = RawDelivery::new("trello", http::HeaderMap::new(), Vec::new());
//! check.method = http::Method::HEAD;
//! assert_eq!(trello.handshake(&check).unwrap().status, http::StatusCode::OK);
//!
//! let body = br#"{"action":{"id":"65f0c1a2b3c4d5e6f7a8b9c0","type":"commentCard",
//!   "date":"2024-05-17T09:21:03.512Z","data":{"text":"Looks good",
//!   "card":{"id":"65e9a0b1c2d3e4f5a6b7c8d9","name":"Fix login"}},
//!   "memberCreator":{"id":"5a1b2c3d4e5f60718293a4b5","username":"alice"}},
//!   "model":{"id":"65e9a0b1c2d3e4f5a6b7c000","name":"Engineering"}}"#;
//! let signed = trello.sign("commentCard", body, "", time::OffsetDateTime::now_utc()).unwrap();
//! let delivery = RawDelivery::new("trello", signed.headers, signed.body);
//!
//! trello.verify(&delivery).unwrap();
//! let event = trello.parse(&delivery).unwrap();
//! assert_eq!(event.name().as_str(), "commentCard");
//! assert_eq!(event.delivery_id().as_str(), "65f0c1a2b3c4d5e6f7a8b9c0");
//! assert_eq!(event.subject().unwrap().as_str(), "trello:card/65e9a0b1c2d3e4f5a6b7c8d9");
//! assert_eq!(event.actor().unwrap().name, "alice");
//! ```

pub mod auth;
pub mod client;
pub mod events;
mod identify;
mod sign;
mod verify;

use std::fmt;

use hookbridge_core::{
    Actor, Event, Handshake, IdentifyError, Identity, ParseError, Provider, ProviderKind,
    RawDelivery, Secret, SignError, SignedDelivery, SubjectKey, Verified, VerifyError,
};
use http::{Method, StatusCode};
use serde::Deserialize;

use crate::samples::samples;
use crate::{ProviderConfigError, Sample};
pub use events::TrelloEvent;

/// The provider kind of Trello, `trello`.
pub const KIND: ProviderKind = ProviderKind::new("trello");

/// Sample deliveries, one per typed action type.
pub const SAMPLES: &[Sample] = samples!("trello":
    "addLabelToCard" => "addLabelToCard",
    "addMemberToCard" => "addMemberToCard",
    "commentCard" => "commentCard",
    "createCard" => "createCard",
    "createList" => "createList",
    "deleteCard" => "deleteCard",
    "moveCardFromBoard" => "moveCardFromBoard",
    "moveCardToBoard" => "moveCardToBoard",
    "removeLabelFromCard" => "removeLabelFromCard",
    "removeMemberFromCard" => "removeMemberFromCard",
    "updateBoard" => "updateBoard",
    "updateCard" => "updateCard",
    "updateCheckItemStateOnCard" => "updateCheckItemStateOnCard",
    "updateList" => "updateList",
);

/// Trello-specific endpoint options.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrelloOptions {
    /// Required. The callback URL exactly as it was registered with Trello (the webhook's
    /// `callbackURL`), `http` or `https`. Trello signs it together with the body, so it must
    /// match byte for byte.
    #[serde(default)]
    pub callback_url: String,
}

impl fmt::Debug for TrelloOptions {
    // The query of a callback URL may carry a token of the user's own: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = match self.callback_url.split_once('?') {
            Some((base, _)) => format!("{base}?[redacted]"),
            None => self.callback_url.clone(),
        };
        f.debug_struct("TrelloOptions")
            .field("callback_url", &shown)
            .finish()
    }
}

/// The Trello provider for one endpoint: the application secrets (several while rotating)
/// and the registered callback URL.
#[derive(Debug)]
pub struct Trello {
    secrets: Vec<Secret>,
    options: TrelloOptions,
}

impl Trello {
    /// A Trello provider. Trello endpoints must be signed (at least one non-empty secret:
    /// the Trello application's secret) and must name their `callback_url`, an absolute
    /// `http` or `https` URL.
    pub fn new(secrets: Vec<Secret>, options: TrelloOptions) -> Result<Self, ProviderConfigError> {
        crate::registry::require_secrets(KIND.as_str(), &secrets)?;
        check_callback_url(&options.callback_url)?;
        Ok(Self { secrets, options })
    }

    /// A Trello provider without secrets, for parsing only: its `verify` always fails.
    /// See [`crate::parser`].
    pub(crate) fn unverified() -> Self {
        Self {
            secrets: Vec::new(),
            options: TrelloOptions::default(),
        }
    }
}

fn check_callback_url(url: &str) -> Result<(), ProviderConfigError> {
    let invalid = |why: &str| ProviderConfigError::Options {
        kind: KIND.as_str(),
        message: format!("callback_url {why}"),
    };
    if url.is_empty() {
        return Err(invalid(
            "is required: the URL exactly as registered with Trello, which Trello signs",
        ));
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|_| invalid("is not a valid absolute URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(invalid("must be an http or https URL"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("has no host"));
    }
    Ok(())
}

impl Provider for Trello {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn samples(&self) -> &'static [Sample] {
        SAMPLES
    }

    /// Trello checks a callback URL with a `HEAD` request when a webhook is created, and
    /// creates the webhook only on a 200. The check carries no signature and no body.
    fn handshake(&self, delivery: &RawDelivery) -> Option<Handshake> {
        (delivery.method == Method::HEAD).then(|| Handshake::status(StatusCode::OK))
    }

    fn verify(&self, delivery: &RawDelivery) -> Result<Verified, VerifyError> {
        verify::verify(&self.secrets, &self.options.callback_url, delivery)
    }

    fn identify(&self, delivery: &RawDelivery) -> Result<Identity, IdentifyError> {
        identify::identify(delivery)
    }

    fn sign(
        &self,
        _event_type: &str,
        json: &[u8],
        _delivery_id: &str,
        _now: time::OffsetDateTime,
    ) -> Result<SignedDelivery, SignError> {
        // The action type and id travel in the body, which is sent as given.
        let secret = self.secrets.first().ok_or(SignError::NoSecret)?;
        sign::sign(secret, &self.options.callback_url, json)
    }

    fn parse(&self, delivery: &RawDelivery) -> Result<Event, ParseError> {
        let identity = identify::identify(delivery)?;
        let typed = TrelloEvent::from_json(&delivery.body)
            .map_err(|e| ParseError::Malformed(e.to_string()))?;
        let actor = match &typed {
            TrelloEvent::Action(payload) => payload.action.member_creator.as_ref().map(|m| Actor {
                id: Some(m.id.clone()),
                name: m
                    .username
                    .clone()
                    .or_else(|| m.full_name.clone())
                    .unwrap_or_else(|| m.id.clone()),
                // Trello does not mark bot accounts; loop prevention goes by member id.
                is_bot: false,
            }),
            // Untyped deliveries still name their creator; loop prevention needs it.
            TrelloEvent::Untyped(untyped) => {
                untyped_actor(&untyped.payload["action"]["memberCreator"])
            }
        };
        let name = typed.name();
        let subject = typed.subject().map(SubjectKey::new);
        let occurred_at = typed.updated_at();
        Ok(Event::new(KIND, name, identity.delivery_id, typed)
            .with_subject(subject)
            .with_actor(actor)
            .with_occurred_at(occurred_at))
    }
}

fn untyped_actor(member: &serde_json::Value) -> Option<Actor> {
    let id = member.get("id")?.as_str()?.to_owned();
    let name = member
        .get("username")
        .and_then(serde_json::Value::as_str)
        .map_or_else(|| id.clone(), str::to_owned);
    Some(Actor {
        id: Some(id),
        name,
        is_bot: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(url: &str) -> TrelloOptions {
        TrelloOptions {
            callback_url: url.into(),
        }
    }

    #[test]
    fn configuration_is_checked() {
        let s = || vec![Secret::new("app-secret")];
        assert!(Trello::new(s(), options("https://hooks.example.com/trello?x=1")).is_ok());
        assert!(Trello::new(s(), options("http://10.0.0.5:8080/hooks/trello")).is_ok());
        for bad in [
            "",
            "hooks.example.com/trello",
            "/hooks/trello",
            "ftp://hooks.example.com/trello",
            "https://",
            "https://hooks.example.com/with space",
        ] {
            let err = Trello::new(s(), options(bad)).unwrap_err();
            assert!(
                matches!(&err, ProviderConfigError::Options { kind: "trello", message } if message.contains("callback_url")),
                "{bad}: {err}"
            );
        }
        assert!(matches!(
            Trello::new(vec![], options("https://hooks.example.com/trello")),
            Err(ProviderConfigError::MissingSecret { kind: "trello" })
        ));
        assert!(matches!(
            Trello::new(
                vec![Secret::new("a"), Secret::new("")],
                options("https://hooks.example.com/trello")
            ),
            Err(ProviderConfigError::EmptySecret {
                kind: "trello",
                index: 2
            })
        ));
    }

    #[test]
    fn options_from_toml() {
        let table: toml::Table =
            toml::from_str(r#"callback_url = "https://hooks.example.com/t""#).unwrap();
        let parsed: TrelloOptions = table.try_into().unwrap();
        assert_eq!(parsed.callback_url, "https://hooks.example.com/t");
        let unknown: toml::Table = toml::from_str(r#"callbackurl = "x""#).unwrap();
        assert!(unknown.try_into::<TrelloOptions>().is_err());
        // Missing is the provider's config error, with a message that says what to set.
        let missing: TrelloOptions = toml::Table::new().try_into().unwrap();
        let err = Trello::new(vec![Secret::new("k")], missing).unwrap_err();
        assert!(
            err.to_string().contains("callback_url is required"),
            "{err}"
        );
    }

    #[test]
    fn debug_hides_the_query_and_secrets() {
        let trello = Trello::new(
            vec![Secret::new("very-secret")],
            options("https://hooks.example.com/t?token=abc123"),
        )
        .unwrap();
        let shown = format!("{trello:?}");
        assert!(
            !shown.contains("very-secret") && !shown.contains("abc123"),
            "{shown}"
        );
        assert!(
            shown.contains("https://hooks.example.com/t?[redacted]"),
            "{shown}"
        );
    }

    #[test]
    fn only_head_is_a_handshake() {
        let trello = Trello::unverified();
        let mut d = RawDelivery::new("t", http::HeaderMap::new(), Vec::new());
        assert!(trello.handshake(&d).is_none());
        d.method = Method::GET;
        assert!(trello.handshake(&d).is_none());
        d.method = Method::HEAD;
        let answer = trello.handshake(&d).unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        assert!(answer.body.is_empty() && answer.learned_secret.is_none());
    }

    #[test]
    fn unverified_never_verifies_nor_signs() {
        let trello = Trello::unverified();
        assert!(matches!(
            trello.sign("createCard", b"{}", "", time::OffsetDateTime::now_utc()),
            Err(SignError::NoSecret)
        ));
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-trello-webhook",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAA=".parse().unwrap(),
        );
        let d = RawDelivery::new("t", headers, &b"{}"[..]);
        assert!(trello.verify(&d).is_err());
    }
}
