//! Delivery id and event type from the body: V3 `event.id` and `event.event_type`; V2 the
//! message ids and the message's `event`.
//!
//! PagerDuty also sends an `X-Webhook-Id` header on V3 deliveries, repeated across retries.
//! The event id is used instead because it is inside the signed body: a header is not signed,
//! so a captured delivery replayed with a fresh `X-Webhook-Id` would slip past deduplication.

use std::borrow::Cow;

use hookbridge_core::{DeliveryId, IdentifyError, Identity, RawDelivery};
use serde::Deserialize;

use crate::common::{is_token, require_json_content_type, require_json_object};

/// PagerDuty's ids are short (`01DEN4HPBQAAAG05V5QQYBRZMF`, a UUID for V2 messages); anything
/// much longer is not from PagerDuty.
const MAX_ID_LEN: usize = 128;
/// Event types are short dotted names (`incident.status_update_published`).
const MAX_TYPE_LEN: usize = 128;
/// Event type stored for a V2 delivery of several messages.
pub(crate) const V2_BATCH: &str = "v2.batch";

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    event: Option<ProbeEvent<'a>>,
    #[serde(borrow, default)]
    messages: Option<Vec<ProbeMessage<'a>>>,
}

#[derive(Deserialize)]
struct ProbeEvent<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    event_type: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ProbeMessage<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
}

pub(crate) fn identify(delivery: &RawDelivery) -> Result<Identity, IdentifyError> {
    // PagerDuty sends every webhook, V3 and V2, as `application/json`.
    require_json_content_type(delivery)?;
    identify_json(&delivery.body)
}

/// Well-formedness and the ids only: a full typed parse happens later, off the request path.
pub(crate) fn identify_json(json: &[u8]) -> Result<Identity, IdentifyError> {
    // A derived struct also accepts a JSON array (positionally): rule non-objects out first.
    require_json_object(json)?;
    let probe: Probe<'_> = serde_json::from_slice(json)
        .map_err(|e| IdentifyError::Malformed(format!("not a PagerDuty webhook envelope: {e}")))?;
    match (probe.event, probe.messages) {
        (Some(event), _) => {
            let id = token(event.id.as_deref(), MAX_ID_LEN, "`event.id`")?;
            let event_type = token(
                event.event_type.as_deref(),
                MAX_TYPE_LEN,
                "`event.event_type`",
            )?;
            Ok(Identity {
                delivery_id: DeliveryId::new(id),
                event_type: event_type.to_owned(),
            })
        }
        (None, Some(messages)) => identify_v2(&messages),
        (None, None) => Err(IdentifyError::Malformed(
            "neither a V3 `event` nor a V2 `messages` envelope".into(),
        )),
    }
}

/// The dedup key of a V2 delivery: the id of its message, or, for a batch, the ids of all its
/// messages sorted and joined with `,`. PagerDuty retries a failed V2 delivery whole, with
/// the same messages, so the joined key is stable across retries; sorting makes it
/// independent of the order the messages are listed in. A message id alone would not do for
/// a batch: two batches sharing a first message would collide and the second be dropped.
fn identify_v2(messages: &[ProbeMessage<'_>]) -> Result<Identity, IdentifyError> {
    if messages.is_empty() {
        return Err(IdentifyError::Malformed("`messages` is empty".into()));
    }
    let mut ids = messages
        .iter()
        .map(|m| token(m.id.as_deref(), MAX_ID_LEN, "`messages[].id`"))
        .collect::<Result<Vec<_>, _>>()?;
    let event_type = if let [message] = messages {
        token(message.event.as_deref(), MAX_TYPE_LEN, "`messages[].event`")?
    } else {
        V2_BATCH
    };
    ids.sort_unstable();
    ids.dedup();
    Ok(Identity {
        delivery_id: DeliveryId::new(ids.join(",")),
        event_type: event_type.to_owned(),
    })
}

/// A non-empty, bounded, visible-ASCII string (no `,`, which joins V2 ids).
fn token<'a>(value: Option<&'a str>, max: usize, what: &str) -> Result<&'a str, IdentifyError> {
    value
        .filter(|v| is_token(v, max) && !v.contains(','))
        .ok_or_else(|| IdentifyError::Malformed(format!("{what} is missing or invalid")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn delivery(content_type: Option<&str>, body: &'static [u8]) -> RawDelivery {
        let mut h = HeaderMap::new();
        if let Some(ct) = content_type {
            h.insert("content-type", ct.parse().unwrap());
        }
        RawDelivery::new("pd", h, body)
    }

    #[test]
    fn v3_event_id_and_type() {
        let id = identify(&delivery(
            Some("application/json; charset=utf-8"),
            br#"{"event":{"id":"01DEN4HPBQ","event_type":"incident.triggered","data":{}}}"#,
        ))
        .unwrap();
        assert_eq!(id.delivery_id.as_str(), "01DEN4HPBQ");
        assert_eq!(id.event_type, "incident.triggered");
    }

    #[test]
    fn v2_single_and_batch() {
        let one =
            identify_json(br#"{"messages":[{"id":"b-2","event":"incident.trigger"}]}"#).unwrap();
        assert_eq!(one.delivery_id.as_str(), "b-2");
        assert_eq!(one.event_type, "incident.trigger");
        let two = identify_json(
            br#"{"messages":[{"id":"b-2","event":"incident.trigger"},{"id":"a-1","event":"incident.resolve"}]}"#,
        )
        .unwrap();
        assert_eq!(two.delivery_id.as_str(), "a-1,b-2");
        assert_eq!(two.event_type, V2_BATCH);
        // Order does not change the key.
        let swapped = identify_json(
            br#"{"messages":[{"id":"a-1","event":"incident.resolve"},{"id":"b-2","event":"incident.trigger"}]}"#,
        )
        .unwrap();
        assert_eq!(swapped.delivery_id, two.delivery_id);
    }

    #[test]
    fn rejections() {
        assert_eq!(
            identify(&delivery(Some("text/plain"), b"{}")),
            Err(IdentifyError::UnsupportedContentType("text/plain".into()))
        );
        assert_eq!(
            identify(&delivery(
                Some("application/x-www-form-urlencoded"),
                b"payload=%7B%7D"
            )),
            Err(IdentifyError::UnsupportedContentType(
                "application/x-www-form-urlencoded".into()
            ))
        );
        assert!(matches!(
            identify(&delivery(None, b"{}")),
            Err(IdentifyError::UnsupportedContentType(_))
        ));
        for body in [
            &b""[..],
            b"[1]",
            b"{\"event\":",
            b"{}",
            b"{\"event\":{\"event_type\":\"incident.triggered\"}}",
            b"{\"event\":{\"id\":\"\",\"event_type\":\"incident.triggered\"}}",
            b"{\"event\":{\"id\":\"a b\",\"event_type\":\"incident.triggered\"}}",
            b"{\"event\":{\"id\":\"x\"}}",
            b"{\"event\":\"incident.triggered\"}",
            b"{\"messages\":[]}",
            b"{\"messages\":[{\"event\":\"incident.trigger\"}]}",
            b"{\"messages\":[{\"id\":\"a,b\",\"event\":\"incident.trigger\"}]}",
            b"{\"messages\":{}}",
        ] {
            assert!(
                matches!(identify_json(body), Err(IdentifyError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let long = format!(
            "{{\"event\":{{\"id\":\"{}\",\"event_type\":\"incident.triggered\"}}}}",
            "x".repeat(MAX_ID_LEN + 1)
        );
        assert!(matches!(
            identify_json(long.as_bytes()),
            Err(IdentifyError::Malformed(_))
        ));
    }
}
