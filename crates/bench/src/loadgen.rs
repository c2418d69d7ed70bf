//! A closed-loop load generator for webhook receivers.
//!
//! Each of N connections (HTTP/1.1 keep-alive, hyper's client) sends a signed GitHub
//! delivery, waits for the whole answer, and sends the next one: closed loop, so the
//! offered load adapts to the server. With a rate, each connection instead sends on a fixed
//! schedule (open loop, never more than one request in flight per connection) — the "low
//! load" of the sync-latency measurement.
//!
//! Every delivery has a distinct `X-GitHub-Delivery`, `{prefix}-{connection}-{n}-{unix ns}`:
//! the send time is in the id, so a mock API service can tell how long a delivery took to
//! come out of the sync engine ([`send_time_unix_nanos`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use crate::sign::github_signature;

/// The sample's issue number, rewritten when deliveries are spread over several issues.
const ISSUE_NUMBER: &str = "\"number\": 12,";

/// What to send, where, and for how long.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The webhook URL (`http://127.0.0.1:PORT/hooks/github`).
    pub url: Uri,
    /// Connections, each with one request in flight at a time.
    pub connections: usize,
    /// Measured time, after the warm-up.
    pub duration: Duration,
    /// Time before measuring: sent, acknowledged and checked, but not timed.
    pub warmup: Duration,
    /// Deliveries per second over all connections (open loop); `None`: closed loop.
    pub rate: Option<f64>,
    /// The endpoint's secret.
    pub secret: Vec<u8>,
    /// The delivery body (the `issues.opened` sample).
    pub body: Bytes,
    /// `X-GitHub-Event`.
    pub event: String,
    /// Prefix of the delivery ids, to keep them distinct across runs.
    pub id_prefix: String,
    /// Spread deliveries over this many issues (rewriting `"number": 12,` and signing each
    /// body), so that a sync rule sees many objects instead of one; `None`: one body.
    pub vary_issue: Option<u32>,
    /// Longest wait for one answer; longer counts as a `timeout` error.
    pub timeout: Duration,
}

/// Latency percentiles of the measured window, in milliseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Requests timed.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

impl Latency {
    /// Percentiles of a histogram recorded in microseconds.
    pub fn from_micros(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// The outcome of a load run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// Connections used.
    pub connections: usize,
    /// The open-loop rate, if any.
    pub rate: Option<f64>,
    /// Length of the measured window, in seconds.
    pub window_s: f64,
    /// 2xx answers that completed inside the measured window.
    pub completed: u64,
    /// `completed / window_s`.
    pub rps: f64,
    /// Latency of the requests sent in the measured window, 2xx or not.
    pub latency_ms: Latency,
    /// Failed requests of the whole run (warm-up included) by kind: `status_NNN`,
    /// `connect`, `io`, `timeout`.
    pub errors: BTreeMap<String, u64>,
    /// Sum of `errors`.
    pub error_total: u64,
    /// Answers of the whole run by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// 2xx answers of the whole run, warm-up included: the deliveries that must be stored.
    pub acked: u64,
    /// Bytes of each body.
    pub body_bytes: usize,
}

/// What one connection saw.
struct ConnResult {
    hist: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    statuses: BTreeMap<u16, u64>,
    completed: u64,
    acked: Vec<String>,
}

/// Bodies and their signatures.
enum Bodies {
    One {
        body: Bytes,
        signature: HeaderValue,
    },
    PerIssue {
        prefix: Bytes,
        suffix: Bytes,
        issues: u32,
    },
}

impl Bodies {
    fn new(cfg: &LoadConfig) -> Result<Self, String> {
        match cfg.vary_issue {
            None | Some(0 | 1) => Ok(Bodies::One {
                signature: HeaderValue::from_str(&github_signature(&cfg.secret, &cfg.body))
                    .map_err(|e| e.to_string())?,
                body: cfg.body.clone(),
            }),
            Some(issues) => {
                let text = std::str::from_utf8(&cfg.body).map_err(|e| e.to_string())?;
                let at = text
                    .find(ISSUE_NUMBER)
                    .ok_or_else(|| format!("the body has no {ISSUE_NUMBER} to rewrite"))?;
                Ok(Bodies::PerIssue {
                    prefix: cfg.body.slice(..at),
                    suffix: cfg.body.slice(at + ISSUE_NUMBER.len()..),
                    issues,
                })
            }
        }
    }

    fn get(&self, secret: &[u8], n: u64) -> (Bytes, HeaderValue) {
        match self {
            Bodies::One { body, signature } => (body.clone(), signature.clone()),
            Bodies::PerIssue {
                prefix,
                suffix,
                issues,
            } => {
                let number = 1000 + n % u64::from(*issues);
                let mut body = Vec::with_capacity(prefix.len() + suffix.len() + 24);
                body.extend_from_slice(prefix);
                body.extend_from_slice(format!("\"number\": {number},").as_bytes());
                body.extend_from_slice(suffix);
                let signature = HeaderValue::from_str(&github_signature(secret, &body))
                    .expect("hex is a valid header value");
                (Bytes::from(body), signature)
            }
        }
    }
}

/// The send time carried by a delivery id made by the load generator, in nanoseconds
/// since the Unix epoch.
pub fn send_time_unix_nanos(delivery_id: &str) -> Option<i128> {
    delivery_id.rsplit('-').next()?.parse().ok()
}

/// Nanoseconds since the Unix epoch, now.
pub fn unix_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

/// Runs the load and returns its report with the ids of every acknowledged (2xx) delivery.
pub async fn run(cfg: LoadConfig) -> Result<(Report, Vec<String>), String> {
    let authority = cfg
        .url
        .authority()
        .ok_or("the URL has no host")?
        .to_string();
    let addr: SocketAddr = tokio::net::lookup_host(authority.as_str())
        .await
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to nothing"))?;
    let bodies = Arc::new(Bodies::new(&cfg)?);
    let cfg = Arc::new(cfg);
    let start = Instant::now();
    let measure_from = start + cfg.warmup;
    let end = measure_from + cfg.duration;
    let mut tasks = Vec::with_capacity(cfg.connections);
    for idx in 0..cfg.connections {
        let cfg = cfg.clone();
        let bodies = bodies.clone();
        let authority = authority.clone();
        tasks.push(tokio::spawn(async move {
            connection(
                idx,
                &cfg,
                &bodies,
                addr,
                &authority,
                Window {
                    start,
                    measure_from,
                    end,
                },
            )
            .await
        }));
    }
    let mut hist = new_histogram();
    let mut report = Report {
        connections: cfg.connections,
        rate: cfg.rate,
        window_s: cfg.duration.as_secs_f64(),
        body_bytes: cfg.body.len(),
        ..Report::default()
    };
    let mut acked = Vec::new();
    for task in tasks {
        let r = task
            .await
            .map_err(|e| format!("a connection task failed: {e}"))?;
        hist.add(&r.hist).map_err(|e| e.to_string())?;
        for (k, v) in r.errors {
            *report.errors.entry(k).or_default() += v;
        }
        for (k, v) in r.statuses {
            *report.statuses.entry(k).or_default() += v;
        }
        report.completed += r.completed;
        acked.extend(r.acked);
    }
    report.error_total = report.errors.values().sum();
    report.acked = acked.len() as u64;
    report.rps = report.completed as f64 / report.window_s.max(1e-9);
    report.latency_ms = Latency::from_micros(&hist);
    Ok((report, acked))
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    measure_from: Instant,
    end: Instant,
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Sender, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn connection(
    idx: usize,
    cfg: &LoadConfig,
    bodies: &Bodies,
    addr: SocketAddr,
    authority: &str,
    window: Window,
) -> ConnResult {
    let mut result = ConnResult {
        hist: new_histogram(),
        errors: BTreeMap::new(),
        statuses: BTreeMap::new(),
        completed: 0,
        acked: Vec::new(),
    };
    let path = cfg
        .url
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let host = HeaderValue::from_str(authority).expect("an authority is a valid header");
    let event = HeaderValue::from_str(&cfg.event).expect("a valid event name");
    let interval = cfg
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(cfg.connections as f64 / r));
    // Spread the connections' schedules over one interval.
    let mut next_send = window.start
        + interval.map_or(Duration::ZERO, |i| {
            i.mul_f64(idx as f64 / cfg.connections.max(1) as f64)
        });
    let mut sender: Option<Sender> = None;
    let mut n: u64 = 0;
    let error = |result: &mut ConnResult, kind: String| {
        *result.errors.entry(kind).or_default() += 1;
    };
    loop {
        if let Some(interval) = interval {
            let now = Instant::now();
            if next_send > now {
                tokio::time::sleep_until(next_send.into()).await;
            }
            // Late (the last answer was slow): send now and keep the schedule from here.
            next_send = next_send.max(now) + interval;
        }
        if Instant::now() >= window.end {
            break;
        }
        let s = match sender.as_mut() {
            Some(s) => s,
            None => match connect(addr).await {
                Ok(s) => sender.insert(s),
                Err(_) => {
                    error(&mut result, "connect".into());
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let id = format!("{}-{idx}-{n}-{}", cfg.id_prefix, unix_nanos());
        let (body, signature) = bodies.get(&cfg.secret, (idx as u64).wrapping_mul(1_000_003) + n);
        n += 1;
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = Uri::try_from(path.as_str()).expect("a valid path");
        let headers = req.headers_mut();
        headers.insert(HOST, host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static("GitHub-Hookshot/hookbridge-bench"),
        );
        headers.insert("x-github-event", event.clone());
        headers.insert(
            "x-github-delivery",
            HeaderValue::from_str(&id).expect("a valid delivery id"),
        );
        headers.insert("x-hub-signature-256", signature);

        let sent = Instant::now();
        let answer = tokio::time::timeout(cfg.timeout, async {
            s.ready().await?;
            let response = s.send_request(req).await?;
            let status = response.status();
            response.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        })
        .await;
        let done = Instant::now();
        let measured = sent >= window.measure_from;
        if measured {
            let us = u64::try_from(done.duration_since(sent).as_micros()).unwrap_or(u64::MAX);
            result.hist.saturating_record(us.max(1));
        }
        match answer {
            Ok(Ok(status)) => {
                *result.statuses.entry(status.as_u16()).or_default() += 1;
                if status.is_success() {
                    result.acked.push(id);
                    if measured && done < window.end {
                        result.completed += 1;
                    }
                } else {
                    error(&mut result, format!("status_{}", status.as_u16()));
                }
            }
            Ok(Err(_)) => {
                error(&mut result, "io".into());
                sender = None;
            }
            Err(_) => {
                error(&mut result, "timeout".into());
                sender = None;
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_time_round_trips_through_the_id() {
        assert_eq!(
            send_time_unix_nanos("sync-low-0-17-1764000000123456789"),
            Some(1_764_000_000_123_456_789)
        );
        assert_eq!(send_time_unix_nanos("72d3162e"), None);
    }

    #[test]
    fn rewrites_the_issue_number_and_signs_each_body() {
        let cfg = LoadConfig {
            url: Uri::from_static("http://127.0.0.1:1/hooks/github"),
            connections: 1,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            rate: None,
            secret: b"s".to_vec(),
            body: Bytes::from_static(b"{\"issue\": {\"number\": 12, \"title\": \"t\"}}"),
            event: "issues".into(),
            id_prefix: "t".into(),
            vary_issue: Some(10),
            timeout: Duration::from_secs(1),
        };
        let bodies = Bodies::new(&cfg).unwrap();
        let (body, sig) = bodies.get(b"s", 3);
        assert_eq!(
            &body[..],
            b"{\"issue\": {\"number\": 1003, \"title\": \"t\"}}"
        );
        assert_eq!(sig.to_str().unwrap(), github_signature(b"s", &body));
    }
}
