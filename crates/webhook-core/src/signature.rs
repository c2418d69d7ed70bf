//! Signature primitives shared by the providers: HMAC over the raw body with SHA-256 or
//! SHA-1, hex or base64 encoded, compared in constant time against every configured secret
//! (so a secret can be rotated without dropping deliveries), the same comparison for shared
//! tokens that senders present as they are (no HMAC), and a timestamp tolerance check for
//! schemes that sign a timestamp.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use crate::Secret;

/// The hash function under an HMAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA1, only for schemes that still use it.
    Sha1,
}

/// How a signature is written in its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Lower- or upper-case hexadecimal.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoding::Hex => "hex",
            Encoding::Base64 => "base64",
        })
    }
}

/// Why a signature did not match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureMismatch {
    /// The signature is not valid hex or base64, or has the wrong length.
    #[error("signature is not valid {0} of the expected length")]
    Malformed(Encoding),
    /// No configured secret produced this signature.
    #[error("signature does not match any of the {0} configured secret(s)")]
    NoMatch(usize),
    /// No secret is configured at all.
    #[error("no secret is configured")]
    NoSecret,
}

/// Computes the HMAC of `message` (the concatenation of `parts`) under `key`.
///
/// ```
/// use hookbridge_core::signature::{hmac, Algorithm};
/// let mac = hmac(Algorithm::Sha256, b"It's a Secret to Everybody", &[b"Hello, World!"]);
/// assert_eq!(hex::encode(mac), "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
/// ```
pub fn hmac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
            .expect("HMAC accepts keys of any length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
    }
}

/// Decodes a signature as written in a header.
pub fn decode(encoding: Encoding, text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    match encoding {
        Encoding::Hex => hex::decode(text).ok(),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.decode(text).ok(),
    }
}

/// Checks `signature` against the HMAC of the concatenated `parts` under each secret in turn
/// and returns the index of the first secret that matches.
///
/// Every comparison is constant time. All secrets are tried even after a match would be
/// found, so the time taken does not reveal which secret matched.
pub fn verify_hmac_parts_any(
    algorithm: Algorithm,
    encoding: Encoding,
    secrets: &[Secret],
    parts: &[&[u8]],
    signature: &str,
) -> Result<usize, SignatureMismatch> {
    if secrets.is_empty() {
        return Err(SignatureMismatch::NoSecret);
    }
    let expected_len = match algorithm {
        Algorithm::Sha256 => 32,
        Algorithm::Sha1 => 20,
    };
    let given = decode(encoding, signature)
        .filter(|g| g.len() == expected_len)
        .ok_or(SignatureMismatch::Malformed(encoding))?;
    let mut found = None;
    for (index, secret) in secrets.iter().enumerate() {
        let mac = hmac(algorithm, secret.expose(), parts);
        if bool::from(mac.ct_eq(&given)) && found.is_none() {
            found = Some(index);
        }
    }
    found.ok_or(SignatureMismatch::NoMatch(secrets.len()))
}

/// [`verify_hmac_parts_any`] over a single message.
pub fn verify_hmac_any(
    algorithm: Algorithm,
    encoding: Encoding,
    secrets: &[Secret],
    message: &[u8],
    signature: &str,
) -> Result<usize, SignatureMismatch> {
    verify_hmac_parts_any(algorithm, encoding, secrets, &[message], signature)
}

/// Checks a shared token presented as it is (a header or URL parameter that carries the
/// secret itself, not an HMAC) against each secret in turn and returns the index of the first
/// secret equal to it.
///
/// Both sides are hashed with SHA-256 first and the digests compared in constant time, so the
/// comparison is over 32 bytes whatever the lengths: neither the content nor the length of a
/// secret shows in the time taken. All secrets are tried even after a match would be found,
/// so the time taken does not reveal which secret matched either. An empty token matches
/// nothing, not even an empty secret.
///
/// ```
/// use hookbridge_core::signature::{verify_token_any, SignatureMismatch};
/// use hookbridge_core::Secret;
///
/// let secrets = [Secret::new("old-token"), Secret::new("new-token")];
/// assert_eq!(verify_token_any(&secrets, b"new-token"), Ok(1));
/// assert_eq!(
///     verify_token_any(&secrets, b"new-toke"),
///     Err(SignatureMismatch::NoMatch(2))
/// );
/// assert_eq!(verify_token_any(&[], b"new-token"), Err(SignatureMismatch::NoSecret));
/// ```
pub fn verify_token_any(secrets: &[Secret], presented: &[u8]) -> Result<usize, SignatureMismatch> {
    if secrets.is_empty() {
        return Err(SignatureMismatch::NoSecret);
    }
    let given = Sha256::digest(presented);
    let mut found = None;
    for (index, secret) in secrets.iter().enumerate() {
        let expected = Sha256::digest(secret.expose());
        let equal = bool::from(expected.ct_eq(&given));
        if equal && !presented.is_empty() && found.is_none() {
            found = Some(index);
        }
    }
    found.ok_or(SignatureMismatch::NoMatch(secrets.len()))
}

/// A signed timestamp outside the allowed window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("timestamp is {skew_seconds} s away from now, more than the {tolerance_seconds} s allowed")]
pub struct TimestampOutOfTolerance {
    /// Signed distance from now in seconds (negative: in the past).
    pub skew_seconds: i64,
    /// The allowed distance in seconds.
    pub tolerance_seconds: i64,
}

/// Checks that a signed timestamp is within `tolerance` of `now`, in either direction, so a
/// captured delivery cannot be replayed later.
///
/// ```
/// use hookbridge_core::signature::check_timestamp;
/// use time::{Duration, OffsetDateTime};
/// let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
/// assert!(check_timestamp(1_700_000_100, now, Duration::minutes(5)).is_ok());
/// assert!(check_timestamp(1_699_999_000, now, Duration::minutes(5)).is_err());
/// ```
pub fn check_timestamp(
    signed_unix_seconds: i64,
    now: OffsetDateTime,
    tolerance: Duration,
) -> Result<(), TimestampOutOfTolerance> {
    let skew = signed_unix_seconds.saturating_sub(now.unix_timestamp());
    let tolerance_seconds = tolerance.whole_seconds();
    if skew.unsigned_abs() > tolerance_seconds.unsigned_abs() {
        return Err(TimestampOutOfTolerance {
            skew_seconds: skew,
            tolerance_seconds,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(values: &[&str]) -> Vec<Secret> {
        values.iter().map(|v| Secret::new(*v)).collect()
    }

    // GitHub's documented test values ("Validating webhook deliveries").
    const GH_SECRET: &str = "It's a Secret to Everybody";
    const GH_BODY: &[u8] = b"Hello, World!";
    const GH_SIG: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_documented_vector_verifies() {
        let s = secrets(&[GH_SECRET]);
        assert_eq!(
            verify_hmac_any(Algorithm::Sha256, Encoding::Hex, &s, GH_BODY, GH_SIG),
            Ok(0)
        );
        let upper = GH_SIG.to_uppercase();
        assert_eq!(
            verify_hmac_any(Algorithm::Sha256, Encoding::Hex, &s, GH_BODY, &upper),
            Ok(0)
        );
    }

    #[test]
    fn rotation_tries_every_secret() {
        let s = secrets(&["old", GH_SECRET, "newer"]);
        assert_eq!(
            verify_hmac_any(Algorithm::Sha256, Encoding::Hex, &s, GH_BODY, GH_SIG),
            Ok(1)
        );
    }

    #[test]
    fn mismatch_and_malformed_are_told_apart() {
        let s = secrets(&["wrong"]);
        assert_eq!(
            verify_hmac_any(Algorithm::Sha256, Encoding::Hex, &s, GH_BODY, GH_SIG),
            Err(SignatureMismatch::NoMatch(1))
        );
        assert_eq!(
            verify_hmac_any(Algorithm::Sha256, Encoding::Hex, &s, GH_BODY, "zz"),
            Err(SignatureMismatch::Malformed(Encoding::Hex))
        );
        // A SHA-1 length signature offered for SHA-256 is malformed, not a mismatch.
        assert_eq!(
            verify_hmac_any(
                Algorithm::Sha256,
                Encoding::Hex,
                &s,
                GH_BODY,
                &"00".repeat(20)
            ),
            Err(SignatureMismatch::Malformed(Encoding::Hex))
        );
        assert_eq!(
            verify_hmac_any(Algorithm::Sha256, Encoding::Hex, &[], GH_BODY, GH_SIG),
            Err(SignatureMismatch::NoSecret)
        );
    }

    #[test]
    fn base64_and_sha1() {
        let s = secrets(&["key"]);
        let mac = hmac(
            Algorithm::Sha1,
            b"key",
            &[b"The quick brown fox ", b"jumps over the lazy dog"],
        );
        // RFC 2202-style well-known value for HMAC-SHA1("key", "The quick brown fox jumps over the lazy dog").
        assert_eq!(
            hex::encode(&mac),
            "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9"
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(&mac);
        assert_eq!(
            verify_hmac_parts_any(
                Algorithm::Sha1,
                Encoding::Base64,
                &s,
                &[b"The quick brown fox jumps over the lazy dog"],
                &b64
            ),
            Ok(0)
        );
    }

    #[test]
    fn token_matches_the_second_secret() {
        let s = secrets(&["first-token-value", "second-token-value", "third"]);
        assert_eq!(verify_token_any(&s, b"second-token-value"), Ok(1));
        assert_eq!(verify_token_any(&s, b"first-token-value"), Ok(0));
        // The same secret twice: the first is reported.
        let twice = secrets(&["other", "same", "same"]);
        assert_eq!(verify_token_any(&twice, b"same"), Ok(1));
    }

    #[test]
    fn token_mismatch() {
        let s = secrets(&["first-token-value", "second-token-value"]);
        // Prefixes, extensions, case and bytes beyond ASCII are all different tokens.
        for wrong in [
            &b"first-token-valu"[..],
            b"first-token-value ",
            b"first-token-valuefirst-token-value",
            b"FIRST-TOKEN-VALUE",
            b"first-token-value\xff",
        ] {
            assert_eq!(
                verify_token_any(&s, wrong),
                Err(SignatureMismatch::NoMatch(2))
            );
        }
        assert_eq!(
            verify_token_any(&s, b""),
            Err(SignatureMismatch::NoMatch(2))
        );
        // An empty token never matches, even an empty secret.
        assert_eq!(
            verify_token_any(&secrets(&[""]), b""),
            Err(SignatureMismatch::NoMatch(1))
        );
    }

    #[test]
    fn token_without_secret() {
        assert_eq!(
            verify_token_any(&[], b"x"),
            Err(SignatureMismatch::NoSecret)
        );
        assert_eq!(verify_token_any(&[], b""), Err(SignatureMismatch::NoSecret));
    }

    #[test]
    fn timestamp_tolerance_both_directions() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let tol = Duration::seconds(300);
        assert!(check_timestamp(1_000_300, now, tol).is_ok());
        assert!(check_timestamp(999_700, now, tol).is_ok());
        assert_eq!(
            check_timestamp(999_699, now, tol),
            Err(TimestampOutOfTolerance {
                skew_seconds: -301,
                tolerance_seconds: 300
            })
        );
        assert!(check_timestamp(1_000_301, now, tol).is_err());
        assert!(check_timestamp(i64::MIN, now, tol).is_err());
    }
}
