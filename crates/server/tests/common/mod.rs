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
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("hookbridge.toml");
        std::fs::write(&config, config_text).unwrap();
        let stderr_path = dir.join(format!("stderr-{}.log", std::process::id()));
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookbridge"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("HOOKBRIDGE_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn hookbridge");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
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
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            addr,
            dir: dir.to_owned(),
            stderr: stderr_path,
        }
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
