//! A real `hookbridge` process on 127.0.0.1, for tests that go through the whole HTTP path.
#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hookbridge_core::signature::{Algorithm, hmac};

pub const SECRET: &str = "test-secret-3f9a";

/// A configuration with one GitHub endpoint `gh` (and `gh-sha1`, which allows SHA-1), with
/// extra `[server]` lines.
pub fn config(server_extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
body_timeout_secs = 2
shutdown_grace_secs = 5
{server_extra}

[store]
kind = "sqlite"
path = "data/hookbridge.db"

[endpoints.gh]
provider = "github"
secrets = ["old-secret", "{SECRET}"]

[endpoints.gh-sha1]
provider = "github"
secret = "{SECRET}"
allow_sha1 = true

[endpoints.small]
provider = "github"
secret = "{SECRET}"
max_body_bytes = 1024
"#
    )
}

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub stderr: PathBuf,
}

impl Server {
    /// Starts a server with `config_text` written into `dir` (created if needed).
    pub fn start(dir: &Path, config_text: &str) -> Server {
        Self::start_with_env(dir, config_text, &[])
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.join("data/hookbridge.db")
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill_hard(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn sign256(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac(Algorithm::Sha256, secret.as_bytes(), &[body]))
    )
}

pub fn sign1(secret: &str, body: &[u8]) -> String {
    format!(
        "sha1={}",
        hex::encode(hmac(Algorithm::Sha1, secret.as_bytes(), &[body]))
    )
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../providers/samples/github")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A signed GitHub delivery request, ready to send.
pub fn github_post(
    client: &reqwest::Client,
    url: &str,
    event: &str,
    delivery_id: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let sig = sign256(SECRET, &body);
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery_id)
        .header("x-hub-signature-256", sig)
        .body(body)
}

/// Writes raw bytes to the server and returns the status code of its answer.
pub fn raw_exchange(addr: SocketAddr, parts: &[(&[u8], Duration)]) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for (bytes, pause) in parts {
        if stream.write_all(bytes).is_err() {
            break;
        }
        std::thread::sleep(*pause);
    }
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                response.extend_from_slice(&buf[..n]);
                if response.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

// ---- Reliability helpers: long-test switch, servers with their own environment, a
// scriptable downstream service, waiting, metrics, and PostgreSQL schemas. ----

/// Whether the long forms of the reliability tests run (`HOOKBRIDGE_LONG_TESTS=1`).
pub fn long_tests() -> bool {
    std::env::var("HOOKBRIDGE_LONG_TESTS").is_ok_and(|v| !v.is_empty() && v != "0")
}

impl Server {
    /// Like [`Server::start`], with extra environment variables for the child (secrets read
    /// with `{ env = "..." }`, or `HOOKBRIDGE_LOG`, which overrides the `debug` default).
    /// The child's stdout is kept in `stdout-<pid>.log` next to its stderr.
    pub fn start_with_env(dir: &Path, config_text: &str, env: &[(&str, &str)]) -> Server {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("hookbridge.toml");
        std::fs::write(&config, config_text).unwrap();
        let stderr_path = dir.join(format!("stderr-{}.log", std::process::id()));
        let stdout_path = dir.join(format!("stdout-{}.log", std::process::id()));
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookbridge"));
        command
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("HOOKBRIDGE_LOG", "debug");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn hookbridge");
        let stdout = child.stdout.take().unwrap();
        let mut kept = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stdout_path)
            .unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    let _ = writeln!(kept, "{line}");
                    if let Some(rest) = line.strip_prefix("hookbridge listening on http://") {
                        break rest.parse().unwrap();
                    }
                }
                _ => panic!(
                    "hookbridge exited before listening: {}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                ),
            }
        };
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(kept, "{line}");
            }
        });
        Server {
            child,
            addr,
            dir: dir.to_owned(),
            stderr: stderr_path,
        }
    }

    /// What the child printed on stdout (servers started with [`Server::start_with_env`]).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("stdout-{}.log", std::process::id())))
            .unwrap_or_default()
    }
}

/// Polls `check` every 50 ms until it holds; panics after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of one Prometheus series (`name{labels}` exactly as rendered) in `text`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// A small deterministic pseudo-random sequence (SplitMix64), so that "random" kill times
/// and orders are reproducible from a printed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}

/// One request a [`MockService`] received.
#[derive(Clone, Debug)]
pub struct MockRequest {
    /// When its head arrived.
    pub at: std::time::Instant,
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status it was answered (or was to be answered, after a delay) with; `None` for a
    /// reset or a hang.
    pub status: Option<u16>,
}

impl MockRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn idempotency_key(&self) -> Option<&str> {
        self.header("idempotency-key")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// How a [`MockService`] answers one request.
#[derive(Clone, Debug)]
pub enum MockReply {
    /// A status (with headers), after a delay.
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        delay: Duration,
    },
    /// Close the connection with a TCP reset, answering nothing.
    Reset,
    /// Answer nothing for this long, then close the connection.
    Hang(Duration),
}

impl MockReply {
    pub fn status(status: u16) -> Self {
        MockReply::Answer {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let MockReply::Answer { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    pub fn after(mut self, wait: Duration) -> Self {
        if let MockReply::Answer { delay, .. } = &mut self {
            *delay = wait;
        }
        self
    }
}

type Behaviour = dyn Fn(&MockRequest, usize) -> MockReply + Send + Sync;

/// A downstream service on 127.0.0.1 speaking just enough HTTP/1.1 (keep-alive,
/// `Content-Length` bodies), whose every answer is decided by a closure, including faults
/// wiremock cannot produce (TCP resets, hangs). It records every request.
pub struct MockService {
    pub addr: SocketAddr,
    requests: std::sync::Arc<std::sync::Mutex<Vec<MockRequest>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl MockService {
    /// Starts the service. `behaviour` gets each request and how many requests to the same
    /// path came before it.
    pub async fn start(
        behaviour: impl Fn(&MockRequest, usize) -> MockReply + Send + Sync + 'static,
    ) -> MockService {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let behaviour: std::sync::Arc<Behaviour> = std::sync::Arc::new(behaviour);
        let recorded = requests.clone();
        let accept = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                while connections.try_join_next().is_some() {}
                connections.spawn(mock_connection(stream, recorded.clone(), behaviour.clone()));
            }
        });
        MockService {
            addr,
            requests,
            accept,
        }
    }

    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<MockRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for MockService {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.accept.abort();
    }
}

async fn mock_connection(
    mut stream: tokio::net::TcpStream,
    requests: std::sync::Arc<std::sync::Mutex<Vec<MockRequest>>>,
    behaviour: std::sync::Arc<Behaviour>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let at = std::time::Instant::now();
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let method = request_line.next().unwrap_or_default().to_owned();
        let path = request_line.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_end..head_end + length].to_vec();
        buf.drain(..head_end + length);
        let mut request = MockRequest {
            at,
            method,
            path,
            headers,
            body,
            status: None,
        };
        let reply = {
            let mut all = requests.lock().unwrap();
            let prior = all.iter().filter(|r| r.path == request.path).count();
            let reply = behaviour(&request, prior);
            if let MockReply::Answer { status, .. } = &reply {
                request.status = Some(*status);
            }
            all.push(request);
            reply
        };
        match reply {
            MockReply::Answer {
                status,
                headers,
                delay,
            } => {
                tokio::time::sleep(delay).await;
                let mut response = format!(
                    "HTTP/1.1 {status} Mock\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
                );
                for (name, value) in headers {
                    response.push_str(&format!("{name}: {value}\r\n"));
                }
                response.push_str("\r\n{}");
                if stream.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
            MockReply::Reset => {
                let _ = stream.set_zero_linger();
                return;
            }
            MockReply::Hang(wait) => {
                tokio::time::sleep(wait).await;
                return;
            }
        }
    }
}

/// The PostgreSQL test database (`HOOKBRIDGE_TEST_PG_URL`), or `None` after saying the test
/// is skipped; with `HOOKBRIDGE_REQUIRE_PG=1` a missing URL fails instead.
pub fn pg_test_url() -> Option<String> {
    match std::env::var("HOOKBRIDGE_TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("HOOKBRIDGE_REQUIRE_PG").as_deref() != Ok("1"),
                "HOOKBRIDGE_REQUIRE_PG=1 but HOOKBRIDGE_TEST_PG_URL is not set"
            );
            eprintln!("skipping: HOOKBRIDGE_TEST_PG_URL is not set");
            None
        }
    }
}

/// A PostgreSQL schema of one test's own, dropped when it goes out of scope (even on panic).
pub struct PgSchema {
    pub url: String,
    pub name: String,
}

impl PgSchema {
    pub fn new(prefix: &str) -> Option<PgSchema> {
        let url = pg_test_url()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        Some(PgSchema {
            url,
            name: format!("hb_{prefix}_{}_{nanos}", std::process::id()),
        })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Its own thread and runtime: this may run inside the test's runtime, or unwinding.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                use sqlx::Connection as _;
                let mut conn = sqlx::PgConnection::connect(&url).await.ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
                )))
                .execute(&mut conn)
                .await
                .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop schema {}", self.name);
        }
    }
}
