//! `X-Trello-Webhook: <base64 HMAC-SHA1(app secret, raw body bytes ++ callback URL)>`.
//!
//! Trello's "Webhook Signatures" (<https://developer.atlassian.com/cloud/trello/guides/rest-api/webhooks/#webhook-signatures>):
//! "The header is a base64 digest of an HMAC-SHA1 hash. The hashed content is the
//! concatenation of the full request body and the callbackURL exactly as it was provided
//! during webhook creation. The key used to sign this text is your application's secret."
//!
//! Encoding: Trello's Node example hashes the JavaScript string `request.body + callbackURL`,
//! which Node encodes as UTF-8. Older docs said Trello signed "binary" strings (the low 8
//! bits of each UTF-16 unit) instead; Trello removed that caveat in 2016 ("we accidentally
//! fixed this ... so we're keeping it", trello-archive/api-docs#26). The body arrives as
//! UTF-8, so its raw bytes are exactly the UTF-8 encoding of that string: we verify on the
//! raw bytes and never decode or re-serialize them.

use hookbridge_core::signature::{Algorithm, Encoding, verify_hmac_parts_any};
use hookbridge_core::{RawDelivery, Secret, Verified, VerifyError};

use crate::common::signature_header;

pub(crate) const SIGNATURE_HEADER: &str = "x-trello-webhook";

pub(crate) fn verify(
    secrets: &[Secret],
    callback_url: &str,
    delivery: &RawDelivery,
) -> Result<Verified, VerifyError> {
    let value = signature_header(delivery, SIGNATURE_HEADER)?;
    let secret_index = verify_hmac_parts_any(
        Algorithm::Sha1,
        Encoding::Base64,
        secrets,
        &[&delivery.body, callback_url.as_bytes()],
        value,
    )
    .map_err(|source| VerifyError::Mismatch {
        header: SIGNATURE_HEADER,
        source,
    })?;
    Ok(Verified {
        scheme: SIGNATURE_HEADER,
        secret_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookbridge_core::signature::SignatureMismatch;
    use http::HeaderMap;

    // Vectors computed by running Trello's documented Node example
    // (https://developer.atlassian.com/cloud/trello/guides/rest-api/webhooks/#webhook-signatures,
    // `crypto.createHmac('sha1', secret).update(request.body + callbackURL).digest('base64')`)
    // under Node 20, and cross-checked with `openssl dgst -sha1 -hmac`. Trello publishes no
    // vector of its own.
    const SECRET: &str = "b5f2e0c1d8a94e7fa3c6d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2";
    const URL: &str = "https://hooks.example.com/hooks/trello?board=5f1e2d3c4b5a697887766554";
    const ASCII_BODY: &str = r#"{"action":{"id":"65f0c1a2b3c4d5e6f7a8b9c0","type":"commentCard","data":{"text":"ship it"}}}"#;
    const ASCII_SIG: &str = "CGGVmTL6lZ8xVzU8Ck7fCzEMDhU=";
    /// Non-ASCII text (an en dash, an accent, a check mark): signed over its UTF-8 bytes.
    const UTF8_BODY: &str = r#"{"action":{"id":"65f0c1a2b3c4d5e6f7a8b9c1","type":"commentCard","data":{"text":"ship it – today, café ✓"}}}"#;
    const UTF8_SIG: &str = "UsHjSxC1h9g8L7BicpOTv3u49Ac=";
    /// What the pre-2016 "binary string" signing would give for UTF8_BODY (Node
    /// `update(s, 'binary')`): no longer what Trello sends, and not accepted.
    const LEGACY_BINARY_SIG: &str = "Z80XmycYtfeiSj1+V1suF1/qMEk=";

    fn delivery(signature: Option<&str>, body: &str) -> RawDelivery {
        let mut headers = HeaderMap::new();
        if let Some(signature) = signature {
            headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        }
        RawDelivery::new("trello", headers, body.as_bytes().to_vec())
    }

    fn secrets(values: &[&str]) -> Vec<Secret> {
        values.iter().map(|v| Secret::new(*v)).collect()
    }

    #[test]
    fn node_example_vectors_verify() {
        let s = secrets(&[SECRET]);
        let ok = verify(&s, URL, &delivery(Some(ASCII_SIG), ASCII_BODY)).unwrap();
        assert_eq!(ok.scheme, SIGNATURE_HEADER);
        assert_eq!(ok.secret_index, 0);
        assert!(verify(&s, URL, &delivery(Some(UTF8_SIG), UTF8_BODY)).is_ok());
    }

    #[test]
    fn legacy_binary_signing_is_not_accepted() {
        assert_eq!(
            verify(
                &secrets(&[SECRET]),
                URL,
                &delivery(Some(LEGACY_BINARY_SIG), UTF8_BODY)
            ),
            Err(VerifyError::Mismatch {
                header: SIGNATURE_HEADER,
                source: SignatureMismatch::NoMatch(1)
            })
        );
    }

    #[test]
    fn rotation_second_secret_matches() {
        let s = secrets(&["previous-app-secret", SECRET]);
        let ok = verify(&s, URL, &delivery(Some(UTF8_SIG), UTF8_BODY)).unwrap();
        assert_eq!(ok.secret_index, 1);
    }

    #[test]
    fn tampered_body_wrong_secret_and_wrong_url_fail() {
        let mismatch = Err(VerifyError::Mismatch {
            header: SIGNATURE_HEADER,
            source: SignatureMismatch::NoMatch(1),
        });
        let tampered = ASCII_BODY.replace("ship it", "ship It");
        assert_eq!(
            verify(
                &secrets(&[SECRET]),
                URL,
                &delivery(Some(ASCII_SIG), &tampered)
            ),
            mismatch
        );
        assert_eq!(
            verify(
                &secrets(&["another-app"]),
                URL,
                &delivery(Some(ASCII_SIG), ASCII_BODY)
            ),
            mismatch
        );
        // The callback URL is signed: the same delivery registered under another URL fails,
        // down to a trailing slash.
        assert_eq!(
            verify(
                &secrets(&[SECRET]),
                "https://hooks.example.com/hooks/trello?board=5f1e2d3c4b5a697887766554/",
                &delivery(Some(ASCII_SIG), ASCII_BODY)
            ),
            mismatch
        );
    }

    #[test]
    fn missing_and_malformed_are_distinct() {
        let s = secrets(&[SECRET]);
        assert_eq!(
            verify(&s, URL, &delivery(None, ASCII_BODY)),
            Err(VerifyError::MissingSignature {
                header: SIGNATURE_HEADER
            })
        );
        assert_eq!(
            verify(&s, URL, &delivery(Some("not base64!"), ASCII_BODY)),
            Err(VerifyError::Mismatch {
                header: SIGNATURE_HEADER,
                source: SignatureMismatch::Malformed(Encoding::Base64)
            })
        );
        // Valid base64 of the wrong length (a SHA-256 digest) is malformed, not a mismatch.
        assert_eq!(
            verify(
                &s,
                URL,
                &delivery(
                    Some("dXUHnqDrJQn8IRIhzOmEuKN1cLbXWGwixG83nIsEPhc="),
                    ASCII_BODY
                )
            ),
            Err(VerifyError::Mismatch {
                header: SIGNATURE_HEADER,
                source: SignatureMismatch::Malformed(Encoding::Base64)
            })
        );
        let mut binary = delivery(None, ASCII_BODY);
        binary.headers.insert(
            SIGNATURE_HEADER,
            http::HeaderValue::from_bytes(b"\xffabc").unwrap(),
        );
        assert_eq!(
            verify(&s, URL, &binary),
            Err(VerifyError::MalformedSignature {
                header: SIGNATURE_HEADER,
                reason: "not valid text".into()
            })
        );
    }

    #[test]
    fn no_secret_never_verifies() {
        assert_eq!(
            verify(&[], URL, &delivery(Some(ASCII_SIG), ASCII_BODY)),
            Err(VerifyError::Mismatch {
                header: SIGNATURE_HEADER,
                source: SignatureMismatch::NoSecret
            })
        );
    }
}
