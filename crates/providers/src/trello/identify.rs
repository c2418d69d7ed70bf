//! Delivery id from `action.id`, event type from `action.type`, and the JSON body check.
//!
//! Trello sends no delivery header: the action id is the dedup key. Trello retries a failed
//! delivery with the same action, and one action reaching the same endpoint through two
//! webhooks (a board's and a card's) is one action, so deduplicating on it is right.

use hookbridge_core::{DeliveryId, IdentifyError, Identity, RawDelivery};
use serde::Deserialize;

use crate::common::{is_token, require_json_content_type, require_json_object};

/// Trello ids are 24 hex digits and action types short camelCase words: anything much longer
/// is not from Trello.
const MAX_TOKEN_LEN: usize = 128;

/// Only what identification needs; the rest of the document is skipped, not typed.
#[derive(Deserialize)]
struct Envelope {
    action: ActionHead,
}

#[derive(Deserialize)]
struct ActionHead {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

pub(crate) fn identify(delivery: &RawDelivery) -> Result<Identity, IdentifyError> {
    require_json_content_type(delivery)?;
    let body = &delivery.body[..];
    require_json_object(body)?;
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        IdentifyError::Malformed(if e.is_data() {
            format!("not a Trello action envelope: {e}")
        } else {
            format!("invalid JSON: {e}")
        })
    })?;
    let id = token(envelope.action.id, "action.id")?;
    let kind = token(envelope.action.kind, "action.type")?;
    Ok(Identity {
        delivery_id: DeliveryId::new(id),
        event_type: kind,
    })
}

fn token(value: String, what: &str) -> Result<String, IdentifyError> {
    if !is_token(&value, MAX_TOKEN_LEN) {
        return Err(IdentifyError::Malformed(format!(
            "{what} is empty, too long or not printable ASCII"
        )));
    }
    Ok(value)
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
        RawDelivery::new("trello", h, body)
    }

    #[test]
    fn reads_action_id_and_type() {
        let id = identify(&delivery(
            Some("application/json; charset=utf-8"),
            r#" {"model":{"id":"b"},"action":{"id":"65f0c1a2b3c4d5e6f7a8b9c0","type":"createCard","data":{}}}"#,
        ))
        .unwrap();
        assert_eq!(id.delivery_id.as_str(), "65f0c1a2b3c4d5e6f7a8b9c0");
        assert_eq!(id.event_type, "createCard");
    }

    #[test]
    fn rejections() {
        assert_eq!(
            identify(&delivery(Some("text/plain"), "{}")),
            Err(IdentifyError::UnsupportedContentType("text/plain".into()))
        );
        assert!(matches!(
            identify(&delivery(None, "{}")),
            Err(IdentifyError::UnsupportedContentType(_))
        ));
        for body in [
            "",
            "[1]",
            r#"{"action":"#,
            "{}",
            r#"{"action":{"type":"createCard"}}"#,
            r#"{"action":{"id":"x"}}"#,
            r#"{"action":{"id":7,"type":"createCard"}}"#,
            r#"{"action":{"id":"","type":"createCard"}}"#,
            r#"{"action":{"id":"a b","type":"createCard"}}"#,
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
