//! Authenticating to GitHub's REST API: a personal access token (or any other bearer token,
//! such as an OAuth user token), or a GitHub App.
//!
//! A GitHub App authenticates in two steps
//! ([docs](https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app-installation)):
//!
//! 1. as the app, with a short-lived JWT signed with the app's private key (RS256, `iat` 60 s in
//!    the past, `exp` at most 10 minutes ahead, `iss` the app's client ID or app ID —
//!    [Generating a JSON Web Token (JWT) for a GitHub App](https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app));
//!    [`GithubApp`] signs these, and authenticates the app-level endpoints (`GET /app`, ...);
//! 2. as one installation of the app, with an installation access token obtained with that JWT
//!    from `POST /app/installations/{installation_id}/access_tokens`
//!    ([Create an installation access token for an app](https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app)),
//!    valid one hour. [`GithubAppAuth`] fetches it, caches it, fetches a new one five minutes
//!    before `expires_at`, and drops it when GitHub answers 401.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hookbridge_providers::api::ApiError> {
//! use hookbridge_core::Secret;
//! use hookbridge_providers::github::auth::{GithubApp, GithubAppAuth};
//! use hookbridge_providers::github::client::{DEFAULT_BASE_URL, GithubClient, api_builder};
//!
//! let pem = Secret::new(std::fs::read("app-private-key.pem").unwrap_or_default());
//! let app = GithubApp::new("Iv23liABCDEF", &pem)?;
//! let auth = GithubAppAuth::new(app, 52068731, DEFAULT_BASE_URL)?;
//! let client = GithubClient::new(api_builder(DEFAULT_BASE_URL)?.auth(auth).build()?);
//! # let _ = client; Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use hookbridge_core::Secret;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, RequestBuilder};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::client::api_builder;
use crate::api::{ApiClient, ApiError, Authenticate, Call};

const SERVICE: &str = "github";

/// How far in the past a JWT's `iat` is set, against clock drift (GitHub recommends 60 s).
const JWT_BACKDATE: time::Duration = time::Duration::seconds(60);

/// A JWT's whole validity, `iat` to `exp`. GitHub refuses an `exp` more than 10 minutes in its
/// future; with `iat` 60 s back, `exp` lands 9 minutes ahead of our clock, which leaves a
/// minute for a clock that runs ahead of GitHub's.
const JWT_LIFETIME: time::Duration = time::Duration::minutes(10);

/// How long before its `expires_at` an installation token is replaced by default.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

fn config_error(message: impl Into<String>) -> ApiError {
    ApiError::Config {
        service: SERVICE,
        message: message.into(),
    }
}

/// The claims GitHub requires in an app JWT.
#[derive(Serialize)]
struct Claims<'a> {
    iat: i64,
    exp: i64,
    iss: &'a str,
}

/// A GitHub App's credentials: its client ID (or app ID) and private key. Signs the JWTs that
/// authenticate as the app, and authenticates app-level calls (`GET /app`, the installation
/// token endpoint) with them when used as an [`Authenticate`].
#[derive(Clone)]
pub struct GithubApp {
    issuer: String,
    key: Arc<EncodingKey>,
}

impl fmt::Debug for GithubApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubApp")
            .field("issuer", &self.issuer)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl GithubApp {
    /// The app with `issuer`, its client ID (`Iv23li...`, which GitHub recommends) or its
    /// numeric app ID, and its private key as PEM, in the PKCS#1 form GitHub hands out
    /// (`-----BEGIN RSA PRIVATE KEY-----`) or PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
    ///
    /// The key is checked here by signing a JWT, so a bad key fails at configuration time;
    /// the error never contains key material.
    pub fn new(issuer: impl Into<String>, private_key_pem: &Secret) -> Result<Self, ApiError> {
        let issuer = issuer.into();
        if issuer.trim().is_empty() {
            return Err(config_error("the GitHub App client ID or app ID is empty"));
        }
        let key = EncodingKey::from_rsa_pem(private_key_pem.expose()).map_err(|e| {
            config_error(format!(
                "the GitHub App private key is not a PEM RSA private key ({:?})",
                e.kind()
            ))
        })?;
        let app = Self {
            issuer,
            key: Arc::new(key),
        };
        // The PEM parser does not check the key itself: signing does.
        app.jwt()?;
        Ok(app)
    }

    /// The `iss` claim: the client ID or app ID this app was created with.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// A fresh JWT authenticating as the app, valid about 9 minutes from now.
    pub fn jwt(&self) -> Result<Secret, ApiError> {
        self.jwt_at(OffsetDateTime::now_utc())
    }

    fn jwt_at(&self, now: OffsetDateTime) -> Result<Secret, ApiError> {
        let iat = now - JWT_BACKDATE;
        let claims = Claims {
            iat: iat.unix_timestamp(),
            exp: (iat + JWT_LIFETIME).unix_timestamp(),
            iss: &self.issuer,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map(Secret::new)
            .map_err(|e| {
                config_error(format!(
                    "cannot sign a JWT with the GitHub App private key ({:?})",
                    e.kind()
                ))
            })
    }
}

#[async_trait]
impl Authenticate for GithubApp {
    async fn authenticate(&self, request: RequestBuilder) -> Result<RequestBuilder, ApiError> {
        let jwt = self.jwt()?;
        Ok(request.bearer_auth(String::from_utf8_lossy(jwt.expose())))
    }
}

/// The authenticated app, as `GET /app` describes it
/// ([Get the authenticated app](https://docs.github.com/en/rest/apps/apps#get-the-authenticated-app)).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct AppInfo {
    /// The app's numeric id.
    pub id: u64,
    /// The app's slug (`my-sync-bot`); its bot account is `<slug>[bot]`.
    #[serde(default)]
    pub slug: Option<String>,
    /// The app's display name.
    #[serde(default)]
    pub name: Option<String>,
    /// The app's client ID.
    #[serde(default)]
    pub client_id: Option<String>,
}

impl AppInfo {
    /// The login of the app's bot account, which authors what the app writes with an
    /// installation token: `<slug>[bot]`.
    pub fn bot_login(&self) -> Option<String> {
        self.slug.as_ref().map(|slug| format!("{slug}[bot]"))
    }
}

/// What an installation access token may reach, when narrower than the installation: the
/// optional body of the token request.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TokenScope {
    /// Repository names (without owner) the token is limited to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<String>,
    /// Repository ids the token is limited to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repository_ids: Vec<u64>,
    /// Permissions (`issues` -> `write`, `contents` -> `read`, ...) the token is limited to.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub permissions: BTreeMap<String, String>,
}

impl TokenScope {
    fn is_empty(&self) -> bool {
        self.repositories.is_empty()
            && self.repository_ids.is_empty()
            && self.permissions.is_empty()
    }
}

/// An installation access token and what GitHub said about it.
#[derive(Clone, Debug)]
pub struct InstallationToken {
    /// The token (`ghs_...`), sent as `Authorization: Bearer`.
    pub token: Secret,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// The permissions it carries.
    pub permissions: BTreeMap<String, String>,
    /// `all` or `selected`.
    pub repository_selection: Option<String>,
}

/// The token endpoint's answer. No `Debug`: it holds the token in the clear.
#[derive(Deserialize)]
struct TokenResponse {
    token: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    #[serde(default)]
    permissions: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    repository_selection: Option<String>,
}

#[derive(Clone)]
struct CachedToken {
    token: Secret,
    expires_at: OffsetDateTime,
}

/// Authenticates as one installation of a GitHub App: fetches an installation access token
/// with the app's JWT, reuses it across calls, fetches a new one [`DEFAULT_REFRESH_MARGIN`]
/// before it expires, and drops it after a 401 (the API client then retries once with a new
/// one). Concurrent calls that find no valid token wait for a single fetch.
pub struct GithubAppAuth {
    app: GithubApp,
    installation_id: u64,
    /// Authenticated with the app's JWT: the token endpoint and `GET /app`.
    api: ApiClient,
    scope: TokenScope,
    refresh_margin: Duration,
    cached: Mutex<Option<CachedToken>>,
    /// Held while fetching, so that concurrent callers share one fetch.
    fetching: tokio::sync::Mutex<()>,
}

impl fmt::Debug for GithubAppAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubAppAuth")
            .field("app", &self.app)
            .field("installation_id", &self.installation_id)
            .field("base_url", &self.api.base_url().as_str())
            .field("refresh_margin", &self.refresh_margin)
            .finish_non_exhaustive()
    }
}

impl GithubAppAuth {
    /// Authenticates as installation `installation_id` of `app`, fetching tokens from the API
    /// at `base_url` ([`super::client::DEFAULT_BASE_URL`], or `https://HOST/api/v3` for GitHub
    /// Enterprise Server).
    pub fn new(app: GithubApp, installation_id: u64, base_url: &str) -> Result<Self, ApiError> {
        let api = api_builder(base_url)?.auth(app.clone()).build()?;
        Ok(Self::with_api(app, installation_id, api))
    }

    /// Like [`GithubAppAuth::new`], with the client for the app-level calls given (it must
    /// authenticate with `app`, e.g. built by [`super::client::api_builder`] with
    /// `.auth(app.clone())`, and may share a connection pool or set a retry policy).
    pub fn with_api(app: GithubApp, installation_id: u64, api: ApiClient) -> Self {
        Self {
            app,
            installation_id,
            api,
            scope: TokenScope::default(),
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            cached: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Limits the tokens to these repositories and permissions.
    pub fn scope(mut self, scope: TokenScope) -> Self {
        self.scope = scope;
        self
    }

    /// How long before `expires_at` a token is replaced (default 5 minutes).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// The app.
    pub fn app(&self) -> &GithubApp {
        &self.app
    }

    /// The installation.
    pub fn installation_id(&self) -> u64 {
        self.installation_id
    }

    /// The authenticated app (`GET /app`, with the app's JWT): its slug names the bot
    /// account that authors what the installation writes.
    pub async fn app_info(&self) -> Result<AppInfo, ApiError> {
        self.api.get_json("app").await
    }

    /// A valid installation token: the cached one while it is more than the refresh margin
    /// from expiry, otherwise a new one.
    pub async fn token(&self) -> Result<Secret, ApiError> {
        if let Some(token) = self.cached_token(OffsetDateTime::now_utc()) {
            return Ok(token);
        }
        let _fetching = self.fetching.lock().await;
        // Another caller may have fetched one while this one waited.
        if let Some(token) = self.cached_token(OffsetDateTime::now_utc()) {
            return Ok(token);
        }
        let fresh = self.create_token().await?;
        let token = fresh.token.clone();
        *self.cache() = Some(CachedToken {
            token: fresh.token,
            expires_at: fresh.expires_at,
        });
        // Even a token already inside the margin is valid now: use it for this call.
        Ok(token)
    }

    /// Asks GitHub for a new installation token (`POST
    /// /app/installations/{installation_id}/access_tokens`), bypassing and not touching the
    /// cache.
    pub async fn create_token(&self) -> Result<InstallationToken, ApiError> {
        let mut call = Call::new(
            Method::POST,
            format!("app/installations/{}/access_tokens", self.installation_id),
        );
        if !self.scope.is_empty() {
            call = call.json(&self.scope)?;
        }
        let response: TokenResponse = self.api.send_json(call).await.map_err(|error| {
            // Not the caller's 404 or 403: a wrong installation id, an uninstalled or
            // suspended app, or permissions the app lacks. Reported as the authentication
            // failure it is, so that no caller reads "absent" or "retry" into it.
            match error {
                ApiError::NotFound { message, .. }
                | ApiError::Forbidden { message, .. }
                | ApiError::Validation { message, .. } => ApiError::Unauthorized {
                    service: SERVICE,
                    message: format!(
                        "no installation token for installation {}: {message}",
                        self.installation_id
                    ),
                },
                other => other,
            }
        })?;
        if response.token.is_empty() {
            return Err(ApiError::Decode {
                service: SERVICE,
                message: "the installation token endpoint returned an empty token".into(),
            });
        }
        Ok(InstallationToken {
            token: Secret::new(response.token),
            expires_at: response.expires_at,
            permissions: response
                .permissions
                .into_iter()
                .map(|(k, v)| {
                    let v = v
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string());
                    (k, v)
                })
                .collect(),
            repository_selection: response.repository_selection,
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<CachedToken>> {
        // A panic while holding the lock cannot leave a half-written token: keep going.
        self.cached.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cached_token(&self, now: OffsetDateTime) -> Option<Secret> {
        let cached = self.cache();
        let cached = cached.as_ref()?;
        let margin = time::Duration::try_from(self.refresh_margin).unwrap_or(time::Duration::MAX);
        (now < cached.expires_at.checked_sub(margin)?).then(|| cached.token.clone())
    }
}

#[async_trait]
impl Authenticate for GithubAppAuth {
    async fn authenticate(&self, request: RequestBuilder) -> Result<RequestBuilder, ApiError> {
        let token = self.token().await?;
        Ok(request.bearer_auth(String::from_utf8_lossy(token.expose())))
    }

    fn invalidate(&self) {
        // A 401: the token was revoked or expired early (clock skew). Fetch a new one.
        *self.cache() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/github/TEST-ONLY-app-private-key.pem"
    ));

    #[test]
    fn jwt_claims_follow_githubs_rules() {
        let app = GithubApp::new("12345", &Secret::new(PEM)).unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let jwt = app.jwt_at(now).unwrap();
        let jwt = std::str::from_utf8(jwt.expose()).unwrap();
        let claims: serde_json::Value =
            jsonwebtoken::dangerous::insecure_decode_claims(jwt).unwrap();
        assert_eq!(claims["iss"], "12345");
        assert_eq!(claims["iat"], 1_700_000_000 - 60);
        assert_eq!(claims["exp"], 1_700_000_000 - 60 + 600);
    }

    #[test]
    fn bad_keys_fail_at_configuration_without_echoing_them() {
        let garbage =
            "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWtleQ==\n-----END RSA PRIVATE KEY-----";
        let err = GithubApp::new("12345", &Secret::new(garbage)).unwrap_err();
        assert!(matches!(err, ApiError::Config { .. }), "{err}");
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
        assert!(GithubApp::new("12345", &Secret::new("not pem")).is_err());
        assert!(GithubApp::new(" ", &Secret::new(PEM)).is_err());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let app = GithubApp::new("12345", &Secret::new(PEM)).unwrap();
        let debug = format!("{app:?}");
        assert!(!debug.contains("PRIVATE"), "{debug}");
        let auth = GithubAppAuth::new(app, 7, "https://api.github.com").unwrap();
        assert!(format!("{auth:?}").contains("installation_id: 7"));
    }
}
