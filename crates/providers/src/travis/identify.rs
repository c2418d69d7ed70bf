//! Travis CI posts `application/x-www-form-urlencoded` bodies whose `payload` field holds the
//! JSON document. There is no delivery id header: the dedup key is the build `id`, its
//! `state` and the time the state was reached (`finished_at`, or `started_at` while it
//! runs): `<id>:<state>[:<time>]`. Each state change of a build is one delivery; a replayed
//! notification (Travis signs no timestamp header, but the times are inside the signed
//! payload) is recognised as a duplicate; and a restarted build, which keeps its id, is a new
//! delivery even when it ends in the same state as its first run.

use hookbridge_core::{DeliveryId, IdentifyError, Identity, RawDelivery};
use serde::Deserialize;

use crate::common::{is_json_object, is_token, unsupported_content_type};

pub(crate) const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
/// Travis states are short words; anything longer is not from Travis.
const MAX_STATE_LEN: usize = 64;

/// Why the `payload` form field could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadFieldError {
    /// No `payload` field.
    Missing,
    /// More than one `payload` field: which one was signed would be ambiguous.
    Repeated,
}

impl PayloadFieldError {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            PayloadFieldError::Missing => "form body has no `payload` field",
            PayloadFieldError::Repeated => "form body has more than one `payload` field",
        }
    }
}

/// The value of the single `payload` field of a form-encoded body, percent-decoded to the
/// exact bytes Travis signed. Decoding is byte-exact (no lossy UTF-8 repair), so the bytes
/// verified are the bytes parsed.
pub(crate) fn payload_field(body: &[u8]) -> Result<Vec<u8>, PayloadFieldError> {
    let mut found = None;
    for pair in body.split(|&b| b == b'&') {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        if percent_decode(key) != b"payload" {
            continue;
        }
        if found.is_some() {
            return Err(PayloadFieldError::Repeated);
        }
        found = Some(percent_decode(value));
    }
    found.ok_or(PayloadFieldError::Missing)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte, and anything
/// else (including a `%` not followed by two hex digits) itself.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < input.len() => {
                match (hex_value(input[i + 1]), hex_value(input[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The JSON document of a delivery: the `payload` field of its form body.
pub(crate) fn json_body(delivery: &RawDelivery) -> Result<Vec<u8>, IdentifyError> {
    match delivery.media_type().as_deref() {
        Some(FORM_CONTENT_TYPE) => payload_field(&delivery.body)
            .map_err(|e| IdentifyError::Malformed(e.describe().to_owned())),
        other => Err(unsupported_content_type(other)),
    }
}

/// Only what the dedup key needs; the full typed parse happens later, off the request path.
#[derive(Deserialize)]
struct Key {
    id: u64,
    state: String,
    #[serde(default)]
    started_at: Option<serde_json::Value>,
    #[serde(default)]
    finished_at: Option<serde_json::Value>,
}

/// Timestamps are short and made of digits, letters, `-`, `:`, `.` and `+`; anything else
/// (or a non-string) is left out of the key rather than refused.
fn time_part(value: Option<&serde_json::Value>) -> Option<&str> {
    let text = value?.as_str()?;
    (!text.is_empty()
        && text.len() <= 40
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':' | b'.' | b'+')))
    .then_some(text)
}

pub(crate) fn identify(delivery: &RawDelivery) -> Result<Identity, IdentifyError> {
    let json = json_body(delivery)?;
    if !is_json_object(&json) {
        return Err(IdentifyError::Malformed(
            "payload is not a JSON object".into(),
        ));
    }
    let key: Key = serde_json::from_slice(&json).map_err(|e| {
        IdentifyError::Malformed(if e.is_data() {
            format!("payload has no numeric build `id` and string `state`: {e}")
        } else {
            format!("invalid JSON: {e}")
        })
    })?;
    if !is_token(&key.state, MAX_STATE_LEN) {
        return Err(IdentifyError::Malformed(
            "payload `state` is not a Travis build state".into(),
        ));
    }
    Ok(Identity {
        delivery_id: DeliveryId::new(
            match time_part(key.finished_at.as_ref()).or(time_part(key.started_at.as_ref())) {
                Some(at) => format!("{}:{}:{at}", key.id, key.state),
                None => format!("{}:{}", key.id, key.state),
            },
        ),
        event_type: "build".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn delivery(content_type: Option<&str>, body: &'static [u8]) -> RawDelivery {
        let mut h = HeaderMap::new();
        if let Some(ct) = content_type {
            h.insert("content-type", ct.parse().unwrap());
        }
        RawDelivery::new("travis", h, body)
    }

    #[test]
    fn payload_field_decoding() {
        assert_eq!(
            payload_field(b"a=1&payload=%7B%22x%22%3A+%22a%2Bb%22%7D&b=2").unwrap(),
            br#"{"x": "a+b"}"#
        );
        // Bad escapes are kept as written, as browsers do.
        assert_eq!(payload_field(b"payload=%zz%4").unwrap(), b"%zz%4");
        assert_eq!(payload_field(b"payload").unwrap(), b"");
        // Non-UTF-8 bytes are kept exactly, not repaired.
        assert_eq!(payload_field(b"payload=%FF%FE").unwrap(), [0xff, 0xfe]);
        assert_eq!(payload_field(b"%70ayload=1").unwrap(), b"1");
        assert_eq!(payload_field(b"other=1"), Err(PayloadFieldError::Missing));
        assert_eq!(
            payload_field(b"payload=1&payload=2"),
            Err(PayloadFieldError::Repeated)
        );
    }

    #[test]
    fn dedup_key_is_build_id_and_state() {
        let id = identify(&delivery(
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            b"payload=%7B%22id%22%3A42%2C%22state%22%3A%22passed%22%2C%22x%22%3A%5B1%5D%7D",
        ))
        .unwrap();
        assert_eq!(id.delivery_id.as_str(), "42:passed");
        assert_eq!(id.event_type, "build");
    }

    #[test]
    fn a_restarted_build_is_a_new_delivery_and_a_replay_is_not() {
        let body = |finished: &str| {
            let json = format!(
                r#"{{"id":42,"state":"passed","started_at":"2024-05-17T10:40:19Z","finished_at":{finished}}}"#
            );
            let encoded: String = form_urlencoded::byte_serialize(json.as_bytes()).collect();
            format!("payload={encoded}").into_bytes()
        };
        let key = |finished: &str| {
            identify(&delivery(
                Some("application/x-www-form-urlencoded"),
                // The helper takes a 'static body, as the other cases' literals are.
                Box::leak(body(finished).into_boxed_slice()),
            ))
            .unwrap()
            .delivery_id
        };
        let first = key(r#""2024-05-17T10:44:51Z""#);
        assert_eq!(first.as_str(), "42:passed:2024-05-17T10:44:51Z");
        assert_eq!(first, key(r#""2024-05-17T10:44:51Z""#), "a replay dedupes");
        assert_ne!(
            first,
            key(r#""2024-05-17T11:02:07Z""#),
            "a restart does not"
        );
        // Still running: the start time; a time that is not one is left out.
        assert_eq!(key("null").as_str(), "42:passed:2024-05-17T10:40:19Z");
        let odd = identify(&delivery(
            Some("application/x-www-form-urlencoded"),
            b"payload=%7B%22id%22%3A42%2C%22state%22%3A%22passed%22%2C%22finished_at%22%3A%22a%20b%22%7D",
        ))
        .unwrap();
        assert_eq!(odd.delivery_id.as_str(), "42:passed");
    }

    #[test]
    fn rejections() {
        assert_eq!(
            identify(&delivery(
                Some("application/json"),
                br#"{"id":1,"state":"passed"}"#
            )),
            Err(IdentifyError::UnsupportedContentType(
                "application/json".into()
            ))
        );
        assert!(matches!(
            identify(&delivery(None, b"payload=%7B%7D")),
            Err(IdentifyError::UnsupportedContentType(_))
        ));
        for body in [
            &b"other=1"[..],
            b"payload=1&payload=2",
            b"payload=%5B1%5D",
            b"payload=%7B%22id%22%3A",
            b"payload=%7B%22state%22%3A%22passed%22%7D",
            b"payload=%7B%22id%22%3A%221%22%2C%22state%22%3A%22passed%22%7D",
            b"payload=%7B%22id%22%3A1%2C%22state%22%3A%22%22%7D",
            b"payload=%7B%22id%22%3A1%2C%22state%22%3A%22a+b%22%7D",
        ] {
            let form = RawDelivery::new(
                "travis",
                {
                    let mut h = HeaderMap::new();
                    h.insert("content-type", FORM_CONTENT_TYPE.parse().unwrap());
                    h
                },
                body.to_vec(),
            );
            assert!(
                matches!(identify(&form), Err(IdentifyError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
