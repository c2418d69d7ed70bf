//! Matrix rooms, through the client-server API
//! ([Send a message event](https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3roomsroomidsendeventtypetxnid)):
//! `PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}` with
//! `Authorization: Bearer <access token>` and an `m.text` event
//! ([`m.room.message` msgtypes](https://spec.matrix.org/latest/client-server-api/#mroommessage-msgtypes)):
//! `body` in plain text, `format: org.matrix.custom.html` and `formatted_body` in HTML.
//!
//! The transaction id is the [`Message`]'s idempotency key: the homeserver answers a repeated
//! `PUT` with the same transaction id (same access token) with the event it already sent,
//! so a retry after a lost answer posts nothing twice.
//!
//! The HTML is built from the plain text (escaped, line breaks kept), the fields (a list) and
//! the link; the message's `mrkdwn` is Slack's dialect and is not used here.
//!
//! Errors come as `{"errcode": "M_...", "error": "..."}`: `M_FORBIDDEN` (not in the room)
//! is [`ApiError::Forbidden`], `M_UNKNOWN_TOKEN` [`ApiError::Unauthorized`], `M_LIMIT_EXCEEDED`
//! (429) [`ApiError::RateLimited`] with the `Retry-After` header when the homeserver sends it.

use std::fmt;

use async_trait::async_trait;
use hookbridge_core::Secret;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{Message, Notifier, SinkOptions, http_client};
use crate::api::{ApiClient, ApiError, Auth, Call};

const SERVICE: &str = "matrix";

/// A Matrix room a bot account posts to. `Debug` shows no token.
pub struct MatrixRoom {
    api: ApiClient,
    room_id: String,
}

impl fmt::Debug for MatrixRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatrixRoom")
            .field("homeserver", &self.api.base_url().as_str())
            .field("room_id", &self.room_id)
            .finish()
    }
}

/// The `m.room.message` event content.
#[derive(Serialize)]
struct RoomMessage {
    msgtype: &'static str,
    body: String,
    format: &'static str,
    formatted_body: String,
}

#[derive(Deserialize)]
struct SendAnswer {
    event_id: String,
}

impl MatrixRoom {
    /// The room `room_id` (`!opaque:example.org`, not an alias) on the homeserver at
    /// `homeserver` (its client-server API base, e.g. `https://matrix.example.org`), posting as
    /// the user of `access_token`, who must have joined the room.
    pub fn new(homeserver: &str, room_id: &str, access_token: Secret) -> Result<Self, ApiError> {
        Self::with_options(homeserver, room_id, access_token, SinkOptions::default())
    }

    /// The same, with a retry policy and timeout.
    pub fn with_options(
        homeserver: &str,
        room_id: &str,
        access_token: Secret,
        options: SinkOptions,
    ) -> Result<Self, ApiError> {
        let config = |message: &str| ApiError::Config {
            service: SERVICE,
            message: message.into(),
        };
        if !room_id.starts_with('!') || room_id.len() < 2 {
            return Err(config(
                "the Matrix room must be a room ID (`!...`), not an alias",
            ));
        }
        if access_token.is_empty() {
            return Err(config("the Matrix access token is empty"));
        }
        let api = ApiClient::builder(SERVICE, homeserver)?
            .http(http_client(SERVICE, &options)?)
            .auth(Auth::Bearer(access_token))
            .retry(options.retry)
            .build()?;
        Ok(Self {
            api,
            room_id: room_id.to_owned(),
        })
    }

    /// The room's ID.
    pub fn room_id(&self) -> &str {
        &self.room_id
    }

    /// Posts `message`, and returns the event's ID.
    pub async fn send(&self, message: &Message) -> Result<String, ApiError> {
        let txn_id = message.key(SERVICE)?;
        let path = format!(
            "_matrix/client/v3/rooms/{}/send/m.room.message/{}",
            encode(&self.room_id),
            encode(txn_id)
        );
        let call = Call::new(Method::PUT, path).json(&Self::content(message))?;
        let answer: SendAnswer = self.api.send_json(call).await?;
        Ok(answer.event_id)
    }

    fn content(message: &Message) -> RoomMessage {
        let mut body = message.text.clone();
        let mut html = escape(&message.text).replace('\n', "<br>");
        if !message.fields.is_empty() {
            html.push_str("<ul>");
            for (name, value) in &message.fields {
                body.push_str(&format!("\n{name}: {value}"));
                html.push_str(&format!(
                    "<li><strong>{}</strong>: {}</li>",
                    escape(name),
                    escape(value)
                ));
            }
            html.push_str("</ul>");
        }
        if let Some(url) = &message.url {
            body.push_str(&format!("\n{url}"));
            let url = escape(url);
            html.push_str(&format!("<p><a href=\"{url}\">{url}</a></p>"));
        }
        RoomMessage {
            msgtype: "m.text",
            body,
            format: "org.matrix.custom.html",
            formatted_body: html,
        }
    }
}

#[async_trait]
impl Notifier for MatrixRoom {
    async fn notify(&self, message: &Message) -> Result<(), ApiError> {
        self.send(message).await.map(|_| ())
    }
}

/// Percent-encodes a path segment (room IDs hold `!` and `:`; transaction ids are the
/// caller's).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_plain_and_html() {
        let message = Message::new("k", "Build <b>#42</b>\nfailed")
            .with_markdown("*ignored here*")
            .with_field("Branch", "main & dev")
            .with_url("https://ci.example.com/b?a=1&b=\"2\"");
        let content = serde_json::to_value(MatrixRoom::content(&message)).unwrap();
        assert_eq!(content["msgtype"], "m.text");
        assert_eq!(content["format"], "org.matrix.custom.html");
        assert_eq!(
            content["body"],
            "Build <b>#42</b>\nfailed\nBranch: main & dev\nhttps://ci.example.com/b?a=1&b=\"2\""
        );
        assert_eq!(
            content["formatted_body"],
            "Build &lt;b&gt;#42&lt;/b&gt;<br>failed<ul><li><strong>Branch</strong>: main &amp; dev</li></ul>\
             <p><a href=\"https://ci.example.com/b?a=1&amp;b=&quot;2&quot;\">https://ci.example.com/b?a=1&amp;b=&quot;2&quot;</a></p>"
        );
    }

    #[test]
    fn configuration() {
        let token = || Secret::new("syt_bot_token");
        assert!(
            MatrixRoom::new("https://matrix.example.org", "#alias:example.org", token()).is_err()
        );
        assert!(
            MatrixRoom::new(
                "https://matrix.example.org",
                "!r:example.org",
                Secret::new("")
            )
            .is_err()
        );
        assert!(MatrixRoom::new("not a url", "!r:example.org", token()).is_err());
        let room =
            MatrixRoom::new("https://matrix.example.org", "!r:example.org", token()).unwrap();
        assert!(!format!("{room:?}").contains("syt_bot_token"));
        assert_eq!(encode("!r:example.org"), "%21r%3Aexample.org");
    }
}
