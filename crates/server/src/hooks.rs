//! `hookbridge hooks list|sync`: the webhooks declared in `[[hooks]]`, compared with those
//! registered at the services, and (with `sync`) made to match: missing ones created,
//! inactive ones re-enabled, and with `--prune` hooks that point at this server but are no
//! longer declared deleted. Running `sync` twice changes nothing the second time.

use std::collections::BTreeMap;

use futures_util::TryStreamExt as _;
use hookbridge_core::Secret;
use hookbridge_providers::api::ApiError;
use hookbridge_providers::asana::client::{AsanaClient, WebhookFilter};
use hookbridge_providers::github::client::{
    GithubClient, HookConfigInput, HookUpdate, NewHook, Repo,
};
use hookbridge_providers::jira::client::{
    DcWebhookSpec, Deployment, JiraClient, JiraTimestamp, WebhookSpec,
};
use hookbridge_providers::trello::client::{DesiredWebhook, TrelloClient};
use hookbridge_sync_engine::integrations::Connections;
use serde::Deserialize;

pub use crate::connections::ConnectionSection;

/// `[[hooks]]`: a webhook that should exist at a service, delivering to an endpoint.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookSection {
    /// The endpoint that receives it (`/hooks/<endpoint>`).
    pub endpoint: String,
    /// The connection used to register it.
    pub connection: String,
    /// GitHub: the repository, `owner/name`.
    pub repository: Option<String>,
    /// GitHub: the events (default `["*"]`).
    #[serde(default)]
    pub events: Vec<String>,
    /// Trello: the model (board, list, card) to watch.
    pub model: Option<String>,
    /// Trello: the webhook's description; Jira Data Center: the webhook's name.
    pub description: Option<String>,
    /// Jira: the JQL filter of the issues whose events are sent (required on Cloud).
    pub jql: Option<String>,
    /// Asana: the workspace gid (webhooks are listed per workspace).
    pub workspace: Option<String>,
    /// Asana: the gid of the project, task or other resource to watch.
    pub resource: Option<String>,
    /// Asana: which events are delivered (none: Asana's default, everything).
    #[serde(default)]
    pub filters: Vec<WebhookFilter>,
}

/// What a sync did, or would do with `--dry-run`, for one hook or remote webhook.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Declared and registered as declared.
    Unchanged(String),
    /// Declared, missing: created.
    Created(String),
    /// Registered but inactive or delivering elsewhere: updated.
    Updated(String),
    /// Registered, pointing at this server, no longer declared: deleted (with `--prune`).
    Deleted(String),
    /// Registered, pointing at this server, not declared, kept (without `--prune`).
    Unknown(String),
    /// Registered and failing (Trello reports consecutive failures).
    Failing(String),
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Unchanged(h) => write!(f, "ok        {h}"),
            Change::Created(h) => write!(f, "created   {h}"),
            Change::Updated(h) => write!(f, "updated   {h}"),
            Change::Deleted(h) => write!(f, "deleted   {h}"),
            Change::Unknown(h) => write!(f, "unknown   {h} (not declared; --prune deletes it)"),
            Change::Failing(h) => write!(f, "failing   {h}"),
        }
    }
}

/// How to run a sync.
#[derive(Clone, Copy, Debug, Default)]
pub struct SyncMode {
    /// Change nothing: only report.
    pub dry_run: bool,
    /// Delete hooks pointing at this server that are not declared.
    pub prune: bool,
}

/// The declared hooks with what they need: connections, the public URL, endpoint secrets.
pub struct HookPlan<'a> {
    /// Where `/hooks/<endpoint>` is reachable from the services.
    pub public_url: &'a str,
    /// Connections by name, as configured.
    pub connections: &'a BTreeMap<String, ConnectionSection>,
    /// The API clients built from them (see [`crate::connections::build`]).
    pub clients: &'a Connections,
    /// The declared hooks.
    pub hooks: &'a [HookSection],
    /// The secret a service should sign with, by endpoint (GitHub).
    pub secrets: &'a BTreeMap<String, Secret>,
}

impl HookPlan<'_> {
    fn url(&self, endpoint: &str) -> String {
        format!("{}/hooks/{endpoint}", self.public_url.trim_end_matches('/'))
    }

    /// Compares (and with `mode.dry_run == false`, reconciles) every connection's hooks.
    pub async fn run(&self, mode: SyncMode) -> Result<Vec<Change>, String> {
        let mut changes = Vec::new();
        for (name, connection) in self.connections {
            let hooks: Vec<&HookSection> = self
                .hooks
                .iter()
                .filter(|h| &h.connection == name)
                .collect();
            if connection.is_oauth() {
                // OAuth logins hold user tokens for API clients, not hook administration.
                if hooks.is_empty() {
                    continue;
                }
                return Err(format!(
                    "connection {name}: an OAuth login connection cannot register [[hooks]]"
                ));
            }
            let client_error = |e| format!("connection {name}: {e}");
            let result = match connection {
                ConnectionSection::Github { .. } => {
                    let client = self.clients.github("hooks", name).map_err(client_error)?;
                    self.github(&client, &hooks, mode).await
                }
                ConnectionSection::Trello { .. } => {
                    let client = self.clients.trello("hooks", name).map_err(client_error)?;
                    self.trello(&client, &hooks, mode).await
                }
                ConnectionSection::Jira { .. } => {
                    let client = self.clients.jira("hooks", name).map_err(client_error)?;
                    self.jira(&client, &hooks, mode).await
                }
                ConnectionSection::Asana { .. } => {
                    let client = self.clients.asana("hooks", name).map_err(client_error)?;
                    self.asana(&client, &hooks, mode).await
                }
                _ if hooks.is_empty() => continue,
                other => {
                    return Err(format!(
                        "connection {name}: [[hooks]] cannot be registered with a {} connection",
                        other.kind()
                    ));
                }
            };
            changes.extend(result.map_err(|e| format!("connection {name}: {e}"))?);
        }
        Ok(changes)
    }

    async fn github(
        &self,
        client: &GithubClient,
        hooks: &[&HookSection],
        mode: SyncMode,
    ) -> Result<Vec<Change>, ApiError> {
        let mut changes = Vec::new();
        let mut repos: BTreeMap<String, Vec<&HookSection>> = BTreeMap::new();
        for hook in hooks {
            repos
                .entry(hook.repository.clone().unwrap_or_default())
                .or_default()
                .push(hook);
        }
        for (repo_name, declared) in repos {
            let (owner, name) = repo_name.split_once('/').unwrap_or((&repo_name, ""));
            let repo = Repo::new(owner, name).map_err(|e| ApiError::Config {
                service: "github",
                message: e.to_string(),
            })?;
            let remote: Vec<_> = client.list_hooks(&repo).try_collect().await?;
            let ours = |url: &str| url.starts_with(self.public_url.trim_end_matches('/'));
            for hook in &declared {
                let url = self.url(&hook.endpoint);
                let events = if hook.events.is_empty() {
                    vec!["*".to_owned()]
                } else {
                    hook.events.clone()
                };
                let label = format!("github {repo_name} -> {url}");
                let existing = remote.iter().find(|h| {
                    h.config.as_ref().and_then(|c| c.url.as_deref()) == Some(url.as_str())
                });
                match existing {
                    Some(h) => {
                        let mut have = h.events.clone();
                        let mut want = events.clone();
                        have.sort();
                        want.sort();
                        if h.active == Some(false) || have != want {
                            if !mode.dry_run {
                                let update = HookUpdate {
                                    events: Some(events.clone()),
                                    active: Some(true),
                                    ..HookUpdate::default()
                                };
                                client.update_hook(&repo, h.id, &update).await?;
                            }
                            changes.push(Change::Updated(label));
                        } else {
                            changes.push(Change::Unchanged(label));
                        }
                    }
                    None => {
                        if !mode.dry_run {
                            let secret =
                                self.secrets.get(&hook.endpoint).cloned().ok_or_else(|| {
                                    ApiError::Config {
                                        service: "github",
                                        message: format!(
                                            "endpoint {} has no secret to give GitHub",
                                            hook.endpoint
                                        ),
                                    }
                                })?;
                            let new = NewHook {
                                config: HookConfigInput::new(url.clone(), secret),
                                events: events.clone(),
                                active: true,
                            };
                            client.create_hook(&repo, &new).await?;
                        }
                        changes.push(Change::Created(label));
                    }
                }
            }
            for h in &remote {
                let Some(url) = h.config.as_ref().and_then(|c| c.url.clone()) else {
                    continue;
                };
                let declared_here = declared.iter().any(|d| self.url(&d.endpoint) == url);
                if !ours(&url) || declared_here {
                    continue;
                }
                let label = format!("github {repo_name} -> {url}");
                if mode.prune {
                    if !mode.dry_run {
                        client.delete_hook(&repo, h.id).await?;
                    }
                    changes.push(Change::Deleted(label));
                } else {
                    changes.push(Change::Unknown(label));
                }
            }
        }
        Ok(changes)
    }

    /// Jira Cloud's dynamic webhooks (an OAuth 2.0 or Connect app's own) are matched by
    /// URL, JQL and events, and refreshed when they expire within a week (Jira drops them 30
    /// days after registration or refresh); Data Center's admin webhooks are matched by URL.
    async fn jira(
        &self,
        client: &JiraClient,
        hooks: &[&HookSection],
        mode: SyncMode,
    ) -> Result<Vec<Change>, ApiError> {
        let default_events = || {
            [
                "jira:issue_created",
                "jira:issue_updated",
                "jira:issue_deleted",
                "comment_created",
            ]
            .map(str::to_owned)
            .to_vec()
        };
        let events_of = |h: &HookSection| {
            let mut events = if h.events.is_empty() {
                default_events()
            } else {
                h.events.clone()
            };
            events.sort();
            events
        };
        let mut changes = Vec::new();
        if client.deployment() == Deployment::DataCenter {
            let remote = client.dc_webhooks().await?;
            for hook in hooks {
                let url = self.url(&hook.endpoint);
                let label = format!("jira {url}");
                let events = events_of(hook);
                let found = remote.iter().find(|w| w.url == url);
                let same = found.is_some_and(|w| {
                    let mut have = w.events.clone();
                    have.sort();
                    have == events && w.enabled != Some(false)
                });
                match (found, same) {
                    (Some(_), true) => changes.push(Change::Unchanged(label)),
                    (found, _) => {
                        if !mode.dry_run {
                            if let Some(id) = found.and_then(|w| w.webhook_id()) {
                                client.delete_dc_webhook(&id).await?;
                            }
                            let refs: Vec<&str> = events.iter().map(String::as_str).collect();
                            let name = hook
                                .description
                                .clone()
                                .unwrap_or_else(|| format!("hookbridge {}", hook.endpoint));
                            let spec =
                                DcWebhookSpec::new(name, url.clone(), &refs, hook.jql.as_deref());
                            client.register_dc_webhook(&spec).await?;
                        }
                        changes.push(if found.is_some() {
                            Change::Updated(label)
                        } else {
                            Change::Created(label)
                        });
                    }
                }
            }
            for w in &remote {
                if !w.url.starts_with(self.public_url.trim_end_matches('/'))
                    || hooks.iter().any(|h| self.url(&h.endpoint) == w.url)
                {
                    continue;
                }
                let label = format!("jira {}", w.url);
                if mode.prune {
                    if !mode.dry_run
                        && let Some(id) = w.webhook_id()
                    {
                        client.delete_dc_webhook(&id).await?;
                    }
                    changes.push(Change::Deleted(label));
                } else {
                    changes.push(Change::Unknown(label));
                }
            }
            return Ok(changes);
        }
        let remote: Vec<_> = client.webhooks().try_collect().await?;
        let soon = time::OffsetDateTime::now_utc() + time::Duration::days(7);
        let mut matched = Vec::new();
        let mut to_refresh = Vec::new();
        for hook in hooks {
            let url = self.url(&hook.endpoint);
            let Some(jql) = hook.jql.as_deref() else {
                return Err(ApiError::Config {
                    service: "jira",
                    message: format!(
                        "hook for endpoint {}: Jira Cloud needs `jql`",
                        hook.endpoint
                    ),
                });
            };
            let events = events_of(hook);
            let label = format!("jira [{jql}] -> {url}");
            let found = remote.iter().find(|w| {
                let mut have = w.events.clone();
                have.sort();
                w.jql_filter == jql && have == events && w.url.as_deref().is_none_or(|u| u == url)
            });
            match found {
                Some(w) => {
                    matched.push(w.id);
                    let expiring = match &w.expiration_date {
                        Some(JiraTimestamp::Millis(ms)) => {
                            time::OffsetDateTime::from_unix_timestamp_nanos(
                                i128::from(*ms) * 1_000_000,
                            )
                            .is_ok_and(|at| at < soon)
                        }
                        Some(JiraTimestamp::Text(text)) => {
                            hookbridge_providers::jira::events::parse_jira_time(text)
                                .is_some_and(|at| at < soon)
                        }
                        None => false,
                    };
                    if expiring {
                        to_refresh.push(w.id);
                        changes.push(Change::Updated(format!("{label} (refreshed)")));
                    } else {
                        changes.push(Change::Unchanged(label));
                    }
                }
                None => {
                    if !mode.dry_run {
                        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
                        let results = client
                            .register_webhooks(&url, &[WebhookSpec::new(jql, &refs)])
                            .await?;
                        if let Some(errors) = results.iter().find(|r| !r.errors.is_empty()) {
                            return Err(ApiError::Validation {
                                service: "jira",
                                status: 400,
                                message: errors.errors.join("; "),
                            });
                        }
                    }
                    changes.push(Change::Created(label));
                }
            }
        }
        if !mode.dry_run && !to_refresh.is_empty() {
            client.refresh_webhooks(&to_refresh).await?;
        }
        let unknown: Vec<_> = remote.iter().filter(|w| !matched.contains(&w.id)).collect();
        for w in &unknown {
            let label = format!(
                "jira [{}] -> {}",
                w.jql_filter,
                w.url.as_deref().unwrap_or("(this app)")
            );
            changes.push(if mode.prune {
                Change::Deleted(label)
            } else {
                Change::Unknown(label)
            });
        }
        if mode.prune && !mode.dry_run && !unknown.is_empty() {
            let ids: Vec<u64> = unknown.iter().map(|w| w.id).collect();
            client.delete_webhooks(&ids).await?;
        }
        Ok(changes)
    }

    /// Asana's webhooks, per workspace; creating one makes Asana send the handshake to the
    /// running server (which must be reachable at `public_url`) before it answers.
    async fn asana(
        &self,
        client: &AsanaClient,
        hooks: &[&HookSection],
        mode: SyncMode,
    ) -> Result<Vec<Change>, ApiError> {
        let mut workspaces: BTreeMap<&str, Vec<&HookSection>> = BTreeMap::new();
        for hook in hooks {
            let (Some(workspace), Some(_)) = (hook.workspace.as_deref(), hook.resource.as_deref())
            else {
                return Err(ApiError::Config {
                    service: "asana",
                    message: format!(
                        "hook for endpoint {}: Asana needs `workspace` and `resource`",
                        hook.endpoint
                    ),
                });
            };
            workspaces.entry(workspace).or_default().push(hook);
        }
        let public = self.public_url.trim_end_matches('/');
        let mut changes = Vec::new();
        for (workspace, declared) in workspaces {
            let remote: Vec<_> = client.webhooks(workspace, None).try_collect().await?;
            for hook in &declared {
                let url = self.url(&hook.endpoint);
                let resource = hook.resource.as_deref().unwrap_or_default();
                let label = format!("asana {resource} -> {url}");
                let found = remote
                    .iter()
                    .find(|w| w.target == url && w.resource.gid == resource);
                match found {
                    Some(w) if w.active => changes.push(Change::Unchanged(label)),
                    found => {
                        if !mode.dry_run {
                            // An inactive webhook cannot be re-enabled: replace it.
                            if let Some(w) = found {
                                client.delete_webhook(&w.gid).await?;
                            }
                            client.create_webhook(resource, &url, &hook.filters).await?;
                        }
                        changes.push(if found.is_some() {
                            Change::Updated(label)
                        } else {
                            Change::Created(label)
                        });
                    }
                }
            }
            for w in &remote {
                let declared_here = declared.iter().any(|h| {
                    self.url(&h.endpoint) == w.target
                        && h.resource.as_deref() == Some(&w.resource.gid)
                });
                if !w.target.starts_with(public) || declared_here {
                    continue;
                }
                let label = format!("asana {} -> {}", w.resource.gid, w.target);
                if mode.prune {
                    if !mode.dry_run {
                        client.delete_webhook(&w.gid).await?;
                    }
                    changes.push(Change::Deleted(label));
                } else {
                    changes.push(Change::Unknown(label));
                }
            }
        }
        Ok(changes)
    }

    async fn trello(
        &self,
        client: &TrelloClient,
        hooks: &[&HookSection],
        mode: SyncMode,
    ) -> Result<Vec<Change>, ApiError> {
        let desired: Vec<DesiredWebhook> = hooks
            .iter()
            .map(|h| {
                let mut d =
                    DesiredWebhook::new(self.url(&h.endpoint), h.model.clone().unwrap_or_default());
                d.description = h.description.clone();
                d
            })
            .collect();
        let public = self.public_url.trim_end_matches('/').to_owned();
        let mut changes = Vec::new();
        if mode.dry_run {
            let remote = client.list_webhooks().await?;
            for d in &desired {
                match remote
                    .iter()
                    .find(|w| w.callback_url == d.callback_url && w.id_model == d.id_model)
                {
                    // A hook Trello keeps failing to deliver to is the one to look at.
                    Some(w) if w.is_failing() => changes.push(Change::Failing(trello_label(w))),
                    Some(w) if w.active => changes.push(Change::Unchanged(trello_label(w))),
                    Some(w) => changes.push(Change::Updated(trello_label(w))),
                    None => changes.push(Change::Created(format!(
                        "trello {} -> {} (missing at Trello)",
                        d.id_model, d.callback_url
                    ))),
                }
            }
            for w in remote
                .iter()
                .filter(|w| w.callback_url.starts_with(&public))
            {
                if !desired
                    .iter()
                    .any(|d| d.callback_url == w.callback_url && d.id_model == w.id_model)
                {
                    let label = trello_label(w);
                    changes.push(if mode.prune {
                        Change::Deleted(label)
                    } else {
                        Change::Unknown(label)
                    });
                }
            }
            return Ok(changes);
        }
        let report = client
            .sync_webhooks(&desired, |w| {
                mode.prune && w.callback_url.starts_with(&public)
            })
            .await?;
        // Failing hooks are reported once, as failing, with their failure count.
        let failing = |w: &TrelloWebhook| report.failing.iter().any(|f| f.id == w.id);
        changes.extend(
            report
                .unchanged
                .iter()
                .filter(|w| !failing(w))
                .map(|w| Change::Unchanged(trello_label(w))),
        );
        changes.extend(
            report
                .created
                .iter()
                .map(|w| Change::Created(trello_label(w))),
        );
        changes.extend(
            report
                .reactivated
                .iter()
                .map(|w| Change::Updated(trello_label(w))),
        );
        changes.extend(
            report
                .deleted
                .iter()
                .map(|w| Change::Deleted(trello_label(w))),
        );
        changes.extend(
            report
                .foreign
                .iter()
                .filter(|w| w.callback_url.starts_with(&public))
                .map(|w| Change::Unknown(trello_label(w))),
        );
        changes.extend(
            report
                .failing
                .iter()
                .map(|w| Change::Failing(trello_label(w))),
        );
        Ok(changes)
    }
}

use hookbridge_providers::trello::client::Webhook as TrelloWebhook;

/// A Trello webhook with its health as Trello reports it: `trello <model> -> <url>
/// (<health>)`, the health being `healthy`, `inactive`, or the consecutive failures and
/// since when.
fn trello_label(w: &TrelloWebhook) -> String {
    let health = if w.is_failing() {
        let since = w
            .first_consecutive_fail_date
            .as_deref()
            .map(|d| format!(" since {d}"))
            .unwrap_or_default();
        let plural = if w.consecutive_failures == 1 { "" } else { "s" };
        format!(
            "{} consecutive failure{plural}{since}",
            w.consecutive_failures
        )
    } else if w.active {
        "healthy".to_owned()
    } else {
        "inactive".to_owned()
    };
    format!("trello {} -> {} ({health})", w.id_model, w.callback_url)
}
