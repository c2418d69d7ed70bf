//! GitHub's `X-Hub-Signature-256`: HMAC-SHA256 of the raw body, hex, prefixed `sha256=`.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The `X-Hub-Signature-256` header value of `body` under `secret`.
pub fn github_signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` (an `X-Hub-Signature-256` value) signs `body` under `secret`, compared
/// in constant time.
pub fn verify_github(secret: &[u8], body: &[u8], header: &[u8]) -> bool {
    let Some(hex_sig) = header.strip_prefix(b"sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        // GitHub's documented test vector.
        let sig = github_signature(b"It's a Secret to Everybody", b"Hello, World!");
        assert_eq!(
            sig,
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert!(verify_github(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            sig.as_bytes()
        ));
        assert!(!verify_github(b"other", b"Hello, World!", sig.as_bytes()));
        assert!(!verify_github(
            b"It's a Secret to Everybody",
            b"Hello",
            sig.as_bytes()
        ));
        assert!(!verify_github(b"k", b"b", b"sha1=00"));
    }
}
