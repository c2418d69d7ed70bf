//! Signing a notification as Travis CI does, for `hookbridge send` and tests. Travis signs
//! with its own private key, so this needs a key of the user's (a test key whose public half
//! the receiving endpoint is configured with).

use base64::Engine as _;
use bytes::Bytes;
use hookbridge_core::{Secret, SignError, SignedDelivery};
use http::{HeaderMap, HeaderValue};
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha1::{Digest as _, Sha1};

use super::identify::FORM_CONTENT_TYPE;
use super::verify::{AUTHORIZATION_HEADER, SIGNATURE_HEADER, SLUG_HEADER, legacy_digest};
use crate::common::header_value;

/// `legacy_token`: when set, the legacy `Authorization` header is added too, as Travis CI
/// sends it next to the signature.
pub(crate) fn sign(
    key: &RsaPrivateKey,
    legacy_token: Option<&Secret>,
    json: &[u8],
) -> Result<SignedDelivery, SignError> {
    let text = std::str::from_utf8(json)
        .map_err(|_| SignError::InvalidSample("the JSON is not UTF-8".into()))?;
    let document: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| SignError::InvalidSample(format!("not JSON: {e}")))?;
    let slug = match (
        document
            .pointer("/repository/owner_name")
            .and_then(|v| v.as_str()),
        document
            .pointer("/repository/name")
            .and_then(|v| v.as_str()),
    ) {
        (Some(owner), Some(name)) => format!("{owner}/{name}"),
        _ => {
            return Err(SignError::InvalidSample(
                "a Travis CI notification names its repository (repository.owner_name, repository.name)"
                    .into(),
            ));
        }
    };
    let signature = key
        .sign(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(json))
        .map_err(|e| SignError::Unsupported(format!("RSA signing failed: {e}")))?;
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static(FORM_CONTENT_TYPE));
    headers.insert("user-agent", HeaderValue::from_static("hookbridge-send"));
    headers.insert(SLUG_HEADER, header_value(&slug)?);
    headers.insert(
        SIGNATURE_HEADER,
        header_value(&base64::engine::general_purpose::STANDARD.encode(signature))?,
    );
    if let Some(token) = legacy_token {
        headers.insert(
            AUTHORIZATION_HEADER,
            header_value(&hex::encode(legacy_digest(&slug, token)))?,
        );
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", text)
        .finish();
    Ok(SignedDelivery {
        headers,
        body: Bytes::from(body),
        query: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::travis::{identify, parse_public_key_pem, parse_signing_key_pem, verify};
    use hookbridge_core::RawDelivery;

    const PRIVATE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/travis/TEST-ONLY-travis-signing-key.pem"
    ));
    const PUBLIC: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/travis/TEST-ONLY-travis-public-key.pkcs1.pem"
    ));
    const PAYLOAD: &str = r#"{"id":1,"state":"passed","repository":{"id":2,"name":"minimal","owner_name":"svenfuchs"}}"#;

    #[test]
    fn round_trip_and_same_signature_as_openssl() {
        let key = parse_signing_key_pem(PRIVATE).unwrap();
        let token = Secret::new("secret-token");
        let signed = sign(&key, Some(&token), PAYLOAD.as_bytes()).unwrap();
        assert!(signed.query.is_none());
        // PKCS#1 v1.5 signatures are deterministic: the same as OpenSSL's in verify.rs.
        assert!(
            signed.headers["signature"]
                .to_str()
                .unwrap()
                .starts_with("Zfh7q22h4qVnhmkpuVirm1E+7F1b9AOix2Z57or9hUw")
        );
        assert_eq!(signed.headers["travis-repo-slug"], "svenfuchs/minimal");
        assert_eq!(
            signed.headers["authorization"],
            "615d187ffa8ec52ad6c45382c0ec67a3da4113343803d57e158510ff7870f95d"
        );
        assert!(signed.body.starts_with(b"payload=%7B%22id%22%3A1"));

        let delivery = RawDelivery::new("travis", signed.headers, signed.body);
        let public = parse_public_key_pem(PUBLIC).unwrap();
        assert_eq!(
            verify::verify(Some(&public), None, &delivery)
                .unwrap()
                .scheme,
            "signature"
        );
        // The same delivery also passes the legacy check on its own.
        let mut legacy_only = delivery.clone();
        legacy_only.headers.remove("signature");
        assert_eq!(
            verify::verify(None, Some(&token), &legacy_only)
                .unwrap()
                .scheme,
            "authorization"
        );
        let identity = identify::identify(&delivery).unwrap();
        assert_eq!(identity.delivery_id.as_str(), "1:passed");
        assert_eq!(identify::json_body(&delivery).unwrap(), PAYLOAD.as_bytes());
    }

    #[test]
    fn samples_that_do_not_fit_are_refused() {
        let key = parse_signing_key_pem(PRIVATE).unwrap();
        for json in [
            &b"\xff"[..],
            b"{",
            br#"{"id":1}"#,
            br#"{"repository":{"name":"x"}}"#,
        ] {
            assert!(
                matches!(sign(&key, None, json), Err(SignError::InvalidSample(_))),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }
}
