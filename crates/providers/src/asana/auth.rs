//! Authenticating to Asana's REST API: a personal access token, or OAuth 2.0.
//!
//! - A **personal access token** (or a service account's token) is a static bearer token:
//!   [`personal_access_token`] turns it into an [`Auth`]
//!   ([Personal access token](https://developers.asana.com/docs/personal-access-token)).
//! - **OAuth 2.0** uses the authorization code grant
//!   ([OAuth](https://developers.asana.com/docs/oauth)): the user is sent to
//!   `GET https://app.asana.com/-/oauth_authorize`, comes back to the redirect URI with a
//!   `code`, which is exchanged at `POST https://app.asana.com/-/oauth_token` for an access
//!   token (valid one hour, `expires_in`) and a refresh token. [`AsanaOAuthApp`] builds the
//!   authorization URL (with a random `state` and a PKCE S256 challenge) and exchanges codes
//!   and refresh tokens; [`AsanaOAuth`] is the [`Authenticate`] implementation that uses the
//!   access token, refreshes it [`DEFAULT_REFRESH_MARGIN`] before it expires and after a 401,
//!   and hands every refreshed [`TokenSet`] to a [`TokenListener`] so the server can persist it.
//!
//! The token endpoint takes the client credentials in the form body (`client_id`,
//! `client_secret`), which is what [`AuthType::RequestBody`] sends. The HTTP client used for it
//! follows no redirect, so a token request (which carries the client secret and the code or
//! refresh token) never goes anywhere but the configured endpoint.
//!
//! ```no_run
//! # async fn demo(code: &str, state_from_callback: &str) -> Result<(), hookbridge_providers::api::ApiError> {
//! use std::sync::Arc;
//! use hookbridge_core::Secret;
//! use hookbridge_providers::asana::auth::{AsanaOAuth, AsanaOAuthApp};
//! use hookbridge_providers::asana::client::{AsanaClient, DEFAULT_BASE_URL, api_builder};
//!
//! let app = Arc::new(AsanaOAuthApp::new(
//!     "1204567890123456",
//!     Secret::new("client-secret"),
//!     "https://hooks.example.com/oauth/asana/callback",
//! )?);
//! // 1. Send the user to `start.url`; keep `start.state` and `start.pkce_verifier` in the
//! //    user's session.
//! let start = app.authorize_url(&["tasks:read", "tasks:write", "stories:write"]);
//! // 2. On the callback, check the state, then exchange the code.
//! assert_eq!(start.state, state_from_callback);
//! let tokens = app.exchange_code(code, Some(&start.pkce_verifier)).await?;
//! // 3. Use (and persist) the tokens.
//! let auth = Arc::new(AsanaOAuth::new(app, tokens));
//! let client = AsanaClient::new(api_builder(DEFAULT_BASE_URL)?.auth_arc(auth).build()?);
//! # let _ = client; Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use hookbridge_core::Secret;
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret,
    CsrfToken, EndpointNotSet, EndpointSet, ExtraTokenFields, HttpRequest, HttpResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use reqwest::RequestBuilder;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::api::{ApiError, Auth, Authenticate};

const SERVICE: &str = "asana";

/// Asana's user authorization endpoint.
pub const AUTHORIZE_URL: &str = "https://app.asana.com/-/oauth_authorize";
/// Asana's token exchange endpoint (codes and refresh tokens).
pub const TOKEN_URL: &str = "https://app.asana.com/-/oauth_token";
/// How long before its expiry an access token is replaced by default. Asana's access tokens
/// live one hour.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(2 * 60);

/// A token response is a few hundred bytes; refuse to buffer an endless one.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;
/// Timeout of a token request.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

fn config_error(message: impl Into<String>) -> ApiError {
    ApiError::Config {
        service: SERVICE,
        message: message.into(),
    }
}

fn secret_text(secret: &Secret, what: &str) -> Result<String, ApiError> {
    String::from_utf8(secret.expose().to_vec())
        .map_err(|_| config_error(format!("the {what} is not UTF-8")))
}

/// Authentication with a personal access token (or a service account's token): sent as
/// `Authorization: Bearer <token>`.
pub fn personal_access_token(token: Secret) -> Auth {
    Auth::Bearer(token)
}

/// The user who authorized the app, as Asana's token response describes them in its `data`
/// field (only the fields it documents).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct AsanaOAuthUser {
    /// The user's gid.
    #[serde(default)]
    pub gid: Option<String>,
    /// The user's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The user's email.
    #[serde(default)]
    pub email: Option<String>,
}

/// The fields Asana adds to the standard OAuth 2.0 token response.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct AsanaTokenExtra {
    /// The authorizing user.
    #[serde(default)]
    data: Option<AsanaOAuthUser>,
}

impl ExtraTokenFields for AsanaTokenExtra {}

type AsanaTokenResponse = StandardTokenResponse<AsanaTokenExtra, BasicTokenType>;

/// The OAuth 2.0 client with an authorization and a token endpoint.
type OAuthClient = Client<
    BasicErrorResponse,
    AsanaTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The tokens of one authorization: what the server persists, and what [`AsanaOAuth`]
/// authenticates with. `Debug` shows no token.
#[derive(Clone)]
pub struct TokenSet {
    /// The access token (bearer).
    pub access_token: Secret,
    /// The refresh token. Asana returns one with the code exchange only; a refresh keeps the
    /// one it was made with.
    pub refresh_token: Option<Secret>,
    /// When the access token expires (`expires_in` after it was issued), if known.
    pub expires_at: Option<OffsetDateTime>,
    /// The authorizing user, when the token response named them.
    pub user: Option<AsanaOAuthUser>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .field("user", &self.user)
            .finish()
    }
}

impl TokenSet {
    /// Tokens restored from storage.
    pub fn new(
        access_token: Secret,
        refresh_token: Option<Secret>,
        expires_at: Option<OffsetDateTime>,
    ) -> Self {
        Self {
            access_token,
            refresh_token,
            expires_at,
            user: None,
        }
    }

    /// Whether the access token expires within `margin` of `now` (false when its expiry is
    /// unknown: a 401 will tell).
    pub fn expires_within(&self, now: OffsetDateTime, margin: Duration) -> bool {
        self.expires_at.is_some_and(|at| at - margin <= now)
    }

    fn from_response(
        response: &AsanaTokenResponse,
        previous_refresh: Option<Secret>,
        now: OffsetDateTime,
    ) -> Self {
        let expires_at = response.expires_in().map(|d| now + d);
        Self {
            access_token: Secret::new(response.access_token().secret().as_bytes()),
            refresh_token: response
                .refresh_token()
                .map(|t| Secret::new(t.secret().as_bytes()))
                .or(previous_refresh),
            expires_at,
            user: response.extra_fields().data.clone(),
        }
    }
}

/// The start of an authorization: the URL to send the user to, and what to keep (in the
/// user's session) to finish it. `Debug` shows no verifier.
#[derive(Clone)]
pub struct AuthorizationStart {
    /// The authorization URL (`response_type=code`, `client_id`, `redirect_uri`, `state`,
    /// `scope`, `code_challenge`, `code_challenge_method=S256`).
    pub url: String,
    /// The random `state`: the callback's `state` must equal it (CSRF protection).
    pub state: String,
    /// The PKCE code verifier, to hand to [`AsanaOAuthApp::exchange_code`].
    pub pkce_verifier: Secret,
}

impl fmt::Debug for AuthorizationStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationStart")
            .field("url", &self.url)
            .field("state", &self.state)
            .field("pkce_verifier", &"[redacted]")
            .finish()
    }
}

/// Why a token request failed before an OAuth answer came back. Never carries a body (a
/// token response that failed to parse may still hold a token).
#[derive(Debug, thiserror::Error)]
enum TokenHttpError {
    /// 5xx or 429: worth retrying later.
    #[error("the token endpoint answered HTTP {status}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// Connection failure or timeout.
    #[error("the token request failed: {0}")]
    Transport(String),
    /// An answer larger than any token response.
    #[error("the token endpoint's answer is too large")]
    TooLarge,
}

/// oauth2's [`AsyncHttpClient`] over reqwest 0.13 (oauth2 5 integrates only reqwest 0.12).
#[derive(Clone)]
struct TokenHttp {
    client: reqwest::Client,
}

impl TokenHttp {
    fn new() -> Result<Self, ApiError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TOKEN_TIMEOUT)
            .user_agent(concat!("hookbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| config_error(e.to_string()))?;
        Ok(Self { client })
    }

    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, TokenHttpError> {
        let request = reqwest::Request::try_from(request)
            .map_err(|e| TokenHttpError::Transport(e.without_url().to_string()))?;
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|e| TokenHttpError::Transport(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let retry_after = crate::api::retry_after_header(response.headers());
            return Err(TokenHttpError::Status {
                status: status.as_u16(),
                retry_after,
            });
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_TOKEN_RESPONSE as u64)
        {
            return Err(TokenHttpError::TooLarge);
        }
        let mut builder = http::Response::builder()
            .status(status)
            .version(response.version());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| TokenHttpError::Transport(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_TOKEN_RESPONSE {
                return Err(TokenHttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        builder
            .body(body)
            .map_err(|e| TokenHttpError::Transport(e.to_string()))
    }
}

impl<'c> AsyncHttpClient<'c> for TokenHttp {
    type Error = TokenHttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, TokenHttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.execute(request))
    }
}

/// The error of a failed token request, without any token or body in it.
fn token_error(error: RequestTokenError<TokenHttpError, BasicErrorResponse>) -> ApiError {
    match error {
        RequestTokenError::ServerResponse(response) => {
            let mut message = response.error().as_ref().to_owned();
            if let Some(description) = response.error_description() {
                message.push_str(": ");
                message.push_str(description);
            }
            match response.error() {
                // A revoked or expired grant, or wrong client credentials: only a new
                // authorization (or configuration) helps.
                BasicErrorResponseType::InvalidGrant
                | BasicErrorResponseType::InvalidClient
                | BasicErrorResponseType::UnauthorizedClient => ApiError::Unauthorized {
                    service: SERVICE,
                    message,
                },
                _ => ApiError::Validation {
                    service: SERVICE,
                    status: 400,
                    message,
                },
            }
        }
        RequestTokenError::Request(TokenHttpError::Status {
            status: 429,
            retry_after,
        }) => ApiError::RateLimited {
            service: SERVICE,
            retry_after,
        },
        RequestTokenError::Request(TokenHttpError::Status { status, .. }) => ApiError::Server {
            service: SERVICE,
            status,
            message: "the token endpoint failed".into(),
        },
        RequestTokenError::Request(TokenHttpError::Transport(message)) => ApiError::Transport {
            service: SERVICE,
            message,
        },
        RequestTokenError::Request(error @ TokenHttpError::TooLarge) => ApiError::Decode {
            service: SERVICE,
            message: error.to_string(),
        },
        // The body is deliberately dropped: it may be a token response of an unexpected shape.
        RequestTokenError::Parse(error, _body) => ApiError::Decode {
            service: SERVICE,
            message: format!(
                "the token endpoint's answer is not an OAuth token response (at {})",
                error.path()
            ),
        },
        RequestTokenError::Other(message) => ApiError::Decode {
            service: SERVICE,
            message,
        },
    }
}

/// An Asana OAuth app (registered in the developer console): builds authorization URLs and
/// exchanges authorization codes and refresh tokens for tokens. `Debug` shows no secret.
pub struct AsanaOAuthApp {
    oauth: OAuthClient,
    http: TokenHttp,
}

impl fmt::Debug for AsanaOAuthApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsanaOAuthApp")
            .field("client_id", &self.oauth.client_id().as_str())
            .field("authorize_url", &self.oauth.auth_uri().as_str())
            .field("token_url", &self.oauth.token_uri().as_str())
            .field(
                "redirect_uri",
                &self.oauth.redirect_uri().map(|u| u.as_str()),
            )
            .finish()
    }
}

impl AsanaOAuthApp {
    /// The app `client_id` with its `client_secret`, redirecting to `redirect_uri` (which must
    /// equal the redirect URL registered for the app), on Asana's endpoints
    /// ([`AUTHORIZE_URL`], [`TOKEN_URL`]).
    pub fn new(
        client_id: impl Into<String>,
        client_secret: Secret,
        redirect_uri: &str,
    ) -> Result<Self, ApiError> {
        let client_id = client_id.into();
        if client_id.trim().is_empty() {
            return Err(config_error("the OAuth client ID is empty"));
        }
        if client_secret.is_empty() {
            return Err(config_error("the OAuth client secret is empty"));
        }
        let secret = secret_text(&client_secret, "OAuth client secret")?;
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| config_error(format!("invalid OAuth redirect URI: {e}")))?;
        let oauth = Client::new(ClientId::new(client_id))
            .set_client_secret(ClientSecret::new(secret))
            .set_auth_uri(auth_url(AUTHORIZE_URL)?)
            .set_token_uri(token_url(TOKEN_URL)?)
            .set_redirect_uri(redirect)
            .set_auth_type(AuthType::RequestBody);
        Ok(Self {
            oauth,
            http: TokenHttp::new()?,
        })
    }

    /// The same app with other authorization and token endpoints (tests, proxies).
    pub fn with_endpoints(
        self,
        authorize_url: &str,
        token_endpoint: &str,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            oauth: self
                .oauth
                .set_auth_uri(auth_url(authorize_url)?)
                .set_token_uri(token_url(token_endpoint)?),
            http: self.http,
        })
    }

    /// The app's client ID.
    pub fn client_id(&self) -> &str {
        self.oauth.client_id().as_str()
    }

    /// Starts an authorization asking for `scopes` (Asana's, e.g. `tasks:read`; none asks for
    /// the app's default scope): the URL to redirect the user to, with a fresh random `state`
    /// and PKCE challenge that the caller keeps until the callback.
    pub fn authorize_url(&self, scopes: &[&str]) -> AuthorizationStart {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .oauth
            .authorize_url(CsrfToken::new_random)
            .add_scopes(scopes.iter().map(|s| Scope::new((*s).to_owned())))
            .set_pkce_challenge(challenge)
            .url();
        AuthorizationStart {
            url: url.to_string(),
            state: state.secret().clone(),
            pkce_verifier: Secret::new(verifier.secret().as_bytes()),
        }
    }

    /// Exchanges the `code` of the callback for tokens (`grant_type=authorization_code`), with
    /// the PKCE verifier of [`authorize_url`](Self::authorize_url) when one was used.
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: Option<&Secret>,
    ) -> Result<TokenSet, ApiError> {
        let mut request = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.to_owned()));
        if let Some(verifier) = pkce_verifier {
            request = request.set_pkce_verifier(PkceCodeVerifier::new(secret_text(
                verifier,
                "PKCE verifier",
            )?));
        }
        let response = request
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        Ok(TokenSet::from_response(
            &response,
            None,
            OffsetDateTime::now_utc(),
        ))
    }

    /// Exchanges a refresh token for a new access token (`grant_type=refresh_token`). The
    /// result keeps `refresh_token` unless Asana returned a new one.
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<TokenSet, ApiError> {
        let token = RefreshToken::new(secret_text(refresh_token, "refresh token")?);
        let response = self
            .oauth
            .exchange_refresh_token(&token)
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        Ok(TokenSet::from_response(
            &response,
            Some(refresh_token.clone()),
            OffsetDateTime::now_utc(),
        ))
    }
}

fn auth_url(url: &str) -> Result<AuthUrl, ApiError> {
    AuthUrl::new(url.to_owned())
        .map_err(|e| config_error(format!("invalid OAuth authorization URL: {e}")))
}

fn token_url(url: &str) -> Result<TokenUrl, ApiError> {
    TokenUrl::new(url.to_owned()).map_err(|e| config_error(format!("invalid OAuth token URL: {e}")))
}

/// Told about every refresh, so the new tokens survive a restart (the server stores them).
#[async_trait]
pub trait TokenListener: Send + Sync {
    /// The tokens were refreshed; they are already in use. A failure to persist them is the
    /// listener's to log: the tokens in memory stay valid, and Asana's refresh token does not
    /// change on refresh.
    async fn tokens_refreshed(&self, tokens: &TokenSet);
}

struct TokenState {
    tokens: TokenSet,
    /// Incremented by every refresh, so a task that waited for another's refresh sees it.
    generation: u64,
    /// Set by a 401: the access token must be replaced whatever its expiry says.
    stale: bool,
}

/// OAuth 2.0 credentials that refresh themselves: the [`Authenticate`] for an
/// [`AsanaClient`](super::client::AsanaClient) acting for one authorized user. Concurrent
/// calls share one refresh. `Debug` shows no token.
pub struct AsanaOAuth {
    app: Arc<AsanaOAuthApp>,
    state: Mutex<TokenState>,
    refresh_lock: tokio::sync::Mutex<()>,
    listener: Option<Arc<dyn TokenListener>>,
    margin: Duration,
}

impl fmt::Debug for AsanaOAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsanaOAuth")
            .field("app", &self.app)
            .field("tokens", &self.lock().tokens)
            .finish()
    }
}

impl AsanaOAuth {
    /// Credentials starting from `tokens` (from a code exchange or storage).
    pub fn new(app: Arc<AsanaOAuthApp>, tokens: TokenSet) -> Self {
        Self {
            app,
            state: Mutex::new(TokenState {
                tokens,
                generation: 0,
                stale: false,
            }),
            refresh_lock: tokio::sync::Mutex::new(()),
            listener: None,
            margin: DEFAULT_REFRESH_MARGIN,
        }
    }

    /// Calls `listener` after every refresh.
    pub fn with_listener(mut self, listener: Arc<dyn TokenListener>) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Refreshes this long before expiry instead of [`DEFAULT_REFRESH_MARGIN`].
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// The current tokens.
    pub fn tokens(&self) -> TokenSet {
        self.lock().tokens.clone()
    }

    // The state is replaced whole under the lock, so a panic elsewhere cannot leave it
    // half-written: a poisoned lock is still consistent.
    fn lock(&self) -> MutexGuard<'_, TokenState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn usable(&self, state: &TokenState, now: OffsetDateTime) -> bool {
        !state.stale && !state.tokens.expires_within(now, self.margin)
    }

    /// A valid access token: the cached one, or a refreshed one.
    pub async fn access_token(&self) -> Result<Secret, ApiError> {
        let seen = {
            let state = self.lock();
            if self.usable(&state, OffsetDateTime::now_utc()) {
                return Ok(state.tokens.access_token.clone());
            }
            state.generation
        };
        let _refreshing = self.refresh_lock.lock().await;
        let refresh_token = {
            let state = self.lock();
            // Another call refreshed while this one waited.
            if state.generation != seen && self.usable(&state, OffsetDateTime::now_utc()) {
                return Ok(state.tokens.access_token.clone());
            }
            state.tokens.refresh_token.clone()
        };
        let Some(refresh_token) = refresh_token else {
            return Err(ApiError::Unauthorized {
                service: SERVICE,
                message: "the access token expired or was refused and there is no refresh \
                          token: the user must authorize again"
                    .into(),
            });
        };
        let fresh = self.app.refresh(&refresh_token).await?;
        {
            let mut state = self.lock();
            state.tokens = fresh.clone();
            state.generation += 1;
            state.stale = false;
        }
        tracing::debug!(service = SERVICE, "refreshed the OAuth access token");
        if let Some(listener) = &self.listener {
            listener.tokens_refreshed(&fresh).await;
        }
        Ok(fresh.access_token)
    }
}

#[async_trait]
impl Authenticate for AsanaOAuth {
    async fn authenticate(&self, request: RequestBuilder) -> Result<RequestBuilder, ApiError> {
        let token = self.access_token().await?;
        Ok(request.bearer_auth(secret_text(&token, "access token")?))
    }

    fn invalidate(&self) {
        self.lock().stale = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_margin() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(10);
        let mut tokens = TokenSet::new(Secret::new("a"), None, None);
        assert!(!tokens.expires_within(now, DEFAULT_REFRESH_MARGIN));
        tokens.expires_at = Some(now + time::Duration::minutes(10));
        assert!(!tokens.expires_within(now, DEFAULT_REFRESH_MARGIN));
        tokens.expires_at = Some(now + time::Duration::seconds(90));
        assert!(tokens.expires_within(now, DEFAULT_REFRESH_MARGIN));
        tokens.expires_at = Some(now - time::Duration::seconds(1));
        assert!(tokens.expires_within(now, Duration::ZERO));
    }

    #[test]
    fn authorize_url_has_state_pkce_and_scopes() {
        let app = AsanaOAuthApp::new(
            "1204567890123456",
            Secret::new("s3cr3t-client"),
            "https://hooks.example.com/oauth/asana/callback",
        )
        .unwrap();
        let start = app.authorize_url(&["tasks:read", "stories:write"]);
        let url = reqwest::Url::parse(&start.url).unwrap();
        assert_eq!(url.origin().ascii_serialization(), "https://app.asana.com");
        assert_eq!(url.path(), "/-/oauth_authorize");
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["client_id"], "1204567890123456");
        assert_eq!(
            query["redirect_uri"],
            "https://hooks.example.com/oauth/asana/callback"
        );
        assert_eq!(query["scope"], "tasks:read stories:write");
        assert_eq!(query["state"], start.state);
        assert_eq!(query["code_challenge_method"], "S256");
        assert!(!query["code_challenge"].is_empty());
        // The secret and the verifier never appear in the URL or in Debug output.
        assert!(!start.url.contains("s3cr3t-client"));
        let verifier = String::from_utf8(start.pkce_verifier.expose().to_vec()).unwrap();
        assert!(!start.url.contains(&verifier));
        assert!(!format!("{start:?}").contains(&verifier));
        assert!(!format!("{app:?}").contains("s3cr3t-client"));
        // Each start is fresh.
        assert_ne!(app.authorize_url(&[]).state, start.state);
    }

    #[test]
    fn configuration_errors() {
        let redirect = "https://hooks.example.com/cb";
        assert!(AsanaOAuthApp::new("", Secret::new("s"), redirect).is_err());
        assert!(AsanaOAuthApp::new("id", Secret::new(""), redirect).is_err());
        assert!(AsanaOAuthApp::new("id", Secret::new("s"), "not a url").is_err());
        let app = AsanaOAuthApp::new("id", Secret::new("s"), redirect).unwrap();
        assert!(
            app.with_endpoints("nope", "https://x.example/token")
                .is_err()
        );
    }

    #[test]
    fn token_set_debug_is_redacted() {
        let tokens = TokenSet::new(
            Secret::new("access-123"),
            Some(Secret::new("refresh-456")),
            None,
        );
        let debug = format!("{tokens:?}");
        assert!(!debug.contains("access-123") && !debug.contains("refresh-456"));
    }
}
