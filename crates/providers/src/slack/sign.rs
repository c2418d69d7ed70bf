//! Signing a request as Slack does, for `hookbridge send` and tests.

use bytes::Bytes;
use hookbridge_core::signature::{Algorithm, hmac};
use hookbridge_core::{Secret, SignError, SignedDelivery};
use http::{HeaderMap, HeaderValue};
use time::OffsetDateTime;

use super::identify::INTERACTIVE;
use super::verify::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::common::header_value;

/// Signs a request at `now`. For `event_type` `interactive` the JSON is sent as Slack sends
/// interactivity payloads, form-encoded in a `payload` field; anything else is an Events API
/// body, sent as JSON. Slack's dedup key is in the body, so `delivery_id` is not sent.
pub(crate) fn sign(
    secret: &Secret,
    event_type: &str,
    json: &[u8],
    now: OffsetDateTime,
) -> Result<SignedDelivery, SignError> {
    let (content_type, body) = if event_type == INTERACTIVE {
        let json = std::str::from_utf8(json)
            .map_err(|_| SignError::InvalidSample("the payload is not UTF-8".into()))?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", json)
            .finish();
        ("application/x-www-form-urlencoded", Bytes::from(form))
    } else {
        ("application/json", Bytes::copy_from_slice(json))
    };
    let timestamp = now.unix_timestamp().to_string();
    let signature = hex::encode(hmac(
        Algorithm::Sha256,
        secret.expose(),
        &[b"v0:", timestamp.as_bytes(), b":", &body],
    ));
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    headers.insert(
        "user-agent",
        HeaderValue::from_static("Slackbot 1.0 (+https://api.slack.com/robots)"),
    );
    headers.insert(TIMESTAMP_HEADER, header_value(&timestamp)?);
    headers.insert(SIGNATURE_HEADER, header_value(&format!("v0={signature}"))?);
    Ok(SignedDelivery {
        headers,
        body,
        query: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookbridge_core::RawDelivery;

    /// Slack's documented example, reproduced by signing its body at its time.
    #[test]
    fn reproduces_the_documented_signature() {
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let now = OffsetDateTime::from_unix_timestamp(1531420618).unwrap();
        let signed = sign(
            &Secret::new("8f742231b10e8888abcd99yyyzzz85a5"),
            "slash_command",
            body.as_bytes(),
            now,
        )
        .unwrap();
        assert_eq!(
            signed.headers[SIGNATURE_HEADER],
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
        assert_eq!(signed.headers[TIMESTAMP_HEADER], "1531420618");
    }

    /// Sign, then verify, identify and parse, for a JSON event and a form-encoded payload.
    #[test]
    fn round_trip() {
        let secret = Secret::new("s3cret");
        let now = OffsetDateTime::now_utc();
        for sample in crate::slack::SAMPLES {
            let signed = sign(&secret, sample.event_type, sample.json.as_bytes(), now).unwrap();
            let delivery = RawDelivery::new("slack", signed.headers, signed.body);
            super::super::verify::verify(
                std::slice::from_ref(&secret),
                time::Duration::minutes(5),
                &delivery,
                now,
            )
            .unwrap();
            let identity = super::super::identify::identify(&delivery).unwrap();
            assert_eq!(identity.event_type, sample.event_type, "{}", sample.name);
        }
        assert!(matches!(
            sign(&secret, INTERACTIVE, b"\xff", now),
            Err(SignError::InvalidSample(_))
        ));
    }
}
