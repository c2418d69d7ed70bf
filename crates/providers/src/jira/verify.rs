//! `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>` for webhooks with a secret,
//! and the `token` query parameter of the webhook URL for unsigned webhooks (and, when
//! configured, in addition to the signature).
//!
//! Atlassian documents the header for Jira Data Center ("Managing webhooks", Securing your
//! webhook: <https://confluence.atlassian.com/adminjiraserver/managing-webhooks-938846912.html>)
//! and for Jira Cloud ("Secure admin webhooks",
//! <https://developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks>) as
//! the WebSub `method=signature` form, `sha256=<hex>`, HMAC-SHA256 keyed with the secret over
//! the request body. Neither page gives a test vector, so the tests below use values computed
//! independently (see `independent_vector`).

use hookbridge_core::signature::{
    Algorithm, Encoding, SignatureMismatch, verify_hmac_any, verify_token_any,
};
use hookbridge_core::{RawDelivery, Secret, Verified, VerifyError};

use crate::common::signature_header;

pub(crate) const SIGNATURE_HEADER: &str = "x-hub-signature";
/// The query parameter of the webhook URL that carries the token.
pub(crate) const TOKEN_PARAM: &str = "token";
/// How the token appears in errors and in [`Verified::scheme`]: it is not a header, but the
/// error variants name where the credential was looked for.
pub(crate) const TOKEN_SCHEME: &str = "token query parameter";

pub(crate) fn verify(
    secrets: &[Secret],
    unsigned: bool,
    token: Option<&Secret>,
    delivery: &RawDelivery,
) -> Result<Verified, VerifyError> {
    if unsigned {
        // `Jira::new` guarantees a token for unsigned endpoints; without one, nothing verifies.
        let token = token.ok_or(VerifyError::Mismatch {
            header: TOKEN_SCHEME,
            source: SignatureMismatch::NoSecret,
        })?;
        check_token(token, delivery)?;
        return Ok(Verified {
            scheme: TOKEN_SCHEME,
            secret_index: 0,
        });
    }
    let verified = check_signature(secrets, delivery)?;
    // A token on a signed endpoint is an extra requirement, never a substitute.
    if let Some(token) = token {
        check_token(token, delivery)?;
    }
    Ok(verified)
}

fn check_signature(secrets: &[Secret], delivery: &RawDelivery) -> Result<Verified, VerifyError> {
    let header = SIGNATURE_HEADER;
    let value = signature_header(delivery, header)?;
    // WebSub form `method=signature`; the value itself is never echoed into the error.
    let (method, hex) =
        value
            .trim()
            .split_once('=')
            .ok_or_else(|| VerifyError::MalformedSignature {
                header,
                reason: "expected `sha256=<hex>`".into(),
            })?;
    if !method.eq_ignore_ascii_case("sha256") {
        return Err(VerifyError::MalformedSignature {
            header,
            reason: "unsupported signature method (Jira signs with sha256)".into(),
        });
    }
    let secret_index = verify_hmac_any(
        Algorithm::Sha256,
        Encoding::Hex,
        secrets,
        &delivery.body,
        hex,
    )
    .map_err(|source| VerifyError::Mismatch { header, source })?;
    Ok(Verified {
        scheme: header,
        secret_index,
    })
}

fn check_token(token: &Secret, delivery: &RawDelivery) -> Result<(), VerifyError> {
    let header = TOKEN_SCHEME;
    let given = delivery
        .query_param(TOKEN_PARAM)
        .ok_or(VerifyError::MissingSignature { header })?;
    if given.is_empty() {
        return Err(VerifyError::MalformedSignature {
            header,
            reason: "empty".into(),
        });
    }
    // Constant time, whatever the lengths (see `verify_token_any`).
    verify_token_any(std::slice::from_ref(token), given.as_bytes())
        .map(|_| ())
        .map_err(|source| VerifyError::Mismatch { header, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use http::HeaderMap;
    use sha2::Sha256;

    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    /// HMAC-SHA256("It's a Secret to Everybody", "Hello, World!"): the same HMAC as GitHub's
    /// documented vector (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation),
    /// which Jira's scheme shares apart from the header name. Atlassian publishes no vector.
    const SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    const TOKEN: &str = "t0k3n-0123456789abcdef";

    fn delivery(headers: &[(&str, &str)], body: &'static [u8], uri: &str) -> RawDelivery {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let mut d = RawDelivery::new("jira", map, body);
        d.uri = uri.parse().unwrap();
        d
    }

    fn secrets(v: &[&str]) -> Vec<Secret> {
        v.iter().map(|s| Secret::new(*s)).collect()
    }

    #[test]
    fn documented_form_verifies() {
        let d = delivery(&[("X-Hub-Signature", SIG)], BODY, "/hooks/jira");
        let ok = verify(&secrets(&[SECRET]), false, None, &d).unwrap();
        assert_eq!(ok.scheme, SIGNATURE_HEADER);
        assert_eq!(ok.secret_index, 0);
        // Upper-case method and hex digits are accepted.
        let upper = format!("SHA256={}", SIG["sha256=".len()..].to_uppercase());
        let d = delivery(&[("x-hub-signature", &upper)], BODY, "/hooks/jira");
        assert!(verify(&secrets(&[SECRET]), false, None, &d).is_ok());
    }

    /// The same check with an HMAC computed here by the `hmac` crate directly over a Jira-like
    /// body, so the test does not rely on the shared `signature::hmac` it is testing.
    #[test]
    fn independent_vector() {
        let body: &'static [u8] =
            br#"{"timestamp":1717577134571,"webhookEvent":"jira:issue_created"}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"jira-secret").unwrap();
        mac.update(body);
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let d = delivery(&[("x-hub-signature", &sig)], body, "/");
        assert!(verify(&secrets(&["jira-secret"]), false, None, &d).is_ok());
    }

    #[test]
    fn rotation_second_secret_matches() {
        let d = delivery(&[("x-hub-signature", SIG)], BODY, "/");
        let ok = verify(&secrets(&["new", SECRET]), false, None, &d).unwrap();
        assert_eq!(ok.secret_index, 1);
    }

    #[test]
    fn tampered_body_and_wrong_secret_fail() {
        let tampered = delivery(&[("x-hub-signature", SIG)], b"Hello, World?", "/");
        assert_eq!(
            verify(&secrets(&[SECRET]), false, None, &tampered),
            Err(VerifyError::Mismatch {
                header: SIGNATURE_HEADER,
                source: SignatureMismatch::NoMatch(1)
            })
        );
        let d = delivery(&[("x-hub-signature", SIG)], BODY, "/");
        assert_eq!(
            verify(&secrets(&["wrong", "also wrong"]), false, None, &d),
            Err(VerifyError::Mismatch {
                header: SIGNATURE_HEADER,
                source: SignatureMismatch::NoMatch(2)
            })
        );
    }

    #[test]
    fn missing_and_malformed_signatures_are_told_apart() {
        let s = secrets(&[SECRET]);
        assert_eq!(
            verify(&s, false, None, &delivery(&[], BODY, "/")),
            Err(VerifyError::MissingSignature {
                header: SIGNATURE_HEADER
            })
        );
        let reason = |value: &str| match verify(
            &s,
            false,
            None,
            &delivery(&[("x-hub-signature", value)], BODY, "/"),
        ) {
            Err(VerifyError::MalformedSignature { header, reason }) => {
                assert_eq!(header, SIGNATURE_HEADER);
                reason
            }
            other => panic!("{value}: {other:?}"),
        };
        assert!(reason("757107ea0eb2").contains("expected"));
        assert!(reason("sha1=757107ea0eb2").contains("unsupported"));
        assert_ne!(reason("757107ea"), reason("sha512=00"));
        assert_eq!(
            verify(
                &s,
                false,
                None,
                &delivery(&[("x-hub-signature", "sha256=xyz")], BODY, "/")
            ),
            Err(VerifyError::Mismatch {
                header: SIGNATURE_HEADER,
                source: SignatureMismatch::Malformed(Encoding::Hex)
            })
        );
        // Not valid text (a non-ASCII byte).
        let mut d = delivery(&[], BODY, "/");
        d.headers.insert(
            SIGNATURE_HEADER,
            http::HeaderValue::from_bytes(b"sha256=\xff").unwrap(),
        );
        assert!(matches!(
            verify(&s, false, None, &d),
            Err(VerifyError::MalformedSignature { reason, .. }) if reason == "not valid text"
        ));
    }

    #[test]
    fn unsigned_endpoint_checks_the_url_token() {
        let token = Secret::new(TOKEN);
        let ok = delivery(&[], BODY, &format!("/hooks/jira?token={TOKEN}"));
        assert_eq!(
            verify(&[], true, Some(&token), &ok).unwrap(),
            Verified {
                scheme: TOKEN_SCHEME,
                secret_index: 0
            }
        );
        // Other query parameters are fine, in any order.
        let ok = delivery(
            &[],
            BODY,
            &format!("/hooks/jira?user_id=x&token={TOKEN}&a=b"),
        );
        assert!(verify(&[], true, Some(&token), &ok).is_ok());

        assert_eq!(
            verify(&[], true, Some(&token), &delivery(&[], BODY, "/hooks/jira")),
            Err(VerifyError::MissingSignature {
                header: TOKEN_SCHEME
            })
        );
        assert!(matches!(
            verify(
                &[],
                true,
                Some(&token),
                &delivery(&[], BODY, "/hooks/jira?token=")
            ),
            Err(VerifyError::MalformedSignature {
                header: TOKEN_SCHEME,
                ..
            })
        ));
        let wrong = format!("/hooks/jira?token={}X", TOKEN);
        assert_eq!(
            verify(&[], true, Some(&token), &delivery(&[], BODY, &wrong)),
            Err(VerifyError::Mismatch {
                header: TOKEN_SCHEME,
                source: SignatureMismatch::NoMatch(1)
            })
        );
        // A prefix of the token is not the token.
        let prefix = format!("/hooks/jira?token={}", &TOKEN[..10]);
        assert!(verify(&[], true, Some(&token), &delivery(&[], BODY, &prefix)).is_err());
        // Without a token configured, an unsigned endpoint accepts nothing.
        assert!(matches!(
            verify(&[], true, None, &ok),
            Err(VerifyError::Mismatch {
                source: SignatureMismatch::NoSecret,
                ..
            })
        ));
    }

    #[test]
    fn token_on_a_signed_endpoint_is_required_too() {
        let token = Secret::new(TOKEN);
        let s = secrets(&[SECRET]);
        let both = delivery(
            &[("x-hub-signature", SIG)],
            BODY,
            &format!("/hooks/jira?token={TOKEN}"),
        );
        assert_eq!(
            verify(&s, false, Some(&token), &both).unwrap().scheme,
            SIGNATURE_HEADER
        );
        let no_token = delivery(&[("x-hub-signature", SIG)], BODY, "/hooks/jira");
        assert_eq!(
            verify(&s, false, Some(&token), &no_token),
            Err(VerifyError::MissingSignature {
                header: TOKEN_SCHEME
            })
        );
        // The token never replaces the signature.
        let no_sig = delivery(&[], BODY, &format!("/hooks/jira?token={TOKEN}"));
        assert_eq!(
            verify(&s, false, Some(&token), &no_sig),
            Err(VerifyError::MissingSignature {
                header: SIGNATURE_HEADER
            })
        );
    }

    #[test]
    fn no_secret_never_verifies() {
        let d = delivery(&[("x-hub-signature", SIG)], BODY, "/");
        assert_eq!(
            verify(&[], false, None, &d),
            Err(VerifyError::Mismatch {
                header: SIGNATURE_HEADER,
                source: SignatureMismatch::NoSecret
            })
        );
    }

    #[test]
    fn token_comparison() {
        let tokens = secrets(&["first-token-value", "second-token-value"]);
        // The comparison `check_token` relies on, with its `Option` view of the result.
        let token_index = |tokens: &[Secret], given: &[u8]| verify_token_any(tokens, given).ok();
        assert_eq!(token_index(&tokens, b"second-token-value"), Some(1));
        assert_eq!(token_index(&tokens, b"first-token-value"), Some(0));
        assert_eq!(token_index(&tokens, b"first-token-valu"), None);
        assert_eq!(token_index(&tokens, b""), None);
        assert_eq!(token_index(&[], b"x"), None);
    }
}
