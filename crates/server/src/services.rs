//! What a configuration connects to: the API clients of `[connections]` and the built-in
//! integrations of `[[integrations]]` built with them, shared by the engine, the admin API
//! and CLI commands such as `rescan` and `routes`.

use std::sync::Arc;

use hookbridge_providers::api::{ApiError, Authenticate};
use hookbridge_sync_engine::integrations::{self, Connections, Integration};
use hookbridge_sync_engine::store::Store;

use crate::connections::{Logins, NoLogins};
use crate::oauth::{OAuth, StoredLogins};
use crate::{Config, ConfigError};

/// The clients and integrations of a configuration.
pub struct Services {
    connections: Connections,
    integrations: Vec<Integration>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("connections", &self.connections)
            .field("integrations", &self.integrations)
            .finish()
    }
}

impl Services {
    /// Builds every connection's client and every integration. Calls no service: a
    /// connection using an OAuth login loads its tokens from `store` on first use. Fails when
    /// OAuth logins are configured without `HOOKBRIDGE_TOKEN_KEY`, or an integration's
    /// settings are wrong.
    pub fn build(config: &Config, store: Arc<dyn Store>) -> Result<Self, ConfigError> {
        let oauth = OAuth::from_connections(&config.connections)?.map(Arc::new);
        Self::build_with_oauth(config, store, oauth)
    }

    /// Like [`Services::build`], with the OAuth logins the caller already built (the server
    /// serves their `/oauth/` routes with the same ones).
    pub fn build_with_oauth(
        config: &Config,
        store: Arc<dyn Store>,
        oauth: Option<Arc<OAuth>>,
    ) -> Result<Self, ConfigError> {
        let logins: Box<dyn Logins> = match oauth {
            Some(oauth) => Box::new(StoredLogins::new(oauth, store)),
            None => Box::new(NoLogins),
        };
        Self::build_with(config, logins.as_ref())
    }

    /// Builds everything [`Services::build`] does without a store, to check a configuration
    /// (`hookbridge check-config`): the clients of connections using an OAuth login refuse
    /// every call.
    pub fn check(config: &Config) -> Result<Self, ConfigError> {
        // Fails when logins are configured and the token key is missing or malformed.
        OAuth::from_connections(&config.connections)?;
        Self::build_with(config, &CheckOnly)
    }

    fn build_with(config: &Config, logins: &dyn Logins) -> Result<Self, ConfigError> {
        let connections = crate::connections::build(&config.connections, logins)?;
        let mut built: Vec<Integration> = Vec::new();
        for (name, settings) in &config.integrations {
            let integration =
                integrations::build(name, settings.clone(), &connections).map_err(|e| {
                    ConfigError::Invalid {
                        key: "integrations",
                        message: e.to_string(),
                    }
                })?;
            built.push(integration);
        }
        Ok(Self {
            connections,
            integrations: built,
        })
    }

    /// The API clients, by connection name.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// The integrations, in configuration order.
    pub fn integrations(&self) -> &[Integration] {
        &self.integrations
    }

    /// The integration named `name`.
    pub fn integration(&self, name: &str) -> Option<&Integration> {
        self.integrations.iter().find(|i| i.name == name)
    }
}

/// Logins for a configuration check: known by name, never usable.
struct CheckOnly;

struct Unusable;

#[async_trait::async_trait]
impl Authenticate for Unusable {
    async fn authenticate(
        &self,
        _request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ApiError> {
        Err(ApiError::Config {
            service: "oauth",
            message: "a configuration check loads no login".into(),
        })
    }
}

impl Logins for CheckOnly {
    fn authenticator(&self, _name: &str) -> Result<Arc<dyn Authenticate>, String> {
        Ok(Arc::new(Unusable))
    }
}
