//! Signing a delivery as Asana does, for `hookbridge send` and tests.
//!
//! Asana sends no event or delivery header: the batch is the body, signed with the secret
//! from the handshake.

use bytes::Bytes;
use hookbridge_core::signature::{Algorithm, hmac};
use hookbridge_core::{Secret, SignError, SignedDelivery};
use http::{HeaderMap, HeaderValue};

use super::verify::SIGNATURE_HEADER;

pub(crate) fn sign(secret: &Secret, json: &[u8]) -> Result<SignedDelivery, SignError> {
    let signature = hex::encode(hmac(Algorithm::Sha256, secret.expose(), &[json]));
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    headers.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_str(&signature)
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

    #[test]
    fn signs_hex_hmac_sha256_of_the_body() {
        // Same vector as verify.rs (Asana's documented handshake secret, heartbeat body).
        let signed = sign(
            &Secret::new("b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81"),
            br#"{"events":[]}"#,
        )
        .unwrap();
        assert_eq!(
            signed.headers[SIGNATURE_HEADER],
            "10468027b67df18c739cc4794c6fc2d2806dcaaf2259fc3e1ed9d26433659853"
        );
        assert_eq!(&signed.body[..], br#"{"events":[]}"#);
        assert_eq!(signed.query, None);
    }
}
