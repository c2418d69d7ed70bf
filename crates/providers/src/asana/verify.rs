//! `X-Hook-Signature: <hex HMAC-SHA256(X-Hook-Secret, raw body)>`.
//!
//! Asana's "Establish a webhook" (<https://developers.asana.com/reference/createwebhook>) and
//! "Webhooks" guide (<https://developers.asana.com/docs/webhooks-guide>): the secret is the
//! `X-Hook-Secret` Asana sends in the creation handshake; every later delivery, heartbeats
//! included, carries `X-Hook-Signature`, the SHA-256 HMAC of the request body keyed with that
//! secret, in hex.

use hookbridge_core::signature::{Algorithm, Encoding, verify_hmac_any};
use hookbridge_core::{RawDelivery, Secret, Verified, VerifyError};

use crate::common::signature_header;

pub(crate) const SIGNATURE_HEADER: &str = "x-hook-signature";

/// Why an endpoint with no secret yet refuses every delivery.
pub(crate) const NO_HANDSHAKE_YET: &str =
    "no secret yet: the X-Hook-Secret handshake has not happened";

pub(crate) fn verify(secrets: &[Secret], delivery: &RawDelivery) -> Result<Verified, VerifyError> {
    // Checked first: until the handshake, nothing can be verified, whatever the delivery says.
    if secrets.is_empty() {
        return Err(VerifyError::NotReady {
            reason: NO_HANDSHAKE_YET,
        });
    }
    let value = signature_header(delivery, SIGNATURE_HEADER)?;
    let secret_index = verify_hmac_any(
        Algorithm::Sha256,
        Encoding::Hex,
        secrets,
        &delivery.body,
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

    /// The `X-Hook-Secret` of Asana's documented handshake example
    /// (https://developers.asana.com/reference/createwebhook). Asana publishes no signature
    /// vector: the signatures below were computed with Node's
    /// `crypto.createHmac('sha256', secret).update(body).digest('hex')` and cross-checked with
    /// `openssl dgst -sha256 -hmac`.
    const SECRET: &str = "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81";
    const HEARTBEAT: &str = r#"{"events":[]}"#;
    const HEARTBEAT_SIG: &str = "10468027b67df18c739cc4794c6fc2d2806dcaaf2259fc3e1ed9d26433659853";
    const CHANGED: &str = r#"{"events":[{"user":{"gid":"1201119191231293","resource_type":"user"},"created_at":"2024-05-17T09:21:03.512Z","action":"changed","resource":{"gid":"1207332211000001","resource_type":"task","resource_subtype":"default_task"},"parent":null,"change":{"field":"name","action":"changed"}}]}"#;
    const CHANGED_SIG: &str = "71c4f68e68b4d820752eb16515e921b5ff297f73587a5c42a5992b85d3a0acbe";

    fn delivery(signature: Option<&str>, body: &str) -> RawDelivery {
        let mut headers = HeaderMap::new();
        if let Some(signature) = signature {
            headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        }
        RawDelivery::new("asana", headers, body.as_bytes().to_vec())
    }

    fn secrets(values: &[&str]) -> Vec<Secret> {
        values.iter().map(|v| Secret::new(*v)).collect()
    }

    #[test]
    fn computed_vectors_verify() {
        let s = secrets(&[SECRET]);
        let ok = verify(&s, &delivery(Some(HEARTBEAT_SIG), HEARTBEAT)).unwrap();
        assert_eq!((ok.scheme, ok.secret_index), (SIGNATURE_HEADER, 0));
        assert!(verify(&s, &delivery(Some(CHANGED_SIG), CHANGED)).is_ok());
        // Hex is case-insensitive.
        let upper = CHANGED_SIG.to_uppercase();
        assert!(verify(&s, &delivery(Some(&upper), CHANGED)).is_ok());
    }

    #[test]
    fn rotation_second_secret_matches() {
        let s = secrets(&["secret-of-a-deleted-webhook", SECRET]);
        assert_eq!(
            verify(&s, &delivery(Some(CHANGED_SIG), CHANGED))
                .unwrap()
                .secret_index,
            1
        );
    }

    #[test]
    fn tampered_body_and_wrong_secret_fail() {
        let mismatch = Err(VerifyError::Mismatch {
            header: SIGNATURE_HEADER,
            source: SignatureMismatch::NoMatch(1),
        });
        let tampered = CHANGED.replace("\"name\"", "\"notes\"");
        assert_eq!(
            verify(&secrets(&[SECRET]), &delivery(Some(CHANGED_SIG), &tampered)),
            mismatch
        );
        assert_eq!(
            verify(
                &secrets(&["another-webhook"]),
                &delivery(Some(CHANGED_SIG), CHANGED)
            ),
            mismatch
        );
    }

    #[test]
    fn missing_malformed_and_no_handshake_are_distinct() {
        let s = secrets(&[SECRET]);
        let missing = verify(&s, &delivery(None, CHANGED)).unwrap_err();
        assert_eq!(
            missing,
            VerifyError::MissingSignature {
                header: SIGNATURE_HEADER
            }
        );
        let malformed = verify(&s, &delivery(Some("sha256=zz"), CHANGED)).unwrap_err();
        assert_eq!(
            malformed,
            VerifyError::Mismatch {
                header: SIGNATURE_HEADER,
                source: SignatureMismatch::Malformed(Encoding::Hex)
            }
        );
        // A SHA-1 length digest is malformed, not a mismatch.
        assert_eq!(
            verify(&s, &delivery(Some(&"ab".repeat(20)), CHANGED)).unwrap_err(),
            malformed
        );
        let mut binary = delivery(None, CHANGED);
        binary.headers.insert(
            SIGNATURE_HEADER,
            http::HeaderValue::from_bytes(b"\xffab").unwrap(),
        );
        assert_eq!(
            verify(&s, &binary).unwrap_err(),
            VerifyError::MalformedSignature {
                header: SIGNATURE_HEADER,
                reason: "not valid text".into()
            }
        );

        // No secret yet: refused whatever the delivery carries, with a message saying why.
        for d in [
            delivery(Some(CHANGED_SIG), CHANGED),
            delivery(None, CHANGED),
        ] {
            let e = verify(&[], &d).unwrap_err();
            assert_eq!(
                e,
                VerifyError::NotReady {
                    reason: NO_HANDSHAKE_YET
                }
            );
            assert!(e.to_string().contains("handshake has not happened"), "{e}");
            assert_ne!(e, missing);
            assert_ne!(e, malformed);
        }
    }
}
