//! Newtypes for the identifiers that travel through hookbridge, so that an endpoint name is
//! never passed where a delivery id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Unwraps into the inner string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// The name of a configured endpoint: the `{endpoint}` in `POST /hooks/{endpoint}`.
    EndpointName
);
string_id!(
    /// The identifier of one delivery, unique per endpoint: the provider's delivery id
    /// (e.g. `X-GitHub-Delivery`) or, where the provider has none, a key derived from the
    /// payload. Deliveries are deduplicated on (endpoint, delivery id).
    DeliveryId
);
string_id!(
    /// The full name of an event: the event type and, where the payload has one, its action,
    /// joined by a dot, e.g. `issues.opened` or `push`.
    EventName
);
string_id!(
    /// A stable key for the object an event is about, e.g. `github:octo-org/octo-repo#12`.
    /// Jobs that touch the same subject run one at a time.
    SubjectKey
);

/// The kind of service a provider speaks for, e.g. `github`. Lower case, stable, used in
/// configuration files and stored with every delivery.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
#[serde(transparent)]
pub struct ProviderKind(&'static str);

impl ProviderKind {
    /// Declares a provider kind. Kinds are compile-time constants of each provider module.
    pub const fn new(name: &'static str) -> Self {
        Self(name)
    }

    /// The kind as a string.
    pub const fn as_str(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.0)
    }
}
