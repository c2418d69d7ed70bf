//! Every provider through the real HTTP path: each shipped sample, signed as the service
//! signs it, is accepted and stored; a tampered body, a wrong secret and a missing signature
//! are refused with 401 and nothing is stored; handshakes are answered.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::Server;
use hookbridge_core::{Provider, Secret};
use hookbridge_sync_engine::store::{DeliveryFilter, SqliteStore, Store};
use time::OffsetDateTime;

const TRAVIS_PUBLIC: &str =
    include_str!("../../providers/samples/travis/TEST-ONLY-travis-public-key.spki.pem");
const TRAVIS_PRIVATE: &str =
    include_str!("../../providers/samples/travis/TEST-ONLY-travis-signing-key.pem");
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn config() -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[store]
kind = "sqlite"
path = "data/hookbridge.db"

[endpoints.github]
provider = "github"
secret = "gh-secret"

[endpoints.pagerduty]
provider = "pagerduty"
secrets = ["pd-old", "pd-secret"]

[endpoints.slack]
provider = "slack"
secret = "slack-secret"

[endpoints.trello]
provider = "trello"
secret = "trello-secret"
callback_url = "https://hooks.example.com/hooks/trello"

[endpoints.standard]
provider = "standard-webhooks"
secret = "{WHSEC}"

[endpoints.stripe]
provider = "standard-webhooks"
scheme = "stripe"
secret = "whsec_stripe_test_secret"

[endpoints.travis]
provider = "travis"
public_key = """
{TRAVIS_PUBLIC}"""

[endpoints.asana]
provider = "asana"

[endpoints.jira]
provider = "jira"
secret = "jira-secret"

[endpoints.jira-legacy]
provider = "jira"
unsigned = true
token = "jira-url-token-0123456789"

[endpoints.gitlab]
provider = "gitlab"
secret = "gitlab-secret"
"#
    )
}

/// The provider a sender would sign with: the endpoint's own configuration.
fn signer(endpoint: &str, secret: Option<&str>) -> Arc<dyn Provider> {
    let text = config();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let mut section = table["endpoints"][endpoint].as_table().unwrap().clone();
    let kind = section
        .remove("provider")
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let mut secrets: Vec<Secret> = section
        .remove("secrets")
        .map(|v| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|s| Secret::new(s.as_str().unwrap()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(s) = section.remove("secret") {
        secrets.push(Secret::new(s.as_str().unwrap()));
    }
    if let Some(over) = secret {
        secrets = vec![Secret::new(over)];
    }
    // Senders sign with their current secret: the last of a rotation list.
    secrets.reverse();
    if kind == "travis" {
        let options = section.try_into().unwrap();
        let key = hookbridge_providers::travis::parse_signing_key_pem(TRAVIS_PRIVATE).unwrap();
        return Arc::new(
            hookbridge_providers::travis::Travis::new(vec![], options)
                .unwrap()
                .with_test_signing_key(key),
        );
    }
    hookbridge_providers::build(&kind, secrets, section).unwrap()
}

fn request(
    client: &reqwest::Client,
    server: &Server,
    endpoint: &str,
    signed: hookbridge_core::SignedDelivery,
) -> reqwest::RequestBuilder {
    let mut url = server.url(&format!("/hooks/{endpoint}"));
    if let Some(q) = &signed.query {
        url = format!("{url}?{q}");
    }
    client.post(url).headers(signed.headers).body(signed.body)
}

#[tokio::test]
async fn every_provider_accepts_its_samples_and_refuses_forgeries() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config());
    let client = reqwest::Client::new();

    // Asana: no secret until the handshake hands one over; once only.
    let r = client
        .post(server.url("/hooks/asana"))
        .header(
            "x-hook-secret",
            "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-hook-secret"],
        "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81"
    );
    let r = client
        .post(server.url("/hooks/asana"))
        .header("x-hook-secret", "attacker-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(
        r.headers().get("x-hook-secret").is_none(),
        "a refused handshake must not echo the secret"
    );
    // Trello's HEAD check.
    assert_eq!(
        client
            .head(server.url("/hooks/trello"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let endpoints: [(&str, Option<&str>); 11] = [
        ("jira", None),
        ("jira-legacy", None),
        ("gitlab", None),
        ("github", None),
        ("pagerduty", None),
        ("slack", None),
        ("trello", None),
        ("standard", None),
        ("stripe", None),
        ("travis", None),
        (
            "asana",
            Some("b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81"),
        ),
    ];
    let mut accepted = HashSet::new();
    for (endpoint, secret) in endpoints {
        let provider = signer(endpoint, secret);
        let kind = provider.kind();
        let samples = provider.samples();
        assert!(!samples.is_empty(), "{kind} ships no samples");
        for (i, sample) in samples.iter().enumerate() {
            let id = format!("{endpoint}-{i}");
            let signed = provider.sign(
                sample.event_type,
                sample.json.as_bytes(),
                &id,
                OffsetDateTime::now_utc(),
            );
            let signed = match signed {
                Ok(signed) => signed,
                Err(e) => panic!("{endpoint} {}: {e}", sample.name),
            };
            // Tampered: one byte of the body changed. (GitLab's token and Jira's URL token
            // do not cover the body: there is nothing to detect.)
            let covers_body = !matches!(endpoint, "gitlab" | "jira-legacy");
            let mut body = signed.body.to_vec();
            let at = body
                .iter()
                .rposition(|b| b.is_ascii_alphanumeric())
                .unwrap();
            body[at] = if body[at] == b'x' { b'y' } else { b'x' };
            let tampered = hookbridge_core::SignedDelivery {
                body: body.into(),
                ..signed.clone()
            };
            if covers_body {
                let r = request(&client, &server, endpoint, tampered)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    r.status(),
                    401,
                    "{endpoint} {} tampered: {}",
                    sample.name,
                    r.text().await.unwrap()
                );
            }

            let r = request(&client, &server, endpoint, signed)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let json: serde_json::Value = r.json().await.unwrap();
            assert!(
                status == 202 || status == 200,
                "{endpoint} {}: {status} {json}",
                sample.name
            );
            accepted.insert((
                endpoint.to_owned(),
                json["delivery_id"].as_str().unwrap().to_owned(),
            ));
        }
        // Signed with a wrong secret (Travis: there is no secret to get wrong).
        if endpoint == "jira-legacy" {
            let sample = &samples[0];
            let mut signed = provider
                .sign(
                    sample.event_type,
                    sample.json.as_bytes(),
                    "wrong-1",
                    OffsetDateTime::now_utc(),
                )
                .unwrap();
            signed.query = Some("token=jira-url-token-0123456780".into());
            let r = request(&client, &server, endpoint, signed)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{endpoint} wrong token");
        } else if endpoint != "travis" {
            let wrong = signer(
                endpoint,
                Some(if endpoint == "standard" {
                    "whsec_d3JvbmctZW5kcG9pbnQtc2VjcmV0"
                } else {
                    "not-the-secret"
                }),
            );
            let sample = &samples[0];
            let signed = wrong
                .sign(
                    sample.event_type,
                    sample.json.as_bytes(),
                    "wrong-1",
                    OffsetDateTime::now_utc(),
                )
                .unwrap();
            let r = request(&client, &server, endpoint, signed)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{endpoint} wrong secret");
        }
        // No signature headers at all.
        let sample = &samples[0];
        let r = client
            .post(server.url(&format!("/hooks/{endpoint}")))
            .header("content-type", "application/json")
            .body(sample.json.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{endpoint} unsigned");
    }

    // Stored: exactly what was accepted, and every stored delivery parses to a typed event.
    let store = SqliteStore::open(server.db_path(), Default::default())
        .await
        .unwrap();
    let rows = store
        .list_deliveries(&DeliveryFilter {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let stored: HashSet<_> = rows
        .iter()
        .map(|r| (r.endpoint.to_string(), r.delivery_id.to_string()))
        .collect();
    assert_eq!(stored, accepted);
    for row in &rows {
        let parser = hookbridge_providers::parser(&row.provider).unwrap();
        let event = parser
            .parse(&row.to_raw())
            .unwrap_or_else(|e| panic!("{} {}: {e}", row.endpoint, row.delivery_id));
        assert!(!event.name().as_str().is_empty());
        // Credentials are not kept with the delivery.
        let headers = format!("{:?}", row.headers);
        assert!(
            !headers.contains("gitlab-secret") && !headers.contains("jira-url-token"),
            "{headers}"
        );
    }
    store.close().await;
    let logs = server.logs();
    for secret in [
        "jira-secret",
        "jira-url-token-0123456789",
        "gitlab-secret",
        "gh-secret",
        "pd-secret",
        "slack-secret",
        "trello-secret",
        "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81",
    ] {
        assert!(!logs.contains(secret), "{secret} in logs");
    }
}

#[tokio::test]
async fn asana_learned_secret_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81";
    let mut server = Server::start(dir.path(), &config());
    let client = reqwest::Client::new();
    let r = client
        .post(server.url("/hooks/asana"))
        .header("x-hook-secret", secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.terminate();

    let server = Server::start(dir.path(), &config());
    let r = client
        .post(server.url("/hooks/asana"))
        .header("x-hook-secret", "another")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "the stored secret is restored at start-up");
    let provider = signer("asana", Some(secret));
    let sample = &hookbridge_providers::samples("asana")[0];
    let signed = provider
        .sign(
            sample.event_type,
            sample.json.as_bytes(),
            "x",
            OffsetDateTime::now_utc(),
        )
        .unwrap();
    let r = request(&client, &server, "asana", signed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

/// `hookbridge verify` and `hookbridge inspect` on a captured delivery of every provider.
#[test]
fn cli_verify_and_inspect_every_provider() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("hookbridge.toml");
    std::fs::write(&config_path, config()).unwrap();
    let endpoints = [
        ("github", None),
        ("gitlab", None),
        ("jira", None),
        ("jira-legacy", None),
        ("pagerduty", None),
        ("slack", None),
        ("trello", None),
        ("standard", None),
        ("stripe", None),
        ("travis", None),
    ];
    for (endpoint, secret) in endpoints {
        let provider = signer(endpoint, secret);
        let sample = provider.samples()[0];
        let signed = provider
            .sign(
                sample.event_type,
                sample.json.as_bytes(),
                "cli-1",
                OffsetDateTime::now_utc(),
            )
            .unwrap();
        let body = dir.path().join(format!("{endpoint}.body"));
        std::fs::write(&body, &signed.body).unwrap();
        let headers: String = signed
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap()))
            .collect();
        let headers_file = dir.path().join(format!("{endpoint}.headers"));
        std::fs::write(&headers_file, headers).unwrap();
        let run = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_hookbridge"))
                .args(args)
                .env_remove("HOOKBRIDGE_CONFIG")
                .output()
                .unwrap()
        };
        let files = [
            "--body",
            body.to_str().unwrap(),
            "--headers-file",
            headers_file.to_str().unwrap(),
        ];
        // URL-token schemes (Jira's unsigned hooks) need the request URL too.
        let url = signed
            .query
            .as_ref()
            .map(|q| format!("/hooks/{endpoint}?{q}"));
        let url_args: Vec<&str> = url.as_deref().map(|u| vec!["--url", u]).unwrap_or_default();
        let out = run(&[
            &[
                "verify",
                "--endpoint",
                endpoint,
                "--config",
                config_path.to_str().unwrap(),
            ][..],
            &files,
            &url_args,
        ]
        .concat());
        assert!(
            out.status.success(),
            "verify {endpoint}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));

        let kind = provider.kind().to_string();
        let out = run(&[&["inspect", "--provider", &kind][..], &files].concat());
        assert!(
            out.status.success(),
            "inspect {endpoint}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["provider"], kind.as_str());
        assert!(json["event"].is_string(), "{endpoint}: {json}");
        // Standard Webhooks carry arbitrary JSON by design: named by its type, kept untyped.
        if !matches!(endpoint, "standard" | "stripe") {
            assert_ne!(
                json["payload"]["event"], "untyped",
                "{endpoint} sample {} typed",
                sample.name
            );
        }
    }
}

#[tokio::test]
async fn send_signs_travis_with_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &config());
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../providers/samples/travis/TEST-ONLY-travis-signing-key.pem"
    );
    let url = server.url("/hooks/travis");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hookbridge"))
            .args([
                "send",
                "--provider",
                "travis",
                "--signing-key",
                key,
                "--event",
                "build.passed",
                "--to",
                &url,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("202 Accepted"), "{stdout}");
}

/// A Travis CI endpoint whose public key cannot be fetched answers 503 (retry later), not
/// 401, and `/readyz` says why; once the key loads, deliveries verify.
#[tokio::test]
async fn travis_key_not_loaded_yet_is_503_until_it_is() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/config"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&api)
        .await;
    let config_json = serde_json::json!({"config": {"notifications": {"webhook": {"public_key": TRAVIS_PUBLIC}}}});
    Mock::given(method("GET"))
        .and(path("/config"))
        .respond_with(ResponseTemplate::new(200).set_body_json(config_json))
        .mount(&api)
        .await;
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"data/hb.db\"\n[endpoints.travis]\nprovider = \"travis\"\napi_url = \"{}\"\n",
        api.uri()
    );
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let server = Server::start(dir.path(), &config);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "start-up waited for the key"
    );
    let client = reqwest::Client::new();
    let provider = signer("travis", None);
    let sample = provider.samples()[0];
    let signed = provider
        .sign(
            sample.event_type,
            sample.json.as_bytes(),
            "t",
            OffsetDateTime::now_utc(),
        )
        .unwrap();
    let r = request(&client, &server, "travis", signed.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("public key is not loaded yet")
    );
    let ready = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("travis"));
    // The refresher retries after 1 s and gets the key.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = request(&client, &server, "travis", signed.clone())
            .send()
            .await
            .unwrap();
        if r.status() == 202 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the key never loaded");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
