//! The built-in integrations: the bots hookbridge replaces, as rules, pollers and operations
//! that a configuration turns on.
//!
//! An integration is declared by kind, with its mappings, and names the
//! [`Connections`] (API clients) it acts through:
//!
//! ```
//! use hookbridge_sync_engine::integrations::IntegrationConfig;
//! let config: IntegrationConfig = serde_json::from_value(serde_json::json!({
//!     "kind": "travis-chat",
//!     "endpoint": "travis",
//!     "targets": ["ops-slack"],
//! })).unwrap();
//! assert_eq!(config.kind(), "travis-chat");
//! ```
//!
//! [`build`] turns a config into an [`Integration`]: the rules, pollers and extra endpoints
//! the engine runs, and a [`Handle`] for the operations the CLI and admin API offer (a
//! rescan, the Travis routes).

mod endpoint;
pub mod feed_asana;
pub mod github_asana;
pub mod github_jira;
pub mod pagerduty_jira;
mod pattern;
mod template;
pub mod travis_chat;
pub mod trello_hooks;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use hookbridge_core::{EndpointName, Provider};
use hookbridge_providers::asana::client::AsanaClient;
use hookbridge_providers::github::client::GithubClient;
use hookbridge_providers::jira::client::JiraClient;
use hookbridge_providers::pagerduty::client::PagerdutyClient;
use hookbridge_providers::sinks::Notifier;
use hookbridge_providers::travis::client::TravisClient;
use hookbridge_providers::trello::client::TrelloClient;
use serde::Deserialize;

use crate::engine::{Rule, Source};

/// Why an integration could not be built or an operation on it failed.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    /// The integration names a connection that is not configured, or one of another kind.
    #[error("integration `{integration}`: no {kind} connection named `{connection}`")]
    UnknownConnection {
        /// The integration.
        integration: String,
        /// The kind of client wanted (`jira`, `github`, ...).
        kind: &'static str,
        /// The name it gave.
        connection: String,
    },
    /// A setting is invalid.
    #[error("integration `{integration}`: {message}")]
    Config {
        /// The integration.
        integration: String,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A call to a service failed.
    #[error("integration `{integration}`: {source}")]
    Api {
        /// The integration.
        integration: String,
        /// The failure.
        #[source]
        source: hookbridge_providers::api::ApiError,
    },
    /// The store failed.
    #[error("integration `{integration}`: {source}")]
    Store {
        /// The integration.
        integration: String,
        /// The failure.
        #[source]
        source: crate::store::StoreError,
    },
}

/// The API clients integrations act through, by connection name (`[connections.<name>]`
/// in the server's configuration). Cheap to clone.
#[derive(Clone, Default)]
pub struct Connections {
    github: BTreeMap<String, GithubClient>,
    jira: BTreeMap<String, JiraClient>,
    pagerduty: BTreeMap<String, PagerdutyClient>,
    asana: BTreeMap<String, AsanaClient>,
    trello: BTreeMap<String, TrelloClient>,
    travis: BTreeMap<String, TravisClient>,
    notifiers: BTreeMap<String, Arc<dyn Notifier>>,
}

impl fmt::Debug for Connections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connections")
            .field("github", &self.github.keys())
            .field("jira", &self.jira.keys())
            .field("pagerduty", &self.pagerduty.keys())
            .field("asana", &self.asana.keys())
            .field("trello", &self.trello.keys())
            .field("travis", &self.travis.keys())
            .field("notifiers", &self.notifiers.keys())
            .finish()
    }
}

macro_rules! connection_kind {
    ($field:ident, $with:ident, $get:ident, $ty:ty, $kind:literal) => {
        /// Adds a client under `name`.
        pub fn $with(mut self, name: impl Into<String>, client: $ty) -> Self {
            self.$field.insert(name.into(), client);
            self
        }

        /// The client named `name`, for `integration`.
        pub fn $get(&self, integration: &str, name: &str) -> Result<$ty, IntegrationError> {
            self.$field
                .get(name)
                .cloned()
                .ok_or_else(|| IntegrationError::UnknownConnection {
                    integration: integration.to_owned(),
                    kind: $kind,
                    connection: name.to_owned(),
                })
        }
    };
}

impl Connections {
    connection_kind!(github, with_github, github, GithubClient, "github");
    connection_kind!(jira, with_jira, jira, JiraClient, "jira");
    connection_kind!(
        pagerduty,
        with_pagerduty,
        pagerduty,
        PagerdutyClient,
        "pagerduty"
    );
    connection_kind!(asana, with_asana, asana, AsanaClient, "asana");
    connection_kind!(trello, with_trello, trello, TrelloClient, "trello");
    connection_kind!(travis, with_travis, travis, TravisClient, "travis");
    connection_kind!(
        notifiers,
        with_notifier,
        notifier,
        Arc<dyn Notifier>,
        "chat (slack, matrix or webhook)"
    );

    /// The names of the chat targets (Slack, Matrix, signed webhook connections).
    pub fn notifier_names(&self) -> impl Iterator<Item = &str> {
        self.notifiers.keys().map(String::as_str)
    }
}

/// An integration as declared in configuration (`[[integrations]]`, minus its `name`),
/// tagged by `kind`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum IntegrationConfig {
    /// GitHub pull requests and issues -> Jira issues ([`github_jira`]).
    GithubJira(github_jira::Config),
    /// PagerDuty incidents <-> Jira issues ([`pagerduty_jira`]).
    PagerdutyJira(pagerduty_jira::Config),
    /// GitHub issues and pull requests -> Asana tasks ([`github_asana`]).
    GithubAsana(github_asana::Config),
    /// Entries of an Atom/RSS feed -> Asana tasks ([`feed_asana`]).
    FeedAsana(feed_asana::Config),
    /// Trello actions -> rules written in Rust, with the hooks' history ([`trello_hooks`]).
    TrelloHooks(trello_hooks::Config),
    /// Travis CI build notifications -> chat ([`travis_chat`]).
    TravisChat(travis_chat::Config),
}

impl IntegrationConfig {
    /// The kind, as written in configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            IntegrationConfig::GithubJira(_) => "github-jira",
            IntegrationConfig::PagerdutyJira(_) => "pagerduty-jira",
            IntegrationConfig::GithubAsana(_) => "github-asana",
            IntegrationConfig::FeedAsana(_) => "feed-asana",
            IntegrationConfig::TrelloHooks(_) => "trello-hooks",
            IntegrationConfig::TravisChat(_) => "travis-chat",
        }
    }
}

/// What the CLI and admin API can do with a built integration, beyond its rules.
#[derive(Clone)]
pub enum Handle {
    /// See [`github_jira::GithubJira`] (rescan).
    GithubJira(Arc<github_jira::GithubJira>),
    /// See [`pagerduty_jira::PagerdutyJira`].
    PagerdutyJira(Arc<pagerduty_jira::PagerdutyJira>),
    /// See [`github_asana::GithubAsana`].
    GithubAsana(Arc<github_asana::GithubAsana>),
    /// See [`feed_asana::FeedAsana`].
    FeedAsana(Arc<feed_asana::FeedAsana>),
    /// See [`trello_hooks::TrelloHooks`].
    TrelloHooks(Arc<trello_hooks::TrelloHooks>),
    /// See [`travis_chat::TravisChat`] (routes).
    TravisChat(Arc<travis_chat::TravisChat>),
}

/// A built integration: what the engine runs for it.
pub struct Integration {
    /// Its name (unique in a configuration; its rules' and pollers' names start with it).
    pub name: String,
    /// Rules to register with the engine.
    pub rules: Vec<Arc<dyn Rule>>,
    /// Pollers to register with the engine.
    pub sources: Vec<Arc<dyn Source>>,
    /// Endpoints only its pollers feed (no HTTP route), with the provider that parses what
    /// they store.
    pub endpoints: Vec<(EndpointName, Arc<dyn Provider>)>,
    /// Its operations.
    pub handle: Handle,
}

impl fmt::Debug for Integration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Integration")
            .field("name", &self.name)
            .field(
                "rules",
                &self.rules.iter().map(|r| r.name()).collect::<Vec<_>>(),
            )
            .field(
                "sources",
                &self.sources.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Builds the integration `name` from its config, with clients from `connections`.
pub fn build(
    name: &str,
    config: IntegrationConfig,
    connections: &Connections,
) -> Result<Integration, IntegrationError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(IntegrationError::Config {
            integration: name.to_owned(),
            message: "the name must be letters, digits, `-`, `_` or `.`".into(),
        });
    }
    match config {
        IntegrationConfig::GithubJira(c) => github_jira::build(name, c, connections),
        IntegrationConfig::PagerdutyJira(c) => pagerduty_jira::build(name, c, connections),
        IntegrationConfig::GithubAsana(c) => github_asana::build(name, c, connections),
        IntegrationConfig::FeedAsana(c) => feed_asana::build(name, c, connections),
        IntegrationConfig::TrelloHooks(c) => trello_hooks::build(name, c, connections),
        IntegrationConfig::TravisChat(c) => travis_chat::build(name, c, connections),
    }
}
