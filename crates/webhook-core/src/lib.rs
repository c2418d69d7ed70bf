//! Core types of hookbridge, shared by every provider, the sync engine and the server.
//!
//! This crate does no I/O. It defines:
//!
//! - [`RawDelivery`]: an HTTP delivery exactly as received (endpoint, headers, body bytes);
//! - the [`Provider`] trait: handshake, verify, identify and parse, implemented once per service;
//! - [`Event`]: a parsed, typed event with the metadata the engine needs (subject, actor);
//! - the [`SyncRule`] trait that turns events into actions on other services;
//! - [`signature`]: constant-time HMAC primitives with secret rotation and timestamp tolerance;
//! - [`Secret`]: a secret value that never prints itself.
//!
//! ```
//! use hookbridge_core::{signature, Secret};
//!
//! let secret = Secret::new("It's a Secret to Everybody");
//! let sig = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
//! let found = signature::verify_hmac_any(
//!     signature::Algorithm::Sha256,
//!     signature::Encoding::Hex,
//!     std::slice::from_ref(&secret),
//!     b"Hello, World!",
//!     sig,
//! );
//! assert_eq!(found, Ok(0));
//! assert_eq!(format!("{secret:?}"), "Secret(\"[redacted]\")");
//! ```
#![deny(missing_docs)]

mod delivery;
mod error;
mod event;
mod ids;
mod provider;
mod rule;
mod secret;
pub mod signature;

pub use delivery::RawDelivery;
pub use error::{IdentifyError, ParseError, VerifyError};
pub use event::{Actor, Event, EventPayload};
pub use ids::{DeliveryId, EndpointName, EventName, ProviderKind, SubjectKey};
pub use provider::{
    BoxFuture, Handshake, Identity, Provider, Sample, SignError, SignedDelivery, Verified,
};
pub use rule::{RuleError, RuleOutcome, SyncRule};
pub use secret::Secret;
