//! The load generator: `loadgen --url http://127.0.0.1:8080/hooks/github --connections 32
//! --duration 10`. Prints the report as JSON on stdout; `--acked-out FILE` writes the id of
//! every acknowledged delivery, one per line, for the store check.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use hookbridge_bench::loadgen::{LoadConfig, run};
use hookbridge_bench::{SAMPLE, SECRET};

/// Closed-loop load of signed GitHub deliveries.
#[derive(Debug, Parser)]
struct Args {
    /// The webhook URL.
    #[arg(long, default_value = "http://127.0.0.1:8080/hooks/github")]
    url: http::Uri,
    /// Connections (one request in flight on each).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Deliveries per second over all connections (open loop); closed loop without it.
    #[arg(long)]
    rate: Option<f64>,
    /// The endpoint's secret.
    #[arg(long, default_value = SECRET)]
    secret: String,
    /// The body to send.
    #[arg(long, default_value = SAMPLE)]
    body: PathBuf,
    /// `X-GitHub-Event`.
    #[arg(long, default_value = "issues")]
    event: String,
    /// Prefix of the delivery ids.
    #[arg(long, default_value = "bench")]
    id_prefix: String,
    /// Spread the deliveries over this many issue numbers (each body signed anew).
    #[arg(long)]
    vary_issue: Option<u32>,
    /// Seconds to wait for one answer.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
    /// Write the ids of acknowledged deliveries here, one per line.
    #[arg(long)]
    acked_out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let body = match std::fs::read(&args.body) {
        Ok(body) => body,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.body.display());
            return ExitCode::from(2);
        }
    };
    let cfg = LoadConfig {
        url: args.url,
        connections: args.connections.max(1),
        duration: Duration::from_secs_f64(args.duration),
        warmup: Duration::from_secs_f64(args.warmup),
        rate: args.rate,
        secret: args.secret.into_bytes(),
        body: body.into(),
        event: args.event,
        id_prefix: args.id_prefix,
        vary_issue: args.vary_issue,
        timeout: Duration::from_secs_f64(args.timeout),
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = match runtime.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let (report, acked) = match runtime.block_on(run(cfg)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = args.acked_out {
        let mut text = String::with_capacity(acked.len() * 40);
        for id in &acked {
            text.push_str(id);
            text.push('\n');
        }
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let json = serde_json::to_string_pretty(&report).expect("a report serializes");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{json}");
    ExitCode::SUCCESS
}
