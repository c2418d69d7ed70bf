//! Signing a delivery as Jira does, for `hookbridge send` and tests: `X-Hub-Signature` when
//! the endpoint has a secret, and the `token` query parameter when it has a token.

use bytes::Bytes;
use hookbridge_core::signature::{Algorithm, hmac};
use hookbridge_core::{Secret, SignError, SignedDelivery};
use http::{HeaderMap, HeaderValue};

use super::identify::IDENTIFIER_HEADER;
use super::verify::{SIGNATURE_HEADER, TOKEN_PARAM};
use crate::common::header_value;

pub(crate) fn sign(
    secret: Option<&Secret>,
    token: Option<&Secret>,
    event_type: &str,
    json: &[u8],
    delivery_id: &str,
) -> Result<SignedDelivery, SignError> {
    if secret.is_none() && token.is_none() {
        return Err(SignError::NoSecret);
    }
    // Jira has no event header: the payload names its event, so it must be the one asked for.
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "webhookEvent")]
        webhook_event: Option<String>,
    }
    if let Ok(Head {
        webhook_event: Some(named),
    }) = serde_json::from_slice::<Head>(json)
        && named != event_type
    {
        return Err(SignError::InvalidSample(format!(
            "the payload's webhookEvent is {named:?}, not {event_type:?}"
        )));
    }
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(IDENTIFIER_HEADER, header_value(delivery_id)?);
    // Jira Cloud marks an event's own delivery `Primary` (cascades are `Secondary`).
    headers.insert(
        "x-atlassian-webhook-flow",
        HeaderValue::from_static("Primary"),
    );
    if let Some(secret) = secret {
        let signature = hex::encode(hmac(Algorithm::Sha256, secret.expose(), &[json]));
        headers.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(&format!("sha256={signature}"))
                .map_err(|_| SignError::Unsupported("signature is not a header value".into()))?,
        );
    }
    let query = match token {
        Some(token) => {
            // `Jira::new` only accepts URL-safe ASCII tokens; the message never shows it.
            let token = std::str::from_utf8(token.expose())
                .map_err(|_| SignError::Unsupported("the token is not UTF-8".into()))?;
            Some(
                form_urlencoded::Serializer::new(String::new())
                    .append_pair(TOKEN_PARAM, token)
                    .finish(),
            )
        }
        None => None,
    };
    Ok(SignedDelivery {
        headers,
        body: Bytes::copy_from_slice(json),
        query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jira::{identify, verify};
    use hookbridge_core::RawDelivery;

    const JSON: &[u8] = br#"{"timestamp":1717577134571,"webhookEvent":"jira:issue_deleted"}"#;
    const TOKEN: &str = "t0k3n-0123456789abcdef";

    fn received(signed: &SignedDelivery) -> RawDelivery {
        let mut d = RawDelivery::new("jira", signed.headers.clone(), signed.body.clone());
        let uri = match &signed.query {
            Some(q) => format!("/hooks/jira?{q}"),
            None => "/hooks/jira".to_owned(),
        };
        d.uri = uri.parse().unwrap();
        d
    }

    #[test]
    fn signed_round_trip() {
        let secret = Secret::new("s3cret");
        let signed = sign(Some(&secret), None, "jira:issue_deleted", JSON, "id-1").unwrap();
        assert_eq!(signed.query, None);
        let d = received(&signed);
        verify::verify(std::slice::from_ref(&secret), false, None, &d).unwrap();
        let id = identify::identify(&d).unwrap();
        assert_eq!(id.delivery_id.as_str(), "id-1");
        assert_eq!(id.event_type, "jira:issue_deleted");
    }

    #[test]
    fn token_round_trip() {
        let token = Secret::new(TOKEN);
        let signed = sign(None, Some(&token), "jira:issue_deleted", JSON, "id-2").unwrap();
        assert_eq!(signed.query.as_deref(), Some(&*format!("token={TOKEN}")));
        assert!(!signed.headers.contains_key(SIGNATURE_HEADER));
        verify::verify(&[], true, Some(&token), &received(&signed)).unwrap();
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            sign(None, None, "jira:issue_deleted", JSON, "id"),
            Err(SignError::NoSecret)
        ));
        let secret = Secret::new("s");
        assert!(matches!(
            sign(Some(&secret), None, "comment_created", JSON, "id"),
            Err(SignError::InvalidSample(_))
        ));
        assert!(matches!(
            sign(Some(&secret), None, "jira:issue_deleted", JSON, "bad\nid"),
            Err(SignError::InvalidSample(_))
        ));
    }
}
