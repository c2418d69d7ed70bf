//! GitHub webhooks: `X-Hub-Signature-256` verification, `X-GitHub-Delivery` identification,
//! JSON and form-encoded bodies, and typed events.
//!
//! ```
//! use hookbridge_core::{Provider, RawDelivery, Secret, signature};
//! use hookbridge_providers::github::{Github, GithubOptions};
//!
//! let github = Github::new(vec![Secret::new("s3cret")], GithubOptions::default()).unwrap();
//! let body = br#"{"zen":"Design for failure.","hook_id":42}"#;
//! let sig = hex::encode(signature::hmac(signature::Algorithm::Sha256, b"s3cret", &[body]));
//! let mut headers = http::HeaderMap::new();
//! headers.insert("x-hub-signature-256", format!("sha256={sig}").parse().unwrap());
//! headers.insert("x-github-event", "ping".parse().unwrap());
//! headers.insert("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958".parse().unwrap());
//! headers.insert("content-type", "application/json".parse().unwrap());
//! let delivery = RawDelivery::new("github", headers, &body[..]);
//!
//! github.verify(&delivery).unwrap();
//! let event = github.parse(&delivery).unwrap();
//! assert_eq!(event.name().as_str(), "ping");
//! assert_eq!(event.subject().unwrap().as_str(), "github:hook/42");
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
use serde::Deserialize;

use crate::samples::samples;
use crate::{ProviderConfigError, Sample};
pub use events::GithubEvent;

/// The provider kind of GitHub, `github`.
pub const KIND: ProviderKind = ProviderKind::new("github");

/// Sample deliveries, one per typed event.
pub const SAMPLES: &[Sample] = samples!("github":
    "check_run.completed" => "check_run",
    "check_suite.completed" => "check_suite",
    "create" => "create",
    "delete" => "delete",
    "installation.created" => "installation",
    "installation_repositories.added" => "installation_repositories",
    "issue_comment.created" => "issue_comment",
    "issues.closed" => "issues",
    "issues.labeled" => "issues",
    "issues.opened" => "issues",
    "label.created" => "label",
    "ping" => "ping",
    "pull_request.closed" => "pull_request",
    "pull_request.opened" => "pull_request",
    "pull_request.synchronize" => "pull_request",
    "pull_request_review.submitted" => "pull_request_review",
    "pull_request_review_comment.created" => "pull_request_review_comment",
    "push" => "push",
    "release.published" => "release",
    "workflow_run.completed" => "workflow_run",
);

/// GitHub-specific endpoint options.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubOptions {
    /// Accept deliveries signed only with the legacy `X-Hub-Signature` (HMAC-SHA1), as
    /// very old GitHub Enterprise Server versions send. Off by default: SHA-1 is weaker, and
    /// every current GitHub sends `X-Hub-Signature-256`.
    #[serde(default)]
    pub allow_sha1: bool,
}

/// The GitHub provider for one endpoint: its secrets (several while rotating) and options.
#[derive(Debug)]
pub struct Github {
    secrets: Vec<Secret>,
    options: GithubOptions,
}

impl Github {
    /// A GitHub provider. GitHub endpoints must be signed: at least one non-empty secret.
    pub fn new(secrets: Vec<Secret>, options: GithubOptions) -> Result<Self, ProviderConfigError> {
        crate::registry::require_secrets(KIND.as_str(), &secrets)?;
        Ok(Self { secrets, options })
    }

    /// A GitHub provider without secrets, for parsing only: its `verify` always fails.
    /// See [`crate::parser`].
    pub(crate) fn unverified() -> Self {
        Self {
            secrets: Vec::new(),
            options: GithubOptions::default(),
        }
    }
}

impl Provider for Github {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn samples(&self) -> &'static [Sample] {
        SAMPLES
    }

    fn verify(&self, delivery: &RawDelivery) -> Result<Verified, VerifyError> {
        verify::verify(&self.secrets, self.options.allow_sha1, delivery)
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
        let secret = self.secrets.first().ok_or(SignError::NoSecret)?;
        sign::sign(secret, event_type, json, delivery_id)
    }

    fn parse(&self, delivery: &RawDelivery) -> Result<Event, ParseError> {
        let identity = identify::identify(delivery)?;
        let json = identify::json_body(delivery)?;
        let typed = GithubEvent::from_json(&identity.event_type, &json)
            .map_err(|e| ParseError::Malformed(e.to_string()))?;
        let actor = match &typed {
            // Untyped events still name their sender; loop prevention needs it.
            GithubEvent::Untyped(untyped) => untyped_actor(&untyped.payload["sender"]),
            _ => typed.sender().map(|user| Actor {
                id: Some(user.id.to_string()),
                name: user.login.clone(),
                is_bot: user.kind.as_deref() == Some("Bot"),
            }),
        };
        Ok(
            Event::new(KIND, typed.name(), identity.delivery_id, typed.clone())
                .with_subject(typed.subject().map(SubjectKey::new))
                .with_actor(actor)
                .with_occurred_at(typed.updated_at()),
        )
    }
}

fn untyped_actor(sender: &serde_json::Value) -> Option<Actor> {
    let name = sender.get("login")?.as_str()?.to_owned();
    Some(Actor {
        id: sender.get("id").map(|id| match id {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        name,
        is_bot: sender.get("type").and_then(|t| t.as_str()) == Some("Bot"),
    })
}
