//! hookbridge's load harness.
//!
//! `./scripts/bench` builds the release binaries and runs the `runner`, which starts each
//! server under test on 127.0.0.1 (hookbridge on SQLite and on PostgreSQL, the [`ceiling`]
//! server, the Node `@octokit/webhooks` receiver), drives it with the [`loadgen`] at 1 and 32
//! connections, samples its memory and CPU from `/proc` ([`procfs`]), checks that every
//! acknowledged delivery is in the store, and measures the end-to-end sync latency through
//! a [`mock`] API service. Results go to `target/bench/results.json`; see
//! `docs/performance.md`.

#![deny(missing_docs)]

pub mod ceiling;
pub mod loadgen;
pub mod mock;
pub mod procfs;
pub mod sign;

/// The secret every server under test is configured with.
pub const SECRET: &str = "bench-secret";

/// The GitHub sample every delivery carries (12,665 bytes).
pub const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../providers/samples/github/issues.opened.json"
);
