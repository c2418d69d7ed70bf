//! The TOML configuration file: server settings, the store, and the endpoints.
//!
//! Every secret can come from the environment or a file, so the file itself can be
//! committed. Unknown keys are errors: a typo must not silently disable a setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::connections::ConnectionSection;
use crate::hooks::HookSection;
use hookbridge_core::{EndpointName, Provider, Secret};
use hookbridge_providers::github::client::InvalidRepo;
use hookbridge_sync_engine::engine::{
    Backoff, CircuitConfig, DeclarativeRule, EngineConfig, RateLimit, Rule, RuleSpec, SelfActor,
};
use hookbridge_sync_engine::heal::{GithubHook, HealSettings, HealTarget};
use hookbridge_sync_engine::integrations::IntegrationConfig;
use hookbridge_sync_engine::store::{
    PostgresOptions, PostgresStore, SqliteOptions, SqliteStore, Store, StoreError, Synchronous,
};
use serde::Deserialize;

/// The largest body accepted by default: GitHub caps payloads at 25 MB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 25 * 1024 * 1024;

/// A configuration problem, with the key or endpoint it concerns. Never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the schema.
    #[error("invalid config{}: {message}", .path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Syntax {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// The parser's message, with line and column.
        message: String,
    },
    /// An endpoint's settings are wrong.
    #[error("endpoint {endpoint:?}: {message}")]
    Endpoint {
        /// The endpoint.
        endpoint: String,
        /// What is wrong.
        message: String,
    },
    /// The configuration has no endpoint.
    #[error("no endpoint is configured: add at least one [endpoints.<name>] table")]
    NoEndpoints,
    /// A setting is out of range.
    #[error("{key}: {message}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The whole configuration file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// HTTP server settings.
    #[serde(default)]
    pub server: ServerSection,
    /// Where deliveries are stored.
    #[serde(default)]
    pub store: StoreSection,
    /// Log output.
    #[serde(default)]
    pub log: LogSection,
    /// Endpoints by name: `POST /hooks/{name}`.
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointSection>,
    /// The sync engine's settings.
    #[serde(default)]
    pub engine: EngineSection,
    /// The admin API.
    #[serde(default)]
    pub admin: AdminSection,
    /// Declarative rules (`[[rules]]`); see `RuleSpec`. Kept as TOML here so that secret
    /// values in them (`{ env = "..." }`) are resolved before the rules are built.
    #[serde(default)]
    pub rules: Vec<toml::Table>,
    /// API credentials by name, for `hooks sync` (values may be `{ env = "..." }`).
    #[serde(default)]
    pub connections: BTreeMap<String, toml::Table>,
    /// Webhooks that should be registered at the services (`hookbridge hooks sync`).
    #[serde(default)]
    pub hooks: Vec<HookSection>,
    /// Built-in integrations (`[[integrations]]`): a `name`, a `kind` and the kind's settings
    /// (see `hookbridge_sync_engine::integrations`). Kept as TOML until secrets are resolved.
    #[serde(default)]
    pub integrations: Vec<toml::Table>,
    /// Where operational alerts go (dead letters, open circuits).
    #[serde(default)]
    pub alerts: AlertsSection,
}

/// `[alerts]`: a chat sink notified once per episode (not per job) when dead letters
/// appear and clear, and when a target's circuit opens and closes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// The connection alerts are posted to: one of kind `slack`, `matrix` or `webhook`.
    /// Without it, nothing is posted (the metrics still say everything).
    pub target: Option<String>,
    /// How often dead letters, the oldest unfinished delivery and the circuits are looked
    /// at (and their gauges refreshed), in milliseconds.
    #[serde(default = "default_alerts_interval_ms")]
    pub interval_ms: u64,
}

impl Default for AlertsSection {
    fn default() -> Self {
        Self {
            target: None,
            interval_ms: default_alerts_interval_ms(),
        }
    }
}

fn default_alerts_interval_ms() -> u64 {
    10_000
}

/// The checked `[alerts]` section.
#[derive(Clone, Debug)]
pub struct AlertsConfig {
    /// The chat connection alerts are posted to, if any.
    pub target: Option<String>,
    /// How often the conditions are checked.
    pub interval: Duration,
}

/// `[engine]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// Jobs run at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Attempts before a job is dead-lettered.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay scale, in milliseconds.
    #[serde(default = "default_backoff_base_ms")]
    pub backoff_base_ms: u64,
    /// Longest retry delay, in seconds.
    #[serde(default = "default_backoff_max_secs")]
    pub backoff_max_secs: u64,
    /// How long a worker holds a job, in seconds.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// How often to look for work not signalled (due retries, other instances), in ms.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How long a write's echo mark counts, in seconds.
    #[serde(default = "default_echo_ttl_secs")]
    pub echo_ttl_secs: u64,
    /// Accounts of hookbridge's own, whose events are skipped.
    #[serde(default)]
    pub self_actors: Vec<SelfActorSection>,
    /// Rate limits by target (a service name, or an HTTP action's host).
    #[serde(default)]
    pub rate_limits: BTreeMap<String, RateLimitSection>,
    /// Consecutive transient failures of calls to one target that open its circuit: its
    /// jobs then wait for the cool-down instead of burning their attempts (0: off).
    #[serde(default = "default_circuit_failures")]
    pub circuit_failures: u32,
    /// How long an open circuit pauses its target's jobs before one probe, in seconds.
    #[serde(default = "default_circuit_cooldown_secs")]
    pub circuit_cooldown_secs: u64,
}

fn default_circuit_failures() -> u32 {
    5
}
fn default_circuit_cooldown_secs() -> u64 {
    60
}

impl Default for EngineSection {
    fn default() -> Self {
        toml::from_str("").unwrap_or_else(|_| unreachable!("every engine key has a default"))
    }
}

fn default_concurrency() -> usize {
    8
}
fn default_max_attempts() -> u32 {
    8
}
fn default_backoff_base_ms() -> u64 {
    2000
}
fn default_backoff_max_secs() -> u64 {
    900
}
fn default_lease_secs() -> u64 {
    300
}
fn default_poll_interval_ms() -> u64 {
    1000
}
fn default_echo_ttl_secs() -> u64 {
    600
}

/// `[[engine.self_actors]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfActorSection {
    /// Provider kind.
    pub provider: String,
    /// Login, account id or name.
    pub name: String,
}

/// `[engine.rate_limits.<target>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    /// Sustained calls per second.
    pub per_second: f64,
    /// Burst size.
    #[serde(default = "default_burst")]
    pub burst: u32,
}

fn default_burst() -> u32 {
    1
}

/// `[admin]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// The bearer token of the admin API; without it the admin API is off.
    pub token: Option<SecretSource>,
}

/// `[server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes, unless an endpoint sets its own.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    /// Time allowed to receive a whole request body, in seconds.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_secs: u64,
    /// Time allowed for in-flight requests to finish on shutdown, in seconds.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: u64,
    /// The URL where the services reach this server (`/hooks/<endpoint>` is appended), for
    /// `hookbridge hooks sync`.
    pub public_url: Option<String>,
    /// Time allowed to send request headers, in seconds; it also closes keep-alive
    /// connections idle that long (keep a load balancer's idle timeout below it).
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
    /// Connections served at once; more wait in the kernel's accept queue.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            max_body_bytes: default_max_body(),
            body_timeout_secs: default_body_timeout(),
            shutdown_grace_secs: default_shutdown_grace(),
            header_timeout_secs: default_header_timeout(),
            max_connections: default_max_connections(),
            public_url: None,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_max_body() -> u64 {
    DEFAULT_MAX_BODY_BYTES
}
fn default_body_timeout() -> u64 {
    10
}
fn default_shutdown_grace() -> u64 {
    20
}
fn default_header_timeout() -> u64 {
    30
}
fn default_max_connections() -> usize {
    1024
}

/// `[store]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `sqlite` (default) or `postgres`.
    #[serde(default)]
    pub kind: StoreKind,
    /// SQLite: the database file; relative paths are relative to the config file's directory.
    pub path: Option<PathBuf>,
    /// SQLite: `full` (default) or `normal`.
    pub synchronous: Option<Synchronous>,
    /// PostgreSQL: the connection URL (a secret: it may hold a password).
    pub url: Option<SecretSource>,
    /// PostgreSQL: the schema hookbridge's tables live in (default `hookbridge`).
    pub schema: Option<String>,
    /// PostgreSQL: pooled connections per instance (default 10).
    pub max_connections: Option<u32>,
}

/// The store backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The embedded SQLite store.
    #[default]
    Sqlite,
    /// PostgreSQL, for several instances sharing the work.
    Postgres,
}

/// Where the store is, checked.
pub enum StoreConfig {
    /// The embedded SQLite store.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// Durability of commits.
        synchronous: Synchronous,
    },
    /// PostgreSQL.
    Postgres {
        /// The connection URL.
        url: Secret,
        /// The schema.
        schema: String,
        /// Pooled connections.
        max_connections: u32,
    },
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::fmt::Display for StoreConfig {
    /// Where the store is, for messages: never the URL, which may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreConfig::Sqlite { path, .. } => write!(f, "sqlite at {}", path.display()),
            StoreConfig::Postgres { schema, .. } => write!(f, "postgres (schema {schema})"),
        }
    }
}

impl StoreConfig {
    /// Opens the store (running its migrations).
    pub async fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            StoreConfig::Sqlite { path, synchronous } => {
                let options = SqliteOptions {
                    synchronous: *synchronous,
                    ..SqliteOptions::default()
                };
                Arc::new(SqliteStore::open(path, options).await?)
            }
            StoreConfig::Postgres {
                url,
                schema,
                max_connections,
            } => {
                let url = std::str::from_utf8(url.expose()).map_err(|_| StoreError::Location {
                    path: "store.url".into(),
                    message: "the URL is not UTF-8".into(),
                })?;
                let options = PostgresOptions {
                    max_connections: *max_connections,
                    schema: Some(schema.clone()),
                    ..PostgresOptions::default()
                };
                Arc::new(PostgresStore::connect(url, options).await?)
            }
        })
    }
}

fn store_config(section: StoreSection, base_dir: &Path) -> Result<StoreConfig, ConfigError> {
    let invalid = |message: &str| ConfigError::Invalid {
        key: "store",
        message: message.to_owned(),
    };
    match section.kind {
        StoreKind::Sqlite => {
            if section.url.is_some()
                || section.schema.is_some()
                || section.max_connections.is_some()
            {
                return Err(invalid(
                    "url, schema and max_connections are PostgreSQL settings; set kind = \"postgres\"",
                ));
            }
            let path = section
                .path
                .unwrap_or_else(|| PathBuf::from("hookbridge-data/hookbridge.db"));
            Ok(StoreConfig::Sqlite {
                path: base_dir.join(path),
                synchronous: section.synchronous.unwrap_or_default(),
            })
        }
        StoreKind::Postgres => {
            if section.path.is_some() || section.synchronous.is_some() {
                return Err(invalid("path and synchronous are SQLite settings"));
            }
            let url = section
                .url
                .ok_or_else(|| invalid("kind = \"postgres\" needs url, e.g. url = { env = \"HOOKBRIDGE_DATABASE_URL\" }"))?
                .resolve(base_dir)
                .map_err(|m| invalid(&format!("url: {m}")))?;
            let schema = section.schema.unwrap_or_else(|| "hookbridge".into());
            if schema.is_empty()
                || !schema
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(invalid("schema must be letters, digits and '_'"));
            }
            let max_connections = section.max_connections.unwrap_or(10);
            if max_connections == 0 {
                return Err(invalid("max_connections must be greater than 0"));
            }
            Ok(StoreConfig::Postgres {
                url,
                schema,
                max_connections,
            })
        }
    }
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `text` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `hookbridge=debug`; `HOOKBRIDGE_LOG` overrides it.
    pub filter: Option<String>,
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[endpoints.<name>]`: the provider and its secrets; other keys are the provider's options.
#[derive(Debug, Deserialize)]
pub struct EndpointSection {
    /// Provider kind, e.g. `github`.
    pub provider: String,
    /// One secret.
    pub secret: Option<SecretSource>,
    /// Several secrets, all accepted (for rotation).
    #[serde(default)]
    pub secrets: Vec<SecretSource>,
    /// Largest body for this endpoint, in bytes.
    pub max_body_bytes: Option<u64>,
    /// Healing gaps from the service's delivery log (`heal = { connection = "gh", ... }`);
    /// never passed to the provider.
    #[serde(default)]
    pub heal: Option<HealSection>,
    /// Provider-specific options (e.g. GitHub's `allow_sha1`).
    #[serde(flatten)]
    pub options: toml::Table,
}

/// `heal = { ... }` of `[endpoints.<name>]`: fetch back what the service logged as failed
/// (see `hookbridge_sync_engine::heal`). On when it names a connection, unless
/// `enabled = false`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealSection {
    /// The connection that reads the service (`[connections.<name>]`, of the endpoint's
    /// provider kind).
    pub connection: Option<String>,
    /// GitHub: the repository whose hook delivers here, `owner/name` (default: the
    /// `[[hooks]]` declaration of this endpoint).
    pub repository: Option<String>,
    /// GitHub: the organization whose hook delivers here.
    pub org: Option<String>,
    /// GitHub: the GitHub App's webhook (the connection holds the app's credentials).
    #[serde(default)]
    pub app: bool,
    /// GitHub: the hook's id (default: the repository's or organization's hook whose URL is
    /// `<server.public_url>/hooks/<endpoint>`).
    pub hook_id: Option<u64>,
    /// Seconds between runs (the first is at start-up).
    #[serde(default = "default_heal_interval_secs")]
    pub interval_secs: u64,
    /// The most deliveries asked for (or ingested) per run.
    #[serde(default = "default_heal_max_per_run")]
    pub max_per_run: u32,
    /// `false` turns healing off while keeping the settings.
    pub enabled: Option<bool>,
}

fn default_heal_interval_secs() -> u64 {
    600
}
fn default_heal_max_per_run() -> u32 {
    100
}

/// Where a secret comes from: a literal string, `{ env = "NAME" }` or `{ file = "path" }`.
#[derive(Clone, Deserialize)]
#[serde(untagged)]
pub enum SecretSource {
    /// Written in the file (fine for development; prefer `env` or `file`).
    Literal(String),
    /// Read from an environment variable at start-up.
    Env {
        /// The variable's name.
        env: String,
    },
    /// Read from a file (e.g. a mounted secret); one trailing newline is removed.
    File {
        /// The file; relative to the config file's directory.
        file: PathBuf,
    },
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Literal(_) => f.write_str("Literal([redacted])"),
            SecretSource::Env { env } => write!(f, "Env({env})"),
            SecretSource::File { file } => write!(f, "File({})", file.display()),
        }
    }
}

impl SecretSource {
    /// Resolves the secret's value.
    pub fn resolve(&self, base_dir: &Path) -> Result<Secret, String> {
        match self {
            SecretSource::Literal(value) => Ok(Secret::new(value.as_bytes())),
            SecretSource::Env { env } => match std::env::var(env) {
                Ok(value) => Ok(Secret::new(value)),
                Err(std::env::VarError::NotPresent) => {
                    Err(format!("environment variable {env} is not set"))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(format!("environment variable {env} is not valid UTF-8"))
                }
            },
            SecretSource::File { file } => {
                let path = base_dir.join(file);
                let mut bytes = std::fs::read(&path)
                    .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
                if bytes.last() == Some(&b'\n') {
                    bytes.pop();
                    if bytes.last() == Some(&b'\r') {
                        bytes.pop();
                    }
                }
                Ok(Secret::new(bytes))
            }
        }
    }
}

/// A configured endpoint, ready to receive.
#[derive(Clone)]
pub struct Endpoint {
    /// Its name.
    pub name: EndpointName,
    /// Its provider, holding its secrets.
    pub provider: Arc<dyn Provider>,
    /// Largest body accepted.
    pub max_body_bytes: u64,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("provider", &self.provider.kind())
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

/// The configuration, checked and with secrets resolved.
#[derive(Debug)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Body read timeout.
    pub body_timeout: Duration,
    /// Shutdown grace period.
    pub shutdown_grace: Duration,
    /// Header read (and keep-alive idle) timeout.
    pub header_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// The store.
    pub store: StoreConfig,
    /// Log settings.
    pub log: LogSection,
    /// Endpoints by name.
    pub endpoints: BTreeMap<EndpointName, Endpoint>,
    /// Engine settings.
    pub engine: EngineConfig,
    /// Rate limits by target.
    pub rate_limits: Vec<(String, RateLimit)>,
    /// Declarative rules, checked.
    pub rules: Vec<RuleSpec>,
    /// The admin API's bearer token; `None`: the admin API is off.
    pub admin_token: Option<Secret>,
    /// API connections by name.
    pub connections: BTreeMap<String, ConnectionSection>,
    /// Built-in integrations by name, checked for syntax (built with their connections by
    /// [`crate::services::Services::build`]).
    pub integrations: Vec<(String, IntegrationConfig)>,
    /// Declared webhooks.
    pub hooks: Vec<HookSection>,
    /// The public URL of this server.
    pub public_url: Option<String>,
    /// The endpoints' healers' settings (`heal = { ... }`).
    pub heal: Vec<HealSettings>,
    /// The first (current) secret of each endpoint, to register webhooks with.
    pub endpoint_secrets: BTreeMap<String, Secret>,
    /// Where the configuration came from, for messages.
    pub source: String,
    /// The circuit breaker per downstream target (`[engine] circuit_failures`,
    /// `circuit_cooldown_secs`).
    pub circuit: CircuitConfig,
    /// Where operational alerts go, and how often their conditions are checked.
    pub alerts: AlertsConfig,
}

impl Config {
    /// Builds the rules the configuration declares.
    pub fn build_rules(&self, http: &reqwest::Client) -> Result<Vec<Arc<dyn Rule>>, ConfigError> {
        self.rules
            .iter()
            .map(|spec| {
                DeclarativeRule::new(spec.clone(), http.clone())
                    .map(|rule| Arc::new(rule) as Arc<dyn Rule>)
                    .map_err(|e| ConfigError::Invalid {
                        key: "rules",
                        message: e.to_string(),
                    })
            })
            .collect()
    }
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, Some(path), base)
    }

    /// Checks a configuration given as text. Relative paths resolve against `base_dir`.
    pub fn parse(text: &str, path: Option<&Path>, base_dir: &Path) -> Result<Self, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.map(Path::to_owned),
            message: describe_toml_error(text, &e),
        })?;
        Self::from_file(file, path, base_dir)
    }

    fn from_file(
        file: ConfigFile,
        path: Option<&Path>,
        base_dir: &Path,
    ) -> Result<Self, ConfigError> {
        if file.endpoints.is_empty() {
            return Err(ConfigError::NoEndpoints);
        }
        if file.server.max_body_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "server.max_body_bytes",
                message: "must be greater than 0".into(),
            });
        }
        if file.server.body_timeout_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "server.body_timeout_secs",
                message: "must be greater than 0".into(),
            });
        }
        let mut endpoints = BTreeMap::new();
        let mut endpoint_secrets = BTreeMap::new();
        for (name, section) in &file.endpoints {
            if let Some(source) = section.secret.iter().chain(section.secrets.iter()).next()
                && let Ok(secret) = source.resolve(base_dir)
            {
                endpoint_secrets.insert(name.clone(), secret);
            }
        }
        let mut connections = BTreeMap::new();
        for (name, table) in file.connections {
            let table = resolve_secret_options(table, base_dir).map_err(|message| {
                ConfigError::Invalid {
                    key: "connections",
                    message: format!("{name}: {message}"),
                }
            })?;
            let connection: ConnectionSection =
                table
                    .try_into()
                    .map_err(|e: toml::de::Error| ConfigError::Invalid {
                        key: "connections",
                        message: format!("{name}: {}", e.message()),
                    })?;
            connections.insert(name, connection);
        }
        crate::connections::check(&connections)?;
        let integrations = integration_configs(file.integrations, base_dir)?;
        for hook in &file.hooks {
            if !connections.contains_key(&hook.connection) {
                return Err(ConfigError::Invalid {
                    key: "hooks",
                    message: format!("no connection named {:?}", hook.connection),
                });
            }
            if !file.endpoints.contains_key(&hook.endpoint) {
                return Err(ConfigError::Invalid {
                    key: "hooks",
                    message: format!("no endpoint named {:?}", hook.endpoint),
                });
            }
        }
        if !file.hooks.is_empty() && file.server.public_url.is_none() {
            return Err(ConfigError::Invalid {
                key: "server.public_url",
                message: "[[hooks]] need the URL the services reach this server at".into(),
            });
        }
        if file.server.max_connections == 0 {
            return Err(ConfigError::Invalid {
                key: "server.max_connections",
                message: "must be greater than 0".into(),
            });
        }
        let heal = heal_settings(
            &file.endpoints,
            &connections,
            &file.hooks,
            file.server.public_url.as_deref(),
        )?;
        for (name, section) in file.endpoints {
            let endpoint = build_endpoint(&name, section, file.server.max_body_bytes, base_dir)?;
            endpoints.insert(endpoint.name.clone(), endpoint);
        }
        let store = store_config(file.store, base_dir)?;
        let engine = engine_config(&file.engine)?;
        let circuit = CircuitConfig {
            failures: file.engine.circuit_failures,
            cooldown: Duration::from_secs(file.engine.circuit_cooldown_secs),
        };
        if circuit.failures > 0 && circuit.cooldown.is_zero() {
            return Err(ConfigError::Invalid {
                key: "engine.circuit_cooldown_secs",
                message: "must be greater than 0 (or turn the breaker off: circuit_failures = 0)"
                    .into(),
            });
        }
        let alerts = alerts_config(&file.alerts, &connections)?;
        let mut rules = Vec::new();
        for (i, table) in file.rules.into_iter().enumerate() {
            let table = resolve_secret_options(table, base_dir).map_err(|message| {
                ConfigError::Invalid {
                    key: "rules",
                    message: format!("rule #{}: {message}", i + 1),
                }
            })?;
            let spec: RuleSpec =
                table
                    .try_into()
                    .map_err(|e: toml::de::Error| ConfigError::Invalid {
                        key: "rules",
                        message: format!("rule #{}: {}", i + 1, e.message()),
                    })?;
            if rules.iter().any(|r: &RuleSpec| r.name == spec.name) {
                return Err(ConfigError::Invalid {
                    key: "rules",
                    message: format!("two rules are named {:?}", spec.name),
                });
            }
            // Check templates now, so a bad rule fails at start-up, not on the first event.
            DeclarativeRule::new(spec.clone(), reqwest::Client::new()).map_err(|e| {
                ConfigError::Invalid {
                    key: "rules",
                    message: e.to_string(),
                }
            })?;
            rules.push(spec);
        }
        let admin_token = match &file.admin.token {
            Some(source) => {
                let token = source
                    .resolve(base_dir)
                    .map_err(|message| ConfigError::Invalid {
                        key: "admin.token",
                        message,
                    })?;
                if token.expose().len() < 16 {
                    return Err(ConfigError::Invalid {
                        key: "admin.token",
                        message: "must be at least 16 characters".into(),
                    });
                }
                Some(token)
            }
            None => None,
        };
        Ok(Self {
            listen: file.server.listen,
            body_timeout: Duration::from_secs(file.server.body_timeout_secs),
            shutdown_grace: Duration::from_secs(file.server.shutdown_grace_secs),
            header_timeout: Duration::from_secs(file.server.header_timeout_secs.max(1)),
            max_connections: file.server.max_connections,
            store,
            log: file.log,
            endpoints,
            engine,
            rate_limits: file.engine.limits().collect(),
            rules,
            admin_token,
            connections,
            integrations,
            hooks: file.hooks,
            public_url: file.server.public_url,
            heal,
            endpoint_secrets,
            source: path.map_or_else(|| "(built-in)".to_owned(), |p| p.display().to_string()),
            circuit,
            alerts,
        })
    }
}

/// Reads `[[integrations]]`: each table's `name`, then the rest as its kind's settings.
fn integration_configs(
    tables: Vec<toml::Table>,
    base_dir: &Path,
) -> Result<Vec<(String, IntegrationConfig)>, ConfigError> {
    let mut out: Vec<(String, IntegrationConfig)> = Vec::new();
    for (i, table) in tables.into_iter().enumerate() {
        let at = |message: String| ConfigError::Invalid {
            key: "integrations",
            message: format!("integration #{}: {message}", i + 1),
        };
        let mut table = resolve_secret_options(table, base_dir).map_err(at)?;
        let name = match table.remove("name") {
            Some(toml::Value::String(name)) => name,
            Some(_) => return Err(at("name must be a string".into())),
            None => return Err(at("name is missing".into())),
        };
        let at = |message: String| ConfigError::Invalid {
            key: "integrations",
            message: format!("{name}: {message}"),
        };
        if out.iter().any(|(n, _)| n == &name) {
            return Err(at("two integrations have this name".into()));
        }
        let config: IntegrationConfig = table
            .try_into()
            .map_err(|e: toml::de::Error| at(e.message().to_owned()))?;
        out.push((name, config));
    }
    Ok(out)
}

/// Checks `[alerts]`: its target must be a chat connection.
fn alerts_config(
    section: &AlertsSection,
    connections: &BTreeMap<String, ConnectionSection>,
) -> Result<AlertsConfig, ConfigError> {
    if section.interval_ms == 0 {
        return Err(ConfigError::Invalid {
            key: "alerts.interval_ms",
            message: "must be greater than 0".into(),
        });
    }
    if let Some(target) = &section.target {
        match connections.get(target).map(ConnectionSection::kind) {
            Some("slack" | "matrix" | "webhook") => {}
            Some(kind) => {
                return Err(ConfigError::Invalid {
                    key: "alerts.target",
                    message: format!(
                        "connection {target:?} is of kind {kind}; alerts need a slack, matrix or webhook connection"
                    ),
                });
            }
            None => {
                return Err(ConfigError::Invalid {
                    key: "alerts.target",
                    message: format!("no connection named {target:?}"),
                });
            }
        }
    }
    Ok(AlertsConfig {
        target: section.target.clone(),
        interval: Duration::from_millis(section.interval_ms),
    })
}

fn engine_config(section: &EngineSection) -> Result<EngineConfig, ConfigError> {
    let positive = |key: &'static str, value: u64| {
        if value == 0 {
            Err(ConfigError::Invalid {
                key,
                message: "must be greater than 0".into(),
            })
        } else {
            Ok(value)
        }
    };
    positive("engine.concurrency", section.concurrency as u64)?;
    positive("engine.max_attempts", u64::from(section.max_attempts))?;
    Ok(EngineConfig {
        concurrency: section.concurrency,
        max_attempts: section.max_attempts,
        backoff: Backoff {
            base: Duration::from_millis(positive(
                "engine.backoff_base_ms",
                section.backoff_base_ms,
            )?),
            max: Duration::from_secs(positive(
                "engine.backoff_max_secs",
                section.backoff_max_secs,
            )?),
        },
        lease: Duration::from_secs(positive("engine.lease_secs", section.lease_secs)?),
        poll_interval: Duration::from_millis(positive(
            "engine.poll_interval_ms",
            section.poll_interval_ms,
        )?),
        echo_ttl: Duration::from_secs(section.echo_ttl_secs),
        self_actors: section
            .self_actors
            .iter()
            .map(|a| SelfActor {
                provider: a.provider.clone(),
                name: a.name.clone(),
            })
            .collect(),
    })
}

impl EngineSection {
    /// The rate limits, for the engine builder.
    pub fn limits(&self) -> impl Iterator<Item = (String, RateLimit)> + '_ {
        self.rate_limits.iter().map(|(target, l)| {
            (
                target.clone(),
                RateLimit {
                    per_second: l.per_second,
                    burst: l.burst,
                },
            )
        })
    }
}

/// Provider options that hold credentials (Travis's `legacy_token`, Jira's `token`) may be
/// written like secrets, `{ env = "NAME" }` or `{ file = "path" }`: those tables are
/// resolved to their value here, so providers only ever see strings.
fn resolve_secret_options(
    mut options: toml::Table,
    base_dir: &Path,
) -> Result<toml::Table, String> {
    for (key, value) in options.iter_mut() {
        resolve_secret_value(key, value, base_dir)?;
    }
    Ok(options)
}

fn resolve_secret_value(key: &str, value: &mut toml::Value, base_dir: &Path) -> Result<(), String> {
    let Some(table) = value.as_table_mut() else {
        return Ok(());
    };
    let source = match (table.len(), table.get("env"), table.get("file")) {
        (1, Some(toml::Value::String(env)), None) => SecretSource::Env { env: env.clone() },
        (1, None, Some(toml::Value::String(file))) => SecretSource::File { file: file.into() },
        _ => {
            for (inner, value) in table.iter_mut() {
                resolve_secret_value(&format!("{key}.{inner}"), value, base_dir)?;
            }
            return Ok(());
        }
    };
    let secret = source
        .resolve(base_dir)
        .map_err(|m| format!("{key}: {m}"))?;
    let text = String::from_utf8(secret.expose().to_vec())
        .map_err(|_| format!("{key}: the value is not UTF-8"))?;
    *value = toml::Value::String(text);
    Ok(())
}

/// The parser's message with a line number, without quoting the offending line: the line
/// may hold a secret.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", error.message())
        }
        None => error.message().to_owned(),
    }
}

fn build_endpoint(
    name: &str,
    section: EndpointSection,
    default_max_body: u64,
    base_dir: &Path,
) -> Result<Endpoint, ConfigError> {
    let fail = |message: String| ConfigError::Endpoint {
        endpoint: name.to_owned(),
        message,
    };
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(fail(
            "endpoint names are 1 to 64 characters of letters, digits, '-' and '_'".into(),
        ));
    }
    let secrets = section
        .secret
        .iter()
        .chain(section.secrets.iter())
        .enumerate()
        .map(|(i, source)| {
            source
                .resolve(base_dir)
                .map_err(|m| fail(format!("secret #{}: {m}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let max_body_bytes = section.max_body_bytes.unwrap_or(default_max_body);
    if max_body_bytes == 0 {
        return Err(fail("max_body_bytes must be greater than 0".into()));
    }
    let options = resolve_secret_options(section.options, base_dir).map_err(&fail)?;
    let provider = hookbridge_providers::build(&section.provider, secrets, options)
        .map_err(|e| fail(e.to_string()))?;
    Ok(Endpoint {
        name: EndpointName::new(name),
        provider,
        max_body_bytes,
    })
}

impl Config {
    /// The endpoints' healers (`heal = { ... }`), built with the connections' clients
    /// (calling no service). Fails on a setting only a client can check (a Jira Data Center
    /// connection, an app webhook without app credentials).
    pub fn build_healers(
        &self,
        connections: &hookbridge_sync_engine::integrations::Connections,
    ) -> Result<hookbridge_sync_engine::heal::Healers, ConfigError> {
        hookbridge_sync_engine::heal::Healers::build(&self.heal, connections).map_err(|e| {
            ConfigError::Invalid {
                key: "endpoints",
                message: e.to_string(),
            }
        })
    }
}

/// The healers the endpoints' `heal` tables ask for, checked against the connections.
fn heal_settings(
    endpoints: &BTreeMap<String, EndpointSection>,
    connections: &BTreeMap<String, ConnectionSection>,
    hooks: &[HookSection],
    public_url: Option<&str>,
) -> Result<Vec<HealSettings>, ConfigError> {
    let mut out = Vec::new();
    for (name, section) in endpoints {
        let Some(heal) = &section.heal else {
            continue;
        };
        let fail = |message: String| ConfigError::Endpoint {
            endpoint: name.clone(),
            message: format!("heal: {message}"),
        };
        if heal.enabled == Some(false) {
            continue;
        }
        let Some(connection) = &heal.connection else {
            if heal.enabled == Some(true) {
                return Err(fail("name the connection that reads the service".into()));
            }
            continue;
        };
        let kind = connections
            .get(connection)
            .map(ConnectionSection::kind)
            .ok_or_else(|| fail(format!("no connection named {connection:?}")))?;
        let provider = section.provider.as_str();
        if !matches!(provider, "github" | "jira" | "trello") {
            return Err(fail(format!(
                "healing is for github, jira and trello endpoints, not {provider}"
            )));
        }
        if kind != provider {
            return Err(fail(format!(
                "connection {connection:?} is a {kind} connection; this is a {provider} endpoint"
            )));
        }
        let github_keys =
            heal.repository.is_some() || heal.org.is_some() || heal.app || heal.hook_id.is_some();
        let target = match provider {
            "github" => {
                let declared = || {
                    hooks
                        .iter()
                        .find(|h| &h.endpoint == name && &h.connection == connection)
                        .and_then(|h| h.repository.clone())
                };
                let repository = heal
                    .repository
                    .clone()
                    .or_else(|| (heal.org.is_none() && !heal.app).then(declared).flatten());
                let hook = match (repository, &heal.org, heal.app) {
                    (Some(repo), None, false) => GithubHook::Repo {
                        repo: repo.parse().map_err(|e: InvalidRepo| fail(e.to_string()))?,
                        hook_id: heal.hook_id,
                    },
                    (None, Some(org), false) => GithubHook::Org {
                        org: org.clone(),
                        hook_id: heal.hook_id,
                    },
                    (None, None, true) if heal.hook_id.is_none() => GithubHook::App,
                    (None, None, true) => {
                        return Err(fail("an app has one webhook: drop hook_id".into()));
                    }
                    (None, None, false) => {
                        return Err(fail(
                            "say whose hook: repository = \"owner/name\", org = \"name\" or app = true"
                                .into(),
                        ));
                    }
                    _ => {
                        return Err(fail("give one of repository, org and app".into()));
                    }
                };
                HealTarget::Github(hook)
            }
            _ if github_keys => {
                return Err(fail(
                    "repository, org, app and hook_id are GitHub settings".into(),
                ));
            }
            "jira" => HealTarget::Jira,
            _ => HealTarget::Trello,
        };
        if heal.interval_secs == 0 {
            return Err(fail("interval_secs must be greater than 0".into()));
        }
        if heal.max_per_run == 0 {
            return Err(fail("max_per_run must be greater than 0".into()));
        }
        out.push(HealSettings {
            endpoint: EndpointName::new(name.as_str()),
            connection: connection.clone(),
            target,
            interval: Duration::from_secs(heal.interval_secs),
            max_per_run: heal.max_per_run,
            url: public_url.map(|p| format!("{}/hooks/{name}", p.trim_end_matches('/'))),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, None, Path::new("/etc/hookbridge"))
    }

    #[test]
    fn minimal_config_with_defaults() {
        let c = parse("[endpoints.gh]\nprovider = \"github\"\nsecret = \"s\"\n").unwrap();
        assert_eq!(c.listen, default_listen());
        assert_eq!(
            c.store.to_string(),
            "sqlite at /etc/hookbridge/hookbridge-data/hookbridge.db"
        );
        // A [store] table without `kind` is SQLite too.
        let c = parse(
            "[store]\npath = \"x.db\"\n[endpoints.gh]\nprovider = \"github\"\nsecret = \"s\"\n",
        )
        .unwrap();
        assert_eq!(c.store.to_string(), "sqlite at /etc/hookbridge/x.db");
        let ep = &c.endpoints[&EndpointName::new("gh")];
        assert_eq!(ep.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(ep.provider.kind().as_str(), "github");
    }

    #[test]
    fn secrets_from_env_and_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gh.secret"), "from-file\n").unwrap();
        // SAFETY: the variable name is unique to this test.
        unsafe { std::env::set_var("HOOKBRIDGE_TEST_CFG_SECRET", "from-env") };
        let text = r#"
            [endpoints.gh]
            provider = "github"
            secrets = [{ env = "HOOKBRIDGE_TEST_CFG_SECRET" }, { file = "gh.secret" }]
        "#;
        Config::parse(text, None, dir.path()).unwrap();
    }

    #[test]
    fn errors_name_the_problem() {
        let cases: &[(&str, &str)] = &[
            (
                "[endpoints.gh]\nprovider = \"github\"\n",
                "needs at least one secret",
            ),
            (
                "[endpoints.gh]\nprovider = \"gitlub\"\nsecret = \"s\"\n",
                "unknown provider kind \"gitlub\"",
            ),
            (
                "[endpoints.gh]\nprovider = \"github\"\nsecret = \"s\"\nalow_sha1 = true\n",
                "alow_sha1",
            ),
            (
                "[endpoints.gh]\nprovider = \"github\"\nsecret = { env = \"HOOKBRIDGE_TEST_UNSET_VAR\" }\n",
                "HOOKBRIDGE_TEST_UNSET_VAR is not set",
            ),
            (
                "[endpoints.gh]\nprovider = \"github\"\nsecret = \"\"\n",
                "is empty",
            ),
            (
                "[endpoints.\"a b\"]\nprovider = \"github\"\nsecret = \"s\"\n",
                "endpoint names",
            ),
            (
                "[server]\nlisten = \"nowhere\"\n[endpoints.gh]\nprovider = \"github\"\nsecret = \"s\"\n",
                "invalid",
            ),
            ("[server]\nlistne = \"127.0.0.1:1\"\n", "listne"),
            (
                "[store]\nkind = \"oracle\"\n[endpoints.gh]\nprovider = \"github\"\nsecret = \"s\"\n",
                "oracle",
            ),
            ("", "no endpoint is configured"),
            (
                "[store]\nkind = \"postgres\"\n[endpoints.gh]\nprovider = \"github\"\nsecret = \"s\"\n",
                "needs url",
            ),
            (
                "[store]\nkind = \"postgres\"\nurl = \"postgres://x\"\npath = \"a\"\n[endpoints.gh]\nprovider = \"github\"\nsecret = \"s\"\n",
                "SQLite settings",
            ),
            (
                "[store]\nurl = \"postgres://x\"\n[endpoints.gh]\nprovider = \"github\"\nsecret = \"s\"\n",
                "PostgreSQL settings",
            ),
            ("[endpoints.gh\n", "invalid config"),
        ];
        for (text, expected) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert!(
                err.contains(expected),
                "{text:?}: {err:?} lacks {expected:?}"
            );
        }
    }

    #[test]
    fn secret_values_never_in_errors_or_debug() {
        let text =
            "[endpoints.gh]\nprovider = \"github\"\nsecret = \"TOPSECRETVALUE\"\nbogus = 1\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(!err.contains("TOPSECRETVALUE"), "{err}");
        let ok =
            parse("[endpoints.gh]\nprovider = \"github\"\nsecret = \"TOPSECRETVALUE\"\n").unwrap();
        assert!(!format!("{ok:?}").contains("TOPSECRETVALUE"));
        let file: ConfigFile = toml::from_str(text).unwrap();
        assert!(!format!("{file:?}").contains("TOPSECRETVALUE"));
        let broken = "[endpoints.gh]\nprovider = \"github\"\nsecret = \"TOPSECRETVALUE\" oops\n";
        let err = parse(broken).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(!err.contains("TOPSECRETVALUE"), "{err}");
    }
}

#[cfg(test)]
mod heal_tests {
    use super::*;

    const BASE: &str = r#"
        [server]
        public_url = "https://hooks.example.com/"
        [connections.gh]
        kind = "github"
        token = "ghp_x"
        [connections.jira]
        kind = "jira"
        base_url = "https://example.atlassian.net"
        email = "bot@example.com"
        token = "t"
        [connections.trello]
        kind = "trello"
        key = "k"
        token = "t"
    "#;

    fn parse(endpoints: &str) -> Result<Config, ConfigError> {
        Config::parse(
            &format!("{BASE}\n{endpoints}"),
            None,
            Path::new("/etc/hookbridge"),
        )
    }

    fn error(endpoints: &str) -> String {
        parse(endpoints).unwrap_err().to_string()
    }

    #[test]
    fn heal_is_on_where_a_connection_is_named_and_never_a_provider_option() {
        // GitHub's provider refuses unknown options: `heal` reaching it would fail here.
        let c = parse(
            r#"
            [endpoints.gh]
            provider = "github"
            secret = "s"
            heal = { connection = "gh", repository = "octo-org/octo-repo" }
            [endpoints.jira]
            provider = "jira"
            secret = "s"
            heal = { connection = "jira", interval_secs = 60, max_per_run = 5 }
            [endpoints.trello]
            provider = "trello"
            secret = "s"
            callback_url = "https://hooks.example.com/hooks/trello"
            heal = { connection = "trello" }
            [endpoints.off]
            provider = "github"
            secret = "s"
            heal = { connection = "gh", org = "octo-org", enabled = false }
            [endpoints.plain]
            provider = "github"
            secret = "s"
            heal = { interval_secs = 60 }
        "#,
        )
        .unwrap();
        let names: Vec<&str> = c.heal.iter().map(|h| h.endpoint.as_str()).collect();
        assert_eq!(names, ["gh", "jira", "trello"]);
        let gh = &c.heal[0];
        assert!(matches!(
            &gh.target,
            HealTarget::Github(GithubHook::Repo { repo, hook_id: None }) if repo.to_string() == "octo-org/octo-repo"
        ));
        assert_eq!(
            gh.url.as_deref(),
            Some("https://hooks.example.com/hooks/gh")
        );
        assert_eq!(
            (gh.interval, gh.max_per_run),
            (Duration::from_secs(600), 100)
        );
        assert_eq!(
            (c.heal[1].interval, c.heal[1].max_per_run),
            (Duration::from_secs(60), 5)
        );
        assert!(matches!(c.heal[1].target, HealTarget::Jira));
        assert!(matches!(c.heal[2].target, HealTarget::Trello));
    }

    #[test]
    fn a_github_hook_comes_from_the_table_or_from_hooks() {
        let c = parse(
            r#"
            [endpoints.gh]
            provider = "github"
            secret = "s"
            heal = { connection = "gh" }
            [endpoints.org]
            provider = "github"
            secret = "s"
            heal = { connection = "gh", org = "octo-org", hook_id = 7 }
            [endpoints.app]
            provider = "github"
            secret = "s"
            heal = { connection = "gh", app = true }
            [[hooks]]
            endpoint = "gh"
            connection = "gh"
            repository = "octo-org/from-hooks"
        "#,
        )
        .unwrap();
        assert!(matches!(
            &c.heal[1].target,
            HealTarget::Github(GithubHook::Repo { repo, .. }) if repo.name() == "from-hooks"
        ));
        assert!(matches!(
            &c.heal[2].target,
            HealTarget::Github(GithubHook::Org { org, hook_id: Some(7) }) if org == "octo-org"
        ));
        assert!(matches!(
            c.heal[0].target,
            HealTarget::Github(GithubHook::App)
        ));
    }

    #[test]
    fn heal_settings_are_checked() {
        let gh = |heal: &str| {
            error(&format!(
                "[endpoints.gh]\nprovider = \"github\"\nsecret = \"s\"\nheal = {heal}\n"
            ))
        };
        let cases = [
            (
                gh(r#"{ connection = "nope", repository = "o/r" }"#),
                "no connection named \"nope\"",
            ),
            (
                gh(r#"{ connection = "jira", repository = "o/r" }"#),
                "is a jira connection",
            ),
            (gh(r#"{ connection = "gh" }"#), "say whose hook"),
            (
                gh(r#"{ connection = "gh", repository = "o/r", org = "o" }"#),
                "one of repository, org and app",
            ),
            (
                gh(r#"{ connection = "gh", app = true, hook_id = 1 }"#),
                "drop hook_id",
            ),
            (
                gh(r#"{ connection = "gh", repository = "not a repo" }"#),
                "invalid GitHub repository",
            ),
            (
                gh(r#"{ connection = "gh", repository = "o/r", interval_secs = 0 }"#),
                "interval_secs",
            ),
            (
                gh(r#"{ connection = "gh", repository = "o/r", max_per_run = 0 }"#),
                "max_per_run",
            ),
            (
                gh(r#"{ connection = "gh", repository = "o/r", retries = 3 }"#),
                "retries",
            ),
            (gh(r#"{ enabled = true }"#), "name the connection"),
            (
                error(
                    "[endpoints.j]\nprovider = \"jira\"\nsecret = \"s\"\nheal = { connection = \"jira\", repository = \"o/r\" }\n",
                ),
                "GitHub settings",
            ),
            (
                error(
                    "[endpoints.s]\nprovider = \"slack\"\nsecret = \"s\"\nheal = { connection = \"gh\" }\n",
                ),
                "healing is for github, jira and trello",
            ),
        ];
        for (message, expected) in cases {
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
    }
}
