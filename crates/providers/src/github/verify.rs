//! `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`, and the legacy
//! `X-Hub-Signature: sha1=<hex>` only where the endpoint allows it.

use hookbridge_core::signature::{Algorithm, Encoding, verify_hmac_any};
use hookbridge_core::{RawDelivery, Secret, Verified, VerifyError};

use crate::common::signature_header;

const SHA256_HEADER: &str = "x-hub-signature-256";
const SHA1_HEADER: &str = "x-hub-signature";

pub(crate) fn verify(
    secrets: &[Secret],
    allow_sha1: bool,
    delivery: &RawDelivery,
) -> Result<Verified, VerifyError> {
    // When the strong signature is present it alone decides: a failing SHA-256 never falls
    // back to SHA-1, or an attacker could strip it to downgrade.
    if delivery.headers.contains_key(SHA256_HEADER) {
        return check(
            secrets,
            delivery,
            SHA256_HEADER,
            "sha256=",
            Algorithm::Sha256,
        );
    }
    if delivery.headers.contains_key(SHA1_HEADER) {
        if !allow_sha1 {
            return Err(VerifyError::SchemeNotAllowed {
                offered: SHA1_HEADER,
                option: "allow_sha1",
            });
        }
        return check(secrets, delivery, SHA1_HEADER, "sha1=", Algorithm::Sha1);
    }
    Err(VerifyError::MissingSignature {
        header: SHA256_HEADER,
    })
}

fn check(
    secrets: &[Secret],
    delivery: &RawDelivery,
    header: &'static str,
    prefix: &str,
    algorithm: Algorithm,
) -> Result<Verified, VerifyError> {
    let value = signature_header(delivery, header)?;
    let hex = value
        .trim()
        .strip_prefix(prefix)
        .ok_or_else(|| VerifyError::MalformedSignature {
            header,
            reason: format!("expected the prefix {prefix}"),
        })?;
    let secret_index = verify_hmac_any(algorithm, Encoding::Hex, secrets, &delivery.body, hex)
        .map_err(|source| VerifyError::Mismatch { header, source })?;
    Ok(Verified {
        scheme: header,
        secret_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookbridge_core::signature::{SignatureMismatch, hmac};
    use http::HeaderMap;

    fn delivery(headers: &[(&str, &str)], body: &'static [u8]) -> RawDelivery {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        RawDelivery::new("gh", map, body)
    }

    fn secrets(v: &[&str]) -> Vec<Secret> {
        v.iter().map(|s| Secret::new(*s)).collect()
    }

    /// The test values from GitHub's "Validating webhook deliveries".
    #[test]
    fn documented_test_vector() {
        let d = delivery(
            &[(
                "X-Hub-Signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            )],
            b"Hello, World!",
        );
        let ok = verify(&secrets(&["It's a Secret to Everybody"]), false, &d).unwrap();
        assert_eq!(ok.scheme, SHA256_HEADER);
        assert_eq!(ok.secret_index, 0);
    }

    #[test]
    fn rotation_second_secret_matches() {
        let d = delivery(
            &[(
                "X-Hub-Signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            )],
            b"Hello, World!",
        );
        let ok = verify(&secrets(&["new", "It's a Secret to Everybody"]), false, &d).unwrap();
        assert_eq!(ok.secret_index, 1);
    }

    #[test]
    fn body_changed_by_one_byte_fails() {
        let d = delivery(
            &[(
                "X-Hub-Signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            )],
            b"Hello, World?",
        );
        assert_eq!(
            verify(&secrets(&["It's a Secret to Everybody"]), false, &d),
            Err(VerifyError::Mismatch {
                header: SHA256_HEADER,
                source: SignatureMismatch::NoMatch(1)
            })
        );
    }

    #[test]
    fn missing_and_malformed() {
        let s = secrets(&["k"]);
        assert_eq!(
            verify(&s, false, &delivery(&[], b"{}")),
            Err(VerifyError::MissingSignature {
                header: SHA256_HEADER
            })
        );
        assert!(matches!(
            verify(
                &s,
                false,
                &delivery(&[("x-hub-signature-256", "md5=00")], b"{}")
            ),
            Err(VerifyError::MalformedSignature { .. })
        ));
        assert!(matches!(
            verify(
                &s,
                false,
                &delivery(&[("x-hub-signature-256", "sha256=xyz")], b"{}")
            ),
            Err(VerifyError::Mismatch {
                source: SignatureMismatch::Malformed(_),
                ..
            })
        ));
    }

    #[test]
    fn sha1_only_when_allowed_and_never_as_fallback() {
        let body: &'static [u8] = b"{\"zen\":\"x\"}";
        let sha1 = format!("sha1={}", hex::encode(hmac(Algorithm::Sha1, b"k", &[body])));
        let s = secrets(&["k"]);
        let only_sha1 = delivery(&[("x-hub-signature", &sha1)], body);
        assert_eq!(
            verify(&s, false, &only_sha1),
            Err(VerifyError::SchemeNotAllowed {
                offered: SHA1_HEADER,
                option: "allow_sha1"
            })
        );
        assert_eq!(verify(&s, true, &only_sha1).unwrap().scheme, SHA1_HEADER);
        let bad256 = delivery(
            &[
                ("x-hub-signature", &sha1),
                ("x-hub-signature-256", &format!("sha256={}", "0".repeat(64))),
            ],
            body,
        );
        assert!(matches!(
            verify(&s, true, &bad256),
            Err(VerifyError::Mismatch {
                header: SHA256_HEADER,
                ..
            })
        ));
    }
}
