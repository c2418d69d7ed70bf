//! `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{X-Slack-Request-Timestamp}:{raw body}">`
//! under the app's signing secret, with the timestamp within a tolerance of now
//! (<https://api.slack.com/authentication/verifying-requests-from-slack>).
//!
//! The timestamp is signed, so a captured request cannot be replayed once it is older than the
//! tolerance (five minutes by default, as Slack recommends); inside it, the dedup key stops a
//! replay. The signature is computed over the timestamp exactly as sent and the raw body bytes,
//! whatever the content type (JSON events, form-encoded interactivity and slash commands).

use hookbridge_core::signature::{Algorithm, Encoding, check_timestamp, verify_hmac_parts_any};
use hookbridge_core::{RawDelivery, Secret, Verified, VerifyError};
use time::{Duration, OffsetDateTime};

use crate::common::{malformed_signature, signature_header};

pub(crate) const SIGNATURE_HEADER: &str = "x-slack-signature";
pub(crate) const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
const PREFIX: &str = "v0=";

pub(crate) fn verify(
    secrets: &[Secret],
    tolerance: Duration,
    delivery: &RawDelivery,
    now: OffsetDateTime,
) -> Result<Verified, VerifyError> {
    for header in [SIGNATURE_HEADER, TIMESTAMP_HEADER] {
        if !delivery.headers.contains_key(header) {
            return Err(VerifyError::MissingSignature { header });
        }
    }
    let timestamp = signature_header(delivery, TIMESTAMP_HEADER)?;
    // Unix seconds as digits only: what is signed is this text, so no sign, space or exponent
    // that a lenient parser would accept may differ from what Slack signed.
    let seconds = Some(timestamp)
        .filter(|t| !t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| malformed_signature(TIMESTAMP_HEADER, "not a Unix time in seconds"))?;
    let signature = signature_header(delivery, SIGNATURE_HEADER)?;
    let hex = signature
        .trim()
        .strip_prefix(PREFIX)
        .ok_or_else(|| malformed_signature(SIGNATURE_HEADER, "expected the prefix v0="))?;
    // The cheap check first: a stale request is refused without computing any HMAC.
    check_timestamp(seconds, now, tolerance)?;
    let secret_index = verify_hmac_parts_any(
        Algorithm::Sha256,
        Encoding::Hex,
        secrets,
        &[b"v0:", timestamp.as_bytes(), b":", &delivery.body],
        hex,
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
    use hookbridge_core::signature::{SignatureMismatch, TimestampOutOfTolerance};
    use http::HeaderMap;

    // The worked example of Slack's "Verifying requests from Slack"
    // (https://api.slack.com/authentication/verifying-requests-from-slack, also at
    // https://docs.slack.dev/authentication/verifying-requests-from-slack): a slash command.
    const DOC_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const DOC_TIMESTAMP: &str = "1531420618";
    const DOC_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOC_SIGNATURE: &str =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    const TOLERANCE: Duration = Duration::minutes(5);

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).unwrap()
    }

    /// The documented request's own time.
    fn doc_now() -> OffsetDateTime {
        at(1531420618)
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
        RawDelivery::new("slack", map, body.as_bytes().to_vec())
    }

    fn doc_delivery() -> RawDelivery {
        delivery(
            &[
                ("X-Slack-Request-Timestamp", DOC_TIMESTAMP),
                ("X-Slack-Signature", DOC_SIGNATURE),
            ],
            DOC_BODY,
        )
    }

    fn secrets(v: &[&str]) -> Vec<Secret> {
        v.iter().map(|s| Secret::new(*s)).collect()
    }

    #[test]
    fn documented_test_vector() {
        let ok = verify(
            &secrets(&[DOC_SECRET]),
            TOLERANCE,
            &doc_delivery(),
            doc_now(),
        )
        .unwrap();
        assert_eq!(ok.scheme, SIGNATURE_HEADER);
        assert_eq!(ok.secret_index, 0);
        // Still fresh at the edge of the tolerance, on either side.
        for now in [1531420618 + 300, 1531420618 - 300] {
            assert!(verify(&secrets(&[DOC_SECRET]), TOLERANCE, &doc_delivery(), at(now)).is_ok());
        }
    }

    #[test]
    fn rotation_second_secret_matches() {
        let ok = verify(
            &secrets(&["the new secret", DOC_SECRET]),
            TOLERANCE,
            &doc_delivery(),
            doc_now(),
        )
        .unwrap();
        assert_eq!(ok.secret_index, 1);
    }

    #[test]
    fn tampered_body_and_wrong_secret() {
        let mut tampered = doc_delivery();
        tampered.body = DOC_BODY
            .replace("roadrunner", "wilecoyote")
            .into_bytes()
            .into();
        let mismatch = Err(VerifyError::Mismatch {
            header: SIGNATURE_HEADER,
            source: SignatureMismatch::NoMatch(1),
        });
        assert_eq!(
            verify(&secrets(&[DOC_SECRET]), TOLERANCE, &tampered, doc_now()),
            mismatch
        );
        assert_eq!(
            verify(&secrets(&["wrong"]), TOLERANCE, &doc_delivery(), doc_now()),
            mismatch
        );
        // The timestamp is signed: moving it (within the tolerance) breaks the signature.
        let moved = delivery(
            &[
                ("X-Slack-Request-Timestamp", "1531420619"),
                ("X-Slack-Signature", DOC_SIGNATURE),
            ],
            DOC_BODY,
        );
        assert_eq!(
            verify(&secrets(&[DOC_SECRET]), TOLERANCE, &moved, doc_now()),
            mismatch
        );
    }

    #[test]
    fn stale_and_future_timestamps() {
        let s = secrets(&[DOC_SECRET]);
        assert_eq!(
            verify(&s, TOLERANCE, &doc_delivery(), at(1531420618 + 301)),
            Err(VerifyError::Stale(TimestampOutOfTolerance {
                skew_seconds: -301,
                tolerance_seconds: 300
            }))
        );
        assert!(matches!(
            verify(&s, TOLERANCE, &doc_delivery(), at(1531420618 - 301)),
            Err(VerifyError::Stale(_))
        ));
        // Today, the documented request is a replay.
        assert!(matches!(
            verify(&s, TOLERANCE, &doc_delivery(), OffsetDateTime::now_utc()),
            Err(VerifyError::Stale(_))
        ));
        // A wider tolerance is a choice of the endpoint.
        assert!(
            verify(
                &s,
                Duration::minutes(10),
                &doc_delivery(),
                at(1531420618 + 301)
            )
            .is_ok()
        );
    }

    #[test]
    fn missing_and_malformed_headers() {
        let s = secrets(&[DOC_SECRET]);
        let check = |headers: &[(&str, &str)]| {
            verify(&s, TOLERANCE, &delivery(headers, DOC_BODY), doc_now())
        };
        assert_eq!(
            check(&[("X-Slack-Request-Timestamp", DOC_TIMESTAMP)]),
            Err(VerifyError::MissingSignature {
                header: SIGNATURE_HEADER
            })
        );
        assert_eq!(
            check(&[("X-Slack-Signature", DOC_SIGNATURE)]),
            Err(VerifyError::MissingSignature {
                header: TIMESTAMP_HEADER
            })
        );
        for bad_time in [
            "",
            "yesterday",
            "-1531420618",
            "+1531420618",
            "1531420618.5",
            "1e9",
        ] {
            assert!(
                matches!(
                    check(&[
                        ("X-Slack-Request-Timestamp", bad_time),
                        ("X-Slack-Signature", DOC_SIGNATURE)
                    ]),
                    Err(VerifyError::MalformedSignature {
                        header: TIMESTAMP_HEADER,
                        ..
                    })
                ),
                "{bad_time:?}"
            );
        }
        for bad_signature in ["a2114d57b48eac39", "v1=a2114d57", "sha256=00"] {
            assert!(
                matches!(
                    check(&[
                        ("X-Slack-Request-Timestamp", DOC_TIMESTAMP),
                        ("X-Slack-Signature", bad_signature)
                    ]),
                    Err(VerifyError::MalformedSignature {
                        header: SIGNATURE_HEADER,
                        ..
                    })
                ),
                "{bad_signature:?}"
            );
        }
        assert_eq!(
            check(&[
                ("X-Slack-Request-Timestamp", DOC_TIMESTAMP),
                ("X-Slack-Signature", "v0=zz")
            ]),
            Err(VerifyError::Mismatch {
                header: SIGNATURE_HEADER,
                source: SignatureMismatch::Malformed(Encoding::Hex)
            })
        );
    }

    #[test]
    fn no_secret_never_verifies() {
        assert_eq!(
            verify(&[], TOLERANCE, &doc_delivery(), doc_now()),
            Err(VerifyError::Mismatch {
                header: SIGNATURE_HEADER,
                source: SignatureMismatch::NoSecret
            })
        );
    }
}
