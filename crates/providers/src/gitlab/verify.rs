//! `X-Gitlab-Token: <the webhook's secret token>`, compared in constant time with every
//! configured secret.
//!
//! GitLab documents the header in "Webhooks", Secret token / Delivery headers
//! (<https://docs.gitlab.com/user/project/integrations/webhooks/>): the token is sent as is,
//! it is not an HMAC. So there is no test vector, and a changed body is not detected: the
//! token authenticates the sender only. GitLab removes line breaks from the token before
//! sending it (`Gitlab::Utils.remove_line_breaks(hook.token)` in `WebHookService`), so
//! configured secrets are compared the same way.

use hookbridge_core::signature::verify_token_any;
use hookbridge_core::{RawDelivery, Secret, Verified, VerifyError};

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
    // Compared as GitLab sends them; constant time, every secret tried (see `verify_token_any`).
    let sent: Vec<Secret> = secrets.iter().map(as_sent).collect();
    let secret_index = verify_token_any(&sent, given)
        .map_err(|source| VerifyError::Mismatch { header, source })?;
    Ok(Verified {
        scheme: header,
        secret_index,
    })
}

/// The token as GitLab sends it: the configured secret without its line breaks.
pub(crate) fn as_sent(secret: &Secret) -> Secret {
    Secret::new(
        secret
            .expose()
            .iter()
            .copied()
            .filter(|b| !matches!(b, b'\r' | b'\n'))
            .collect::<Vec<u8>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookbridge_core::signature::SignatureMismatch;
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
