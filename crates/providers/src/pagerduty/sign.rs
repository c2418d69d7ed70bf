//! Signing a delivery as PagerDuty does, for `hookbridge send` and tests.

use bytes::Bytes;
use hookbridge_core::signature::{Algorithm, hmac};
use hookbridge_core::{Secret, SignError, SignedDelivery};
use http::{HeaderMap, HeaderValue};

use super::verify::HEADER;
use crate::common::header_value;

/// Signs `json` with every secret given, one `v1=` signature each joined by `,`, as
/// PagerDuty does for a subscription with several active secrets. `delivery_id` becomes the
/// `X-Webhook-Id` header PagerDuty sends (hookbridge deduplicates on the body's event id).
pub(crate) fn sign(
    secrets: &[&Secret],
    json: &[u8],
    delivery_id: &str,
) -> Result<SignedDelivery, SignError> {
    if secrets.is_empty() {
        return Err(SignError::NoSecret);
    }
    let signatures: Vec<String> = secrets
        .iter()
        .map(|secret| {
            format!(
                "v1={}",
                hex::encode(hmac(Algorithm::Sha256, secret.expose(), &[json]))
            )
        })
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(
        "user-agent",
        HeaderValue::from_static("PagerDuty-Webhook/V3.0"),
    );
    headers.insert("x-webhook-id", header_value(delivery_id)?);
    headers.insert(
        HEADER,
        HeaderValue::from_str(&signatures.join(","))
            .map_err(|_| SignError::InvalidSample("signature is not a header value".into()))?,
    );
    Ok(SignedDelivery {
        headers,
        body: Bytes::copy_from_slice(json),
        query: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookbridge_core::RawDelivery;

    /// Sign, then verify, identify and parse: the path `hookbridge send` exercises.
    #[test]
    fn round_trip_with_one_and_several_secrets() {
        let json = crate::pagerduty::SAMPLES
            .iter()
            .find(|s| s.name == "incident.triggered")
            .unwrap()
            .json
            .as_bytes();
        let old = Secret::new("old");
        let new = Secret::new("new");
        for signers in [vec![&new], vec![&old, &new]] {
            let signed = sign(&signers, json, "d-1").unwrap();
            assert_eq!(signed.body, json);
            assert_eq!(signed.headers["x-webhook-id"], "d-1");
            let header = signed.headers[HEADER].to_str().unwrap();
            assert_eq!(header.matches("v1=").count(), signers.len());
            let delivery = RawDelivery::new("pd", signed.headers, signed.body);
            let ok = super::super::verify::verify(std::slice::from_ref(&new), &delivery).unwrap();
            assert_eq!(ok.secret_index, 0);
            let identity = super::super::identify::identify(&delivery).unwrap();
            assert_eq!(identity.event_type, "incident.triggered");
            let event = crate::pagerduty::PagerdutyEvent::from_json(&delivery.body).unwrap();
            assert_eq!(event.name(), "incident.triggered");
        }
        assert_eq!(sign(&[], json, "d").unwrap_err(), SignError::NoSecret);
        assert!(matches!(
            sign(&[&new], json, "bad\nid"),
            Err(SignError::InvalidSample(_))
        ));
    }
}
