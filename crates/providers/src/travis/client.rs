//! Travis CI's webhook public key: fetched from the API's `/config` endpoint, or given as
//! PEM in the endpoint's options, in either the PKCS#1 (`RSA PUBLIC KEY`) or the SPKI
//! (`PUBLIC KEY`) encoding.

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::{RsaPrivateKey, RsaPublicKey};

/// travis-ci.com's API; travis-ci.org and Travis CI Enterprise have their own, and their own
/// keys.
pub const DEFAULT_API_URL: &str = "https://api.travis-ci.com";

/// The config endpoint's answer can only be a few kilobytes; refuse to buffer more.
const MAX_CONFIG_BYTES: usize = 1 << 20;

/// Why Travis CI's public key could not be obtained or read.
#[derive(Debug, thiserror::Error)]
pub enum TravisKeyError {
    /// The request to the config endpoint failed (connection, TLS, timeout).
    #[error("cannot fetch the Travis CI config from {url}: {source}")]
    Request {
        /// The config endpoint.
        url: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The config endpoint answered with an error status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The config endpoint.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The answer is not a config with `config.notifications.webhook.public_key`.
    #[error("{url} gave no config.notifications.webhook.public_key: {reason}")]
    MissingKey {
        /// The config endpoint.
        url: String,
        /// What is wrong with the answer.
        reason: String,
    },
    /// The PEM text is not an RSA key of the expected kind.
    #[error("not a PEM-encoded RSA {expected}: {reason}")]
    InvalidPem {
        /// `public key` or `private key`.
        expected: &'static str,
        /// The decoder's errors, for each encoding tried.
        reason: String,
    },
}

/// Fetches Travis CI's webhook public key from `GET {api_url}/config`
/// (`config.notifications.webhook.public_key`).
///
/// `api_url` is the API root, e.g. [`DEFAULT_API_URL`], `https://api.travis-ci.org` or a
/// Travis CI Enterprise API; a trailing `/` is ignored. Timeouts are the client's.
pub async fn fetch_public_key(
    client: &reqwest::Client,
    api_url: &str,
) -> Result<RsaPublicKey, TravisKeyError> {
    let url = format!("{}/config", api_url.trim_end_matches('/'));
    let request = |source| TravisKeyError::Request {
        url: url.clone(),
        source,
    };
    let mut response = client
        .get(&url)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(request)?;
    let status = response.status();
    if !status.is_success() {
        return Err(TravisKeyError::Status {
            url,
            status: status.as_u16(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(request)? {
        if body.len() + chunk.len() > MAX_CONFIG_BYTES {
            return Err(TravisKeyError::MissingKey {
                url,
                reason: format!("the answer is larger than {MAX_CONFIG_BYTES} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    let missing = |reason: String| TravisKeyError::MissingKey {
        url: url.clone(),
        reason,
    };
    let config: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| missing(format!("not JSON: {e}")))?;
    let pem = config
        .pointer("/config/notifications/webhook/public_key")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| missing("the field is absent or not a string".into()))?;
    parse_public_key_pem(pem)
}

/// Reads an RSA public key from PEM: PKCS#1 (`-----BEGIN RSA PUBLIC KEY-----`) or SPKI
/// (`-----BEGIN PUBLIC KEY-----`).
pub fn parse_public_key_pem(pem: &str) -> Result<RsaPublicKey, TravisKeyError> {
    let pem = pem.trim();
    let spki = match RsaPublicKey::from_public_key_pem(pem) {
        Ok(key) => return Ok(key),
        Err(e) => e,
    };
    RsaPublicKey::from_pkcs1_pem(pem).map_err(|pkcs1| TravisKeyError::InvalidPem {
        expected: "public key",
        reason: format!("as SPKI: {spki}; as PKCS#1: {pkcs1}"),
    })
}

/// Reads an RSA private key from PEM: PKCS#8 (`-----BEGIN PRIVATE KEY-----`) or PKCS#1
/// (`-----BEGIN RSA PRIVATE KEY-----`). For signing test deliveries only (see
/// [`super::Travis::with_test_signing_key`]); the error never contains key material.
pub fn parse_signing_key_pem(pem: &str) -> Result<RsaPrivateKey, TravisKeyError> {
    let pem = pem.trim();
    let pkcs8 = match RsaPrivateKey::from_pkcs8_pem(pem) {
        Ok(key) => return Ok(key),
        Err(e) => e,
    };
    RsaPrivateKey::from_pkcs1_pem(pem).map_err(|pkcs1| TravisKeyError::InvalidPem {
        expected: "private key",
        reason: format!("as PKCS#8: {pkcs8}; as PKCS#1: {pkcs1}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPKI: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/travis/TEST-ONLY-travis-public-key.spki.pem"
    ));
    const PKCS1: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/travis/TEST-ONLY-travis-public-key.pkcs1.pem"
    ));
    const PRIVATE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/travis/TEST-ONLY-travis-signing-key.pem"
    ));

    #[test]
    fn both_public_key_encodings_give_the_same_key() {
        let spki = parse_public_key_pem(SPKI).unwrap();
        let pkcs1 = parse_public_key_pem(PKCS1).unwrap();
        assert_eq!(spki, pkcs1);
        assert_eq!(
            RsaPublicKey::from(parse_signing_key_pem(PRIVATE).unwrap()),
            spki
        );
    }

    #[test]
    fn garbage_is_rejected_without_echoing_it() {
        let err =
            parse_public_key_pem("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----")
                .unwrap_err();
        assert!(matches!(err, TravisKeyError::InvalidPem { .. }), "{err}");
        // A private key is not accepted where a public key is expected.
        assert!(parse_public_key_pem(PRIVATE).is_err());
        let err = parse_signing_key_pem(
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----",
        )
        .unwrap_err();
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
    }
}
