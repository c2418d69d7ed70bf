use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use time::OffsetDateTime;

use crate::{
    DeliveryId, Event, IdentifyError, ParseError, ProviderKind, RawDelivery, Secret, VerifyError,
};

/// A realistic sample delivery body shipped with a provider, for `hookbridge send`, tests and
/// benchmarks.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// The event's full name, e.g. `issues.opened`: what `hookbridge send --event` takes.
    pub name: &'static str,
    /// The event type as the provider's header (or envelope) names it, e.g. `issues`.
    pub event_type: &'static str,
    /// The JSON document.
    pub json: &'static str,
}

/// A boxed future, for the provider's optional asynchronous work.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The answer to a provider's handshake request, sent without storing a delivery.
#[derive(Clone, Debug)]
pub struct Handshake {
    /// The HTTP status to answer.
    pub status: StatusCode,
    /// Headers to answer with.
    pub headers: HeaderMap,
    /// The body to answer with.
    pub body: Bytes,
    /// A secret the service handed over in the handshake (Asana's `X-Hook-Secret`), to be
    /// kept durably and used to verify later deliveries. The server accepts it only for an
    /// endpoint that has no secret yet or a registration pending, and never to replace one.
    pub learned_secret: Option<Secret>,
}

impl Handshake {
    /// An empty answer with `status`.
    pub fn status(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            learned_secret: None,
        }
    }
}

/// A delivery signed the way the service signs it: what `hookbridge send` and tests post.
#[derive(Clone, Debug)]
pub struct SignedDelivery {
    /// Headers to send (content type, event, delivery id, signature, ...).
    pub headers: HeaderMap,
    /// The body to send, exactly.
    pub body: Bytes,
    /// A query string to append to the endpoint URL (without `?`), for URL-token schemes.
    pub query: Option<String>,
}

/// Why a sample delivery could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The provider cannot produce this signature (e.g. the service signs with its own
    /// private key).
    #[error("cannot sign for this provider: {0}")]
    Unsupported(String),
    /// The endpoint has no secret to sign with.
    #[error("no secret is configured to sign with")]
    NoSecret,
    /// The sample does not fit the provider.
    #[error("invalid sample: {0}")]
    InvalidSample(String),
}

/// What [`Provider::identify`] learns cheaply, before a full parse: enough to store and
/// deduplicate the delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The delivery id, the deduplication key within an endpoint.
    pub delivery_id: DeliveryId,
    /// The event type as the provider names it (e.g. GitHub's `X-GitHub-Event`).
    pub event_type: String,
}

/// The result of a successful verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The signature header (scheme) that was checked.
    pub scheme: &'static str,
    /// The index of the configured secret that matched, for rotation bookkeeping.
    pub secret_index: usize,
}

/// One service's webhook dialect: how its deliveries are answered, authenticated, identified
/// and typed. Implementations are pure (no I/O), so they are cheap to test against the
/// provider's documented vectors and safe to call on the request path.
///
/// The server calls, in order: [`handshake`](Provider::handshake) (answer directly if it
/// returns `Some`), [`verify`](Provider::verify) (401 on error),
/// [`identify`](Provider::identify) (400/415 on error), then stores the delivery. Workers
/// later call [`parse`](Provider::parse) on the stored delivery.
pub trait Provider: Send + Sync + 'static {
    /// Which service this provider speaks for.
    fn kind(&self) -> ProviderKind;

    /// Answers the provider's handshake if `delivery` is one (e.g. Trello's `HEAD`).
    fn handshake(&self, delivery: &RawDelivery) -> Option<Handshake> {
        let _ = delivery;
        None
    }

    /// Establishes that the delivery comes from the service, on the raw body bytes.
    fn verify(&self, delivery: &RawDelivery) -> Result<Verified, VerifyError>;

    /// Reads the delivery id and event type, and checks that the body is well-formed.
    fn identify(&self, delivery: &RawDelivery) -> Result<Identity, IdentifyError>;

    /// Parses the delivery into a typed event. Unknown event types and fields are kept as
    /// untyped events rather than rejected.
    fn parse(&self, delivery: &RawDelivery) -> Result<Event, ParseError>;

    /// Signs `json` as the service would send it for `event_type`, with the first configured
    /// secret: for `hookbridge send` and tests of the whole path.
    fn sign(
        &self,
        event_type: &str,
        json: &[u8],
        delivery_id: &str,
        now: OffsetDateTime,
    ) -> Result<SignedDelivery, SignError> {
        let _ = (event_type, json, delivery_id, now);
        Err(SignError::Unsupported(format!(
            "{} has no signer",
            self.kind()
        )))
    }

    /// The sample deliveries this provider (as configured) can sign and send.
    fn samples(&self) -> &'static [Sample] {
        &[]
    }

    /// Starts using a secret learned in a handshake or restored from the store. Returns
    /// `false` for providers that do not learn secrets.
    fn learn_secret(&self, secret: Secret) -> bool {
        let _ = secret;
        false
    }

    /// Whether the provider holds a secret to verify with (configured or learned). A
    /// handshake may hand a secret only to an endpoint that has none.
    fn has_secret(&self) -> bool {
        true
    }

    /// Whether the provider can verify deliveries now (for `/readyz`).
    fn is_ready(&self) -> bool {
        true
    }

    /// Work the provider needs before it can verify, such as fetching the service's public
    /// key; the server runs it at start-up and again every [`Provider::refresh_interval`].
    /// `None` for providers that need nothing.
    fn refresh(&self) -> Option<BoxFuture<'_, Result<(), String>>> {
        None
    }

    /// How often [`Provider::refresh`] runs once it has succeeded.
    fn refresh_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(24 * 3600)
    }
}
