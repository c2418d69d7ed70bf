//! `[connections.<name>]`: the credentials hookbridge calls services with, and the API
//! clients built from them for integrations, rules and `hooks sync`.
//!
//! A connection either holds its credentials (a token, an app key) or names an OAuth login
//! connection (`login = "<name>"`) whose tokens `/oauth/<name>/login` stored, encrypted, in
//! the store; those are loaded on first use and refreshed when they expire.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hookbridge_core::Secret;
use hookbridge_providers::api::{ApiError, Authenticate, RetryPolicy};
use hookbridge_providers::asana::client::AsanaClient;
use hookbridge_providers::github::client::{GithubClient, GithubClientSettings, GithubCredentials};
use hookbridge_providers::jira::client::{ApiVersion, Deployment, JiraClient, JiraSettings};
use hookbridge_providers::pagerduty::auth::PagerdutyCredentials;
use hookbridge_providers::pagerduty::client::{PagerdutyClient, PagerdutySettings};
use hookbridge_providers::sinks::matrix::MatrixRoom;
use hookbridge_providers::sinks::slack::SlackWebhook;
use hookbridge_providers::sinks::webhook::SignedWebhook;
use hookbridge_providers::travis::client::{TravisClient, TravisSettings};
use hookbridge_providers::trello::auth::TrelloCredentials;
use hookbridge_providers::trello::client::{TrelloClient, TrelloSettings};
use hookbridge_sync_engine::integrations::Connections;
use serde::Deserialize;

use crate::ConfigError;

/// `[connections.<name>]`: credentials to call a service's API, tagged by `kind`.
#[derive(Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ConnectionSection {
    /// GitHub with a token, as a GitHub App installation, or with an OAuth login.
    Github {
        /// The API base URL (GitHub Enterprise: `https://HOST/api/v3`).
        #[serde(default = "github_base")]
        base_url: String,
        /// A personal access token (it must be allowed to administer hooks for `hooks sync`).
        token: Option<String>,
        /// A GitHub App's client id or app id (with `private_key` and `installation_id`).
        app_id: Option<String>,
        /// The GitHub App's private key, PEM.
        private_key: Option<String>,
        /// The installation to act as.
        installation_id: Option<u64>,
        /// A `github-oauth` connection whose stored login to use.
        login: Option<String>,
        /// The login the bot writes as (`name[bot]` for an app), to recognise its own
        /// comments; looked up when absent.
        bot_login: Option<String>,
    },
    /// Jira Cloud or Data Center.
    Jira {
        /// The site (`https://your-domain.atlassian.net`, `https://jira.example.com/jira`), or
        /// with an OAuth 2.0 login `https://api.atlassian.com/ex/jira/<cloud id>`.
        base_url: String,
        /// Cloud: the account's email, sent with `token` (an API token) as HTTP basic.
        email: Option<String>,
        /// An API token (with `email`), or alone a Data Center personal access token.
        token: Option<String>,
        /// A `jira-oauth2` or `jira-oauth1` connection whose stored login to use.
        login: Option<String>,
        /// `cloud` or `data_center`; inferred from `base_url` when absent.
        deployment: Option<Deployment>,
        /// 2 or 3; 3 on Cloud and 2 on Data Center when absent.
        api_version: Option<ApiVersion>,
    },
    /// PagerDuty's REST API.
    Pagerduty {
        /// The API base URL.
        #[serde(default = "pagerduty_base")]
        base_url: String,
        /// A REST API key (`Authorization: Token token=...`).
        token: String,
        /// The email sent as `From` with writes (required with account-level keys).
        from: Option<String>,
    },
    /// Asana with a personal access token or an OAuth login.
    Asana {
        /// The API base URL.
        #[serde(default = "asana_base")]
        base_url: String,
        /// A personal access token.
        token: Option<String>,
        /// An `asana-oauth` connection whose stored login to use.
        login: Option<String>,
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
    /// Travis CI's API v3 (public data needs no token).
    Travis {
        /// The API base URL.
        #[serde(default = "travis_base")]
        base_url: String,
        /// An API token.
        token: Option<String>,
    },
    /// A Slack incoming webhook (a chat target).
    Slack {
        /// The webhook URL (it is the credential).
        url: String,
    },
    /// A Matrix room (a chat target).
    Matrix {
        /// The homeserver's base URL.
        homeserver: String,
        /// The room id (`!abc:example.org`).
        room_id: String,
        /// The bot account's access token.
        access_token: String,
    },
    /// An outgoing webhook signed as Standard Webhooks (a chat target).
    Webhook {
        /// Where to POST.
        url: String,
        /// The signing secret (`whsec_...` or raw); more in `secrets` during a rotation.
        secret: Option<String>,
        /// Signing secrets: every one signs (receivers accept any).
        #[serde(default)]
        secrets: Vec<String>,
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
    /// Whether this connection is only an OAuth login (`/oauth/<name>/...`), whose stored
    /// tokens other connections use with `login = "<name>"`.
    pub fn is_oauth(&self) -> bool {
        matches!(
            self,
            ConnectionSection::JiraOauth2 { .. }
                | ConnectionSection::JiraOauth1 { .. }
                | ConnectionSection::AsanaOauth { .. }
                | ConnectionSection::GithubOauth { .. }
        )
    }

    /// The kind as written in configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectionSection::Github { .. } => "github",
            ConnectionSection::Jira { .. } => "jira",
            ConnectionSection::Pagerduty { .. } => "pagerduty",
            ConnectionSection::Asana { .. } => "asana",
            ConnectionSection::Trello { .. } => "trello",
            ConnectionSection::Travis { .. } => "travis",
            ConnectionSection::Slack { .. } => "slack",
            ConnectionSection::Matrix { .. } => "matrix",
            ConnectionSection::Webhook { .. } => "webhook",
            ConnectionSection::JiraOauth2 { .. } => "jira-oauth2",
            ConnectionSection::JiraOauth1 { .. } => "jira-oauth1",
            ConnectionSection::AsanaOauth { .. } => "asana-oauth",
            ConnectionSection::GithubOauth { .. } => "github-oauth",
        }
    }

    /// The OAuth login connection this one uses, and the login kinds it accepts.
    fn login(&self) -> Option<(&str, &'static [&'static str])> {
        match self {
            ConnectionSection::Github { login, .. } => {
                login.as_deref().map(|l| (l, &["github-oauth"][..]))
            }
            ConnectionSection::Jira { login, .. } => login
                .as_deref()
                .map(|l| (l, &["jira-oauth2", "jira-oauth1"][..])),
            ConnectionSection::Asana { login, .. } => {
                login.as_deref().map(|l| (l, &["asana-oauth"][..]))
            }
            _ => None,
        }
    }
}

impl std::fmt::Debug for ConnectionSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only what identifies the connection: never a credential, nor a URL that is one.
        match self {
            ConnectionSection::Github { base_url, .. }
            | ConnectionSection::Jira { base_url, .. }
            | ConnectionSection::Pagerduty { base_url, .. }
            | ConnectionSection::Asana { base_url, .. }
            | ConnectionSection::Trello { base_url, .. }
            | ConnectionSection::Travis { base_url, .. }
            | ConnectionSection::JiraOauth1 { base_url, .. } => {
                write!(f, "{}({base_url})", self.kind())
            }
            ConnectionSection::Matrix { homeserver, .. } => write!(f, "matrix({homeserver})"),
            ConnectionSection::Slack { .. } | ConnectionSection::Webhook { .. } => {
                write!(f, "{}([redacted])", self.kind())
            }
            ConnectionSection::JiraOauth2 { client_id, .. }
            | ConnectionSection::AsanaOauth { client_id, .. }
            | ConnectionSection::GithubOauth { client_id, .. } => {
                write!(f, "{}({client_id})", self.kind())
            }
        }
    }
}

fn github_base() -> String {
    hookbridge_providers::github::client::DEFAULT_BASE_URL.into()
}
fn trello_base() -> String {
    hookbridge_providers::trello::client::DEFAULT_BASE_URL.into()
}
fn pagerduty_base() -> String {
    hookbridge_providers::pagerduty::client::DEFAULT_BASE_URL.into()
}
fn asana_base() -> String {
    hookbridge_providers::asana::client::DEFAULT_BASE_URL.into()
}
fn travis_base() -> String {
    hookbridge_providers::travis::client::DEFAULT_API_URL.into()
}

/// Checks what can be checked without building clients: each connection's credentials are
/// given one way, and `login` names an OAuth connection of a matching kind.
pub(crate) fn check(connections: &BTreeMap<String, ConnectionSection>) -> Result<(), ConfigError> {
    for (name, section) in connections {
        let fail = |message: String| ConfigError::Invalid {
            key: "connections",
            message: format!("{name}: {message}"),
        };
        if let Some((login, kinds)) = section.login() {
            match connections.get(login) {
                Some(target) if kinds.contains(&target.kind()) => {}
                Some(target) => {
                    return Err(fail(format!(
                        "login = {login:?} is a {} connection; expected {}",
                        target.kind(),
                        kinds.join(" or ")
                    )));
                }
                None => return Err(fail(format!("login = {login:?}: no such connection"))),
            }
        }
        match section {
            ConnectionSection::Github {
                token,
                app_id,
                private_key,
                installation_id,
                login,
                ..
            } => {
                let app = app_id.is_some() || private_key.is_some() || installation_id.is_some();
                let ways =
                    usize::from(token.is_some()) + usize::from(app) + usize::from(login.is_some());
                if ways != 1 {
                    return Err(fail(
                        "give exactly one of token, app_id + private_key + installation_id, or login"
                            .into(),
                    ));
                }
                if app && (app_id.is_none() || private_key.is_none() || installation_id.is_none()) {
                    return Err(fail(
                        "a GitHub App needs app_id, private_key and installation_id".into(),
                    ));
                }
            }
            ConnectionSection::Jira {
                email,
                token,
                login,
                ..
            } => {
                if login.is_some() == token.is_some() {
                    return Err(fail(
                        "give either token (with email on Cloud) or login".into(),
                    ));
                }
                if email.is_some() && token.is_none() {
                    return Err(fail("email needs token (an API token)".into()));
                }
            }
            ConnectionSection::Asana { token, login, .. } if login.is_some() == token.is_some() => {
                return Err(fail("give either token or login".into()));
            }
            ConnectionSection::Webhook {
                secret, secrets, ..
            } if secret.is_none() && secrets.is_empty() => {
                return Err(fail("a webhook target needs a signing secret".into()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Supplies the credentials of OAuth logins (`login = "<name>"`): tokens stored by
/// `/oauth/<name>/callback`, refreshed when they expire.
pub trait Logins {
    /// The authenticator for the login connection `name`.
    fn authenticator(&self, name: &str) -> Result<Arc<dyn Authenticate>, String>;
}

/// No OAuth logins configured.
pub struct NoLogins;

impl Logins for NoLogins {
    fn authenticator(&self, name: &str) -> Result<Arc<dyn Authenticate>, String> {
        Err(format!(
            "OAuth login {name:?} is not available (is {} set?)",
            crate::oauth::TOKEN_KEY_ENV
        ))
    }
}

fn client_retry() -> RetryPolicy {
    RetryPolicy::default()
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the API client of every non-login connection. Builds only: nothing is called.
pub fn build(
    connections: &BTreeMap<String, ConnectionSection>,
    logins: &dyn Logins,
) -> Result<Connections, ConfigError> {
    let mut out = Connections::default();
    for (name, section) in connections {
        let fail = |message: String| ConfigError::Invalid {
            key: "connections",
            message: format!("{name}: {message}"),
        };
        let api = |e: ApiError| fail(e.to_string());
        let login = |login: &str| logins.authenticator(login).map_err(fail);
        out = match section {
            ConnectionSection::Github {
                base_url,
                token,
                app_id,
                private_key,
                installation_id,
                login: login_name,
                bot_login,
            } => {
                let client = if let Some(login_name) = login_name {
                    let client = GithubClient::new(
                        hookbridge_providers::github::client::api_builder(base_url)
                            .map_err(api)?
                            .retry(client_retry())
                            .timeout(TIMEOUT)
                            .auth_arc(login(login_name)?)
                            .build()
                            .map_err(api)?,
                    );
                    match bot_login {
                        Some(bot) => client.with_bot_login(bot.clone()),
                        None => client,
                    }
                } else {
                    let credentials = match (token, app_id, private_key, installation_id) {
                        (Some(token), ..) => GithubCredentials::Token(Secret::new(token.as_str())),
                        (None, Some(app_id), Some(key), Some(installation_id)) => {
                            GithubCredentials::App {
                                app_id: app_id.clone(),
                                private_key_pem: Secret::new(key.as_str()),
                                installation_id: *installation_id,
                            }
                        }
                        _ => return Err(fail("no credentials".into())),
                    };
                    GithubClient::from_settings(&GithubClientSettings {
                        base_url: base_url.clone(),
                        credentials,
                        bot_login: bot_login.clone(),
                        retry: client_retry(),
                        timeout: TIMEOUT,
                    })
                    .map_err(api)?
                };
                out.with_github(name.clone(), client)
            }
            ConnectionSection::Jira {
                base_url,
                email,
                token,
                login: login_name,
                deployment,
                api_version,
            } => {
                let auth: Arc<dyn Authenticate> = match (login_name, email, token) {
                    (Some(l), ..) => login(l)?,
                    (None, Some(email), Some(token)) => {
                        Arc::new(hookbridge_providers::jira::auth::api_token(
                            email.clone(),
                            Secret::new(token.as_str()),
                        ))
                    }
                    (None, None, Some(token)) => {
                        Arc::new(hookbridge_providers::jira::auth::personal_access_token(
                            Secret::new(token.as_str()),
                        ))
                    }
                    _ => return Err(fail("no credentials".into())),
                };
                let mut settings = JiraSettings::new(base_url.clone());
                settings.deployment = *deployment;
                settings.api_version = *api_version;
                out.with_jira(
                    name.clone(),
                    JiraClient::from_settings(&settings, auth).map_err(api)?,
                )
            }
            ConnectionSection::Pagerduty {
                base_url,
                token,
                from,
            } => {
                let mut settings = PagerdutySettings::new(PagerdutyCredentials::ApiKey(
                    Secret::new(token.as_str()),
                ))
                .base_url(base_url.clone());
                if let Some(from) = from {
                    settings = settings.from(from.clone());
                }
                out.with_pagerduty(
                    name.clone(),
                    PagerdutyClient::from_settings(settings).map_err(api)?,
                )
            }
            ConnectionSection::Asana {
                base_url,
                token,
                login: login_name,
            } => {
                let client = match (token, login_name) {
                    (Some(token), _) => {
                        AsanaClient::personal_access_token(base_url, Secret::new(token.as_str()))
                            .map_err(api)?
                    }
                    (None, Some(l)) => AsanaClient::new(
                        hookbridge_providers::asana::client::api_builder(base_url)
                            .map_err(api)?
                            .auth_arc(login(l)?)
                            .build()
                            .map_err(api)?,
                    ),
                    (None, None) => return Err(fail("no credentials".into())),
                };
                out.with_asana(name.clone(), client)
            }
            ConnectionSection::Trello {
                base_url,
                key,
                token,
            } => out.with_trello(
                name.clone(),
                TrelloClient::from_settings(TrelloSettings {
                    base_url: base_url.clone(),
                    credentials: TrelloCredentials {
                        key: Secret::new(key.as_str()),
                        token: Secret::new(token.as_str()),
                    },
                    retry: client_retry(),
                    timeout: TIMEOUT,
                })
                .map_err(api)?,
            ),
            ConnectionSection::Travis { base_url, token } => {
                let settings = TravisSettings::new(token.as_deref().map(Secret::new))
                    .api_url(base_url.clone());
                out.with_travis(
                    name.clone(),
                    TravisClient::from_settings(settings).map_err(api)?,
                )
            }
            ConnectionSection::Slack { url } => out.with_notifier(
                name.clone(),
                Arc::new(SlackWebhook::new(Secret::new(url.as_str())).map_err(api)?),
            ),
            ConnectionSection::Matrix {
                homeserver,
                room_id,
                access_token,
            } => out.with_notifier(
                name.clone(),
                Arc::new(
                    MatrixRoom::new(homeserver, room_id, Secret::new(access_token.as_str()))
                        .map_err(api)?,
                ),
            ),
            ConnectionSection::Webhook {
                url,
                secret,
                secrets,
            } => {
                let secrets = secret
                    .iter()
                    .chain(secrets)
                    .map(|s| Secret::new(s.as_str()))
                    .collect();
                out.with_notifier(
                    name.clone(),
                    Arc::new(SignedWebhook::new(url, secrets).map_err(api)?),
                )
            }
            ConnectionSection::JiraOauth2 { .. }
            | ConnectionSection::JiraOauth1 { .. }
            | ConnectionSection::AsanaOauth { .. }
            | ConnectionSection::GithubOauth { .. } => out,
        };
    }
    Ok(out)
}
