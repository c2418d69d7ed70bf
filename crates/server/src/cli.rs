//! Subcommands of the `hookbridge` binary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use hookbridge_core::{DeliveryId, EndpointName, Provider, RawDelivery};
use hookbridge_server::config::{Config, LogFormat, SecretSource};
use hookbridge_server::telemetry;
use hookbridge_sync_engine::store::{
    DeliveryFilter, JobFilter, JobId, JobState, Store, StoredDelivery,
};
use http::{HeaderMap, HeaderName, HeaderValue};

/// `println!` that survives a reader that stopped reading (`hookbridge deliveries list |
/// head -1`): std's panics on the broken pipe. Defined before any use, it shadows std's in
/// this module.
macro_rules! println {
    ($($arg:tt)*) => {
        print_line(format_args!($($arg)*))
    };
}

/// Writes one line to stdout. If the reader has gone (EPIPE), the output is no longer
/// wanted: exit quietly with status 0, as `head` expects of the command before it. Any
/// other write error is reported on stderr, with status 1.
fn print_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_fmt(line).and_then(|()| out.write_all(b"\n")) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {error}");
        std::process::exit(1);
    }
}

/// The configuration served when `serve` is given no `--config`.
const DEV_CONFIG: &str = include_str!("../../../examples/dev.toml");

/// Receive, verify and store webhooks; keep objects in sync between services.
#[derive(Debug, Parser)]
#[command(name = "hookbridge", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Configuration file. Without one, the built-in development configuration
        /// (examples/dev.toml) is served, storing into ./hookbridge-data.
        #[arg(long, short, env = "HOOKBRIDGE_CONFIG")]
        config: Option<PathBuf>,
        /// Listen address, overriding the configuration's `server.listen`.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Log JSON lines instead of text.
        #[arg(long)]
        log_json: bool,
    },
    /// Check a configuration file: syntax, endpoints, providers, and that every secret resolves.
    CheckConfig {
        /// Configuration file.
        #[arg(long, short, env = "HOOKBRIDGE_CONFIG")]
        config: PathBuf,
    },
    /// Check a captured delivery's signature and say exactly why it fails, if it does.
    Verify {
        #[command(flatten)]
        delivery: CapturedDelivery,
        #[command(flatten)]
        signer: ProviderArgs,
    },
    /// Sign a sample delivery as the provider does and send it to a running server.
    Send {
        /// The sample's event name, e.g. `issues.opened`; without it, the samples are listed.
        #[arg(long)]
        event: Option<String>,
        /// Send this JSON file instead of a shipped sample (needs --event-type).
        #[arg(long, requires = "event_type")]
        body: Option<PathBuf>,
        /// The provider's event type for --body, e.g. `issues`.
        #[arg(long)]
        event_type: Option<String>,
        /// The endpoint's URL, e.g. http://127.0.0.1:8080/hooks/github.
        #[arg(long)]
        to: Option<String>,
        /// The delivery id to send (default: a new random one).
        #[arg(long)]
        delivery_id: Option<String>,
        /// Travis CI only: a PEM RSA private key to sign with (the endpoint must be
        /// configured with its public half), since Travis signs with its own key.
        #[arg(long)]
        signing_key: Option<PathBuf>,
        #[command(flatten)]
        signer: ProviderArgs,
    },
    /// Type a captured delivery and print its event as JSON (no signature check).
    Inspect {
        #[command(flatten)]
        delivery: CapturedDelivery,
        /// Provider kind.
        #[arg(long, default_value = "github")]
        provider: String,
    },
    /// List and show stored deliveries.
    Deliveries {
        #[command(subcommand)]
        command: DeliveriesCommand,
        /// Configuration file (for the store's location).
        #[arg(long, short, env = "HOOKBRIDGE_CONFIG", global = true)]
        config: Option<PathBuf>,
    },
    /// List, show and replay jobs (one per rule per delivery).
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
        /// Configuration file (for the store's location).
        #[arg(long, short, env = "HOOKBRIDGE_CONFIG", global = true)]
        config: Option<PathBuf>,
    },
    /// Jobs that ran out of attempts or failed for good; replay them once fixed.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLettersCommand,
        /// Configuration file (for the store's location).
        #[arg(long, short, env = "HOOKBRIDGE_CONFIG", global = true)]
        config: Option<PathBuf>,
    },
    /// The configured rules, and what they would do with a stored delivery.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
        /// Configuration file.
        #[arg(long, short, env = "HOOKBRIDGE_CONFIG", global = true)]
        config: Option<PathBuf>,
    },
    /// The webhooks declared in `[[hooks]]`, compared with those registered at the services.
    Hooks {
        #[command(subcommand)]
        command: HooksCommand,
        /// Configuration file.
        #[arg(long, short, env = "HOOKBRIDGE_CONFIG", global = true)]
        config: Option<PathBuf>,
    },
    /// Create or upgrade the store's schema, then exit.
    Migrate {
        /// Configuration file.
        #[arg(long, short, env = "HOOKBRIDGE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// The circuit breaker of each downstream target, as a running server sees it (asked
    /// through its admin API: on PostgreSQL each instance has its own).
    Circuits {
        /// The server's base URL (default: http:// and the configuration's `server.listen`).
        #[arg(long)]
        url: Option<String>,
        /// Print the server's answer as JSON.
        #[arg(long)]
        json: bool,
        /// Configuration file (for the admin token and the listen address).
        #[arg(long, short, env = "HOOKBRIDGE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Replay a github-jira integration's reconciliation over a repository's pull requests
    /// (and issues): create missing Jira issues, move issues whose GitHub state changed
    /// unseen, fix status labels. GitHub sometimes does not deliver an event.
    Rescan {
        /// The integration's name (`[[integrations]]`, kind `github-jira`).
        integration: String,
        /// The repository, `owner/name`.
        repo: String,
        /// List what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only objects updated at or after this time (RFC 3339, e.g. 2024-05-01T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Configuration file.
        #[arg(long, short, env = "HOOKBRIDGE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// The routes of a travis-chat integration (repository -> chat targets, with event
    /// filters) and their defaults: list, add, remove, change. Stored, so the running
    /// server uses them at once; routes of the configuration file are listed, not changed.
    Routes {
        #[command(subcommand)]
        command: RoutesCommand,
        /// The integration's name (`[[integrations]]`, kind `travis-chat`); may be left out
        /// when there is only one.
        #[arg(long, global = true)]
        integration: Option<String>,
        /// Configuration file.
        #[arg(long, short, env = "HOOKBRIDGE_CONFIG", global = true)]
        config: Option<PathBuf>,
    },
    /// Heal gaps now: read what the services logged (GitHub's delivery log, Jira Cloud's
    /// failed webhooks, Trello's failure counts) for the endpoints with `heal = { ... }`,
    /// ask GitHub to redeliver what the inbox lacks and ingest Jira's failed webhooks, then
    /// print what was found and done. Safe next to running servers: nothing is asked twice.
    Heal {
        /// Only this endpoint.
        #[arg(long)]
        endpoint: Option<String>,
        /// Say what would be done; ask for nothing, store nothing.
        #[arg(long)]
        dry_run: bool,
        /// The most deliveries asked for (or ingested) per endpoint in this run (default:
        /// the endpoint's max_per_run).
        #[arg(long)]
        max: Option<u32>,
        /// Look back to this time instead of the last run's position: RFC 3339, or a
        /// duration ago (2h, 3d). GitHub keeps 3 days (7 on Enterprise Server).
        #[arg(long)]
        since: Option<String>,
        /// One JSON report per healer per line.
        #[arg(long)]
        json: bool,
        /// Configuration file.
        #[arg(long, short, env = "HOOKBRIDGE_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum RoutesCommand {
    /// Every route (or those about one repository), with the events and targets it uses.
    /// Secrets and sink URLs are never shown.
    List {
        /// Only routes matching this repository (`owner/name`) or written with this pattern.
        repo: Option<String>,
        /// One JSON object per route.
        #[arg(long)]
        json: bool,
    },
    /// Add (or replace) routes from a repository to chat targets.
    Add {
        /// The repository, `owner/name`, or a pattern such as `acme/*`.
        repo: String,
        /// Chat connections (`[connections.*]` of kind slack, matrix or webhook); none: the
        /// default targets. With --slack-url-* or --webhook-*, the one name of that sink.
        targets: Vec<String>,
        /// Events (comma-separated or repeated): pending, passed, failed, broken, fixed,
        /// still_failing, canceled, errored, or `*`; none: the default events.
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// A Slack incoming webhook of the route's own: the environment variable holding
        /// its URL (the URL is a credential: never on the command line).
        #[arg(long, conflicts_with_all = ["slack_url_file", "webhook_url"])]
        slack_url_env: Option<String>,
        /// The same, from a file.
        #[arg(long, conflicts_with = "webhook_url")]
        slack_url_file: Option<PathBuf>,
        /// A signed webhook of the route's own: its URL.
        #[arg(long)]
        webhook_url: Option<String>,
        /// The signed webhook's secret (`whsec_...`), from this environment variable.
        #[arg(long, requires = "webhook_url", conflicts_with = "webhook_secret_file")]
        webhook_secret_env: Option<String>,
        /// The signed webhook's secret, from this file.
        #[arg(long, requires = "webhook_url")]
        webhook_secret_file: Option<PathBuf>,
    },
    /// Remove the routes added for a repository pattern (written as it was added), or only
    /// the one to a target.
    Remove {
        /// The repository or pattern.
        repo: String,
        /// Only the route to this target.
        target: Option<String>,
    },
    /// Show the default events and targets, or change them (they apply at once to every
    /// route without its own).
    Defaults {
        /// New default events (comma-separated or repeated).
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// New default targets (comma-separated or repeated).
        #[arg(long, value_delimiter = ',')]
        targets: Vec<String>,
        /// Go back to the configuration file's defaults.
        #[arg(long, conflicts_with_all = ["events", "targets"])]
        reset: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum HooksCommand {
    /// Show each declared hook's state at its service, and hooks pointing here that are
    /// not declared. Changes nothing.
    List,
    /// Create missing hooks and re-enable or correct the others; idempotent.
    Sync {
        /// Also delete hooks that point at this server but are no longer declared.
        #[arg(long)]
        prune: bool,
        /// Only say what would change.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Jobs, newest first.
    List {
        /// Only in this state: pending, running, done, skipped, dead.
        #[arg(long)]
        state: Option<String>,
        /// Only of this rule.
        #[arg(long)]
        rule: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only jobs with an id below this one (paging).
        #[arg(long)]
        before: Option<i64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// One job with its attempts, errors and actions.
    Show {
        /// The job id.
        id: i64,
    },
    /// Run a dead or skipped job again.
    Replay {
        /// The job id.
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
enum DeadLettersCommand {
    /// Dead letters, newest first.
    List {
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Replay dead letters: the given ids, or all of them.
    Replay {
        /// Job ids.
        ids: Vec<i64>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// The rules, in order.
    List,
    /// What each rule would do with a stored delivery, without doing it.
    DryRun {
        /// The delivery: its inbox sequence number or its delivery id.
        #[arg(long)]
        delivery: String,
    },
}

#[derive(Debug, Subcommand)]
enum DeliveriesCommand {
    /// The latest deliveries, newest first.
    List {
        /// Only this endpoint.
        #[arg(long)]
        endpoint: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only deliveries older than this sequence number (paging).
        #[arg(long)]
        before: Option<i64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Only deliveries whose processing is unfinished: a job pending, retrying, running
        /// or dead, or not dispatched yet; oldest first, with those jobs.
        #[arg(long)]
        unfinished: bool,
        /// With --unfinished: only deliveries received at least this long ago (`90s`,
        /// `10m`, `2h`, `7d`).
        #[arg(long, requires = "unfinished")]
        older_than: Option<String>,
        /// With --unfinished: only deliveries with an unfinished job of this rule.
        #[arg(long, requires = "unfinished")]
        rule: Option<String>,
    },
    /// Dispatch a delivery again through the current rules; or, with filters, replay every
    /// job (or delivery) they select; with --dry-run, show what the current rules would do
    /// next to what was recorded, as a diff.
    Replay {
        /// The delivery: its inbox sequence number or its delivery id.
        delivery: Option<String>,
        #[command(flatten)]
        filter: ReplayArgs,
    },
    /// One delivery: metadata, headers, body and its typed event.
    Show {
        /// The delivery id (e.g. the X-GitHub-Delivery value).
        delivery_id: String,
        /// Only on this endpoint.
        #[arg(long)]
        endpoint: Option<String>,
    },
}

/// Which provider, with which secrets: a configured endpoint, or a kind and secrets.
#[derive(Debug, Args)]
struct ProviderArgs {
    /// Use this configured endpoint's provider and secrets (needs --config).
    #[arg(long, conflicts_with = "provider")]
    endpoint: Option<String>,
    /// Configuration file, for --endpoint.
    #[arg(long, short, env = "HOOKBRIDGE_CONFIG")]
    config: Option<PathBuf>,
    /// Provider kind, when not using --endpoint.
    #[arg(long)]
    provider: Option<String>,
    /// Read a secret from this environment variable (repeatable, for rotation).
    #[arg(long = "secret-env")]
    secret_env: Vec<String>,
    /// Read a secret from this file (repeatable).
    #[arg(long = "secret-file")]
    secret_file: Vec<PathBuf>,
}

impl ProviderArgs {
    fn build(&self) -> Result<Arc<dyn Provider>, Failure> {
        match (&self.endpoint, &self.provider) {
            (Some(name), _) => {
                let path = self
                    .config
                    .as_ref()
                    .ok_or_else(|| Failure("--endpoint needs --config".into(), 2))?;
                let mut config = Config::load(path)?;
                Ok(config
                    .endpoints
                    .remove(&EndpointName::new(name.as_str()))
                    .ok_or_else(|| {
                        Failure(format!("no endpoint {name:?} in {}", path.display()), 2)
                    })?
                    .provider)
            }
            (None, Some(kind)) => {
                // The same sources, and the same trimming, as `secrets` in the config file.
                let sources = self
                    .secret_env
                    .iter()
                    .map(|env| SecretSource::Env { env: env.clone() })
                    .chain(
                        self.secret_file
                            .iter()
                            .map(|file| SecretSource::File { file: file.clone() }),
                    );
                let secrets = sources
                    .map(|source| source.resolve(Path::new(".")).map_err(|m| Failure(m, 2)))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(hookbridge_providers::build(
                    kind,
                    secrets,
                    toml::Table::new(),
                )?)
            }
            (None, None) => Err(Failure(
                "give --endpoint (with --config) or --provider (with --secret-env/--secret-file)"
                    .into(),
                2,
            )),
        }
    }
}

/// A delivery captured to files: the body, and headers given inline or in a file.
#[derive(Debug, Args)]
struct CapturedDelivery {
    /// The body, exactly as received.
    #[arg(long)]
    body: PathBuf,
    /// A header, as `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// A file of `Name: value` lines.
    #[arg(long)]
    headers_file: Option<PathBuf>,
    /// The request's path and query as received (for URL-token schemes such as Jira's
    /// unsigned hooks), e.g. `/hooks/jira?token=...`.
    #[arg(long)]
    url: Option<String>,
}

/// A failure to report: the message, and the exit code (1: the input is bad; 2: usage or
/// configuration).
struct Failure(String, u8);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string(), 2)
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message, code)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve {
            config,
            listen,
            log_json,
        } => {
            let mut config = load_or_dev(config.as_deref())?;
            let format = if log_json {
                LogFormat::Json
            } else {
                config.log.format
            };
            telemetry::init(format, config.log.filter.as_deref());
            if config.source == "(built-in)" {
                tracing::warn!(
                    store = %config.store,
                    "no --config given: serving the built-in development configuration \
                     (examples/dev.toml): endpoint `github` with the development secret \
                     `dev-secret`; do not expose it"
                );
            }
            if let Some(listen) = listen {
                config.listen = listen;
            }
            hookbridge_server::serve(config).await?;
            Ok(())
        }
        Command::CheckConfig { config } => {
            let config = Config::load(&config)?;
            // Builds every client and integration (calling no service), so a wrong
            // connection, a missing HOOKBRIDGE_TOKEN_KEY or a bad mapping fails here, not at
            // start-up.
            let services = hookbridge_server::services::Services::check(&config)?;
            println!("config {} is valid", config.source);
            println!("  listen: {}", config.listen);
            println!("  store:  {}", config.store);
            for endpoint in config.endpoints.values() {
                println!(
                    "  endpoint {:<20} provider={} max_body_bytes={}",
                    endpoint.name,
                    endpoint.provider.kind(),
                    endpoint.max_body_bytes
                );
            }
            for (name, connection) in &config.connections {
                println!("  connection {name:<18} kind={}", connection.kind());
            }
            for integration in services.integrations() {
                let rules: Vec<&str> = integration.rules.iter().map(|r| r.name()).collect();
                let sources: Vec<&str> = integration.sources.iter().map(|s| s.name()).collect();
                println!(
                    "  integration {:<17} rules={} pollers={}",
                    integration.name,
                    rules.join(","),
                    sources.join(",")
                );
            }
            // Healers are built too: a Jira Data Center connection or an app webhook without
            // app credentials fails here.
            config.build_healers(services.connections())?;
            for heal in &config.heal {
                println!(
                    "  heal {:<23} connection={} every {}s, at most {} per run",
                    heal.endpoint,
                    heal.connection,
                    heal.interval.as_secs(),
                    heal.max_per_run
                );
            }
            Ok(())
        }
        Command::Verify { delivery, signer } => {
            let provider = signer.build()?;
            // Providers that fetch their key (Travis CI) need it before they can verify.
            if let Some(refresh) = provider.refresh() {
                refresh
                    .await
                    .map_err(|e| Failure(format!("cannot prepare the provider: {e}"), 2))?;
            }
            let raw = delivery.load("verify", false)?;
            match provider.verify(&raw) {
                Ok(verified) => {
                    println!(
                        "ok: {} matches secret #{}",
                        verified.scheme,
                        verified.secret_index + 1
                    );
                    Ok(())
                }
                Err(e) => Err(Failure(format!("invalid: {e}"), 1)),
            }
        }
        Command::Send {
            event,
            body,
            event_type,
            to,
            delivery_id,
            signing_key,
            signer,
        } => {
            let provider = match signing_key {
                Some(path) => travis_signer(&path)?,
                None => signer.build()?,
            };
            let kind = provider.kind();
            let samples = provider.samples();
            let (name, event_type, json) = match (&event, body, event_type) {
                (_, Some(path), Some(event_type)) => {
                    let json = std::fs::read(&path)
                        .map_err(|e| Failure(format!("cannot read {}: {e}", path.display()), 2))?;
                    (
                        event.clone().unwrap_or_else(|| event_type.clone()),
                        event_type,
                        json,
                    )
                }
                (Some(name), _, _) => {
                    let sample = samples.iter().find(|s| s.name == name).ok_or_else(|| {
                        Failure(
                            format!(
                                "no {kind} sample named {name:?}; run without --event to list them"
                            ),
                            2,
                        )
                    })?;
                    (
                        name.clone(),
                        sample.event_type.to_owned(),
                        sample.json.as_bytes().to_vec(),
                    )
                }
                (None, _, _) => {
                    println!("{kind} samples (send one with --event NAME):");
                    for sample in samples {
                        println!("  {}", sample.name);
                    }
                    return Ok(());
                }
            };
            let to = to.ok_or_else(|| Failure("--to URL is required to send".into(), 2))?;
            let delivery_id = delivery_id.unwrap_or_else(new_delivery_id);
            let signed = provider
                .sign(
                    &event_type,
                    &json,
                    &delivery_id,
                    time::OffsetDateTime::now_utc(),
                )
                .map_err(|e| Failure(e.to_string(), 2))?;
            let url = match &signed.query {
                Some(query) if to.contains('?') => format!("{to}&{query}"),
                Some(query) => format!("{to}?{query}"),
                None => to,
            };
            let response = reqwest::Client::new()
                .post(&url)
                .headers(signed.headers)
                .body(signed.body)
                .send()
                .await
                .map_err(|e| Failure(format!("cannot send to {url}: {e}"), 1))?;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            println!(
                "sent {name} (delivery {delivery_id}) to {url}: {status} {}",
                text.trim()
            );
            if status.is_success() {
                Ok(())
            } else {
                Err(Failure(format!("the server answered {status}"), 1))
            }
        }
        Command::Inspect { delivery, provider } => {
            let parser = hookbridge_providers::parser(&provider)?;
            let raw = delivery.load("inspect", true)?;
            let event = parser
                .parse(&raw)
                .map_err(|e| Failure(format!("cannot parse: {e}"), 1))?;
            println!("{}", serde_json::to_string_pretty(&event)?);
            Ok(())
        }
        Command::Deliveries { command, config } => {
            let config = load_or_dev(config.as_deref())?;
            let store = open_store(&config).await?;
            let result = deliveries(&config, &store, command).await;
            store.close().await;
            result
        }
        Command::Jobs { command, config } => {
            let config = load_or_dev(config.as_deref())?;
            let store = open_store(&config).await?;
            let result = jobs(store.as_ref(), command).await;
            store.close().await;
            result
        }
        Command::DeadLetters { command, config } => {
            let config = load_or_dev(config.as_deref())?;
            let store = open_store(&config).await?;
            let result = match command {
                DeadLettersCommand::List { limit, json } => {
                    let command = JobsCommand::List {
                        state: Some("dead".into()),
                        rule: None,
                        limit,
                        before: None,
                        json,
                    };
                    jobs(store.as_ref(), command).await
                }
                DeadLettersCommand::Replay { ids, all } => {
                    replay_dead(store.as_ref(), ids, all).await
                }
            };
            store.close().await;
            result
        }
        Command::Rules { command, config } => {
            let config = load_or_dev(config.as_deref())?;
            let store = open_store(&config).await?;
            let services = hookbridge_server::services::Services::build(&config, store.clone())?;
            let engine = hookbridge_server::build_engine(&config, store.clone(), &services)?;
            let result = match command {
                RulesCommand::List => {
                    for name in engine.rule_names() {
                        println!("{name}");
                    }
                    Ok(())
                }
                RulesCommand::DryRun { delivery } => {
                    let seq = resolve_delivery(store.as_ref(), &delivery).await?;
                    let report = engine
                        .dry_run(seq)
                        .await
                        .map_err(|e| Failure(e.to_string(), 1))?;
                    println!("delivery {} ({}):", report.seq, report.event);
                    for rule in &report.rules {
                        println!("  {}: {}", rule.rule, rule.outcome);
                        for action in &rule.actions {
                            println!("    {action}");
                        }
                        if let Some(error) = &rule.error {
                            println!("    error: {error}");
                        }
                    }
                    Ok(())
                }
            };
            store.close().await;
            result
        }
        Command::Hooks { command, config } => {
            let config = load_or_dev(config.as_deref())?;
            let Some(public_url) = config.public_url.as_deref() else {
                return Err(Failure(
                    "no [[hooks]] are declared (they need server.public_url)".into(),
                    2,
                ));
            };
            let store = open_store(&config).await?;
            let services = hookbridge_server::services::Services::build(&config, store.clone())?;
            let plan = hookbridge_server::hooks::HookPlan {
                public_url,
                connections: &config.connections,
                clients: services.connections(),
                hooks: &config.hooks,
                secrets: &config.endpoint_secrets,
            };
            let mode = match command {
                HooksCommand::List => hookbridge_server::hooks::SyncMode {
                    dry_run: true,
                    prune: false,
                },
                HooksCommand::Sync { prune, dry_run } => {
                    hookbridge_server::hooks::SyncMode { dry_run, prune }
                }
            };
            let result = plan.run(mode).await;
            store.close().await;
            for change in &result.map_err(|e| Failure(e, 1))? {
                println!("{change}");
            }
            Ok(())
        }
        Command::Migrate { config } => {
            let config = load_or_dev(config.as_deref())?;
            let store = open_store(&config).await?;
            store.close().await;
            println!("store ({}) is up to date", config.store);
            Ok(())
        }
        Command::Circuits { url, json, config } => {
            let config = load_or_dev(config.as_deref())?;
            circuits(&config, url.as_deref(), json).await
        }
        Command::Rescan {
            integration,
            repo,
            dry_run,
            since,
            json,
            config,
        } => {
            rescan(
                config.as_deref(),
                &integration,
                &repo,
                dry_run,
                since.as_deref(),
                json,
            )
            .await
        }
        Command::Routes {
            command,
            integration,
            config,
        } => routes(config.as_deref(), integration.as_deref(), command).await,
        Command::Heal {
            endpoint,
            dry_run,
            max,
            since,
            json,
            config,
        } => {
            heal(
                config.as_deref(),
                endpoint.as_deref(),
                hookbridge_sync_engine::heal::RunOptions {
                    dry_run,
                    max,
                    since: since
                        .as_deref()
                        .map(|s| parse_time(s, time::OffsetDateTime::now_utc()))
                        .transpose()?,
                },
                json,
            )
            .await
        }
    }
}

async fn deliveries(
    config: &Config,
    store: &Arc<dyn Store>,
    command: DeliveriesCommand,
) -> Result<(), Failure> {
    match command {
        DeliveriesCommand::List {
            endpoint,
            limit,
            before,
            json,
            unfinished,
            older_than,
            rule,
        } => {
            if unfinished {
                if before.is_some() {
                    return Err(Failure(
                        "--before pages the full list, not --unfinished".into(),
                        2,
                    ));
                }
                let older_than = older_than.as_deref().map(parse_duration).transpose()?;
                return list_unfinished(
                    config,
                    store.as_ref(),
                    endpoint,
                    older_than,
                    rule,
                    limit,
                    json,
                )
                .await;
            }
            let filter = DeliveryFilter {
                endpoint: endpoint.map(EndpointName::new),
                before_seq: before,
                limit,
            };
            let rows = store.list_deliveries(&filter).await?;
            if json {
                for row in &rows {
                    println!("{}", serde_json::to_string(row)?);
                }
            } else {
                println!(
                    "{:>8}  {:<25}  {:<16}  {:<28}  {:>8}  DELIVERY ID",
                    "SEQ", "RECEIVED", "ENDPOINT", "EVENT", "BYTES"
                );
                for row in &rows {
                    println!(
                        "{:>8}  {:<25}  {:<16}  {:<28}  {:>8}  {}",
                        row.seq,
                        rfc3339(row.received_at),
                        row.endpoint,
                        event_name(config, row),
                        row.body.len(),
                        row.delivery_id
                    );
                }
            }
            Ok(())
        }
        DeliveriesCommand::Replay { delivery, filter } => {
            if filter.dry_run || filter.is_bulk() {
                return replay_command(config, store, delivery.as_deref(), filter).await;
            }
            let delivery = delivery.ok_or_else(|| {
                Failure(
                    "give a delivery, or filters (--since, --until, --endpoint, --rule, --status)"
                        .into(),
                    2,
                )
            })?;
            let seq = resolve_delivery(store.as_ref(), &delivery).await?;
            store.replay_delivery(seq).await?;
            println!("delivery {seq} will be dispatched again through the current rules");
            Ok(())
        }
        DeliveriesCommand::Show {
            delivery_id,
            endpoint,
        } => {
            let endpoint = endpoint.map(EndpointName::new);
            let rows = store
                .find_deliveries(&DeliveryId::new(delivery_id.as_str()), endpoint.as_ref())
                .await?;
            if rows.is_empty() {
                return Err(Failure(format!("no delivery {delivery_id:?}"), 1));
            }
            for row in &rows {
                println!("delivery {} (seq {})", row.delivery_id, row.seq);
                println!("  endpoint:  {} ({})", row.endpoint, row.provider);
                println!("  event:     {}", event_name(config, row));
                println!("  received:  {}", rfc3339(row.received_at));
                println!("  status:    {}", row.status);
                println!("  headers:");
                for (name, value) in &row.headers {
                    println!("    {name}: {value}");
                }
                println!("  body ({} bytes):", row.body.len());
                match serde_json::from_slice::<serde_json::Value>(&row.body) {
                    Ok(json) => println!("{}", serde_json::to_string_pretty(&json)?),
                    Err(_) => println!("{}", String::from_utf8_lossy(&row.body)),
                }
                print_jobs(store.as_ref(), row.seq).await?;
            }
            Ok(())
        }
    }
}

/// A delivery named by its sequence number or its delivery id.
async fn resolve_delivery(store: &dyn Store, text: &str) -> Result<i64, Failure> {
    if let Ok(seq) = text.parse::<i64>()
        && store.delivery(seq).await?.is_some()
    {
        return Ok(seq);
    }
    let found = store.find_deliveries(&DeliveryId::new(text), None).await?;
    match found.as_slice() {
        [one] => Ok(one.seq),
        [] => Err(Failure(format!("no delivery {text:?}"), 1)),
        many => Err(Failure(
            format!(
                "{} deliveries have the id {text:?} (on different endpoints); give the sequence number: {}",
                many.len(),
                many.iter()
                    .map(|d| d.seq.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            1,
        )),
    }
}

async fn jobs(store: &dyn Store, command: JobsCommand) -> Result<(), Failure> {
    match command {
        JobsCommand::List {
            state,
            rule,
            limit,
            before,
            json,
        } => {
            let state = match state.as_deref() {
                Some(text) => Some(JobState::parse(text).ok_or_else(|| {
                    Failure(
                        format!("unknown state {text:?}: pending, running, done, skipped, dead"),
                        2,
                    )
                })?),
                None => None,
            };
            let filter = JobFilter {
                state,
                rule,
                delivery_seq: None,
                before_id: before,
                limit,
            };
            let rows = store.list_jobs(&filter).await?;
            if json {
                for row in &rows {
                    println!("{}", serde_json::to_string(row)?);
                }
            } else {
                println!(
                    "{:>8}  {:>8}  {:<24}  {:<8}  {:>8}  LAST ERROR",
                    "JOB", "DELIVERY", "RULE", "STATE", "ATTEMPTS"
                );
                for job in &rows {
                    println!(
                        "{:>8}  {:>8}  {:<24}  {:<8}  {:>8}  {}",
                        job.id,
                        job.delivery_seq,
                        job.rule,
                        job.state.as_str(),
                        format!("{}/{}", job.attempts, job.max_attempts),
                        job.last_error.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        JobsCommand::Show { id } => {
            let (job, attempts) = store
                .job(JobId(id))
                .await?
                .ok_or_else(|| Failure(format!("no job {id}"), 1))?;
            println!(
                "job {} (rule {}, delivery {})",
                job.id, job.rule, job.delivery_seq
            );
            println!("  state:    {}", job.state.as_str());
            println!("  subject:  {}", job.subject.as_deref().unwrap_or("-"));
            println!("  attempts: {}/{}", job.attempts, job.max_attempts);
            println!("  next run: {}", rfc3339(job.run_at));
            for a in &attempts {
                println!(
                    "  attempt {} at {}: {}",
                    a.number,
                    rfc3339(a.started_at),
                    a.outcome
                );
                if let Some(error) = &a.error {
                    println!("    error: {error}");
                }
                for action in &a.actions {
                    println!("    {action}");
                }
            }
            Ok(())
        }
        JobsCommand::Replay { id } => replay_dead(store, vec![id], false).await,
    }
}

async fn replay_dead(store: &dyn Store, ids: Vec<i64>, all: bool) -> Result<(), Failure> {
    let ids = if all {
        let filter = JobFilter {
            state: Some(JobState::Dead),
            limit: u32::MAX,
            ..Default::default()
        };
        store
            .list_jobs(&filter)
            .await?
            .into_iter()
            .map(|j| j.id.0)
            .collect()
    } else {
        ids
    };
    if ids.is_empty() {
        return Err(Failure("give job ids, or --all".into(), 2));
    }
    let mut refused = 0;
    for id in ids {
        if store
            .replay_job(JobId(id), time::OffsetDateTime::now_utc())
            .await?
        {
            println!("job {id} will run again");
        } else {
            refused += 1;
            eprintln!("job {id} is not a dead letter (or does not exist)");
        }
    }
    if refused > 0 {
        return Err(Failure(format!("{refused} job(s) not replayed"), 1));
    }
    Ok(())
}

/// The typed event name of a stored delivery, or its raw event type if it cannot be parsed.
fn event_name(config: &Config, row: &StoredDelivery) -> String {
    let parser = config
        .endpoints
        .get(&row.endpoint)
        .map(|ep| hookbridge_providers::parser(ep.provider.kind().as_str()))
        .unwrap_or_else(|| hookbridge_providers::parser(&row.provider));
    parser
        .ok()
        .and_then(|p| p.parse(&row.to_raw()).ok())
        .map_or_else(|| row.event_type.clone(), |e| e.name().to_string())
}

/// A Travis CI provider that signs with the given private key, for `send --signing-key`.
fn travis_signer(path: &Path) -> Result<Arc<dyn Provider>, Failure> {
    use hookbridge_providers::travis::{Travis, TravisOptions, parse_signing_key_pem};
    let pem = std::fs::read_to_string(path)
        .map_err(|e| Failure(format!("cannot read {}: {e}", path.display()), 2))?;
    let key =
        parse_signing_key_pem(&pem).map_err(|e| Failure(format!("{}: {e}", path.display()), 2))?;
    let travis = Travis::new(Vec::new(), TravisOptions::default())?;
    Ok(Arc::new(travis.with_test_signing_key(key)))
}

/// A random RFC 4122 version 4 identifier, as GitHub's delivery ids look.
fn new_delivery_id() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            time::OffsetDateTime::now_utc()
                .unix_timestamp_nanos()
                .unsigned_abs(),
        );
        hasher.write_usize(i);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn load_or_dev(path: Option<&Path>) -> Result<Config, Failure> {
    Ok(match path {
        Some(path) => Config::load(path)?,
        None => Config::parse(DEV_CONFIG, None, Path::new("."))?,
    })
}

async fn open_store(config: &Config) -> Result<Arc<dyn Store>, Failure> {
    Ok(config.store.open().await?)
}

impl CapturedDelivery {
    fn load(&self, endpoint: &str, default_json: bool) -> Result<RawDelivery, Failure> {
        let body = std::fs::read(&self.body)
            .map_err(|e| Failure(format!("cannot read {}: {e}", self.body.display()), 2))?;
        let mut lines: Vec<String> = Vec::new();
        if let Some(file) = &self.headers_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Failure(format!("cannot read {}: {e}", file.display()), 2))?;
            lines.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned),
            );
        }
        lines.extend(self.headers.iter().cloned());
        let mut headers = HeaderMap::new();
        for line in &lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| Failure(format!("header {line:?} is not `Name: value`"), 2))?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| Failure(format!("invalid header name in {line:?}"), 2))?;
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| Failure(format!("invalid header value in {line:?}"), 2))?;
            headers.append(name, value);
        }
        if default_json && !headers.contains_key(http::header::CONTENT_TYPE) {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        let mut raw = RawDelivery::new(endpoint, headers, body);
        if let Some(url) = &self.url {
            raw.uri = url
                .parse()
                .map_err(|_| Failure(format!("{url:?} is not a request path"), 2))?;
        }
        Ok(raw)
    }
}

/// `hookbridge rescan`: runs a github-jira integration's rescan of one repository and prints
/// its report; fails (exit 1) when an object could not be reconciled.
async fn rescan(
    config: Option<&Path>,
    integration: &str,
    repo: &str,
    dry_run: bool,
    since: Option<&str>,
    json: bool,
) -> Result<(), Failure> {
    use hookbridge_sync_engine::integrations::Handle;
    use hookbridge_sync_engine::integrations::github_jira::RescanOptions;
    let since = since
        .map(|text| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|e| Failure(format!("--since {text:?} is not RFC 3339: {e}"), 2))
        })
        .transpose()?;
    let config = load_or_dev(config)?;
    let store = open_store(&config).await?;
    let result = async {
        let services = hookbridge_server::services::Services::build(&config, store.clone())?;
        let found = services
            .integration(integration)
            .ok_or_else(|| Failure(format!("no integration named {integration:?}"), 2))?;
        let Handle::GithubJira(github_jira) = &found.handle else {
            return Err(Failure(
                format!("integration {integration:?} is not a github-jira integration"),
                2,
            ));
        };
        let report = github_jira
            .rescan(store.clone(), repo, &RescanOptions { dry_run, since })
            .await
            .map_err(|e| Failure(e.to_string(), 1))?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "rescan of {}{}: {} scanned, {} {}",
                report.repo,
                if report.dry_run { " (dry run)" } else { "" },
                report.scanned,
                report.changed,
                if report.dry_run {
                    "to change"
                } else {
                    "changed"
                }
            );
            for action in &report.actions {
                println!("  {action}");
            }
            for error in &report.errors {
                println!("  error: {error}");
            }
        }
        if report.errors.is_empty() {
            Ok(())
        } else {
            Err(Failure(
                format!("{} object(s) could not be reconciled", report.errors.len()),
                1,
            ))
        }
    }
    .await;
    store.close().await;
    result
}

/// `hookbridge routes`: the routes and defaults of a travis-chat integration, read and
/// changed in the store the server reads them from.
async fn routes(
    config: Option<&Path>,
    integration: Option<&str>,
    command: RoutesCommand,
) -> Result<(), Failure> {
    use hookbridge_sync_engine::integrations::travis_chat::{NewRoute, RouteSink};
    use hookbridge_sync_engine::integrations::{Handle, IntegrationError};
    let config = load_or_dev(config)?;
    let store = open_store(&config).await?;
    let result = async {
        let services = hookbridge_server::services::Services::build(&config, store.clone())?;
        let chats: Vec<_> = services
            .integrations()
            .iter()
            .filter_map(|i| match &i.handle {
                Handle::TravisChat(chat) if integration.is_none_or(|n| n == i.name) => {
                    Some(chat.clone())
                }
                _ => None,
            })
            .collect();
        let chat = match (chats.as_slice(), integration) {
            ([chat], _) => chat.clone(),
            ([], Some(name)) => {
                return Err(Failure(
                    format!("no travis-chat integration named {name:?}"),
                    2,
                ));
            }
            ([], None) => {
                return Err(Failure(
                    "no travis-chat integration is configured".into(),
                    2,
                ));
            }
            (_, _) => {
                return Err(Failure(
                    "several travis-chat integrations are configured: give --integration NAME"
                        .into(),
                    2,
                ));
            }
        };
        let store = store.as_ref();
        let failed = |e: IntegrationError| Failure(e.to_string(), 1);
        match command {
            RoutesCommand::List { repo, json } => {
                let routes = chat.routes(store, repo.as_deref()).await.map_err(failed)?;
                if json {
                    for route in &routes {
                        println!("{}", serde_json::to_string(route)?);
                    }
                } else if routes.is_empty() {
                    println!("no routes");
                } else {
                    for route in &routes {
                        println!("{route}");
                    }
                }
                Ok(())
            }
            RoutesCommand::Add {
                repo,
                targets,
                events,
                slack_url_env,
                slack_url_file,
                webhook_url,
                webhook_secret_env,
                webhook_secret_file,
            } => {
                let sink = match (secret_from(slack_url_env, slack_url_file)?, webhook_url) {
                    (Some(url), _) => Some(RouteSink::Slack { url }),
                    (None, Some(url)) => {
                        let secret = secret_from(webhook_secret_env, webhook_secret_file)?
                            .ok_or_else(|| {
                                Failure(
                                    "--webhook-url needs --webhook-secret-env or --webhook-secret-file"
                                        .into(),
                                    2,
                                )
                            })?;
                        Some(RouteSink::Webhook { url, secret })
                    }
                    (None, None) => None,
                };
                let new = NewRoute {
                    repo,
                    targets,
                    events: (!events.is_empty()).then_some(events),
                    sink,
                };
                for route in chat.add_route(store, new).await.map_err(failed)? {
                    println!("added {route}");
                }
                Ok(())
            }
            RoutesCommand::Remove { repo, target } => {
                let removed = chat
                    .remove_routes(store, &repo, target.as_deref())
                    .await
                    .map_err(failed)?;
                if removed.is_empty() {
                    return Err(Failure(format!("no route of {repo:?} to remove"), 1));
                }
                for route in &removed {
                    println!("removed {route}");
                }
                Ok(())
            }
            RoutesCommand::Defaults {
                events,
                targets,
                reset,
                json,
            } => {
                let defaults = if reset {
                    chat.reset_defaults(store).await
                } else if events.is_empty() && targets.is_empty() {
                    chat.defaults(store).await
                } else {
                    chat.set_defaults(
                        store,
                        (!events.is_empty()).then_some(events),
                        (!targets.is_empty()).then_some(targets),
                    )
                    .await
                }
                .map_err(failed)?;
                if json {
                    println!("{}", serde_json::to_string(&defaults)?);
                } else {
                    println!("{defaults}");
                }
                Ok(())
            }
        }
    }
    .await;
    store.close().await;
    result
}

/// A secret for `routes add`, from an environment variable or a file: the same sources, and
/// the same trimming, as secrets in the configuration file. None when neither is given.
fn secret_from(
    env: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<hookbridge_core::Secret>, Failure> {
    let source = match (env, file) {
        (Some(env), _) => SecretSource::Env { env },
        (None, Some(file)) => SecretSource::File { file },
        (None, None) => return Ok(None),
    };
    source
        .resolve(Path::new("."))
        .map(Some)
        .map_err(|m| Failure(m, 2))
}

// ---- operations: unfinished deliveries, what a delivery caused, bulk replay, circuits ----

/// The filters of `deliveries replay` (any of them makes it a bulk replay).
#[derive(Debug, Args)]
struct ReplayArgs {
    /// Only deliveries received at or after this time: RFC 3339, or a duration ago (`2h`).
    #[arg(long)]
    since: Option<String>,
    /// Only deliveries received before this time: RFC 3339, or a duration ago.
    #[arg(long)]
    until: Option<String>,
    /// Only deliveries of this endpoint.
    #[arg(long)]
    endpoint: Option<String>,
    /// Only jobs of this rule (and, with --dry-run, only this rule's diff).
    #[arg(long)]
    rule: Option<String>,
    /// What to replay: `dead` (dead letters), `failed` (dead letters and unparseable
    /// deliveries), `done` (applied jobs: their rule runs again) or `skipped`. Required to
    /// replay; optional with --dry-run (then every delivery in the range).
    #[arg(long)]
    status: Option<hookbridge_sync_engine::engine::ReplayStatus>,
    /// At most this many jobs (with --dry-run: deliveries).
    #[arg(long, default_value_t = 1000)]
    limit: u32,
    /// Change nothing: print, per delivery, the actions the current rules would take next to
    /// the actions recorded when it first ran, as a diff (`-` recorded only, `+` now only).
    #[arg(long)]
    dry_run: bool,
    /// With --dry-run: print the diffs as JSON, one delivery per line.
    #[arg(long, requires = "dry_run")]
    json: bool,
}

impl ReplayArgs {
    fn is_bulk(&self) -> bool {
        self.since.is_some()
            || self.until.is_some()
            || self.endpoint.is_some()
            || self.rule.is_some()
            || self.status.is_some()
    }

    fn filter(&self) -> Result<hookbridge_sync_engine::engine::ReplayFilter, Failure> {
        let now = time::OffsetDateTime::now_utc();
        Ok(hookbridge_sync_engine::engine::ReplayFilter {
            since: self
                .since
                .as_deref()
                .map(|t| parse_time(t, now))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|t| parse_time(t, now))
                .transpose()?,
            endpoint: self.endpoint.clone(),
            rule: self.rule.clone(),
            status: self.status,
            limit: self.limit.max(1),
        })
    }
}

/// `90`, `90s`, `10m`, `2h`, `7d`.
fn parse_duration(text: &str) -> Result<std::time::Duration, Failure> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || {
        Failure(
            format!("{text:?} is not a duration: a number and s, m, h or d (e.g. 10m)"),
            2,
        )
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    Ok(std::time::Duration::from_secs(
        n.checked_mul(seconds).ok_or_else(bad)?,
    ))
}

/// RFC 3339, or a duration before `now`.
fn parse_time(text: &str, now: time::OffsetDateTime) -> Result<time::OffsetDateTime, Failure> {
    if let Ok(at) =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Ok(at);
    }
    let ago = parse_duration(text).map_err(|_| {
        Failure(
            format!("{text:?} is neither RFC 3339 (2024-05-01T00:00:00Z) nor a duration ago (2h)"),
            2,
        )
    })?;
    now.checked_sub(time::Duration::try_from(ago).map_err(|e| Failure(e.to_string(), 2))?)
        .ok_or_else(|| Failure(format!("{text:?} is too far back"), 2))
}

/// `deliveries list --unfinished`.
async fn list_unfinished(
    config: &Config,
    store: &dyn Store,
    endpoint: Option<String>,
    older_than: Option<std::time::Duration>,
    rule: Option<String>,
    limit: u32,
    json: bool,
) -> Result<(), Failure> {
    let now = time::OffsetDateTime::now_utc();
    let received_before = older_than
        .map(|d| {
            time::Duration::try_from(d)
                .ok()
                .and_then(|d| now.checked_sub(d))
                .ok_or_else(|| Failure("--older-than is too long".into(), 2))
        })
        .transpose()?;
    let filter = hookbridge_sync_engine::store::UnfinishedFilter {
        received_before,
        endpoint: endpoint.map(EndpointName::new),
        rule,
        after_seq: None,
        limit,
    };
    let rows = store.unfinished_deliveries(&filter).await?;
    if json {
        for row in &rows {
            println!("{}", serde_json::to_string(row)?);
        }
        return Ok(());
    }
    println!(
        "{:>8}  {:<25}  {:>8}  {:<16}  {:<24}  {:<36}  JOBS",
        "SEQ", "RECEIVED", "AGE", "ENDPOINT", "EVENT", "DELIVERY ID"
    );
    for row in &rows {
        let d = &row.delivery;
        let jobs = if row.jobs.is_empty() {
            "not dispatched yet".to_owned()
        } else {
            row.jobs
                .iter()
                .map(|j| {
                    let mut text = format!(
                        "{} {} (job {}, {}/{})",
                        j.rule,
                        j.progress(),
                        j.id,
                        j.attempts,
                        j.max_attempts
                    );
                    if let Some(error) = &j.last_error {
                        text.push_str(": ");
                        text.push_str(error);
                    }
                    text
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        println!(
            "{:>8}  {:<25}  {:>8}  {:<16}  {:<24}  {:<36}  {}",
            d.seq,
            rfc3339(d.received_at),
            age((now - d.received_at).whole_seconds()),
            d.endpoint,
            event_name(config, d),
            d.delivery_id,
            jobs
        );
    }
    if rows.len() as u64 >= u64::from(limit) {
        eprintln!("(first {limit}; raise --limit to see more)");
    }
    Ok(())
}

/// `3d4h`, `12m`, `40s`.
fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// What hookbridge did because of a delivery: its jobs, their attempts, calls and actions.
async fn print_jobs(store: &dyn Store, seq: i64) -> Result<(), Failure> {
    let jobs = store
        .list_jobs(&JobFilter {
            delivery_seq: Some(seq),
            limit: 500,
            ..JobFilter::default()
        })
        .await?;
    if jobs.is_empty() {
        println!("  jobs: none");
        return Ok(());
    }
    println!("  jobs:");
    for job in jobs.iter().rev() {
        println!(
            "    job {} rule {}: {} (attempts {}/{})",
            job.id,
            job.rule,
            job.progress(),
            job.attempts,
            job.max_attempts
        );
        let Some((_, attempts)) = store.job(job.id).await? else {
            continue;
        };
        for a in &attempts {
            println!(
                "      attempt {} at {}: {}{}",
                a.number,
                rfc3339(a.started_at),
                a.outcome,
                a.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
            for call in &a.calls {
                println!("        call   {call}");
            }
            // Lines a call already says are not repeated.
            for line in a
                .actions
                .iter()
                .filter(|l| !a.calls.iter().any(|c| &c.summary == *l))
            {
                println!("        action {line}");
            }
        }
    }
    Ok(())
}

/// `deliveries replay` with filters or --dry-run.
async fn replay_command(
    config: &Config,
    store: &Arc<dyn Store>,
    delivery: Option<&str>,
    args: ReplayArgs,
) -> Result<(), Failure> {
    use hookbridge_sync_engine::engine::{replay, select_deliveries};
    if delivery.is_some() && args.is_bulk() {
        return Err(Failure("give a delivery or filters, not both".into(), 2));
    }
    let filter = args.filter()?;
    if !args.dry_run {
        let report = replay(store.as_ref(), &filter, time::OffsetDateTime::now_utc())
            .await
            .map_err(|e| Failure(e.to_string(), 2))?;
        for id in &report.jobs {
            println!("job {id} will run again");
        }
        for seq in &report.deliveries {
            println!("delivery {seq} will be dispatched again through the current rules");
        }
        for id in &report.skipped {
            eprintln!("job {id} changed state meanwhile; left alone");
        }
        println!(
            "replayed {} job(s) and {} delivery(ies)",
            report.jobs.len(),
            report.deliveries.len()
        );
        if report.truncated {
            eprintln!(
                "(stopped at --limit {}: more match; run again)",
                filter.limit
            );
        }
        return Ok(());
    }
    let services = hookbridge_server::services::Services::build(config, store.clone())?;
    let engine = hookbridge_server::build_engine(config, store.clone(), &services)?;
    let (seqs, truncated) = match delivery {
        Some(text) => (vec![resolve_delivery(store.as_ref(), text).await?], false),
        None => select_deliveries(store.as_ref(), &filter).await?,
    };
    let mut changed = 0;
    for seq in &seqs {
        let diff = engine
            .replay_diff(*seq, filter.rule.as_deref())
            .await
            .map_err(|e| Failure(e.to_string(), 1))?;
        if diff.changed() {
            changed += 1;
        }
        if args.json {
            println!("{}", serde_json::to_string(&diff)?);
            continue;
        }
        let row = store.delivery(*seq).await?;
        println!(
            "delivery {seq} ({}, {}{}){}:",
            row.as_ref()
                .map(|d| d.endpoint.to_string())
                .unwrap_or_default(),
            diff.event.as_deref().unwrap_or("unparseable"),
            row.as_ref()
                .map(|d| format!(", received {}", rfc3339(d.received_at)))
                .unwrap_or_default(),
            if diff.changed() { "" } else { " unchanged" }
        );
        if let Some(error) = &diff.error {
            println!("  cannot dry-run: {error}");
        }
        for rule in &diff.rules {
            println!(
                "  rule {}: recorded {}; now {}{}",
                rule.rule,
                rule.recorded,
                rule.now,
                if rule.changed { "" } else { " (same)" }
            );
            if rule.lines.is_empty() {
                println!("      (no actions)");
            }
            for line in &rule.lines {
                println!("    {}", line.unified());
            }
        }
    }
    if !args.json {
        println!("{} delivery(ies), {changed} with changes", seqs.len());
    }
    if truncated {
        eprintln!("(stopped at --limit {}: more match)", filter.limit);
    }
    Ok(())
}

/// `hookbridge circuits`: asks the running server's admin API.
async fn circuits(config: &Config, url: Option<&str>, json: bool) -> Result<(), Failure> {
    let token = config.admin_token.as_ref().ok_or_else(|| {
        Failure(
            "the admin API is off: set [admin] token in the configuration".into(),
            2,
        )
    })?;
    let base = match url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None if config.listen.port() == 0 => {
            return Err(Failure(
                "server.listen has no fixed port: give --url".into(),
                2,
            ));
        }
        None => {
            let mut addr = config.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        }
    };
    let token = std::str::from_utf8(token.expose())
        .map_err(|_| Failure("the admin token is not text".into(), 2))?;
    let response = reqwest::Client::new()
        .get(format!("{base}/admin/circuits"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| Failure(format!("cannot reach {base}: {}", e.without_url()), 1))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| Failure(format!("unexpected answer from {base}: {e}"), 1))?;
    if !status.is_success() {
        return Err(Failure(format!("{base} answered {status}: {body}"), 1));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    if body["enabled"] != true {
        println!(
            "the circuit breaker is off on {} ([engine] circuit_failures = 0)",
            body["instance"].as_str().unwrap_or("?")
        );
        return Ok(());
    }
    println!(
        "instance {}: a circuit opens after {} consecutive transient failures, for {}s",
        body["instance"].as_str().unwrap_or("?"),
        body["failures"],
        body["cooldown_secs"]
    );
    println!(
        "{:<28}  {:<9}  {:>8}  {:>6}  {:>6}  {:<25}  LAST ERROR",
        "TARGET", "STATE", "FAILURES", "OPENED", "PAUSED", "PROBE AT"
    );
    for c in body["circuits"].as_array().into_iter().flatten() {
        println!(
            "{:<28}  {:<9}  {:>8}  {:>6}  {:>6}  {:<25}  {}",
            c["target"].as_str().unwrap_or(""),
            c["state"].as_str().unwrap_or(""),
            c["consecutive_failures"],
            c["opened_total"],
            c["paused_total"],
            c["probe_at"].as_str().unwrap_or("-"),
            c["last_error"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// `hookbridge heal`: each healer once, now, holding its lease; prints each report.
async fn heal(
    config: Option<&Path>,
    endpoint: Option<&str>,
    options: hookbridge_sync_engine::heal::RunOptions,
    json: bool,
) -> Result<(), Failure> {
    use hookbridge_sync_engine::heal::{HealOutcome, instance_holder};
    let config = load_or_dev(config)?;
    if config.heal.is_empty() {
        return Err(Failure(
            "no endpoint heals: add heal = { connection = \"...\" } to an [endpoints.<name>] table"
                .into(),
            2,
        ));
    }
    let endpoint = endpoint.map(EndpointName::new);
    if let Some(endpoint) = &endpoint
        && !config.heal.iter().any(|h| &h.endpoint == endpoint)
    {
        return Err(Failure(
            format!(
                "endpoint {endpoint:?} does not heal (it has no heal = {{ connection = ... }})"
            ),
            2,
        ));
    }
    let store = open_store(&config).await?;
    let services = hookbridge_server::services::Services::build(&config, store.clone())?;
    let healers = config.build_healers(services.connections())?;
    let holder = format!("cli-{}", instance_holder());
    let results = healers
        .run_once(store.as_ref(), &holder, endpoint.as_ref(), &options)
        .await;
    store.close().await;
    let mut errors = 0;
    for (name, result) in &results {
        let report = match result {
            Ok(report) => report,
            Err(error) => {
                errors += 1;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"healer": name, "error": error.to_string()})
                    );
                } else {
                    println!("{name}: error: {error}");
                }
                continue;
            }
        };
        if json {
            println!("{}", serde_json::to_string(report)?);
            continue;
        }
        let dry = if report.dry_run { " (dry run)" } else { "" };
        println!(
            "{name} ({}): {} read, {} missing, {} redelivered, {} failed{dry}",
            report.source,
            report.scanned,
            report.missing(),
            report.redelivered(),
            report.failed()
        );
        for item in &report.items {
            let label = match &item.outcome {
                HealOutcome::Redelivered => "redelivered",
                HealOutcome::WouldRedeliver => "would redeliver",
                HealOutcome::Ingested => "ingested",
                HealOutcome::WouldIngest => "would ingest",
                HealOutcome::AlreadyRequested(_) => "asked before",
                HealOutcome::Deferred => "deferred",
                HealOutcome::Failed(_) => "failed",
                HealOutcome::GaveUp(_) => "gave up",
                HealOutcome::Failing(_) => "failing",
            };
            println!("  {label:<16} {}  {}", item.id, item.summary);
            match &item.outcome {
                HealOutcome::Failed(why) | HealOutcome::GaveUp(why) => {
                    println!("  {:<16} {why}", "")
                }
                HealOutcome::AlreadyRequested(_)
                | HealOutcome::Deferred
                | HealOutcome::Failing(_) => {
                    println!("  {:<16} {}", "", item.outcome)
                }
                _ => {}
            }
        }
        for note in &report.notes {
            println!("  note: {note}");
        }
    }
    if errors > 0 {
        return Err(Failure(format!("{errors} healer(s) failed"), 1));
    }
    Ok(())
}
