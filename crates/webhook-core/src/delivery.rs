use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
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
    /// The request target as received (path and query), for providers that authenticate
    /// with a token in the URL.
    pub uri: Uri,
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
            uri: Uri::from_static("/"),
            headers,
            body: body.into(),
            received_at: OffsetDateTime::now_utc(),
        }
    }

    /// A header's value if it is present and valid visible ASCII; the first one if repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The value of a query parameter of the request URI, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.uri.query()?;
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key).as_deref() == Some(name)).then(|| percent_decode(value))?
        })
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

/// Decodes `%XX` escapes and `+` (as space); `None` when the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_decoded() {
        let mut d = RawDelivery::new("e", HeaderMap::new(), Bytes::new());
        d.uri = "/hooks/e?a=1&token=s%2Fx+y&flag&bad=%zz".parse().unwrap();
        assert_eq!(d.query_param("token").as_deref(), Some("s/x y"));
        assert_eq!(d.query_param("a").as_deref(), Some("1"));
        assert_eq!(d.query_param("flag").as_deref(), Some(""));
        assert_eq!(d.query_param("bad").as_deref(), Some("%zz"));
        assert_eq!(d.query_param("missing"), None);
        d.uri = "/hooks/e?t=%4".parse().unwrap();
        assert_eq!(d.query_param("t").as_deref(), Some("%4"));
    }
}
