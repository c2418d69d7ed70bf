//! Helpers that several provider modules need in exactly the same form: identification
//! (content type, JSON object check, header ids, body-hash keys), verification (reading a
//! signature header), signing (header values) and typed parsing (the JSON object check, serde
//! adapters).
//!
//! Only logic that is the same for every caller lives here; what a provider does differently
//! (its error messages, its own token rules) stays in its module.

use hookbridge_core::{IdentifyError, RawDelivery, SignError, VerifyError};
use http::HeaderValue;
use serde::de::{Error as _, IgnoredAny};
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// Identification
// ---------------------------------------------------------------------------------------------

/// `sha256:<hex digest of the raw body>`: the dedup key of a delivery that carries no id. A
/// retried delivery resends the same bytes, so it gets the same key.
pub(crate) fn body_key(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

/// Whether `json` starts with `{` (after whitespace). Checked before any derived struct reads
/// a document: a derived struct also accepts a JSON array (positionally).
pub(crate) fn is_json_object(json: &[u8]) -> bool {
    json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// [`is_json_object`], as the identification error `body is not a JSON object`.
pub(crate) fn require_json_object(body: &[u8]) -> Result<(), IdentifyError> {
    if is_json_object(body) {
        Ok(())
    } else {
        Err(IdentifyError::Malformed("body is not a JSON object".into()))
    }
}

/// Well-formedness only: a JSON object, syntactically valid. A full typed parse happens later,
/// off the request path.
pub(crate) fn check_json_object(json: &[u8]) -> Result<(), IdentifyError> {
    require_json_object(json)?;
    // `IgnoredAny` skips string contents and has no nesting limit; the typed parse later
    // has both. Check them here so that what is acknowledged can be parsed.
    std::str::from_utf8(json)
        .map_err(|e| IdentifyError::Malformed(format!("invalid JSON: not UTF-8 ({e})")))?;
    if nesting_depth(json) > MAX_JSON_DEPTH {
        return Err(IdentifyError::Malformed(format!(
            "invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    serde_json::from_slice::<IgnoredAny>(json)
        .map(|_| ())
        .map_err(|e| IdentifyError::Malformed(format!("invalid JSON: {e}")))
}

/// serde_json's own recursion limit for typed parses.
const MAX_JSON_DEPTH: usize = 127;

/// The deepest nesting of arrays and objects, outside strings.
///
/// Strings make up most of a payload, so they are skipped with `memchr` (to the next quote
/// or backslash) rather than byte by byte.
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while let Some(&b) = json.get(i) {
        i += 1;
        match b {
            b'"' => loop {
                match memchr::memchr2(b'"', b'\\', json.get(i..).unwrap_or_default()) {
                    // Unterminated: the parse that follows reports it.
                    None => return deepest,
                    Some(at) if json[i + at] == b'\\' => i += at + 2,
                    Some(at) => {
                        i += at + 1;
                        break;
                    }
                }
            },
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The refusal of a body of media type `media_type` (`None`: no `Content-Type`).
pub(crate) fn unsupported_content_type(media_type: Option<&str>) -> IdentifyError {
    IdentifyError::UnsupportedContentType(media_type.unwrap_or("(none)").to_owned())
}

/// Refuses a delivery whose body is not `application/json`.
pub(crate) fn require_json_content_type(delivery: &RawDelivery) -> Result<(), IdentifyError> {
    match delivery.media_type().as_deref() {
        Some("application/json") => Ok(()),
        other => Err(unsupported_content_type(other)),
    }
}

/// A non-empty string of at most `max_len` visible ASCII characters (no space, no control):
/// the shape of every id and event name a sender puts in a header or envelope.
pub(crate) fn is_token(value: &str, max_len: usize) -> bool {
    !value.is_empty() && value.len() <= max_len && value.bytes().all(|b| b.is_ascii_graphic())
}

/// The value of header `name`, trimmed, when it is a token ([`is_token`]) of at most `max_len`;
/// otherwise (absent, not text, not a token) `MissingHeader(name)`.
pub(crate) fn header_token<'a>(
    delivery: &'a RawDelivery,
    name: &'static str,
    max_len: usize,
) -> Result<&'a str, IdentifyError> {
    delivery
        .header(name)
        .map(str::trim)
        .filter(|v| is_token(v, max_len))
        .ok_or(IdentifyError::MissingHeader(name))
}

/// The delivery id from header `name` ([`header_token`]) when the sender sent it, else the
/// [`body_key`]. A header that is present but unusable is an error rather than a silent
/// fallback to the body hash: a retry of the same delivery must get the same key.
pub(crate) fn header_id_or_body_key(
    delivery: &RawDelivery,
    name: &'static str,
    max_len: usize,
) -> Result<String, IdentifyError> {
    match delivery.headers.get(name) {
        Some(_) => header_token(delivery, name, max_len).map(str::to_owned),
        None => Ok(body_key(&delivery.body)),
    }
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

/// A `MalformedSignature` error for `header`.
pub(crate) fn malformed_signature(header: &'static str, reason: &str) -> VerifyError {
    VerifyError::MalformedSignature {
        header,
        reason: reason.to_owned(),
    }
}

/// The text of the signature header `name`: `MissingSignature` when it is absent,
/// `MalformedSignature` (`not valid text`) when it is not visible ASCII. Not trimmed.
pub(crate) fn signature_header<'a>(
    delivery: &'a RawDelivery,
    name: &'static str,
) -> Result<&'a str, VerifyError> {
    if !delivery.headers.contains_key(name) {
        return Err(VerifyError::MissingSignature { header: name });
    }
    delivery
        .header(name)
        .ok_or_else(|| malformed_signature(name, "not valid text"))
}

// ---------------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------------

/// `value` as a header value of a signed delivery; the error names the value, so never pass a
/// secret here.
pub(crate) fn header_value(value: &str) -> Result<HeaderValue, SignError> {
    HeaderValue::from_str(value)
        .map_err(|_| SignError::InvalidSample(format!("{value:?} is not a header value")))
}

// ---------------------------------------------------------------------------------------------
// Typed parsing
// ---------------------------------------------------------------------------------------------

/// Refuses a document that does not start with `{` (a derived struct also accepts a JSON array,
/// positionally): the error is its syntax error if it has one, otherwise "expected a JSON
/// object".
pub(crate) fn expect_json_object(json: &[u8]) -> Result<(), serde_json::Error> {
    if is_json_object(json) {
        return Ok(());
    }
    match serde_json::from_slice::<IgnoredAny>(json) {
        Err(e) => Err(e),
        Ok(_) => Err(serde_json::Error::custom("expected a JSON object")),
    }
}

/// Deserializes a known event straight from the bytes, without an intermediate `Value`, and
/// wraps it in its variant.
pub(crate) fn typed<'a, T: Deserialize<'a>, E>(
    json: &'a [u8],
    wrap: fn(T) -> E,
) -> Result<E, serde_json::Error> {
    serde_json::from_slice(json).map(wrap)
}

/// Reads `null` as the default value (`#[serde(default, deserialize_with = "null_as_default")]`),
/// for lists and maps that a sender writes as `null` when empty.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The string at `pointer` in `value`, if there is one.
pub(crate) fn str_at<'a>(value: &'a serde_json::Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(serde_json::Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn delivery(headers: &[(&'static str, &[u8])], body: &'static [u8]) -> RawDelivery {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_bytes(value).unwrap());
        }
        RawDelivery::new("test", map, body)
    }

    #[test]
    fn body_key_is_the_sha256_of_the_body() {
        assert_eq!(
            body_key(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn json_object_checks() {
        assert!(is_json_object(b" \n{}"));
        assert!(!is_json_object(b"[{}]"));
        assert!(!is_json_object(b""));
        assert!(check_json_object(b"{\"a\":1}").is_ok());
        assert_eq!(
            check_json_object(b"[]"),
            Err(IdentifyError::Malformed("body is not a JSON object".into()))
        );
        assert!(matches!(
            check_json_object(b"{\"a\":"),
            Err(IdentifyError::Malformed(m)) if m.starts_with("invalid JSON")
        ));
        assert!(expect_json_object(b"{").is_ok());
        assert_eq!(
            expect_json_object(b"[1]").unwrap_err().to_string(),
            "expected a JSON object"
        );
        assert!(expect_json_object(b"[1").unwrap_err().is_eof());
    }

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        assert_eq!(nesting_depth(br#"{}"#), 1);
        assert_eq!(nesting_depth(br#"{"a":[{"b":[]}]}"#), 4);
        // Brackets, quotes and backslashes inside strings do not count.
        assert_eq!(nesting_depth(br#"{"a":"[[[{{{"}"#), 1);
        assert_eq!(nesting_depth(br#"{"a":"\"[[[","b":"\\","c":[[]]}"#), 3);
        assert_eq!(nesting_depth(br#"{"\\\"":{"x":"\\\\"}}"#), 2);
        // Unterminated strings and a trailing backslash end the count without panicking.
        assert_eq!(nesting_depth(br#"{"a":[1,"abc"#), 2);
        assert_eq!(nesting_depth(br#"{"a":"\"#), 1);
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(nesting_depth(deep.as_bytes()), 200);
        let wrapped = format!("{{\"k\":{deep}}}");
        assert!(matches!(
            check_json_object(wrapped.as_bytes()),
            Err(IdentifyError::Malformed(m)) if m.contains("nested deeper")
        ));
    }

    #[test]
    fn content_type() {
        let json = delivery(
            &[("content-type", b"application/json; charset=utf-8")],
            b"{}",
        );
        assert!(require_json_content_type(&json).is_ok());
        let form = delivery(
            &[("content-type", b"application/x-www-form-urlencoded")],
            b"",
        );
        assert_eq!(
            require_json_content_type(&form),
            Err(IdentifyError::UnsupportedContentType(
                "application/x-www-form-urlencoded".into()
            ))
        );
        assert_eq!(
            require_json_content_type(&delivery(&[], b"{}")),
            Err(IdentifyError::UnsupportedContentType("(none)".into()))
        );
    }

    #[test]
    fn header_ids() {
        let d = delivery(&[("x-id", b" abc-123 "), ("x-bad", b"a b")], b"{}");
        assert_eq!(header_token(&d, "x-id", 128), Ok("abc-123"));
        assert_eq!(
            header_token(&d, "x-id", 3),
            Err(IdentifyError::MissingHeader("x-id"))
        );
        assert_eq!(
            header_token(&d, "x-bad", 128),
            Err(IdentifyError::MissingHeader("x-bad"))
        );
        assert_eq!(header_id_or_body_key(&d, "x-id", 128).unwrap(), "abc-123");
        assert_eq!(
            header_id_or_body_key(&d, "x-absent", 128).unwrap(),
            body_key(b"{}")
        );
        assert_eq!(
            header_id_or_body_key(&d, "x-bad", 128),
            Err(IdentifyError::MissingHeader("x-bad"))
        );
    }

    #[test]
    fn signature_headers() {
        let d = delivery(&[("x-sig", b" v1=ab "), ("x-bin", b"\xff")], b"");
        assert_eq!(signature_header(&d, "x-sig").unwrap(), " v1=ab ");
        assert_eq!(
            signature_header(&d, "x-absent"),
            Err(VerifyError::MissingSignature { header: "x-absent" })
        );
        assert_eq!(
            signature_header(&d, "x-bin"),
            Err(malformed_signature("x-bin", "not valid text"))
        );
    }

    #[test]
    fn header_values_and_serde_helpers() {
        assert_eq!(header_value("abc").unwrap(), "abc");
        assert!(matches!(
            header_value("a\nb"),
            Err(SignError::InvalidSample(m)) if m == "\"a\\nb\" is not a header value"
        ));
        #[derive(Deserialize)]
        struct Lists {
            #[serde(default, deserialize_with = "null_as_default")]
            items: Vec<u8>,
        }
        let lists: Lists = serde_json::from_str(r#"{"items":null}"#).unwrap();
        assert!(lists.items.is_empty());
        let lists: Lists = serde_json::from_str(r#"{"items":[1]}"#).unwrap();
        assert_eq!(lists.items, [1]);
        let value = serde_json::json!({"a": {"b": "c", "n": 1}});
        assert_eq!(str_at(&value, "/a/b"), Some("c"));
        assert_eq!(str_at(&value, "/a/n"), None);
    }
}
