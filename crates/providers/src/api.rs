//! What every service's API client shares: a base URL (GitHub Enterprise, Jira Data Center,
//! tests), authentication, typed errors with the service's own message, retries of 429 and
//! transient failures (honouring `Retry-After` and GitHub's rate-limit reset), and pagination
//! as an async stream.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hookbridge_providers::api::ApiError> {
//! use hookbridge_providers::api::{ApiClient, Auth};
//! let client = ApiClient::builder("pagerduty", "https://api.pagerduty.com")?
//!     .auth(Auth::header("authorization", "Token token=y_NbAkKc66ryYTWUXYEu"))
//!     .build()?;
//! let incident: serde_json::Value = client.get_json("/incidents/PT4KHLK").await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hookbridge_core::{RuleError, Secret};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An API call failed. Messages carry the service's own error text, never a credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 404.
    #[error("{service}: not found: {message}")]
    NotFound {
        /// The service.
        service: &'static str,
        /// The service's message.
        message: String,
    },
    /// 401: the credentials are missing, wrong or expired.
    #[error("{service}: authentication failed: {message}")]
    Unauthorized {
        /// The service.
        service: &'static str,
        /// The service's message.
        message: String,
    },
    /// 403 (not a rate limit): the credentials lack a permission.
    #[error("{service}: forbidden: {message}")]
    Forbidden {
        /// The service.
        service: &'static str,
        /// The service's message.
        message: String,
    },
    /// 429, or a 403 that is a rate limit (GitHub's secondary limits); still limited after
    /// the retries.
    #[error("{service}: rate limited{}", .retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The service.
        service: &'static str,
        /// When the service said to retry.
        retry_after: Option<Duration>,
    },
    /// 400, 409, 422: the request was refused as invalid.
    #[error("{service}: rejected ({status}): {message}")]
    Validation {
        /// The service.
        service: &'static str,
        /// The status.
        status: u16,
        /// The service's message.
        message: String,
    },
    /// 5xx, still failing after the retries.
    #[error("{service}: server error ({status}): {message}")]
    Server {
        /// The service.
        service: &'static str,
        /// The status.
        status: u16,
        /// The service's message.
        message: String,
    },
    /// Connection failures and timeouts, after the retries.
    #[error("{service}: request failed: {message}")]
    Transport {
        /// The service.
        service: &'static str,
        /// What failed (without the URL, which may carry a token).
        message: String,
    },
    /// The answer was not what the service documents.
    #[error("{service}: unexpected response: {message}")]
    Decode {
        /// The service.
        service: &'static str,
        /// What did not fit.
        message: String,
    },
    /// The client is misconfigured (bad base URL, bad header value).
    #[error("{service}: configuration: {message}")]
    Config {
        /// The service.
        service: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl ApiError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. } | ApiError::Server { .. } | ApiError::Transport { .. }
        )
    }

    /// When the service asked to be retried.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether this is a 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::NotFound { .. })
    }
}

impl From<ApiError> for RuleError {
    fn from(error: ApiError) -> Self {
        if error.is_transient() {
            RuleError::Transient {
                retry_after: error.retry_after(),
                message: error.to_string(),
            }
        } else {
            RuleError::Permanent {
                message: error.to_string(),
            }
        }
    }
}

/// Adds credentials to a request. Implemented by the static schemes of [`Auth`] and by
/// token sources that fetch and refresh (GitHub App installation tokens, OAuth 2.0).
#[async_trait]
pub trait Authenticate: Send + Sync {
    /// Adds the credentials to `request`.
    async fn authenticate(&self, request: RequestBuilder) -> Result<RequestBuilder, ApiError>;

    /// Called after a 401, so a cached token can be dropped before the one retry.
    fn invalidate(&self) {}
}

/// Static credentials.
#[derive(Clone)]
pub enum Auth {
    /// No credentials.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// HTTP basic (e.g. Jira's email + API token).
    Basic {
        /// The user (an email for Jira Cloud).
        user: String,
        /// The password or API token.
        password: Secret,
    },
    /// One header with a secret value (e.g. PagerDuty's `Authorization: Token token=...`).
    Header {
        /// The header.
        name: HeaderName,
        /// Its value.
        value: Secret,
    },
    /// Query parameters with secret values (e.g. Trello's `key` and `token`).
    Query(Vec<(String, Secret)>),
}

impl Auth {
    /// One header with a secret value.
    pub fn header(name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        Auth::Header {
            name: HeaderName::from_static(name),
            value: Secret::new(value),
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Auth::None => "Auth::None",
            Auth::Bearer(_) => "Auth::Bearer([redacted])",
            Auth::Basic { .. } => "Auth::Basic([redacted])",
            Auth::Header { .. } => "Auth::Header([redacted])",
            Auth::Query(_) => "Auth::Query([redacted])",
        })
    }
}

fn secret_text(secret: &Secret) -> String {
    String::from_utf8_lossy(secret.expose()).into_owned()
}

#[async_trait]
impl Authenticate for Auth {
    async fn authenticate(&self, request: RequestBuilder) -> Result<RequestBuilder, ApiError> {
        Ok(match self {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(secret_text(token)),
            Auth::Basic { user, password } => request.basic_auth(user, Some(secret_text(password))),
            Auth::Header { name, value } => {
                let mut value =
                    HeaderValue::from_bytes(value.expose()).map_err(|_| ApiError::Config {
                        service: "auth",
                        message: format!("the {name} credential is not a valid header value"),
                    })?;
                value.set_sensitive(true);
                request.header(name.clone(), value)
            }
            Auth::Query(pairs) => {
                let pairs: Vec<(&str, String)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), secret_text(v)))
                    .collect();
                request.query(&pairs)
            }
        })
    }
}

/// How failed calls are retried inside the client (the engine retries jobs on top).
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub attempts: u32,
    /// First delay; doubles each time.
    pub base: Duration,
    /// Longest wait the client will do itself; a longer `Retry-After` is returned as
    /// [`ApiError::RateLimited`] for the engine to schedule.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base: Duration::from_millis(250),
            max_wait: Duration::from_secs(10),
        }
    }
}

/// Builds an [`ApiClient`].
pub struct ApiClientBuilder {
    service: &'static str,
    base: Url,
    auth: Arc<dyn Authenticate>,
    retry: RetryPolicy,
    timeout: Duration,
    headers: HeaderMap,
    http: Option<reqwest::Client>,
}

impl ApiClientBuilder {
    /// Static or refreshing credentials.
    pub fn auth(mut self, auth: impl Authenticate + 'static) -> Self {
        self.auth = Arc::new(auth);
        self
    }

    /// Shared credentials.
    pub fn auth_arc(mut self, auth: Arc<dyn Authenticate>) -> Self {
        self.auth = auth;
        self
    }

    /// The retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Per-request timeout (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A header sent with every request (e.g. `Accept`, PagerDuty's `From`).
    pub fn header(mut self, name: &'static str, value: &str) -> Result<Self, ApiError> {
        let value = HeaderValue::from_str(value).map_err(|_| ApiError::Config {
            service: self.service,
            message: format!("invalid value for header {name}"),
        })?;
        self.headers.insert(HeaderName::from_static(name), value);
        Ok(self)
    }

    /// Uses this HTTP client (to share connection pools).
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The client.
    pub fn build(self) -> Result<ApiClient, ApiError> {
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .timeout(self.timeout)
                .redirect(reqwest::redirect::Policy::limited(3))
                .user_agent(concat!("hookbridge/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| ApiError::Config {
                    service: self.service,
                    message: e.to_string(),
                })?,
        };
        Ok(ApiClient {
            inner: Arc::new(ClientInner {
                service: self.service,
                base: self.base,
                auth: self.auth,
                retry: self.retry,
                headers: self.headers,
                http,
            }),
        })
    }
}

struct ClientInner {
    service: &'static str,
    base: Url,
    auth: Arc<dyn Authenticate>,
    retry: RetryPolicy,
    headers: HeaderMap,
    http: reqwest::Client,
}

/// An authenticated, retrying JSON client for one service. Cheap to clone.
#[derive(Clone)]
pub struct ApiClient {
    inner: Arc<ClientInner>,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("service", &self.inner.service)
            .field("base", &self.inner.base.as_str())
            .finish()
    }
}

/// A request to send with [`ApiClient::send`].
pub struct Call {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<serde_json::Value>,
    headers: HeaderMap,
    idempotent: Option<bool>,
}

impl Call {
    /// A call of `method` on `path` (relative to the base URL, or absolute for pagination
    /// links the service returned).
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            headers: HeaderMap::new(),
            idempotent: None,
        }
    }

    /// Marks a `POST` that only reads (a search) as safe to repeat after a 5xx or a timeout.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = Some(true);
        self
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.to_owned(), value.to_string()));
        self
    }

    /// A JSON body.
    pub fn json(mut self, body: &impl Serialize) -> Result<Self, ApiError> {
        self.body = Some(serde_json::to_value(body).map_err(|e| ApiError::Decode {
            service: "request",
            message: e.to_string(),
        })?);
        Ok(self)
    }

    /// An extra header for this call (e.g. an idempotency key).
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(HeaderName::from_static(name), value);
        }
        self
    }
}

impl ApiClient {
    /// A builder for `service` at `base_url`.
    pub fn builder(service: &'static str, base_url: &str) -> Result<ApiClientBuilder, ApiError> {
        let mut base = Url::parse(base_url).map_err(|e| ApiError::Config {
            service,
            message: format!("invalid base URL: {e}"),
        })?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(ApiClientBuilder {
            service,
            base,
            auth: Arc::new(Auth::None),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            headers: HeaderMap::new(),
            http: None,
        })
    }

    /// The service name used in errors.
    pub fn service(&self) -> &'static str {
        self.inner.service
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    fn url(&self, path: &str) -> Result<Url, ApiError> {
        if path.starts_with("http://") || path.starts_with("https://") {
            let url = Url::parse(path).map_err(|e| ApiError::Decode {
                service: self.inner.service,
                message: format!("invalid link: {e}"),
            })?;
            // Pagination links must stay on the service: never send credentials elsewhere.
            if url.origin() != self.inner.base.origin() {
                return Err(ApiError::Decode {
                    service: self.inner.service,
                    message: "a link points to another host".into(),
                });
            }
            return Ok(url);
        }
        self.inner
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ApiError::Config {
                service: self.inner.service,
                message: format!("invalid path: {e}"),
            })
    }

    /// Sends a call, retrying 429/5xx/timeouts per the policy, and returns the successful
    /// response.
    pub async fn send(&self, call: Call) -> Result<Response, ApiError> {
        let service = self.inner.service;
        let url = self.url(&call.path)?;
        let mut reauthenticated = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .inner
                .http
                .request(call.method.clone(), url.clone())
                .headers(self.inner.headers.clone())
                .headers(call.headers.clone());
            if !call.query.is_empty() {
                request = request.query(&call.query);
            }
            if let Some(body) = &call.body {
                request = request.json(body);
            }
            let request = self.inner.auth.authenticate(request).await?;
            let error = match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => error_from(service, response).await,
                Err(e) => ApiError::Transport {
                    service,
                    message: e.without_url().to_string(),
                },
            };
            if matches!(error, ApiError::Unauthorized { .. }) && !reauthenticated {
                // A cached token may have expired early: drop it and try once more.
                reauthenticated = true;
                self.inner.auth.invalidate();
                continue;
            }
            // A POST or PATCH that failed with a 5xx or a timeout may have been applied: the
            // client does not repeat it (that could create a second issue or comment); the
            // engine retries the whole job, whose rule checks what already exists. A 429 is
            // safe to repeat: the service refused the request.
            let idempotent = call
                .idempotent
                .unwrap_or(!matches!(call.method, Method::POST | Method::PATCH));
            let retryable = match &error {
                ApiError::RateLimited { .. } => true,
                other => other.is_transient() && idempotent,
            };
            if !retryable || attempt >= self.inner.retry.attempts {
                return Err(error);
            }
            let backoff = self.inner.retry.base * 2u32.saturating_pow(attempt - 1);
            let wait = error
                .retry_after()
                .unwrap_or(backoff)
                .max(backoff.min(Duration::from_millis(1)));
            if wait > self.inner.retry.max_wait {
                return Err(error);
            }
            tracing::debug!(service, attempt, ?wait, error = %error, "retrying API call");
            tokio::time::sleep(wait).await;
        }
    }

    /// Sends a call and decodes its JSON answer.
    pub async fn send_json<T: DeserializeOwned>(&self, call: Call) -> Result<T, ApiError> {
        let service = self.inner.service;
        let response = self.send(call).await?;
        let bytes = response.bytes().await.map_err(|e| ApiError::Transport {
            service,
            message: e.without_url().to_string(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
            service,
            message: e.to_string(),
        })
    }

    /// `GET path` decoded as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.send_json(Call::new(Method::GET, path)).await
    }

    /// Pages through a listing: `next` gets each decoded page and returns its items and the
    /// call for the next page (or `None` at the end). The items come as a stream.
    ///
    /// ```no_run
    /// # use hookbridge_providers::api::{ApiClient, Call};
    /// # use futures_util::TryStreamExt;
    /// # async fn demo(client: ApiClient) -> Result<(), hookbridge_providers::api::ApiError> {
    /// // PagerDuty's offset pagination.
    /// let first = Call::new(reqwest::Method::GET, "/log_entries").query("limit", 100).query("offset", 0);
    /// let entries: Vec<serde_json::Value> = client
    ///     .paginate(first, |page: serde_json::Value, call| {
    ///         let items = page["log_entries"].as_array().cloned().unwrap_or_default();
    ///         let next = page["more"].as_bool().unwrap_or(false).then(|| {
    ///             let offset = page["offset"].as_u64().unwrap_or(0) + items.len() as u64;
    ///             Call::new(reqwest::Method::GET, "/log_entries").query("limit", 100).query("offset", offset)
    ///         });
    ///         let _ = call;
    ///         Ok((items, next))
    ///     })
    ///     .try_collect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn paginate<P, T, F>(
        &self,
        first: Call,
        next: F,
    ) -> impl futures_util::Stream<Item = Result<T, ApiError>> + Send + 'static
    where
        P: DeserializeOwned + Send + 'static,
        T: Send + 'static,
        F: Fn(P, PageInfo) -> Result<(Vec<T>, Option<Call>), ApiError> + Send + Sync + 'static,
    {
        let client = self.clone();
        let next = Arc::new(next);
        futures_util::stream::try_unfold(
            (Some(first), std::collections::VecDeque::<T>::new()),
            move |(mut call, mut buffer)| {
                let client = client.clone();
                let next = next.clone();
                async move {
                    loop {
                        if let Some(item) = buffer.pop_front() {
                            return Ok(Some((item, (call, buffer))));
                        }
                        let Some(current) = call.take() else {
                            return Ok(None);
                        };
                        let response = client.send(current).await?;
                        let info = PageInfo {
                            link_next: link_next(response.headers()),
                        };
                        let bytes = response.bytes().await.map_err(|e| ApiError::Transport {
                            service: client.inner.service,
                            message: e.without_url().to_string(),
                        })?;
                        let page: P =
                            serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
                                service: client.inner.service,
                                message: e.to_string(),
                            })?;
                        let (items, following) = next(page, info)?;
                        buffer.extend(items);
                        call = following;
                    }
                }
            },
        )
    }
}

/// What a page's response said about the next page besides its body.
#[derive(Clone, Debug, Default)]
pub struct PageInfo {
    /// The `rel="next"` URL of the `Link` header (GitHub).
    pub link_next: Option<String>,
}

fn link_next(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

/// The service's error message from a JSON error body, in the shapes services use.
fn service_message(body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_owned();
    };
    let pick = |v: &serde_json::Value| -> Option<String> {
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(a) if !a.is_empty() => Some(
                a.iter()
                    .map(|x| {
                        x.as_str().map(str::to_owned).unwrap_or_else(|| {
                            x.get("message")
                                .and_then(|m| m.as_str())
                                .unwrap_or_default()
                                .to_owned()
                        })
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            serde_json::Value::Object(o) if !o.is_empty() => Some(
                o.iter()
                    .map(|(k, v)| {
                        format!(
                            "{k}: {}",
                            v.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| v.to_string())
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => None,
        }
    };
    // GitHub {message}, Jira {errorMessages, errors}, PagerDuty {error: {message, errors}},
    // Asana {errors: [{message}]}, Slack {error}, Travis CI {error_message}.
    let candidates = [
        json.get("message"),
        json.get("error_message"),
        json.get("errorMessages"),
        json.get("errors"),
        json.pointer("/error/message"),
        json.pointer("/error/errors"),
        json.get("error"),
    ];
    candidates
        .into_iter()
        .flatten()
        .filter_map(pick)
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The wait a `Retry-After` header asks for, in either of its forms; see
/// [`parse_retry_after`]. `None` without the header or with a value that is neither form.
pub fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, time::OffsetDateTime::now_utc())
}

/// The wait a `Retry-After` value asks for, measured from `now`: delay-seconds (`120`) or
/// an HTTP-date, preferably `Sun, 06 Nov 1994 08:49:37 GMT`, also in the obsolete RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`) forms, which
/// RFC 9110 requires recipients to accept. A date already past asks for no wait
/// (`Some(Duration::ZERO)`). `None` if the value is neither form.
///
/// ```
/// use std::time::Duration;
/// use hookbridge_providers::api::parse_retry_after;
/// let now = time::macros::datetime!(2015-10-21 07:27:00 UTC);
/// assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(Duration::from_secs(60)));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: time::OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = http_date(value, now.year())?;
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

/// An HTTP-date (RFC 9110 section 5.6.7) in any of its three forms. The day name is not
/// checked against the date: a sender's wrong weekday should not turn a wait into none.
fn http_date(value: &str, this_year: i32) -> Option<time::OffsetDateTime> {
    use time::macros::format_description;
    let imf = format_description!(
        "[day] [month repr:short case_sensitive:false] [year] [hour]:[minute]:[second] GMT"
    );
    let asctime = format_description!(
        "[month repr:short case_sensitive:false] [day padding:space] [hour]:[minute]:[second] [year]"
    );
    let parsed = if let Some((_, rest)) = value.split_once(", ") {
        match rest.split_once('-') {
            // RFC 850: `06-Nov-94 08:49:37 GMT`, with a two-digit year.
            Some((day, rest)) => {
                let (month, rest) = rest.split_once('-')?;
                let (yy, rest) = rest.split_once(' ')?;
                if yy.len() != 2 {
                    return None;
                }
                let yy: i32 = yy.parse().ok()?;
                // RFC 9110: a year more than 50 years in the future is the most recent
                // past year with the same last two digits.
                let mut year = this_year - this_year.rem_euclid(100) + yy;
                if year > this_year + 50 {
                    year -= 100;
                } else if year + 100 <= this_year + 50 {
                    year += 100;
                }
                time::PrimitiveDateTime::parse(&format!("{day} {month} {year} {rest}"), imf)
            }
            None => time::PrimitiveDateTime::parse(rest, imf),
        }
    } else {
        let (_, rest) = value.split_once(' ')?;
        time::PrimitiveDateTime::parse(rest, asctime)
    };
    parsed.ok().map(time::PrimitiveDateTime::assume_utc)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(wait) = retry_after_header(headers) {
        return Some(wait);
    }
    // PagerDuty: ratelimit-reset, seconds until the window resets.
    if let Some(seconds) = headers
        .get("ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some(Duration::from_secs(seconds.max(1)));
    }
    // GitHub: x-ratelimit-remaining: 0 with x-ratelimit-reset (epoch seconds).
    let remaining = headers.get("x-ratelimit-remaining")?.to_str().ok()?;
    if remaining.trim() != "0" {
        return None;
    }
    let reset: i64 = headers
        .get("x-ratelimit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Some(Duration::from_secs(
        u64::try_from(reset - now).unwrap_or(0).max(1),
    ))
}

async fn error_from(service: &'static str, response: Response) -> ApiError {
    let status = response.status();
    let wait = retry_after(response.headers());
    let body = response.bytes().await.unwrap_or_default();
    let message = service_message(&body);
    let rate_limited_403 = status == StatusCode::FORBIDDEN
        && (wait.is_some() || message.to_ascii_lowercase().contains("rate limit"));
    match status.as_u16() {
        429 => ApiError::RateLimited {
            service,
            retry_after: wait,
        },
        403 if rate_limited_403 => ApiError::RateLimited {
            service,
            retry_after: wait,
        },
        401 => ApiError::Unauthorized { service, message },
        403 => ApiError::Forbidden { service, message },
        404 | 410 => ApiError::NotFound { service, message },
        408 => ApiError::Transport {
            service,
            message: "request timeout (408)".into(),
        },
        s if s >= 500 => ApiError::Server {
            service,
            status: s,
            message,
        },
        s => ApiError::Validation {
            service,
            status: s,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(5),
            max_wait: Duration::from_secs(2),
        }
    }

    #[tokio::test]
    async fn retries_5xx_then_succeeds_and_sends_credentials() {
        let mock = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/thing"))
            .respond_with(ResponseTemplate::new(502))
            .up_to_n_times(2)
            .mount(&mock)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/thing"))
            .and(header("authorization", "Token token=abc"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true})))
            .mount(&mock)
            .await;
        let client = ApiClient::builder("svc", &format!("{}/v1", mock.uri()))
            .unwrap()
            .auth(Auth::header("authorization", "Token token=abc"))
            .retry(fast())
            .build()
            .unwrap();
        let v: serde_json::Value = client.get_json("thing").await.unwrap();
        assert_eq!(v["ok"], true);
        assert_eq!(mock.received_requests().await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn typed_errors_with_the_service_message() {
        let mock = MockServer::start().await;
        Mock::given(path("/404"))
            .respond_with(
                ResponseTemplate::new(404)
                    .set_body_json(serde_json::json!({"message": "Not Found"})),
            )
            .mount(&mock)
            .await;
        Mock::given(path("/401"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(serde_json::json!({"errorMessages": ["token expired"]})),
            )
            .mount(&mock)
            .await;
        Mock::given(path("/422")).respond_with(ResponseTemplate::new(422).set_body_json(serde_json::json!({"error": {"message": "Invalid Input", "errors": ["Priority is invalid"]}}))).mount(&mock).await;
        Mock::given(path("/429"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "60"))
            .mount(&mock)
            .await;
        Mock::given(path("/403rl"))
            .respond_with(ResponseTemplate::new(403).set_body_json(
                serde_json::json!({"message": "You have exceeded a secondary rate limit"}),
            ))
            .mount(&mock)
            .await;
        let client = ApiClient::builder("svc", &mock.uri())
            .unwrap()
            .retry(fast())
            .build()
            .unwrap();
        let get = |p: &'static str| {
            let c = client.clone();
            async move { c.get_json::<serde_json::Value>(p).await.unwrap_err() }
        };
        let e = get("/404").await;
        assert!(
            e.is_not_found() && e.to_string().contains("Not Found"),
            "{e}"
        );
        let e = get("/401").await;
        assert!(
            matches!(e, ApiError::Unauthorized { .. }) && e.to_string().contains("token expired"),
            "{e}"
        );
        let e = get("/422").await;
        assert!(matches!(e, ApiError::Validation { status: 422, .. }), "{e}");
        assert!(
            e.to_string().contains("Invalid Input")
                && e.to_string().contains("Priority is invalid"),
            "{e}"
        );
        // 60 s is longer than the client waits itself: returned for the engine to schedule.
        let e = get("/429").await;
        assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
        assert!(RuleError::from(e).is_transient());
        let e = get("/403rl").await;
        assert!(matches!(e, ApiError::RateLimited { .. }), "{e}");
        // 401 was retried once after invalidating credentials, 429 not at all.
        let requests = mock.received_requests().await.unwrap();
        assert_eq!(
            requests.iter().filter(|r| r.url.path() == "/401").count(),
            2
        );
        assert_eq!(
            requests.iter().filter(|r| r.url.path() == "/429").count(),
            1
        );
    }

    #[tokio::test]
    async fn pagerduty_reset_and_travis_messages() {
        let mock = MockServer::start().await;
        Mock::given(path("/429pd"))
            .respond_with(ResponseTemplate::new(429).insert_header("ratelimit-reset", "45"))
            .mount(&mock)
            .await;
        Mock::given(path("/travis403"))
            .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!(
                {"@type": "error", "error_type": "insufficient_access", "error_message": "forbidden"}
            )))
            .mount(&mock)
            .await;
        let client = ApiClient::builder("svc", &mock.uri())
            .unwrap()
            .retry(fast())
            .build()
            .unwrap();
        let e = client
            .get_json::<serde_json::Value>("/429pd")
            .await
            .unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(45)));
        let e = client
            .get_json::<serde_json::Value>("/travis403")
            .await
            .unwrap_err();
        assert!(
            matches!(e, ApiError::Forbidden { .. }) && e.to_string().contains("forbidden"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn post_is_not_repeated_after_a_5xx() {
        let mock = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/issues"))
            .respond_with(ResponseTemplate::new(502))
            .mount(&mock)
            .await;
        let client = ApiClient::builder("svc", &mock.uri())
            .unwrap()
            .retry(fast())
            .build()
            .unwrap();
        let call = Call::new(Method::POST, "/issues")
            .json(&serde_json::json!({"title": "x"}))
            .unwrap();
        let e = client.send(call).await.unwrap_err();
        assert!(matches!(e, ApiError::Server { status: 502, .. }), "{e}");
        assert!(
            RuleError::from(e).is_transient(),
            "the engine retries the job"
        );
        assert_eq!(mock.received_requests().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn short_retry_after_is_waited_out() {
        let mock = MockServer::start().await;
        Mock::given(path("/x"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
            .up_to_n_times(1)
            .mount(&mock)
            .await;
        Mock::given(path("/x"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
            .mount(&mock)
            .await;
        let client = ApiClient::builder("svc", &mock.uri())
            .unwrap()
            .retry(fast())
            .build()
            .unwrap();
        let started = std::time::Instant::now();
        let _: serde_json::Value = client.get_json("/x").await.unwrap();
        assert!(started.elapsed() >= Duration::from_secs(1));
    }

    #[tokio::test]
    async fn pages_by_link_header_and_by_offset() {
        let mock = MockServer::start().await;
        let page2 = format!(
            "<{}/items?page=2>; rel=\"next\", <{}/items?page=2>; rel=\"last\"",
            mock.uri(),
            mock.uri()
        );
        Mock::given(path("/items"))
            .and(query_param("page", "2"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([3])))
            .mount(&mock)
            .await;
        Mock::given(path("/items"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!([1, 2]))
                    .insert_header("link", page2.as_str()),
            )
            .mount(&mock)
            .await;
        let client = ApiClient::builder("svc", &mock.uri())
            .unwrap()
            .build()
            .unwrap();
        let items: Vec<u32> = client
            .paginate(Call::new(Method::GET, "/items"), |page: Vec<u32>, info| {
                Ok((page, info.link_next.map(|url| Call::new(Method::GET, url))))
            })
            .try_collect()
            .await
            .unwrap();
        assert_eq!(items, [1, 2, 3]);
    }

    #[tokio::test]
    async fn links_to_other_hosts_are_refused() {
        let mock = MockServer::start().await;
        Mock::given(path("/items"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!([1]))
                    .insert_header("link", "<https://evil.example/steal>; rel=\"next\""),
            )
            .mount(&mock)
            .await;
        let client = ApiClient::builder("svc", &mock.uri())
            .unwrap()
            .auth(Auth::Bearer(Secret::new("t")))
            .build()
            .unwrap();
        let result: Result<Vec<u32>, _> = client
            .paginate(Call::new(Method::GET, "/items"), |page: Vec<u32>, info| {
                Ok((page, info.link_next.map(|url| Call::new(Method::GET, url))))
            })
            .try_collect()
            .await;
        assert!(result.unwrap_err().to_string().contains("another host"));
    }

    #[test]
    fn retry_after_in_seconds_and_in_every_http_date_form() {
        let now = time::macros::datetime!(1994-11-06 08:48:37 UTC);
        let minute = Some(Duration::from_secs(60));
        for value in [
            "60",
            " 60 ",
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            // A wrong day name still gives the date's wait.
            "Mon, 06 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(value, now), minute, "{value:?}");
        }
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO),
            "a past date asks for no wait"
        );
        for value in [
            "",
            "-5",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun Nov 6",
        ] {
            assert_eq!(parse_retry_after(value, now), None, "{value:?}");
        }
        // Two-digit years: the nearest year not more than 50 years ahead.
        let in_2090 = time::macros::datetime!(2090-01-01 00:00:00 UTC);
        let wait = |v| parse_retry_after(v, in_2090).map(|d| d.as_secs() / 86_400);
        assert_eq!(wait("Monday, 01-Jan-01 00:00:00 GMT"), Some(4017)); // 2101
        assert_eq!(wait("Wednesday, 01-Jan-89 00:00:00 GMT"), Some(0)); // 2089: past
        let headers: HeaderMap = [(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        )]
        .into_iter()
        .collect();
        assert_eq!(
            retry_after(&headers),
            Some(Duration::ZERO),
            "the client reads the date form too"
        );
    }

    #[test]
    fn credentials_never_print() {
        let auth = Auth::Basic {
            user: "me@example.com".into(),
            password: Secret::new("api-token-123"),
        };
        assert!(!format!("{auth:?}").contains("api-token-123"));
        assert!(
            !format!(
                "{:?}",
                Auth::Query(vec![("token".into(), Secret::new("trello-tok"))])
            )
            .contains("trello-tok")
        );
    }
}
