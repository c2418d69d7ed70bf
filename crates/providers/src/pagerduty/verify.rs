//! `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>[,v1=<hex>...]`.
//!
//! PagerDuty signs each delivery once per active secret of the subscription and joins the
//! signatures with `,` (<https://developer.pagerduty.com/docs/webhooks/webhook-signatures>),
//! so a secret can be rotated with no downtime. The delivery is authentic when any `v1`
//! signature matches any configured secret; signatures of other versions are skipped, as the
//! documentation prescribes, so a future `v2` scheme added next to `v1` does not break
//! verification. No timestamp is signed: replays are stopped by the dedup key (the event id
//! in the signed body).

use hookbridge_core::signature::{Algorithm, Encoding, SignatureMismatch, verify_hmac_any};
use hookbridge_core::{RawDelivery, Secret, Verified, VerifyError};

use crate::common::{malformed_signature, signature_header};

pub(crate) const HEADER: &str = "x-pagerduty-signature";
const PREFIX: &str = "v1=";
/// PagerDuty sends one signature per active secret, in practice one or two. A header with many
/// more is not from PagerDuty, and each entry costs an HMAC per secret: refuse it early.
const MAX_SIGNATURES: usize = 8;

pub(crate) fn verify(secrets: &[Secret], delivery: &RawDelivery) -> Result<Verified, VerifyError> {
    let value = signature_header(delivery, HEADER)?;
    let entries: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.len() > MAX_SIGNATURES {
        return Err(malformed_signature(
            HEADER,
            &format!(
                "{} signatures, more than the {MAX_SIGNATURES} accepted",
                entries.len()
            ),
        ));
    }
    let v1: Vec<&str> = entries
        .iter()
        .filter_map(|e| e.strip_prefix(PREFIX))
        .collect();
    if v1.is_empty() {
        return Err(malformed_signature(HEADER, "no `v1=` signature"));
    }
    // Every signature is checked, even after a match, so the time taken does not reveal which
    // one matched. The first matching secret is reported.
    let mut matched: Option<usize> = None;
    let mut mismatch = SignatureMismatch::Malformed(Encoding::Hex);
    for signature in v1 {
        match verify_hmac_any(
            Algorithm::Sha256,
            Encoding::Hex,
            secrets,
            &delivery.body,
            signature,
        ) {
            Ok(index) => matched = Some(matched.map_or(index, |m| m.min(index))),
            // A well-formed signature that matches nothing says more than a malformed one.
            Err(e @ (SignatureMismatch::NoMatch(_) | SignatureMismatch::NoSecret)) => mismatch = e,
            Err(SignatureMismatch::Malformed(_)) => {}
        }
    }
    match matched {
        Some(secret_index) => Ok(Verified {
            scheme: HEADER,
            secret_index,
        }),
        None => Err(VerifyError::Mismatch {
            header: HEADER,
            source: mismatch,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookbridge_core::signature::hmac;
    use http::HeaderMap;

    // The test values of PagerDuty's own Go client library, `webhookv3/webhookv3_test.go`
    // (https://github.com/PagerDuty/go-pagerduty/blob/main/webhookv3/webhookv3_test.go), the
    // library the "Verifying Signatures" page points to for its Go example
    // (https://developer.pagerduty.com/docs/webhooks/webhook-signatures). The page itself shows
    // the header format only, with no body or secret to check against.
    const DOC_SECRET: &str = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK";
    const DOC_BODY: &str = r#"{"event":{"id":"01BWDWL3NYY7LUFPZCC28QUCMK","event_type":"incident.priority_updated","resource_type":"incident","occurred_at":"2021-04-26T17:36:27.458Z","agent":{"html_url":"https://acme.pagerduty.com/users/PLH1HKV","id":"PLH1HKV","self":"https://api.pagerduty.com/users/PLH1HKV","summary":"Tenex Engineer","type":"user_reference"},"client":null,"data":{"id":"PGR0VU2","type":"incident","self":"https://api.pagerduty.com/incidents/PGR0VU2","html_url":"https://acme.pagerduty.com/incidents/PGR0VU2","number":2,"status":"triggered","title":"A little bump in the road","service":{"html_url":"https://acme.pagerduty.com/services/PF9KMXH","id":"PF9KMXH","self":"https://api.pagerduty.com/services/PF9KMXH","summary":"API Service","type":"service_reference"},"assignees":[{"html_url":"https://acme.pagerduty.com/users/PTUXL6G","id":"PTUXL6G","self":"https://api.pagerduty.com/users/PTUXL6G","summary":"User 123","type":"user_reference"}],"escalation_policy":{"html_url":"https://acme.pagerduty.com/escalation_policies/PUS0KTE","id":"PUS0KTE","self":"https://api.pagerduty.com/escalation_policies/PUS0KTE","summary":"Default","type":"escalation_policy_reference"},"teams":[{"html_url":"https://acme.pagerduty.com/teams/PFCVPS0","id":"PFCVPS0","self":"https://api.pagerduty.com/teams/PFCVPS0","summary":"Engineering","type":"team_reference"}],"priority":{"html_url":"https://acme.pagerduty.com/account/incident_priorities","id":"PSO75BM","self":"https://api.pagerduty.com/priorities/PSO75BM","summary":"P1","type":"priority_reference"},"urgency":"high","conference_bridge":{"conference_number":1000,"conference_url":"https://example.com"},"resolve_reason":null}}}"#;
    const DOC_SIG: &str = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd";
    /// The library's "mismatch" case: a well-formed signature of something else.
    const DOC_WRONG_SIG: &str =
        "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5";

    fn delivery(signature: Option<&str>, body: &[u8]) -> RawDelivery {
        let mut map = HeaderMap::new();
        if let Some(sig) = signature {
            map.insert("X-PagerDuty-Signature", sig.parse().unwrap());
        }
        RawDelivery::new("pd", map, body.to_vec())
    }

    fn secrets(v: &[&str]) -> Vec<Secret> {
        v.iter().map(|s| Secret::new(*s)).collect()
    }

    fn sig(secret: &str, body: &[u8]) -> String {
        format!(
            "v1={}",
            hex::encode(hmac(Algorithm::Sha256, secret.as_bytes(), &[body]))
        )
    }

    #[test]
    fn documented_test_vector() {
        let ok = verify(
            &secrets(&[DOC_SECRET]),
            &delivery(Some(DOC_SIG), DOC_BODY.as_bytes()),
        )
        .unwrap();
        assert_eq!(ok.scheme, HEADER);
        assert_eq!(ok.secret_index, 0);
        assert_eq!(
            verify(
                &secrets(&[DOC_SECRET]),
                &delivery(Some(DOC_WRONG_SIG), DOC_BODY.as_bytes())
            ),
            Err(VerifyError::Mismatch {
                header: HEADER,
                source: SignatureMismatch::NoMatch(1)
            })
        );
    }

    #[test]
    fn tampered_body_and_wrong_secret_fail() {
        let mut tampered = DOC_BODY.as_bytes().to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            verify(&secrets(&[DOC_SECRET]), &delivery(Some(DOC_SIG), &tampered)),
            Err(VerifyError::Mismatch {
                header: HEADER,
                source: SignatureMismatch::NoMatch(1)
            })
        );
        assert_eq!(
            verify(
                &secrets(&["another secret", "and another"]),
                &delivery(Some(DOC_SIG), DOC_BODY.as_bytes())
            ),
            Err(VerifyError::Mismatch {
                header: HEADER,
                source: SignatureMismatch::NoMatch(2)
            })
        );
    }

    /// Both rotations: PagerDuty sending one signature per active secret (ours may be either),
    /// and the endpoint configured with several secrets (PagerDuty's may be any).
    #[test]
    fn rotation_on_either_side() {
        let body = DOC_BODY.as_bytes();
        let header = format!("{},{}", sig("the new one", body), DOC_SIG);
        let ok = verify(&secrets(&[DOC_SECRET]), &delivery(Some(&header), body)).unwrap();
        assert_eq!(ok.secret_index, 0);
        // The header of the documentation, with a space after the comma.
        let spaced = format!("{}, {}", DOC_WRONG_SIG, DOC_SIG);
        assert!(verify(&secrets(&[DOC_SECRET]), &delivery(Some(&spaced), body)).is_ok());
        let ok = verify(
            &secrets(&["old", DOC_SECRET]),
            &delivery(Some(DOC_SIG), body),
        )
        .unwrap();
        assert_eq!(ok.secret_index, 1);
    }

    #[test]
    fn other_versions_are_skipped() {
        let body = DOC_BODY.as_bytes();
        let header = format!("v2=abcdef,{DOC_SIG}");
        assert!(verify(&secrets(&[DOC_SECRET]), &delivery(Some(&header), body)).is_ok());
    }

    #[test]
    fn missing_and_malformed_are_told_apart() {
        let s = secrets(&[DOC_SECRET]);
        let body = DOC_BODY.as_bytes();
        assert_eq!(
            verify(&s, &delivery(None, body)),
            Err(VerifyError::MissingSignature { header: HEADER })
        );
        for header in ["", "sha256=00", "v2=00,v0=11", " , "] {
            assert!(
                matches!(
                    verify(&s, &delivery(Some(header), body)),
                    Err(VerifyError::MalformedSignature { header: HEADER, .. })
                ),
                "{header:?}"
            );
        }
        assert_eq!(
            verify(&s, &delivery(Some("v1=xyz"), body)),
            Err(VerifyError::Mismatch {
                header: HEADER,
                source: SignatureMismatch::Malformed(Encoding::Hex)
            })
        );
        let too_many = [DOC_SIG; MAX_SIGNATURES + 1].join(",");
        assert!(matches!(
            verify(&s, &delivery(Some(&too_many), body)),
            Err(VerifyError::MalformedSignature { .. })
        ));
        // Not text: an obs-text byte.
        let mut d = delivery(None, body);
        d.headers
            .insert(HEADER, http::HeaderValue::from_bytes(b"v1=\xff").unwrap());
        assert!(matches!(
            verify(&s, &d),
            Err(VerifyError::MalformedSignature { .. })
        ));
    }

    #[test]
    fn no_secret_never_verifies() {
        assert_eq!(
            verify(&[], &delivery(Some(DOC_SIG), DOC_BODY.as_bytes())),
            Err(VerifyError::Mismatch {
                header: HEADER,
                source: SignatureMismatch::NoSecret
            })
        );
    }
}
