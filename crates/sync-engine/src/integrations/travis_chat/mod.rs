//! Travis CI -> chat (kind `travis-chat`): build notifications routed from repositories to
//! chat targets, with event filters and defaults, the routes managed from configuration
//! and at runtime (`hookbridge routes ...`, `/admin/integrations/{name}/routes`).
//!
//! What err-travishook did, kept: routes `repository -> target` with per-route event
//! filters (`pending`, `passed`, `failed`, `broken`, `fixed`, `still_failing`,
//! `canceled`, `errored`, `*`), default events for routes without their own, fan-out to
//! several targets, a message for a repository without routes accepted and dropped.
//! What is different: verification is the endpoint's (Travis CI's RSA `Signature`;
//! nothing unsigned is ever accepted), delivery is durable and retried per target without
//! posting twice, repository patterns (`acme/*`), default targets, and routes carrying a
//! sink of their own (a Slack webhook URL or a signed webhook's secret) that no listing
//! ever shows.
//!
//! ```
//! use hookbridge_sync_engine::integrations::{self, Connections, IntegrationConfig};
//! let config: IntegrationConfig = serde_json::from_value(serde_json::json!({
//!     "kind": "travis-chat",
//!     "events": ["failed", "broken", "fixed"],
//!     "routes": [{"repo": "acme/*"}],
//! })).unwrap();
//! let integration = integrations::build("travis", config, &Connections::default()).unwrap();
//! assert_eq!(integration.rules[0].name(), "travis");
//! ```

mod fanout;
mod message;
mod outcome;
mod routes;
mod rule;

use std::fmt;
use std::sync::Arc;

use hookbridge_core::EndpointName;
use serde::Deserialize;

use super::{Connections, Handle, Integration, IntegrationError};
use crate::store::Store;

pub(in crate::integrations) use fanout::{Progress, key_part};
pub use outcome::{BuildEvent, EventFilter, UnknownEvent};
pub use routes::{
    Defaults, DefaultsView, NewRoute, Route, RouteSink, RouteSource, RouteView, SecretRef,
    event_names,
};

/// The state key of the routes added at runtime.
const ROUTES_KEY: &str = "routes";
/// The state key of the defaults set at runtime.
const DEFAULTS_KEY: &str = "defaults";

/// The integration's settings (`[[integrations]]` with `kind = "travis-chat"`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Only notifications that arrived on this endpoint (default: every Travis CI
    /// notification).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Default targets: the chat connections (`kind = "slack" | "matrix" | "webhook"`) of
    /// routes that name none. Default: none.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Default events: the events of routes that list none. Default: `passed`, `fixed`,
    /// `broken`, `failed`, `still_failing`.
    #[serde(default = "default_events")]
    pub events: Vec<String>,
    /// Routes. More are added at runtime; these are changed only here.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// The start of every message. Default `[Travis CI]`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_events() -> Vec<String> {
    BuildEvent::DEFAULT
        .iter()
        .map(|e| e.as_str().to_owned())
        .collect()
}

fn default_prefix() -> String {
    "[Travis CI]".to_owned()
}

/// One `[[integrations.routes]]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The repository, `owner/name`, or a pattern (`acme/*`, `*`).
    pub repo: String,
    /// The targets; none: the default targets. With `slack_url` or `webhook`, the one name
    /// of that sink.
    #[serde(default)]
    pub targets: Vec<String>,
    /// The events; absent: the default events.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// A Slack incoming webhook of the route's own (its URL is a secret: `{ env = "..." }`).
    #[serde(default)]
    pub slack_url: Option<SecretRef>,
    /// A signed webhook of the route's own.
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
}

/// A signed webhook of a route's own.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to post.
    pub url: String,
    /// The Standard Webhooks signing secret (`whsec_...`).
    pub secret: SecretRef,
}

/// The built integration: its configuration, and the operations on its routes. The routes
/// added at runtime live in the store, in the state of the rule named after the
/// integration, so every instance and the CLI see the same ones.
pub struct TravisChat {
    name: String,
    endpoint: Option<EndpointName>,
    prefix: String,
    config_routes: Vec<Route>,
    config_defaults: Defaults,
    connections: Connections,
    /// Serializes this process's read-modify-write of the stored routes.
    writes: tokio::sync::Mutex<()>,
}

impl fmt::Debug for TravisChat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TravisChat")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("config_routes", &self.config_routes)
            .field("config_defaults", &self.config_defaults)
            .finish_non_exhaustive()
    }
}

impl TravisChat {
    /// The integration's name (and its rule's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The endpoint it serves, when limited to one.
    pub fn endpoint(&self) -> Option<&EndpointName> {
        self.endpoint.as_ref()
    }

    fn config_error(&self, message: impl Into<String>) -> IntegrationError {
        IntegrationError::Config {
            integration: self.name.clone(),
            message: message.into(),
        }
    }

    fn store_error(&self, source: crate::store::StoreError) -> IntegrationError {
        IntegrationError::Store {
            integration: self.name.clone(),
            source,
        }
    }

    async fn stored_routes(&self, store: &dyn Store) -> Result<Vec<Route>, IntegrationError> {
        let Some(value) = store
            .state(&self.name, ROUTES_KEY)
            .await
            .map_err(|e| self.store_error(e))?
        else {
            return Ok(Vec::new());
        };
        let stored: routes::StoredRoutes = serde_json::from_value(value)
            .map_err(|e| self.config_error(format!("the stored routes cannot be read: {e}")))?;
        stored
            .routes
            .into_iter()
            .map(|r| r.into_route().map_err(|e| self.config_error(e)))
            .collect()
    }

    async fn put_routes(
        &self,
        store: &dyn Store,
        routes: &[Route],
    ) -> Result<(), IntegrationError> {
        let stored = routes::StoredRoutes {
            routes: routes.iter().map(Route::stored).collect(),
        };
        let value = serde_json::to_value(stored)
            .map_err(|e| self.config_error(format!("cannot store the routes: {e}")))?;
        store
            .put_state(&self.name, ROUTES_KEY, &value)
            .await
            .map_err(|e| self.store_error(e))
    }

    async fn stored_defaults(
        &self,
        store: &dyn Store,
    ) -> Result<routes::StoredDefaults, IntegrationError> {
        match store
            .state(&self.name, DEFAULTS_KEY)
            .await
            .map_err(|e| self.store_error(e))?
        {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| self.config_error(format!("the stored defaults cannot be read: {e}"))),
            None => Ok(routes::StoredDefaults::default()),
        }
    }

    /// Every route: the configuration's, then those added at runtime.
    pub async fn all_routes(&self, store: &dyn Store) -> Result<Vec<Route>, IntegrationError> {
        let mut all = self.config_routes.clone();
        all.extend(self.stored_routes(store).await?);
        Ok(all)
    }

    /// The defaults in force: those set at runtime, else the configuration's.
    pub async fn effective_defaults(
        &self,
        store: &dyn Store,
    ) -> Result<Defaults, IntegrationError> {
        let stored = self.stored_defaults(store).await?;
        let events = match &stored.events {
            Some(names) => routes::parse_events(names).map_err(|e| self.config_error(e))?,
            None => self.config_defaults.events.clone(),
        };
        Ok(Defaults {
            events,
            targets: stored
                .targets
                .unwrap_or_else(|| self.config_defaults.targets.clone()),
        })
    }

    /// Every route as `routes list` shows it, optionally only those about `repo` (a
    /// repository matched by their patterns, or a pattern written the same).
    pub async fn routes(
        &self,
        store: &dyn Store,
        repo: Option<&str>,
    ) -> Result<Vec<RouteView>, IntegrationError> {
        let defaults = self.effective_defaults(store).await?;
        Ok(self
            .all_routes(store)
            .await?
            .iter()
            .filter(|r| {
                repo.is_none_or(|repo| r.matches(repo) || r.repo.eq_ignore_ascii_case(repo))
            })
            .map(|r| r.view(&defaults))
            .collect())
    }

    /// Adds routes (one per target; a route to the default targets without any), replacing
    /// a runtime route of the same repository and target. Checked first: the pattern, the
    /// events, that every target is a configured chat connection or the route's own sink.
    /// Returns the routes as stored, shown without secrets.
    pub async fn add_route(
        &self,
        store: &dyn Store,
        new: NewRoute,
    ) -> Result<Vec<RouteView>, IntegrationError> {
        let repo = new.repo.trim().to_owned();
        routes::check_pattern(&repo).map_err(|e| self.config_error(e))?;
        let events = new
            .events
            .as_deref()
            .map(routes::parse_events)
            .transpose()
            .map_err(|e| self.config_error(e))?;
        let targets: Vec<Option<String>> = match &new.sink {
            Some(sink) => {
                let [name] = new.targets.as_slice() else {
                    return Err(self.config_error(
                        "a route with its own sink (slack_url or webhook) needs exactly one target: the sink's name",
                    ));
                };
                check_sink_name(&self.connections, name).map_err(|e| self.config_error(e))?;
                sink.notifier()
                    .map_err(|e| self.config_error(format!("target {name}: {e}")))?;
                vec![Some(name.clone())]
            }
            None if new.targets.is_empty() => vec![None],
            None => {
                for target in &new.targets {
                    self.connections.notifier(&self.name, target)?;
                }
                new.targets.iter().cloned().map(Some).collect()
            }
        };
        let _guard = self.writes.lock().await;
        let mut stored = self.stored_routes(store).await?;
        let mut added = Vec::new();
        for target in targets {
            stored.retain(|r| !r.is(&repo, target.as_deref()));
            let route = Route {
                repo: repo.clone(),
                target,
                events: events.clone(),
                sink: new.sink.clone(),
                source: RouteSource::Runtime,
            };
            added.push(route.clone());
            stored.push(route);
        }
        self.put_routes(store, &stored).await?;
        let defaults = self.effective_defaults(store).await?;
        tracing::info!(integration = %self.name, repo = %repo, routes = added.len(), "routes added");
        Ok(added.iter().map(|r| r.view(&defaults)).collect())
    }

    /// Removes the runtime routes of pattern `repo` (written as it was added), only the one
    /// to `target` when given. Returns what was removed; empty when nothing matched. Routes
    /// from the configuration cannot be removed here: asking to is an error saying so.
    pub async fn remove_routes(
        &self,
        store: &dyn Store,
        repo: &str,
        target: Option<&str>,
    ) -> Result<Vec<RouteView>, IntegrationError> {
        let repo = repo.trim();
        let selected = |r: &Route| {
            r.repo.eq_ignore_ascii_case(repo)
                && target.is_none_or(|t| r.target.as_deref() == Some(t))
        };
        let _guard = self.writes.lock().await;
        let mut stored = self.stored_routes(store).await?;
        let (removed, kept): (Vec<Route>, Vec<Route>) = stored.drain(..).partition(selected);
        if removed.is_empty() {
            if self.config_routes.iter().any(selected) {
                return Err(self.config_error(format!(
                    "the route(s) of {repo} come from the configuration file; change them there"
                )));
            }
            return Ok(Vec::new());
        }
        self.put_routes(store, &kept).await?;
        let defaults = self.effective_defaults(store).await?;
        tracing::info!(integration = %self.name, repo = %repo, routes = removed.len(), "routes removed");
        Ok(removed.iter().map(|r| r.view(&defaults)).collect())
    }

    /// The defaults in force, and where they come from.
    pub async fn defaults(&self, store: &dyn Store) -> Result<DefaultsView, IntegrationError> {
        let stored = self.stored_defaults(store).await?;
        let effective = self.effective_defaults(store).await?;
        Ok(DefaultsView {
            events: effective.events.names(),
            events_set_at_runtime: stored.events.is_some(),
            targets: effective.targets,
            targets_set_at_runtime: stored.targets.is_some(),
        })
    }

    /// Sets the default events and/or targets (None leaves one as it is). They apply at
    /// once to every route without its own events or targets.
    pub async fn set_defaults(
        &self,
        store: &dyn Store,
        events: Option<Vec<String>>,
        targets: Option<Vec<String>>,
    ) -> Result<DefaultsView, IntegrationError> {
        if let Some(events) = &events {
            routes::parse_events(events).map_err(|e| self.config_error(e))?;
        }
        for target in targets.iter().flatten() {
            self.connections.notifier(&self.name, target)?;
        }
        let _guard = self.writes.lock().await;
        let mut stored = self.stored_defaults(store).await?;
        if let Some(events) = events {
            stored.events = Some(events.iter().map(|e| e.trim().to_owned()).collect());
        }
        if let Some(targets) = targets {
            stored.targets = Some(targets);
        }
        self.put_defaults(store, &stored).await?;
        drop(_guard);
        self.defaults(store).await
    }

    /// Goes back to the configuration's defaults.
    pub async fn reset_defaults(
        &self,
        store: &dyn Store,
    ) -> Result<DefaultsView, IntegrationError> {
        let guard = self.writes.lock().await;
        self.put_defaults(store, &routes::StoredDefaults::default())
            .await?;
        drop(guard);
        self.defaults(store).await
    }

    async fn put_defaults(
        &self,
        store: &dyn Store,
        defaults: &routes::StoredDefaults,
    ) -> Result<(), IntegrationError> {
        let value = serde_json::to_value(defaults)
            .map_err(|e| self.config_error(format!("cannot store the defaults: {e}")))?;
        store
            .put_state(&self.name, DEFAULTS_KEY, &value)
            .await
            .map_err(|e| self.store_error(e))
    }
}

/// A route's own sink is named like a target, but not like a configured connection (which
/// name would then mean which sink?).
fn check_sink_name(connections: &Connections, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(format!(
            "target name `{name}` must be 1-64 letters, digits, `-`, `_` or `.`"
        ));
    }
    if connections.notifier_names().any(|n| n == name) {
        return Err(format!(
            "target name `{name}` is a configured connection; name the route's own sink differently"
        ));
    }
    Ok(())
}

/// Builds the integration: checks every setting, naming the key at fault.
pub fn build(
    name: &str,
    config: Config,
    connections: &Connections,
) -> Result<Integration, IntegrationError> {
    let error = |message: String| IntegrationError::Config {
        integration: name.to_owned(),
        message,
    };
    for target in &config.targets {
        connections.notifier(name, target)?;
    }
    let events = routes::parse_events(&config.events).map_err(|e| error(format!("events: {e}")))?;
    let mut chat = TravisChat {
        name: name.to_owned(),
        endpoint: config.endpoint.as_deref().map(EndpointName::new),
        prefix: config.prefix.trim().to_owned(),
        config_routes: Vec::new(),
        config_defaults: Defaults {
            events,
            targets: config.targets.clone(),
        },
        connections: connections.clone(),
        writes: tokio::sync::Mutex::new(()),
    };
    for (i, route) in config.routes.iter().enumerate() {
        let at = |message: String| error(format!("routes[{i}] ({}): {message}", route.repo));
        routes::check_pattern(&route.repo).map_err(&at)?;
        let events = route
            .events
            .as_deref()
            .map(routes::parse_events)
            .transpose()
            .map_err(|e| at(format!("events: {e}")))?;
        let sink = match (&route.slack_url, &route.webhook) {
            (Some(_), Some(_)) => return Err(at("give `slack_url` or `webhook`, not both".into())),
            (Some(url), None) => Some(RouteSink::Slack {
                url: url.resolve().map_err(|e| at(format!("slack_url: {e}")))?,
            }),
            (None, Some(webhook)) => Some(RouteSink::Webhook {
                url: webhook.url.clone(),
                secret: webhook
                    .secret
                    .resolve()
                    .map_err(|e| at(format!("webhook.secret: {e}")))?,
            }),
            (None, None) => None,
        };
        let targets: Vec<Option<String>> = match &sink {
            Some(sink) => {
                let [target] = route.targets.as_slice() else {
                    return Err(at(
                        "a route with slack_url or webhook needs exactly one name in `targets`"
                            .into(),
                    ));
                };
                check_sink_name(connections, target).map_err(&at)?;
                sink.notifier().map_err(&at)?;
                vec![Some(target.clone())]
            }
            None if route.targets.is_empty() => vec![None],
            None => {
                for target in &route.targets {
                    connections.notifier(name, target)?;
                }
                route.targets.iter().cloned().map(Some).collect()
            }
        };
        for target in targets {
            chat.config_routes.push(Route {
                repo: route.repo.clone(),
                target,
                events: events.clone(),
                sink: sink.clone(),
                source: RouteSource::Config,
            });
        }
    }
    let chat = Arc::new(chat);
    Ok(Integration {
        name: name.to_owned(),
        rules: vec![Arc::new(rule::TravisChatRule { chat: chat.clone() })],
        sources: Vec::new(),
        endpoints: Vec::new(),
        handle: Handle::TravisChat(chat),
    })
}
