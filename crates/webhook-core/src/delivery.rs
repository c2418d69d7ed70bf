use bytes::Bytes;
use http::{HeaderMap, Method};
use time::OffsetDateTime;

use crate::EndpointName;

/// One HTTP delivery exactly as received, before anything is trusted.
///
/// The body is kept as the bytes on the wire: signatures are computed over them, never over
/// re-serialized JSON.
#[derive(Clone, Debug)]
pub struct RawDelivery {
    /// The configured endpoint the delivery arrived on.
    pub endpoint: EndpointName,
    /// The HTTP method (`POST` for deliveries, `HEAD`/`GET` for some handshakes).
    pub method: Method,
    /// The request headers.
    pub headers: HeaderMap,
    /// The raw body bytes.
    pub body: Bytes,
    /// When the server received the delivery.
    pub received_at: OffsetDateTime,
}

impl RawDelivery {
    /// A `POST` delivery received now.
    pub fn new(
        endpoint: impl Into<EndpointName>,
        headers: HeaderMap,
        body: impl Into<Bytes>,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            method: Method::POST,
            headers,
            body: body.into(),
            received_at: OffsetDateTime::now_utc(),
        }
    }

    /// A header's value if it is present and valid visible ASCII; the first one if repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The media type of the body, lower case, without parameters such as `charset`.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    }
}
