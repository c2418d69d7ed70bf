//! Authentication to PagerDuty's REST API.
//!
//! Three kinds of credentials, all sent in `Authorization`:
//!
//! - a REST API key (account or user key): `Authorization: Token token=<key>`
//!   ([Authentication](https://developer.pagerduty.com/docs/rest-api-v2/authentication/));
//! - a user OAuth token obtained elsewhere (an OAuth login route): `Authorization: Bearer <token>`;
//! - a Scoped OAuth app's client credentials: an app token fetched from
//!   `https://identity.pagerduty.com/oauth/token` (`grant_type=client_credentials`), cached,
//!   fetched again shortly before it expires and after a 401 ([Obtaining an App OAuth
//!   Token](https://developer.pagerduty.com/docs/app-oauth-token)); see [`AppTokenSource`].
//!
//! Account-level API keys act as no user, so PagerDuty requires a `From: <email>` header on
//! writes (updating an incident, adding a note); [`PagerdutyClient`](super::client::PagerdutyClient)
//! sends the configured address on every write.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hookbridge_core::Secret;
use reqwest::RequestBuilder;
use serde::Deserialize;

use crate::api::{ApiError, Auth, Authenticate};

/// The service name used in errors.
pub(crate) const SERVICE: &str = "pagerduty";

/// PagerDuty's OAuth token endpoint for app tokens (client credentials).
pub const DEFAULT_TOKEN_URL: &str = "https://identity.pagerduty.com/oauth/token";

/// An app token is fetched again when it has less than this left (or half its lifetime, for
/// short-lived tokens), so a request never starts with a token about to expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// The token endpoint's answer is small; refuse to buffer more.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

/// How hookbridge authenticates to PagerDuty.
#[derive(Clone)]
pub enum PagerdutyCredentials {
    /// A REST API key (account or user), sent as `Authorization: Token token=<key>`.
    ApiKey(Secret),
    /// A user OAuth access token obtained by an OAuth login, sent as `Authorization: Bearer`.
    /// It is used as is: when it expires, calls fail with
    /// [`ApiError::Unauthorized`] until a new one is configured.
    OAuthToken(Secret),
    /// A Scoped OAuth app: app tokens are fetched with the client credentials grant and
    /// renewed automatically.
    App(AppCredentials),
}

impl fmt::Debug for PagerdutyCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PagerdutyCredentials::ApiKey(_) => {
                f.write_str("PagerdutyCredentials::ApiKey([redacted])")
            }
            PagerdutyCredentials::OAuthToken(_) => {
                f.write_str("PagerdutyCredentials::OAuthToken([redacted])")
            }
            PagerdutyCredentials::App(app) => f
                .debug_tuple("PagerdutyCredentials::App")
                .field(app)
                .finish(),
        }
    }
}

impl PagerdutyCredentials {
    /// The authenticator for these credentials. `http` is used only by app credentials, to
    /// fetch tokens (build it with redirects disabled: the request carries the client
    /// secret).
    pub fn authenticator(&self, http: reqwest::Client) -> Result<Arc<dyn Authenticate>, ApiError> {
        Ok(match self {
            PagerdutyCredentials::ApiKey(key) => Arc::new(api_key_auth(key)?),
            PagerdutyCredentials::OAuthToken(token) => Arc::new(oauth_token_auth(token)?),
            PagerdutyCredentials::App(app) => Arc::new(AppTokenSource::new(app.clone(), http)?),
        })
    }
}

/// `Authorization: Token token=<key>` for a REST API key.
pub fn api_key_auth(key: &Secret) -> Result<Auth, ApiError> {
    require_secret(key, "API key")?;
    let mut value = b"Token token=".to_vec();
    value.extend_from_slice(key.expose());
    Ok(Auth::header("authorization", value))
}

/// `Authorization: Bearer <token>` for a user OAuth token.
pub fn oauth_token_auth(token: &Secret) -> Result<Auth, ApiError> {
    require_secret(token, "OAuth token")?;
    Ok(Auth::Bearer(token.clone()))
}

fn require_secret(secret: &Secret, what: &str) -> Result<(), ApiError> {
    if secret.is_empty() {
        return Err(ApiError::Config {
            service: SERVICE,
            message: format!("the {what} is empty"),
        });
    }
    Ok(())
}

/// A Scoped OAuth app's client credentials.
#[derive(Clone)]
pub struct AppCredentials {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: Secret,
    /// The account the token is for, `{region}.{subdomain}` (`us.acme`), sent as the
    /// `as_account-` scope.
    pub account: String,
    /// The scopes to request, e.g. `incidents.write`, `users.read`, `priorities.read`.
    pub scopes: Vec<String>,
    /// The token endpoint ([`DEFAULT_TOKEN_URL`]; another URL for tests).
    pub token_url: String,
}

impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("account", &self.account)
            .field("scopes", &self.scopes)
            .field("token_url", &self.token_url)
            .finish()
    }
}

impl AppCredentials {
    /// The `scope` parameter: `as_account-<account>` followed by the scopes, space separated.
    pub fn scope(&self) -> String {
        std::iter::once(format!("as_account-{}", self.account))
            .chain(self.scopes.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Clone)]
struct CachedToken {
    token: Secret,
    /// When to fetch a new one: before the token expires.
    refresh_at: Instant,
}

/// App tokens for a Scoped OAuth app, fetched with the client credentials grant, cached until
/// five minutes before they expire, and dropped after a 401
/// ([`Authenticate::invalidate`]). Concurrent callers share one fetch.
pub struct AppTokenSource {
    credentials: AppCredentials,
    http: reqwest::Client,
    cache: Mutex<Option<CachedToken>>,
    fetching: tokio::sync::Mutex<()>,
}

impl fmt::Debug for AppTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppTokenSource")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    /// Seconds; 30 days in PagerDuty's example. Absent: assume an hour.
    #[serde(default)]
    expires_in: Option<u64>,
}

/// An OAuth error answer (`{"error": "invalid_client", "error_description": "..."}`).
#[derive(Deserialize)]
struct OAuthError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

impl AppTokenSource {
    /// A token source for `credentials`, fetching with `http`.
    pub fn new(credentials: AppCredentials, http: reqwest::Client) -> Result<Self, ApiError> {
        require_secret(&credentials.client_secret, "client secret")?;
        if credentials.client_id.is_empty() || credentials.account.is_empty() {
            return Err(ApiError::Config {
                service: SERVICE,
                message: "an app needs a client id and an account (`us.subdomain`)".into(),
            });
        }
        reqwest::Url::parse(&credentials.token_url).map_err(|e| ApiError::Config {
            service: SERVICE,
            message: format!("invalid token URL: {e}"),
        })?;
        Ok(Self {
            credentials,
            http,
            cache: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    fn cached(&self, now: Instant) -> Option<Secret> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .as_ref()
            .filter(|c| c.refresh_at > now)
            .map(|c| c.token.clone())
    }

    /// A valid app token: the cached one, or a new one.
    pub async fn token(&self) -> Result<Secret, ApiError> {
        if let Some(token) = self.cached(Instant::now()) {
            return Ok(token);
        }
        // One fetch at a time; whoever waited finds the token the first one fetched.
        let _fetching = self.fetching.lock().await;
        if let Some(token) = self.cached(Instant::now()) {
            return Ok(token);
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) = Some(fresh);
        Ok(token)
    }

    async fn fetch(&self) -> Result<CachedToken, ApiError> {
        let scope = self.credentials.scope();
        let secret = String::from_utf8_lossy(self.credentials.client_secret.expose()).into_owned();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.credentials.client_id.as_str()),
            ("client_secret", secret.as_str()),
            ("scope", scope.as_str()),
        ];
        let started = Instant::now();
        let mut response = self
            .http
            .post(&self.credentials.token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| ApiError::Transport {
                service: SERVICE,
                message: format!("token request: {}", e.without_url()),
            })?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| ApiError::Transport {
            service: SERVICE,
            message: format!("token response: {}", e.without_url()),
        })? {
            if body.len() + chunk.len() > MAX_TOKEN_RESPONSE {
                return Err(ApiError::Decode {
                    service: SERVICE,
                    message: "token response too large".into(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            // Only the OAuth error code and description: never the request, which has the
            // client secret.
            let message = serde_json::from_slice::<OAuthError>(&body)
                .ok()
                .map(|e| {
                    [e.error, e.error_description]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(": ")
                })
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| format!("token endpoint answered {}", status.as_u16()));
            return Err(match status.as_u16() {
                400 | 401 | 403 => ApiError::Unauthorized {
                    service: SERVICE,
                    message: format!("app token refused: {message}"),
                },
                429 => ApiError::RateLimited {
                    service: SERVICE,
                    retry_after: None,
                },
                s if s >= 500 => ApiError::Server {
                    service: SERVICE,
                    status: s,
                    message,
                },
                s => ApiError::Validation {
                    service: SERVICE,
                    status: s,
                    message,
                },
            });
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| ApiError::Decode {
                service: SERVICE,
                message: format!("token response: {e}"),
            })?;
        if parsed.access_token.is_empty()
            || parsed
                .token_type
                .as_deref()
                .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        {
            return Err(ApiError::Decode {
                service: SERVICE,
                message: "token response: not a bearer token".into(),
            });
        }
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
        Ok(CachedToken {
            token: Secret::new(parsed.access_token),
            refresh_at: started + lifetime - REFRESH_MARGIN.min(lifetime / 2),
        })
    }
}

#[async_trait]
impl Authenticate for AppTokenSource {
    async fn authenticate(&self, request: RequestBuilder) -> Result<RequestBuilder, ApiError> {
        let token = self.token().await?;
        Ok(request.bearer_auth(String::from_utf8_lossy(token.expose())))
    }

    fn invalidate(&self) {
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> AppCredentials {
        AppCredentials {
            client_id: "client-1".into(),
            client_secret: Secret::new("very-secret"),
            account: "us.acme".into(),
            scopes: vec!["incidents.write".into(), "users.read".into()],
            token_url: DEFAULT_TOKEN_URL.into(),
        }
    }

    #[test]
    fn scope_starts_with_the_account() {
        assert_eq!(
            app().scope(),
            "as_account-us.acme incidents.write users.read"
        );
    }

    #[test]
    fn secrets_never_print() {
        let shown = format!(
            "{:?} {:?} {:?}",
            PagerdutyCredentials::ApiKey(Secret::new("y_NbAkKc66ryYTWUXYEu")),
            PagerdutyCredentials::App(app()),
            AppTokenSource::new(app(), reqwest::Client::new()).unwrap()
        );
        assert!(!shown.contains("y_NbAkKc66ryYTWUXYEu"), "{shown}");
        assert!(!shown.contains("very-secret"), "{shown}");
    }

    #[test]
    fn empty_credentials_are_refused() {
        assert!(api_key_auth(&Secret::new("")).is_err());
        assert!(oauth_token_auth(&Secret::new("")).is_err());
        let mut bad = app();
        bad.account.clear();
        assert!(AppTokenSource::new(bad, reqwest::Client::new()).is_err());
    }
}
