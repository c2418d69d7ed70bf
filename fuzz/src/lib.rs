//! What the fuzz targets share: providers configured with known secrets, and a compact,
//! seedable encoding of an HTTP request.
//!
//! A provider target's input is one byte choosing a configuration of the provider (e.g. Jira
//! signed or with a URL token), then a request:
//!
//! ```text
//! ?query string            (optional line)
//! !METHOD                  (optional line, POST otherwise)
//! header-name: value       (any number of lines)
//!                          (an empty line)
//! body bytes
//! ```

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hookbridge_core::{EndpointName, Provider, RawDelivery, Secret, SignedDelivery};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use time::OffsetDateTime;

/// The secret every configured provider verifies with.
pub const SECRET: &str = "fuzz-secret-0123456789abcdef";
/// The Standard Webhooks / Svix secret (base64 after `whsec_`).
pub const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TRAVIS_PUBLIC: &str =
    include_str!("../../crates/providers/samples/travis/TEST-ONLY-travis-public-key.spki.pem");
const TRAVIS_PRIVATE: &str =
    include_str!("../../crates/providers/samples/travis/TEST-ONLY-travis-signing-key.pem");

/// One configuration of a provider, and the secret-less parser of its kind.
pub struct Variant {
    /// Configured as an endpoint would be.
    pub provider: Arc<dyn Provider>,
    /// `hookbridge_providers::parser(kind)`: parses stored deliveries.
    pub parser: Arc<dyn Provider>,
}

fn table(text: &str) -> toml::Table {
    toml::from_str(text).expect("a valid options table")
}

fn build(kind: &str, secrets: &[&str], options: &str) -> Arc<dyn Provider> {
    let secrets = secrets.iter().map(|s| Secret::new(*s)).collect();
    hookbridge_providers::build(kind, secrets, table(options)).expect("a valid provider")
}

/// The configurations fuzzed for `kind`.
pub fn variants(kind: &str) -> Vec<Variant> {
    let providers: Vec<Arc<dyn Provider>> = match kind {
        "github" => vec![
            build("github", &[SECRET], ""),
            build("github", &["old-secret", SECRET], "allow_sha1 = true"),
        ],
        "gitlab" => vec![build("gitlab", &[SECRET], "")],
        "jira" => vec![
            build("jira", &[SECRET], ""),
            build(
                "jira",
                &[],
                &format!("unsigned = true\ntoken = \"{SECRET}\""),
            ),
        ],
        "pagerduty" => vec![build("pagerduty", &["old-secret", SECRET], "")],
        "slack" => vec![build("slack", &[SECRET], "")],
        "trello" => vec![build(
            "trello",
            &[SECRET],
            "callback_url = \"https://hooks.example.com/hooks/trello\"",
        )],
        // With a secret, and waiting for its handshake.
        "asana" => vec![build("asana", &[SECRET], ""), build("asana", &[], "")],
        "travis" => {
            let options = table(&format!(
                "legacy_token = \"{SECRET}\"\nallow_legacy_authorization = true\n\
                 public_key = \"\"\"\n{TRAVIS_PUBLIC}\"\"\""
            ))
            .try_into()
            .expect("Travis options");
            let key = hookbridge_providers::travis::parse_signing_key_pem(TRAVIS_PRIVATE)
                .expect("the test signing key");
            vec![Arc::new(
                hookbridge_providers::travis::Travis::new(vec![], options)
                    .expect("a Travis provider")
                    .with_test_signing_key(key),
            )]
        }
        "standard-webhooks" => vec![
            build("standard-webhooks", &[WHSEC], ""),
            build("standard-webhooks", &[WHSEC], "scheme = \"svix\""),
            build("standard-webhooks", &[SECRET], "scheme = \"stripe\""),
        ],
        other => panic!("no fuzz configuration for {other}"),
    };
    providers
        .into_iter()
        .map(|provider| Variant {
            parser: hookbridge_providers::parser(kind).expect("a parser"),
            provider,
        })
        .collect()
}

/// Decodes a request (see the module documentation).
pub fn request(data: &[u8]) -> RawDelivery {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (&data[..0], data),
    };
    let mut method = Method::POST;
    let mut query: Option<&[u8]> = None;
    let mut headers = HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        match line.first() {
            Some(b'?') => query = Some(&line[1..]),
            Some(b'!') => {
                if let Ok(m) = Method::from_bytes(&line[1..]) {
                    method = m;
                }
            }
            _ => {
                let Some(colon) = line.iter().position(|b| *b == b':') else {
                    continue;
                };
                let value = line[colon + 1..].trim_ascii_start();
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(line[..colon].trim_ascii()),
                    HeaderValue::from_bytes(value),
                ) {
                    headers.append(name, value);
                }
            }
        }
    }
    RawDelivery {
        endpoint: EndpointName::new("fuzz"),
        method,
        uri: uri(query),
        headers,
        body: Bytes::copy_from_slice(body),
        received_at: OffsetDateTime::now_utc(),
    }
}

fn uri(query: Option<&[u8]>) -> Uri {
    query
        .and_then(|q| Uri::try_from([&b"/hooks/fuzz?"[..], q].concat()).ok())
        .unwrap_or_else(|| Uri::from_static("/hooks/fuzz"))
}

/// Encodes a signed delivery as a request (for seeds).
pub fn encode(signed: &SignedDelivery) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(q) = &signed.query {
        out.extend_from_slice(format!("?{q}\n").as_bytes());
    }
    for (name, value) in &signed.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(&signed.body);
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Errors may quote the request, but never a secret the request did not contain. A quote
/// may be normalised (a media type is lowercased), so the request counts as containing the
/// secret in any letter case.
fn check_message(kind: &str, input: &[u8], message: String) {
    if !contains(
        &input.to_ascii_lowercase(),
        SECRET.to_ascii_lowercase().as_bytes(),
    ) {
        assert!(
            !message.contains(SECRET),
            "{kind}: an error message holds the secret: {message}"
        );
    }
}

static VARIANTS: OnceLock<(String, Vec<Variant>)> = OnceLock::new();

/// One provider target's run: every entry point on the request, and the sign/verify round
/// trip on its body.
pub fn provider_target(kind: &str, data: &[u8]) {
    let (cached_kind, variants) = VARIANTS.get_or_init(|| (kind.to_owned(), variants(kind)));
    assert_eq!(cached_kind, kind, "one kind per target");
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let variant = &variants[usize::from(pick) % variants.len()];
    let raw = request(rest);
    let provider = variant.provider.as_ref();
    let _ = provider.handshake(&raw);
    let verified = provider.verify(&raw);
    if let Err(e) = &verified {
        check_message(kind, data, e.to_string());
    }
    match provider.identify(&raw) {
        Ok(identity) => {
            let _ = (identity.delivery_id.as_str(), identity.event_type.len());
        }
        Err(e) => check_message(kind, data, e.to_string()),
    }
    if let Ok(event) = variant.parser.parse(&raw) {
        let _ = (event.name(), event.subject(), event.actor());
    }
    if verified.is_ok() {
        let _ = provider.parse(&raw);
    }
    // What the provider signs, it verifies.
    let event_type = provider.samples().first().map_or("event", |s| s.event_type);
    if let Ok(signed) = provider.sign(event_type, &raw.body, "fuzz-delivery", raw.received_at) {
        let again = RawDelivery {
            endpoint: raw.endpoint.clone(),
            method: Method::POST,
            uri: uri(signed.query.as_deref().map(str::as_bytes)),
            headers: signed.headers,
            body: signed.body,
            received_at: raw.received_at,
        };
        if let Err(e) = provider.verify(&again) {
            panic!("{kind}: verify refused what sign produced: {e}");
        }
    }
}

/// The configuration loader on any text. Inputs naming a file (`{ file = ... }`) are skipped:
/// reading `/dev/zero` as a secret is an operator's choice, not an input bug.
#[cfg(feature = "config")]
pub fn config_target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains("file") {
        return;
    }
    let base = std::path::Path::new("/nonexistent/hookbridge-fuzz");
    match hookbridge_server::Config::parse(text, None, base) {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// Form bodies and query strings: GitHub, Slack and Travis CI accept `payload=<json>`.
pub fn form_target(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    // Built once: Travis CI's parser holds an HTTP client, whose TLS set-up costs ~10 ms.
    static PARSERS: OnceLock<Vec<Arc<dyn Provider>>> = OnceLock::new();
    let parsers = PARSERS.get_or_init(|| {
        ["github", "slack", "travis"]
            .iter()
            .map(|kind| hookbridge_providers::parser(kind).expect("a parser"))
            .collect()
    });
    let parser = &parsers[usize::from(pick) % parsers.len()];
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert("x-github-event", HeaderValue::from_static("push"));
    headers.insert("x-github-delivery", HeaderValue::from_static("fuzz-1"));
    let raw = RawDelivery {
        endpoint: EndpointName::new("fuzz"),
        method: Method::POST,
        uri: uri(Some(body)),
        headers,
        body: Bytes::copy_from_slice(body),
        received_at: OffsetDateTime::now_utc(),
    };
    let _ = raw.query_param("payload");
    let _ = raw.query_param("token");
    let _ = parser.identify(&raw);
    if let Ok(event) = parser.parse(&raw) {
        let _ = (event.name(), event.subject());
    }
}
