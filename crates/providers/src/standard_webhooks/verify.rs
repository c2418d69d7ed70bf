//! The three HMAC-SHA256 schemes of this module.
//!
//! - Standard Webhooks (<https://www.standardwebhooks.com>, spec "Signature scheme" and
//!   "Webhook headers"): `webhook-signature` is a space-delimited list of `v1,<base64 HMAC>`
//!   of `{webhook-id}.{webhook-timestamp}.{body}`, under the base64-decoded `whsec_` secret.
//!   Other versions (`v1a`, asymmetric) are ignored.
//! - Svix (<https://docs.svix.com/receiving/verifying-payloads/how-manual>): the same, with
//!   `svix-` headers (or `webhook-` ones, which Svix can send instead).
//! - Stripe (<https://docs.stripe.com/webhooks#verify-manually>): `Stripe-Signature:
//!   t=<ts>,v1=<hex HMAC of "{t}.{body}">[,v1=...][,v0=...]`, under the secret's own bytes
//!   (`whsec_...` as written, not decoded). Only `v1` counts: `v0` is a test-mode decoy, and
//!   accepting other schemes would allow a downgrade.
//!
//! A signature is checked before its timestamp, so [`VerifyError::Stale`] always means an
//! authentic but old (or replayed) delivery.

use hookbridge_core::signature::{
    Algorithm, Encoding, SignatureMismatch, check_timestamp, verify_hmac_parts_any,
};
use hookbridge_core::{RawDelivery, Secret, Verified, VerifyError};
use time::{Duration, OffsetDateTime};

use super::Scheme;
use crate::common::{malformed_signature, signature_header};

/// The headers of one Standard Webhooks dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Headers {
    pub(crate) id: &'static str,
    pub(crate) timestamp: &'static str,
    pub(crate) signature: &'static str,
}

pub(crate) const WEBHOOK_HEADERS: Headers = Headers {
    id: "webhook-id",
    timestamp: "webhook-timestamp",
    signature: "webhook-signature",
};
pub(crate) const SVIX_HEADERS: Headers = Headers {
    id: "svix-id",
    timestamp: "svix-timestamp",
    signature: "svix-signature",
};
pub(crate) const STRIPE_HEADER: &str = "stripe-signature";

/// The header set a delivery uses: Svix endpoints take `svix-` headers, or `webhook-` ones
/// when those alone are present (Svix's white-labelled headers); never a mix.
pub(crate) fn headers_for(scheme: Scheme, delivery: &RawDelivery) -> Headers {
    match scheme {
        Scheme::Svix
            if !delivery.headers.contains_key(SVIX_HEADERS.signature)
                && delivery.headers.contains_key(WEBHOOK_HEADERS.signature) =>
        {
            WEBHOOK_HEADERS
        }
        Scheme::Svix => SVIX_HEADERS,
        Scheme::Standard | Scheme::Stripe => WEBHOOK_HEADERS,
    }
}

pub(crate) fn verify(
    scheme: Scheme,
    keys: &[Secret],
    tolerance: Duration,
    delivery: &RawDelivery,
    now: OffsetDateTime,
) -> Result<Verified, VerifyError> {
    match scheme {
        Scheme::Standard | Scheme::Svix => verify_standard(
            headers_for(scheme, delivery),
            keys,
            tolerance,
            delivery,
            now,
        ),
        Scheme::Stripe => verify_stripe(keys, tolerance, delivery, now),
    }
}

fn verify_standard(
    headers: Headers,
    keys: &[Secret],
    tolerance: Duration,
    delivery: &RawDelivery,
    now: OffsetDateTime,
) -> Result<Verified, VerifyError> {
    let list = signature_header(delivery, headers.signature)?.trim();
    let id = signature_header(delivery, headers.id)?.trim();
    let timestamp_text = signature_header(delivery, headers.timestamp)?.trim();
    // The spec forbids `.` in ids: with one, `{id}.{ts}.{body}` could be split differently.
    if id.is_empty() || id.contains('.') {
        return Err(malformed_signature(headers.id, "empty or contains '.'"));
    }
    let timestamp = unix_seconds(timestamp_text)
        .ok_or_else(|| malformed_signature(headers.timestamp, "not an integer of unix seconds"))?;
    let candidates: Vec<&str> = list
        .split_ascii_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .map(|(_, signature)| signature)
        .collect();
    if candidates.is_empty() {
        return Err(malformed_signature(
            headers.signature,
            "no v1 signature (only v1, HMAC-SHA256, is supported)",
        ));
    }
    let parts: [&[u8]; 5] = [
        id.as_bytes(),
        b".",
        timestamp_text.as_bytes(),
        b".",
        &delivery.body,
    ];
    let secret_index = first_match(
        candidates.iter().map(|sig| {
            verify_hmac_parts_any(Algorithm::Sha256, Encoding::Base64, keys, &parts, sig)
        }),
        Encoding::Base64,
        keys.len(),
    )
    .map_err(|source| VerifyError::Mismatch {
        header: headers.signature,
        source,
    })?;
    check_timestamp(timestamp, now, tolerance)?;
    Ok(Verified {
        scheme: headers.signature,
        secret_index,
    })
}

fn verify_stripe(
    keys: &[Secret],
    tolerance: Duration,
    delivery: &RawDelivery,
    now: OffsetDateTime,
) -> Result<Verified, VerifyError> {
    let header = signature_header(delivery, STRIPE_HEADER)?.trim();
    let mut timestamp_text = None;
    let mut candidates = Vec::new();
    for element in header.split(',') {
        let (prefix, value) = element
            .trim()
            .split_once('=')
            .ok_or_else(|| malformed_signature(STRIPE_HEADER, "an element is not prefix=value"))?;
        match prefix {
            "t" if timestamp_text.is_some() => {
                return Err(malformed_signature(
                    STRIPE_HEADER,
                    "more than one t= timestamp",
                ));
            }
            "t" => timestamp_text = Some(value),
            "v1" => candidates.push(value),
            // `v0` (test mode) and any future scheme: ignored, as Stripe says.
            _ => {}
        }
    }
    let timestamp_text =
        timestamp_text.ok_or_else(|| malformed_signature(STRIPE_HEADER, "no t= timestamp"))?;
    let timestamp = unix_seconds(timestamp_text).ok_or_else(|| {
        malformed_signature(STRIPE_HEADER, "t= is not an integer of unix seconds")
    })?;
    if candidates.is_empty() {
        return Err(malformed_signature(STRIPE_HEADER, "no v1 signature"));
    }
    let parts: [&[u8]; 3] = [timestamp_text.as_bytes(), b".", &delivery.body];
    let secret_index = first_match(
        candidates
            .iter()
            .map(|sig| verify_hmac_parts_any(Algorithm::Sha256, Encoding::Hex, keys, &parts, sig)),
        Encoding::Hex,
        keys.len(),
    )
    .map_err(|source| VerifyError::Mismatch {
        header: STRIPE_HEADER,
        source,
    })?;
    check_timestamp(timestamp, now, tolerance)?;
    Ok(Verified {
        scheme: STRIPE_HEADER,
        secret_index,
    })
}

/// The secret of the first signature that matches. Every candidate is checked (no early
/// exit), and the error says whether any candidate was well-formed at all.
fn first_match(
    results: impl Iterator<Item = Result<usize, SignatureMismatch>>,
    encoding: Encoding,
    key_count: usize,
) -> Result<usize, SignatureMismatch> {
    let mut found = None;
    let mut any_well_formed = false;
    for result in results {
        match result {
            Ok(index) => {
                any_well_formed = true;
                found = found.or(Some(index));
            }
            Err(SignatureMismatch::Malformed(_)) => {}
            Err(SignatureMismatch::NoSecret) => return Err(SignatureMismatch::NoSecret),
            Err(SignatureMismatch::NoMatch(_)) => any_well_formed = true,
        }
    }
    match found {
        Some(index) => Ok(index),
        None if any_well_formed => Err(SignatureMismatch::NoMatch(key_count)),
        None => Err(SignatureMismatch::Malformed(encoding)),
    }
}

/// Digits only (no sign, no spaces), so the text signed is the number checked.
fn unix_seconds(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standard_webhooks::decode_key;
    use hookbridge_core::signature::{TimestampOutOfTolerance, hmac};
    use http::HeaderMap;

    const FIVE_MINUTES: Duration = Duration::seconds(300);

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    fn delivery(headers: &[(&str, &str)], body: &str) -> RawDelivery {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        RawDelivery::new("sw", map, body.to_owned())
    }

    fn standard_keys(secrets: &[&str]) -> Vec<Secret> {
        secrets
            .iter()
            .map(|s| decode_key(&Secret::new(*s)).unwrap())
            .collect()
    }

    // The Standard Webhooks reference library's vector (libraries/rust/src/lib.rs, `test_sign`,
    // https://github.com/standard-webhooks/standard-webhooks/blob/main/libraries/rust/src/lib.rs).
    const SW_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const SW_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const SW_TS: i64 = 1649367553;
    const SW_BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;
    const SW_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    // Svix's vector (go/webhook_test.go, `TestWebhookSign`,
    // https://github.com/svix/svix-webhooks/blob/main/go/webhook_test.go); the same secret
    // and payload are the `defaultSecret`/`defaultPayload` of that file's other tests.
    const SVIX_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SVIX_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SVIX_TS: i64 = 1614265330;
    const SVIX_BODY: &str = r#"{"test": 2432232314}"#;
    const SVIX_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn sw(signature: &str, ts: &str, body: &str) -> RawDelivery {
        delivery(
            &[
                ("webhook-id", SW_ID),
                ("webhook-timestamp", ts),
                ("webhook-signature", signature),
            ],
            body,
        )
    }

    #[test]
    fn standard_webhooks_reference_vector() {
        let keys = standard_keys(&[SW_SECRET]);
        let d = sw(SW_SIGNATURE, &SW_TS.to_string(), SW_BODY);
        let ok = verify(Scheme::Standard, &keys, FIVE_MINUTES, &d, at(SW_TS)).unwrap();
        assert_eq!(ok.scheme, "webhook-signature");
        assert_eq!(ok.secret_index, 0);
        // The same signature, recomputed by hand from the decoded key.
        let mac = hmac(
            Algorithm::Sha256,
            keys[0].expose(),
            &[format!("{SW_ID}.{SW_TS}.{SW_BODY}").as_bytes()],
        );
        assert_eq!(
            format!("v1,{}", base64_encode(&mac)),
            SW_SIGNATURE,
            "the key is the base64-decoded secret"
        );
    }

    fn base64_encode(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn svix_reference_vector_with_both_header_sets() {
        let keys = standard_keys(&[SVIX_SECRET]);
        let svix = delivery(
            &[
                ("svix-id", SVIX_ID),
                ("svix-timestamp", &SVIX_TS.to_string()),
                ("svix-signature", SVIX_SIGNATURE),
            ],
            SVIX_BODY,
        );
        let ok = verify(Scheme::Svix, &keys, FIVE_MINUTES, &svix, at(SVIX_TS)).unwrap();
        assert_eq!(ok.scheme, "svix-signature");
        // Svix's "valid unbranded signature is valid": webhook- headers on a Svix endpoint.
        let unbranded = delivery(
            &[
                ("webhook-id", SVIX_ID),
                ("webhook-timestamp", &SVIX_TS.to_string()),
                ("webhook-signature", SVIX_SIGNATURE),
            ],
            SVIX_BODY,
        );
        let ok = verify(Scheme::Svix, &keys, FIVE_MINUTES, &unbranded, at(SVIX_TS)).unwrap();
        assert_eq!(ok.scheme, "webhook-signature");
        // A Standard endpoint does not read svix- headers.
        assert_eq!(
            verify(Scheme::Standard, &keys, FIVE_MINUTES, &svix, at(SVIX_TS)),
            Err(VerifyError::MissingSignature {
                header: "webhook-signature"
            })
        );
        // The secret without its prefix is the same key (Svix's TestWebhookPrefix).
        let bare = standard_keys(&["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]);
        assert!(verify(Scheme::Svix, &bare, FIVE_MINUTES, &svix, at(SVIX_TS)).is_ok());
    }

    #[test]
    fn multiple_signatures_and_unknown_versions() {
        let keys = standard_keys(&[SVIX_SECRET]);
        // From Svix's "valid multi sig is valid": wrong v1s, a v2, and the valid one.
        let list = format!(
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {SVIX_SIGNATURE} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
        );
        let d = delivery(
            &[
                ("webhook-id", SVIX_ID),
                ("webhook-timestamp", &SVIX_TS.to_string()),
                ("webhook-signature", &list),
            ],
            SVIX_BODY,
        );
        assert!(verify(Scheme::Standard, &keys, FIVE_MINUTES, &d, at(SVIX_TS)).is_ok());
        // The spec's example header carries a v1a (ed25519) signature too: ignored.
        let with_v1a = format!(
            "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== {SVIX_SIGNATURE}"
        );
        let d = delivery(
            &[
                ("webhook-id", SVIX_ID),
                ("webhook-timestamp", &SVIX_TS.to_string()),
                ("webhook-signature", &with_v1a),
            ],
            SVIX_BODY,
        );
        assert!(verify(Scheme::Standard, &keys, FIVE_MINUTES, &d, at(SVIX_TS)).is_ok());
        // Only a v1a: nothing this endpoint can check.
        let only_v1a = delivery(
            &[
                ("webhook-id", SVIX_ID),
                ("webhook-timestamp", &SVIX_TS.to_string()),
                (
                    "webhook-signature",
                    "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==",
                ),
            ],
            SVIX_BODY,
        );
        assert!(matches!(
            verify(
                Scheme::Standard,
                &keys,
                FIVE_MINUTES,
                &only_v1a,
                at(SVIX_TS)
            ),
            Err(VerifyError::MalformedSignature {
                header: "webhook-signature",
                ..
            })
        ));
    }

    #[test]
    fn rotation_second_secret_matches() {
        let keys = standard_keys(&["whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA==", SW_SECRET]);
        let d = sw(SW_SIGNATURE, &SW_TS.to_string(), SW_BODY);
        let ok = verify(Scheme::Standard, &keys, FIVE_MINUTES, &d, at(SW_TS)).unwrap();
        assert_eq!(ok.secret_index, 1);
    }

    #[test]
    fn tampered_wrong_secret_stale_missing_malformed_are_distinct() {
        let keys = standard_keys(&[SW_SECRET]);
        let ts = SW_TS.to_string();
        let run = |d: &RawDelivery, keys: &[Secret], now: i64| {
            verify(Scheme::Standard, keys, FIVE_MINUTES, d, at(now))
        };
        // Body changed by one byte.
        let tampered = sw(
            SW_SIGNATURE,
            &ts,
            &SW_BODY.replace("test_user", "test_usex"),
        );
        assert_eq!(
            run(&tampered, &keys, SW_TS),
            Err(VerifyError::Mismatch {
                header: "webhook-signature",
                source: SignatureMismatch::NoMatch(1)
            })
        );
        // A timestamp changed after signing is a mismatch, not a stale delivery.
        let moved = sw(SW_SIGNATURE, &(SW_TS + 1).to_string(), SW_BODY);
        assert!(matches!(
            run(&moved, &keys, SW_TS),
            Err(VerifyError::Mismatch { .. })
        ));
        // Wrong secret.
        let other = standard_keys(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]);
        assert_eq!(
            run(&sw(SW_SIGNATURE, &ts, SW_BODY), &other, SW_TS),
            Err(VerifyError::Mismatch {
                header: "webhook-signature",
                source: SignatureMismatch::NoMatch(1)
            })
        );
        // Stale both ways: 301 s late, 301 s early; 300 s is still fine.
        let d = sw(SW_SIGNATURE, &ts, SW_BODY);
        assert!(run(&d, &keys, SW_TS + 300).is_ok());
        assert_eq!(
            run(&d, &keys, SW_TS + 301),
            Err(VerifyError::Stale(TimestampOutOfTolerance {
                skew_seconds: -301,
                tolerance_seconds: 300
            }))
        );
        assert!(matches!(
            run(&d, &keys, SW_TS - 301),
            Err(VerifyError::Stale(_))
        ));
        // Missing headers, each named.
        for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let mut d = sw(SW_SIGNATURE, &ts, SW_BODY);
            d.headers.remove(missing);
            assert_eq!(
                run(&d, &keys, SW_TS),
                Err(VerifyError::MissingSignature { header: missing })
            );
        }
        // Malformed: timestamp, id, signature list, signature value.
        for (header, value) in [
            ("webhook-timestamp", "2022-04-07T21:39:13Z"),
            ("webhook-timestamp", "-1649367553"),
            ("webhook-id", "msg.1"),
            (
                "webhook-signature",
                "tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            ),
        ] {
            let mut d = sw(SW_SIGNATURE, &ts, SW_BODY);
            d.headers.insert(header, value.parse().unwrap());
            match run(&d, &keys, SW_TS) {
                Err(VerifyError::MalformedSignature { header: h, .. }) => assert_eq!(h, header),
                other => panic!("{header}: {value}: {other:?}"),
            }
        }
        // Svix's "partial signature is invalid": `v1,` alone.
        assert_eq!(
            run(&sw("v1,", &ts, SW_BODY), &keys, SW_TS),
            Err(VerifyError::Mismatch {
                header: "webhook-signature",
                source: SignatureMismatch::Malformed(Encoding::Base64)
            })
        );
    }

    // Stripe publishes no fixed vector. This one was computed independently of this crate:
    // `printf '%s' '1492774577.{"id":"evt_test_webhook","object":"event"}' |
    //  openssl dgst -sha256 -hmac 'whsec_test_secret'` (the secret and payload of stripe-go's
    // webhook/client_test.go; the timestamp of the example header in Stripe's docs).
    const STRIPE_SECRET: &str = "whsec_test_secret";
    const STRIPE_TS: i64 = 1492774577;
    const STRIPE_BODY: &str = r#"{"id":"evt_test_webhook","object":"event"}"#;
    const STRIPE_V1: &str = "88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a";

    fn stripe(header: &str, body: &str) -> RawDelivery {
        delivery(&[("Stripe-Signature", header)], body)
    }

    #[test]
    fn stripe_vector_uses_the_secret_as_written() {
        let keys = vec![Secret::new(STRIPE_SECRET)];
        let header = format!("t={STRIPE_TS},v1={STRIPE_V1}");
        let ok = verify(
            Scheme::Stripe,
            &keys,
            FIVE_MINUTES,
            &stripe(&header, STRIPE_BODY),
            at(STRIPE_TS),
        )
        .unwrap();
        assert_eq!(ok.scheme, "stripe-signature");
        // The key is the whole secret, prefix included: without it nothing matches.
        let unprefixed = vec![Secret::new("test_secret")];
        assert!(
            verify(
                Scheme::Stripe,
                &unprefixed,
                FIVE_MINUTES,
                &stripe(&header, STRIPE_BODY),
                at(STRIPE_TS)
            )
            .is_err()
        );
    }

    #[test]
    fn stripe_header_variants() {
        let keys = vec![Secret::new("whsec_rolled"), Secret::new(STRIPE_SECRET)];
        let now = at(STRIPE_TS);
        let run = |header: &str, body: &str, now: OffsetDateTime| {
            verify(
                Scheme::Stripe,
                &keys,
                FIVE_MINUTES,
                &stripe(header, body),
                now,
            )
        };
        // Several v1 (a rolled secret), a v0 decoy, spaces, an unreadable v1: fine.
        let header = format!(
            "t={STRIPE_TS}, v1=bad_signature,v1={}, v1={STRIPE_V1},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
            "0".repeat(64)
        );
        assert_eq!(run(&header, STRIPE_BODY, now).unwrap().secret_index, 1);
        // Only a v0 (the test-mode scheme): refused, no downgrade.
        let v0 = format!("t={STRIPE_TS},v0={STRIPE_V1}");
        assert!(matches!(
            run(&v0, STRIPE_BODY, now),
            Err(VerifyError::MalformedSignature {
                header: "stripe-signature",
                ..
            })
        ));
        // Tampered body, stale, missing, malformed.
        let good = format!("t={STRIPE_TS},v1={STRIPE_V1}");
        assert_eq!(
            run(&good, &STRIPE_BODY.replace("evt_", "evt-"), now),
            Err(VerifyError::Mismatch {
                header: "stripe-signature",
                source: SignatureMismatch::NoMatch(2)
            })
        );
        assert!(matches!(
            run(&good, STRIPE_BODY, at(STRIPE_TS + 301)),
            Err(VerifyError::Stale(_))
        ));
        assert_eq!(
            verify(
                Scheme::Stripe,
                &keys,
                FIVE_MINUTES,
                &delivery(&[], STRIPE_BODY),
                now
            ),
            Err(VerifyError::MissingSignature {
                header: "stripe-signature"
            })
        );
        for bad in [
            "v1,t=1",
            "t=",
            "t=abc,v1=00",
            &format!("v1={STRIPE_V1}"),
            &format!("t={STRIPE_TS},t={STRIPE_TS},v1={STRIPE_V1}"),
        ] {
            assert!(
                matches!(
                    run(bad, STRIPE_BODY, now),
                    Err(VerifyError::MalformedSignature { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            run(&format!("t={STRIPE_TS},v1=deadbeef"), STRIPE_BODY, now),
            Err(VerifyError::Mismatch {
                header: "stripe-signature",
                source: SignatureMismatch::Malformed(Encoding::Hex)
            })
        );
    }
}
