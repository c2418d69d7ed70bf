//! Trello hooks manager (kind `trello-hooks`): Trello actions handed to Rust code and,
//! from configuration alone, posted to chat with a template per action type.
//!
//! The Trello webhooks themselves are declared as `[[hooks]]` and registered and
//! reconciled by `hookbridge hooks list|sync`; Trello's `HEAD` check is answered and
//! `X-Trello-Webhook` verified by the endpoint; every callback is kept in the inbox
//! (`hookbridge deliveries list --endpoint <name>`, `deliveries replay`). This module is what
//! happens to each action next:
//!
//! - handlers written in Rust ([`TrelloHandler`]) get a typed [`TrelloAction`], where an
//!   `updateCard` is typed by what changed;
//! - `[[integrations.notify]]` blocks post a message per action to chat targets, rendered
//!   from a template per action key (defaults for the Django app's 20 action types and
//!   every `updateCard` case; override any).
//!
//! ```
//! use hookbridge_sync_engine::integrations::{self, Connections, Handle, IntegrationConfig};
//! let config: IntegrationConfig = serde_json::from_value(serde_json::json!({
//!     "kind": "trello-hooks",
//!     "boards": ["65e9a0b1c2d3e4f5a6b7c000"],
//! })).unwrap();
//! let integration = integrations::build("trello", config, &Connections::default()).unwrap();
//! let Handle::TrelloHooks(hooks) = &integration.handle else { unreachable!() };
//! assert!(hooks.handler_names().is_empty());
//! ```

mod action;
mod rule;
mod templates;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use hookbridge_core::EndpointName;
use serde::Deserialize;

use super::{Connections, Handle, Integration, IntegrationError};
use crate::engine::Rule;

pub use action::{TrelloAction, TrelloHandler};
use templates::Template;

/// The `updateCard` cases a key may name (`updateCard:<case>`).
const CARD_UPDATE_CASES: &[&str] = &[
    "moved",
    "archived",
    "unarchived",
    "renamed",
    "repositioned",
    "fields",
];

/// The integration's settings (`[[integrations]]` with `kind = "trello-hooks"`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Only callbacks that arrived on this endpoint (default: every Trello callback).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Only actions on these boards (ids; default: any board).
    #[serde(default)]
    pub boards: Vec<String>,
    /// Chat notifications (none by default).
    #[serde(default)]
    pub notify: Vec<NotifyConfig>,
}

/// One `[[integrations.notify]]` block: which actions go to which chat targets, and how
/// they read.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Chat connections (`kind = "slack" | "matrix" | "webhook"`). Required.
    pub targets: Vec<String>,
    /// Action keys to post: a type (`createCard`, `updateCard` for all its cases), a case
    /// (`updateCard:moved`), or `*` for every action (those without a template with a
    /// generic line). Default: every key that has a template.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Templates by action key, replacing or adding to the defaults: `{member}`,
    /// `{card}`, `{list_before}`, ... (see the docs for the list); `{{`/`}}` for braces.
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
}

/// A notify block, checked.
#[derive(Clone, Debug)]
struct Notify {
    targets: Vec<String>,
    /// None: every key with a template.
    actions: Option<Vec<String>>,
    templates: BTreeMap<String, Template>,
}

impl Notify {
    /// The template for `action`, if this block posts it: by its key, else (for an
    /// `updateCard` case) its type's, else the generic one when `*` is listed.
    fn template_for(&self, action: &TrelloAction<'_>) -> Option<Template> {
        let key = action.key();
        let kind = action.kind().as_str();
        let wanted = match &self.actions {
            None => true,
            Some(list) => list.iter().any(|a| a == "*" || *a == key || a == kind),
        };
        if !wanted {
            return None;
        }
        if let Some(template) = self
            .templates
            .get(&key)
            .or_else(|| self.templates.get(kind))
        {
            return Some(template.clone());
        }
        let everything = self
            .actions
            .as_ref()
            .is_some_and(|list| list.iter().any(|a| a == "*"));
        everything
            .then(|| Template::parse(templates::GENERIC).ok())
            .flatten()
    }
}

/// The built integration: the notify blocks from configuration and the handlers Rust code
/// adds (at any time: the rule reads them on every action).
pub struct TrelloHooks {
    name: String,
    endpoint: Option<EndpointName>,
    boards: Vec<String>,
    notify: Vec<Notify>,
    connections: Connections,
    handlers: RwLock<Vec<Arc<dyn TrelloHandler>>>,
}

impl fmt::Debug for TrelloHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrelloHooks")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("boards", &self.boards)
            .field("notify", &self.notify.len())
            .field("handlers", &self.handler_names())
            .finish()
    }
}

impl TrelloHooks {
    /// An integration named `name` with no notifications, for Rust code that registers
    /// handlers and adds [`rule`](TrelloHooks::rule) to its engine itself.
    ///
    /// ```
    /// use hookbridge_sync_engine::integrations::trello_hooks::TrelloHooks;
    /// let hooks = TrelloHooks::new("trello");
    /// // hooks.add_handler(MyHandler); engine_builder.rule(hooks.rule());
    /// assert_eq!(hooks.rule().name(), "trello");
    /// ```
    pub fn new(name: impl Into<String>) -> Arc<TrelloHooks> {
        Arc::new(TrelloHooks {
            name: name.into(),
            endpoint: None,
            boards: Vec::new(),
            notify: Vec::new(),
            connections: Connections::default(),
            handlers: RwLock::new(Vec::new()),
        })
    }

    /// The integration's name (and its rule's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Registers a handler; it gets every action from now on (a handler of the same name
    /// is replaced).
    pub fn add_handler(&self, handler: impl TrelloHandler) {
        self.add_shared_handler(Arc::new(handler));
    }

    /// Registers a shared handler; see [`add_handler`](TrelloHooks::add_handler).
    pub fn add_shared_handler(&self, handler: Arc<dyn TrelloHandler>) {
        let mut handlers = self
            .handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        handlers.retain(|h| h.name() != handler.name());
        tracing::info!(integration = %self.name, handler = handler.name(), "trello handler registered");
        handlers.push(handler);
    }

    /// The names of the registered handlers, in order.
    pub fn handler_names(&self) -> Vec<String> {
        self.handlers()
            .iter()
            .map(|h| h.name().to_owned())
            .collect()
    }

    fn handlers(&self) -> Vec<Arc<dyn TrelloHandler>> {
        self.handlers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The rule delivering actions to the notify blocks and handlers, named after the
    /// integration. [`build`] already returns it in [`Integration::rules`].
    pub fn rule(self: &Arc<Self>) -> Arc<dyn Rule> {
        Arc::new(rule::TrelloHooksRule {
            hooks: self.clone(),
        })
    }
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
    let mut notify = Vec::new();
    for (i, block) in config.notify.iter().enumerate() {
        let at = |message: String| error(format!("notify[{i}].{message}"));
        if block.targets.is_empty() {
            return Err(at("targets: name at least one chat connection".into()));
        }
        for target in &block.targets {
            connections.notifier(name, target)?;
        }
        for key in &block.actions {
            check_key(key).map_err(|e| at(format!("actions: {e}")))?;
        }
        let mut parsed = templates::defaults();
        for (key, text) in &block.templates {
            check_key(key).map_err(|e| at(format!("templates: {e}")))?;
            if key == "*" {
                return Err(at("templates: `*` is not an action key".into()));
            }
            let template =
                Template::parse(text).map_err(|e| at(format!("templates.\"{key}\": {e}")))?;
            parsed.insert(key.clone(), template);
        }
        notify.push(Notify {
            targets: block.targets.clone(),
            actions: (!block.actions.is_empty()).then(|| block.actions.clone()),
            templates: parsed,
        });
    }
    for board in &config.boards {
        if board.is_empty() || !board.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(error(format!("boards: `{board}` is not a Trello id")));
        }
    }
    let hooks = Arc::new(TrelloHooks {
        name: name.to_owned(),
        endpoint: config.endpoint.as_deref().map(EndpointName::new),
        boards: config.boards,
        notify,
        connections: connections.clone(),
        handlers: RwLock::new(Vec::new()),
    });
    Ok(Integration {
        name: name.to_owned(),
        rules: vec![hooks.rule()],
        sources: Vec::new(),
        endpoints: Vec::new(),
        handle: Handle::TrelloHooks(hooks),
    })
}

/// An action key: `*`, an action type (`createCard`), or `updateCard:<case>`.
fn check_key(key: &str) -> Result<(), String> {
    if key == "*" {
        return Ok(());
    }
    let (kind, case) = match key.split_once(':') {
        Some((kind, case)) => (kind, Some(case)),
        None => (key, None),
    };
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(format!(
            "`{key}` is not a Trello action type such as `createCard`"
        ));
    }
    if let Some(case) = case
        && (kind != "updateCard" || !CARD_UPDATE_CASES.contains(&case))
    {
        return Err(format!(
            "`{key}`: only updateCard has cases: updateCard:{}",
            CARD_UPDATE_CASES.join(", updateCard:")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        for good in [
            "*",
            "createCard",
            "updateCard",
            "updateCard:moved",
            "addAttachmentToCard",
        ] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "create card",
            "updateCard:teleported",
            "createCard:moved",
            ":moved",
        ] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn build_names_the_key_at_fault() {
        let build_with = |notify: serde_json::Value| {
            let config: Config =
                serde_json::from_value(serde_json::json!({"notify": [notify]})).unwrap();
            build("t", config, &Connections::default())
                .unwrap_err()
                .to_string()
        };
        assert!(build_with(serde_json::json!({"targets": []})).contains("notify[0].targets"));
        assert!(build_with(serde_json::json!({"targets": ["nope"]})).contains("`nope`"));
        let unknown: Result<Config, _> = serde_json::from_value(serde_json::json!({"notfy": []}));
        assert!(unknown.is_err());
    }
}
