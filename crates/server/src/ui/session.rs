//! Signing in and out, and the session every other page needs.
//!
//! The session id is 256 random bits in the `hookbridge_ui` cookie (`HttpOnly`,
//! `SameSite=Strict`, `Path=/ui`, `Secure` behind HTTPS). The server keeps only an HMAC of
//! it (under a key of its own, random per process), so the map's lookups reveal nothing
//! usable about live ids, and a restart signs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore as _;
use hookbridge_core::Secret;
use hookbridge_core::signature::{Algorithm, hmac};
use maud::html;

use super::csrf::{self, Form};
use super::layout;
use crate::AppState;

/// The session cookie.
const COOKIE: &str = "hookbridge_ui";
/// The login form's own CSRF cookie (there is no session yet to bind the token to).
const LOGIN_COOKIE: &str = "hookbridge_ui_login";
/// A session ends after this long without a request...
const IDLE: Duration = Duration::from_secs(30 * 60);
/// ...and this long after sign-in in any case.
const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// How long the login form may stay open.
const LOGIN_FORM_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// At most this many live sessions: only holders of the admin token create them, so this
/// only bounds memory should a script sign in in a loop.
const MAX_SESSIONS: usize = 1024;
/// Largest form body accepted (a bulk replay of a page of ids is a few KiB).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A signed-in session, as the pages see it.
#[derive(Clone)]
pub(crate) struct Session {
    key: Vec<u8>,
    csrf: Secret,
}

impl Session {
    /// The token every form of this session must send back.
    pub(super) fn csrf_token(&self) -> &str {
        // Always base64 text: made by `random_token`.
        std::str::from_utf8(self.csrf.expose()).unwrap_or_default()
    }

    pub(super) fn csrf(&self) -> &Secret {
        &self.csrf
    }
}

struct Entry {
    csrf: Secret,
    created: Instant,
    last_seen: Instant,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        now.duration_since(self.created) < LIFETIME && now.duration_since(self.last_seen) < IDLE
    }
}

/// The live sessions, in memory.
pub(crate) struct Sessions {
    key: [u8; 32],
    map: Mutex<HashMap<Vec<u8>, Entry>>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Sessions {
    pub(crate) fn new() -> Self {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        Self {
            key,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key_of(&self, id: &str) -> Vec<u8> {
        hmac(Algorithm::Sha256, &self.key, &[id.as_bytes()])
    }

    /// A new session: its cookie value and what the pages see.
    fn create(&self) -> (String, Session) {
        let id = random_token();
        let key = self.key_of(&id);
        let csrf = Secret::new(random_token());
        let now = Instant::now();
        let mut map = self.map();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, e| e.live(now));
        }
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            key.clone(),
            Entry {
                csrf: csrf.clone(),
                created: now,
                last_seen: now,
            },
        );
        (id, Session { key, csrf })
    }

    /// The live session of a cookie value, its idle timer restarted.
    fn get(&self, id: &str) -> Option<Session> {
        let key = self.key_of(id);
        let now = Instant::now();
        let mut map = self.map();
        let entry = map.get_mut(&key)?;
        if !entry.live(now) {
            map.remove(&key);
            return None;
        }
        entry.last_seen = now;
        Some(Session {
            csrf: entry.csrf.clone(),
            key,
        })
    }

    fn remove(&self, session: &Session) {
        self.map().remove(&session.key);
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn set_cookie(state: &AppState, name: &str, value: &str, path: &str, max_age: Duration) -> String {
    let secure = if state.ui().settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        max_age.as_secs()
    )
}

fn with_cookies(mut response: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(value) = HeaderValue::from_str(c) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Lets a request through only with a live session: pages without one are sent to the
/// login page (303), anything else is refused (403). A `POST` must also carry the session's
/// CSRF token in its form body; the parsed form is handed on to the handler.
pub(super) async fn require_session(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let session = cookie(request.headers(), COOKIE).and_then(|id| state.ui().sessions.get(id));
    let reading = matches!(*request.method(), Method::GET | Method::HEAD);
    let Some(session) = session else {
        if reading {
            return layout::redirect("/ui/login");
        }
        return layout::forbidden(&state, "Sign in first: this session has ended.");
    };
    let (mut parts, body) = request.into_parts();
    let mut request = if reading {
        Request::from_parts(parts, body)
    } else {
        let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return layout::error_page(
                    &state,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The form is too large.",
                );
            }
        };
        let form = Form::parse(&bytes);
        if !csrf::matches(&form, session.csrf()) {
            tracing::warn!(path = %parts.uri.path(), "dashboard form refused: CSRF token missing or wrong");
            return layout::forbidden(
                &state,
                "The form's security token is missing or wrong: reload the page and try again.",
            );
        }
        parts.extensions.insert(form);
        Request::from_parts(parts, axum::body::Body::from(bytes))
    };
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// `GET /ui/login`.
pub(super) async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if cookie(&headers, COOKIE).is_some_and(|id| state.ui().sessions.get(id).is_some()) {
        return layout::redirect("/ui");
    }
    login_page(&state, StatusCode::OK, None)
}

fn login_page(state: &AppState, status: StatusCode, problem: Option<&str>) -> Response {
    let token = random_token();
    let body = html! {
        form.login method="post" action="/ui/login" {
            h1 { "hookbridge" }
            p.muted { "Sign in with the admin token (" code { "[admin] token" } ")." }
            @if let Some(problem) = problem {
                p.error role="alert" { (problem) }
            }
            input type="hidden" name=(csrf::FIELD) value=(token);
            label for="token" { "Admin token" }
            input #token type="password" name="token" autocomplete="current-password" required autofocus;
            button type="submit" { "Sign in" }
        }
    };
    let cookie = set_cookie(
        state,
        LOGIN_COOKIE,
        &token,
        "/ui/login",
        LOGIN_FORM_LIFETIME,
    );
    with_cookies(layout::bare(state, status, "Sign in", body), &[cookie])
}

/// `POST /ui/login`: the admin token, compared in constant time, opens a session.
pub(super) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    // The login form's token is bound to its own cookie (double submit): a page elsewhere
    // cannot sign a browser in, even to the attacker's own session.
    let bound = cookie(&headers, LOGIN_COOKIE).map(Secret::new);
    if !bound.is_some_and(|b| csrf::matches(&form, &b)) {
        tracing::warn!("dashboard login refused: CSRF token missing or wrong");
        return layout::forbidden(
            &state,
            "The form's security token is missing or wrong: reload the page and try again.",
        );
    }
    let presented = form.get("token").map(|t| Secret::new(t.trim()));
    let valid = match (state.admin_token(), presented) {
        // `Secret`'s equality is constant time, as in the admin API.
        (Some(token), Some(presented)) => presented == *token,
        _ => false,
    };
    if !valid {
        tracing::warn!("dashboard login failed: wrong admin token");
        // Slows guessing down a little; the token's length is what makes it hopeless.
        tokio::time::sleep(Duration::from_millis(300)).await;
        return login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("That is not the admin token."),
        );
    }
    let (id, _) = state.ui().sessions.create();
    tracing::info!("dashboard session opened");
    let cookies = [
        set_cookie(&state, COOKIE, &id, "/ui", LIFETIME),
        set_cookie(&state, LOGIN_COOKIE, "", "/ui/login", Duration::ZERO),
    ];
    with_cookies(layout::redirect("/ui"), &cookies)
}

/// `POST /ui/logout`.
pub(super) async fn logout(
    State(state): State<AppState>,
    axum::Extension(session): axum::Extension<Session>,
) -> Response {
    state.ui().sessions.remove(&session);
    tracing::info!("dashboard session closed");
    let cookie = set_cookie(&state, COOKIE, "", "/ui", Duration::ZERO);
    with_cookies(layout::redirect("/ui/login"), &[cookie])
}
