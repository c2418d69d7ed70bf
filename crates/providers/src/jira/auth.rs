//! Authentication for Jira's REST APIs, in the three schemes hookbridge supports:
//!
//! 1. **Email + API token** (Jira Cloud): HTTP basic, see [`api_token`]. Data Center personal
//!    access tokens are bearer tokens, see [`personal_access_token`].
//! 2. **OAuth 1.0a, RSA-SHA1** (Jira Data Center application links): [`OAuth1Signer`] signs
//!    each request as RFC 5849 section 3.4 says (method, URL with its query, consumer key,
//!    access token, nonce, timestamp), [`OAuth1Auth`] plugs it into the
//!    [`ApiClient`](crate::api::ApiClient), and [`OAuth1Flow`] runs the three-legged dance
//!    against `{base}/plugins/servlet/oauth/{request-token,authorize,access-token}`.
//! 3. **OAuth 2.0 (3LO)** (Jira Cloud apps): [`OAuth2Config`] builds the authorization URL
//!    (`https://auth.atlassian.com/authorize`, `audience=api.atlassian.com`, a `state` the
//!    caller checks on the callback), exchanges the code and refreshes tokens at
//!    `https://auth.atlassian.com/oauth/token` through the `oauth2` crate, and finds the site's
//!    cloud id at `https://api.atlassian.com/oauth/token/accessible-resources`;
//!    [`OAuth2Auth`] holds the access and refresh tokens, refreshes before expiry and after a
//!    401, and tells the owner about every refreshed pair (Atlassian rotates refresh tokens:
//!    the old one stops working, so the new one must be persisted).
//!
//! Every endpoint URL is a field or a parameter, so tests point them at a mock server.
//! Credentials are [`Secret`]s and never reach `Debug`, errors or logs.

use std::fmt;
use std::future::Future;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hookbridge_core::Secret;
use oauth1_request as oauth1;
use oauth1_request::signature_method::Rsa09Sha1;
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, StatusCode, Url};
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::api::{ApiError, Auth, Authenticate};

const SERVICE: &str = "jira";

/// Atlassian's authorization endpoint for OAuth 2.0 (3LO).
pub const ATLASSIAN_AUTHORIZE_URL: &str = "https://auth.atlassian.com/authorize";
/// Atlassian's token endpoint (code exchange and refresh).
pub const ATLASSIAN_TOKEN_URL: &str = "https://auth.atlassian.com/oauth/token";
/// The `audience` Atlassian's authorization URL requires.
pub const ATLASSIAN_AUDIENCE: &str = "api.atlassian.com";
/// Lists the sites (cloud ids) an access token reaches.
pub const ATLASSIAN_ACCESSIBLE_RESOURCES_URL: &str =
    "https://api.atlassian.com/oauth/token/accessible-resources";
/// The API gateway OAuth 2.0 calls go through: `{gateway}/ex/jira/{cloudid}/rest/api/3/...`.
pub const ATLASSIAN_API_GATEWAY: &str = "https://api.atlassian.com";

/// Refresh this long before the access token's announced expiry, so a request never leaves
/// with a token that dies in flight.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Token answers are a few hundred bytes; refuse to buffer an endless body.
const MAX_AUTH_RESPONSE_BYTES: usize = 64 * 1024;

/// Why authenticating with Jira failed. Never carries a credential: token endpoint bodies
/// (which may echo tokens) are not quoted, only their documented error fields.
#[derive(Debug, thiserror::Error)]
pub enum JiraAuthError {
    /// A URL or setting is unusable.
    #[error("jira auth: configuration: {0}")]
    Config(String),
    /// The RSA private key could not be read.
    #[error("jira auth: not a PEM-encoded RSA private key: {0}")]
    InvalidKey(String),
    /// The request did not get an answer (connection, TLS, timeout).
    #[error("jira auth: request to the {endpoint} endpoint failed: {message}")]
    Transport {
        /// Which endpoint (`request-token`, `token`, ...).
        endpoint: &'static str,
        /// What failed, without the URL.
        message: String,
    },
    /// The endpoint answered with an error status and no usable error description (5xx,
    /// 429, or a 4xx without a documented body).
    #[error("jira auth: the {endpoint} endpoint answered HTTP {status}")]
    Status {
        /// Which endpoint.
        endpoint: &'static str,
        /// The status.
        status: u16,
        /// `Retry-After`, when the endpoint sent one.
        retry_after: Option<Duration>,
    },
    /// Jira's OAuth 1.0a servlet refused the request (`oauth_problem`, e.g.
    /// `signature_invalid`, `token_rejected`, `consumer_key_unknown`, `timestamp_refused`).
    #[error("jira auth: OAuth 1.0a {endpoint} refused (HTTP {status}): {problem}")]
    OAuth1Problem {
        /// Which endpoint.
        endpoint: &'static str,
        /// The status.
        status: u16,
        /// The `oauth_problem` value (or `unknown`).
        problem: String,
    },
    /// The OAuth 2.0 authorization server refused the grant (RFC 6749 section 5.2, e.g.
    /// `invalid_grant` for a used or revoked refresh token).
    #[error("jira auth: the authorization server refused the grant: {error}{}", .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected {
        /// The `error` code.
        error: String,
        /// The `error_description`, if any.
        description: Option<String>,
    },
    /// The answer was not what the documentation describes.
    #[error("jira auth: unexpected answer from the {endpoint} endpoint: {message}")]
    Decode {
        /// Which endpoint.
        endpoint: &'static str,
        /// What did not fit (never the body itself).
        message: String,
    },
    /// The access token expired and no refresh token is held (the `offline_access` scope was
    /// not granted).
    #[error(
        "jira auth: the OAuth 2.0 access token expired and there is no refresh token \
         (request the offline_access scope)"
    )]
    NoRefreshToken,
}

impl JiraAuthError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            JiraAuthError::Transport { .. } => true,
            JiraAuthError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

impl From<JiraAuthError> for ApiError {
    fn from(error: JiraAuthError) -> Self {
        let message = error.to_string();
        match error {
            JiraAuthError::Config(_) | JiraAuthError::InvalidKey(_) => ApiError::Config {
                service: SERVICE,
                message,
            },
            JiraAuthError::Transport { .. } => ApiError::Transport {
                service: SERVICE,
                message,
            },
            JiraAuthError::Status {
                status: 429,
                retry_after,
                ..
            } => ApiError::RateLimited {
                service: SERVICE,
                retry_after,
            },
            JiraAuthError::Status { status, .. } if status >= 500 => ApiError::Server {
                service: SERVICE,
                status,
                message,
            },
            JiraAuthError::Status { .. }
            | JiraAuthError::OAuth1Problem { .. }
            | JiraAuthError::Rejected { .. }
            | JiraAuthError::NoRefreshToken => ApiError::Unauthorized {
                service: SERVICE,
                message,
            },
            JiraAuthError::Decode { .. } => ApiError::Decode {
                service: SERVICE,
                message,
            },
        }
    }
}

fn secret_str<'a>(secret: &'a Secret, what: &str) -> Result<&'a str, JiraAuthError> {
    std::str::from_utf8(secret.expose())
        .map_err(|_| JiraAuthError::Config(format!("the {what} is not UTF-8")))
}

// ---------------------------------------------------------------------------------------------
// Static credentials
// ---------------------------------------------------------------------------------------------

/// Jira Cloud's email + API token, sent as HTTP basic authentication.
pub fn api_token(email: impl Into<String>, token: Secret) -> Auth {
    Auth::Basic {
        user: email.into(),
        password: token,
    }
}

/// A Jira Data Center personal access token, sent as `Authorization: Bearer <token>`.
pub fn personal_access_token(token: Secret) -> Auth {
    Auth::Bearer(token)
}

/// Reads an RSA private key from PEM: PKCS#8 (`-----BEGIN PRIVATE KEY-----`) or PKCS#1
/// (`-----BEGIN RSA PRIVATE KEY-----`). The error never contains key material.
pub fn parse_private_key_pem(pem: &Secret) -> Result<RsaPrivateKey, JiraAuthError> {
    let pem = secret_str(pem, "private key")?.trim();
    let pkcs8 = match RsaPrivateKey::from_pkcs8_pem(pem) {
        Ok(key) => return Ok(key),
        Err(e) => e,
    };
    RsaPrivateKey::from_pkcs1_pem(pem).map_err(|pkcs1| {
        JiraAuthError::InvalidKey(format!("as PKCS#8: {pkcs8}; as PKCS#1: {pkcs1}"))
    })
}

/// An HTTP client for the authorization endpoints: redirects are disabled (a token endpoint
/// that redirects could send credentials to another host), and timeouts are short.
#[derive(Clone, Debug)]
pub struct AuthHttp(reqwest::Client);

impl AuthHttp {
    /// A client with redirects disabled and a 30 s timeout.
    pub fn new() -> Result<Self, JiraAuthError> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("hookbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map(AuthHttp)
            .map_err(|e| JiraAuthError::Config(e.to_string()))
    }

    /// Uses `client`, which must have been built with `redirect(Policy::none())`.
    pub fn from_client(client: reqwest::Client) -> Self {
        AuthHttp(client)
    }

    /// The underlying client.
    pub fn client(&self) -> &reqwest::Client {
        &self.0
    }

    async fn read_body(
        endpoint: &'static str,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, JiraAuthError> {
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| JiraAuthError::Transport {
                endpoint,
                message: e.without_url().to_string(),
            })?
        {
            if body.len() + chunk.len() > MAX_AUTH_RESPONSE_BYTES {
                return Err(JiraAuthError::Decode {
                    endpoint,
                    message: format!("the answer is larger than {MAX_AUTH_RESPONSE_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The error of [`AuthHttp`] as the `oauth2` crate's HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum AuthHttpError {
    /// No answer.
    #[error("{0}")]
    Transport(String),
    /// A 5xx or 429 answer, reported as such rather than as an unparsable error body.
    #[error("HTTP {status}")]
    Status {
        /// The status.
        status: u16,
        /// `Retry-After`.
        retry_after: Option<Duration>,
    },
}

impl<'c> oauth2::AsyncHttpClient<'c> for AuthHttp {
    type Error = AuthHttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|e| AuthHttpError::Transport(e.without_url().to_string()))?;
            let response = self
                .0
                .execute(request)
                .await
                .map_err(|e| AuthHttpError::Transport(e.without_url().to_string()))?;
            let status = response.status();
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                return Err(AuthHttpError::Status {
                    status: status.as_u16(),
                    retry_after: crate::api::retry_after_header(response.headers()),
                });
            }
            let mut builder = http::Response::builder().status(status);
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = AuthHttp::read_body("token", response)
                .await
                .map_err(|e| AuthHttpError::Transport(e.to_string()))?;
            builder
                .body(body)
                .map_err(|e| AuthHttpError::Transport(e.to_string()))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// OAuth 1.0a, RSA-SHA1
// ---------------------------------------------------------------------------------------------

/// Protocol parameters of one OAuth 1.0a signature besides the credentials. `nonce` and
/// `timestamp` are generated when `None`; tests pin them to reproduce known vectors.
#[derive(Clone, Copy, Debug, Default)]
pub struct OAuth1Params<'a> {
    /// `oauth_callback` (temporary-credential requests only).
    pub callback: Option<&'a str>,
    /// `oauth_verifier` (token-credential requests only).
    pub verifier: Option<&'a str>,
    /// `oauth_nonce`; random when `None`.
    pub nonce: Option<&'a str>,
    /// `oauth_timestamp` (seconds since the epoch); now when `None`.
    pub timestamp: Option<u64>,
}

/// Signs requests with OAuth 1.0a RSA-SHA1 for one consumer (a Jira application link). The
/// consumer and token secrets do not take part in RSA-SHA1 (RFC 5849 section 3.4.3), so
/// only the consumer key, the private key and the token are held.
pub struct OAuth1Signer {
    consumer_key: String,
    method: Rsa09Sha1,
}

impl fmt::Debug for OAuth1Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth1Signer")
            .field("consumer_key", &self.consumer_key)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

/// RFC 3986 unreserved characters: the only ones the percent-encoding of RFC 5849 section
/// 3.6 leaves alone.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 5849 section 3.6 percent-encoding (used here only to sort parameters as section
/// 3.4.1.3.2 says: by encoded name, then encoded value).
pub(super) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The base string URI of RFC 5849 section 3.4.1.2: lowercase scheme and host, the port
/// only when it is not the scheme's default, the path, no query and no fragment.
fn base_string_uri(url: &Url) -> Result<String, JiraAuthError> {
    let host = url
        .host_str()
        .ok_or_else(|| JiraAuthError::Config("the request URL has no host".into()))?;
    // `Url` already lowercases the scheme and a domain host, and drops a default port.
    let mut uri = format!("{}://{}", url.scheme(), host.to_ascii_lowercase());
    if let Some(port) = url.port() {
        uri.push_str(&format!(":{port}"));
    }
    uri.push_str(url.path());
    Ok(uri)
}

impl OAuth1Signer {
    /// A signer for `consumer_key` (the application link's consumer key) with its RSA key.
    pub fn new(consumer_key: impl Into<String>, private_key: RsaPrivateKey) -> Self {
        Self {
            consumer_key: consumer_key.into(),
            method: Rsa09Sha1::new(private_key),
        }
    }

    /// A signer from a PEM private key (PKCS#8 or PKCS#1).
    pub fn from_pem(consumer_key: impl Into<String>, pem: &Secret) -> Result<Self, JiraAuthError> {
        Ok(Self::new(consumer_key, parse_private_key_pem(pem)?))
    }

    /// The consumer key.
    pub fn consumer_key(&self) -> &str {
        &self.consumer_key
    }

    /// The `Authorization: OAuth ...` header value for `method url` (its query parameters are
    /// signed, as RFC 5849 section 3.4.1.3.1 requires), with `token` (the access or request
    /// token) when there is one.
    ///
    /// Query parameter names must be made of RFC 3986 unreserved characters (all of Jira's
    /// are) and may not start with `oauth_`; other names are refused rather than signed in a
    /// way a server might normalize differently.
    pub fn authorization_header(
        &self,
        method: &str,
        url: &Url,
        token: Option<&str>,
        params: &OAuth1Params<'_>,
    ) -> Result<String, JiraAuthError> {
        let base_uri = base_string_uri(url)?;
        // Query parameters are decoded the application/x-www-form-urlencoded way (section
        // 3.4.1.3.1), then sorted by encoded name and value (section 3.4.1.3.2).
        let mut pairs: Vec<(String, String, String)> = Vec::new();
        for (name, value) in url.query_pairs() {
            if name.is_empty() || !name.bytes().all(is_unreserved) || name.starts_with("oauth_") {
                return Err(JiraAuthError::Config(format!(
                    "cannot sign the query parameter name {name:?}"
                )));
            }
            let encoded = percent_encode(&value);
            pairs.push((name.into_owned(), encoded, value.into_owned()));
        }
        pairs.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        // `AssertSorted` interleaves the `oauth_*` parameters at their places in that order.
        let request = oauth1::request::AssertSorted::new(
            pairs
                .iter()
                .map(|(name, _, value)| (name.as_str(), value.as_str())),
        );
        let mut builder = oauth1::Builder::<_, &str, &str>::new(
            oauth1::Credentials::new(self.consumer_key.as_str(), ""),
            &self.method,
        );
        builder
            .token(token.map(|t| oauth1::Credentials::new(t, "")))
            .callback(params.callback)
            .verifier(params.verifier)
            .nonce(params.nonce)
            .timestamp(params.timestamp.and_then(NonZeroU64::new))
            // Jira's own examples send oauth_version=1.0; RFC 5849 makes it optional.
            .version(true);
        Ok(builder.authorize(method, base_uri, &request))
    }

    /// Signs a built request in place with `token`.
    fn sign_request(&self, request: &mut reqwest::Request, token: &str) -> Result<(), ApiError> {
        let header = self.authorization_header(
            request.method().as_str(),
            request.url(),
            Some(token),
            &OAuth1Params::default(),
        )?;
        let mut value = HeaderValue::from_str(&header).map_err(|_| ApiError::Config {
            service: SERVICE,
            message: "the OAuth 1.0a header is not a valid header value".into(),
        })?;
        value.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, value);
        Ok(())
    }
}

/// Signs every API request with OAuth 1.0a RSA-SHA1 and an access token obtained through
/// [`OAuth1Flow`]. Jira access tokens are long-lived (five years by default), so there is
/// nothing to refresh.
pub struct OAuth1Auth {
    signer: Arc<OAuth1Signer>,
    token: Secret,
}

impl fmt::Debug for OAuth1Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth1Auth")
            .field("signer", &self.signer)
            .field("token", &self.token)
            .finish()
    }
}

impl OAuth1Auth {
    /// Signs with `signer` and the access token `token`.
    pub fn new(signer: Arc<OAuth1Signer>, token: Secret) -> Self {
        Self { signer, token }
    }
}

#[async_trait]
impl Authenticate for OAuth1Auth {
    async fn authenticate(&self, request: RequestBuilder) -> Result<RequestBuilder, ApiError> {
        // The signature covers the method and the final URL with its query, so sign the
        // request as built.
        let (client, request) = request.build_split();
        let mut request = request.map_err(|e| ApiError::Config {
            service: SERVICE,
            message: e.without_url().to_string(),
        })?;
        let token = secret_str(&self.token, "access token")?;
        self.signer.sign_request(&mut request, token)?;
        Ok(RequestBuilder::from_parts(client, request))
    }
}

/// Temporary credentials (the request token) from the first leg.
#[derive(Clone, Debug)]
pub struct RequestToken {
    /// `oauth_token`: goes into the authorization URL and signs the access-token request.
    pub token: Secret,
    /// `oauth_token_secret` (unused by RSA-SHA1, kept for completeness).
    pub secret: Secret,
    /// `oauth_callback_confirmed`.
    pub callback_confirmed: bool,
}

/// Token credentials (the access token) from the last leg.
#[derive(Clone, Debug)]
pub struct AccessToken {
    /// `oauth_token`: signs API requests (see [`OAuth1Auth`]).
    pub token: Secret,
    /// `oauth_token_secret` (unused by RSA-SHA1).
    pub secret: Secret,
    /// `oauth_expires_in` in seconds, when Jira says.
    pub expires_in: Option<u64>,
    /// `oauth_authorization_expires_in` in seconds, when Jira says.
    pub authorization_expires_in: Option<u64>,
}

/// The OAuth 1.0a three-legged flow of a Jira Data Center application link:
/// `POST {base}/plugins/servlet/oauth/request-token`, the user approves at
/// `{base}/plugins/servlet/oauth/authorize?oauth_token=...`, then
/// `POST {base}/plugins/servlet/oauth/access-token` with the verifier.
#[derive(Debug, Clone)]
pub struct OAuth1Flow {
    base: Url,
    signer: Arc<OAuth1Signer>,
    http: AuthHttp,
}

impl OAuth1Flow {
    /// The flow against the Jira at `base_url` (with its context path, e.g.
    /// `https://jira.example.com/jira`).
    pub fn new(
        base_url: &str,
        signer: Arc<OAuth1Signer>,
        http: AuthHttp,
    ) -> Result<Self, JiraAuthError> {
        let mut base = Url::parse(base_url)
            .map_err(|e| JiraAuthError::Config(format!("invalid Jira base URL: {e}")))?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self { base, signer, http })
    }

    fn endpoint(&self, name: &str) -> Result<Url, JiraAuthError> {
        self.base
            .join(&format!("plugins/servlet/oauth/{name}"))
            .map_err(|e| JiraAuthError::Config(format!("invalid Jira base URL: {e}")))
    }

    /// The signer.
    pub fn signer(&self) -> &Arc<OAuth1Signer> {
        &self.signer
    }

    /// Leg 1: temporary credentials. `callback` is where Jira sends the user back with
    /// `oauth_verifier`; `None` sends `oob` (RFC 5849 section 2.1), and Jira then shows the
    /// verifier to the user instead.
    pub async fn request_token(
        &self,
        callback: Option<&str>,
    ) -> Result<RequestToken, JiraAuthError> {
        let url = self.endpoint("request-token")?;
        let params = OAuth1Params {
            callback: Some(callback.unwrap_or("oob")),
            ..OAuth1Params::default()
        };
        let answer = self.post("request-token", url, None, &params).await?;
        Ok(RequestToken {
            token: answer.required("oauth_token", "request-token")?,
            secret: answer.required("oauth_token_secret", "request-token")?,
            callback_confirmed: answer.get("oauth_callback_confirmed") == Some("true"),
        })
    }

    /// Leg 2: where to send the user to approve `request_token`.
    pub fn authorize_url(&self, request_token: &RequestToken) -> Result<Url, JiraAuthError> {
        let mut url = self.endpoint("authorize")?;
        url.query_pairs_mut().append_pair(
            "oauth_token",
            secret_str(&request_token.token, "request token")?,
        );
        Ok(url)
    }

    /// Leg 3: exchanges the approved request token and its `oauth_verifier` for an access
    /// token.
    pub async fn access_token(
        &self,
        request_token: &RequestToken,
        verifier: &str,
    ) -> Result<AccessToken, JiraAuthError> {
        let url = self.endpoint("access-token")?;
        let params = OAuth1Params {
            verifier: Some(verifier),
            ..OAuth1Params::default()
        };
        let token = secret_str(&request_token.token, "request token")?;
        let answer = self.post("access-token", url, Some(token), &params).await?;
        let number = |name: &str| answer.get(name).and_then(|v| v.parse::<u64>().ok());
        Ok(AccessToken {
            token: answer.required("oauth_token", "access-token")?,
            secret: answer.required("oauth_token_secret", "access-token")?,
            expires_in: number("oauth_expires_in"),
            authorization_expires_in: number("oauth_authorization_expires_in"),
        })
    }

    /// An authenticator for API calls with `access_token`.
    pub fn authenticator(&self, access_token: &AccessToken) -> OAuth1Auth {
        OAuth1Auth::new(self.signer.clone(), access_token.token.clone())
    }

    async fn post(
        &self,
        endpoint: &'static str,
        url: Url,
        token: Option<&str>,
        params: &OAuth1Params<'_>,
    ) -> Result<FormAnswer, JiraAuthError> {
        let header = self
            .signer
            .authorization_header("POST", &url, token, params)?;
        let mut value = HeaderValue::from_str(&header).map_err(|_| {
            JiraAuthError::Config("the OAuth 1.0a header is not a valid header value".into())
        })?;
        value.set_sensitive(true);
        let response = self
            .http
            .0
            .post(url)
            .header(AUTHORIZATION, value)
            .send()
            .await
            .map_err(|e| JiraAuthError::Transport {
                endpoint,
                message: e.without_url().to_string(),
            })?;
        let status = response.status();
        let www_authenticate = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let wait = crate::api::retry_after_header(response.headers());
        let body = AuthHttp::read_body(endpoint, response).await?;
        let answer = FormAnswer::parse(&body);
        if status.is_success() {
            return Ok(answer);
        }
        // Jira reports OAuth failures as `oauth_problem=...`, in the body or in
        // `WWW-Authenticate: OAuth realm="...", oauth_problem="..."`. Only that field is
        // kept: the rest may echo the signature base string, which contains the token.
        let problem = answer.get("oauth_problem").map(str::to_owned).or_else(|| {
            www_authenticate.as_deref().and_then(|h| {
                h.split(',').find_map(|part| {
                    let (k, v) = part.trim().split_once('=')?;
                    (k.trim().trim_start_matches("OAuth ").trim() == "oauth_problem")
                        .then(|| v.trim().trim_matches('"').to_owned())
                })
            })
        });
        match problem {
            Some(problem) => Err(JiraAuthError::OAuth1Problem {
                endpoint,
                status: status.as_u16(),
                problem,
            }),
            None => Err(JiraAuthError::Status {
                endpoint,
                status: status.as_u16(),
                retry_after: wait,
            }),
        }
    }
}

/// An `application/x-www-form-urlencoded` answer of the OAuth 1.0a servlet.
struct FormAnswer(Vec<(String, String)>);

impl FormAnswer {
    fn parse(body: &[u8]) -> Self {
        FormAnswer(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str, endpoint: &'static str) -> Result<Secret, JiraAuthError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .ok_or_else(|| JiraAuthError::Decode {
                endpoint,
                message: format!("no {name} in the answer"),
            })
    }
}

// ---------------------------------------------------------------------------------------------
// OAuth 2.0 (3LO)
// ---------------------------------------------------------------------------------------------

/// An OAuth 2.0 (3LO) app registered in Atlassian's developer console, and the endpoints it
/// talks to (Atlassian's by default; tests point them elsewhere).
#[derive(Clone, Debug)]
pub struct OAuth2Config {
    /// The app's client id.
    pub client_id: String,
    /// The app's secret (Atlassian requires it for code exchange and refresh).
    pub client_secret: Secret,
    /// The callback URL registered for the app.
    pub redirect_url: String,
    /// Scopes, e.g. `read:jira-work write:jira-work manage:jira-webhook offline_access`
    /// (`offline_access` is what yields a refresh token).
    pub scopes: Vec<String>,
    /// The authorization endpoint.
    pub authorize_url: String,
    /// The token endpoint.
    pub token_url: String,
    /// The `audience` parameter.
    pub audience: String,
    /// The accessible-resources endpoint.
    pub accessible_resources_url: String,
    /// The API gateway (`{gateway}/ex/jira/{cloudid}`).
    pub api_gateway_url: String,
}

/// A fresh authorization URL and the `state` it carries, to be stored with the user's
/// session and compared (see [`states_match`]) with the `state` of the callback.
#[derive(Clone, Debug)]
pub struct AuthorizationRequest {
    /// Where to send the user.
    pub url: Url,
    /// The `state` value.
    pub state: String,
}

/// Compares the stored and received `state` in constant time.
pub fn states_match(expected: &str, received: &str) -> bool {
    !expected.is_empty() && Secret::new(expected) == Secret::new(received)
}

/// The tokens of one OAuth 2.0 grant.
#[derive(Clone, Debug)]
pub struct OAuth2Tokens {
    /// The access token.
    pub access_token: Secret,
    /// The refresh token (rotating: every refresh returns a new one).
    pub refresh_token: Option<Secret>,
    /// When the access token expires, if the server said.
    pub expires_at: Option<OffsetDateTime>,
    /// The granted scopes, if the server said.
    pub scopes: Vec<String>,
}

impl OAuth2Tokens {
    fn from_response(response: &BasicTokenResponse) -> Self {
        OAuth2Tokens {
            access_token: Secret::new(response.access_token().secret().as_str()),
            refresh_token: response
                .refresh_token()
                .map(|t| Secret::new(t.secret().as_str())),
            expires_at: response.expires_in().map(|d| OffsetDateTime::now_utc() + d),
            scopes: response
                .scopes()
                .map(|s| s.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
        }
    }
}

/// A Jira Cloud site the access token reaches (`accessible-resources`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessibleResource {
    /// The cloud id, which goes into the API base URL.
    pub id: String,
    /// The site URL, e.g. `https://your-domain.atlassian.net`.
    pub url: String,
    /// The site name.
    #[serde(default)]
    pub name: String,
    /// Scopes granted on this site.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The site's avatar.
    #[serde(default)]
    pub avatar_url: Option<String>,
}

type ConfiguredClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn map_token_error(error: RequestTokenError<AuthHttpError, BasicErrorResponse>) -> JiraAuthError {
    const ENDPOINT: &str = "token";
    match error {
        RequestTokenError::ServerResponse(response) => JiraAuthError::Rejected {
            error: response.error().as_ref().to_owned(),
            description: response.error_description().cloned(),
        },
        RequestTokenError::Request(AuthHttpError::Transport(message)) => JiraAuthError::Transport {
            endpoint: ENDPOINT,
            message,
        },
        RequestTokenError::Request(AuthHttpError::Status {
            status,
            retry_after,
        }) => JiraAuthError::Status {
            endpoint: ENDPOINT,
            status,
            retry_after,
        },
        // The body is not quoted: a malformed answer may still contain a token.
        RequestTokenError::Parse(error, _) => JiraAuthError::Decode {
            endpoint: ENDPOINT,
            message: format!("not a token response (at `{}`)", error.path()),
        },
        RequestTokenError::Other(message) => JiraAuthError::Decode {
            endpoint: ENDPOINT,
            message,
        },
    }
}

impl OAuth2Config {
    /// An app with Atlassian's endpoints.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: Secret,
        redirect_url: impl Into<String>,
        scopes: Vec<String>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
            redirect_url: redirect_url.into(),
            scopes,
            authorize_url: ATLASSIAN_AUTHORIZE_URL.into(),
            token_url: ATLASSIAN_TOKEN_URL.into(),
            audience: ATLASSIAN_AUDIENCE.into(),
            accessible_resources_url: ATLASSIAN_ACCESSIBLE_RESOURCES_URL.into(),
            api_gateway_url: ATLASSIAN_API_GATEWAY.into(),
        }
    }

    fn client(&self) -> Result<ConfiguredClient, JiraAuthError> {
        let secret = secret_str(&self.client_secret, "client secret")?;
        let invalid = |what: &str, e: oauth2::url::ParseError| {
            JiraAuthError::Config(format!("invalid {what}: {e}"))
        };
        Ok(BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(secret.to_owned()))
            .set_auth_uri(
                AuthUrl::new(self.authorize_url.clone())
                    .map_err(|e| invalid("authorization URL", e))?,
            )
            .set_token_uri(
                TokenUrl::new(self.token_url.clone()).map_err(|e| invalid("token URL", e))?,
            )
            .set_redirect_uri(
                RedirectUrl::new(self.redirect_url.clone())
                    .map_err(|e| invalid("redirect URL", e))?,
            )
            // Atlassian documents client_id and client_secret as body parameters.
            .set_auth_type(AuthType::RequestBody))
    }

    /// The authorization URL with a fresh random `state` (Atlassian requires one; it does not
    /// document PKCE, so `state` is what binds the callback to the user).
    pub fn authorize_url(&self) -> Result<AuthorizationRequest, JiraAuthError> {
        let state = CsrfToken::new_random();
        let url = self.authorize_url_with_state(state.secret())?;
        Ok(AuthorizationRequest {
            url,
            state: state.secret().clone(),
        })
    }

    /// The authorization URL with the given `state`: `audience`, `client_id`, `scope`,
    /// `redirect_uri`, `state`, `response_type=code`, `prompt=consent`.
    pub fn authorize_url_with_state(&self, state: &str) -> Result<Url, JiraAuthError> {
        let state = CsrfToken::new(state.to_owned());
        let (url, _) = self
            .client()?
            .authorize_url(|| state)
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .add_extra_param("audience", self.audience.clone())
            .add_extra_param("prompt", "consent")
            .url();
        Url::parse(url.as_str()).map_err(|e| JiraAuthError::Config(e.to_string()))
    }

    /// Exchanges the callback's `code` for tokens (`grant_type=authorization_code`).
    pub async fn exchange_code(
        &self,
        http: &AuthHttp,
        code: &str,
    ) -> Result<OAuth2Tokens, JiraAuthError> {
        let client = self.client()?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .request_async(http)
            .await
            .map_err(map_token_error)?;
        Ok(OAuth2Tokens::from_response(&response))
    }

    /// Exchanges a refresh token for a new access token and a new refresh token
    /// (`grant_type=refresh_token`). Atlassian rotates refresh tokens: persist the new one.
    /// When the answer holds no refresh token, the one sent is kept.
    pub async fn refresh(
        &self,
        http: &AuthHttp,
        refresh_token: &Secret,
    ) -> Result<OAuth2Tokens, JiraAuthError> {
        let client = self.client()?;
        let refresh = RefreshToken::new(secret_str(refresh_token, "refresh token")?.to_owned());
        let response = client
            .exchange_refresh_token(&refresh)
            .request_async(http)
            .await
            .map_err(map_token_error)?;
        let mut tokens = OAuth2Tokens::from_response(&response);
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = Some(refresh_token.clone());
        }
        Ok(tokens)
    }

    /// The Jira Cloud sites `access_token` reaches (`GET accessible-resources`); each `id`
    /// is a cloud id for [`OAuth2Config::api_base_url`].
    pub async fn accessible_resources(
        &self,
        http: &AuthHttp,
        access_token: &Secret,
    ) -> Result<Vec<AccessibleResource>, JiraAuthError> {
        const ENDPOINT: &str = "accessible-resources";
        let token = secret_str(access_token, "access token")?;
        let response = http
            .0
            .get(&self.accessible_resources_url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| JiraAuthError::Transport {
                endpoint: ENDPOINT,
                message: e.without_url().to_string(),
            })?;
        let status = response.status();
        let wait = crate::api::retry_after_header(response.headers());
        let body = AuthHttp::read_body(ENDPOINT, response).await?;
        if !status.is_success() {
            return Err(JiraAuthError::Status {
                endpoint: ENDPOINT,
                status: status.as_u16(),
                retry_after: wait,
            });
        }
        serde_json::from_slice(&body).map_err(|e| JiraAuthError::Decode {
            endpoint: ENDPOINT,
            message: e.to_string(),
        })
    }

    /// The REST API base URL of the site with `cloud_id`: `{gateway}/ex/jira/{cloud_id}`.
    pub fn api_base_url(&self, cloud_id: &str) -> String {
        format!(
            "{}/ex/jira/{}",
            self.api_gateway_url.trim_end_matches('/'),
            cloud_id
        )
    }
}

/// Where [`OAuth2Auth`] hands every refreshed token pair, awaited before the new access
/// token is used (so a crash cannot lose a rotated refresh token that was already used).
#[async_trait]
pub trait PersistTokens: Send + Sync {
    /// Stores `tokens`. A failure is logged (without the tokens) and the new tokens are still
    /// used: the old refresh token is already spent.
    async fn persist(&self, tokens: &OAuth2Tokens) -> Result<(), String>;
}

struct TokenState {
    tokens: OAuth2Tokens,
    refreshed_at: Option<Instant>,
}

/// OAuth 2.0 (3LO) credentials that refresh themselves: before the access token expires
/// (with a margin) and after a 401. Refreshes are serialized, so one rotating refresh token
/// is never spent twice. Every new token pair is published on [`OAuth2Auth::subscribe`] and
/// handed to the [`PersistTokens`] hook, if any.
pub struct OAuth2Auth {
    config: OAuth2Config,
    http: AuthHttp,
    state: Mutex<TokenState>,
    stale: AtomicBool,
    refresh_lock: tokio::sync::Mutex<()>,
    updates: watch::Sender<OAuth2Tokens>,
    persist: Option<Arc<dyn PersistTokens>>,
    margin: Duration,
}

impl fmt::Debug for OAuth2Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Auth")
            .field("client_id", &self.config.client_id)
            .field("token_url", &self.config.token_url)
            .finish_non_exhaustive()
    }
}

/// A token refreshed this recently is not the one a 401 was about: concurrent requests that
/// all failed with the previous token must not trigger one refresh each.
const REFRESH_GRACE: Duration = Duration::from_secs(5);

impl OAuth2Auth {
    /// Credentials from stored `tokens` (from [`OAuth2Config::exchange_code`] or storage).
    pub fn new(config: OAuth2Config, http: AuthHttp, tokens: OAuth2Tokens) -> Self {
        let (updates, _) = watch::channel(tokens.clone());
        Self {
            config,
            http,
            state: Mutex::new(TokenState {
                tokens,
                refreshed_at: None,
            }),
            stale: AtomicBool::new(false),
            refresh_lock: tokio::sync::Mutex::new(()),
            updates,
            persist: None,
            margin: DEFAULT_REFRESH_MARGIN,
        }
    }

    /// Awaits `persist` with every refreshed token pair.
    pub fn with_persist(mut self, persist: Arc<dyn PersistTokens>) -> Self {
        self.persist = Some(persist);
        self
    }

    /// Refreshes this long before the expiry (default [`DEFAULT_REFRESH_MARGIN`]).
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Receives every refreshed token pair (the current one first).
    pub fn subscribe(&self) -> watch::Receiver<OAuth2Tokens> {
        self.updates.subscribe()
    }

    /// The tokens held now.
    pub fn tokens(&self) -> OAuth2Tokens {
        self.lock().tokens.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TokenState> {
        // A panic while holding the lock cannot leave the state half-written (assignments
        // only), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fresh_token(&self) -> Option<Secret> {
        if self.stale.load(Ordering::Acquire) {
            return None;
        }
        let state = self.lock();
        let expiring = state
            .tokens
            .expires_at
            .is_some_and(|at| at - self.margin <= OffsetDateTime::now_utc());
        (!expiring).then(|| state.tokens.access_token.clone())
    }

    /// Refreshes now, whatever the expiry says.
    pub async fn refresh_now(&self) -> Result<OAuth2Tokens, JiraAuthError> {
        let _guard = self.refresh_lock.lock().await;
        self.refresh_locked().await
    }

    async fn refresh_locked(&self) -> Result<OAuth2Tokens, JiraAuthError> {
        let refresh_token = self
            .lock()
            .tokens
            .refresh_token
            .clone()
            .ok_or(JiraAuthError::NoRefreshToken)?;
        let tokens = self.config.refresh(&self.http, &refresh_token).await?;
        {
            let mut state = self.lock();
            state.tokens = tokens.clone();
            state.refreshed_at = Some(Instant::now());
        }
        self.stale.store(false, Ordering::Release);
        tracing::debug!(service = SERVICE, "refreshed the OAuth 2.0 access token");
        self.updates.send_replace(tokens.clone());
        if let Some(persist) = &self.persist
            && let Err(error) = persist.persist(&tokens).await
        {
            tracing::warn!(service = SERVICE, %error, "could not persist refreshed OAuth 2.0 tokens");
        }
        Ok(tokens)
    }

    async fn access_token(&self) -> Result<Secret, JiraAuthError> {
        if let Some(token) = self.fresh_token() {
            return Ok(token);
        }
        let _guard = self.refresh_lock.lock().await;
        // Another request may have refreshed while this one waited.
        if let Some(token) = self.fresh_token() {
            return Ok(token);
        }
        Ok(self.refresh_locked().await?.access_token)
    }
}

#[async_trait]
impl Authenticate for OAuth2Auth {
    async fn authenticate(&self, request: RequestBuilder) -> Result<RequestBuilder, ApiError> {
        let token = self.access_token().await?;
        Ok(request.bearer_auth(secret_str(&token, "access token")?))
    }

    fn invalidate(&self) {
        let recently_refreshed = self
            .lock()
            .refreshed_at
            .is_some_and(|at| at.elapsed() < REFRESH_GRACE);
        if !recently_refreshed {
            self.stale.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_string_uri_normalizes_per_rfc5849() {
        let url = Url::parse("HTTP://Example.COM:80/r%20v/X?id=123").unwrap();
        assert_eq!(base_string_uri(&url).unwrap(), "http://example.com/r%20v/X");
        let url = Url::parse("https://www.example.net:8080/?q=1").unwrap();
        assert_eq!(
            base_string_uri(&url).unwrap(),
            "https://www.example.net:8080/"
        );
    }

    #[test]
    fn percent_encoding_matches_rfc5849_section_3_6() {
        // Vectors from the oauth.net test cases (parameter encoding), section 5.1 of the
        // OAuth Core 1.0 spec: http://wiki.oauth.net/w/page/12238556/TestCases
        assert_eq!(percent_encode("abcABC123"), "abcABC123");
        assert_eq!(percent_encode("-._~"), "-._~");
        assert_eq!(percent_encode("%"), "%25");
        assert_eq!(percent_encode("+"), "%2B");
        assert_eq!(percent_encode("&=*"), "%26%3D%2A");
        assert_eq!(percent_encode("\n"), "%0A");
        assert_eq!(percent_encode(" "), "%20");
        assert_eq!(percent_encode("\u{7f}"), "%7F");
        assert_eq!(percent_encode("\u{80}"), "%C2%80");
        assert_eq!(percent_encode("\u{3001}"), "%E3%80%81");
    }

    #[test]
    fn states_compare() {
        assert!(states_match("abc", "abc"));
        assert!(!states_match("abc", "abd"));
        assert!(!states_match("", ""));
    }

    #[test]
    fn auth_errors_map_to_api_errors() {
        let e: ApiError = JiraAuthError::Rejected {
            error: "invalid_grant".into(),
            description: None,
        }
        .into();
        assert!(matches!(e, ApiError::Unauthorized { .. }));
        let e: ApiError = JiraAuthError::Status {
            endpoint: "token",
            status: 429,
            retry_after: Some(Duration::from_secs(3)),
        }
        .into();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        let e: ApiError = JiraAuthError::Status {
            endpoint: "token",
            status: 503,
            retry_after: None,
        }
        .into();
        assert!(e.is_transient());
    }
}
