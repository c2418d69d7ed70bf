//! GitHub -> Jira (`kind = "github-jira"`), what the openedx-webhooks bot did: a pull request
//! (or issue) opened in a mapped repository gets a Jira issue, with a comment on GitHub
//! naming it; the GitHub state moves the issue through its workflow (draft, ready, closed,
//! merged, reopened back to the status it had); the Jira status shows on GitHub as a label
//! the bot owns; `rescan` replays all of it over a repository.
//!
//! One rule, named after the integration, handles both directions, so the links
//! (`github:owner/name#12` -> `jira:KEY`) and echo marks are shared:
//!
//! - GitHub `pull_request` / `issues`: `opened`, `reopened`, `closed`, `ready_for_review`,
//!   `converted_to_draft` reconcile the object; `labeled` with a gate label (`jira:<name>`,
//!   when `label_gate` is set) creates its issue; `edited` titles follow into the summary;
//!   a change of one of the bot's status labels is the echo of its own write (or a manual
//!   edit) and is not synced back.
//! - Jira `jira:issue_updated` with a status change (on the `jira_endpoint`): the label
//!   follows, unless the change is the echo of the bot's own transition.
//!
//! Creating is idempotent: the issue carries a marker (a label `github:owner/name#12`, or
//! the URL in `url_field`) and is searched for before one is created, so a job that died
//! between creating and linking finds its issue when retried.
//!
//! ```
//! use hookbridge_providers::api::{ApiClient, Auth};
//! use hookbridge_providers::github::client::{GithubClient, api_builder};
//! use hookbridge_providers::jira::client::JiraClient;
//! use hookbridge_sync_engine::integrations::github_jira::{Config, GithubJira};
//!
//! let config: Config = toml::from_str(r#"
//!     github = "gh"
//!     jira = "jira"
//!     endpoint = "github"
//!     mappings = [{ repo = "octo-org/*", project = "OPS", issue_type = "Task" }]
//! "#).unwrap();
//! let github = GithubClient::new(api_builder("https://api.github.com").unwrap().build().unwrap());
//! let jira = JiraClient::new(ApiClient::builder("jira", "https://jira.example.com").unwrap().build().unwrap());
//! let integration = GithubJira::new("gh-jira", config, github, jira).unwrap();
//! assert_eq!(hookbridge_core::SyncRule::name(&integration), "gh-jira");
//! ```

mod config;
mod reconcile;
mod rescan;
mod rule;
mod template;
mod tracked;

use std::sync::Arc;

use hookbridge_providers::github::client::GithubClient;
use hookbridge_providers::jira::client::JiraClient;

pub use config::{Config, LabelGate, Mapping, ObjectKind, StatusLabels, Statuses, Templates};
pub use rescan::{RescanOptions, RescanReport, RescanSource};

use super::{Connections, Handle, Integration, IntegrationError};
use config::Settings;

/// A built GitHub -> Jira integration: its rule (it is one) and its rescan.
#[derive(Debug)]
pub struct GithubJira {
    name: String,
    settings: Settings,
    github: GithubClient,
    jira: JiraClient,
}

impl GithubJira {
    /// The integration `name` from its `config`, acting through these clients. Checks the
    /// configuration, naming the offending key.
    pub fn new(
        name: &str,
        config: Config,
        github: GithubClient,
        jira: JiraClient,
    ) -> Result<Self, IntegrationError> {
        let settings = Settings::compile(name, config)?;
        let github = match &settings.bot_login {
            // Also spares `upsert_own_comment` its lookup of the login.
            Some(login) => github.with_bot_login(login.clone()),
            None => github,
        };
        Ok(Self {
            name: name.to_owned(),
            settings,
            github,
            jira,
        })
    }

    /// The integration's (and its rule's) name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The GitHub endpoint it acts on.
    pub fn endpoint(&self) -> &str {
        &self.settings.endpoint
    }
}

/// Builds the integration `name`, with clients from `connections`.
pub fn build(
    name: &str,
    config: Config,
    connections: &Connections,
) -> Result<Integration, IntegrationError> {
    let github = connections.github(name, &config.github)?;
    let jira = connections.jira(name, &config.jira)?;
    let integration = Arc::new(GithubJira::new(name, config, github, jira)?);
    let mut sources: Vec<Arc<dyn crate::engine::Source>> = Vec::new();
    if integration.settings.rescan_interval_secs > 0 {
        sources.push(Arc::new(RescanSource::new(integration.clone())));
    }
    Ok(Integration {
        name: name.to_owned(),
        rules: vec![integration.clone()],
        sources,
        endpoints: Vec::new(),
        handle: Handle::GithubJira(integration),
    })
}
