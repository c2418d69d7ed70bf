//! GitLab webhooks (GitLab.com and self-managed): `X-Gitlab-Token` verification,
//! `Idempotency-Key` identification, and typed events.
//!
//! GitLab does not sign deliveries: it sends the webhook's secret token itself in
//! `X-Gitlab-Token`, which is compared in constant time with every configured secret. The
//! token authenticates the sender; it does not protect the body, which HTTPS must.
//!
//! ```
//! use hookbridge_core::{Provider, RawDelivery, Secret};
//! use hookbridge_providers::gitlab::{Gitlab, GitlabOptions};
//!
//! let gitlab = Gitlab::new(vec![Secret::new("s3cret")], GitlabOptions::default()).unwrap();
//! let body = br#"{"object_kind":"push","before":"95790bf891e76fee5e1747ab589903a6a1f80f22",
//!   "after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","ref":"refs/heads/main",
//!   "user_id":4,"user_name":"John Smith","user_username":"jsmith",
//!   "project":{"id":15,"path_with_namespace":"mike/diaspora",
//!     "web_url":"https://gitlab.example.com/mike/diaspora"},"commits":[]}"#;
//! let mut headers = http::HeaderMap::new();
//! headers.insert("x-gitlab-token", "s3cret".parse().unwrap());
//! headers.insert("x-gitlab-event", "Push Hook".parse().unwrap());
//! headers.insert("idempotency-key", "f5e5f430-f57b-4e6e-9fac-d9128cd7232f".parse().unwrap());
//! headers.insert("content-type", "application/json".parse().unwrap());
//! let delivery = RawDelivery::new("gitlab", headers, &body[..]);
//!
//! gitlab.verify(&delivery).unwrap();
//! let event = gitlab.parse(&delivery).unwrap();
//! assert_eq!(event.name().as_str(), "push");
//! assert_eq!(event.subject().unwrap().as_str(), "gitlab:mike/diaspora@refs/heads/main");
//! assert_eq!(event.actor().unwrap().name, "jsmith");
//! ```

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
pub use events::GitlabEvent;

/// The provider kind of GitLab, `gitlab`.
pub const KIND: ProviderKind = ProviderKind::new("gitlab");

/// Sample deliveries, one per typed event (and a second for a few).
pub const SAMPLES: &[Sample] = samples!("gitlab":
    "issue.open" => "Issue Hook",
    "issue.close" => "Issue Hook",
    "merge_request.open" => "Merge Request Hook",
    "merge_request.merge" => "Merge Request Hook",
    "note.create" => "Note Hook",
    "note.update" => "Note Hook",
    "push" => "Push Hook",
    "pipeline.success" => "Pipeline Hook",
    "pipeline.failed" => "Pipeline Hook",
);

/// GitLab-specific endpoint options. There are none yet: a GitLab endpoint is its secret
/// token(s). Unknown keys are rejected, so a misspelt option is an error rather than ignored.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitlabOptions {}

/// The GitLab provider for one endpoint: its secret tokens (several while rotating).
#[derive(Debug)]
pub struct Gitlab {
    secrets: Vec<Secret>,
}

impl Gitlab {
    /// A GitLab provider. GitLab endpoints must be authenticated: at least one non-empty
    /// secret token (the webhook's "Secret token" in GitLab).
    pub fn new(secrets: Vec<Secret>, options: GitlabOptions) -> Result<Self, ProviderConfigError> {
        let GitlabOptions {} = options;
        crate::registry::require_secrets(KIND.as_str(), &secrets)?;
        Ok(Self { secrets })
    }

    /// A GitLab provider without secrets, for parsing only: its `verify` always fails.
    /// See [`crate::parser`].
    pub(crate) fn unverified() -> Self {
        Self {
            secrets: Vec::new(),
        }
    }
}

impl Provider for Gitlab {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn samples(&self) -> &'static [Sample] {
        SAMPLES
    }

    fn verify(&self, delivery: &RawDelivery) -> Result<Verified, VerifyError> {
        verify::verify(&self.secrets, delivery)
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
        let typed = GitlabEvent::from_json(&identity.event_type, &delivery.body)
            .map_err(|e| ParseError::Malformed(e.to_string()))?;
        let actor = typed.actor().map(|user| Actor {
            id: user.id.map(|id| id.to_string()),
            is_bot: user.is_bot(),
            name: user.username,
        });
        Ok(
            Event::new(KIND, typed.name(), identity.delivery_id, typed.clone())
                .with_subject(typed.subject().map(SubjectKey::new))
                .with_actor(actor)
                .with_occurred_at(typed.updated_at()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration() {
        Gitlab::new(vec![Secret::new("t")], GitlabOptions::default()).unwrap();
        assert!(matches!(
            Gitlab::new(vec![], GitlabOptions::default()),
            Err(ProviderConfigError::MissingSecret { kind: "gitlab" })
        ));
        assert!(matches!(
            Gitlab::new(
                vec![Secret::new("t"), Secret::new("")],
                GitlabOptions::default()
            ),
            Err(ProviderConfigError::EmptySecret { index: 2, .. })
        ));
        let unknown: toml::Table = toml::from_str("allow_unsigned = true\n").unwrap();
        assert!(unknown.try_into::<GitlabOptions>().is_err());
        let empty = toml::Table::new();
        empty.try_into::<GitlabOptions>().unwrap();
    }

    #[test]
    fn unverified_never_verifies() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-gitlab-token", "anything".parse().unwrap());
        let delivery = RawDelivery::new("gitlab", headers, &b"{}"[..]);
        assert!(Gitlab::unverified().verify(&delivery).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let gitlab = Gitlab::new(
            vec![Secret::new("TOPSECRETVALUE")],
            GitlabOptions::default(),
        )
        .unwrap();
        assert!(!format!("{gitlab:?}").contains("TOPSECRETVALUE"));
    }
}
