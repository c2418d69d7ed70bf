//! Delivery id and event type. Standard Webhooks and Svix: the id is the `webhook-id` /
//! `svix-id` header (the same across retries, which is what the spec makes it for), and the
//! type the body's `type` field. Stripe: both are in the body, the event's `id` (`evt_...`)
//! and `type`. Bodies are JSON objects.

use hookbridge_core::{DeliveryId, IdentifyError, Identity, RawDelivery};
use serde::Deserialize;

use super::Scheme;
use super::verify::headers_for;
use crate::common::{header_token, is_token, require_json_content_type, require_json_object};

/// Ids are short tokens (`msg_...`, `evt_...`); anything much longer is not one.
const MAX_ID_LEN: usize = 256;
/// The event type of a Standard Webhooks or Svix body without a string `type` (the spec
/// recommends the field but does not require it).
pub(crate) const UNTYPED: &str = "untyped";

/// Only the two fields identification needs; the rest of the body is skipped unparsed.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type", default)]
    event_type: Option<serde_json::Value>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

pub(crate) fn identify(scheme: Scheme, delivery: &RawDelivery) -> Result<Identity, IdentifyError> {
    require_json_content_type(delivery)?;
    require_json_object(&delivery.body)?;
    let envelope: Envelope = serde_json::from_slice(&delivery.body)
        .map_err(|e| IdentifyError::Malformed(format!("invalid JSON: {e}")))?;
    let event_type = envelope.event_type.as_ref().and_then(|t| t.as_str());
    match scheme {
        Scheme::Standard | Scheme::Svix => {
            let header = headers_for(scheme, delivery).id;
            let id = header_token(delivery, header, MAX_ID_LEN)?;
            Ok(Identity {
                delivery_id: DeliveryId::new(id),
                event_type: event_type.unwrap_or(UNTYPED).to_owned(),
            })
        }
        Scheme::Stripe => {
            let id = envelope
                .id
                .as_ref()
                .and_then(|id| id.as_str())
                .filter(|id| is_token(id, MAX_ID_LEN))
                .ok_or_else(|| {
                    IdentifyError::Malformed("a Stripe event has a string `id`".into())
                })?;
            let event_type = event_type.ok_or_else(|| {
                IdentifyError::Malformed("a Stripe event has a string `type`".into())
            })?;
            Ok(Identity {
                delivery_id: DeliveryId::new(id),
                event_type: event_type.to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn delivery(headers: &[(&str, &str)], body: &'static str) -> RawDelivery {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        RawDelivery::new("sw", h, body)
    }

    const JSON: (&str, &str) = ("content-type", "application/json");

    #[test]
    fn standard_and_svix_ids_come_from_headers() {
        let d = delivery(
            &[JSON, ("webhook-id", "msg_1")],
            r#"{"type":"contact.created","data":{}}"#,
        );
        let id = identify(Scheme::Standard, &d).unwrap();
        assert_eq!(
            (id.delivery_id.as_str(), id.event_type.as_str()),
            ("msg_1", "contact.created")
        );

        let svix = delivery(
            &[
                ("content-type", "application/json; charset=utf-8"),
                ("svix-id", "msg_2"),
            ],
            r#"{"data":{"id":"user_1"}}"#,
        );
        let id = identify(Scheme::Svix, &svix).unwrap();
        assert_eq!(
            (id.delivery_id.as_str(), id.event_type.as_str()),
            ("msg_2", UNTYPED)
        );
        assert_eq!(
            identify(Scheme::Standard, &svix),
            Err(IdentifyError::MissingHeader("webhook-id"))
        );
    }

    #[test]
    fn stripe_ids_come_from_the_body() {
        let d = delivery(
            &[JSON],
            r#"{"id":"evt_1","object":"event","type":"invoice.paid","data":{"object":{"id":"in_1"}}}"#,
        );
        let id = identify(Scheme::Stripe, &d).unwrap();
        assert_eq!(
            (id.delivery_id.as_str(), id.event_type.as_str()),
            ("evt_1", "invoice.paid")
        );
        for body in [
            r#"{"type":"invoice.paid"}"#,
            r#"{"id":7,"type":"x"}"#,
            r#"{"id":"evt_1"}"#,
        ] {
            let d = delivery(&[JSON], body);
            assert!(
                matches!(
                    identify(Scheme::Stripe, &d),
                    Err(IdentifyError::Malformed(_))
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn rejections() {
        let id = ("webhook-id", "msg_1");
        assert_eq!(
            identify(
                Scheme::Standard,
                &delivery(&[("content-type", "text/plain"), id], "{}")
            ),
            Err(IdentifyError::UnsupportedContentType("text/plain".into()))
        );
        assert!(matches!(
            identify(Scheme::Standard, &delivery(&[id], "{}")),
            Err(IdentifyError::UnsupportedContentType(_))
        ));
        for body in ["", "[1]", r#"{"type":"#, r#"{"type":"a"} x"#] {
            assert!(
                matches!(
                    identify(Scheme::Standard, &delivery(&[JSON, id], body)),
                    Err(IdentifyError::Malformed(_))
                ),
                "{body:?}"
            );
        }
        assert_eq!(
            identify(Scheme::Standard, &delivery(&[JSON], "{}")),
            Err(IdentifyError::MissingHeader("webhook-id"))
        );
    }
}
