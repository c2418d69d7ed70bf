use crate::signature::{SignatureMismatch, TimestampOutOfTolerance};

/// Why a delivery's authenticity could not be established. The server answers 401 to all of
/// these and stores nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The signature header is absent.
    #[error("missing signature header {header}")]
    MissingSignature {
        /// The header that was expected.
        header: &'static str,
    },
    /// The signature header is present but its value has the wrong form.
    #[error("signature header {header} is malformed: {reason}")]
    MalformedSignature {
        /// The header that was read.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The signature does not match.
    #[error("signature in {header} is invalid: {source}")]
    Mismatch {
        /// The header that was checked.
        header: &'static str,
        /// The detail of the mismatch.
        #[source]
        source: SignatureMismatch,
    },
    /// Only a weaker scheme was offered, and the endpoint does not accept it.
    #[error(
        "only {offered} was offered, which this endpoint does not accept (set {option} to allow it)"
    )]
    SchemeNotAllowed {
        /// The header of the weaker scheme.
        offered: &'static str,
        /// The configuration option that would allow it.
        option: &'static str,
    },
    /// The endpoint cannot verify anything yet: its key is still being fetched (Travis CI),
    /// or its secret has not been handed over in a handshake yet (Asana).
    #[error("cannot verify deliveries yet: {reason}")]
    NotReady {
        /// What is missing.
        reason: &'static str,
    },
    /// The signed timestamp is too old or too far in the future.
    #[error("signed timestamp rejected: {0}")]
    Stale(#[from] TimestampOutOfTolerance),
}

/// Why a delivery could not be identified (delivery id, event type). The server answers
/// 400, or 415 for [`IdentifyError::UnsupportedContentType`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifyError {
    /// A header the provider always sends is absent or not valid text.
    #[error("missing or invalid header {0}")]
    MissingHeader(&'static str),
    /// The body's content type is not one the provider sends.
    #[error("unsupported content type {0:?}")]
    UnsupportedContentType(String),
    /// The body is not a well-formed document of the expected kind.
    #[error("malformed body: {0}")]
    Malformed(String),
}

/// Why a verified, identified delivery could not be turned into an [`crate::Event`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Identification failed (see [`IdentifyError`]).
    #[error(transparent)]
    Identify(#[from] IdentifyError),
    /// The body is well-formed but not what the provider documents, in a way that cannot be
    /// kept even as an untyped event.
    #[error("malformed payload: {0}")]
    Malformed(String),
}
