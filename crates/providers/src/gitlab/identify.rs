//! Event type from `X-Gitlab-Event`, delivery id from `Idempotency-Key`, else a SHA-256 of
//! the body.
//!
//! Of the ids GitLab sends ("Delivery headers",
//! <https://docs.gitlab.com/user/project/integrations/webhooks/#delivery-headers>), only
//! `Idempotency-Key` (GitLab 17.4 and later) is documented as "consistent across webhook
//! retries": it is generated once per event and webhook and handed to every retry (and to
//! a manual resend), so it is the deduplication key. The others do not fit:
//!
//! - `X-Gitlab-Webhook-UUID` is a new random UUID for every HTTP request
//!   (`SecureRandom.uuid` in `WebHookService#build_headers`), so it differs between
//!   retries;
//! - `X-Gitlab-Event-UUID` is shared by recursive webhooks (hooks triggered by a request
//!   that itself came from a webhook carry the same value), so two different events can
//!   have the same one, and deduplicating on it would drop the second.
//!
//! Without `Idempotency-Key` (GitLab before 17.4) the key is `sha256:<hex of the body>`:
//! a retry re-sends the same bytes, and different events differ in their payload
//! (timestamps, ids, shas).

use hookbridge_core::{DeliveryId, IdentifyError, Identity, RawDelivery};

use crate::common::{check_json_object, header_id_or_body_key, require_json_content_type};

pub(crate) const EVENT_HEADER: &str = "x-gitlab-event";
pub(crate) const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Ids and event names are short; anything much longer is not from GitLab.
const MAX_LEN: usize = 128;

pub(crate) fn identify(delivery: &RawDelivery) -> Result<Identity, IdentifyError> {
    let event_type = delivery
        .header(EVENT_HEADER)
        .map(str::trim)
        // Event names have spaces (`Merge Request Hook`).
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_LEN
                && v.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        })
        .ok_or(IdentifyError::MissingHeader(EVENT_HEADER))?
        .to_owned();
    require_json_content_type(delivery)?;
    check_json_object(&delivery.body)?;
    let delivery_id = header_id_or_body_key(delivery, IDEMPOTENCY_HEADER, MAX_LEN)?;
    Ok(Identity {
        delivery_id: DeliveryId::new(delivery_id),
        event_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use sha2::{Digest, Sha256};

    fn delivery(
        content_type: Option<&str>,
        event: Option<&str>,
        key: Option<&str>,
        body: &'static [u8],
    ) -> RawDelivery {
        let mut h = HeaderMap::new();
        if let Some(ct) = content_type {
            h.insert("content-type", ct.parse().unwrap());
        }
        if let Some(e) = event {
            h.insert(EVENT_HEADER, e.parse().unwrap());
        }
        if let Some(k) = key {
            h.insert(IDEMPOTENCY_HEADER, k.parse().unwrap());
        }
        // Sent by GitLab, never used as the key (see the module documentation).
        h.insert(
            "x-gitlab-event-uuid",
            "13792a34-cac6-4fda-95a8-c58e00a3954e".parse().unwrap(),
        );
        h.insert(
            "x-gitlab-webhook-uuid",
            "02affd2d-2cba-4033-917d-ec22d5dc4b38".parse().unwrap(),
        );
        RawDelivery::new("gitlab", h, body)
    }

    const BODY: &[u8] = br#"{"object_kind":"merge_request","object_attributes":{"iid":1}}"#;

    #[test]
    fn idempotency_key_or_body_hash() {
        let id = identify(&delivery(
            Some("application/json"),
            Some("Merge Request Hook"),
            Some("f5e5f430-f57b-4e6e-9fac-d9128cd7232f"),
            BODY,
        ))
        .unwrap();
        assert_eq!(
            id.delivery_id.as_str(),
            "f5e5f430-f57b-4e6e-9fac-d9128cd7232f"
        );
        assert_eq!(id.event_type, "Merge Request Hook");

        let id = identify(&delivery(
            Some("application/json"),
            Some("Merge Request Hook"),
            None,
            BODY,
        ))
        .unwrap();
        assert_eq!(
            id.delivery_id.as_str(),
            format!("sha256:{}", hex::encode(Sha256::digest(BODY)))
        );
        let other = identify(&delivery(
            Some("application/json"),
            Some("Merge Request Hook"),
            None,
            br#"{"object_kind":"merge_request","object_attributes":{"iid":2}}"#,
        ))
        .unwrap();
        assert_ne!(other.delivery_id, id.delivery_id);
    }

    #[test]
    fn rejections() {
        let ok_event = Some("Push Hook");
        assert_eq!(
            identify(&delivery(Some("text/plain"), ok_event, None, BODY)),
            Err(IdentifyError::UnsupportedContentType("text/plain".into()))
        );
        assert!(matches!(
            identify(&delivery(None, ok_event, None, BODY)),
            Err(IdentifyError::UnsupportedContentType(_))
        ));
        assert_eq!(
            identify(&delivery(Some("application/json"), None, None, BODY)),
            Err(IdentifyError::MissingHeader(EVENT_HEADER))
        );
        assert_eq!(
            identify(&delivery(Some("application/json"), Some(" "), None, BODY)),
            Err(IdentifyError::MissingHeader(EVENT_HEADER))
        );
        assert_eq!(
            identify(&delivery(
                Some("application/json"),
                ok_event,
                Some(""),
                BODY
            )),
            Err(IdentifyError::MissingHeader(IDEMPOTENCY_HEADER))
        );
        assert_eq!(
            identify(&delivery(
                Some("application/json"),
                ok_event,
                Some("a b"),
                BODY
            )),
            Err(IdentifyError::MissingHeader(IDEMPOTENCY_HEADER))
        );
        for body in [&b""[..], b"[]", b"{\"a\":", b"{} {}", b"42"] {
            let mut d = delivery(Some("application/json"), ok_event, None, b"");
            d.body = bytes::Bytes::from_static(body);
            assert!(
                matches!(identify(&d), Err(IdentifyError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
