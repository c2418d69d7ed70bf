//! The page frame (navigation, stylesheet, security headers) and the small helpers every page
//! uses: times, links with query strings, pagination, notices, error pages.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;

use super::csrf;
use super::session::Session;
use crate::AppState;

/// Which navigation entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    Overview,
    Deliveries,
    DeadLetters,
    Rules,
    Hooks,
    Links,
    None,
}

const NAV: &[(Nav, &str, &str)] = &[
    (Nav::Overview, "/ui", "Overview"),
    (Nav::Deliveries, "/ui/deliveries", "Deliveries"),
    (Nav::DeadLetters, "/ui/dead-letters", "Dead letters"),
    (Nav::Rules, "/ui/rules", "Rules"),
    (Nav::Hooks, "/ui/hooks", "Hooks"),
    (Nav::Links, "/ui/links", "Links"),
];

/// The stylesheet, served as a file so that the pages' Content-Security-Policy can forbid
/// inline styles and every script.
const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2329;background:#f6f7f9}
header{background:#1d2329;color:#fff;padding:.45rem 1rem;display:flex;flex-wrap:wrap;gap:.2rem .9rem;align-items:center}
header a{color:#cfd8e3;text-decoration:none;padding:.2rem 0}
header a.on{color:#fff;border-bottom:2px solid #5fa8ff}
header .brand{font-weight:600;color:#fff;margin-right:.4rem}
header form{margin-left:auto}
header button{background:transparent;border-color:#5c6670;color:#cfd8e3;padding:.15rem .5rem}
main{padding:1rem;max-width:1200px;margin:0 auto}
h1{font-size:1.35rem;margin:.2rem 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
a{color:#0b57d0}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{font-weight:600;background:#eef1f4;white-space:nowrap}
td.num,th.num{text-align:right}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin-bottom:.5rem}
pre{background:#fff;border:1px solid #e3e6ea;padding:.75rem;overflow-x:auto;white-space:pre-wrap;word-break:break-word;font-size:13px;margin:0}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;overflow-wrap:break-word}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:.75rem;margin-bottom:1rem}
.card{background:#fff;border:1px solid #e3e6ea;border-radius:6px;padding:.75rem}
.card .n{font-size:1.6rem;font-weight:600;display:block}
.muted{color:#5c6670}
.error{color:#b00020}
.notice{background:#e7f4ea;border:1px solid #9fd3ab;padding:.5rem .75rem;border-radius:4px;margin-bottom:1rem}
.alert{background:#fdecea;border:1px solid #f5b3ad;padding:.5rem .75rem;border-radius:4px;margin-bottom:1rem}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end;margin-bottom:1rem}
form.filters label{display:flex;flex-direction:column;font-size:.85rem;gap:.15rem}
form.inline{display:inline}
input,select,button{font:inherit;padding:.35rem .5rem;border:1px solid #b9c1ca;border-radius:4px;background:#fff;max-width:100%}
button{background:#1f6feb;color:#fff;border-color:#1f6feb;cursor:pointer}
button.small{padding:.1rem .45rem;font-size:.85rem}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin:.75rem 0}
.pager{display:flex;gap:1rem;margin:1rem 0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;background:#fff;border:1px solid #e3e6ea;padding:.75rem;margin:0}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0;word-break:break-word}
.s-dead,.s-failed,.s-unparseable{color:#b00020;font-weight:600}
.s-done,.s-applied,.s-ok{color:#1a7f37}
.s-pending,.s-running,.s-retry,.s-received{color:#9a6700}
.job{background:#fff;border:1px solid #e3e6ea;border-radius:6px;padding:.75rem;margin-bottom:.75rem}
td.chart{width:55%}
.bars{display:flex;align-items:flex-end;gap:2px;height:42px;min-width:140px}
.bars span{flex:1;background:#5fa8ff;min-width:3px}
.bars span.f{background:#e5534b}
.h0{height:1px}.h1{height:10%}.h2{height:20%}.h3{height:30%}.h4{height:40%}.h5{height:50%}
.h6{height:60%}.h7{height:70%}.h8{height:80%}.h9{height:90%}.h10{height:100%}
form.login{max-width:380px;margin:10vh auto;background:#fff;padding:1.5rem;border:1px solid #e3e6ea;border-radius:8px;display:flex;flex-direction:column;gap:.6rem}
form.login h1{margin:0}
@media (max-width:640px){
 main{padding:.6rem}
 th,td{padding:.3rem .35rem}
 header form{margin-left:0}
 .wide{display:none}
 dl.facts{grid-template-columns:1fr}
 form.filters{display:grid;grid-template-columns:1fr 1fr}
 form.filters label,form.filters input,form.filters select{width:100%}
}
"#;

/// `GET /ui/style.css`.
pub(super) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// Headers of every dashboard page: no caching of what it shows, no framing, no scripts, no
/// inline styles, forms only to this server.
fn respond(state: &AppState, status: StatusCode, html: String) -> Response {
    let html = state.ui().scrub(html, state.admin_token());
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="robots" content="noindex";
            title { (title) " · hookbridge" }
            link rel="stylesheet" href="/ui/style.css";
        }
    }
}

/// A page of the signed-in dashboard.
pub(super) fn page(
    state: &AppState,
    session: &Session,
    nav: Nav,
    title: &str,
    notice: Option<String>,
    body: Markup,
) -> Response {
    page_with_status(state, session, StatusCode::OK, nav, title, notice, body)
}

pub(super) fn page_with_status(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    nav: Nav,
    title: &str,
    notice: Option<String>,
    body: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header {
                    a.brand href="/ui" { "hookbridge" }
                    @for (entry, href, label) in NAV {
                        a.on[*entry == nav] href=(href) { (label) }
                    }
                    form.inline method="post" action="/ui/logout" {
                        (csrf_field(session))
                        button type="submit" { "Sign out" }
                    }
                }
                main {
                    @if let Some(notice) = notice {
                        p.notice role="status" { (notice) }
                    }
                    (body)
                }
            }
        }
    };
    respond(state, status, markup.into_string())
}

/// A page without navigation (the login page, errors before sign-in).
pub(super) fn bare(state: &AppState, status: StatusCode, title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { main { (body) } }
        }
    };
    respond(state, status, markup.into_string())
}

/// `303 See Other` to `location`.
pub(super) fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(super) fn forbidden(state: &AppState, message: &str) -> Response {
    error_page(state, StatusCode::FORBIDDEN, message)
}

pub(super) fn error_page(state: &AppState, status: StatusCode, message: &str) -> Response {
    let body = html! {
        h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
        p.alert { (message) }
        p { a href="/ui" { "Back to the dashboard" } }
    };
    bare(state, status, "Error", body)
}

/// The answer when the store fails: the error is logged, the page says only that.
pub(super) fn store_failed(
    state: &AppState,
    error: &hookbridge_sync_engine::store::StoreError,
) -> Response {
    tracing::error!(%error, "dashboard store error");
    error_page(
        state,
        StatusCode::SERVICE_UNAVAILABLE,
        "The store failed; see the server's log.",
    )
}

/// Unknown dashboard paths (signed in).
pub(super) async fn not_found(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    page_with_status(
        &state,
        &session,
        StatusCode::NOT_FOUND,
        Nav::None,
        "Not found",
        None,
        html! { h1 { "Not found" } p { "There is no such page." } },
    )
}

/// The hidden field carrying the session's CSRF token.
pub(super) fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name=(csrf::FIELD) value=(session.csrf_token()); }
}

/// A time as `2025-01-31 12:34:56 UTC`.
pub(super) fn time(t: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// How long ago `t` was, roughly: `42 s`, `5 min`, `3 h 12 min`, `2 d 4 h`.
pub(super) fn age(t: OffsetDateTime) -> String {
    let secs = (OffsetDateTime::now_utc() - t).whole_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `path` with the non-empty `params` as a query string.
pub(super) fn link(path: &str, params: &[(&str, Option<String>)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (name, value) in params {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            query.append_pair(name, value);
            any = true;
        }
    }
    if any {
        format!("{path}?{}", query.finish())
    } else {
        path.to_owned()
    }
}

/// "Newest" and "Older" links of a keyset-paged list.
pub(super) fn pager(first: Option<String>, next: Option<String>) -> Markup {
    html! {
        nav.pager aria-label="pages" {
            @if let Some(first) = first { a href=(first) { "« Newest" } }
            @if let Some(next) = next { a href=(next) rel="next" { "Older »" } }
        }
    }
}

/// "Previous" and "Next" links of an offset-paged list of `total` items.
pub(super) fn offset_pager(
    path: &str,
    extra: &[(&str, Option<String>)],
    offset: usize,
    limit: usize,
    total: usize,
) -> Markup {
    let at = |o: usize| {
        let mut params = extra.to_vec();
        params.push(("offset", (o > 0).then(|| o.to_string())));
        link(path, &params)
    };
    html! {
        nav.pager aria-label="pages" {
            @if offset > 0 { a href=(at(offset.saturating_sub(limit))) { "« Previous" } }
            @if offset + limit < total { a href=(at(offset + limit)) rel="next" { "Next »" } }
        }
    }
}

/// The `done=` codes the replay actions redirect with, as sentences. Codes, not text, so a
/// crafted link cannot make the dashboard say something of the link author's choosing.
pub(super) fn notice(done: Option<&str>) -> Option<String> {
    let done = done?;
    if done == "delivery-replayed" {
        return Some(
            "The delivery is queued for dispatch again, through the current rules.".into(),
        );
    }
    let mut parts = done.split(':');
    if parts.next() != Some("replayed") {
        return None;
    }
    let replayed: u32 = parts.next()?.parse().ok()?;
    let refused: u32 = parts.next().unwrap_or("0").parse().ok()?;
    let mut text = match replayed {
        1 => "1 job is pending again.".to_owned(),
        n => format!("{n} jobs are pending again."),
    };
    if refused > 0 {
        text.push_str(&format!(
            " {refused} could not be replayed (gone, or no longer dead or skipped)."
        ));
    }
    Some(text)
}

/// A local path to go back to after a form, or `fallback`: only `/ui/...` paths are
/// followed, so a form cannot be made to send the browser elsewhere.
pub(super) fn back_to(requested: Option<&str>, fallback: &str) -> String {
    match requested {
        Some(path)
            if path.starts_with("/ui/")
                && !path.starts_with("/ui//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => fallback.to_owned(),
    }
}

/// A CSS class for a state or outcome word (`s-dead`, `s-done`, ...).
pub(super) fn state_class(word: &str) -> String {
    let word: String = word
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    format!("s-{word}")
}

/// Clamps a requested page size.
pub(super) fn page_size(asked: Option<u32>) -> u32 {
    asked.unwrap_or(50).clamp(1, 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_to_stays_in_the_dashboard() {
        assert_eq!(
            back_to(Some("/ui/dead-letters?rule=x"), "/ui/"),
            "/ui/dead-letters?rule=x"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/ui//evil.example",
            "/admin/x",
            "/ui/\\x",
        ] {
            assert_eq!(back_to(Some(bad), "/ui/"), "/ui/", "{bad}");
        }
        assert_eq!(back_to(None, "/ui/x"), "/ui/x");
    }

    #[test]
    fn notices_come_from_codes_only() {
        assert_eq!(
            notice(Some("replayed:2:1")).unwrap(),
            "2 jobs are pending again. 1 could not be replayed (gone, or no longer dead or skipped)."
        );
        assert_eq!(
            notice(Some("replayed:1")).unwrap(),
            "1 job is pending again."
        );
        assert!(notice(Some("Your token expired, enter it at evil.example")).is_none());
        assert!(notice(None).is_none());
    }

    #[test]
    fn links_encode_their_parameters() {
        assert_eq!(
            link(
                "/ui/deliveries",
                &[
                    ("q", Some("a&b c".into())),
                    ("endpoint", None),
                    ("event", Some(String::new()))
                ]
            ),
            "/ui/deliveries?q=a%26b+c"
        );
        assert_eq!(link("/ui/x", &[]), "/ui/x");
    }
}
