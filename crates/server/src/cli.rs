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
    },
    /// Dispatch a delivery again through the current rules.
    Replay {
        /// The delivery: its inbox sequence number or its delivery id.
        delivery: String,
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
            let result = deliveries(&config, store.as_ref(), command).await;
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
            let engine = hookbridge_server::build_engine(&config, store.clone())?;
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
            let plan = hookbridge_server::hooks::HookPlan {
                public_url,
                connections: &config.connections,
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
            let changes = plan.run(mode).await.map_err(|e| Failure(e, 1))?;
            for change in &changes {
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
    }
}

async fn deliveries(
    config: &Config,
    store: &dyn Store,
    command: DeliveriesCommand,
) -> Result<(), Failure> {
    match command {
        DeliveriesCommand::List {
            endpoint,
            limit,
            before,
            json,
        } => {
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
        DeliveriesCommand::Replay { delivery } => {
            let seq = resolve_delivery(store, &delivery).await?;
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
