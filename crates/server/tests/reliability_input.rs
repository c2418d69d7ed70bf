//! Bad input through the real HTTP path of a `hookbridge serve` process: bad, missing and
//! old signatures, malformed JSON, truncated, oversize and slow-drip bodies, wrong content
//! types, huge headers, slow headers (slowloris), unknown endpoints, invalid UTF-8. Each gets
//! its documented status (README.md, "What the server answers"), nothing is stored, and a
//! good client sending at the same time keeps getting 202s with bounded latency.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use hookbridge_core::{Provider, Secret};
use hookbridge_sync_engine::store::{DeliveryFilter, SqliteStore, Store};
use time::OffsetDateTime;

const SLACK_SECRET: &str = "slack-signing-secret-input";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// `[server] body_timeout_secs`.
const BODY_TIMEOUT: Duration = Duration::from_secs(2);
/// `[server] header_timeout_secs`.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a good client may wait for its 202 while the server is under attack.
const GOOD_LATENCY_BOUND: Duration = Duration::from_secs(2);

fn config() -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
body_timeout_secs = {body_timeout}
header_timeout_secs = {header_timeout}
shutdown_grace_secs = 2

[store]
kind = "sqlite"
path = "data/hookbridge.db"

[endpoints.gh]
provider = "github"
secret = "{SECRET}"

[endpoints.small]
provider = "github"
secret = "{SECRET}"
max_body_bytes = 1024

[endpoints.slack]
provider = "slack"
secret = "{SLACK_SECRET}"

[endpoints.standard]
provider = "standard-webhooks"
secret = "{WHSEC}"
"#,
        body_timeout = BODY_TIMEOUT.as_secs(),
        header_timeout = HEADER_TIMEOUT.as_secs()
    )
}

/// A client that keeps sending good deliveries (`good-N`) and records each answer's status
/// and latency.
struct GoodClient {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<(u16, Duration)>>,
}

impl GoodClient {
    fn start(server: &Server) -> GoodClient {
        let stop = Arc::new(AtomicBool::new(false));
        let url = server.url("/hooks/gh");
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let mut answers = Vec::new();
            let mut n = 0;
            while !stopped.load(Ordering::SeqCst) {
                let started = Instant::now();
                let body = format!("{{\"zen\":\"good {n}\",\"hook_id\":{n}}}").into_bytes();
                let status = match github_post(&client, &url, "ping", &format!("good-{n}"), body)
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                answers.push((status, started.elapsed()));
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        });
        GoodClient { stop, task }
    }

    /// Stops and checks: every answer a 202, none slower than the bound. Returns how many.
    async fn finish(self) -> (usize, Duration) {
        self.stop.store(true, Ordering::SeqCst);
        let answers = self.task.await.unwrap();
        assert!(
            answers.len() >= 5,
            "the good client barely ran: {answers:?}"
        );
        let bad: Vec<_> = answers.iter().filter(|(s, _)| *s != 202).collect();
        assert!(bad.is_empty(), "the good client was refused: {bad:?}");
        let slowest = answers.iter().map(|(_, d)| *d).max().unwrap();
        assert!(
            slowest <= GOOD_LATENCY_BOUND,
            "the good client waited {slowest:?} for an answer"
        );
        (answers.len(), slowest)
    }
}

/// A case of the matrix: its name, the status answered (`None`: the connection closed
/// without an answer), and the acceptable statuses.
type Case = (&'static str, Option<u16>, &'static [Option<u16>]);

/// The head of a GitHub delivery request, signed over `signed_body`.
fn head(path: &str, id: &str, signed_body: &[u8], extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         x-github-event: ping\r\nx-github-delivery: {id}\r\n\
         x-hub-signature-256: {}\r\n{extra}\r\n",
        sign256(SECRET, signed_body)
    )
}

/// `raw_exchange` off the async runtime.
async fn raw(addr: SocketAddr, parts: Vec<(Vec<u8>, Duration)>) -> Option<u16> {
    tokio::task::spawn_blocking(move || {
        let parts: Vec<(&[u8], Duration)> = parts.iter().map(|(b, d)| (&b[..], *d)).collect();
        raw_exchange(addr, &parts)
    })
    .await
    .unwrap()
}

/// Sends `bytes`, half-closes the connection, and returns the status of the answer, if any.
async fn raw_then_close(addr: SocketAddr, bytes: Vec<u8>) -> Option<u16> {
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(&bytes).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response);
        text.split_whitespace().nth(1).and_then(|s| s.parse().ok())
    })
    .await
    .unwrap()
}

/// `{"a":{"a":...}}`, `depth` levels deep.
fn nested(depth: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for _ in 0..depth {
        body.extend_from_slice(b"{\"a\":");
    }
    body.extend_from_slice(b"1");
    body.extend(std::iter::repeat_n(b'}', depth));
    body
}

fn provider(kind: &str, secret: &str) -> Arc<dyn Provider> {
    hookbridge_providers::build(kind, vec![Secret::new(secret)], toml::Table::new()).unwrap()
}

/// A provider's first sample, signed as of `at`, sent to `endpoint`.
async fn signed_at(
    client: &reqwest::Client,
    server: &Server,
    endpoint: &str,
    provider: &dyn Provider,
    id: &str,
    at: OffsetDateTime,
) -> u16 {
    let sample = &provider.samples()[0];
    let signed = provider
        .sign(sample.event_type, sample.json.as_bytes(), id, at)
        .unwrap();
    client
        .post(server.url(&format!("/hooks/{endpoint}")))
        .headers(signed.headers)
        .body(signed.body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn stored_ids(server: &Server) -> Vec<String> {
    let store = SqliteStore::open(server.db_path(), Default::default())
        .await
        .unwrap();
    let rows = store
        .list_deliveries(&DeliveryFilter {
            limit: u32::MAX,
            ..Default::default()
        })
        .await
        .unwrap();
    store.close().await;
    rows.into_iter()
        .map(|r| r.delivery_id.into_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_matrix_gets_its_status_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &config());
    let addr = server.addr;
    let client = reqwest::Client::new();
    let url = server.url("/hooks/gh");
    let good = GoodClient::start(&server);
    let body = br#"{"zen":"Design for failure.","hook_id":42}"#.to_vec();
    // (case, status answered, the statuses documented for it); `None`: no answer.
    let mut results: Vec<Case> = Vec::new();
    let post = |id: &str| {
        client
            .post(&url)
            .header("x-github-event", "ping")
            .header("x-github-delivery", id.to_owned())
    };
    let status = |r: reqwest::Response| Some(r.status().as_u16());

    // Signatures.
    let r = post("bad-wrong-secret")
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign256("wrong-secret", &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    results.push(("wrong secret", status(r), &[Some(401)]));
    let mut tampered = body.clone();
    tampered[5] ^= 0x20;
    let r = post("bad-tampered")
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign256(SECRET, &body))
        .body(tampered)
        .send()
        .await
        .unwrap();
    results.push(("tampered body", status(r), &[Some(401)]));
    let r = post("bad-unsigned")
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    results.push(("missing signature", status(r), &[Some(401)]));
    for (name, value) in [
        ("signature not hex", "sha256=zzzz"),
        ("signature without scheme", "deadbeef"),
        ("empty signature", ""),
        ("signature of another length", "sha256=00"),
    ] {
        let r = post("bad-sig-format")
            .header("content-type", "application/json")
            .header("x-hub-signature-256", value)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        results.push((name, status(r), &[Some(401)]));
    }
    let r = post("bad-sha1")
        .header("content-type", "application/json")
        .header("x-hub-signature", sign1(SECRET, &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    results.push(("SHA-1 only where not allowed", status(r), &[Some(401)]));
    let hour = time::Duration::hours(1);
    let now = OffsetDateTime::now_utc();
    let slack = provider("slack", SLACK_SECRET);
    let standard = provider("standard-webhooks", WHSEC);
    for (name, endpoint, p, at) in [
        ("old Slack signature (1 h)", "slack", &slack, now - hour),
        ("future Slack signature (1 h)", "slack", &slack, now + hour),
        (
            "old Standard Webhooks signature",
            "standard",
            &standard,
            now - hour,
        ),
        (
            "future Standard Webhooks signature",
            "standard",
            &standard,
            now + hour,
        ),
    ] {
        let s = signed_at(&client, &server, endpoint, p.as_ref(), "bad-old", at).await;
        results.push((name, Some(s), &[Some(401)]));
    }
    // Bodies.
    for (name, bad) in [
        ("malformed JSON", &br#"{"zen": "#[..]),
        ("empty body", &b""[..]),
        ("JSON that is not an object", &b"[1,2,3]"[..]),
        ("JSON with trailing garbage", &b"{\"zen\":1} x"[..]),
    ] {
        let r = github_post(&client, &url, "ping", "bad-body", bad.to_vec())
            .send()
            .await
            .unwrap();
        results.push((name, status(r), &[Some(400)]));
    }
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .header("x-hub-signature-256", sign256(SECRET, &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    results.push(("missing X-GitHub-Delivery", status(r), &[Some(400)]));
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-github-delivery", "bad-no-event")
        .header("x-hub-signature-256", sign256(SECRET, &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    results.push(("missing X-GitHub-Event", status(r), &[Some(400)]));
    let r = client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-github-event", "ping")
        .header("x-github-delivery", "bad-form")
        .header("x-hub-signature-256", sign256(SECRET, b"nopayload=1"))
        .body("nopayload=1")
        .send()
        .await
        .unwrap();
    results.push(("form body without payload", status(r), &[Some(400)]));
    // Content types.
    for ct in [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
    ] {
        let r = post("bad-ct")
            .header("content-type", ct)
            .header("x-hub-signature-256", sign256(SECRET, &body))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        results.push(("wrong content type", status(r), &[Some(415)]));
    }
    let r = post("bad-no-ct")
        .header("x-hub-signature-256", sign256(SECRET, &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    results.push(("no content type", status(r), &[Some(415)]));
    // Invalid UTF-8 in a header the server reads: the delivery id.
    let length = format!("content-length: {}\r\n", body.len());
    let mut request = head("/hooks/gh", "bad-@@", &body, &length).into_bytes();
    let at = request.windows(6).position(|w| w == b"bad-@@").unwrap();
    request[at + 4] = 0xff;
    request[at + 5] = 0xfe;
    request.extend_from_slice(&body);
    results.push((
        "invalid UTF-8 in X-GitHub-Delivery",
        raw(addr, vec![(request, Duration::ZERO)]).await,
        &[Some(400)],
    ));
    // Routing.
    let r = github_post(
        &client,
        &server.url("/hooks/nope"),
        "ping",
        "bad-404",
        body.clone(),
    )
    .send()
    .await
    .unwrap();
    results.push(("unknown endpoint", status(r), &[Some(404)]));
    let r = client.get(server.url("/nowhere")).send().await.unwrap();
    results.push(("unknown route", status(r), &[Some(404)]));
    let r = client.get(&url).send().await.unwrap();
    results.push(("GET on an endpoint", status(r), &[Some(405)]));
    let raw_path =
        [b"POST /hooks/g\xffh HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n".to_vec()].concat();
    results.push((
        "invalid UTF-8 byte in the path",
        raw(addr, vec![(raw_path, Duration::ZERO)]).await,
        &[Some(400)],
    ));
    let r = github_post(
        &client,
        &server.url("/hooks/%FF%FE"),
        "ping",
        "bad-pct",
        body.clone(),
    )
    .send()
    .await
    .unwrap();
    results.push((
        "percent-encoded invalid UTF-8 endpoint",
        status(r),
        &[Some(400), Some(404)],
    ));
    results.push((
        "garbage request line",
        raw(addr, vec![(b"HELLO\r\n\r\n".to_vec(), Duration::ZERO)]).await,
        &[Some(400)],
    ));
    // Sizes.
    let big = vec![b' '; 4096];
    let r = github_post(
        &client,
        &server.url("/hooks/small"),
        "ping",
        "bad-big",
        big.clone(),
    )
    .send()
    .await
    .unwrap();
    results.push(("oversize body, declared", status(r), &[Some(413)]));
    let mut chunked = head(
        "/hooks/small",
        "bad-chunked",
        b"{}",
        "transfer-encoding: chunked\r\n",
    )
    .into_bytes();
    for _ in 0..3 {
        chunked.extend_from_slice(format!("{:x}\r\n", 800).as_bytes());
        chunked.extend_from_slice(&[b' '; 800]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    results.push((
        "oversize body, chunked",
        raw(addr, vec![(chunked, Duration::ZERO)]).await,
        &[Some(413)],
    ));
    let padding = "a".repeat(60 * 1024);
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .header("x-github-delivery", "bad-60k-header")
        .header("x-hub-signature-256", sign256("wrong", &body))
        .header("x-padding", padding)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    results.push(("60 KiB header, bad signature", status(r), &[Some(401)]));
    let huge = head(
        "/hooks/gh",
        "bad-huge-header",
        &body,
        &format!("x-padding: {}\r\n{length}", "a".repeat(1024 * 1024)),
    );
    let mut huge = huge.into_bytes();
    huge.extend_from_slice(&body);
    results.push((
        "1 MiB header",
        raw(addr, vec![(huge, Duration::ZERO)]).await,
        // Refused by hyper before routing; the connection may close before the answer.
        &[Some(431), None],
    ));
    let many: String = (0..200).map(|i| format!("x-h{i}: v\r\n")).collect();
    let mut many = head(
        "/hooks/gh",
        "bad-many-headers",
        &body,
        &format!("{many}{length}"),
    )
    .into_bytes();
    many.extend_from_slice(&body);
    results.push((
        "200 headers",
        raw(addr, vec![(many, Duration::ZERO)]).await,
        &[Some(431)],
    ));
    // Truncated and slow bodies.
    let truncated = [
        head("/hooks/gh", "bad-truncated", &body, &length).into_bytes(),
        body[..20].to_vec(),
    ]
    .concat();
    results.push((
        "truncated body, connection half-closed",
        raw_then_close(addr, truncated.clone()).await,
        // The body cannot be read (400); hyper may also close without answering.
        &[Some(400), None],
    ));
    results.push((
        "truncated body, sender stalls",
        raw(addr, vec![(truncated, Duration::ZERO)]).await,
        &[Some(408)],
    ));
    let drip_head = head("/hooks/gh", "bad-drip", &body, &length).into_bytes();
    let mut drip = vec![(drip_head, Duration::from_millis(300))];
    for b in &body[..15] {
        drip.push((vec![*b], Duration::from_millis(300)));
    }
    results.push(("slow-drip body", raw(addr, drip).await, &[Some(408)]));

    let (good_count, slowest) = good.finish().await;
    let mut failures = Vec::new();
    for (name, got, expected) in &results {
        eprintln!("{name}: {got:?}");
        if !expected.contains(got) {
            failures.push(format!("{name}: got {got:?}, expected one of {expected:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!(
        "{} bad requests answered as documented; the good client got {good_count} 202s, slowest {slowest:?}",
        results.len()
    );

    // Nothing stored but the good client's deliveries; the server is still up.
    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let status = server.terminate();
    assert!(status.success(), "{status:?}\n{}", server.logs());
    let stored = stored_ids(&server).await;
    let intruders: Vec<_> = stored
        .iter()
        .filter(|id| !id.starts_with("good-"))
        .collect();
    assert!(intruders.is_empty(), "bad input was stored: {intruders:?}");
    assert_eq!(stored.len(), good_count);
}

/// Opens a connection that sends a request's head one byte every `pace`, for `bytes` bytes
/// at most; returns when the server closes it (or answers), or after `give_up`.
async fn slow_headers(addr: SocketAddr, pace: Duration, give_up: Duration) -> (Duration, bool) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = b"POST /hooks/gh HTTP/1.1\r\nhost: x\r\nx-github-event: ping\r\nx-padding: ";
    let mut sent = 0;
    let mut buf = [0u8; 256];
    loop {
        if started.elapsed() > give_up {
            return (started.elapsed(), false);
        }
        let byte = head.get(sent).copied().unwrap_or(b'a');
        if stream.write_all(&[byte]).await.is_err() {
            return (started.elapsed(), true);
        }
        sent += 1;
        match tokio::time::timeout(pace, stream.read(&mut buf)).await {
            Ok(Ok(_)) | Ok(Err(_)) => return (started.elapsed(), true),
            Err(_) => {}
        }
    }
}

/// Opens a connection whose body arrives one byte every `pace`; returns the status answered.
async fn slow_body(addr: SocketAddr, id: String, pace: Duration) -> Option<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let body = br#"{"zen":"slow and steady","hook_id":7}"#;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = head(
        "/hooks/gh",
        &id,
        body,
        &format!("content-length: {}\r\n", body.len()),
    );
    stream.write_all(head.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    for b in body {
        if stream.write_all(&[*b]).await.is_err() {
            break;
        }
        match tokio::time::timeout(pace, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                response.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

/// 50 connections dripping their headers and 50 dripping their bodies: the good client is
/// served throughout, slow headers are cut off after `header_timeout_secs`, slow bodies get
/// 408 after `body_timeout_secs`, nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_does_not_starve_a_good_client() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &config());
    let addr = server.addr;
    let good = GoodClient::start(&server);
    let pace = Duration::from_millis(250);
    let mut attackers = tokio::task::JoinSet::new();
    let held = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..50 {
        let held = held.clone();
        attackers.spawn(async move {
            let (after, closed) = slow_headers(addr, pace, HEADER_TIMEOUT * 3).await;
            assert!(
                closed,
                "a slow-header connection was still open after {after:?}"
            );
            held.lock().unwrap().push(after);
            None
        });
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    for _ in 0..50 {
        let id = format!("slow-body-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        attackers.spawn(slow_body(addr, id, pace));
    }
    let statuses = Arc::new(Mutex::new(Vec::new()));
    while let Some(joined) = attackers.join_next().await {
        if let Some(status) = joined.unwrap() {
            statuses.lock().unwrap().push(status);
        }
    }
    let (good_count, slowest) = good.finish().await;
    let statuses = statuses.lock().unwrap().clone();
    assert_eq!(
        statuses.len(),
        50,
        "every slow body is answered: {statuses:?}"
    );
    assert!(statuses.iter().all(|s| *s == 408), "{statuses:?}");
    let longest = held.lock().unwrap().iter().max().copied().unwrap();
    assert!(
        longest <= HEADER_TIMEOUT + Duration::from_millis(1500),
        "slow headers held a connection for {longest:?}"
    );
    eprintln!(
        "100 slow connections: slow headers cut off after at most {longest:?}; the good \
         client got {good_count} 202s, slowest {slowest:?}"
    );
    server.terminate();
    let stored = stored_ids(&server).await;
    assert!(
        stored.iter().all(|id| id.starts_with("good-")),
        "{stored:?}"
    );
    assert_eq!(stored.len(), good_count);
}

/// A body the dispatcher cannot parse must be refused at the door (400, nothing stored),
/// not acknowledged and then marked `unparseable`: invalid UTF-8 inside a JSON string is not
/// JSON (RFC 8259 section 8.1), and nesting deeper than serde_json's 128-level limit cannot be
/// typed later.
#[tokio::test]
async fn json_the_dispatcher_cannot_parse_is_refused_at_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &config());
    let client = reqwest::Client::new();
    for (id, body) in [
        ("bad-utf8-json", b"{\"zen\":\"\xff\xfe\"}".to_vec()),
        ("bad-deep-json", nested(10_000)),
    ] {
        let r = github_post(&client, &server.url("/hooks/gh"), "ping", id, body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{id}");
    }
    server.terminate();
    assert!(stored_ids(&server).await.is_empty());
}

/// `[server] max_connections`: with a cap of 4, four idle connections (heads half sent)
/// take every slot; a fifth client's good delivery waits in the kernel's accept queue,
/// neither answered nor refused, and is served as soon as one idle connection closes. The
/// server is responsive afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_and_are_served_when_one_closes() {
    const CAP: usize = 4;
    let config = config()
        .replace(
            "header_timeout_secs = 2",
            // Long enough that the idle connections stay for the whole test.
            &format!("header_timeout_secs = 60\nmax_connections = {CAP}"),
        )
        .replace("body_timeout_secs = 2", "body_timeout_secs = 10");
    assert!(config.contains("max_connections = 4"));
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &config);
    let mut idle = Vec::new();
    for _ in 0..CAP {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream
            .write_all(b"POST /hooks/gh HTTP/1.1\r\nhost: x\r\n")
            .unwrap();
        idle.push(stream);
    }
    // Let the server accept all four before the fifth arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let client = reqwest::Client::new();
    let fifth = github_post(
        &client,
        &server.url("/hooks/gh"),
        "ping",
        "beyond-the-cap",
        fixture("ping.json"),
    )
    .send();
    let fifth = tokio::spawn(async move { (fifth.await, Instant::now()) });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !fifth.is_finished(),
        "the fifth connection was served while {CAP} others held every slot: {:?}",
        fifth.await
    );

    let closed_at = Instant::now();
    drop(idle.pop());
    let (answer, answered_at) = tokio::time::timeout(Duration::from_secs(10), fifth)
        .await
        .expect("the fifth connection is served once a slot frees")
        .unwrap();
    assert_eq!(answer.unwrap().status(), 202);
    let waited = answered_at - closed_at;
    assert!(
        waited < Duration::from_secs(3),
        "served {waited:?} after the close"
    );
    eprintln!("the fifth connection was served {waited:?} after a slot freed");

    // The three left still hold their slots; one more connection fits, and once they are
    // gone the server serves many again.
    let r = github_post(
        &client,
        &server.url("/hooks/gh"),
        "ping",
        "in-the-freed-slot",
        fixture("ping.json"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    drop(idle);
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..20 {
        let url = server.url("/hooks/gh");
        sends.spawn(async move {
            let client = reqwest::Client::new();
            github_post(
                &client,
                &url,
                "ping",
                &format!("after-{i}"),
                fixture("ping.json"),
            )
            .send()
            .await
            .map(|r| r.status().as_u16())
        });
    }
    let statuses = tokio::time::timeout(Duration::from_secs(20), sends.join_all())
        .await
        .expect("20 clients served");
    assert!(
        statuses.iter().all(|s| matches!(s, Ok(202))),
        "{statuses:?}"
    );
    let healthz = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);
    assert!(server.logs().contains("connection limit reached"));
    server.terminate();
    assert_eq!(stored_ids(&server).await.len(), 22);
}

/// `hookbridge deliveries list | head -1`: a reader that closes the pipe early must not make
/// the CLI panic. Each command runs with its stdout a pipe whose reader is already closed,
/// so its first line meets EPIPE; it exits quietly with status 0.
#[tokio::test]
async fn the_cli_exits_quietly_when_its_stdout_pipe_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hookbridge.toml"), config()).unwrap();
    // Deliveries to list, so that `--json` has lines to print too.
    let store = SqliteStore::open(dir.path().join("data/hookbridge.db"), Default::default())
        .await
        .unwrap();
    for id in ["pipe-1", "pipe-2", "pipe-3"] {
        store
            .insert_delivery(hookbridge_sync_engine::store::NewDelivery {
                endpoint: "gh".into(),
                provider: "github".into(),
                delivery_id: id.into(),
                event_type: "ping".into(),
                headers: vec![("x-github-event".into(), "ping".into())],
                body: fixture("ping.json").into(),
                received_at: OffsetDateTime::now_utc(),
            })
            .await
            .unwrap();
    }
    store.close().await;
    for args in [
        &["check-config", "--config", "hookbridge.toml"][..],
        &["deliveries", "list", "--config", "hookbridge.toml"][..],
        &[
            "deliveries",
            "list",
            "--json",
            "--config",
            "hookbridge.toml",
        ][..],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookbridge"))
            .args(args)
            .current_dir(dir.path())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}
