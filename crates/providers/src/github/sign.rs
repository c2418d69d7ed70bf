//! Signing a delivery as GitHub does, for `hookbridge send` and tests.

use bytes::Bytes;
use hookbridge_core::signature::{Algorithm, hmac};
use hookbridge_core::{Secret, SignError, SignedDelivery};
use http::{HeaderMap, HeaderValue};

use crate::common::header_value;

pub(crate) fn sign(
    secret: &Secret,
    event_type: &str,
    json: &[u8],
    delivery_id: &str,
) -> Result<SignedDelivery, SignError> {
    let signature = hex::encode(hmac(Algorithm::Sha256, secret.expose(), &[json]));
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(
        "user-agent",
        HeaderValue::from_static("GitHub-Hookshot/hookbridge-send"),
    );
    headers.insert("x-github-event", header_value(event_type)?);
    headers.insert("x-github-delivery", header_value(delivery_id)?);
    headers.insert(
        "x-hub-signature-256",
        header_value(&format!("sha256={signature}"))?,
    );
    Ok(SignedDelivery {
        headers,
        body: Bytes::copy_from_slice(json),
        query: None,
    })
}
