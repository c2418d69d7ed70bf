use std::fmt;

use subtle::ConstantTimeEq;

/// A secret value (webhook secret, token, key) that never shows itself in `Debug` or
/// `Display`, so it cannot reach a log line or an error message by accident.
///
/// The bytes are only reachable through [`Secret::expose`], which makes every use of the
/// secret easy to find in review.
///
/// ```
/// use hookbridge_core::Secret;
///
/// let s = Secret::new("hunter2");
/// assert_eq!(s.to_string(), "[redacted]");
/// assert_eq!(s.expose(), b"hunter2");
/// ```
#[derive(Clone)]
pub struct Secret(Box<[u8]>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self(value.into().into_boxed_slice())
    }

    /// The secret's bytes. Call this only where the secret is used (a MAC key, a header).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether the secret is empty. An empty secret is never a valid configuration.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"[redacted]\")")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
