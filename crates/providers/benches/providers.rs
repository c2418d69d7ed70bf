//! What each provider costs per delivery before anything is stored: `verify` (the
//! signature or token check on the raw body), `identify` (delivery id, event type, body
//! well-formedness) and `parse_typed` ([`Provider::parse`], the typed event).
//!
//! One group per provider, named after it, on one realistic sample from
//! `samples/<provider>/`, signed the way the service signs it with the provider's own
//! [`Provider::sign`] (as the tests do), just before the group runs so that timestamped
//! schemes see a fresh timestamp. Every delivery is checked once to verify, identify and parse
//! before it is measured. Throughput is the body size, so criterion reports MB/s next to the
//! time per call:
//!
//! | group | sample | scheme |
//! |---|---|---|
//! | `asana` | `batch` | `X-Hook-Signature`: hex HMAC-SHA256 of the body |
//! | `github` | `issues.opened` | `X-Hub-Signature-256`: `sha256=` hex HMAC-SHA256 of the body |
//! | `gitlab` | `merge_request.open` | `X-Gitlab-Token`: the secret token, compared |
//! | `jira` | `jira:issue_created` | `X-Hub-Signature`: `sha256=` hex HMAC-SHA256 of the body |
//! | `pagerduty` | `incident.triggered` | `X-PagerDuty-Signature`: `v1=` hex HMAC-SHA256 |
//! | `slack` | `message.message_changed` | `X-Slack-Signature`: `v0=` HMAC-SHA256 of `v0:{ts}:{body}` |
//! | `standard_webhooks` | `contact.created` | `webhook-signature`: `v1,` base64 HMAC-SHA256 of `{id}.{ts}.{body}` |
//! | `travis` | `build.passed` | `Signature`: RSA PKCS#1 v1.5 SHA-1 (the `TEST-ONLY` key pair), form-encoded body |
//! | `trello` | `updateCard` | `X-Trello-Webhook`: base64 HMAC-SHA1 of body + callback URL |
//!
//! `github_parse` compares GitHub's typed parse across payload kinds, each with its own
//! throughput.
//!
//! `cargo bench -p hookbridge-providers --bench providers`
//! (quicker: append `-- --warm-up-time 0.5 --measurement-time 1`; one group: `-- slack/`)

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use hookbridge_core::{Provider, RawDelivery, Sample, Secret};
use hookbridge_providers::asana::{self, Asana, AsanaOptions};
use hookbridge_providers::github::{self, Github, GithubOptions};
use hookbridge_providers::gitlab::{self, Gitlab, GitlabOptions};
use hookbridge_providers::jira::{self, Jira, JiraOptions};
use hookbridge_providers::pagerduty::{self, Pagerduty, PagerdutyOptions};
use hookbridge_providers::slack::{self, Slack, SlackOptions};
use hookbridge_providers::standard_webhooks::{
    self, MAX_TOLERANCE_SECS, Scheme, StandardWebhooks, StandardWebhooksOptions,
};
use hookbridge_providers::travis::{self, Travis, TravisOptions, parse_signing_key_pem};
use hookbridge_providers::trello::{self, Trello, TrelloOptions};
use time::OffsetDateTime;

const SECRET: &str = "bench-secret";
/// A Standard Webhooks secret: `whsec_` and base64 (the spec's example key).
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TRELLO_CALLBACK: &str =
    "https://hooks.example.com/hooks/trello?board=65e9a0b1c2d3e4f5a6b7c000";
const TRAVIS_PUBLIC: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/samples/travis/TEST-ONLY-travis-public-key.spki.pem"
));
const TRAVIS_PRIVATE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/samples/travis/TEST-ONLY-travis-signing-key.pem"
));
/// Slack's widest tolerance, so that long measurement times do not outlive the signed
/// timestamp. The tolerance does not change what a verification costs.
const SLACK_MAX_TOLERANCE_SECONDS: u32 = 3600;

/// GitHub payload kinds for `github_parse`.
const GITHUB_PARSE: &[&str] = &[
    "issues.opened",
    "pull_request.opened",
    "push",
    "workflow_run.completed",
    "check_run.completed",
];

/// One benchmarked provider: its group name, a constructor, and the sample it is measured on.
struct Case {
    group: &'static str,
    provider: fn() -> Box<dyn Provider>,
    samples: &'static [Sample],
    sample: &'static str,
}

const CASES: &[Case] = &[
    Case {
        group: "asana",
        provider: || {
            Box::new(Asana::new(vec![Secret::new(SECRET)], AsanaOptions::default()).unwrap())
        },
        samples: asana::SAMPLES,
        sample: "batch",
    },
    Case {
        group: "github",
        provider: github_provider,
        samples: github::SAMPLES,
        sample: "issues.opened",
    },
    Case {
        group: "gitlab",
        provider: || {
            Box::new(Gitlab::new(vec![Secret::new(SECRET)], GitlabOptions::default()).unwrap())
        },
        samples: gitlab::SAMPLES,
        sample: "merge_request.open",
    },
    Case {
        group: "jira",
        provider: || {
            Box::new(Jira::new(vec![Secret::new(SECRET)], JiraOptions::default()).unwrap())
        },
        samples: jira::SAMPLES,
        sample: "jira:issue_created",
    },
    Case {
        group: "pagerduty",
        provider: || {
            Box::new(
                Pagerduty::new(vec![Secret::new(SECRET)], PagerdutyOptions::default()).unwrap(),
            )
        },
        samples: pagerduty::SAMPLES,
        sample: "incident.triggered",
    },
    Case {
        group: "slack",
        provider: || {
            let options = SlackOptions {
                timestamp_tolerance_seconds: SLACK_MAX_TOLERANCE_SECONDS,
            };
            Box::new(Slack::new(vec![Secret::new(SECRET)], options).unwrap())
        },
        samples: slack::SAMPLES,
        sample: "message.message_changed",
    },
    Case {
        group: "standard_webhooks",
        provider: || {
            let options = StandardWebhooksOptions {
                scheme: Scheme::Standard,
                tolerance_secs: MAX_TOLERANCE_SECS,
            };
            Box::new(StandardWebhooks::new(vec![Secret::new(WHSEC)], options).unwrap())
        },
        samples: standard_webhooks::STANDARD_SAMPLES,
        sample: "contact.created",
    },
    Case {
        group: "travis",
        provider: || {
            // Verifies with the public half of the test key it signs with.
            let options = TravisOptions {
                public_key: Some(TRAVIS_PUBLIC.to_owned()),
                ..TravisOptions::default()
            };
            let key = parse_signing_key_pem(TRAVIS_PRIVATE).expect("the Travis test key parses");
            Box::new(
                Travis::new(vec![], options)
                    .unwrap()
                    .with_test_signing_key(key),
            )
        },
        samples: travis::SAMPLES,
        sample: "build.passed",
    },
    Case {
        group: "trello",
        provider: || {
            let options = TrelloOptions {
                callback_url: TRELLO_CALLBACK.to_owned(),
            };
            Box::new(Trello::new(vec![Secret::new(SECRET)], options).unwrap())
        },
        samples: trello::SAMPLES,
        sample: "updateCard",
    },
];

fn github_provider() -> Box<dyn Provider> {
    Box::new(Github::new(vec![Secret::new(SECRET)], GithubOptions::default()).unwrap())
}

fn sample(group: &str, samples: &'static [Sample], name: &str) -> &'static Sample {
    samples
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{group}: no sample named {name:?}"))
}

/// `sample` as the service sends it, signed now, as the server receives it.
fn signed(group: &str, provider: &dyn Provider, sample: &Sample) -> RawDelivery {
    let name = sample.name;
    let signed = provider
        .sign(
            sample.event_type,
            sample.json.as_bytes(),
            "bench-delivery-1",
            OffsetDateTime::now_utc(),
        )
        .unwrap_or_else(|e| panic!("{group}: cannot sign sample {name}: {e}"));
    let mut raw = RawDelivery::new(group, signed.headers, signed.body);
    // URL-token schemes put their token in the query string.
    raw.uri = match signed.query {
        Some(query) => format!("/hooks/{group}?{query}"),
        None => format!("/hooks/{group}"),
    }
    .parse()
    .unwrap_or_else(|e| panic!("{group}: bad request URI: {e}"));
    // Each step checked once, so that a broken setup fails loudly instead of benchmarking
    // the error path.
    if let Err(e) = provider.verify(&raw) {
        panic!("{group}: sample {name} does not verify: {e}");
    }
    if let Err(e) = provider.identify(&raw) {
        panic!("{group}: sample {name} does not identify: {e}");
    }
    if let Err(e) = provider.parse(&raw) {
        panic!("{group}: sample {name} does not parse: {e}");
    }
    raw
}

fn throughput(raw: &RawDelivery) -> Throughput {
    Throughput::Bytes(raw.body.len() as u64)
}

fn bench_parse(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    p: &dyn Provider,
    raw: &RawDelivery,
) {
    g.bench_function(id, |b| b.iter(|| p.parse(black_box(raw)).unwrap()));
}

fn providers(c: &mut Criterion) {
    for case in CASES {
        let provider = (case.provider)();
        let sample = sample(case.group, case.samples, case.sample);
        let raw = signed(case.group, provider.as_ref(), sample);
        let p = provider.as_ref();

        let mut g = c.benchmark_group(case.group);
        g.throughput(throughput(&raw));
        g.bench_function("verify", |b| b.iter(|| p.verify(black_box(&raw)).unwrap()));
        g.bench_function("identify", |b| {
            b.iter(|| p.identify(black_box(&raw)).unwrap())
        });
        bench_parse(&mut g, "parse_typed", p, &raw);
        g.finish();
    }
}

fn github_parse(c: &mut Criterion) {
    let provider = github_provider();
    let mut g = c.benchmark_group("github_parse");
    for &name in GITHUB_PARSE {
        let raw = signed(
            "github",
            provider.as_ref(),
            sample("github", github::SAMPLES, name),
        );
        g.throughput(throughput(&raw));
        bench_parse(&mut g, name, provider.as_ref(), &raw);
    }
    g.finish();
}

criterion_group!(benches, providers, github_parse);
criterion_main!(benches);
