//! Delivery id from `X-GitHub-Delivery`, event type from `X-GitHub-Event`, and the JSON
//! document from an `application/json` body or the `payload` field of a form-encoded one.

use std::borrow::Cow;

use hookbridge_core::{DeliveryId, IdentifyError, Identity, RawDelivery};

use crate::common::{check_json_object, header_token, unsupported_content_type};

const DELIVERY_HEADER: &str = "x-github-delivery";
const EVENT_HEADER: &str = "x-github-event";
/// GitHub's delivery ids are GUIDs; anything much longer is not from GitHub.
const MAX_ID_LEN: usize = 128;

pub(crate) fn identify(delivery: &RawDelivery) -> Result<Identity, IdentifyError> {
    let delivery_id = header_token(delivery, DELIVERY_HEADER, MAX_ID_LEN)?;
    let event_type = header_token(delivery, EVENT_HEADER, MAX_ID_LEN)?;
    let json = json_body(delivery)?;
    check_json_object(&json)?;
    Ok(Identity {
        delivery_id: DeliveryId::new(delivery_id),
        event_type: event_type.to_owned(),
    })
}

/// The JSON document of the delivery, decoded from the form body where needed.
pub(crate) fn json_body(delivery: &RawDelivery) -> Result<Cow<'_, [u8]>, IdentifyError> {
    match delivery.media_type().as_deref() {
        Some("application/json") => Ok(Cow::Borrowed(&delivery.body[..])),
        Some("application/x-www-form-urlencoded") => form_urlencoded::parse(&delivery.body)
            .find(|(key, _)| key == "payload")
            .map(|(_, value)| Cow::Owned(value.into_owned().into_bytes()))
            .ok_or_else(|| IdentifyError::Malformed("form body has no `payload` field".into())),
        other => Err(unsupported_content_type(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn delivery(content_type: Option<&str>, body: &'static [u8]) -> RawDelivery {
        let mut h = HeaderMap::new();
        h.insert(DELIVERY_HEADER, "d-1".parse().unwrap());
        h.insert(EVENT_HEADER, "issues".parse().unwrap());
        if let Some(ct) = content_type {
            h.insert("content-type", ct.parse().unwrap());
        }
        RawDelivery::new("gh", h, body)
    }

    #[test]
    fn json_and_form_bodies() {
        let id = identify(&delivery(
            Some("application/json; charset=utf-8"),
            b" {\"a\":1}",
        ))
        .unwrap();
        assert_eq!(id.delivery_id.as_str(), "d-1");
        assert_eq!(id.event_type, "issues");
        let form = delivery(
            Some("application/x-www-form-urlencoded"),
            b"payload=%7B%22action%22%3A%22opened%22%7D",
        );
        identify(&form).unwrap();
        assert_eq!(&json_body(&form).unwrap()[..], b"{\"action\":\"opened\"}");
    }

    #[test]
    fn rejections() {
        assert_eq!(
            identify(&delivery(Some("text/plain"), b"{}")),
            Err(IdentifyError::UnsupportedContentType("text/plain".into()))
        );
        assert!(matches!(
            identify(&delivery(None, b"{}")),
            Err(IdentifyError::UnsupportedContentType(_))
        ));
        assert!(matches!(
            identify(&delivery(Some("application/json"), b"{\"a\":")),
            Err(IdentifyError::Malformed(_))
        ));
        assert!(matches!(
            identify(&delivery(Some("application/json"), b"[1]")),
            Err(IdentifyError::Malformed(_))
        ));
        assert!(matches!(
            identify(&delivery(Some("application/json"), b"")),
            Err(IdentifyError::Malformed(_))
        ));
        assert!(matches!(
            identify(&delivery(
                Some("application/x-www-form-urlencoded"),
                b"other=1"
            )),
            Err(IdentifyError::Malformed(_))
        ));
        let mut no_id = delivery(Some("application/json"), b"{}");
        no_id.headers.remove(DELIVERY_HEADER);
        assert_eq!(
            identify(&no_id),
            Err(IdentifyError::MissingHeader(DELIVERY_HEADER))
        );
        let mut no_event = delivery(Some("application/json"), b"{}");
        no_event.headers.remove(EVENT_HEADER);
        assert_eq!(
            identify(&no_event),
            Err(IdentifyError::MissingHeader(EVENT_HEADER))
        );
    }
}
