//! `hookbridge hooks list|sync`: the webhooks declared in `[[hooks]]`, compared with those
//! registered at the services, and (with `sync`) made to match: missing ones created,
//! inactive ones re-enabled, and with `--prune` hooks that point at this server but are no
//! longer declared deleted. Running `sync` twice changes nothing the second time.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::TryStreamExt as _;
use hookbridge_core::Secret;
use hookbridge_providers::api::{ApiError, RetryPolicy};
use hookbridge_providers::github::client::{
    GithubClient, GithubClientSettings, GithubCredentials, HookConfigInput, HookUpdate, NewHook,
    Repo,
};
use hookbridge_providers::trello::auth::TrelloCredentials;
use hookbridge_providers::trello::client::{DesiredWebhook, TrelloClient, TrelloSettings};
use serde::Deserialize;

/// `[connections.<name>]`: credentials to call a service's API.
#[derive(Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ConnectionSection {
    /// GitHub with a token.
    Github {
        /// The API base URL (GitHub Enterprise: `https://HOST/api/v3`).
        #[serde(default = "github_base")]
        base_url: String,
        /// A token allowed to administer repository hooks.
        token: String,
    },
    /// Trello with an API key and a user token.
    Trello {
        /// The API base URL.
        #[serde(default = "trello_base")]
        base_url: String,
        /// The application key.
        key: String,
        /// The user token.
        token: String,
    },
    /// Jira Cloud OAuth 2.0 (3LO) login: `GET /oauth/<name>/login` (see `crate::oauth`).
    #[serde(rename = "jira-oauth2")]
    JiraOauth2 {
        /// The app's client id.
        client_id: String,
        /// The app's client secret.
        client_secret: String,
        /// The callback URL registered for the app (`.../oauth/<name>/callback`).
        redirect_url: String,
        /// Scopes (`offline_access` yields a refresh token).
        #[serde(default)]
        scopes: Vec<String>,
        /// The authorization endpoint (default Atlassian's).
        auth_url: Option<String>,
        /// The token endpoint (default Atlassian's).
        token_url: Option<String>,
        /// The accessible-resources endpoint (default Atlassian's).
        resources_url: Option<String>,
    },
    /// Jira Data Center OAuth 1.0a (application link) login.
    #[serde(rename = "jira-oauth1")]
    JiraOauth1 {
        /// The Jira base URL, with its context path.
        base_url: String,
        /// The application link's consumer key.
        consumer_key: String,
        /// The RSA private key, PEM.
        private_key: String,
        /// Where Jira sends the user back (`.../oauth/<name>/callback`).
        redirect_url: String,
    },
    /// Asana OAuth 2.0 login (with PKCE).
    #[serde(rename = "asana-oauth")]
    AsanaOauth {
        /// The app's client id.
        client_id: String,
        /// The app's client secret.
        client_secret: String,
        /// The redirect URL registered for the app (`.../oauth/<name>/callback`).
        redirect_url: String,
        /// Scopes (none: the app's default).
        #[serde(default)]
        scopes: Vec<String>,
        /// The authorization endpoint (default Asana's).
        auth_url: Option<String>,
        /// The token endpoint (default Asana's).
        token_url: Option<String>,
    },
    /// GitHub OAuth app login (user access tokens).
    #[serde(rename = "github-oauth")]
    GithubOauth {
        /// The OAuth app's client id.
        client_id: String,
        /// The OAuth app's client secret.
        client_secret: String,
        /// The callback URL registered for the app (`.../oauth/<name>/callback`).
        redirect_url: String,
        /// Scopes, e.g. `repo`.
        #[serde(default)]
        scopes: Vec<String>,
        /// The authorization endpoint (default `https://github.com/login/oauth/authorize`).
        auth_url: Option<String>,
        /// The token endpoint (default `https://github.com/login/oauth/access_token`).
        token_url: Option<String>,
    },
}

impl ConnectionSection {
    /// Whether this connection is only an OAuth login (`/oauth/<name>/...`), unusable by
    /// `hooks sync`.
    pub fn is_oauth(&self) -> bool {
        !matches!(
            self,
            ConnectionSection::Github { .. } | ConnectionSection::Trello { .. }
        )
    }
}

impl std::fmt::Debug for ConnectionSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectionSection::Github { base_url, .. } => write!(f, "Github({base_url})"),
            ConnectionSection::Trello { base_url, .. } => write!(f, "Trello({base_url})"),
            ConnectionSection::JiraOauth2 { client_id, .. } => write!(f, "JiraOauth2({client_id})"),
            ConnectionSection::JiraOauth1 { base_url, .. } => write!(f, "JiraOauth1({base_url})"),
            ConnectionSection::AsanaOauth { client_id, .. } => write!(f, "AsanaOauth({client_id})"),
            ConnectionSection::GithubOauth { client_id, .. } => {
                write!(f, "GithubOauth({client_id})")
            }
        }
    }
}

fn github_base() -> String {
    "https://api.github.com".into()
}
fn trello_base() -> String {
    "https://api.trello.com/1".into()
}

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
    /// Trello: the webhook's description.
    pub description: Option<String>,
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
    /// Connections by name.
    pub connections: &'a BTreeMap<String, ConnectionSection>,
    /// The declared hooks.
    pub hooks: &'a [HookSection],
    /// The secret a service should sign with, by endpoint (GitHub).
    pub secrets: &'a BTreeMap<String, Secret>,
}

fn settings_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(200),
        max_wait: Duration::from_secs(10),
    }
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
            let result = match connection {
                ConnectionSection::Github { base_url, token } => {
                    self.github(base_url, token, &hooks, mode).await
                }
                ConnectionSection::Trello {
                    base_url,
                    key,
                    token,
                } => self.trello(base_url, key, token, &hooks, mode).await,
                _ => continue,
            };
            changes.extend(result.map_err(|e| format!("connection {name}: {e}"))?);
        }
        Ok(changes)
    }

    async fn github(
        &self,
        base_url: &str,
        token: &str,
        hooks: &[&HookSection],
        mode: SyncMode,
    ) -> Result<Vec<Change>, ApiError> {
        let client = GithubClient::from_settings(&GithubClientSettings {
            base_url: base_url.to_owned(),
            credentials: GithubCredentials::Token(Secret::new(token)),
            bot_login: None,
            retry: settings_retry(),
            timeout: Duration::from_secs(30),
        })?;
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

    async fn trello(
        &self,
        base_url: &str,
        key: &str,
        token: &str,
        hooks: &[&HookSection],
        mode: SyncMode,
    ) -> Result<Vec<Change>, ApiError> {
        let client = TrelloClient::from_settings(TrelloSettings {
            base_url: base_url.to_owned(),
            credentials: TrelloCredentials {
                key: Secret::new(key),
                token: Secret::new(token),
            },
            retry: settings_retry(),
            timeout: Duration::from_secs(30),
        })?;
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
                let label = format!("trello {} -> {}", d.id_model, d.callback_url);
                match remote
                    .iter()
                    .find(|w| w.callback_url == d.callback_url && w.id_model == d.id_model)
                {
                    Some(w) if w.active => changes.push(Change::Unchanged(label)),
                    Some(_) => changes.push(Change::Updated(label)),
                    None => changes.push(Change::Created(label)),
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
                    let label = format!("trello {} -> {}", w.id_model, w.callback_url);
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
        let label = |w: &hookbridge_providers::trello::client::Webhook| {
            format!("trello {} -> {}", w.id_model, w.callback_url)
        };
        changes.extend(report.unchanged.iter().map(|w| Change::Unchanged(label(w))));
        changes.extend(report.created.iter().map(|w| Change::Created(label(w))));
        changes.extend(report.reactivated.iter().map(|w| Change::Updated(label(w))));
        changes.extend(report.deleted.iter().map(|w| Change::Deleted(label(w))));
        changes.extend(
            report
                .foreign
                .iter()
                .filter(|w| w.callback_url.starts_with(&public))
                .map(|w| Change::Unknown(label(w))),
        );
        changes.extend(report.failing.iter().map(|w| Change::Failing(label(w))));
        Ok(changes)
    }
}
