//! Travis CI's signature: the `Signature` header is the base64 of an RSA-SHA1 (PKCS#1 v1.5)
//! signature of the `payload` form field's value (the JSON text, not the whole form body),
//! made with Travis CI's private key; it is checked against the public key published at
//! `{api}/config` as `config.notifications.webhook.public_key`. See "Verifying Webhook
//! requests" in <https://docs.travis-ci.com/user/notifications/#configuring-webhook-notifications>.
//!
//! The legacy scheme, `Authorization: <hex SHA-256 of repo slug + user token>` with the slug in
//! `Travis-Repo-Slug`, authenticates the sender but not the body. It is accepted only where the
//! endpoint sets `allow_legacy_authorization`, and only when no `Signature` is offered (a
//! failing signature never falls back to it).

use base64::Engine as _;
use hookbridge_core::signature::{Encoding, SignatureMismatch};
use hookbridge_core::{RawDelivery, Secret, Verified, VerifyError};
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use super::identify::{PayloadFieldError, payload_field};
use crate::common::{malformed_signature, signature_header};

pub(crate) const SIGNATURE_HEADER: &str = "signature";
pub(crate) const AUTHORIZATION_HEADER: &str = "authorization";
pub(crate) const SLUG_HEADER: &str = "travis-repo-slug";

/// `key`: Travis CI's public key, None until it is loaded. `legacy_token`: the user token,
/// only when the endpoint allows the legacy scheme.
pub(crate) fn verify(
    key: Option<&RsaPublicKey>,
    legacy_token: Option<&Secret>,
    delivery: &RawDelivery,
) -> Result<Verified, VerifyError> {
    if delivery.headers.contains_key(SIGNATURE_HEADER) {
        return check_signature(key, delivery);
    }
    if delivery.headers.contains_key(AUTHORIZATION_HEADER) {
        let Some(token) = legacy_token else {
            return Err(VerifyError::SchemeNotAllowed {
                offered: AUTHORIZATION_HEADER,
                option: "allow_legacy_authorization",
            });
        };
        return check_legacy(token, delivery);
    }
    Err(VerifyError::MissingSignature {
        header: SIGNATURE_HEADER,
    })
}

fn check_signature(
    key: Option<&RsaPublicKey>,
    delivery: &RawDelivery,
) -> Result<Verified, VerifyError> {
    // No key yet (still being fetched from the Travis API): nothing can be verified, and
    // nothing is accepted unverified.
    let key = key.ok_or(VerifyError::NotReady {
        reason: "the Travis CI public key is not loaded yet",
    })?;
    let text = signature_header(delivery, SIGNATURE_HEADER)?;
    // Ruby's Base64.encode64 wraps lines; a header cannot carry the newlines, but tolerate
    // any whitespace left inside.
    let compact: String = text.split_ascii_whitespace().collect();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| malformed_signature(SIGNATURE_HEADER, "not base64"))?;
    if signature.len() != rsa::traits::PublicKeyParts::size(key) {
        return Err(VerifyError::Mismatch {
            header: SIGNATURE_HEADER,
            source: SignatureMismatch::Malformed(Encoding::Base64),
        });
    }
    let payload =
        payload_field(&delivery.body).map_err(|e| missing_payload(e, SIGNATURE_HEADER))?;
    let digest = Sha1::digest(&payload);
    key.verify(Pkcs1v15Sign::new::<Sha1>(), &digest, &signature)
        .map_err(|_| VerifyError::Mismatch {
            header: SIGNATURE_HEADER,
            source: SignatureMismatch::NoMatch(1),
        })?;
    Ok(Verified {
        scheme: SIGNATURE_HEADER,
        secret_index: 0,
    })
}

fn check_legacy(token: &Secret, delivery: &RawDelivery) -> Result<Verified, VerifyError> {
    let slug = delivery
        .header(SLUG_HEADER)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(VerifyError::MissingSignature {
            header: SLUG_HEADER,
        })?;
    let given = delivery
        .header(AUTHORIZATION_HEADER)
        .and_then(|v| hex::decode(v.trim()).ok())
        .filter(|v| v.len() == 32)
        .ok_or(VerifyError::Mismatch {
            header: AUTHORIZATION_HEADER,
            source: SignatureMismatch::Malformed(Encoding::Hex),
        })?;
    let expected = legacy_digest(slug, token);
    // Secret's equality is constant time.
    if Secret::new(expected) != Secret::new(given) {
        return Err(VerifyError::Mismatch {
            header: AUTHORIZATION_HEADER,
            source: SignatureMismatch::NoMatch(1),
        });
    }
    // The legacy scheme does not cover the body; at least hold the body to the repository
    // that the token vouches for.
    let payload =
        payload_field(&delivery.body).map_err(|e| missing_payload(e, AUTHORIZATION_HEADER))?;
    let repository = serde_json::from_slice::<serde_json::Value>(&payload)
        .ok()
        .and_then(|json| {
            let owner = json.pointer("/repository/owner_name")?.as_str()?.to_owned();
            let name = json.pointer("/repository/name")?.as_str()?.to_owned();
            Some(format!("{owner}/{name}"))
        });
    if repository.as_deref() != Some(slug) {
        return Err(malformed_signature(
            SLUG_HEADER,
            "does not name the repository of the payload",
        ));
    }
    Ok(Verified {
        scheme: AUTHORIZATION_HEADER,
        secret_index: 0,
    })
}

/// SHA-256 of the repository slug followed by the user token, as Travis CI computes its
/// `Authorization` header.
pub(crate) fn legacy_digest(slug: &str, token: &Secret) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(slug.as_bytes());
    hasher.update(token.expose());
    hasher.finalize().to_vec()
}

fn missing_payload(e: PayloadFieldError, header: &'static str) -> VerifyError {
    malformed_signature(
        header,
        &format!("nothing to check it against: {}", e.describe()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use rsa::pkcs8::DecodePublicKey;

    const SPKI: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/travis/TEST-ONLY-travis-public-key.spki.pem"
    ));
    const UNRELATED: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/travis/TEST-ONLY-unrelated-public-key.spki.pem"
    ));

    /// The JSON text that [`OPENSSL_SIGNATURE`] signs.
    const PAYLOAD: &str = r#"{"id":1,"state":"passed","repository":{"id":2,"name":"minimal","owner_name":"svenfuchs"}}"#;
    /// The same JSON form-encoded, as Travis CI posts it.
    const FORM: &str = "payload=%7B%22id%22%3A1%2C%22state%22%3A%22passed%22%2C%22repository%22%3A%7B%22id%22%3A2%2C%22name%22%3A%22minimal%22%2C%22owner_name%22%3A%22svenfuchs%22%7D%7D";
    /// Made independently of this crate, with OpenSSL and the test key:
    /// `printf %s "$PAYLOAD" | openssl dgst -sha1 -sign TEST-ONLY-travis-signing-key.pem | base64 -w0`.
    /// Travis CI publishes no test vector (it signs with its own private key), so OpenSSL,
    /// which Travis's Ruby signer uses too, stands in as the reference.
    const OPENSSL_SIGNATURE: &str = "Zfh7q22h4qVnhmkpuVirm1E+7F1b9AOix2Z57or9hUwF3XEhh9XtPip3ytbCxGk/Fhc2QLbN8WemeRLDEO3ByZyNTgQRfzbwDK1PD3Ugjxpt/IJThQaKLl++9oSc7RrmjNgMCCdQm73FzUlc+TqoHDaTT8wahUnDqEIEUi3odrbl3K0UsFo56TujMqx4RHD/9feyZAOjf54npwxih1FRBY2oLdf3DZt4ya9bqXosfr6hio2Ngel7rez4f8/vaCo8RTVrJHQJPou3WIL+7Lx3oPD6OvuvqAHIaQfayFQhWIVpV/cmmL5DSFZlNS3YPzDiBQS+BNfYhZB4R5oPwq+Uog==";

    fn key() -> RsaPublicKey {
        RsaPublicKey::from_public_key_pem(SPKI).unwrap()
    }

    fn delivery(headers: &[(&str, &str)], body: &str) -> RawDelivery {
        let mut map = HeaderMap::new();
        map.insert(
            "content-type",
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        RawDelivery::new("travis", map, body.to_owned())
    }

    #[test]
    fn openssl_signature_verifies() {
        let d = delivery(&[("Signature", OPENSSL_SIGNATURE)], FORM);
        let ok = verify(Some(&key()), None, &d).unwrap();
        assert_eq!(ok.scheme, SIGNATURE_HEADER);
        assert_eq!(ok.secret_index, 0);
        assert_eq!(payload_field(FORM.as_bytes()).unwrap(), PAYLOAD.as_bytes());
    }

    #[test]
    fn the_payload_value_is_signed_not_the_form_body() {
        // Same JSON, other fields around it and `+` for nothing: still the same payload.
        let form = format!("x=1&{FORM}&y=%20");
        let d = delivery(&[("Signature", OPENSSL_SIGNATURE)], &form);
        assert!(verify(Some(&key()), None, &d).is_ok());
    }

    #[test]
    fn tampered_payload_fails() {
        let tampered = FORM.replace("passed", "failed");
        let d = delivery(&[("Signature", OPENSSL_SIGNATURE)], &tampered);
        assert_eq!(
            verify(Some(&key()), None, &d),
            Err(VerifyError::Mismatch {
                header: SIGNATURE_HEADER,
                source: SignatureMismatch::NoMatch(1)
            })
        );
    }

    #[test]
    fn other_key_fails() {
        let other = RsaPublicKey::from_public_key_pem(UNRELATED).unwrap();
        let d = delivery(&[("Signature", OPENSSL_SIGNATURE)], FORM);
        assert_eq!(
            verify(Some(&other), None, &d),
            Err(VerifyError::Mismatch {
                header: SIGNATURE_HEADER,
                source: SignatureMismatch::NoMatch(1)
            })
        );
    }

    #[test]
    fn no_key_loaded_yet_fails_distinctly() {
        let d = delivery(&[("Signature", OPENSSL_SIGNATURE)], FORM);
        assert_eq!(
            verify(None, None, &d),
            Err(VerifyError::NotReady {
                reason: "the Travis CI public key is not loaded yet"
            })
        );
    }

    #[test]
    fn missing_and_malformed() {
        let k = key();
        assert_eq!(
            verify(Some(&k), None, &delivery(&[], FORM)),
            Err(VerifyError::MissingSignature {
                header: SIGNATURE_HEADER
            })
        );
        match verify(
            Some(&k),
            None,
            &delivery(&[("signature", "not*base64")], FORM),
        ) {
            Err(VerifyError::MalformedSignature { header, reason }) => {
                assert_eq!(header, SIGNATURE_HEADER);
                assert_eq!(reason, "not base64");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            verify(Some(&k), None, &delivery(&[("signature", "AAAA")], FORM)),
            Err(VerifyError::Mismatch {
                header: SIGNATURE_HEADER,
                source: SignatureMismatch::Malformed(Encoding::Base64)
            })
        );
        match verify(
            Some(&k),
            None,
            &delivery(&[("signature", OPENSSL_SIGNATURE)], "other=1"),
        ) {
            Err(VerifyError::MalformedSignature { header, reason }) => {
                assert_eq!(header, SIGNATURE_HEADER);
                assert!(reason.contains("no `payload`"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// The legacy `Authorization` value for slug `svenfuchs/minimal` and token `secret-token`,
    /// made independently: `printf %s 'svenfuchs/minimalsecret-token' | sha256sum`.
    const LEGACY_AUTHORIZATION: &str =
        "615d187ffa8ec52ad6c45382c0ec67a3da4113343803d57e158510ff7870f95d";

    #[test]
    fn legacy_authorization_only_when_allowed() {
        let token = Secret::new("secret-token");
        let d = delivery(
            &[
                ("Authorization", LEGACY_AUTHORIZATION),
                ("Travis-Repo-Slug", "svenfuchs/minimal"),
            ],
            FORM,
        );
        assert_eq!(
            verify(Some(&key()), None, &d),
            Err(VerifyError::SchemeNotAllowed {
                offered: AUTHORIZATION_HEADER,
                option: "allow_legacy_authorization"
            })
        );
        let ok = verify(None, Some(&token), &d).unwrap();
        assert_eq!(ok.scheme, AUTHORIZATION_HEADER);
        assert_eq!(
            hex::encode(legacy_digest("svenfuchs/minimal", &token)),
            LEGACY_AUTHORIZATION
        );

        // Wrong token, missing slug, malformed value, slug of another repository.
        assert_eq!(
            verify(None, Some(&Secret::new("other-token")), &d),
            Err(VerifyError::Mismatch {
                header: AUTHORIZATION_HEADER,
                source: SignatureMismatch::NoMatch(1)
            })
        );
        let no_slug = delivery(&[("Authorization", LEGACY_AUTHORIZATION)], FORM);
        assert_eq!(
            verify(None, Some(&token), &no_slug),
            Err(VerifyError::MissingSignature {
                header: SLUG_HEADER
            })
        );
        let bad = delivery(
            &[
                ("Authorization", "xyz"),
                ("Travis-Repo-Slug", "svenfuchs/minimal"),
            ],
            FORM,
        );
        assert_eq!(
            verify(None, Some(&token), &bad),
            Err(VerifyError::Mismatch {
                header: AUTHORIZATION_HEADER,
                source: SignatureMismatch::Malformed(Encoding::Hex)
            })
        );
        let other_repo = FORM.replace("minimal", "maximal");
        let moved = delivery(
            &[
                ("Authorization", LEGACY_AUTHORIZATION),
                ("Travis-Repo-Slug", "svenfuchs/minimal"),
            ],
            &other_repo,
        );
        assert!(matches!(
            verify(None, Some(&token), &moved),
            Err(VerifyError::MalformedSignature {
                header: SLUG_HEADER,
                ..
            })
        ));
    }

    #[test]
    fn a_failing_signature_never_falls_back_to_legacy() {
        let token = Secret::new("secret-token");
        let tampered = FORM.replace("passed", "failed");
        let d = delivery(
            &[
                ("Signature", OPENSSL_SIGNATURE),
                ("Authorization", LEGACY_AUTHORIZATION),
                ("Travis-Repo-Slug", "svenfuchs/minimal"),
            ],
            &tampered,
        );
        assert!(matches!(
            verify(Some(&key()), Some(&token), &d),
            Err(VerifyError::Mismatch {
                header: SIGNATURE_HEADER,
                ..
            })
        ));
    }
}
