//! Feed -> Asana (`kind = "feed-asana"`): new entries of an Atom or RSS feed (a Stack
//! Overflow tag, a blog, a release feed) become Asana tasks, as AsanaBot's Stack Overflow job
//! did.
//!
//! A poller (`<name>:feed`) reads the feed on an interval and stores each new entry as a
//! delivery of the endpoint `<name>-feed`, with a durable cursor (described in `poller.rs`);
//! the rule (named `<name>`) creates one task per entry in the configured project and links it
//! (`feed:<entry id>` -> `asana:<gid>`), so neither an overlapping poll nor a retried job
//! makes a second task.

mod parse;
mod poller;
mod provider;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hookbridge_core::{EndpointName, Event, RuleError, RuleOutcome, SyncRule};
use hookbridge_providers::asana::client::{AsanaClient, NewTask};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use provider::{EVENT, FeedEntry, FeedProvider, KIND};

use self::poller::FeedPoller;
use super::github_asana::tasks::{self, Created, Recognise};
use super::github_asana::template::Template;
use super::{Connections, Handle, Integration, IntegrationError};
use crate::engine::RuleContext;

/// The placeholders of `task_name` and `task_notes`.
const FIELDS: &[&str] = &[
    "title",
    "url",
    "summary",
    "author",
    "id",
    "published",
    "categories",
    "feed",
];

/// The longest summary put into notes, in characters.
const MAX_SUMMARY: usize = 20_000;

/// The settings of a `feed-asana` integration (`[[integrations]]` with
/// `kind = "feed-asana"`).
///
/// ```
/// use hookbridge_sync_engine::integrations::feed_asana::Config;
/// let config: Config = toml::from_str(r#"
///     asana = "asana"
///     url = "https://stackoverflow.com/feeds/tag?tagnames=metpy&sort=newest"
///     project = "1204000000000001"
///     assignee = "ann@example.com"
/// "#).unwrap();
/// assert_eq!(config.interval_secs, 900);
/// assert_eq!(config.task_name, "{title}");
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Asana connection (`[connections.<name>]`, `kind = "asana"`).
    pub asana: String,
    /// The feed's URL (http or https; Atom 1.0, RSS 2.0 or RSS 1.0).
    pub url: String,
    /// The project gid new tasks go into.
    pub project: String,
    /// Who new tasks are assigned to: an Asana user gid or email. Unassigned by default.
    #[serde(default)]
    pub assignee: Option<String>,
    /// Seconds between polls (default 900, AsanaBot's 15 minutes). Feeds are cached by
    /// their servers for minutes: polling more often than that fetches the same document.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// On the first poll, only entries published after this time (RFC 3339) become tasks;
    /// without it, every entry the feed shows then does.
    #[serde(default)]
    pub since: Option<String>,
    /// Hours an entry may be older than the newest one seen and still count as new when
    /// it first appears (late publication); older ones that appear are taken as old.
    #[serde(default = "default_lookback")]
    pub lookback_hours: u64,
    /// The task name. Placeholders: `{title}`, `{url}`, `{summary}` (as plain text),
    /// `{author}`, `{id}`, `{published}`, `{categories}`, `{feed}`.
    #[serde(default = "default_task_name")]
    pub task_name: String,
    /// The task notes (plain text), with the same placeholders.
    #[serde(default = "default_task_notes")]
    pub task_notes: String,
    /// The `User-Agent` sent (Stack Overflow refuses requests without one).
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Seconds a fetch may take.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_interval() -> u64 {
    900
}
fn default_lookback() -> u64 {
    7 * 24
}
fn default_task_name() -> String {
    "{title}".into()
}
fn default_task_notes() -> String {
    "{url}\n\n{summary}".into()
}
fn default_user_agent() -> String {
    concat!("hookbridge/", env!("CARGO_PKG_VERSION"), " (feed-asana)").into()
}
fn default_timeout() -> u64 {
    30
}

/// A built `feed-asana` integration: the rule that turns entries into tasks.
pub struct FeedAsana {
    name: String,
    config: Config,
    endpoint: EndpointName,
    asana: AsanaClient,
    task_name: Template,
    task_notes: Template,
}

impl fmt::Debug for FeedAsana {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeedAsana")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("project", &self.config.project)
            .finish_non_exhaustive()
    }
}

/// Builds the integration `name`: its rule, its poller and the endpoint the poller feeds.
pub fn build(
    name: &str,
    config: Config,
    connections: &Connections,
) -> Result<Integration, IntegrationError> {
    let error = |message: String| IntegrationError::Config {
        integration: name.to_owned(),
        message,
    };
    let asana = connections.asana(name, &config.asana)?;
    let url = reqwest::Url::parse(&config.url).map_err(|e| error(format!("url: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(error(format!(
            "url: the scheme must be http or https, not `{}`",
            url.scheme()
        )));
    }
    if config.project.is_empty() || !config.project.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error(format!(
            "project: `{}` is not a project gid (digits)",
            config.project
        )));
    }
    if let Some(assignee) = &config.assignee
        && (assignee.trim().is_empty()
            || !(assignee.bytes().all(|b| b.is_ascii_digit()) || assignee.contains('@')))
    {
        return Err(error(format!(
            "assignee: `{assignee}` is neither an Asana user gid nor an email"
        )));
    }
    if config.interval_secs == 0 {
        return Err(error("interval_secs: must be at least 1".into()));
    }
    if config.timeout_secs == 0 {
        return Err(error("timeout_secs: must be at least 1".into()));
    }
    let since = config
        .since
        .as_deref()
        .map(|s| OffsetDateTime::parse(s, &Rfc3339))
        .transpose()
        .map_err(|e| error(format!("since: not an RFC 3339 time: {e}")))?;
    let task_name =
        Template::parse(&config.task_name, FIELDS).map_err(|e| error(format!("task_name: {e}")))?;
    let task_notes = Template::parse(&config.task_notes, FIELDS)
        .map_err(|e| error(format!("task_notes: {e}")))?;
    if config.task_name.trim().is_empty() {
        return Err(error("task_name: must not be empty".into()));
    }
    let http = reqwest::Client::builder()
        .user_agent(config.user_agent.clone())
        .timeout(Duration::from_secs(config.timeout_secs))
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(|e| error(format!("cannot build the HTTP client: {e}")))?;
    let endpoint = EndpointName::new(format!("{name}-feed"));
    let poller = Arc::new(FeedPoller {
        source: format!("{name}:feed"),
        integration: name.to_owned(),
        endpoint: endpoint.clone(),
        url: config.url.clone(),
        http,
        interval: Duration::from_secs(config.interval_secs),
        since,
        lookback: Duration::from_secs(config.lookback_hours.saturating_mul(3600)),
    });
    let rule = Arc::new(FeedAsana {
        name: name.to_owned(),
        config,
        endpoint: endpoint.clone(),
        asana,
        task_name,
        task_notes,
    });
    Ok(Integration {
        name: name.to_owned(),
        rules: vec![rule.clone()],
        sources: vec![poller],
        endpoints: vec![(endpoint, Arc::new(FeedProvider))],
        handle: Handle::FeedAsana(rule),
    })
}

impl FeedAsana {
    /// The integration's name (also its rule's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The endpoint its poller stores entries on (`<name>-feed`).
    pub fn endpoint(&self) -> &EndpointName {
        &self.endpoint
    }

    /// Its poller's name (`<name>:feed`), under which the cursor is stored.
    pub fn source_name(&self) -> String {
        format!("{}:feed", self.name)
    }

    fn field(&self, entry: &FeedEntry, name: &str) -> String {
        match name {
            "title" => entry.title.clone(),
            "url" => entry.url.clone().unwrap_or_default(),
            "summary" => {
                let text = tasks::html_to_text(entry.summary.as_deref().unwrap_or_default());
                match text.char_indices().nth(MAX_SUMMARY) {
                    Some((cut, _)) => format!("{}…", &text[..cut]),
                    None => text,
                }
            }
            "author" => entry.author.clone().unwrap_or_default(),
            "id" => entry.id.clone(),
            "published" => entry
                .published
                .or(entry.updated)
                .and_then(|t| t.format(&Rfc3339).ok())
                .unwrap_or_default(),
            "categories" => entry.categories.join(", "),
            "feed" => entry.feed.clone(),
            _ => String::new(),
        }
    }
}

#[async_trait]
impl SyncRule<RuleContext> for FeedAsana {
    fn name(&self) -> &str {
        &self.name
    }

    fn matches(&self, event: &Event) -> bool {
        event.provider() == KIND
            && event
                .payload::<FeedEntry>()
                .is_some_and(|entry| entry.feed == self.name)
    }

    async fn apply(&self, ctx: &RuleContext, event: &Event) -> Result<RuleOutcome, RuleError> {
        let Some(entry) = event.payload::<FeedEntry>() else {
            return Ok(RuleOutcome::Skipped {
                reason: "not a feed entry".into(),
            });
        };
        let key = format!("feed:{}", entry.id);
        if let Some(link) = ctx.link_from(&key).await? {
            return Ok(RuleOutcome::Skipped {
                reason: format!("entry already has task {}", link.b),
            });
        }
        let name = self.task_name.render(|f| self.field(entry, f));
        let notes = self.task_notes.render(|f| self.field(entry, f));
        let mut task = NewTask::in_project(self.config.project.clone(), name.clone()).notes(notes);
        if let Some(assignee) = &self.config.assignee {
            task = task.assignee(assignee.clone());
        }
        let recognise = match &entry.url {
            Some(url) if self.task_notes.uses("url") => Recognise::NotesContain(url.clone()),
            _ => Recognise::Named(name),
        };
        let created = tasks::create_once(
            ctx,
            &self.asana,
            &key,
            &self.config.project,
            task,
            &recognise,
        )
        .await?;
        let task = match created {
            Created::DryRun => {
                return Ok(RuleOutcome::Applied {
                    actions: Vec::new(),
                });
            }
            Created::New(task) | Created::Recovered(task) => task,
        };
        tasks::mark_task_writes(ctx, &task, &["name", "notes", "assignee"]).await?;
        let data = serde_json::json!({ "url": entry.url, "project": self.config.project });
        ctx.put_link(&key, &tasks::task_key(&task.gid), data)
            .await?;
        tasks::clear_pending(ctx, &key).await?;
        tracing::info!(rule = %self.name, task = %task.gid, "feed entry became a task");
        Ok(RuleOutcome::Applied {
            actions: Vec::new(),
        })
    }
}
