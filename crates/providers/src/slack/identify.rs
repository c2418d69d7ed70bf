//! Delivery id and event type of a Slack request, from its body:
//!
//! - Events API (`application/json`): an `event_callback` is identified by its `event_id`,
//!   which Slack repeats on every retry (`X-Slack-Retry-Num`), and typed by its inner
//!   `event.type`; an `app_rate_limited` notice by its team and minute; any other envelope
//!   that carries an `event_id` by it. `url_verification` is answered by the handshake and
//!   never stored: here it is malformed.
//! - Interactivity and slash commands (`application/x-www-form-urlencoded`): event type
//!   `interactive`, identified by the `trigger_id` Slack mints for each interaction, or, for
//!   the few payloads without one, by the SHA-256 of the raw body. Slack does not retry these
//!   requests, so the key only has to stop the same body replayed within the timestamp
//!   tolerance.

use std::borrow::Cow;

use hookbridge_core::{DeliveryId, IdentifyError, Identity, RawDelivery};
use serde::Deserialize;

use crate::common::{
    body_key, is_json_object, is_token, require_json_object, unsupported_content_type,
};

/// Slack's ids are short (`Ev0PV52K21`, `13345224609.738474920.8088930838d88f008e0`);
/// anything much longer is not from Slack.
const MAX_ID_LEN: usize = 128;
/// The event type stored for interactivity requests and slash commands.
pub(crate) const INTERACTIVE: &str = "interactive";

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    team_id: Option<Cow<'a, str>>,
    #[serde(default)]
    minute_rate_limited: Option<i64>,
    #[serde(borrow, default)]
    event: Option<InnerProbe<'a>>,
}

#[derive(Deserialize)]
struct InnerProbe<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct InteractiveProbe<'a> {
    #[serde(borrow, default)]
    trigger_id: Option<Cow<'a, str>>,
}

/// The body's kind, from its content type.
pub(crate) enum Body {
    /// An Events API request.
    Json,
    /// An interactivity request or a slash command.
    Form,
}

pub(crate) fn body_kind(delivery: &RawDelivery) -> Result<Body, IdentifyError> {
    match delivery.media_type().as_deref() {
        Some("application/json") => Ok(Body::Json),
        Some("application/x-www-form-urlencoded") => Ok(Body::Form),
        other => Err(unsupported_content_type(other)),
    }
}

pub(crate) fn identify(delivery: &RawDelivery) -> Result<Identity, IdentifyError> {
    match body_kind(delivery)? {
        Body::Json => identify_json(&delivery.body),
        Body::Form => identify_form(&delivery.body),
    }
}

fn malformed(message: impl Into<String>) -> IdentifyError {
    IdentifyError::Malformed(message.into())
}

/// Well-formedness and the ids only: a full typed parse happens later, off the request path.
fn identify_json(json: &[u8]) -> Result<Identity, IdentifyError> {
    // A derived struct also accepts a JSON array (positionally): rule non-objects out first.
    require_json_object(json)?;
    let probe: Probe<'_> = serde_json::from_slice(json)
        .map_err(|e| malformed(format!("not a Slack Events API body: {e}")))?;
    let kind = probe.kind.as_deref().unwrap_or_default();
    let (id, event_type) = match kind {
        "event_callback" => {
            let id = token(probe.event_id.as_deref(), "`event_id`")?.to_owned();
            let inner = probe.event.as_ref().and_then(|e| e.kind.as_deref());
            (id, token(inner, "`event.type`")?.to_owned())
        }
        "app_rate_limited" => {
            let team = token(probe.team_id.as_deref(), "`team_id`")?;
            let minute = probe
                .minute_rate_limited
                .ok_or_else(|| malformed("`minute_rate_limited` is missing"))?;
            (format!("app_rate_limited:{team}:{minute}"), kind.to_owned())
        }
        "url_verification" => {
            return Err(malformed(
                "url_verification is a handshake: it is answered, not stored",
            ));
        }
        "" => return Err(malformed("the body has no string `type`")),
        other => {
            let id = token(probe.event_id.as_deref(), "`event_id`")?.to_owned();
            (id, token(Some(other), "`type`")?.to_owned())
        }
    };
    Ok(Identity {
        delivery_id: DeliveryId::new(id),
        event_type,
    })
}

fn identify_form(body: &[u8]) -> Result<Identity, IdentifyError> {
    let trigger_id = if let Some((_, payload)) =
        form_urlencoded::parse(body).find(|(key, _)| key == "payload")
    {
        if !is_json_object(payload.as_bytes()) {
            return Err(malformed("`payload` is not a JSON object"));
        }
        let probe: InteractiveProbe<'_> = serde_json::from_str(&payload)
            .map_err(|e| malformed(format!("`payload` is not valid JSON: {e}")))?;
        probe.trigger_id.map(Cow::into_owned)
    } else if form_urlencoded::parse(body).any(|(key, _)| key == "command") {
        form_urlencoded::parse(body)
            .find(|(key, _)| key == "trigger_id")
            .map(|(_, value)| value.into_owned())
    } else {
        return Err(malformed(
            "a form body needs a `payload` (interactivity) or a `command` (slash command)",
        ));
    };
    let id = match trigger_id {
        Some(trigger_id) => format!("interactive:{}", token(Some(&trigger_id), "`trigger_id`")?),
        None => format!("interactive:{}", body_key(body)),
    };
    Ok(Identity {
        delivery_id: DeliveryId::new(id),
        event_type: INTERACTIVE.to_owned(),
    })
}

/// A non-empty, bounded, visible-ASCII string.
fn token<'a>(value: Option<&'a str>, what: &str) -> Result<&'a str, IdentifyError> {
    value
        .filter(|v| is_token(v, MAX_ID_LEN))
        .ok_or_else(|| malformed(format!("{what} is missing or invalid")))
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
        RawDelivery::new("slack", h, body)
    }

    #[test]
    fn event_callback_and_rate_limit() {
        let id = identify(&delivery(
            Some("application/json; charset=utf-8"),
            br#"{"type":"event_callback","event_id":"Ev0PV52K21","team_id":"T1","event":{"type":"app_mention"}}"#,
        ))
        .unwrap();
        assert_eq!(id.delivery_id.as_str(), "Ev0PV52K21");
        assert_eq!(id.event_type, "app_mention");
        let limited = identify_json(
            br#"{"token":"x","type":"app_rate_limited","team_id":"T1","minute_rate_limited":1518467820,"api_app_id":"A1"}"#,
        )
        .unwrap();
        assert_eq!(
            limited.delivery_id.as_str(),
            "app_rate_limited:T1:1518467820"
        );
        assert_eq!(limited.event_type, "app_rate_limited");
        let future = identify_json(br#"{"type":"event_batch","event_id":"Ev9"}"#).unwrap();
        assert_eq!(future.event_type, "event_batch");
    }

    #[test]
    fn interactive_and_slash_commands() {
        let action = identify(&delivery(
            Some("application/x-www-form-urlencoded"),
            b"payload=%7B%22type%22%3A%22block_actions%22%2C%22trigger_id%22%3A%2212466734323.1395872398%22%7D",
        ))
        .unwrap();
        assert_eq!(
            action.delivery_id.as_str(),
            "interactive:12466734323.1395872398"
        );
        assert_eq!(action.event_type, INTERACTIVE);
        let closed = identify_form(b"payload=%7B%22type%22%3A%22view_closed%22%7D").unwrap();
        assert!(
            closed
                .delivery_id
                .as_str()
                .starts_with("interactive:sha256:")
        );
        assert_eq!(
            closed,
            identify_form(b"payload=%7B%22type%22%3A%22view_closed%22%7D").unwrap()
        );
        let slash = identify_form(b"command=%2Fdeploy&text=api&trigger_id=1.2.3").unwrap();
        assert_eq!(slash.delivery_id.as_str(), "interactive:1.2.3");
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
        for body in [
            &b""[..],
            b"[]",
            b"{\"type\":",
            b"{}",
            b"{\"type\":\"url_verification\",\"challenge\":\"x\"}",
            b"{\"type\":\"event_callback\",\"event\":{\"type\":\"message\"}}",
            b"{\"type\":\"event_callback\",\"event_id\":\"Ev1\"}",
            b"{\"type\":\"event_callback\",\"event_id\":\"Ev 1\",\"event\":{\"type\":\"message\"}}",
            b"{\"type\":\"app_rate_limited\",\"team_id\":\"T1\"}",
            b"{\"type\":\"something_new\"}",
            b"{\"type\":7}",
        ] {
            assert!(
                matches!(identify_json(body), Err(IdentifyError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for body in [
            &b"text=hi"[..],
            b"payload=%5B1%5D",
            b"payload=%7B",
            b"payload=%7B%22trigger_id%22%3A%22a%20b%22%7D",
        ] {
            assert!(
                matches!(identify_form(body), Err(IdentifyError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
