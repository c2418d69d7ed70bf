//! Routes: which chat targets hear about which repositories' builds, and the defaults
//! routes fall back on. Routes come from configuration (read-only) and from the CLI and
//! admin API (stored in the rule's state, so every instance sees them and they survive
//! restarts). A route may carry its own sink (a Slack incoming webhook or a signed
//! webhook) whose URL and secret are stored but never shown back.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use hookbridge_core::Secret;
use hookbridge_providers::sinks::Notifier;
use hookbridge_providers::sinks::slack::SlackWebhook;
use hookbridge_providers::sinks::webhook::SignedWebhook;
use serde::{Deserialize, Serialize};

use super::outcome::{BuildEvent, EventFilter};

/// The longest repository pattern accepted.
const MAX_PATTERN_LEN: usize = 200;

// ---------------------------------------------------------------------------------------------
// Secrets in configuration
// ---------------------------------------------------------------------------------------------

/// A secret in configuration: written inline, or read from an environment variable
/// (`{ env = "NAME" }`) or a file (`{ file = "path" }`, trailing newline trimmed) when the
/// integration is built. `Debug` never shows an inline value.
#[derive(Clone, Deserialize)]
#[serde(untagged)]
pub enum SecretRef {
    /// The value itself (prefer `env` or `file`).
    Inline(String),
    /// Read from this environment variable.
    Env {
        /// The variable's name.
        env: String,
    },
    /// Read from this file.
    File {
        /// The file's path.
        file: PathBuf,
    },
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Inline(_) => f.write_str("SecretRef::Inline([redacted])"),
            SecretRef::Env { env } => write!(f, "SecretRef::Env({env})"),
            SecretRef::File { file } => write!(f, "SecretRef::File({})", file.display()),
        }
    }
}

impl SecretRef {
    /// The secret; the error names where it was looked for, never a value.
    pub fn resolve(&self) -> Result<Secret, String> {
        let value = match self {
            SecretRef::Inline(value) => value.clone(),
            SecretRef::Env { env } => {
                std::env::var(env).map_err(|_| format!("environment variable {env} is not set"))?
            }
            SecretRef::File { file } => std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {}", file.display(), e.kind()))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        };
        if value.trim().is_empty() {
            return Err("the secret is empty".into());
        }
        Ok(Secret::new(value))
    }
}

// ---------------------------------------------------------------------------------------------
// Sinks of a route's own
// ---------------------------------------------------------------------------------------------

/// A sink a route carries itself, instead of naming a configured chat connection.
#[derive(Clone)]
pub enum RouteSink {
    /// A Slack incoming webhook; its URL is the credential.
    Slack {
        /// The webhook URL.
        url: Secret,
    },
    /// An HTTP endpoint, signed as Standard Webhooks do with `secret`.
    Webhook {
        /// Where to post.
        url: String,
        /// The signing secret (`whsec_...` base64, or raw bytes).
        secret: Secret,
    },
}

impl fmt::Debug for RouteSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl RouteSink {
    /// The sink as shown by `routes list` and the admin API: its kind and, for a webhook,
    /// the URL's origin; never the secret, nor a URL path or query (which may carry a
    /// token, as a Slack URL does).
    pub fn describe(&self) -> String {
        match self {
            RouteSink::Slack { .. } => "slack webhook (URL hidden)".to_owned(),
            RouteSink::Webhook { url, .. } => {
                format!("signed webhook to {} (secret hidden)", origin(url))
            }
        }
    }

    /// The notifier posting to this sink; the error never quotes the URL.
    pub fn notifier(&self) -> Result<Arc<dyn Notifier>, String> {
        match self {
            RouteSink::Slack { url } => SlackWebhook::new(url.clone())
                .map(|n| Arc::new(n) as Arc<dyn Notifier>)
                .map_err(|e| e.to_string()),
            RouteSink::Webhook { url, secret } => SignedWebhook::new(url, vec![secret.clone()])
                .map(|n| Arc::new(n) as Arc<dyn Notifier>)
                .map_err(|e| e.to_string()),
        }
    }

    fn stored(&self) -> StoredSink {
        let text = |s: &Secret| String::from_utf8_lossy(s.expose()).into_owned();
        match self {
            RouteSink::Slack { url } => StoredSink::Slack { url: text(url) },
            RouteSink::Webhook { url, secret } => StoredSink::Webhook {
                url: url.clone(),
                secret: text(secret),
            },
        }
    }
}

/// `scheme://host[:port]` of a URL, or `(invalid URL)`.
fn origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) if parsed.has_host() => parsed.origin().ascii_serialization(),
        _ => "(invalid URL)".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

/// Where a route comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteSource {
    /// `[[integrations.routes]]` in the configuration: changed only there.
    Config,
    /// Added with `routes add` or the admin API; stored.
    Runtime,
}

/// One route: builds of repositories matching `repo` go to `target` when the event passes
/// the filter.
#[derive(Clone, Debug)]
pub struct Route {
    /// An `owner/name` pattern: `*` any run of characters, `?` one; case-insensitive.
    pub repo: String,
    /// The chat target: a configured chat connection, or the name of the route's own
    /// `sink`. None: the default targets.
    pub target: Option<String>,
    /// The events, or None for the default events (as they are when a build arrives).
    pub events: Option<EventFilter>,
    /// The route's own sink, named `target`.
    pub sink: Option<RouteSink>,
    /// Where the route comes from.
    pub source: RouteSource,
}

impl Route {
    /// Whether the route is about `slug`.
    pub fn matches(&self, slug: &str) -> bool {
        glob(&self.repo.to_ascii_lowercase(), &slug.to_ascii_lowercase())
    }

    /// Whether the route is the one of (`repo`, `target`): the same pattern and target.
    pub(super) fn is(&self, repo: &str, target: Option<&str>) -> bool {
        self.repo.eq_ignore_ascii_case(repo) && self.target.as_deref() == target
    }

    pub(super) fn view(&self, defaults: &Defaults) -> RouteView {
        let (events, events_default) = match &self.events {
            Some(filter) => (filter.names(), false),
            None => (defaults.events.names(), true),
        };
        let (targets, targets_default) = match &self.target {
            Some(target) => (vec![target.clone()], false),
            None => (defaults.targets.clone(), true),
        };
        RouteView {
            repo: self.repo.clone(),
            targets,
            targets_default,
            events,
            events_default,
            sink: self.sink.as_ref().map(RouteSink::describe),
            source: self.source,
        }
    }

    pub(super) fn stored(&self) -> StoredRoute {
        StoredRoute {
            repo: self.repo.clone(),
            target: self.target.clone(),
            events: self.events.as_ref().map(EventFilter::names),
            sink: self.sink.as_ref().map(RouteSink::stored),
        }
    }
}

/// A route as `routes list` and the admin API show it: never a secret nor a sink's URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteView {
    /// The repository pattern.
    pub repo: String,
    /// The targets it sends to (the current default targets when `targets_default`).
    pub targets: Vec<String>,
    /// Whether the route follows the default targets.
    pub targets_default: bool,
    /// The events it wants (the current default events when `events_default`).
    pub events: Vec<String>,
    /// Whether the route follows the default events.
    pub events_default: bool,
    /// The route's own sink, described without its URL or secret.
    pub sink: Option<String>,
    /// `config` or `runtime`.
    pub source: RouteSource,
}

impl fmt::Display for RouteView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let targets = if self.targets.is_empty() {
            "(no targets)".to_owned()
        } else {
            self.targets.join(", ")
        };
        write!(
            f,
            "{:<28} -> {}{}  events: {}{}  [{}]",
            self.repo,
            targets,
            if self.targets_default {
                " (default targets)"
            } else {
                ""
            },
            self.events.join(", "),
            if self.events_default {
                " (defaults)"
            } else {
                ""
            },
            match self.source {
                RouteSource::Config => "config",
                RouteSource::Runtime => "runtime",
            }
        )?;
        if let Some(sink) = &self.sink {
            write!(f, "  via {sink}")?;
        }
        Ok(())
    }
}

/// What routes fall back on: the events of routes without their own, and the targets of
/// routes without a target.
#[derive(Clone, Debug, Default)]
pub struct Defaults {
    /// Default events.
    pub events: EventFilter,
    /// Default targets (chat connection names).
    pub targets: Vec<String>,
}

/// The defaults as shown, with where each comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DefaultsView {
    /// The default events.
    pub events: Vec<String>,
    /// Whether they were set at runtime (else they are the configuration's).
    pub events_set_at_runtime: bool,
    /// The default targets.
    pub targets: Vec<String>,
    /// Whether they were set at runtime.
    pub targets_set_at_runtime: bool,
}

impl fmt::Display for DefaultsView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = |runtime| {
            if runtime {
                "set at runtime"
            } else {
                "from the configuration"
            }
        };
        writeln!(
            f,
            "default events:  {} ({})",
            self.events.join(", "),
            from(self.events_set_at_runtime)
        )?;
        write!(
            f,
            "default targets: {} ({})",
            if self.targets.is_empty() {
                "(none)".to_owned()
            } else {
                self.targets.join(", ")
            },
            from(self.targets_set_at_runtime)
        )
    }
}

/// A route to add at runtime. Deserializes from the admin API's JSON:
/// `{"repo": "acme/app", "targets": ["ops-slack"], "events": ["failed", "fixed"]}`, with
/// optionally `"slack_url": "..."` or `"webhook": {"url": "...", "secret": "..."}` for a
/// sink of the route's own (then `targets` is its one name).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(try_from = "NewRouteInput")]
pub struct NewRoute {
    /// The repository pattern.
    pub repo: String,
    /// The targets (one route each); none: a route to the default targets.
    pub targets: Vec<String>,
    /// The events; None: the defaults.
    pub events: Option<Vec<String>>,
    /// The route's own sink.
    pub sink: Option<RouteSink>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRouteInput {
    repo: String,
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    slack_url: Option<String>,
    #[serde(default)]
    webhook: Option<WebhookInput>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookInput {
    url: String,
    secret: String,
}

impl TryFrom<NewRouteInput> for NewRoute {
    type Error = String;

    fn try_from(input: NewRouteInput) -> Result<Self, Self::Error> {
        let sink = match (input.slack_url, input.webhook) {
            (Some(_), Some(_)) => return Err("give `slack_url` or `webhook`, not both".into()),
            (Some(url), None) => Some(RouteSink::Slack {
                url: Secret::new(url),
            }),
            (None, Some(w)) => Some(RouteSink::Webhook {
                url: w.url,
                secret: Secret::new(w.secret),
            }),
            (None, None) => None,
        };
        Ok(NewRoute {
            repo: input.repo,
            targets: input.targets,
            events: input.events,
            sink,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Stored form
// ---------------------------------------------------------------------------------------------

/// The routes added at runtime, as kept in the rule's state under `routes`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct StoredRoutes {
    #[serde(default)]
    pub(super) routes: Vec<StoredRoute>,
}

/// One stored route.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredRoute {
    repo: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sink: Option<StoredSink>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredSink {
    Slack { url: String },
    Webhook { url: String, secret: String },
}

impl fmt::Debug for StoredSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoredSink::Slack { .. } => "StoredSink::Slack([redacted])",
            StoredSink::Webhook { .. } => "StoredSink::Webhook([redacted])",
        })
    }
}

impl StoredRoute {
    /// The route, as stored; an unreadable entry is an error naming its repository.
    pub(super) fn into_route(self) -> Result<Route, String> {
        let events = self
            .events
            .as_deref()
            .map(EventFilter::parse)
            .transpose()
            .map_err(|e| format!("stored route for {}: {e}", self.repo))?;
        let sink = self.sink.map(|sink| match sink {
            StoredSink::Slack { url } => RouteSink::Slack {
                url: Secret::new(url),
            },
            StoredSink::Webhook { url, secret } => RouteSink::Webhook {
                url,
                secret: Secret::new(secret),
            },
        });
        Ok(Route {
            repo: self.repo,
            target: self.target,
            events,
            sink,
            source: RouteSource::Runtime,
        })
    }
}

/// The defaults set at runtime, kept under `defaults`; an unset field keeps the
/// configuration's.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct StoredDefaults {
    #[serde(default)]
    pub(super) events: Option<Vec<String>>,
    #[serde(default)]
    pub(super) targets: Option<Vec<String>>,
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

/// Checks a repository pattern: `owner/name`, where either part may use `*` and `?`.
pub(super) fn check_pattern(repo: &str) -> Result<(), String> {
    let valid = !repo.is_empty()
        && repo.len() <= MAX_PATTERN_LEN
        && (repo == "*" || repo.split('/').count() == 2)
        && repo.split('/').all(|part| !part.is_empty())
        && repo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '*' | '?'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "repository `{repo}` is not an `owner/name` pattern (letters, digits, `-_.`, with `*` and `?` wildcards)"
        ))
    }
}

/// Checks an event list, giving the filter.
pub(super) fn parse_events(names: &[String]) -> Result<EventFilter, String> {
    EventFilter::parse(names).map_err(|e| e.to_string())
}

/// The names of every known event, for help texts.
pub fn event_names() -> Vec<&'static str> {
    BuildEvent::ALL.iter().map(|e| e.as_str()).collect()
}

/// fnmatch-style matching: `*` any run of characters (including none), `?` one.
pub(super) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // The classic greedy match with one backtrack point: linear for these short strings.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("acme/*", "acme/app"));
        assert!(glob("*", "acme/app"));
        assert!(glob("acme/app", "acme/app"));
        assert!(glob("acme/*-service", "acme/billing-service"));
        assert!(glob("acme/a?p", "acme/app"));
        assert!(glob("*/*", "a/b"));
        assert!(!glob("acme/*", "other/app"));
        assert!(!glob("acme/app", "acme/app2"));
        assert!(!glob("acme/a?p", "acme/ap"));
        let route = Route {
            repo: "Acme/*".into(),
            target: None,
            events: None,
            sink: None,
            source: RouteSource::Config,
        };
        assert!(
            route.matches("acme/App"),
            "case-insensitive, as GitHub slugs are"
        );
    }

    #[test]
    fn patterns_are_checked() {
        for good in ["acme/app", "acme/*", "*", "*/app", "a-b_c.d/e?f"] {
            assert!(check_pattern(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "acme",
            "acme/",
            "/app",
            "a/b/c",
            "acme/app name",
            "acme/<x>",
        ] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sinks_never_show_their_secrets() {
        let slack = RouteSink::Slack {
            url: Secret::new("https://hooks.slack.com/services/T0/B0/SEKRIT"),
        };
        let hook = RouteSink::Webhook {
            url: "https://chat.example.com/in?token=SEKRIT".into(),
            secret: Secret::new("whsec_SEKRIT"),
        };
        for shown in [
            slack.describe(),
            hook.describe(),
            format!("{slack:?} {hook:?}"),
            format!("{:?}", slack.stored()),
            format!("{:?}", SecretRef::Inline("SEKRIT".into())),
        ] {
            assert!(!shown.contains("SEKRIT"), "{shown}");
        }
        assert_eq!(
            hook.describe(),
            "signed webhook to https://chat.example.com (secret hidden)"
        );
    }

    #[test]
    fn new_route_from_json() {
        let route: NewRoute = serde_json::from_value(serde_json::json!({
            "repo": "acme/app", "targets": ["team"], "events": ["failed"],
            "webhook": {"url": "https://chat.example.com/in", "secret": "whsec_c2VjcmV0"}
        }))
        .unwrap();
        assert!(matches!(route.sink, Some(RouteSink::Webhook { .. })));
        let both = serde_json::from_value::<NewRoute>(serde_json::json!({
            "repo": "acme/app", "slack_url": "https://x", "webhook": {"url": "https://y", "secret": "s"}
        }));
        assert!(both.is_err());
        let unknown =
            serde_json::from_value::<NewRoute>(serde_json::json!({"repo": "a/b", "token": "x"}));
        assert!(unknown.is_err());
    }

    #[test]
    fn secret_refs_resolve() {
        assert_eq!(
            SecretRef::Inline("abc".into()).resolve().unwrap().expose(),
            b"abc"
        );
        let missing = SecretRef::Env {
            env: "HOOKBRIDGE_TEST_SURELY_UNSET_VAR".into(),
        }
        .resolve()
        .unwrap_err();
        assert!(
            missing.contains("HOOKBRIDGE_TEST_SURELY_UNSET_VAR"),
            "{missing}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "from-file\n").unwrap();
        assert_eq!(
            SecretRef::File { file: path }.resolve().unwrap().expose(),
            b"from-file"
        );
        assert!(SecretRef::Inline("  ".into()).resolve().is_err());
    }
}
