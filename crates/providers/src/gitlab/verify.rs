//! `X-Gitlab-Token: <the webhook's secret token>`, compared in constant time with every
//! configured secret.
//!
//! GitLab documents the header in "Webhooks", Secret token / Delivery headers
//! (<https://docs.gitlab.com/user/project/integrations/webhooks/>): the token is sent as is,
//! it is not an HMAC. So there is no test vector, and a changed body is not detected: the
//! token authenticates the sender only. GitLab removes line breaks from the token before
//! sending it (`Gitlab::Utils.remove_line_breaks(hook.token)` in `WebHookService`), so
//! configured secrets are compared the same way.

use hookbridge_core::signature::SignatureMismatch;
use hookbridge_core::{RawDelivery, Secret, Verified, VerifyError};
use sha2::{Digest, Sha256};

pub(crate) const TOKEN_HEADER: &str = "x-gitlab-token";

pub(crate) fn verify(secrets: &[Secret], delivery: &RawDelivery) -> Result<Verified, VerifyError> {
    let header = TOKEN_HEADER;
    // Raw bytes: a token is compared as sent, whatever characters it has.
    let given = delivery
        .headers
        .get(header)
        .ok_or(VerifyError::MissingSignature { header })?
        .as_bytes();
    if given.is_empty() {
        return Err(VerifyError::MalformedSignature {
            header,
            reason: "empty".into(),
        });
    }
    if secrets.is_empty() {
        return Err(VerifyError::Mismatch {
            header,
            source: SignatureMismatch::NoSecret,
        });
    }
    let secret_index = token_index(secrets, given).ok_or(VerifyError::Mismatch {
        header,
        source: SignatureMismatch::NoMatch(secrets.len()),
    })?;
    Ok(Verified {
        scheme: header,
        secret_index,
    })
}

/// The index of the first secret equal to `given` (with the secret's line breaks removed,
/// as GitLab sends it), compared in constant time. Both sides are hashed first, so the
/// comparison is over 32 bytes whatever the lengths and neither the content nor the length of
/// a secret shows in the timing; every secret is compared even after a match.
fn token_index(secrets: &[Secret], given: &[u8]) -> Option<usize> {
    let given = Secret::new(Sha256::digest(given).to_vec());
    let mut found = None;
    for (index, secret) in secrets.iter().enumerate() {
        let mut hasher = Sha256::new();
        for chunk in secret.expose().split(|b| matches!(b, b'\r' | b'\n')) {
            hasher.update(chunk);
        }
        // `Secret`'s equality is constant time (subtle).
        let equal = Secret::new(hasher.finalize().to_vec()) == given;
        if equal && found.is_none() {
            found = Some(index);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn delivery(token: Option<&[u8]>, body: &'static [u8]) -> RawDelivery {
        let mut h = HeaderMap::new();
        if let Some(t) = token {
            h.insert(TOKEN_HEADER, HeaderValue::from_bytes(t).unwrap());
        }
        RawDelivery::new("gitlab", h, body)
    }

    fn secrets(v: &[&str]) -> Vec<Secret> {
        v.iter().map(|s| Secret::new(*s)).collect()
    }

    const BODY: &[u8] = br#"{"object_kind":"push"}"#;

    #[test]
    fn matching_token_verifies() {
        let ok = verify(
            &secrets(&["gl-secret"]),
            &delivery(Some(b"gl-secret"), BODY),
        )
        .unwrap();
        assert_eq!(ok.scheme, TOKEN_HEADER);
        assert_eq!(ok.secret_index, 0);
    }

    #[test]
    fn rotation_second_secret_matches() {
        let ok = verify(
            &secrets(&["new-secret", "gl-secret", "older"]),
            &delivery(Some(b"gl-secret"), BODY),
        )
        .unwrap();
        assert_eq!(ok.secret_index, 1);
    }

    #[test]
    fn wrong_missing_and_malformed_are_told_apart() {
        let s = secrets(&["gl-secret"]);
        assert_eq!(
            verify(&s, &delivery(None, BODY)),
            Err(VerifyError::MissingSignature {
                header: TOKEN_HEADER
            })
        );
        assert_eq!(
            verify(&s, &delivery(Some(b""), BODY)),
            Err(VerifyError::MalformedSignature {
                header: TOKEN_HEADER,
                reason: "empty".into()
            })
        );
        assert_eq!(
            verify(&s, &delivery(Some(b"gl-secreT"), BODY)),
            Err(VerifyError::Mismatch {
                header: TOKEN_HEADER,
                source: SignatureMismatch::NoMatch(1)
            })
        );
        // Prefixes and extensions of the secret are not the secret.
        for near in [&b"gl-secre"[..], b"gl-secret ", b"gl-secretgl-secret"] {
            assert!(verify(&s, &delivery(Some(near), BODY)).is_err());
        }
        // No secret configured (a parser-only provider): nothing verifies.
        assert_eq!(
            verify(&[], &delivery(Some(b"gl-secret"), BODY)),
            Err(VerifyError::Mismatch {
                header: TOKEN_HEADER,
                source: SignatureMismatch::NoSecret
            })
        );
    }

    /// The token does not cover the body: a changed body with the right token verifies.
    /// This is GitLab's scheme, stated here so that nobody mistakes it for a signature.
    #[test]
    fn tampered_body_is_not_detected_by_a_token() {
        let s = secrets(&["gl-secret"]);
        assert!(
            verify(
                &s,
                &delivery(Some(b"gl-secret"), br#"{"object_kind":"tampered"}"#)
            )
            .is_ok()
        );
    }

    #[test]
    fn non_ascii_tokens_and_line_breaks() {
        // GitLab sends the token without the line breaks it may have been saved with.
        let s = vec![Secret::new("gl-secret\n"), Secret::new("line\r\nbreak")];
        assert_eq!(
            verify(&s, &delivery(Some(b"gl-secret"), BODY))
                .unwrap()
                .secret_index,
            0
        );
        assert_eq!(
            verify(&s, &delivery(Some(b"linebreak"), BODY))
                .unwrap()
                .secret_index,
            1
        );
        // Bytes beyond ASCII are compared as bytes.
        let s = vec![Secret::new("clé-secrète")];
        assert!(verify(&s, &delivery(Some("clé-secrète".as_bytes()), BODY)).is_ok());
        assert!(verify(&s, &delivery(Some(b"cl\xe9-secr\xe8te"), BODY)).is_err());
    }
}
