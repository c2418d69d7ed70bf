//! Signing a delivery as Trello does, for `hookbridge send` and tests.
//!
//! Trello puts the action id and type in the body, not in headers, so the body is sent
//! exactly as given: sending the same sample twice is deduplicated, as Trello's own retries
//! are.

use bytes::Bytes;
use hookbridge_core::signature::{Algorithm, hmac};
use hookbridge_core::{Secret, SignError, SignedDelivery};
use http::{HeaderMap, HeaderValue};

use super::verify::SIGNATURE_HEADER;

pub(crate) fn sign(
    secret: &Secret,
    callback_url: &str,
    json: &[u8],
) -> Result<SignedDelivery, SignError> {
    if callback_url.is_empty() {
        return Err(SignError::Unsupported(
            "a Trello signature covers the callback URL, and none is configured".into(),
        ));
    }
    let mac = hmac(
        Algorithm::Sha1,
        secret.expose(),
        &[json, callback_url.as_bytes()],
    );
    let signature = HeaderValue::from_str(&base64(&mac))
        .map_err(|_| SignError::InvalidSample("signature is not a header value".into()))?;
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(SIGNATURE_HEADER, signature);
    Ok(SignedDelivery {
        headers,
        body: Bytes::copy_from_slice(json),
        query: None,
    })
}

/// Standard base64 with padding. The `base64` crate is only optional in this crate, and a
/// 20-byte digest does not justify making it mandatory.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookbridge_core::signature::{Encoding, decode};

    #[test]
    fn base64_matches_rfc4648_vectors() {
        // RFC 4648 section 10.
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(
            decode(Encoding::Base64, &base64(&bytes)).as_deref(),
            Some(&bytes[..])
        );
    }

    #[test]
    fn signs_the_documented_way() {
        // Same vector as verify.rs (Trello's Node example, run under Node 20).
        let signed = sign(
            &Secret::new("b5f2e0c1d8a94e7fa3c6d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2"),
            "https://hooks.example.com/hooks/trello?board=5f1e2d3c4b5a697887766554",
            r#"{"action":{"id":"65f0c1a2b3c4d5e6f7a8b9c0","type":"commentCard","data":{"text":"ship it"}}}"#.as_bytes(),
        )
        .unwrap();
        assert_eq!(
            signed.headers[SIGNATURE_HEADER],
            "CGGVmTL6lZ8xVzU8Ck7fCzEMDhU="
        );
        assert_eq!(signed.headers["content-type"], "application/json");
        assert_eq!(signed.query, None);
    }

    #[test]
    fn no_callback_url_cannot_sign() {
        assert!(matches!(
            sign(&Secret::new("k"), "", b"{}"),
            Err(SignError::Unsupported(_))
        ));
    }
}
