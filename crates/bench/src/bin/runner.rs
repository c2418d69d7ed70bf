//! The load benchmark: `./scripts/bench` (or `./scripts/bench --quick`) builds the release
//! binaries and runs this.
//!
//! For each server under test — the ceiling (hyper + HMAC), hookbridge on SQLite, the Node
//! `@octokit/webhooks` receiver, hookbridge on PostgreSQL — it measures the time from spawn
//! to the first successful `/healthz`, the idle RSS, then runs the load generator at each
//! connection count (1 and 32) while sampling the server's RSS and CPU time, and reads its
//! peak RSS (`VmHWM`). hookbridge is then killed with SIGKILL and every acknowledged delivery
//! is looked up in its store; a restart on the filled store is timed too. Last, hookbridge
//! with one declarative `http` rule calling a mock service measures the sync latency
//! (delivery sent -> the rule's call arriving) at low and high load.
//!
//! Prints a table and the targets met or not, and writes `target/bench/results.json`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use hookbridge_bench::loadgen::{Latency, Report, send_time_unix_nanos};
use hookbridge_bench::mock::Mock;
use hookbridge_bench::procfs::{cpu_seconds, memory};
use hookbridge_bench::{SAMPLE, SECRET};
use hookbridge_core::DeliveryId;
use hookbridge_sync_engine::store::{
    PostgresOptions, PostgresStore, SqliteOptions, SqliteStore, Store,
};
use serde::Serialize;
use sqlx::Connection as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Parts of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Part {
    /// The ceiling server (hyper + HMAC, no parse, no store).
    Ceiling,
    /// hookbridge on SQLite.
    Sqlite,
    /// The Node `@octokit/webhooks` receiver.
    Node,
    /// hookbridge on PostgreSQL.
    Postgres,
    /// End-to-end sync latency through a mock API service.
    Sync,
}

/// hookbridge's load benchmark.
#[derive(Debug, Parser)]
struct Args {
    /// Short runs (2 s each, 0.5 s warm-up) to check that everything works.
    #[arg(long)]
    quick: bool,
    /// Measured seconds per load run (default 10, or 2 with --quick).
    #[arg(long)]
    duration: Option<f64>,
    /// Warm-up seconds before each measured run (default 1, or 0.5 with --quick).
    #[arg(long)]
    warmup: Option<f64>,
    /// Connection counts to run, in order.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 32])]
    connections: Vec<usize>,
    /// Run only these parts (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Part>,
    /// Where `hookbridge`, `loadgen` and `ceiling` are (default: beside this program).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// PostgreSQL for the PostgreSQL store (trust auth).
    #[arg(
        long,
        env = "HOOKBRIDGE_BENCH_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pg_url: String,
    /// The schema the benchmark owns (dropped and recreated).
    #[arg(long, default_value = "hookbridge_bench")]
    pg_schema: String,
    /// Output directory (default: `target/bench` of the workspace).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Deliveries per second of the low-load sync-latency run.
    #[arg(long, default_value_t = 20.0)]
    low_rate: f64,
    /// `HOOKBRIDGE_LOG` for the hookbridge servers (default: unset, the default `info`).
    #[arg(long)]
    server_log: Option<String>,
    /// Keep the databases of the run (SQLite files under `target/bench/run`, the PostgreSQL
    /// schema); by default they are removed once checked.
    #[arg(long)]
    keep_data: bool,
    /// Worker threads of the load generator (default: one per CPU).
    #[arg(long)]
    loadgen_threads: Option<usize>,
}

struct Ctx {
    bin_dir: PathBuf,
    out_dir: PathBuf,
    run_dir: PathBuf,
    body: Bytes,
    duration: f64,
    warmup: f64,
    connections: Vec<usize>,
    pg_url: String,
    pg_schema: String,
    low_rate: f64,
    server_log: Option<String>,
    loadgen_threads: Option<usize>,
    keep_data: bool,
}

impl Ctx {
    fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}

/// One load run against a server.
#[derive(Debug, Serialize)]
struct RunResult {
    load: Report,
    /// Server CPU time during the run (warm-up included), seconds.
    server_cpu_s: f64,
    /// Server CPU time per answered request, microseconds.
    server_cpu_us_per_req: f64,
    /// Largest RSS sampled during the run (every 20 ms), KiB.
    max_rss_kib: u64,
}

#[derive(Debug, Default, Serialize)]
struct StoreCheck {
    /// Deliveries acknowledged (2xx) over all runs.
    acked: u64,
    /// Rows in the store for the endpoint.
    stored: u64,
    /// Acknowledged but not in the store: must be 0.
    missing: u64,
    missing_examples: Vec<String>,
    /// Deliveries still `received` (not yet dispatched by the engine) when the server was
    /// killed: work the ingest measurement left behind.
    undispatched: u64,
    /// Deliveries read back through the `Store` API and compared byte for byte.
    sampled: usize,
    sample_mismatches: usize,
    error: Option<String>,
}

impl StoreCheck {
    fn ok(&self) -> bool {
        self.error.is_none() && self.missing == 0 && self.sample_mismatches == 0
    }
}

#[derive(Debug, Default, Serialize)]
struct ServerResult {
    name: String,
    skipped: Option<String>,
    error: Option<String>,
    /// Spawn -> first `200` from `/healthz`, on a new store.
    ready_ms: Option<f64>,
    /// Spawn -> first `200` from `/healthz`, restarted on the filled store.
    restart_ready_ms: Option<f64>,
    /// RSS one second after ready, KiB.
    idle_rss_kib: Option<u64>,
    /// `VmHWM` after the load runs, KiB.
    peak_rss_kib: Option<u64>,
    runs: Vec<RunResult>,
    store_check: Option<StoreCheck>,
}

impl ServerResult {
    fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    fn run(&self, connections: usize) -> Option<&RunResult> {
        self.runs.iter().find(|r| r.load.connections == connections)
    }
}

#[derive(Debug, Serialize)]
struct SyncRun {
    load: Report,
    /// Acknowledged deliveries, each of which must reach the mock once.
    acked: u64,
    /// Of those, how many reached the mock before the drain timeout.
    arrived: u64,
    /// Extra calls for deliveries already seen (retries).
    repeats: u64,
    /// Delivery sent -> the rule's call arriving at the mock.
    latency_ms: Latency,
    /// From the end of the load to the last arrival, seconds.
    drain_s: f64,
    /// Arrivals per second, first send to last arrival.
    throughput: f64,
}

#[derive(Debug, Default, Serialize)]
struct SyncResult {
    skipped: Option<String>,
    error: Option<String>,
    low: Option<SyncRun>,
    high: Option<SyncRun>,
    peak_rss_kib: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Target {
    name: String,
    target: String,
    measured: String,
    /// `None`: not measured in this run.
    met: Option<bool>,
}

#[derive(Debug, Serialize)]
struct Machine {
    date: String,
    cpus: usize,
    cpu_model: String,
    kernel: String,
    loadavg_start: String,
    loadavg_end: String,
    git: String,
}

#[derive(Debug, Serialize)]
struct Results {
    machine: Machine,
    duration_s: f64,
    warmup_s: f64,
    connections: Vec<usize>,
    body_bytes: usize,
    servers: Vec<ServerResult>,
    sync: Option<SyncResult>,
    criterion_parse_typed_mb_s: Option<f64>,
    targets: Vec<Target>,
}

/// A child server process, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    fn spawn(mut cmd: Command, addr: SocketAddr, log: PathBuf) -> Result<(Self, Instant), String> {
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let started = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
        Ok((Self { child, addr, log }, started))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time from `started` to the first `200` from `/healthz`.
    async fn wait_ready(&mut self, started: Instant) -> Result<f64, String> {
        let deadline = started + Duration::from_secs(60);
        loop {
            if healthz(self.addr).await {
                return Ok(started.elapsed().as_secs_f64() * 1000.0);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "exited with {status} before it was ready; log {}:\n{}",
                    self.log.display(),
                    tail(&self.log)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("not ready after 60 s; log {}", self.log.display()));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// SIGTERM, then SIGKILL after `grace`.
    async fn terminate(&mut self, grace: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Whether `GET /healthz` answers `200`.
async fn healthz(addr: SocketAddr) -> bool {
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut buf = [0u8; 64];
        let mut n = 0;
        while n < 12 {
            let read = stream.read(&mut buf[n..]).await.ok()?;
            if read == 0 {
                break;
            }
            n += read;
        }
        Some(buf[..n].starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(Duration::from_secs(1), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("an ephemeral port on 127.0.0.1")
}

/// Options of one load run.
struct LoadSpec<'a> {
    connections: usize,
    rate: Option<f64>,
    vary_issue: Option<u32>,
    prefix: &'a str,
    acked_out: Option<&'a Path>,
}

/// Runs the load generator against `server`, sampling its RSS and CPU meanwhile.
async fn load(ctx: &Ctx, server: &Server, spec: &LoadSpec<'_>) -> Result<RunResult, String> {
    let pid = server.pid();
    let mut cmd = tokio::process::Command::new(ctx.bin("loadgen"));
    cmd.arg("--url")
        .arg(format!("http://{}/hooks/github", server.addr))
        .arg("--connections")
        .arg(spec.connections.to_string())
        .arg("--duration")
        .arg(ctx.duration.to_string())
        .arg("--warmup")
        .arg(ctx.warmup.to_string())
        .arg("--id-prefix")
        .arg(spec.prefix)
        .arg("--secret")
        .arg(SECRET)
        .arg("--body")
        .arg(SAMPLE);
    if let Some(rate) = spec.rate {
        cmd.arg("--rate").arg(rate.to_string());
    }
    if let Some(n) = spec.vary_issue {
        cmd.arg("--vary-issue").arg(n.to_string());
    }
    if let Some(path) = spec.acked_out {
        cmd.arg("--acked-out").arg(path);
    }
    if let Some(t) = ctx.loadgen_threads {
        cmd.arg("--threads").arg(t.to_string());
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let cpu_before = cpu_seconds(pid).unwrap_or(0.0);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start loadgen: {e}"))?;
    let output = child.wait_with_output();
    tokio::pin!(output);
    let mut max_rss = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let output = loop {
        tokio::select! {
            out = &mut output => break out.map_err(|e| e.to_string())?,
            _ = tick.tick() => {
                if let Some(m) = memory(pid) {
                    max_rss = max_rss.max(m.rss_kib);
                }
            }
        }
    };
    let cpu_after = cpu_seconds(pid).unwrap_or(cpu_before);
    if !output.status.success() {
        return Err(format!(
            "loadgen failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let report: Report = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("unreadable loadgen report: {e}"))?;
    let answered: u64 = report.statuses.values().sum();
    let cpu = cpu_after - cpu_before;
    Ok(RunResult {
        server_cpu_s: cpu,
        server_cpu_us_per_req: cpu * 1e6 / answered.max(1) as f64,
        max_rss_kib: max_rss,
        load: report,
    })
}

fn read_ids(paths: &[PathBuf]) -> Vec<String> {
    let mut ids = Vec::new();
    for path in paths {
        if let Ok(text) = std::fs::read_to_string(path) {
            ids.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_owned));
        }
    }
    ids
}

/// Compares the acknowledged ids with the ids stored, and reads a sample back through the
/// `Store` API, comparing the body byte for byte.
async fn compare(
    acked: &[String],
    stored: Vec<String>,
    store: &dyn Store,
    body: &Bytes,
) -> StoreCheck {
    let stored_count = stored.len() as u64;
    let stored: HashSet<String> = stored.into_iter().collect();
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    let mut check = StoreCheck {
        acked: acked.len() as u64,
        stored: stored_count,
        missing: missing.len() as u64,
        missing_examples: missing.iter().take(5).map(|s| (*s).clone()).collect(),
        ..StoreCheck::default()
    };
    let step = (acked.len() / 50).max(1);
    for id in acked.iter().step_by(step).take(50) {
        check.sampled += 1;
        match store
            .find_deliveries(&DeliveryId::new(id.clone()), None)
            .await
        {
            Ok(found)
                if found.len() == 1
                    && found[0].body == *body
                    && found[0].event_type == "issues" => {}
            _ => check.sample_mismatches += 1,
        }
    }
    check
}

async fn check_sqlite(db: &Path, acked: &[String], body: &Bytes) -> StoreCheck {
    let result = async {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .map_err(|e| e.to_string())?;
        let stored: Vec<String> =
            sqlx::query_scalar("SELECT delivery_id FROM deliveries WHERE endpoint = 'github'")
                .fetch_all(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
        let undispatched: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'received'")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        let store = SqliteStore::open(db, SqliteOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let mut check = compare(acked, stored, &store, body).await;
        check.undispatched = u64::try_from(undispatched).unwrap_or(0);
        store.close().await;
        Ok::<_, String>(check)
    }
    .await;
    result.unwrap_or_else(|error| StoreCheck {
        error: Some(error),
        ..StoreCheck::default()
    })
}

async fn check_postgres(ctx: &Ctx, acked: &[String], body: &Bytes) -> StoreCheck {
    let result = async {
        let mut conn = sqlx::PgConnection::connect(&ctx.pg_url)
            .await
            .map_err(|e| e.to_string())?;
        let stored: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT delivery_id FROM {}.deliveries WHERE endpoint = 'github'",
            ctx.pg_schema
        )))
        .fetch_all(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
        let undispatched: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {}.deliveries WHERE status = 'received'",
            ctx.pg_schema
        )))
        .fetch_one(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        let store = PostgresStore::connect(
            &ctx.pg_url,
            PostgresOptions {
                schema: Some(ctx.pg_schema.clone()),
                max_connections: 2,
                ..PostgresOptions::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut check = compare(acked, stored, &store, body).await;
        check.undispatched = u64::try_from(undispatched).unwrap_or(0);
        store.close().await;
        Ok::<_, String>(check)
    }
    .await;
    result.unwrap_or_else(|error| StoreCheck {
        error: Some(error),
        ..StoreCheck::default()
    })
}

async fn reset_pg_schema(ctx: &Ctx) -> Result<(), String> {
    let mut conn = sqlx::PgConnection::connect(&ctx.pg_url)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        ctx.pg_schema
    )))
    .execute(&mut conn)
    .await
    .map_err(|e| e.to_string())?;
    let _ = conn.close().await;
    Ok(())
}

#[derive(Clone, Copy)]
enum StoreKind {
    Sqlite,
    Postgres,
}

fn hookbridge_config(
    ctx: &Ctx,
    dir: &Path,
    addr: SocketAddr,
    store: StoreKind,
    rule_url: Option<&str>,
) -> String {
    let mut config = format!("[server]\nlisten = \"{addr}\"\n\n");
    match store {
        StoreKind::Sqlite => {
            let _ = write!(
                config,
                "[store]\nkind = \"sqlite\"\npath = \"{}\"\n\n",
                dir.join("hookbridge.db").display()
            );
        }
        StoreKind::Postgres => {
            let _ = write!(
                config,
                "[store]\nkind = \"postgres\"\nurl = {{ env = \"HB_BENCH_DATABASE_URL\" }}\nschema = \"{}\"\n\n",
                ctx.pg_schema
            );
        }
    }
    let _ = write!(
        config,
        "[endpoints.github]\nprovider = \"github\"\nsecret = \"{SECRET}\"\n"
    );
    if let Some(url) = rule_url {
        let _ = write!(
            config,
            "\n[[rules]]\nname = \"bench-sync\"\naction = {{ kind = \"http\", url = \"{url}/api/tickets\", body = '{{\"delivery\": \"{{{{ event.delivery_id }}}}\"}}' }}\n\n[rules.when]\nprovider = \"github\"\nevent = \"issues.*\"\n"
        );
    }
    config
}

fn hookbridge_command(ctx: &Ctx, config: &Path) -> Command {
    let mut cmd = Command::new(ctx.bin("hookbridge"));
    cmd.arg("serve").arg("--config").arg(config);
    cmd.env("HB_BENCH_DATABASE_URL", &ctx.pg_url);
    match &ctx.server_log {
        Some(filter) => cmd.env("HOOKBRIDGE_LOG", filter),
        None => cmd.env_remove("HOOKBRIDGE_LOG"),
    };
    cmd
}

/// Starts a server, measures readiness and idle memory, and runs the load at every
/// connection count. Returns the still-running server.
async fn load_server(
    ctx: &Ctx,
    result: &mut ServerResult,
    cmd: Command,
    addr: SocketAddr,
    acked_files: &mut Vec<PathBuf>,
    keep_acked: bool,
) -> Result<Server, String> {
    let log = ctx.run_dir.join(format!("{}.log", result.name));
    let (mut server, started) = Server::spawn(cmd, addr, log)?;
    result.ready_ms = Some(server.wait_ready(started).await?);
    tokio::time::sleep(Duration::from_secs(1)).await;
    result.idle_rss_kib = memory(server.pid()).map(|m| m.rss_kib);
    for &connections in &ctx.connections {
        let acked = ctx
            .run_dir
            .join(format!("{}-{connections}.acked", result.name));
        let prefix = format!("{}{connections}", result.name);
        let run = load(
            ctx,
            &server,
            &LoadSpec {
                connections,
                rate: None,
                vary_issue: None,
                prefix: &prefix,
                acked_out: keep_acked.then_some(acked.as_path()),
            },
        )
        .await?;
        eprintln!(
            "  {:<20} {:>3} conns: {:>8.0} req/s  p99 {:.2} ms  errors {}",
            result.name, connections, run.load.rps, run.load.latency_ms.p99, run.load.error_total
        );
        result.runs.push(run);
        if keep_acked {
            acked_files.push(acked);
        }
    }
    result.peak_rss_kib = memory(server.pid()).map(|m| m.hwm_kib);
    Ok(server)
}

async fn bench_plain(ctx: &Ctx, name: &str, cmd: Command, addr: SocketAddr) -> ServerResult {
    let mut result = ServerResult::new(name);
    let mut acked = Vec::new();
    match load_server(ctx, &mut result, cmd, addr, &mut acked, false).await {
        Ok(mut server) => server.terminate(Duration::from_secs(5)).await,
        Err(e) => result.error = Some(e),
    }
    result
}

async fn bench_hookbridge(ctx: &Ctx, store: StoreKind) -> ServerResult {
    let name = match store {
        StoreKind::Sqlite => "hookbridge-sqlite",
        StoreKind::Postgres => "hookbridge-postgres",
    };
    let mut result = ServerResult::new(name);
    if let StoreKind::Postgres = store
        && let Err(e) = reset_pg_schema(ctx).await
    {
        result.skipped = Some(e);
        return result;
    }
    let dir = ctx.run_dir.join(name);
    let addr = free_addr();
    let config_path = dir.join("hookbridge.toml");
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            &config_path,
            hookbridge_config(ctx, &dir, addr, store, None),
        )
    });
    if let Err(e) = written {
        result.error = Some(e.to_string());
        return result;
    }
    let mut acked_files = Vec::new();
    let cmd = hookbridge_command(ctx, &config_path);
    match load_server(ctx, &mut result, cmd, addr, &mut acked_files, true).await {
        Ok(mut server) => {
            // No graceful shutdown: what was acknowledged must be in the store anyway.
            server.kill();
        }
        Err(e) => {
            result.error = Some(e);
            return result;
        }
    }
    let acked = read_ids(&acked_files);
    let check = match store {
        StoreKind::Sqlite => check_sqlite(&dir.join("hookbridge.db"), &acked, &ctx.body).await,
        StoreKind::Postgres => check_postgres(ctx, &acked, &ctx.body).await,
    };
    eprintln!(
        "  {name}: store check: {} acknowledged, {} stored, {} missing, {} not yet dispatched at the kill{}",
        check.acked,
        check.stored,
        check.missing,
        check.undispatched,
        check
            .error
            .as_ref()
            .map(|e| format!(", error: {e}"))
            .unwrap_or_default()
    );
    result.store_check = Some(check);
    // Restart on the filled store.
    let log = ctx.run_dir.join(format!("{name}-restart.log"));
    match Server::spawn(hookbridge_command(ctx, &config_path), addr, log) {
        Ok((mut server, started)) => {
            match server.wait_ready(started).await {
                Ok(ms) => result.restart_ready_ms = Some(ms),
                Err(e) => result.error = Some(format!("restart: {e}")),
            }
            server.terminate(Duration::from_secs(20)).await;
        }
        Err(e) => result.error = Some(format!("restart: {e}")),
    }
    if !ctx.keep_data {
        remove_data(ctx, store, &dir).await;
    }
    result
}

/// Removes a run's database: a full run writes gigabytes.
async fn remove_data(ctx: &Ctx, store: StoreKind, dir: &Path) {
    match store {
        StoreKind::Sqlite => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(dir.join(format!("hookbridge.db{suffix}")));
            }
        }
        StoreKind::Postgres => {
            if let Err(e) = reset_pg_schema(ctx).await {
                eprintln!("  cannot drop schema {}: {e}", ctx.pg_schema);
            }
        }
    }
}

/// Installs the Node receiver's dependencies into `out_dir/node` with `npm ci`.
fn prepare_node(ctx: &Ctx) -> Result<PathBuf, String> {
    let node_ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node_ok {
        return Err("node is not installed".into());
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
    let dir = ctx.out_dir.join("node");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for file in ["package.json", "package-lock.json", "server.mjs"] {
        std::fs::copy(src.join(file), dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
    }
    let lock = std::fs::read(dir.join("package-lock.json")).map_err(|e| e.to_string())?;
    let stamp = dir.join("node_modules/.bench-lock");
    if std::fs::read(&stamp).ok().as_ref() != Some(&lock) {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("npm is not available: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "npm ci failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        std::fs::write(&stamp, &lock).map_err(|e| e.to_string())?;
    }
    Ok(dir)
}

async fn bench_node(ctx: &Ctx) -> ServerResult {
    let dir = match prepare_node(ctx) {
        Ok(dir) => dir,
        Err(reason) => {
            eprintln!("  node receiver skipped: {reason}");
            return ServerResult {
                skipped: Some(reason),
                ..ServerResult::new("node-octokit")
            };
        }
    };
    let addr = free_addr();
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("server.mjs"))
        .env("PORT", addr.port().to_string())
        .env("SECRET", SECRET)
        .current_dir(&dir);
    bench_plain(ctx, "node-octokit", cmd, addr).await
}

async fn bench_ceiling(ctx: &Ctx) -> ServerResult {
    let addr = free_addr();
    let mut cmd = Command::new(ctx.bin("ceiling"));
    cmd.arg("--listen")
        .arg(addr.to_string())
        .arg("--secret")
        .arg(SECRET);
    bench_plain(ctx, "ceiling", cmd, addr).await
}

/// Waits until every acknowledged delivery has reached the mock, or `timeout`; returns the
/// latency run.
async fn sync_run(
    mock: &Mock,
    run: RunResult,
    acked: &[String],
    load_end: Instant,
    timeout: Duration,
) -> SyncRun {
    let deadline = load_end + timeout;
    loop {
        let arrived =
            mock.with_arrivals(|a| acked.iter().filter(|id| a.first.contains_key(*id)).count());
        if arrived == acked.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let end_unix = hookbridge_bench::loadgen::unix_nanos()
        - i128::try_from(load_end.elapsed().as_nanos()).unwrap_or(0);
    mock.with_arrivals(|a| {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("bounds");
        let mut arrived = 0u64;
        let mut first_send = i128::MAX;
        let mut last_arrival = i128::MIN;
        for id in acked {
            let (Some(sent), Some(&at)) = (send_time_unix_nanos(id), a.first.get(id)) else {
                continue;
            };
            arrived += 1;
            first_send = first_send.min(sent);
            last_arrival = last_arrival.max(at);
            let us = u64::try_from((at - sent).max(1000) / 1000).unwrap_or(u64::MAX);
            hist.saturating_record(us);
        }
        let span_s = (last_arrival - first_send) as f64 / 1e9;
        SyncRun {
            acked: acked.len() as u64,
            arrived,
            repeats: a.repeats,
            latency_ms: Latency::from_micros(&hist),
            drain_s: ((last_arrival - end_unix) as f64 / 1e9).max(0.0),
            throughput: if span_s > 0.0 {
                arrived as f64 / span_s
            } else {
                0.0
            },
            load: run.load,
        }
    })
}

async fn bench_sync(ctx: &Ctx) -> SyncResult {
    let mut result = SyncResult::default();
    let mock = match Mock::start().await {
        Ok(m) => m,
        Err(e) => {
            result.error = Some(format!("cannot start the mock service: {e}"));
            return result;
        }
    };
    let dir = ctx.run_dir.join("hookbridge-sync");
    let addr = free_addr();
    let config_path = dir.join("hookbridge.toml");
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            &config_path,
            hookbridge_config(ctx, &dir, addr, StoreKind::Sqlite, Some(&mock.url())),
        )
    });
    if let Err(e) = written {
        result.error = Some(e.to_string());
        return result;
    }
    let log = ctx.run_dir.join("hookbridge-sync.log");
    let (mut server, started) =
        match Server::spawn(hookbridge_command(ctx, &config_path), addr, log) {
            Ok(s) => s,
            Err(e) => {
                result.error = Some(e);
                return result;
            }
        };
    if let Err(e) = server.wait_ready(started).await {
        result.error = Some(e);
        return result;
    }
    let high = ctx.connections.iter().copied().max().unwrap_or(32);
    let phases: [(&str, usize, Option<f64>); 2] =
        [("low", 1, Some(ctx.low_rate)), ("high", high, None)];
    for (phase, connections, rate) in phases {
        let acked_path = dir.join(format!("{phase}.acked"));
        let prefix = format!("sync{phase}");
        let run = match load(
            ctx,
            &server,
            &LoadSpec {
                connections,
                rate,
                vary_issue: Some(1000),
                prefix: &prefix,
                acked_out: Some(&acked_path),
            },
        )
        .await
        {
            Ok(run) => run,
            Err(e) => {
                result.error = Some(e);
                break;
            }
        };
        let load_end = Instant::now();
        let acked = read_ids(&[acked_path]);
        let timeout = Duration::from_secs_f64((ctx.duration * 12.0).clamp(30.0, 180.0));
        let sync = sync_run(&mock, run, &acked, load_end, timeout).await;
        eprintln!(
            "  sync {phase:<4}: {:>7.0} deliveries/s acknowledged, {}/{} reached the mock, latency p50 {:.2} ms p99 {:.2} ms, drained {:.1} s after the load",
            sync.load.rps,
            sync.arrived,
            sync.acked,
            sync.latency_ms.p50,
            sync.latency_ms.p99,
            sync.drain_s
        );
        match phase {
            "low" => result.low = Some(sync),
            _ => result.high = Some(sync),
        }
    }
    result.peak_rss_kib = memory(server.pid()).map(|m| m.hwm_kib);
    server.terminate(Duration::from_secs(20)).await;
    if !ctx.keep_data {
        remove_data(ctx, StoreKind::Sqlite, &dir).await;
    }
    result
}

fn machine(loadavg_start: String) -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu_model = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let git = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    Machine {
        date: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        cpu_model,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        loadavg_start,
        loadavg_end: loadavg(),
        git,
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The typed-parse throughput of the last criterion run, if there is one.
fn criterion_parse_typed(body_bytes: usize) -> Option<f64> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut dirs = vec![workspace.join("target")];
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.insert(0, PathBuf::from(dir));
    }
    dirs.iter().find_map(|dir| {
        let text =
            std::fs::read_to_string(dir.join("criterion/github/parse_typed/new/estimates.json"))
                .ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        let ns = json.pointer("/mean/point_estimate")?.as_f64()?;
        Some(body_bytes as f64 / ns * 1000.0)
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn targets(results: &Results) -> Vec<Target> {
    let mut out = Vec::new();
    let hi = results.connections.iter().copied().max().unwrap_or(32);
    let find = |name: &str| results.servers.iter().find(|s| s.name == name);
    let sqlite = find("hookbridge-sqlite");
    let rps = |name: &str| find(name).and_then(|s| s.run(hi)).map(|r| r.load.rps);
    let mut push = |name: &str, target: &str, measured: Option<(String, bool)>| {
        out.push(Target {
            name: name.into(),
            target: target.into(),
            measured: measured
                .as_ref()
                .map_or_else(|| "not measured".into(), |(m, _)| m.clone()),
            met: measured.map(|(_, met)| met),
        });
    };
    let ratio = |other: &str, min: f64| {
        let (a, b) = (rps("hookbridge-sqlite")?, rps(other)?);
        let r = a / b;
        Some((format!("{r:.2}x ({a:.0} vs {b:.0} req/s)"), r >= min))
    };
    push(
        &format!("durable ingest vs ceiling, {hi} connections"),
        ">= 0.8x",
        ratio("ceiling", 0.8),
    );
    push(
        &format!("durable ingest vs Node @octokit/webhooks, {hi} connections"),
        ">= 3x",
        ratio("node-octokit", 3.0),
    );
    let hi_run = sqlite.and_then(|s| s.run(hi));
    push(
        &format!("p99 latency, {hi} connections"),
        "<= 5 ms",
        hi_run.map(|r| {
            let p99 = r.load.latency_ms.p99;
            (format!("{p99:.2} ms"), p99 <= 5.0)
        }),
    );
    push(
        "peak RSS under load",
        "<= 40 MiB",
        sqlite
            .and_then(|s| s.peak_rss_kib)
            .map(|k| (format!("{:.1} MiB", mib(k)), mib(k) <= 40.0)),
    );
    push(
        "idle RSS",
        "<= 15 MiB",
        sqlite
            .and_then(|s| s.idle_rss_kib)
            .map(|k| (format!("{:.1} MiB", mib(k)), mib(k) <= 15.0)),
    );
    push(
        "ready to serve after start (new store)",
        "<= 100 ms",
        sqlite
            .and_then(|s| s.ready_ms)
            .map(|ms| (format!("{ms:.1} ms"), ms <= 100.0)),
    );
    push(
        "sync latency p50, low load",
        "<= 10 ms",
        results
            .sync
            .as_ref()
            .and_then(|s| s.low.as_ref())
            .filter(|r| r.arrived > 0)
            .map(|r| {
                let p50 = r.latency_ms.p50;
                (format!("{p50:.2} ms"), p50 <= 10.0)
            }),
    );
    push(
        "typed parse of GitHub payloads (last criterion run)",
        ">= 50 MB/s per core",
        results
            .criterion_parse_typed_mb_s
            .map(|mbs| (format!("{mbs:.0} MB/s"), mbs >= 50.0)),
    );
    for server in results.servers.iter().filter(|s| s.store_check.is_some()) {
        let check = server.store_check.as_ref().expect("filtered");
        push(
            &format!("every acknowledged delivery stored ({})", server.name),
            "0 missing",
            Some((
                match &check.error {
                    Some(e) => format!("check failed: {e}"),
                    None => format!(
                        "{} missing of {} ({} sampled, {} differ)",
                        check.missing, check.acked, check.sampled, check.sample_mismatches
                    ),
                },
                check.ok(),
            )),
        );
    }
    out
}

fn print_table(results: &Results) {
    let m = &results.machine;
    println!();
    println!(
        "hookbridge load benchmark — {} — {} CPUs ({}) — load average {} -> {} — {} s per run after {} s warm-up — body {} bytes",
        m.date,
        m.cpus,
        m.cpu_model,
        m.loadavg_start,
        m.loadavg_end,
        results.duration_s,
        results.warmup_s,
        results.body_bytes
    );
    println!();
    println!(
        "{:<20} {:>5} {:>9} {:>8} {:>8} {:>9} {:>8} {:>7} {:>11} {:>9}",
        "server",
        "conns",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "errors",
        "cpu µs/req",
        "rss MiB"
    );
    for s in &results.servers {
        if let Some(reason) = &s.skipped {
            println!("{:<20} skipped: {reason}", s.name);
            continue;
        }
        if let Some(e) = &s.error {
            println!("{:<20} error: {e}", s.name);
        }
        for r in &s.runs {
            let l = &r.load;
            println!(
                "{:<20} {:>5} {:>9.0} {:>8.2} {:>8.2} {:>9.2} {:>8.2} {:>7} {:>11.0} {:>9.1}",
                s.name,
                l.connections,
                l.rps,
                l.latency_ms.p50,
                l.latency_ms.p99,
                l.latency_ms.p999,
                l.latency_ms.max,
                l.error_total,
                r.server_cpu_us_per_req,
                mib(r.max_rss_kib)
            );
        }
    }
    println!();
    println!(
        "{:<20} {:>9} {:>11} {:>9} {:>9}  store check",
        "server", "ready ms", "restart ms", "idle MiB", "peak MiB"
    );
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
    for s in results.servers.iter().filter(|s| s.skipped.is_none()) {
        println!(
            "{:<20} {:>9} {:>11} {:>9} {:>9}  {}",
            s.name,
            opt(s.ready_ms),
            opt(s.restart_ready_ms),
            opt(s.idle_rss_kib.map(mib)),
            opt(s.peak_rss_kib.map(mib)),
            s.store_check.as_ref().map_or_else(
                || "-".to_owned(),
                |c| match &c.error {
                    Some(e) => format!("error: {e}"),
                    None => format!(
                        "{} acknowledged, {} missing; {} not yet dispatched when killed",
                        c.acked, c.missing, c.undispatched
                    ),
                }
            )
        );
    }
    if let Some(sync) = &results.sync {
        println!();
        println!(
            "sync latency: delivery sent -> the rule's HTTP call arriving at the mock service"
        );
        if let Some(reason) = sync.skipped.as_ref().or(sync.error.as_ref()) {
            println!("  {reason}");
        }
        println!(
            "{:<6} {:>5} {:>10} {:>9} {:>8} {:>8} {:>9} {:>8} {:>9} {:>10}",
            "load",
            "conns",
            "ingest/s",
            "arrived",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "drain s",
            "synced/s"
        );
        for (name, run) in [("low", &sync.low), ("high", &sync.high)] {
            if let Some(r) = run {
                println!(
                    "{:<6} {:>5} {:>10.0} {:>9} {:>8.2} {:>8.2} {:>9.2} {:>8.1} {:>9.1} {:>10.0}",
                    name,
                    r.load.connections,
                    r.load.rps,
                    format!("{}/{}", r.arrived, r.acked),
                    r.latency_ms.p50,
                    r.latency_ms.p99,
                    r.latency_ms.p999,
                    r.latency_ms.max,
                    r.drain_s,
                    r.throughput
                );
            }
        }
    }
    println!();
    println!("targets");
    for t in &results.targets {
        let verdict = match t.met {
            Some(true) => "met    ",
            Some(false) => "NOT MET",
            None => "-      ",
        };
        println!(
            "  [{verdict}] {:<58} {:<20} {}",
            t.name, t.target, t.measured
        );
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let loadavg_start = loadavg();
    let bin_dir = args.bin_dir.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_default()
    });
    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench"));
    let _ = std::fs::create_dir_all(&out_dir);
    let out_dir = out_dir.canonicalize().unwrap_or(out_dir);
    let run_dir = out_dir.join("run");
    let _ = std::fs::remove_dir_all(&run_dir);
    if let Err(e) = std::fs::create_dir_all(&run_dir) {
        eprintln!("error: cannot create {}: {e}", run_dir.display());
        return ExitCode::from(2);
    }
    let body = match std::fs::read(SAMPLE) {
        Ok(b) => Bytes::from(b),
        Err(e) => {
            eprintln!("error: cannot read {SAMPLE}: {e}");
            return ExitCode::from(2);
        }
    };
    if !args
        .pg_schema
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        eprintln!("error: --pg-schema must be lowercase letters, digits and _");
        return ExitCode::from(2);
    }
    let ctx = Ctx {
        bin_dir,
        out_dir,
        run_dir,
        body,
        duration: args.duration.unwrap_or(if args.quick { 2.0 } else { 10.0 }),
        warmup: args.warmup.unwrap_or(if args.quick { 0.5 } else { 1.0 }),
        connections: args.connections.clone(),
        pg_url: args.pg_url.clone(),
        pg_schema: args.pg_schema.clone(),
        low_rate: args.low_rate,
        server_log: args.server_log.clone(),
        loadgen_threads: args.loadgen_threads,
        keep_data: args.keep_data,
    };
    for bin in ["hookbridge", "loadgen", "ceiling"] {
        if !ctx.bin(bin).exists() {
            eprintln!(
                "error: {} is missing; build with ./scripts/bench",
                ctx.bin(bin).display()
            );
            return ExitCode::from(2);
        }
    }
    let wants = |part: Part| args.only.is_empty() || args.only.contains(&part);

    let mut servers = Vec::new();
    if wants(Part::Ceiling) {
        eprintln!("ceiling server (hyper + HMAC, no parse, no store)");
        servers.push(bench_ceiling(&ctx).await);
    }
    if wants(Part::Sqlite) {
        eprintln!("hookbridge serve, SQLite store");
        servers.push(bench_hookbridge(&ctx, StoreKind::Sqlite).await);
    }
    if wants(Part::Node) {
        eprintln!("Node @octokit/webhooks receiver");
        servers.push(bench_node(&ctx).await);
    }
    if wants(Part::Postgres) {
        eprintln!("hookbridge serve, PostgreSQL store");
        servers.push(bench_hookbridge(&ctx, StoreKind::Postgres).await);
    }
    let sync = if wants(Part::Sync) {
        eprintln!("sync latency (hookbridge serve, SQLite, one http rule to a mock service)");
        Some(bench_sync(&ctx).await)
    } else {
        None
    };
    let mut results = Results {
        machine: machine(loadavg_start),
        duration_s: ctx.duration,
        warmup_s: ctx.warmup,
        connections: ctx.connections.clone(),
        body_bytes: ctx.body.len(),
        servers,
        sync,
        criterion_parse_typed_mb_s: criterion_parse_typed(ctx.body.len()),
        targets: Vec::new(),
    };
    results.targets = targets(&results);
    print_table(&results);
    let path = ctx.out_dir.join("results.json");
    match serde_json::to_string_pretty(&results) {
        Ok(json) => {
            if let Err(e) = std::fs::write(&path, json) {
                eprintln!("error: cannot write {}: {e}", path.display());
            } else {
                println!("\nresults: {}", path.display());
            }
        }
        Err(e) => eprintln!("error: {e}"),
    }
    let failed = results
        .servers
        .iter()
        .any(|s| s.error.is_some() || s.store_check.as_ref().is_some_and(|c| !c.ok()))
        || results.sync.as_ref().is_some_and(|s| s.error.is_some());
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
