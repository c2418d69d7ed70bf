//! OAuth logins: `GET /oauth/{connection}/login` sends the user to the provider's
//! authorization page, `GET /oauth/{connection}/callback` takes them back, exchanges the
//! code and stores the tokens, encrypted, with [`Store::put_token`].
//!
//! The `state` (and the PKCE verifier, or the OAuth 1.0a request token) stays in this
//! process, for [`PENDING_TTL`], bound to an `HttpOnly; SameSite=Lax` cookie: the callback
//! must come back to the instance that served the login, in the same browser. Each pending
//! login is used once: a callback consumes it whether it succeeds or not.
//!
//! Tokens at rest are encrypted with ChaCha20-Poly1305 under the key of
//! `HOOKBRIDGE_TOKEN_KEY` (32 bytes, base64), a random nonce per value, bound to the
//! connection and the field; [`load_token`] decrypts them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use chacha20poly1305::aead::rand_core::RngCore as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hookbridge_core::Secret;
use hookbridge_providers::asana::auth::AsanaOAuthApp;
use hookbridge_providers::jira::auth::{
    AuthHttp, OAuth1Flow, OAuth1Signer, OAuth2Config, RequestToken, states_match,
};
use hookbridge_sync_engine::store::{Store, StoreError, TokenRecord};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::AppState;
use crate::config::ConfigError;
use crate::connections::ConnectionSection;

/// The environment variable holding the token encryption key: 32 bytes, base64.
pub const TOKEN_KEY_ENV: &str = "HOOKBRIDGE_TOKEN_KEY";

/// How long a login may take between `/login` and `/callback`.
pub const PENDING_TTL: Duration = Duration::from_secs(600);

/// Logins pending at once, at most (a flood of `/login` requests must not exhaust memory).
const MAX_PENDING: usize = 10_000;

/// The rule name under which non-secret OAuth metadata (Jira's accessible resources) is
/// kept in the store's rule state.
pub const STATE_RULE: &str = "__hookbridge_oauth";

const GITHUB_AUTHORIZE_URL: &str = "https://github.com/login/oauth/authorize";
const GITHUB_TOKEN_URL: &str = "https://github.com/login/oauth/access_token";

/// Format version of an encrypted value: `1 || nonce (12) || ciphertext and tag`.
const VERSION: u8 = 1;

/// The key encrypting tokens at rest. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct TokenKey(ChaCha20Poly1305);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey([redacted])")
    }
}

/// Why a stored token could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The value does not decrypt under this key (another key, or tampered with).
    #[error("the stored token of connection {0} does not decrypt with this key")]
    Decrypt(String),
}

impl TokenKey {
    /// A key from its base64 text (standard or URL-safe alphabet, padded or not).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| "is not base64".to_owned())?;
        if bytes.len() != 32 {
            return Err(format!("must be 32 bytes, not {}", bytes.len()));
        }
        Ok(Self(ChaCha20Poly1305::new(Key::from_slice(&bytes))))
    }

    /// The key of [`TOKEN_KEY_ENV`].
    pub fn from_env() -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            key: "connections",
            message,
        };
        let text = std::env::var(TOKEN_KEY_ENV).map_err(|_| {
            invalid(format!(
                "OAuth connections store tokens encrypted: set {TOKEN_KEY_ENV} to 32 random \
                 bytes in base64 (e.g. `openssl rand -base64 32`)"
            ))
        })?;
        Self::from_base64(&text).map_err(|m| invalid(format!("{TOKEN_KEY_ENV} {m}")))
    }

    fn aad(connection: &str, field: &str) -> Vec<u8> {
        format!("hookbridge-token:v1:{connection}:{field}").into_bytes()
    }

    /// Encrypts `plaintext`, the `field` of `connection`'s tokens, with a fresh nonce.
    pub fn encrypt(&self, connection: &str, field: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = Self::aad(connection, field);
        let sealed = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .unwrap_or_else(|_| unreachable!("ChaCha20-Poly1305 encrypts any length in memory"));
        let mut out = Vec::with_capacity(1 + nonce.len() + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts what [`TokenKey::encrypt`] made for the same connection and field.
    pub fn decrypt(&self, connection: &str, field: &str, sealed: &[u8]) -> Option<Secret> {
        let (&version, rest) = sealed.split_first()?;
        if version != VERSION || rest.len() < 12 + 16 {
            return None;
        }
        let (nonce, ciphertext) = rest.split_at(12);
        let aad = Self::aad(connection, field);
        self.0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()
            .map(Secret::new)
    }
}

/// Stores `record` for `connection` with its tokens encrypted under `key`.
pub async fn store_token(
    store: &dyn Store,
    connection: &str,
    key: &TokenKey,
    record: &TokenRecord,
) -> Result<(), StoreError> {
    let sealed = TokenRecord {
        access_token: Secret::new(key.encrypt(connection, "access", record.access_token.expose())),
        refresh_token: record
            .refresh_token
            .as_ref()
            .map(|t| Secret::new(key.encrypt(connection, "refresh", t.expose()))),
        expires_at: record.expires_at,
        scopes: record.scopes.clone(),
    };
    store.put_token(connection, &sealed).await
}

/// The tokens stored for `connection` by a login, decrypted with `key`.
pub async fn load_token(
    store: &dyn Store,
    connection: &str,
    key: &TokenKey,
) -> Result<Option<TokenRecord>, TokenError> {
    let Some(sealed) = store.token(connection).await? else {
        return Ok(None);
    };
    let fail = || TokenError::Decrypt(connection.to_owned());
    let access_token = key
        .decrypt(connection, "access", sealed.access_token.expose())
        .ok_or_else(fail)?;
    let refresh_token = match &sealed.refresh_token {
        Some(t) => Some(
            key.decrypt(connection, "refresh", t.expose())
                .ok_or_else(fail)?,
        ),
        None => None,
    };
    Ok(Some(TokenRecord {
        access_token,
        refresh_token,
        expires_at: sealed.expires_at,
        scopes: sealed.scopes,
    }))
}

/// Bearer authentication with the access token stored for `connection` (OAuth 2.0 logins),
/// for API clients; `None` when no login happened yet.
pub async fn bearer_auth(
    store: &dyn Store,
    connection: &str,
    key: &TokenKey,
) -> Result<Option<hookbridge_providers::api::Auth>, TokenError> {
    Ok(load_token(store, connection, key)
        .await?
        .map(|t| hookbridge_providers::api::Auth::Bearer(t.access_token)))
}

enum Flow {
    Jira2 {
        config: OAuth2Config,
        http: AuthHttp,
    },
    Jira1 {
        flow: OAuth1Flow,
        callback: String,
    },
    Asana {
        app: Arc<AsanaOAuthApp>,
        scopes: Vec<String>,
    },
    Github {
        client_id: String,
        client_secret: Secret,
        redirect_url: String,
        scopes: Vec<String>,
        auth_url: String,
        token_url: String,
        http: reqwest::Client,
    },
}

struct Pending {
    connection: String,
    /// The `state` sent (OAuth 1.0a: the request token).
    state: String,
    pkce_verifier: Option<Secret>,
    request_token: Option<RequestToken>,
    created: Instant,
}

/// The OAuth connections of a configuration, their key, and the logins in progress.
pub struct OAuth {
    flows: BTreeMap<String, Flow>,
    secure: BTreeMap<String, bool>,
    key: TokenKey,
    /// By the session id of the login cookie.
    pending: Mutex<HashMap<String, Pending>>,
}

impl std::fmt::Debug for OAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth")
            .field("connections", &self.flows.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn auth_http() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("hookbridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl OAuth {
    /// The OAuth login connections among `connections`, with the key of
    /// [`TOKEN_KEY_ENV`]; `None` when there are none. Errors when the key is missing or a
    /// connection's settings are wrong.
    pub fn from_connections(
        connections: &BTreeMap<String, ConnectionSection>,
    ) -> Result<Option<Self>, ConfigError> {
        if !connections.values().any(ConnectionSection::is_oauth) {
            return Ok(None);
        }
        let key = TokenKey::from_env()?;
        Self::with_key(connections, key).map(Some)
    }

    /// Like [`OAuth::from_connections`] with a given key.
    pub fn with_key(
        connections: &BTreeMap<String, ConnectionSection>,
        key: TokenKey,
    ) -> Result<Self, ConfigError> {
        let mut flows = BTreeMap::new();
        let mut secure = BTreeMap::new();
        for (name, section) in connections {
            if !section.is_oauth() {
                continue;
            }
            let fail = |message: String| ConfigError::Invalid {
                key: "connections",
                message: format!("{name}: {message}"),
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(fail(
                    "OAuth connection names are letters, digits, '-' and '_'".into(),
                ));
            }
            let redirect = match section {
                ConnectionSection::JiraOauth2 { redirect_url, .. }
                | ConnectionSection::JiraOauth1 { redirect_url, .. }
                | ConnectionSection::AsanaOauth { redirect_url, .. }
                | ConnectionSection::GithubOauth { redirect_url, .. } => redirect_url.as_str(),
                _ => "",
            };
            // A cookie set for an https callback is never sent over plain HTTP.
            secure.insert(name.clone(), redirect.starts_with("https://"));
            let flow = match section {
                ConnectionSection::JiraOauth2 {
                    client_id,
                    client_secret,
                    redirect_url,
                    scopes,
                    auth_url,
                    token_url,
                    resources_url,
                } => {
                    let mut config = OAuth2Config::new(
                        client_id.clone(),
                        Secret::new(client_secret.as_str()),
                        redirect_url.clone(),
                        scopes.clone(),
                    );
                    if let Some(url) = auth_url {
                        config.authorize_url = url.clone();
                    }
                    if let Some(url) = token_url {
                        config.token_url = url.clone();
                    }
                    if let Some(url) = resources_url {
                        config.accessible_resources_url = url.clone();
                    }
                    // Checks the URLs now rather than on the first login.
                    config.authorize_url().map_err(|e| fail(e.to_string()))?;
                    Flow::Jira2 {
                        config,
                        http: AuthHttp::from_client(auth_http().map_err(fail)?),
                    }
                }
                ConnectionSection::JiraOauth1 {
                    base_url,
                    consumer_key,
                    private_key,
                    redirect_url,
                } => {
                    let signer = OAuth1Signer::from_pem(
                        consumer_key.clone(),
                        &Secret::new(private_key.as_str()),
                    )
                    .map_err(|e| fail(e.to_string()))?;
                    let flow = OAuth1Flow::new(
                        base_url,
                        Arc::new(signer),
                        AuthHttp::from_client(auth_http().map_err(fail)?),
                    )
                    .map_err(|e| fail(e.to_string()))?;
                    Flow::Jira1 {
                        flow,
                        callback: redirect_url.clone(),
                    }
                }
                ConnectionSection::AsanaOauth {
                    client_id,
                    client_secret,
                    redirect_url,
                    scopes,
                    auth_url,
                    token_url,
                } => {
                    let mut app = AsanaOAuthApp::new(
                        client_id.clone(),
                        Secret::new(client_secret.as_str()),
                        redirect_url,
                    )
                    .map_err(|e| fail(e.to_string()))?;
                    if auth_url.is_some() || token_url.is_some() {
                        app = app
                            .with_endpoints(
                                auth_url
                                    .as_deref()
                                    .unwrap_or(hookbridge_providers::asana::auth::AUTHORIZE_URL),
                                token_url
                                    .as_deref()
                                    .unwrap_or(hookbridge_providers::asana::auth::TOKEN_URL),
                            )
                            .map_err(|e| fail(e.to_string()))?;
                    }
                    Flow::Asana {
                        app: Arc::new(app),
                        scopes: scopes.clone(),
                    }
                }
                ConnectionSection::GithubOauth {
                    client_id,
                    client_secret,
                    redirect_url,
                    scopes,
                    auth_url,
                    token_url,
                } => {
                    let auth_url = auth_url
                        .clone()
                        .unwrap_or_else(|| GITHUB_AUTHORIZE_URL.into());
                    let token_url = token_url.clone().unwrap_or_else(|| GITHUB_TOKEN_URL.into());
                    for (what, url) in [
                        ("auth_url", &auth_url),
                        ("token_url", &token_url),
                        ("redirect_url", redirect_url),
                    ] {
                        reqwest::Url::parse(url).map_err(|e| fail(format!("{what}: {e}")))?;
                    }
                    if client_id.is_empty() || client_secret.is_empty() {
                        return Err(fail("client_id and client_secret must not be empty".into()));
                    }
                    Flow::Github {
                        client_id: client_id.clone(),
                        client_secret: Secret::new(client_secret.as_str()),
                        redirect_url: redirect_url.clone(),
                        scopes: scopes.clone(),
                        auth_url,
                        token_url,
                        http: auth_http().map_err(fail)?,
                    }
                }
                _ => continue,
            };
            flows.insert(name.clone(), flow);
        }
        Ok(Self {
            flows,
            secure,
            key,
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// The key tokens are encrypted with.
    pub fn key(&self) -> &TokenKey {
        &self.key
    }

    /// The login connections' names.
    pub fn connections(&self) -> impl Iterator<Item = &str> {
        self.flows.keys().map(String::as_str)
    }

    fn remember(&self, pending: Pending) -> Option<String> {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_PENDING {
            map.retain(|_, p| p.created.elapsed() < PENDING_TTL);
            if map.len() >= MAX_PENDING {
                return None;
            }
        }
        let session = random_token();
        map.insert(session.clone(), pending);
        Some(session)
    }

    fn take(&self, session: &str) -> Option<Pending> {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(session)
            .filter(|p| p.created.elapsed() < PENDING_TTL)
    }
}

fn cookie_name(connection: &str) -> String {
    format!("hookbridge_oauth_{connection}")
}

fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        format!("{message}\n"),
    )
        .into_response()
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/{connection}/login", get(login))
        .route("/{connection}/callback", get(callback))
        .with_state(state)
}

async fn login(State(state): State<AppState>, Path(connection): Path<String>) -> Response {
    let Some(oauth) = state.oauth() else {
        return plain(StatusCode::NOT_FOUND, "no OAuth connections");
    };
    let Some(flow) = oauth.flows.get(&connection) else {
        return plain(StatusCode::NOT_FOUND, "no such OAuth connection");
    };
    let mut pending = Pending {
        connection: connection.clone(),
        state: String::new(),
        pkce_verifier: None,
        request_token: None,
        created: Instant::now(),
    };
    let url = match flow {
        Flow::Jira2 { config, .. } => match config.authorize_url() {
            Ok(request) => {
                pending.state = request.state;
                request.url.to_string()
            }
            Err(error) => {
                tracing::error!(%connection, %error, "cannot build the authorization URL");
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "login unavailable");
            }
        },
        Flow::Jira1 { flow, callback } => {
            let request_token = match flow.request_token(Some(callback)).await {
                Ok(token) => token,
                Err(error) => {
                    tracing::warn!(%connection, %error, "OAuth 1.0a request token failed");
                    return plain(StatusCode::BAD_GATEWAY, "the provider refused the login");
                }
            };
            let url = match flow.authorize_url(&request_token) {
                Ok(url) => url,
                Err(error) => {
                    tracing::error!(%connection, %error, "cannot build the authorization URL");
                    return plain(StatusCode::INTERNAL_SERVER_ERROR, "login unavailable");
                }
            };
            pending.state = String::from_utf8_lossy(request_token.token.expose()).into_owned();
            pending.request_token = Some(request_token);
            url.to_string()
        }
        Flow::Asana { app, scopes } => {
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let start = app.authorize_url(&scopes);
            pending.state = start.state;
            pending.pkce_verifier = Some(start.pkce_verifier);
            start.url
        }
        Flow::Github {
            client_id,
            redirect_url,
            scopes,
            auth_url,
            ..
        } => {
            let state = random_token();
            let scope = scopes.join(" ");
            let mut params = vec![
                ("client_id", client_id.as_str()),
                ("redirect_uri", redirect_url.as_str()),
                ("state", state.as_str()),
                ("allow_signup", "false"),
            ];
            if !scope.is_empty() {
                params.push(("scope", scope.as_str()));
            }
            let url = match reqwest::Url::parse_with_params(auth_url, &params) {
                Ok(url) => url.to_string(),
                Err(error) => {
                    tracing::error!(%connection, %error, "cannot build the authorization URL");
                    return plain(StatusCode::INTERNAL_SERVER_ERROR, "login unavailable");
                }
            };
            pending.state = state;
            url
        }
    };
    let Some(session) = oauth.remember(pending) else {
        tracing::warn!("too many OAuth logins pending");
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many logins in progress",
        );
    };
    let secure = if oauth.secure.get(&connection).copied().unwrap_or(false) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={session}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        cookie_name(&connection),
        PENDING_TTL.as_secs()
    );
    tracing::info!(%connection, "OAuth login started");
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, url),
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    oauth_token: Option<String>,
    oauth_verifier: Option<String>,
}

fn session_cookie(headers: &HeaderMap, connection: &str) -> Option<String> {
    let name = cookie_name(connection);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
}

async fn callback(
    State(state): State<AppState>,
    Path(connection): Path<String>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(oauth) = state.oauth() else {
        return plain(StatusCode::NOT_FOUND, "no OAuth connections");
    };
    let Some(flow) = oauth.flows.get(&connection) else {
        return plain(StatusCode::NOT_FOUND, "no such OAuth connection");
    };
    let refuse = |why: &str| {
        tracing::warn!(%connection, why, "OAuth callback refused");
        plain(
            StatusCode::BAD_REQUEST,
            "invalid or expired login: start again at /login",
        )
    };
    let Some(session) = session_cookie(&headers, &connection) else {
        return refuse("no login cookie");
    };
    // Taken out whatever happens next: a login is finished at most once.
    let Some(pending) = oauth.take(&session) else {
        return refuse("unknown or expired login");
    };
    if pending.connection != connection {
        return refuse("the login was for another connection");
    }
    let received = match flow {
        Flow::Jira1 { .. } => query.oauth_token.as_deref(),
        _ => query.state.as_deref(),
    };
    if !states_match(&pending.state, received.unwrap_or("")) {
        return refuse("state mismatch");
    }
    if let Some(error) = &query.error {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        tracing::warn!(%connection, %error, "the user or provider denied the authorization");
        return plain(
            StatusCode::BAD_REQUEST,
            &format!("the authorization was not granted ({error})"),
        );
    }
    let exchanged = match flow {
        Flow::Jira1 { flow, .. } => {
            let (Some(verifier), Some(request_token)) = (
                query.oauth_verifier.as_deref(),
                pending.request_token.as_ref(),
            ) else {
                return refuse("no oauth_verifier");
            };
            flow.access_token(request_token, verifier)
                .await
                .map(|token| TokenRecord {
                    access_token: token.token,
                    refresh_token: None,
                    expires_at: token
                        .expires_in
                        .and_then(|s| i64::try_from(s).ok())
                        .map(|s| OffsetDateTime::now_utc() + time::Duration::seconds(s)),
                    scopes: String::new(),
                })
                .map_err(|e| e.to_string())
        }
        _ => {
            let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
                return refuse("no code");
            };
            exchange(flow, code, pending.pkce_verifier.as_ref()).await
        }
    };
    let record = match exchanged {
        Ok(record) => record,
        Err(error) => {
            tracing::warn!(%connection, %error, "OAuth token exchange failed");
            return plain(StatusCode::BAD_GATEWAY, "the token exchange failed");
        }
    };
    if let Flow::Jira2 { config, http } = flow {
        // The sites the grant reaches: their cloud ids make the API base URLs.
        match config
            .accessible_resources(http, &record.access_token)
            .await
        {
            Ok(resources) => {
                let value = serde_json::Value::Array(
                    resources
                        .iter()
                        .map(|r| serde_json::json!({"id": r.id, "url": r.url, "name": r.name}))
                        .collect(),
                );
                let key = format!("{connection}/resources");
                if let Err(error) = state.store().put_state(STATE_RULE, &key, &value).await {
                    tracing::warn!(%connection, %error, "cannot store the accessible resources");
                }
            }
            Err(error) => {
                tracing::warn!(%connection, %error, "cannot list the accessible resources")
            }
        }
    }
    if let Err(error) = store_token(state.store().as_ref(), &connection, &oauth.key, &record).await
    {
        tracing::error!(%connection, %error, "cannot store the OAuth tokens");
        return plain(StatusCode::SERVICE_UNAVAILABLE, "cannot store the tokens");
    }
    tracing::info!(%connection, scopes = %record.scopes, "OAuth login completed: tokens stored");
    let clear = format!(
        "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax",
        cookie_name(&connection)
    );
    (
        StatusCode::OK,
        [
            (header::SET_COOKIE, clear),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
        ],
        format!("connection {connection} authorized; you can close this window\n"),
    )
        .into_response()
}

#[derive(Deserialize)]
struct GithubTokenAnswer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<i64>,
    scope: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn exchange(
    flow: &Flow,
    code: &str,
    pkce_verifier: Option<&Secret>,
) -> Result<TokenRecord, String> {
    match flow {
        Flow::Jira2 { config, http } => {
            let tokens = config
                .exchange_code(http, code)
                .await
                .map_err(|e| e.to_string())?;
            Ok(TokenRecord {
                access_token: tokens.access_token,
                refresh_token: tokens.refresh_token,
                expires_at: tokens.expires_at,
                scopes: tokens.scopes.join(" "),
            })
        }
        Flow::Asana { app, scopes } => {
            let tokens = app
                .exchange_code(code, pkce_verifier)
                .await
                .map_err(|e| e.to_string())?;
            Ok(TokenRecord {
                access_token: tokens.access_token,
                refresh_token: tokens.refresh_token,
                expires_at: tokens.expires_at,
                scopes: scopes.join(" "),
            })
        }
        Flow::Github {
            client_id,
            client_secret,
            redirect_url,
            token_url,
            http,
            ..
        } => {
            let secret = std::str::from_utf8(client_secret.expose())
                .map_err(|_| "the client secret is not UTF-8".to_owned())?;
            let response = http
                .post(token_url)
                .header(header::ACCEPT, "application/json")
                .form(&[
                    ("client_id", client_id.as_str()),
                    ("client_secret", secret),
                    ("code", code),
                    ("redirect_uri", redirect_url.as_str()),
                ])
                .send()
                .await
                .map_err(|e| format!("token request failed: {}", e.without_url()))?;
            let status = response.status();
            let body = response
                .bytes()
                .await
                .map_err(|e| format!("token request failed: {}", e.without_url()))?;
            if !status.is_success() {
                return Err(format!("the token endpoint answered HTTP {status}"));
            }
            // The body is never quoted: it may hold a token.
            let answer: GithubTokenAnswer = serde_json::from_slice(&body)
                .map_err(|_| "the token endpoint's answer is not JSON".to_owned())?;
            if let Some(error) = answer.error {
                return Err(match answer.error_description {
                    Some(description) => format!("{error}: {description}"),
                    None => error,
                });
            }
            let access_token = answer
                .access_token
                .filter(|t| !t.is_empty())
                .ok_or_else(|| "no access_token in the answer".to_owned())?;
            Ok(TokenRecord {
                access_token: Secret::new(access_token),
                refresh_token: answer.refresh_token.map(Secret::new),
                expires_at: answer
                    .expires_in
                    .map(|s| OffsetDateTime::now_utc() + time::Duration::seconds(s)),
                scopes: answer.scope.unwrap_or_default().replace(',', " "),
            })
        }
        Flow::Jira1 { .. } => Err("OAuth 1.0a has no code".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Stored logins as API credentials
// ---------------------------------------------------------------------------------------------

/// The OAuth logins of a configuration as API credentials: connections with
/// `login = "<name>"` authenticate with the tokens `/oauth/<name>/callback` stored, loaded on
/// first use, refreshed before they expire (Jira OAuth 2.0, Asana) with the new tokens
/// stored again, and reloaded after a 401 (a new login may have replaced them).
pub struct StoredLogins {
    oauth: Arc<OAuth>,
    store: Arc<dyn Store>,
}

impl StoredLogins {
    /// The logins of `oauth`, with tokens in `store`.
    pub fn new(oauth: Arc<OAuth>, store: Arc<dyn Store>) -> Self {
        Self { oauth, store }
    }
}

impl crate::connections::Logins for StoredLogins {
    fn authenticator(
        &self,
        name: &str,
    ) -> Result<Arc<dyn hookbridge_providers::api::Authenticate>, String> {
        if !self.oauth.flows.contains_key(name) {
            return Err(format!("login = {name:?}: not an OAuth login connection"));
        }
        Ok(Arc::new(StoredLogin {
            oauth: self.oauth.clone(),
            store: self.store.clone(),
            connection: name.to_owned(),
            loaded: tokio::sync::Mutex::new(None),
            check_store: std::sync::atomic::AtomicBool::new(false),
        }))
    }
}

struct Loaded {
    auth: Arc<dyn hookbridge_providers::api::Authenticate>,
    /// The access token `auth` was built from, to notice a new login.
    access_token: Secret,
}

struct StoredLogin {
    oauth: Arc<OAuth>,
    store: Arc<dyn Store>,
    connection: String,
    loaded: tokio::sync::Mutex<Option<Loaded>>,
    /// Set by a 401: look in the store for tokens newer than those in use.
    check_store: std::sync::atomic::AtomicBool,
}

/// Stores tokens a refresh produced, encrypted, so they survive a restart.
struct PersistToStore {
    store: Arc<dyn Store>,
    connection: String,
    key: TokenKey,
}

impl PersistToStore {
    async fn save(&self, record: TokenRecord) -> Result<(), String> {
        store_token(self.store.as_ref(), &self.connection, &self.key, &record)
            .await
            .map_err(|e| e.to_string())
    }
}

#[async_trait::async_trait]
impl hookbridge_providers::jira::auth::PersistTokens for PersistToStore {
    async fn persist(
        &self,
        tokens: &hookbridge_providers::jira::auth::OAuth2Tokens,
    ) -> Result<(), String> {
        self.save(TokenRecord {
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            expires_at: tokens.expires_at,
            scopes: tokens.scopes.join(" "),
        })
        .await
    }
}

#[async_trait::async_trait]
impl hookbridge_providers::asana::auth::TokenListener for PersistToStore {
    async fn tokens_refreshed(&self, tokens: &hookbridge_providers::asana::auth::TokenSet) {
        let record = TokenRecord {
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            expires_at: tokens.expires_at,
            scopes: String::new(),
        };
        if let Err(error) = self.save(record).await {
            tracing::warn!(connection = %self.connection, %error, "cannot store refreshed tokens");
        }
    }
}

impl StoredLogin {
    fn unauthorized(&self, message: String) -> hookbridge_providers::api::ApiError {
        hookbridge_providers::api::ApiError::Unauthorized {
            service: "oauth",
            message,
        }
    }

    fn build(
        &self,
        record: TokenRecord,
    ) -> Result<Arc<dyn hookbridge_providers::api::Authenticate>, hookbridge_providers::api::ApiError>
    {
        let persist = Arc::new(PersistToStore {
            store: self.store.clone(),
            connection: self.connection.clone(),
            key: self.oauth.key.clone(),
        });
        let Some(flow) = self.oauth.flows.get(&self.connection) else {
            return Err(self.unauthorized(format!("{} is not a login", self.connection)));
        };
        Ok(match flow {
            Flow::Jira2 { config, http } => {
                let tokens = hookbridge_providers::jira::auth::OAuth2Tokens {
                    access_token: record.access_token,
                    refresh_token: record.refresh_token,
                    expires_at: record.expires_at,
                    scopes: record
                        .scopes
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect(),
                };
                Arc::new(
                    hookbridge_providers::jira::auth::OAuth2Auth::new(
                        config.clone(),
                        http.clone(),
                        tokens,
                    )
                    .with_persist(persist),
                )
            }
            Flow::Jira1 { flow, .. } => {
                Arc::new(hookbridge_providers::jira::auth::OAuth1Auth::new(
                    flow.signer().clone(),
                    record.access_token,
                ))
            }
            Flow::Asana { app, .. } => {
                let tokens = hookbridge_providers::asana::auth::TokenSet {
                    access_token: record.access_token,
                    refresh_token: record.refresh_token,
                    expires_at: record.expires_at,
                    user: None,
                };
                Arc::new(
                    hookbridge_providers::asana::auth::AsanaOAuth::new(app.clone(), tokens)
                        .with_listener(persist),
                )
            }
            Flow::Github { .. } => {
                Arc::new(hookbridge_providers::api::Auth::Bearer(record.access_token))
            }
        })
    }

    async fn current(
        &self,
    ) -> Result<Arc<dyn hookbridge_providers::api::Authenticate>, hookbridge_providers::api::ApiError>
    {
        let mut loaded = self.loaded.lock().await;
        let check = self
            .check_store
            .swap(false, std::sync::atomic::Ordering::AcqRel);
        if loaded.is_none() || check {
            match load_token(self.store.as_ref(), &self.connection, &self.oauth.key).await {
                Ok(Some(record)) => {
                    let same = loaded
                        .as_ref()
                        .is_some_and(|l| l.access_token == record.access_token);
                    if !same {
                        let access_token = record.access_token.clone();
                        *loaded = Some(Loaded {
                            auth: self.build(record)?,
                            access_token,
                        });
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(connection = %self.connection, %error, "cannot load the stored login");
                }
            }
        }
        match loaded.as_ref() {
            Some(l) => Ok(l.auth.clone()),
            None => Err(self.unauthorized(format!(
                "no login yet: open /oauth/{}/login",
                self.connection
            ))),
        }
    }
}

#[async_trait::async_trait]
impl hookbridge_providers::api::Authenticate for StoredLogin {
    async fn authenticate(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, hookbridge_providers::api::ApiError> {
        self.current().await?.authenticate(request).await
    }

    fn invalidate(&self) {
        if let Ok(loaded) = self.loaded.try_lock()
            && let Some(l) = loaded.as_ref()
        {
            l.auth.invalidate();
        }
        self.check_store
            .store(true, std::sync::atomic::Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypts_with_fresh_nonces_bound_to_connection_and_field() {
        let key =
            TokenKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([7u8; 32]))
                .unwrap();
        let a = key.encrypt("jira", "access", b"tok-123");
        let b = key.encrypt("jira", "access", b"tok-123");
        assert_ne!(a, b);
        assert!(!a.windows(7).any(|w| w == b"tok-123"));
        assert_eq!(
            key.decrypt("jira", "access", &a).unwrap().expose(),
            b"tok-123"
        );
        assert!(key.decrypt("other", "access", &a).is_none());
        assert!(key.decrypt("jira", "refresh", &a).is_none());
        let other =
            TokenKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([8u8; 32]))
                .unwrap();
        assert!(other.decrypt("jira", "access", &a).is_none());
        assert!(TokenKey::from_base64("c2hvcnQ=").is_err());
        assert!(TokenKey::from_base64("not base64!").is_err());
    }
}
