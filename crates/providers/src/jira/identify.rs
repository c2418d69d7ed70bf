//! Delivery id from `X-Atlassian-Webhook-Identifier`, else a SHA-256 of the body; event type
//! from the payload's `webhookEvent` (Jira sends no event header).
//!
//! Jira Cloud sends `X-Atlassian-Webhook-Identifier`, unique within the site and unchanged
//! when Jira retries the delivery, so it is the deduplication key. Jira Data Center does not
//! send it: there the key is `sha256:<hex of the body>`, which is stable across retries (the
//! same bytes are sent again) and distinct between events (every payload carries its
//! `timestamp` in milliseconds).

use hookbridge_core::{DeliveryId, IdentifyError, Identity, RawDelivery};
use serde::Deserialize;

use crate::common::{
    header_id_or_body_key, is_token, require_json_content_type, require_json_object,
};

pub(crate) const IDENTIFIER_HEADER: &str = "x-atlassian-webhook-identifier";
/// Identifiers and event names are short; anything much longer is not from Jira.
const MAX_LEN: usize = 128;

pub(crate) fn identify(delivery: &RawDelivery) -> Result<Identity, IdentifyError> {
    require_json_content_type(delivery)?;
    let event_type = webhook_event(&delivery.body)?;
    let delivery_id = header_id_or_body_key(delivery, IDENTIFIER_HEADER, MAX_LEN)?;
    Ok(Identity {
        delivery_id: DeliveryId::new(delivery_id),
        event_type,
    })
}

/// Only the `webhookEvent` field is read into memory; the rest is checked for syntax only.
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "webhookEvent", default)]
    webhook_event: Option<String>,
}

fn webhook_event(body: &[u8]) -> Result<String, IdentifyError> {
    require_json_object(body)?;
    let head: Head = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            IdentifyError::Malformed(format!("`webhookEvent` is not a string: {e}"))
        } else {
            IdentifyError::Malformed(format!("invalid JSON: {e}"))
        }
    })?;
    head.webhook_event
        .filter(|event| is_token(event, MAX_LEN))
        .ok_or_else(|| IdentifyError::Malformed("no usable `webhookEvent` in the payload".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use sha2::{Digest, Sha256};

    fn delivery(content_type: Option<&str>, id: Option<&str>, body: &'static [u8]) -> RawDelivery {
        let mut h = HeaderMap::new();
        if let Some(ct) = content_type {
            h.insert("content-type", ct.parse().unwrap());
        }
        if let Some(id) = id {
            h.insert(IDENTIFIER_HEADER, id.parse().unwrap());
        }
        RawDelivery::new("jira", h, body)
    }

    const BODY: &[u8] = br#"{"timestamp":1,"webhookEvent":"jira:issue_created","issue":{}}"#;

    #[test]
    fn identifier_header_or_body_hash() {
        let id = identify(&delivery(
            Some("application/json; charset=UTF-8"),
            Some(" 9b2fa2c8-81fa-4e1e-9b5d-0a6a0e3f8a11 "),
            BODY,
        ))
        .unwrap();
        assert_eq!(
            id.delivery_id.as_str(),
            "9b2fa2c8-81fa-4e1e-9b5d-0a6a0e3f8a11"
        );
        assert_eq!(id.event_type, "jira:issue_created");

        let id = identify(&delivery(Some("application/json"), None, BODY)).unwrap();
        assert_eq!(
            id.delivery_id.as_str(),
            format!("sha256:{}", hex::encode(Sha256::digest(BODY)))
        );
        assert_eq!(id.delivery_id.as_str().len(), "sha256:".len() + 64);
        // The same bytes always give the same key, other bytes another.
        let again = identify(&delivery(Some("application/json"), None, BODY)).unwrap();
        assert_eq!(again.delivery_id, id.delivery_id);
        let other = identify(&delivery(
            Some("application/json"),
            None,
            br#"{"timestamp":2,"webhookEvent":"jira:issue_created","issue":{}}"#,
        ))
        .unwrap();
        assert_ne!(other.delivery_id, id.delivery_id);
    }

    #[test]
    fn rejections() {
        assert_eq!(
            identify(&delivery(Some("text/plain"), None, BODY)),
            Err(IdentifyError::UnsupportedContentType("text/plain".into()))
        );
        assert!(matches!(
            identify(&delivery(None, None, BODY)),
            Err(IdentifyError::UnsupportedContentType(_))
        ));
        assert!(matches!(
            identify(&delivery(
                Some("application/x-www-form-urlencoded"),
                None,
                BODY
            )),
            Err(IdentifyError::UnsupportedContentType(_))
        ));
        for body in [
            &b""[..],
            b"[1]",
            b"{\"webhookEvent\":",
            b"{\"webhookEvent\":\"x\"} trailing",
            b"{}",
            b"{\"webhookEvent\":\"\"}",
            b"{\"webhookEvent\":\"has space\"}",
            b"{\"webhookEvent\":42}",
            b"{\"webhookEvent\":null}",
        ] {
            let mut d = delivery(Some("application/json"), None, b"");
            d.body = bytes::Bytes::from_static(body);
            assert!(
                matches!(identify(&d), Err(IdentifyError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        let long = "x".repeat(MAX_LEN + 1);
        assert_eq!(
            identify(&delivery(Some("application/json"), Some(&long), BODY)),
            Err(IdentifyError::MissingHeader(IDENTIFIER_HEADER))
        );
        assert_eq!(
            identify(&delivery(Some("application/json"), Some(""), BODY)),
            Err(IdentifyError::MissingHeader(IDENTIFIER_HEADER))
        );
    }
}
