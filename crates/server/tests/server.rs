//! The whole ingest path through a real `hookbridge serve` process bound to 127.0.0.1.

mod common;

use std::time::Duration;

use common::*;
use hookbridge_core::DeliveryId;
use hookbridge_sync_engine::store::{DeliveryFilter, SqliteStore, Store};

async fn open_store(server: &Server) -> SqliteStore {
    SqliteStore::open(server.db_path(), Default::default())
        .await
        .unwrap()
}

async fn stored_ids(server: &Server) -> Vec<String> {
    let store = open_store(server).await;
    let rows = store
        .list_deliveries(&DeliveryFilter {
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap();
    store.close().await;
    rows.into_iter()
        .map(|r| r.delivery_id.into_string())
        .collect()
}

#[tokio::test]
async fn every_answer_of_the_ingest_path() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config(""));
    let client = reqwest::Client::new();
    let url = server.url("/hooks/gh");
    let body = fixture("issues.opened.json");

    // New -> 202, duplicate -> 200 and nothing new.
    let r = github_post(&client, &url, "issues", "d-1", body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(json["status"], "accepted");
    assert_eq!(json["delivery_id"], "d-1");
    let r = github_post(&client, &url, "issues", "d-1", body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["status"],
        "duplicate"
    );

    // Wrong secret, tampered body, missing signature -> 401.
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-github-event", "issues")
        .header("x-github-delivery", "d-bad")
        .header("x-hub-signature-256", sign256("wrong", &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let mut tampered = body.clone();
    tampered[20] ^= 1;
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-github-event", "issues")
        .header("x-github-delivery", "d-tampered")
        .header("x-hub-signature-256", sign256(SECRET, &body))
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-github-event", "issues")
        .header("x-github-delivery", "d-unsigned")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("missing signature header x-hub-signature-256"),
        "{text}"
    );
    assert!(!text.contains(SECRET));

    // SHA-1 only: refused where not allowed, accepted where allowed.
    let sha1 = |id: &str, ep: &str| {
        client
            .post(server.url(&format!("/hooks/{ep}")))
            .header("content-type", "application/json")
            .header("x-github-event", "issues")
            .header("x-github-delivery", id.to_owned())
            .header("x-hub-signature", sign1(SECRET, &body))
            .body(body.clone())
    };
    assert_eq!(sha1("d-sha1", "gh").send().await.unwrap().status(), 401);
    assert_eq!(
        sha1("d-sha1", "gh-sha1").send().await.unwrap().status(),
        202
    );

    // Malformed JSON (correctly signed) -> 400; missing delivery header -> 400.
    let bad = b"{\"action\": \"opened\", ".to_vec();
    let r = github_post(&client, &url, "issues", "d-malformed", bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-github-event", "issues")
        .header("x-hub-signature-256", sign256(SECRET, &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Unsupported content type -> 415.
    let r = client
        .post(&url)
        .header("content-type", "text/plain")
        .header("x-github-event", "issues")
        .header("x-github-delivery", "d-text")
        .header("x-hub-signature-256", sign256(SECRET, &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    // Unknown endpoint -> 404; wrong method -> 405.
    let r = github_post(
        &client,
        &server.url("/hooks/nope"),
        "issues",
        "d-404",
        body.clone(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 405);

    // Over the endpoint's limit -> 413, declared or streamed (chunked, no length).
    let r = github_post(
        &client,
        &server.url("/hooks/small"),
        "issues",
        "d-big",
        body.clone(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 413);
    let chunk = vec![b' '; 800];
    let head = format!(
        "POST /hooks/small HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         x-github-event: ping\r\nx-github-delivery: d-chunked\r\n\
         x-hub-signature-256: {}\r\ntransfer-encoding: chunked\r\n\r\n",
        sign256(SECRET, b"{}")
    );
    let chunk_frame = [
        format!("{:x}\r\n", chunk.len()).into_bytes(),
        chunk,
        b"\r\n".to_vec(),
    ]
    .concat();
    let status = raw_exchange(
        server.addr,
        &[
            (head.as_bytes(), Duration::ZERO),
            (&chunk_frame, Duration::ZERO),
            (&chunk_frame, Duration::ZERO),
            (b"0\r\n\r\n", Duration::ZERO),
        ],
    );
    assert_eq!(status, Some(413));

    // A body that drips slower than body_timeout_secs (2 s) -> 408.
    let head = format!(
        "POST /hooks/gh HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         x-github-event: ping\r\nx-github-delivery: d-slow\r\n\
         x-hub-signature-256: {}\r\ncontent-length: 1000\r\n\r\n",
        sign256(SECRET, b"{}")
    );
    let status = raw_exchange(
        server.addr,
        &[
            (head.as_bytes(), Duration::from_millis(100)),
            (b"{\"zen\":", Duration::ZERO),
        ],
    );
    assert_eq!(status, Some(408));

    // Form-encoded body: signed on the raw form bytes, stored, typed later.
    let json = String::from_utf8(fixture("push.json")).unwrap();
    let form: String = url_encode_form(&json);
    let r = client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-github-event", "push")
        .header("x-github-delivery", "d-form")
        .header("x-hub-signature-256", sign256(SECRET, form.as_bytes()))
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    // Health, readiness, metrics.
    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        r#"hookbridge_deliveries_total{endpoint="gh",outcome="accepted"} 2"#,
        r#"hookbridge_deliveries_total{endpoint="gh",outcome="duplicate"} 1"#,
        r#"hookbridge_deliveries_total{endpoint="gh",outcome="invalid_signature"} 4"#,
        r#"hookbridge_deliveries_total{endpoint="small",outcome="too_large"} 2"#,
        r#"hookbridge_deliveries_total{endpoint="gh",outcome="body_timeout"} 1"#,
        r#"hookbridge_deliveries_total{endpoint="_unknown",outcome="unknown_endpoint"} 1"#,
        "hookbridge_ingest_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }
    assert!(!metrics.contains(SECRET));

    // Exactly the accepted deliveries are stored, each once.
    let mut ids = stored_ids(&server).await;
    ids.sort();
    assert_eq!(ids, ["d-1", "d-form", "d-sha1"]);
    let logs = server.logs();
    assert!(!logs.contains(SECRET), "a secret reached the logs");
}

fn url_encode_form(json: &str) -> String {
    let mut out = String::from("payload=");
    for b in json.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[tokio::test]
async fn acknowledged_deliveries_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &config(""));
    let client = reqwest::Client::new();
    let url = server.url("/hooks/gh");
    let body = fixture("issues.opened.json");

    // Keep 16 senders busy, then kill the server while they are mid-flight.
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let client = client.clone();
        let url = url.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                let id = format!("kill-{worker}-{i}");
                match github_post(&client, &url, "issues", &id, body.clone())
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 202 => acked.push(id),
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => break, // the server is gone
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.kill_hard();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(
        acked.len() > 50,
        "load too light to be meaningful: {}",
        acked.len()
    );

    // Restart on the same database: every acknowledged delivery is there.
    let server = Server::start(dir.path(), &config(""));
    let stored: std::collections::HashSet<String> = stored_ids(&server).await.into_iter().collect();
    let missing: Vec<_> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged deliveries lost: {missing:?}",
        missing.len()
    );

    // And the restarted server still deduplicates against them.
    let r = github_post(
        &client,
        &server.url("/hooks/gh"),
        "issues",
        &acked[0],
        body.clone(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &config(""));
    let body = b"{\"zen\":\"Keep it logically awesome.\",\"hook_id\":1}".to_vec();
    // A request whose body is still arriving when SIGTERM comes.
    let head = format!(
        "POST /hooks/gh HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         x-github-event: ping\r\nx-github-delivery: d-inflight\r\n\
         x-hub-signature-256: {}\r\ncontent-length: {}\r\n\r\n",
        sign256(SECRET, &body),
        body.len()
    );
    let addr = server.addr;
    let sender = std::thread::spawn(move || {
        raw_exchange(
            addr,
            &[
                (head.as_bytes(), Duration::from_millis(600)),
                (&body, Duration::ZERO),
            ],
        )
    });
    std::thread::sleep(Duration::from_millis(200));
    let status = server.terminate();
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        server.logs()
    );
    assert_eq!(sender.join().unwrap(), Some(202));
    let store = SqliteStore::open(server.db_path(), Default::default())
        .await
        .unwrap();
    let found = store
        .find_deliveries(&DeliveryId::new("d-inflight"), None)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    store.close().await;
}

#[tokio::test]
async fn json_logs_with_flag_and_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &format!("{}\n[log]\nformat = \"json\"\n", config("")),
    );
    let client = reqwest::Client::new();
    let r = github_post(
        &client,
        &server.url("/hooks/gh"),
        "ping",
        "d-log",
        b"{\"zen\":\"z\"}".to_vec(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logs = server.logs();
    let accepted = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "delivery accepted")
        .unwrap_or_else(|| panic!("no JSON 'delivery accepted' line in\n{logs}"));
    assert_eq!(accepted["delivery_id"], "d-log");
    assert_eq!(accepted["endpoint"], "gh");
    assert!(!logs.contains(SECRET));
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config("header_timeout_secs = 1"));
    let addr = server.addr;
    let closed_after = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let started = std::time::Instant::now();
        // A slowloris client: a header line now and then, never the end of the headers.
        let _ = stream.write_all(b"POST /hooks/gh HTTP/1.1\r\nhost: x\r\n");
        let mut buf = [0u8; 1024];
        loop {
            std::thread::sleep(Duration::from_millis(300));
            if stream.write_all(b"x-slow: 1\r\n").is_err() {
                break;
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    // An error answer (408) may precede the close.
                    if stream.read(&mut buf).map(|n| n == 0).unwrap_or(true) {
                        break;
                    }
                }
            }
            if started.elapsed() > Duration::from_secs(8) {
                break;
            }
        }
        started.elapsed()
    })
    .await
    .unwrap();
    assert!(
        closed_after < Duration::from_secs(4),
        "still open after {closed_after:?}"
    );
    // And the server still serves.
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
