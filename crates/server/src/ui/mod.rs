//! The operators' dashboard under `/ui`, on only when `[admin] token` is configured: sign in
//! with the admin token, then see deliveries, jobs, dead letters, rules, hooks and links, and
//! replay what failed, without SQL.
//!
//! Server-rendered HTML (maud templates compiled into the binary), no JavaScript. A session
//! is a random 256-bit id in an `HttpOnly`, `SameSite=Strict` cookie scoped to `/ui`, kept in
//! memory with an expiry; every `POST` carries the session's CSRF token, checked in constant
//! time before any handler runs. The pages read through the same [`Store`] calls as the admin
//! API and share its replay logic.
//!
//! [`Store`]: hookbridge_sync_engine::store::Store

mod csrf;
mod dead_letters;
mod deliveries;
mod hooks;
mod layout;
mod links;
mod overview;
mod rules;
mod session;

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use hookbridge_sync_engine::engine::ActionSpec;

use crate::config::Config;
use crate::connections::ConnectionSection;
use crate::hooks::HookSection;
use crate::{AppState, Endpoint};

/// What the dashboard shows beyond the store: the declared hooks with their connections, and
/// whether its cookie must be `Secure`. Built from the configuration by
/// [`UiSettings::from_config`].
#[derive(Clone, Default)]
pub struct UiSettings {
    /// Set `Secure` on the session cookie (the server is reached over HTTPS).
    pub secure_cookies: bool,
    /// The URL the services reach this server at (`[server] public_url`).
    pub public_url: Option<String>,
    /// The connections, to check the declared hooks with.
    pub connections: BTreeMap<String, ConnectionSection>,
    /// The declared hooks.
    pub hooks: Vec<HookSection>,
    /// Configured secret values, removed from every page as a last line of defence.
    secrets: Vec<Vec<u8>>,
}

impl std::fmt::Debug for UiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiSettings")
            .field("secure_cookies", &self.secure_cookies)
            .field("public_url", &self.public_url)
            .field("connections", &self.connections.keys().collect::<Vec<_>>())
            .field("hooks", &self.hooks.len())
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// Secrets shorter than this are not searched for in pages: they would match ordinary text.
const MIN_REDACTED_LEN: usize = 8;

impl UiSettings {
    /// The dashboard's settings for a configuration: cookies are `Secure` when
    /// `public_url` is `https`, and every secret the configuration holds (admin token,
    /// endpoint secrets, connection credentials, rule headers and Slack URLs) is kept to be
    /// scrubbed from pages should one ever reach them.
    pub fn from_config(config: &Config) -> Self {
        let mut settings = Self {
            secure_cookies: config
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://")),
            public_url: config.public_url.clone(),
            connections: config.connections.clone(),
            hooks: config.hooks.clone(),
            secrets: Vec::new(),
        };
        if let Some(token) = &config.admin_token {
            settings.add_secret(token.expose());
        }
        for secret in config.endpoint_secrets.values() {
            settings.add_secret(secret.expose());
        }
        for connection in config.connections.values() {
            for value in connection_secrets(connection) {
                settings.add_secret(value.as_bytes());
            }
        }
        for rule in &config.rules {
            match &rule.action {
                ActionSpec::Http { headers, .. } => {
                    for value in headers.values() {
                        settings.add_secret(value.as_bytes());
                    }
                }
                ActionSpec::Slack { webhook_url, .. } => {
                    settings.add_secret(webhook_url.as_bytes());
                }
                #[allow(unreachable_patterns)] // action kinds added later are covered below
                _ => {}
            }
        }
        settings
    }

    /// Adds a value never to show (e.g. a secret an embedding application holds).
    pub fn add_secret(&mut self, value: &[u8]) {
        if value.len() >= MIN_REDACTED_LEN && !self.secrets.iter().any(|s| s == value) {
            self.secrets.push(value.to_vec());
        }
    }
}

/// The credential values of a connection, whatever its kind.
fn connection_secrets(connection: &ConnectionSection) -> Vec<&str> {
    let mut values = Vec::new();
    match connection {
        ConnectionSection::Github {
            token, private_key, ..
        } => values.extend([token.as_deref(), private_key.as_deref()]),
        ConnectionSection::Jira { token, .. }
        | ConnectionSection::Asana { token, .. }
        | ConnectionSection::Travis { token, .. } => values.push(token.as_deref()),
        ConnectionSection::Pagerduty { token, .. } => values.push(Some(token.as_str())),
        ConnectionSection::Slack { url } => values.push(Some(url.as_str())),
        ConnectionSection::Matrix { access_token, .. } => {
            values.push(Some(access_token.as_str()));
        }
        ConnectionSection::Webhook {
            secret, secrets, ..
        } => {
            values.push(secret.as_deref());
            values.extend(secrets.iter().map(|s| Some(s.as_str())));
        }
        ConnectionSection::Trello { key, token, .. } => {
            values.extend([Some(key.as_str()), Some(token.as_str())]);
        }
        ConnectionSection::JiraOauth2 { client_secret, .. }
        | ConnectionSection::AsanaOauth { client_secret, .. }
        | ConnectionSection::GithubOauth { client_secret, .. } => {
            values.push(Some(client_secret.as_str()));
        }
        ConnectionSection::JiraOauth1 { private_key, .. } => {
            values.push(Some(private_key.as_str()));
        }
        // Kinds added later: their credentials are still never rendered by any page; this
        // list is the backstop, not the protection.
        #[allow(unreachable_patterns)]
        _ => {}
    }
    values.into_iter().flatten().collect()
}

/// The dashboard's state within [`AppState`]: its settings, the sessions, the hooks report.
pub(crate) struct Ui {
    settings: UiSettings,
    sessions: session::Sessions,
    hooks_report: Mutex<Option<hooks::CachedReport>>,
}

impl Ui {
    pub(crate) fn new(settings: UiSettings) -> Self {
        Self {
            settings,
            sessions: session::Sessions::new(),
            hooks_report: Mutex::new(None),
        }
    }

    /// `html` with every configured secret and the admin token (raw or HTML-escaped)
    /// replaced by `[redacted]`.
    fn scrub(&self, mut html: String, admin_token: Option<&hookbridge_core::Secret>) -> String {
        let token = admin_token
            .map(|t| t.expose())
            .filter(|t| t.len() >= MIN_REDACTED_LEN);
        for secret in self.settings.secrets.iter().map(Vec::as_slice).chain(token) {
            let Ok(text) = std::str::from_utf8(secret) else {
                continue;
            };
            let escaped = maud::html! { (text) }.into_string();
            for form in [text, escaped.as_str()] {
                if html.contains(form) {
                    html = html.replace(form, "[redacted]");
                }
            }
        }
        html
    }
}

/// The dashboard's routes, `/ui` and below, to merge into the server's router.
pub(crate) fn router(state: AppState) -> Router {
    let signed_in = Router::new()
        .route("/", get(overview::page))
        .route("/deliveries", get(deliveries::list))
        .route("/deliveries/{seq}", get(deliveries::show))
        .route("/deliveries/{seq}/replay", post(deliveries::replay))
        .route("/jobs/{id}/replay", post(dead_letters::replay_one))
        .route("/dead-letters", get(dead_letters::list))
        .route("/dead-letters/replay", post(dead_letters::replay_many))
        .route("/rules", get(rules::page))
        .route("/rules/dry-run", post(rules::dry_run))
        .route("/hooks", get(hooks::page))
        .route("/links", get(links::page))
        .route("/logout", post(session::logout))
        // Inside the session layer: an unknown path sends a stranger to the login page too.
        .fallback(layout::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::require_session,
        ));
    let dashboard = Router::new()
        .route("/login", get(session::login_form).post(session::login))
        .route("/style.css", get(layout::stylesheet))
        .merge(signed_in);
    Router::new()
        // A nested router's `/` is `/ui` only: `/ui/` is routed here, to the same place.
        .route("/ui/", get(|| async { layout::redirect("/ui") }))
        .nest("/ui", dashboard)
        .with_state(state)
}

/// The configured endpoints, sorted by name.
fn endpoint_names(state: &AppState) -> Vec<String> {
    let mut names: Vec<String> = state
        .endpoints()
        .map(|e: &Endpoint| e.name.as_str().to_owned())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_scrubbed_of_configured_secrets() {
        let mut settings = UiSettings::default();
        settings.add_secret(b"s3cr&t-value-123");
        settings.add_secret(b"short");
        let ui = Ui::new(settings);
        let token = hookbridge_core::Secret::new("admin-token-0123456789");
        let page = "<p>s3cr&t-value-123 s3cr&amp;t-value-123 admin-token-0123456789 short</p>";
        assert_eq!(
            ui.scrub(page.to_owned(), Some(&token)),
            "<p>[redacted] [redacted] [redacted] short</p>"
        );
    }
}
