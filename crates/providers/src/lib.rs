//! hookbridge providers: one module per service, each with the same shape:
//!
//! - `verify`: authenticity of a delivery, on the raw body bytes;
//! - `identify`: delivery id, event type, body well-formedness, cheaply, before storing;
//! - `events`: typed, forward-compatible payloads (unknown events and fields are kept);
//! - `sign`: signing a delivery as the service does (for `hookbridge send` and tests);
//! - `mod`: the [`Provider`](hookbridge_core::Provider) implementation, its options and its
//!   [`Sample`]s (files under `samples/<provider>/`).
//!
//! Each provider is behind a cargo feature of its name, all on by default.
//! [`build`] constructs a provider from its configuration by kind name, for servers that
//! read endpoints from a file.
#![deny(missing_docs)]

// First: the macros are visible only in the modules declared after it.
#[macro_use]
mod macros;

// Some helpers serve only some providers: unused ones are expected with a subset of features.
#[cfg_attr(
    not(all(
        feature = "asana",
        feature = "github",
        feature = "gitlab",
        feature = "jira",
        feature = "pagerduty",
        feature = "slack",
        feature = "standard-webhooks",
        feature = "travis",
        feature = "trello"
    )),
    allow(dead_code)
)]
mod common;

pub mod api;
#[cfg(feature = "asana")]
pub mod asana;
#[cfg(feature = "github")]
pub mod github;
#[cfg(feature = "gitlab")]
pub mod gitlab;
#[cfg(feature = "jira")]
pub mod jira;
#[cfg(feature = "pagerduty")]
pub mod pagerduty;
mod registry;
mod samples;
pub mod sinks;
#[cfg(feature = "slack")]
pub mod slack;
#[cfg(feature = "standard-webhooks")]
pub mod standard_webhooks;
#[cfg(feature = "travis")]
pub mod travis;
#[cfg(feature = "trello")]
pub mod trello;

pub use registry::{ProviderConfigError, build, kinds, parser, samples};
pub use samples::Sample;
