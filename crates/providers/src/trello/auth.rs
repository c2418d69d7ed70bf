//! Authentication to Trello's REST API: an API key (the application's, from the Power-Up
//! admin page) and a user token, sent as the `key` and `token` query parameters of every
//! request ([Authorizing With Trello's REST
//! API](https://developer.atlassian.com/cloud/trello/guides/rest-api/authorization/)).
//!
//! Both end up in request URLs, so URLs never leave the client: the shared API layer strips
//! them from transport errors, and nothing here logs one. The token also appears in the
//! path of `GET /1/tokens/{token}/webhooks` ([`super::client::TrelloClient::list_webhooks`]).
//!
//! A user token is obtained by sending the user to [`authorize_url`]: Trello shows the grant
//! screen and then hands the token to the return URL (in the fragment) or shows it for the
//! user to copy. hookbridge stores it as a secret; it is not refreshed (choose
//! `expiration=never` or renew it by repeating the grant).

use std::fmt;

use hookbridge_core::Secret;

use crate::api::{ApiError, Auth};

/// The service name used in errors.
pub(crate) const SERVICE: &str = "trello";

/// Trello's authorization page.
pub const AUTHORIZE_URL: &str = "https://trello.com/1/authorize";

/// An API key and a user token.
#[derive(Clone)]
pub struct TrelloCredentials {
    /// The application's API key (`key`).
    pub key: Secret,
    /// The user token (`token`), which also owns the webhooks it creates.
    pub token: Secret,
}

impl fmt::Debug for TrelloCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TrelloCredentials([redacted])")
    }
}

impl TrelloCredentials {
    /// The credentials for `key` and `token`.
    pub fn new(key: impl Into<Vec<u8>>, token: impl Into<Vec<u8>>) -> Self {
        Self {
            key: Secret::new(key),
            token: Secret::new(token),
        }
    }

    /// `key` and `token` as query parameters of every request.
    pub fn auth(&self) -> Result<Auth, ApiError> {
        if self.key.is_empty() || self.token.is_empty() {
            return Err(ApiError::Config {
                service: SERVICE,
                message: "a Trello API key and token are both required".into(),
            });
        }
        Ok(Auth::Query(vec![
            ("key".to_owned(), self.key.clone()),
            ("token".to_owned(), self.token.clone()),
        ]))
    }
}

string_enum! {
    /// How long a token granted through [`authorize_url`] lasts (`expiration`).
    TokenExpiration {
        OneHour => "1hour",
        OneDay => "1day",
        ThirtyDays => "30days",
        Never => "never",
    }
}

/// The URL that asks a Trello user to grant a token to the application whose API key is
/// `key`: `https://trello.com/1/authorize?expiration=..&name=..&scope=..&response_type=token&key=..`,
/// plus `return_url` (and `callback_method=fragment`) when given. `scope` is a
/// comma-separated list of `read`, `write`, `account`. The API key is not a secret (the
/// application secret is); the token comes back in the return URL's fragment.
pub fn authorize_url(
    key: &str,
    app_name: &str,
    scope: &str,
    expiration: &TokenExpiration,
    return_url: Option<&str>,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("expiration", expiration.as_str())
        .append_pair("name", app_name)
        .append_pair("scope", scope)
        .append_pair("response_type", "token")
        .append_pair("key", key);
    if let Some(url) = return_url {
        query
            .append_pair("callback_method", "fragment")
            .append_pair("return_url", url);
    }
    format!("{AUTHORIZE_URL}?{}", query.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_print_and_must_be_set() {
        let credentials = TrelloCredentials::new("0471642aefef5fa1fa76530ce1ba4c85", "tok-123");
        assert!(!format!("{credentials:?}").contains("tok-123"));
        assert!(!format!("{:?}", credentials.auth().unwrap()).contains("tok-123"));
        assert!(TrelloCredentials::new("k", "").auth().is_err());
    }

    #[test]
    fn authorize_url_has_the_documented_parameters() {
        // https://developer.atlassian.com/cloud/trello/guides/rest-api/authorization/
        assert_eq!(
            authorize_url(
                "APIKEY",
                "MyPersonalToken",
                "read",
                &TokenExpiration::OneDay,
                None
            ),
            "https://trello.com/1/authorize?expiration=1day&name=MyPersonalToken&scope=read&response_type=token&key=APIKEY"
        );
        let url = authorize_url(
            "APIKEY",
            "hookbridge",
            "read,write",
            &TokenExpiration::Never,
            Some("https://hooks.example.com/trello/token"),
        );
        assert!(url.contains("scope=read%2Cwrite"), "{url}");
        assert!(
            url.ends_with(
                "callback_method=fragment&return_url=https%3A%2F%2Fhooks.example.com%2Ftrello%2Ftoken"
            ),
            "{url}"
        );
    }
}
