//! Building a delivery as GitLab sends it, for `hookbridge send` and tests: the secret token
//! in `X-Gitlab-Token`, and the delivery headers of `WebHookService#build_headers`.

use bytes::Bytes;
use hookbridge_core::{Secret, SignError, SignedDelivery};
use http::{HeaderMap, HeaderValue};

use super::identify::{EVENT_HEADER, IDEMPOTENCY_HEADER};
use super::verify::{TOKEN_HEADER, as_sent};
use crate::common::header_value;

pub(crate) fn sign(
    secret: &Secret,
    event_type: &str,
    json: &[u8],
    delivery_id: &str,
) -> Result<SignedDelivery, SignError> {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(
        "user-agent",
        HeaderValue::from_static("GitLab/hookbridge-send"),
    );
    headers.insert(EVENT_HEADER, header_value(event_type)?);
    headers.insert(IDEMPOTENCY_HEADER, header_value(delivery_id)?);
    // GitLab sends these too; a test delivery has one event and one request, so the
    // delivery id serves for both.
    headers.insert("x-gitlab-event-uuid", header_value(delivery_id)?);
    headers.insert("x-gitlab-webhook-uuid", header_value(delivery_id)?);
    // GitLab sends the token without line breaks; the error never shows the token.
    let mut token = HeaderValue::from_bytes(as_sent(secret).expose())
        .map_err(|_| SignError::Unsupported("the secret is not a valid header value".into()))?;
    token.set_sensitive(true);
    headers.insert(TOKEN_HEADER, token);
    Ok(SignedDelivery {
        headers,
        body: Bytes::copy_from_slice(json),
        query: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitlab::{identify, verify};
    use hookbridge_core::RawDelivery;

    #[test]
    fn round_trip() {
        let secret = Secret::new("gl-secret\n");
        let json = br#"{"object_kind":"push","ref":"refs/heads/main"}"#;
        let signed = sign(&secret, "Push Hook", json, "key-1").unwrap();
        assert_eq!(signed.headers[TOKEN_HEADER], "gl-secret");
        assert!(signed.headers[TOKEN_HEADER].is_sensitive());
        let d = RawDelivery::new("gitlab", signed.headers, signed.body);
        verify::verify(std::slice::from_ref(&secret), &d).unwrap();
        let id = identify::identify(&d).unwrap();
        assert_eq!(id.delivery_id.as_str(), "key-1");
        assert_eq!(id.event_type, "Push Hook");
    }

    #[test]
    fn refusals() {
        let ok = Secret::new("s");
        assert!(matches!(
            sign(&ok, "Push\nHook", b"{}", "k"),
            Err(SignError::InvalidSample(_))
        ));
        let bad = Secret::new("TOPSECRET\x00");
        let err = sign(&bad, "Push Hook", b"{}", "k").unwrap_err();
        assert!(!err.to_string().contains("TOPSECRET"));
    }
}
