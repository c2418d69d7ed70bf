//! PagerDuty incidents <-> Jira issues (`kind = "pagerduty-jira"`), the Jira Cloud <->
//! PagerDuty sync it replaces, built in.
//!
//! - An incident of a configured priority (`create_priorities`, `["P1"]` by default) gets a
//!   Jira issue, once: the link `pagerduty:<incident id>` -> `jira:<KEY>` is stored as soon
//!   as the issue exists, and the issue carries the marker label `pagerduty-<incident id>`,
//!   so a job retried after a crash between the two finds the issue instead of creating a
//!   second one.
//! - With the issue: a link to the record issue of the incident's assignee (found by a JQL
//!   template), links to stakeholder issues, checklist issues from a questions file, and a
//!   severity custom field found by name; each step is recorded when done.
//! - An incident whose priority is raised to a creating one later gets its issue then,
//!   whether the change comes as a V3 `incident.priority_updated` webhook or only through
//!   the log-entries poller (V2 webhooks have no priority event).
//! - Status (acknowledged, resolved, triggered) and priority changes move the issue (status
//!   by the target status's name, priority through `priority_map`); a move to a resolving
//!   status or a resolution set in Jira resolves the incident, and a Jira priority change
//!   sets the incident's priority (`PUT /incidents/{id}`, with the connection's `From`).
//! - The poller ([`LogEntriesSource`], named `<integration>:log-entries`) reads
//!   `GET /log_entries` on an interval with a durable cursor and stores each new entry as a
//!   delivery on the PagerDuty endpoint (event `incident.log_entry.<type>`); a log entry of
//!   a mirrored incident gets a timeline issue when `timeline` is configured.
//! - V3 webhooks and legacy V2 `messages[]` webhooks both work (the provider types both).
//! - No loops: echo marks on every write, only changes follow, writes only when the target
//!   differs, and the engine's self-actor skip.
//!
//! ```
//! use hookbridge_sync_engine::integrations::IntegrationConfig;
//! let config: IntegrationConfig = toml::from_str(r#"
//!     kind = "pagerduty-jira"
//!     pagerduty = "pd"
//!     jira = "jira"
//!     project = "INC"
//!     [record]
//!     project = "PERSON"
//!     [timeline]
//!     project = "TIMELINE"
//! "#).unwrap();
//! assert_eq!(config.kind(), "pagerduty-jira");
//! ```

mod config;
mod issues;
mod mapping;
mod poller;
mod rule;

use std::sync::Arc;

use hookbridge_core::EndpointName;

pub use config::{
    ChecklistConfig, Config, LogEntriesConfig, Question, RecordConfig, SeverityConfig,
    SeverityFormat, StakeholdersConfig, StatusMap, TimelineConfig,
};
pub use mapping::{LOG_ENTRY_EVENT_PREFIX, POLLER_CLIENT, PolledLogEntry};
pub use poller::LogEntriesSource;
pub use rule::PagerdutyJiraRule;

use super::{Connections, Handle, Integration, IntegrationError};
use crate::engine::{Rule, Source};

/// A built `pagerduty-jira` integration: its rule and its poller, for the CLI and admin API.
pub struct PagerdutyJira {
    name: String,
    settings: Arc<config::Settings>,
    rule: Arc<PagerdutyJiraRule>,
    poller: Option<Arc<LogEntriesSource>>,
}

impl std::fmt::Debug for PagerdutyJira {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagerdutyJira")
            .field("name", &self.name)
            .field("project", &self.settings.config.project)
            .field("poller", &self.poller.as_ref().map(|p| p.name().to_owned()))
            .finish_non_exhaustive()
    }
}

impl PagerdutyJira {
    /// The integration's name (its rule's name too).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The settings it was built with.
    pub fn config(&self) -> &Config {
        &self.settings.config
    }

    /// The checklist questions (from the questions file, then inline).
    pub fn questions(&self) -> &[Question] {
        &self.settings.questions
    }

    /// Its rule.
    pub fn rule(&self) -> Arc<PagerdutyJiraRule> {
        self.rule.clone()
    }

    /// Its log-entries poller, unless `log_entries.enabled` is false.
    pub fn poller(&self) -> Option<Arc<LogEntriesSource>> {
        self.poller.clone()
    }
}

/// Builds the integration: validates the settings (reading the questions file), and takes
/// the PagerDuty and Jira clients from `connections`. Calls no service.
pub fn build(
    name: &str,
    config: Config,
    connections: &Connections,
) -> Result<Integration, IntegrationError> {
    let settings = config::validate(config).map_err(|message| IntegrationError::Config {
        integration: name.to_owned(),
        message,
    })?;
    let pagerduty = connections.pagerduty(name, &settings.config.pagerduty)?;
    let jira = connections.jira(name, &settings.config.jira)?;
    let settings = Arc::new(settings);
    let rule = Arc::new(PagerdutyJiraRule::new(
        name,
        settings.clone(),
        pagerduty.clone(),
        jira,
    ));
    let poller = settings.config.log_entries.enabled.then(|| {
        Arc::new(LogEntriesSource::new(
            name,
            EndpointName::new(settings.config.pagerduty_endpoint.clone()),
            pagerduty,
            settings.config.log_entries.clone(),
        ))
    });
    let sources: Vec<Arc<dyn Source>> = poller
        .iter()
        .map(|p| p.clone() as Arc<dyn Source>)
        .collect();
    let handle = Arc::new(PagerdutyJira {
        name: name.to_owned(),
        settings,
        rule: rule.clone(),
        poller,
    });
    Ok(Integration {
        name: name.to_owned(),
        rules: vec![rule as Arc<dyn Rule>],
        sources,
        endpoints: Vec::new(),
        handle: Handle::PagerdutyJira(handle),
    })
}
