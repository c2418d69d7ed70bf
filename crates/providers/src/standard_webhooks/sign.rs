//! Signing a delivery as a Standard Webhooks, Svix or Stripe sender does: for
//! `hookbridge send`, tests, and hookbridge's own outgoing signed webhooks.
//!
//! Every configured key signs, as senders do while a secret is being rotated (the spec's
//! space-delimited list; Stripe's one `v1` per secret), so a receiver that knows any one of
//! them accepts the delivery.

use base64::Engine as _;
use bytes::Bytes;
use hookbridge_core::signature::{Algorithm, hmac};
use hookbridge_core::{Secret, SignError, SignedDelivery};
use http::{HeaderMap, HeaderValue};
use time::OffsetDateTime;

use super::Scheme;
use super::verify::{Headers, STRIPE_HEADER, SVIX_HEADERS, WEBHOOK_HEADERS};
use crate::common::header_value;

pub(crate) fn sign(
    scheme: Scheme,
    keys: &[Secret],
    json: &[u8],
    delivery_id: &str,
    now: OffsetDateTime,
) -> Result<SignedDelivery, SignError> {
    if keys.is_empty() {
        return Err(SignError::NoSecret);
    }
    let timestamp = now.unix_timestamp().to_string();
    let mut headers = HeaderMap::new();
    match scheme {
        Scheme::Standard => standard(
            WEBHOOK_HEADERS,
            keys,
            json,
            delivery_id,
            &timestamp,
            &mut headers,
        )?,
        Scheme::Svix => standard(
            SVIX_HEADERS,
            keys,
            json,
            delivery_id,
            &timestamp,
            &mut headers,
        )?,
        Scheme::Stripe => {
            // Stripe's delivery id is the event `id` inside the body: `delivery_id` is unused.
            let mut value = format!("t={timestamp}");
            for key in keys {
                let mac = hmac(
                    Algorithm::Sha256,
                    key.expose(),
                    &[timestamp.as_bytes(), b".", json],
                );
                value.push_str(",v1=");
                value.push_str(&hex::encode(mac));
            }
            headers.insert(STRIPE_HEADER, header_value(&value)?);
        }
    }
    headers.insert(
        "content-type",
        HeaderValue::from_static(match scheme {
            // What Stripe sends; the others send plain `application/json`.
            Scheme::Stripe => "application/json; charset=utf-8",
            Scheme::Standard | Scheme::Svix => "application/json",
        }),
    );
    headers.insert("user-agent", HeaderValue::from_static("hookbridge-send"));
    Ok(SignedDelivery {
        headers,
        body: Bytes::copy_from_slice(json),
        query: None,
    })
}

fn standard(
    names: Headers,
    keys: &[Secret],
    json: &[u8],
    id: &str,
    timestamp: &str,
    headers: &mut HeaderMap,
) -> Result<(), SignError> {
    if id.is_empty() || id.contains('.') {
        return Err(SignError::InvalidSample(format!(
            "the delivery id {id:?} must be non-empty and without '.'"
        )));
    }
    let signatures: Vec<String> = keys
        .iter()
        .map(|key| {
            let mac = hmac(
                Algorithm::Sha256,
                key.expose(),
                &[id.as_bytes(), b".", timestamp.as_bytes(), b".", json],
            );
            format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(mac)
            )
        })
        .collect();
    headers.insert(names.id, header_value(id)?);
    headers.insert(names.timestamp, header_value(timestamp)?);
    headers.insert(names.signature, header_value(&signatures.join(" "))?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standard_webhooks::decode_key;

    #[test]
    fn reproduces_the_reference_vectors() {
        // Standard Webhooks' `test_sign` vector (see verify.rs).
        let key = decode_key(&Secret::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")).unwrap();
        let signed = sign(
            Scheme::Standard,
            &[key],
            br#"{"email":"test@example.com","username":"test_user"}"#,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            OffsetDateTime::from_unix_timestamp(1649367553).unwrap(),
        )
        .unwrap();
        assert_eq!(
            signed.headers["webhook-signature"],
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
        assert_eq!(signed.headers["webhook-timestamp"], "1649367553");
        assert_eq!(
            signed.headers["webhook-id"],
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"
        );

        // Svix's `TestWebhookSign` vector, with a second (rotated) key signing too.
        let keys = [
            decode_key(&Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).unwrap(),
            decode_key(&Secret::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")).unwrap(),
        ];
        let signed = sign(
            Scheme::Svix,
            &keys,
            br#"{"test": 2432232314}"#,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            OffsetDateTime::from_unix_timestamp(1614265330).unwrap(),
        )
        .unwrap();
        let list = signed.headers["svix-signature"].to_str().unwrap();
        assert!(
            list.starts_with("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,"),
            "{list}"
        );
        assert!(!signed.headers.contains_key("webhook-signature"));
    }

    #[test]
    fn stripe_header_and_bad_ids() {
        let signed = sign(
            Scheme::Stripe,
            &[Secret::new("whsec_test_secret")],
            br#"{"id":"evt_test_webhook","object":"event"}"#,
            "ignored",
            OffsetDateTime::from_unix_timestamp(1492774577).unwrap(),
        )
        .unwrap();
        assert_eq!(
            signed.headers["stripe-signature"],
            "t=1492774577,v1=88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a"
        );
        assert_eq!(
            signed.headers["content-type"],
            "application/json; charset=utf-8"
        );

        for id in ["", "msg.1", "msg\n1"] {
            assert!(matches!(
                sign(
                    Scheme::Standard,
                    &[Secret::new("k")],
                    b"{}",
                    id,
                    OffsetDateTime::UNIX_EPOCH
                ),
                Err(SignError::InvalidSample(_))
            ));
        }
        assert_eq!(
            sign(
                Scheme::Standard,
                &[],
                b"{}",
                "msg_1",
                OffsetDateTime::UNIX_EPOCH
            )
            .unwrap_err(),
            SignError::NoSecret
        );
    }
}
