//! Dedup key from the body's SHA-256, event type from the batch, and the JSON body check.
//!
//! Asana's batches carry no id, in the body or in a header. A retried delivery resends the
//! same batch, byte for byte, so the digest of the raw body identifies it. (Heartbeats,
//! `{"events":[]}`, all share one key: the second is a duplicate, answered 2xx and dropped,
//! which is all a heartbeat needs.)

use hookbridge_core::{DeliveryId, IdentifyError, Identity, RawDelivery};
use serde::Deserialize;

use super::events::batch_name;
use crate::common::{body_key, require_json_content_type, require_json_object};

/// Only what identification needs: each event's action and resource type, leniently (a
/// missing one is the typed parse's business, not a reason to refuse the delivery).
#[derive(Deserialize)]
struct BatchHead {
    events: Vec<EventHead>,
}

#[derive(Deserialize)]
struct EventHead {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    resource: Option<ResourceHead>,
}

#[derive(Deserialize)]
struct ResourceHead {
    #[serde(default)]
    resource_type: Option<String>,
}

pub(crate) fn identify(delivery: &RawDelivery) -> Result<Identity, IdentifyError> {
    require_json_content_type(delivery)?;
    let body = &delivery.body[..];
    require_json_object(body)?;
    let head: BatchHead = serde_json::from_slice(body).map_err(|e| {
        IdentifyError::Malformed(if e.is_data() {
            format!("not an Asana event batch: {e}")
        } else {
            format!("invalid JSON: {e}")
        })
    })?;
    let event_type = batch_name(head.events.iter().map(|e| {
        (
            e.resource
                .as_ref()
                .and_then(|r| r.resource_type.as_deref())
                .unwrap_or("unknown"),
            e.action.as_deref().unwrap_or("unknown"),
        )
    }));
    Ok(Identity {
        delivery_id: DeliveryId::new(body_key(body)),
        event_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn delivery(content_type: Option<&str>, body: &'static str) -> RawDelivery {
        let mut h = HeaderMap::new();
        if let Some(ct) = content_type {
            h.insert("content-type", ct.parse().unwrap());
        }
        RawDelivery::new("asana", h, body)
    }

    #[test]
    fn key_and_type() {
        let heartbeat = identify(&delivery(
            Some("application/json; charset=UTF-8"),
            r#"{"events":[]}"#,
        ))
        .unwrap();
        // `printf '{"events":[]}' | sha256sum`
        assert_eq!(
            heartbeat.delivery_id.as_str(),
            "sha256:24de1c4a19c43ad41b013f13dcd858c17b0daa7f33a53f19913e5b11366d1c2e"
        );
        assert_eq!(heartbeat.event_type, "heartbeat");

        let one = identify(&delivery(
            Some("application/json"),
            r#"{"events":[{"action":"added","resource":{"gid":"1","resource_type":"story"}},
                          {"action":"added","resource":{"gid":"2","resource_type":"story"}}]}"#,
        ))
        .unwrap();
        assert_eq!(one.event_type, "story.added");
        let mixed = identify(&delivery(
            Some("application/json"),
            r#"{"events":[{"action":"added","resource":{"gid":"1","resource_type":"story"}},
                          {"action":"changed","resource":{"gid":"2","resource_type":"task"}}]}"#,
        ))
        .unwrap();
        assert_eq!(mixed.event_type, "batch");
        assert_ne!(one.delivery_id, mixed.delivery_id);
        // Lenient: an event missing its action is still identified.
        let odd = identify(&delivery(Some("application/json"), r#"{"events":[{}]}"#)).unwrap();
        assert_eq!(odd.event_type, "unknown.unknown");
    }

    #[test]
    fn rejections() {
        assert_eq!(
            identify(&delivery(Some("text/plain"), r#"{"events":[]}"#)),
            Err(IdentifyError::UnsupportedContentType("text/plain".into()))
        );
        assert!(matches!(
            identify(&delivery(None, r#"{"events":[]}"#)),
            Err(IdentifyError::UnsupportedContentType(_))
        ));
        for body in [
            "",
            "[]",
            "{}",
            r#"{"events":{}}"#,
            r#"{"events":[1]}"#,
            r#"{"events":["#,
        ] {
            assert!(
                matches!(
                    identify(&delivery(Some("application/json"), body)),
                    Err(IdentifyError::Malformed(_))
                ),
                "{body}"
            );
        }
    }
}
