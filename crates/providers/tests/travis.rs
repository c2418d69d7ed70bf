//! The Travis CI provider end to end: every sample signs, verifies, identifies and parses to
//! its typed build event; the public key is fetched from a (mock) Travis API; the options and
//! the forward compatibility rules of `TravisEvent::from_json`.
#![cfg(feature = "travis")]

use std::path::Path;

use hookbridge_core::signature::SignatureMismatch;
use hookbridge_core::{Provider, RawDelivery, Secret, SignError, VerifyError};
use hookbridge_providers::travis::events::{BuildState, BuildType, StatusMessage, TravisEvent};
use hookbridge_providers::travis::{
    self, SAMPLES, Travis, TravisKeyError, TravisOptions, fetch_public_key, parse_public_key_pem,
    parse_signing_key_pem,
};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SPKI: &str = include_str!("../samples/travis/TEST-ONLY-travis-public-key.spki.pem");
const PKCS1: &str = include_str!("../samples/travis/TEST-ONLY-travis-public-key.pkcs1.pem");
const PRIVATE: &str = include_str!("../samples/travis/TEST-ONLY-travis-signing-key.pem");
const UNRELATED: &str = include_str!("../samples/travis/TEST-ONLY-unrelated-public-key.spki.pem");

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// A provider configured with the test public key that also signs with the test key.
fn provider() -> Travis {
    let options = TravisOptions {
        public_key: Some(SPKI.to_owned()),
        ..Default::default()
    };
    Travis::new(vec![], options)
        .unwrap()
        .with_test_signing_key(parse_signing_key_pem(PRIVATE).unwrap())
}

fn signed(travis: &Travis, json: &[u8]) -> RawDelivery {
    let signed = travis.sign("build", json, "ignored", now()).unwrap();
    RawDelivery::new("travis", signed.headers, signed.body)
}

fn options(toml_text: &str) -> Result<TravisOptions, toml::de::Error> {
    toml::from_str(toml_text)
}

#[test]
fn every_sample_signs_verifies_identifies_and_parses() {
    let travis = provider();
    let mut files: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/travis"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json"))
            .map(|n| n.trim_end_matches(".json").to_owned())
            .collect();
    files.sort();
    let mut listed: Vec<&str> = SAMPLES.iter().map(|s| s.name).collect();
    listed.sort();
    assert_eq!(files, listed, "every sample file is listed in SAMPLES");

    for sample in SAMPLES {
        assert_eq!(sample.event_type, "build");
        let delivery = signed(&travis, sample.json.as_bytes());
        let verified = travis
            .verify(&delivery)
            .unwrap_or_else(|e| panic!("{}: {e}", sample.name));
        assert_eq!(verified.scheme, "signature");

        let json: serde_json::Value = serde_json::from_str(sample.json).unwrap();
        let identity = travis.identify(&delivery).unwrap();
        let at = json["finished_at"]
            .as_str()
            .or(json["started_at"].as_str())
            .map(|t| format!(":{t}"))
            .unwrap_or_default();
        assert_eq!(
            identity.delivery_id.as_str(),
            format!("{}:{}{at}", json["id"], json["state"].as_str().unwrap())
        );
        assert_eq!(identity.event_type, "build");

        let event = travis.parse(&delivery).unwrap();
        assert_eq!(event.name().as_str(), sample.name);
        assert_eq!(event.provider().as_str(), "travis");
        assert_eq!(
            event.subject().unwrap().as_str(),
            format!("travis:acme/billing-service/build/{}", json["id"])
        );
        let actor = event.actor().unwrap();
        assert_eq!(actor.name, json["committer_name"].as_str().unwrap());
        assert!(!actor.is_bot && actor.id.is_none());
        let typed = event.payload::<TravisEvent>().unwrap();
        let TravisEvent::Build(build) = typed else {
            panic!("{}: untyped {typed:?}", sample.name)
        };
        assert_eq!(build.repository.slug(), "acme/billing-service");
        assert!(!build.matrix.is_empty());
        assert_eq!(event.occurred_at(), build.finished_at.or(build.started_at));
        assert!(event.occurred_at().is_some());
        // The typed payload serializes for `inspect`.
        assert_eq!(event.payload_json()["event"], "build");
    }
}

fn sample(name: &str) -> (TravisEvent, serde_json::Value) {
    let json = SAMPLES.iter().find(|s| s.name == name).unwrap().json;
    (
        TravisEvent::from_json(json.as_bytes()).unwrap(),
        serde_json::from_str(json).unwrap(),
    )
}

#[test]
fn sample_details() {
    let (pending, _) = sample("build.pending");
    let TravisEvent::Build(b) = &pending else {
        panic!()
    };
    assert_eq!(b.state, BuildState::Started);
    assert_eq!(b.status_message, Some(StatusMessage::Pending));
    assert_eq!((b.status, b.duration, b.finished_at), (None, None, None));
    assert_eq!(b.matrix[1].state, Some(BuildState::Created));
    assert_eq!(b.matrix[1].allow_failure, Some(true));
    assert_eq!(
        pending.updated_at().map(|t| t.unix_timestamp()),
        Some(1715937700) // 2024-05-17T09:21:40Z
    );

    let (passed, _) = sample("build.passed");
    let TravisEvent::Build(b) = &passed else {
        panic!()
    };
    assert_eq!(b.build_type, Some(BuildType::PullRequest));
    assert!(b.is_pull_request());
    assert_eq!(b.pull_request_number, Some(412));
    assert_eq!(
        b.pull_request_title.as_deref(),
        Some("Bound the SQLite busy timeout")
    );
    assert_eq!(b.status, Some(0));
    assert_eq!(b.number.as_deref(), Some("1185"));
    assert_eq!(b.committer_name.as_deref(), Some("GitHub"));
    assert_eq!(b.author_name.as_deref(), Some("Katherine Johnson"));

    let (failing, _) = sample("build.still_failing");
    let TravisEvent::Build(b) = &failing else {
        panic!()
    };
    assert_eq!(b.build_type, Some(BuildType::Cron));
    assert_eq!(b.status_message, Some(StatusMessage::StillFailing));
    assert_eq!(b.result_message, Some(StatusMessage::StillFailing));
    assert_eq!(b.branch.as_deref(), Some("feature/ledger-export"));

    let (canceled, _) = sample("build.canceled");
    let TravisEvent::Build(b) = &canceled else {
        panic!()
    };
    assert_eq!(b.build_type, Some(BuildType::Api));
    assert_eq!((b.state.clone(), b.status), (BuildState::Canceled, None));

    let (errored, _) = sample("build.errored");
    let TravisEvent::Build(b) = &errored else {
        panic!()
    };
    assert_eq!(b.tag.as_deref(), Some("v1.4.0"));
    assert_eq!(b.state, BuildState::Errored);
    assert!(!b.is_pull_request());
}

#[test]
fn nothing_verifies_until_the_key_is_installed() {
    let travis = Travis::new(vec![], TravisOptions::default()).unwrap();
    assert!(travis.fetches_public_key());
    assert!(!travis.public_key_loaded());
    assert_eq!(travis.api_url(), "https://api.travis-ci.com");
    let delivery = signed(&provider(), SAMPLES[0].json.as_bytes());
    assert_eq!(
        travis.verify(&delivery),
        Err(VerifyError::NotReady {
            reason: "the Travis CI public key is not loaded yet"
        })
    );
    assert!(!travis.is_ready());
    // Identification and parsing do not depend on the key.
    assert!(travis.identify(&delivery).is_ok());

    travis.set_public_key(parse_public_key_pem(PKCS1).unwrap());
    assert!(travis.public_key_loaded());
    assert!(travis.verify(&delivery).is_ok());

    // A rotated key replaces the old one.
    travis.set_public_key(parse_public_key_pem(UNRELATED).unwrap());
    assert!(matches!(
        travis.verify(&delivery),
        Err(VerifyError::Mismatch {
            source: SignatureMismatch::NoMatch(1),
            ..
        })
    ));
}

#[test]
fn unsigned_tampered_and_foreign_deliveries_are_refused() {
    let travis = provider();
    let delivery = signed(&travis, SAMPLES[0].json.as_bytes());

    let mut unsigned = delivery.clone();
    unsigned.headers.remove("signature");
    unsigned.headers.remove("authorization");
    assert_eq!(
        travis.verify(&unsigned),
        Err(VerifyError::MissingSignature {
            header: "signature"
        })
    );

    let mut tampered = delivery.clone();
    let body = String::from_utf8(tampered.body.to_vec()).unwrap();
    tampered.body = body.replacen("started", "passed", 1).into();
    assert!(matches!(
        travis.verify(&tampered),
        Err(VerifyError::Mismatch {
            source: SignatureMismatch::NoMatch(1),
            ..
        })
    ));

    let other = Travis::new(
        vec![],
        TravisOptions {
            public_key: Some(UNRELATED.to_owned()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(other.verify(&delivery).is_err());
}

#[test]
fn signing_needs_a_test_key() {
    let travis = Travis::new(
        vec![],
        TravisOptions {
            public_key: Some(SPKI.to_owned()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        travis
            .sign("build", SAMPLES[0].json.as_bytes(), "x", now())
            .unwrap_err(),
        SignError::Unsupported("Travis signs with Travis CI's private key".into())
    );
}

#[test]
fn options_from_toml() {
    let o = options("").unwrap();
    assert_eq!(o.api_url, "https://api.travis-ci.com");
    assert!(o.public_key.is_none() && o.legacy_token.is_none() && !o.allow_legacy_authorization);

    let o = options(
        "api_url = \"https://api.travis-ci.org\"\nlegacy_token = \"tok\"\nallow_legacy_authorization = true\n",
    )
    .unwrap();
    assert_eq!(o.legacy_token.as_ref().unwrap().expose(), b"tok");
    assert!(Travis::new(vec![], o).is_ok());

    // Unknown keys, including any attempt to switch verification off, are refused.
    for bad in ["verify = false\n", "insecure = true\n", "public_key = 3\n"] {
        assert!(options(bad).is_err(), "{bad}");
    }
}

#[test]
fn invalid_configurations() {
    let cases: Vec<(Vec<Secret>, TravisOptions, &str)> = vec![
        (
            vec![Secret::new("s")],
            TravisOptions::default(),
            "takes no `secret`",
        ),
        (
            vec![],
            TravisOptions {
                allow_legacy_authorization: true,
                ..Default::default()
            },
            "needs the Travis CI user token",
        ),
        (
            vec![],
            TravisOptions {
                legacy_token: Some(Secret::new("tok")),
                ..Default::default()
            },
            "only with allow_legacy_authorization",
        ),
        (
            vec![],
            TravisOptions {
                public_key: Some(
                    "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----".into(),
                ),
                ..Default::default()
            },
            "public_key",
        ),
        (
            vec![],
            TravisOptions {
                api_url: "ftp://api.travis-ci.com".into(),
                ..Default::default()
            },
            "api_url",
        ),
    ];
    for (secrets, options, expected) in cases {
        let err = Travis::new(secrets, options).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn legacy_authorization_end_to_end_and_secrets_stay_hidden() {
    let o =
        options("legacy_token = \"TOPSECRETTOKEN\"\nallow_legacy_authorization = true\n").unwrap();
    let travis = Travis::new(vec![], o)
        .unwrap()
        .with_test_signing_key(parse_signing_key_pem(PRIVATE).unwrap());
    let mut delivery = signed(&travis, SAMPLES[1].json.as_bytes());
    // No key is loaded, so only the legacy header can pass, and only once the signature is gone.
    assert!(travis.verify(&delivery).is_err());
    delivery.headers.remove("signature");
    assert_eq!(travis.verify(&delivery).unwrap().scheme, "authorization");

    let debug = format!("{travis:?}");
    assert!(!debug.contains("TOPSECRETTOKEN"), "{debug}");
    // The private key's numbers would show as long decimal or hex runs.
    assert!(!debug.contains("BigUint") && debug.len() < 400, "{debug}");
}

fn config_json(pem: &str) -> serde_json::Value {
    serde_json::json!({
        "config": {
            "host": "travis-ci.com",
            "shorten_host": "trvs.io",
            "notifications": { "webhook": { "public_key": pem } }
        }
    })
}

#[tokio::test]
async fn the_public_key_is_fetched_from_the_config_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/config"))
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(config_json(SPKI)))
        .expect(2)
        .mount(&server)
        .await;
    let client = reqwest::Client::new();
    let key = fetch_public_key(&client, &server.uri()).await.unwrap();
    assert_eq!(key, parse_public_key_pem(SPKI).unwrap());

    // The server's wiring: an endpoint without `public_key` gets the fetched key.
    let options = TravisOptions {
        api_url: format!("{}/", server.uri()),
        ..Default::default()
    };
    let travis = Travis::new(vec![], options).unwrap();
    let delivery = signed(&provider(), SAMPLES[2].json.as_bytes());
    assert!(travis.verify(&delivery).is_err());
    travis.refresh_public_key(&client).await.unwrap();
    assert!(travis.verify(&delivery).is_ok());
}

#[tokio::test]
async fn a_pkcs1_key_from_the_api_is_accepted() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/config"))
        .respond_with(ResponseTemplate::new(200).set_body_json(config_json(PKCS1)))
        .mount(&server)
        .await;
    let key = fetch_public_key(&reqwest::Client::new(), &server.uri())
        .await
        .unwrap();
    assert_eq!(key, parse_public_key_pem(SPKI).unwrap());
}

#[tokio::test]
async fn config_endpoint_failures_are_told_apart() {
    let server = MockServer::start().await;
    let client = reqwest::Client::new();
    let cases = [
        ("/status", ResponseTemplate::new(503)),
        (
            "/notjson",
            ResponseTemplate::new(200).set_body_string("<html>"),
        ),
        (
            "/nokey",
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"config": {}})),
        ),
        (
            "/badpem",
            ResponseTemplate::new(200).set_body_json(config_json("not a key")),
        ),
    ];
    for (prefix, response) in cases {
        Mock::given(method("GET"))
            .and(path(format!("{prefix}/config")))
            .respond_with(response)
            .mount(&server)
            .await;
    }
    let fetch = |prefix: &str| {
        let url = format!("{}{prefix}", server.uri());
        let client = client.clone();
        async move { fetch_public_key(&client, &url).await.unwrap_err() }
    };
    assert!(matches!(
        fetch("/status").await,
        TravisKeyError::Status { status: 503, .. }
    ));
    assert!(matches!(
        fetch("/notjson").await,
        TravisKeyError::MissingKey { .. }
    ));
    assert!(matches!(
        fetch("/nokey").await,
        TravisKeyError::MissingKey { .. }
    ));
    assert!(matches!(
        fetch("/badpem").await,
        TravisKeyError::InvalidPem {
            expected: "public key",
            ..
        }
    ));
    // Nothing listening: a request error naming the URL.
    let err = fetch_public_key(&client, "http://127.0.0.1:1")
        .await
        .unwrap_err();
    assert!(matches!(err, TravisKeyError::Request { .. }));
    assert!(
        err.to_string().contains("http://127.0.0.1:1/config"),
        "{err}"
    );
}

/// A minimal build notification with extra top-level fields spliced in.
fn build_json(status_message: &str, extra: &str) -> String {
    format!(
        r#"{{"id":7,"number":"3","type":"push","state":"passed","status":0,
        "status_message":"{status_message}","committer_name":"Ada",
        "repository":{{"id":1,"name":"minimal","owner_name":"svenfuchs","url":null}}{extra}}}"#
    )
}

#[test]
fn unknown_values_and_fields_are_kept_typed() {
    let json = build_json("Flaky", r#","brand_new":{"deep":[1,2]},"type_v2":null"#);
    let event = TravisEvent::from_json(json.as_bytes()).unwrap();
    let TravisEvent::Build(b) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(b.status_message, Some(StatusMessage::Other("Flaky".into())));
    assert_eq!(event.name(), "build.flaky");
    assert_eq!(
        event.subject().as_deref(),
        Some("travis:svenfuchs/minimal/build/7")
    );
    assert_eq!(
        serde_json::to_value(&b.status_message).unwrap(),
        serde_json::json!("Flaky")
    );

    let no_message =
        build_json("x", "").replace(r#""status_message":"x","#, r#""status_message":null,"#);
    let event = TravisEvent::from_json(no_message.as_bytes()).unwrap();
    assert!(matches!(event, TravisEvent::Build(_)));
    assert_eq!(event.name(), "build.passed");
}

#[test]
fn wrong_shape_is_untyped_with_reason() {
    let json = build_json("Passed", "").replace(r#""id":7"#, r#""id":"7""#);
    let event = TravisEvent::from_json(json.as_bytes()).unwrap();
    let TravisEvent::Untyped(u) = &event else {
        panic!("{event:?}")
    };
    assert!(
        u.reason.as_deref().unwrap().contains("invalid type"),
        "{:?}",
        u.reason
    );
    assert_eq!(u.payload["id"], "7");
    assert_eq!(event.name(), "build.passed");
    assert_eq!(event.actor_name(), Some("Ada"));
    // The id is not a number, so there is no stable subject.
    assert_eq!(event.subject(), None);

    let event = TravisEvent::from_json(br#"{"id":3,"state":"passed"}"#).unwrap();
    let TravisEvent::Untyped(u) = &event else {
        panic!()
    };
    assert!(u.reason.as_deref().unwrap().contains("repository"));
    assert_eq!(event.name(), "build.passed");
    assert_eq!(TravisEvent::from_json(b"{}").unwrap().name(), "build");
}

#[test]
fn malformed_and_non_object_json_are_errors() {
    for json in [
        &br#"{"id":7,"#[..],
        b"",
        b"  ",
        br#"{"id":7} trailing"#,
        br#"{"id":"7","repository":{"#,
        b"[1,2]",
        b"42",
        b"null",
    ] {
        assert!(
            TravisEvent::from_json(json).is_err(),
            "{}",
            String::from_utf8_lossy(json)
        );
    }
}

#[test]
fn parse_refuses_what_identify_refuses() {
    let travis = provider();
    let mut delivery = signed(&travis, SAMPLES[0].json.as_bytes());
    delivery
        .headers
        .insert("content-type", "application/json".parse().unwrap());
    assert!(travis.parse(&delivery).is_err());
    let _ = travis::KIND;
}
