//! Travis CI build notifications: RSA-SHA1 `Signature` verification against Travis CI's
//! published public key, `<build id>:<state>` identification, form-encoded bodies, and typed
//! build events.
//!
//! Travis CI signs the `payload` form field with its private key; the public key comes from
//! the endpoint's `public_key` option or, when that is absent, from
//! `GET {api_url}/config` ([`fetch_public_key`], installed with
//! [`Travis::set_public_key`] or [`Travis::refresh_public_key`]). Until a key is installed
//! every delivery is refused: nothing is ever accepted unsigned, and no option turns
//! verification off.
//!
//! ```
//! use hookbridge_core::Provider;
//! use hookbridge_providers::travis::{self, Travis, TravisOptions};
//!
//! // The test key pair shipped with the samples; Travis CI's own key signs real deliveries.
//! let public_pem = include_str!(concat!(env!("CARGO_MANIFEST_DIR"),
//!     "/samples/travis/TEST-ONLY-travis-public-key.spki.pem"));
//! let private_pem = include_str!(concat!(env!("CARGO_MANIFEST_DIR"),
//!     "/samples/travis/TEST-ONLY-travis-signing-key.pem"));
//!
//! let options = TravisOptions { public_key: Some(public_pem.to_owned()), ..Default::default() };
//! let travis = Travis::new(vec![], options).unwrap()
//!     .with_test_signing_key(travis::parse_signing_key_pem(private_pem).unwrap());
//!
//! let json = br#"{"id":42,"number":"7","type":"push","state":"failed","status":1,
//!   "status_message":"Broken","commit":"0d1c8f3","branch":"main","committer_name":"Ada",
//!   "repository":{"id":9,"name":"minimal","owner_name":"octo","url":null}}"#;
//! let signed = travis.sign("build", json, "unused", time::OffsetDateTime::now_utc()).unwrap();
//! let delivery = hookbridge_core::RawDelivery::new("travis", signed.headers, signed.body);
//!
//! travis.verify(&delivery).unwrap();
//! assert_eq!(travis.identify(&delivery).unwrap().delivery_id.as_str(), "42:failed");
//! let event = travis.parse(&delivery).unwrap();
//! assert_eq!(event.name().as_str(), "build.broken");
//! assert_eq!(event.subject().unwrap().as_str(), "travis:octo/minimal/build/42");
//! ```

pub mod auth;
pub mod client;
pub mod events;
mod identify;
mod sign;
mod verify;

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use hookbridge_core::{
    Actor, Event, IdentifyError, Identity, ParseError, Provider, ProviderKind, RawDelivery, Secret,
    SignError, SignedDelivery, SubjectKey, Verified, VerifyError,
};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Deserializer};

use crate::samples::samples;
use crate::{ProviderConfigError, Sample};
pub use client::{
    DEFAULT_API_URL, TravisKeyError, fetch_public_key, parse_public_key_pem, parse_signing_key_pem,
};
pub use events::TravisEvent;

/// The provider kind of Travis CI, `travis`.
pub const KIND: ProviderKind = ProviderKind::new("travis");

/// Sample notifications, one per `status_message`, across the four build types.
pub const SAMPLES: &[Sample] = samples!("travis":
    "build.broken" => "build",
    "build.canceled" => "build",
    "build.errored" => "build",
    "build.failed" => "build",
    "build.fixed" => "build",
    "build.passed" => "build",
    "build.pending" => "build",
    "build.still_failing" => "build",
);

/// Travis CI-specific endpoint options.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TravisOptions {
    /// Travis CI's webhook public key, PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`). When absent,
    /// the server fetches it from `{api_url}/config` at start; deliveries are refused until
    /// it has.
    #[serde(default)]
    pub public_key: Option<String>,
    /// The Travis CI API the key is fetched from: `https://api.travis-ci.com` (default),
    /// `https://api.travis-ci.org`, or a Travis CI Enterprise API. Each has its own key.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// The Travis CI user token for the legacy `Authorization` scheme
    /// (SHA-256 of repository slug + token). Used only with `allow_legacy_authorization`.
    #[serde(default, deserialize_with = "optional_secret")]
    pub legacy_token: Option<Secret>,
    /// Accept deliveries that carry only the legacy `Authorization` header, checked with
    /// `legacy_token`. Off by default: that scheme does not cover the body, so anyone who saw
    /// one delivery of a repository can forge others for it. A `Signature`, when present,
    /// always decides.
    #[serde(default)]
    pub allow_legacy_authorization: bool,
}

fn default_api_url() -> String {
    DEFAULT_API_URL.to_owned()
}

fn optional_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Secret::new))
}

impl Default for TravisOptions {
    fn default() -> Self {
        Self {
            public_key: None,
            api_url: default_api_url(),
            legacy_token: None,
            allow_legacy_authorization: false,
        }
    }
}

impl fmt::Debug for TravisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TravisOptions")
            .field("public_key", &self.public_key.as_ref().map(|_| "(PEM)"))
            .field("api_url", &self.api_url)
            .field("legacy_token", &self.legacy_token)
            .field(
                "allow_legacy_authorization",
                &self.allow_legacy_authorization,
            )
            .finish()
    }
}

/// The Travis CI provider for one endpoint: Travis CI's public key (once known) and options.
pub struct Travis {
    options: TravisOptions,
    /// Installed from the options, or later by the server once fetched; replaced on refresh.
    public_key: RwLock<Option<Arc<RsaPublicKey>>>,
    signing_key: Option<RsaPrivateKey>,
    /// For fetching the public key from the Travis API.
    http: reqwest::Client,
}

impl fmt::Debug for Travis {
    // By hand: the signing key's own Debug would print its private components.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Travis")
            .field("options", &self.options)
            .field("public_key_loaded", &self.public_key_loaded())
            .field("signs", &self.signing_key.is_some())
            .finish()
    }
}

impl Travis {
    /// A Travis CI provider. Travis signs with its own key, so `secrets` must be empty; the
    /// legacy user token goes in `options.legacy_token`.
    pub fn new(secrets: Vec<Secret>, options: TravisOptions) -> Result<Self, ProviderConfigError> {
        let invalid = |message: &str| ProviderConfigError::Options {
            kind: KIND.as_str(),
            message: message.to_owned(),
        };
        if !secrets.is_empty() {
            return Err(invalid(
                "Travis CI signs with its own RSA key and takes no `secret`; set `public_key` \
                 (or let it be fetched from `api_url`), and the legacy user token in `legacy_token`",
            ));
        }
        if options.allow_legacy_authorization
            && options.legacy_token.as_ref().is_none_or(Secret::is_empty)
        {
            return Err(invalid(
                "allow_legacy_authorization needs the Travis CI user token in `legacy_token`",
            ));
        }
        if options.legacy_token.is_some() && !options.allow_legacy_authorization {
            return Err(invalid(
                "legacy_token is used only with allow_legacy_authorization = true",
            ));
        }
        let api = options.api_url.trim_end_matches('/');
        if !(api.starts_with("https://") || api.starts_with("http://")) || api.contains(['?', '#'])
        {
            return Err(invalid(
                "api_url must be an http(s) URL, e.g. https://api.travis-ci.com",
            ));
        }
        let public_key = match &options.public_key {
            Some(pem) => Some(Arc::new(
                parse_public_key_pem(pem).map_err(|e| invalid(&format!("public_key: {e}")))?,
            )),
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| invalid(&format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            options,
            public_key: RwLock::new(public_key),
            signing_key: None,
            http,
        })
    }

    /// A Travis CI provider without a key, for parsing only: its `verify` always fails.
    /// See [`crate::parser`].
    pub(crate) fn unverified() -> Self {
        Self {
            options: TravisOptions::default(),
            public_key: RwLock::new(None),
            signing_key: None,
            http: reqwest::Client::new(),
        }
    }

    /// Signs deliveries made with [`Provider::sign`] with `key`, for `hookbridge send` (with
    /// a key file the user passes) and tests. The receiving endpoint must be configured with
    /// the public half; Travis CI's own deliveries are unaffected.
    #[doc(hidden)]
    pub fn with_test_signing_key(mut self, key: RsaPrivateKey) -> Self {
        self.signing_key = Some(key);
        self
    }

    /// Installs (or replaces, on refresh) Travis CI's public key. Safe to call while
    /// deliveries are being verified.
    pub fn set_public_key(&self, key: RsaPublicKey) {
        *self
            .public_key
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(key));
    }

    /// Fetches the public key from [`api_url`](Self::api_url) and installs it.
    pub async fn refresh_public_key(&self, client: &reqwest::Client) -> Result<(), TravisKeyError> {
        let key = fetch_public_key(client, &self.options.api_url).await?;
        self.set_public_key(key);
        Ok(())
    }

    /// Whether a public key is installed (deliveries can be verified).
    pub fn public_key_loaded(&self) -> bool {
        self.current_key().is_some()
    }

    /// Whether the key is to be fetched from the API (no `public_key` option).
    pub fn fetches_public_key(&self) -> bool {
        self.options.public_key.is_none()
    }

    /// The Travis CI API the key is fetched from.
    pub fn api_url(&self) -> &str {
        &self.options.api_url
    }

    fn current_key(&self) -> Option<Arc<RsaPublicKey>> {
        self.public_key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn legacy_token(&self) -> Option<&Secret> {
        self.options
            .legacy_token
            .as_ref()
            .filter(|_| self.options.allow_legacy_authorization)
    }
}

impl Provider for Travis {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn samples(&self) -> &'static [Sample] {
        SAMPLES
    }

    fn is_ready(&self) -> bool {
        self.public_key_loaded()
    }

    fn refresh(&self) -> Option<hookbridge_core::BoxFuture<'_, Result<(), String>>> {
        if !self.fetches_public_key() {
            return None;
        }
        Some(Box::pin(async move {
            self.refresh_public_key(&self.http)
                .await
                .map_err(|e| e.to_string())
        }))
    }

    fn verify(&self, delivery: &RawDelivery) -> Result<Verified, VerifyError> {
        let key = self.current_key();
        verify::verify(key.as_deref(), self.legacy_token(), delivery)
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
        let key = self.signing_key.as_ref().ok_or_else(|| {
            SignError::Unsupported("Travis signs with Travis CI's private key".into())
        })?;
        sign::sign(key, self.legacy_token(), json)
    }

    fn parse(&self, delivery: &RawDelivery) -> Result<Event, ParseError> {
        let identity = identify::identify(delivery)?;
        let json = identify::json_body(delivery)?;
        let typed =
            TravisEvent::from_json(&json).map_err(|e| ParseError::Malformed(e.to_string()))?;
        let actor = typed.actor_name().map(|name| Actor {
            id: None,
            name: name.to_owned(),
            is_bot: false,
        });
        Ok(
            Event::new(KIND, typed.name(), identity.delivery_id, typed.clone())
                .with_subject(typed.subject().map(SubjectKey::new))
                .with_actor(actor)
                .with_occurred_at(typed.updated_at()),
        )
    }
}
