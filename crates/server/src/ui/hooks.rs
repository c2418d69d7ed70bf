//! `GET /ui/hooks`: the declared `[[hooks]]` and their health at the services, as
//! `hookbridge hooks list` reports it (the same [`HookPlan`] in dry-run mode). Each
//! connection is asked separately, in parallel and with a time limit, so one slow or failing
//! service shows its error in its own row and never holds the page; the report is kept for a
//! minute so that reloading the page does not call the services each time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use time::OffsetDateTime;

use super::layout::{self, Nav};
use super::session::Session;
use crate::AppState;
use crate::hooks::{Change, HookPlan, HookSection, SyncMode};

/// How long one connection's check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a report is shown before the services are asked again.
const REPORT_TTL: Duration = Duration::from_secs(60);
/// Connections per page.
const PAGE: usize = 20;

/// One connection's hooks, as checked.
struct ConnectionReport {
    name: String,
    kind: &'static str,
    declared: Vec<HookSection>,
    /// (status word, what it means, the hook) per hook, or why the check failed.
    result: Result<Vec<(&'static str, &'static str, String)>, String>,
}

/// The last report, and when it was made.
pub(super) struct CachedReport {
    made: Instant,
    at: OffsetDateTime,
    rows: Arc<Vec<ConnectionReport>>,
}

#[derive(Deserialize)]
pub(super) struct HooksQuery {
    refresh: Option<String>,
    offset: Option<usize>,
}

fn describe(change: Change) -> (&'static str, &'static str, String) {
    match change {
        Change::Unchanged(h) => ("ok", "registered as declared", h),
        Change::Created(h) => (
            "missing",
            "declared, not registered: `hooks sync` creates it",
            h,
        ),
        Change::Updated(h) => (
            "differs",
            "registered but inactive or with other events: `hooks sync` corrects it",
            h,
        ),
        Change::Deleted(h) | Change::Unknown(h) => (
            "unknown",
            "points at this server but is not declared: `hooks sync --prune` deletes it",
            h,
        ),
        Change::Failing(h) => ("failing", "the service reports failed deliveries to it", h),
    }
}

async fn check(state: &AppState) -> Vec<ConnectionReport> {
    let settings = &state.ui().settings;
    let Some(public_url) = settings.public_url.as_deref() else {
        return Vec::new();
    };
    let mut used: BTreeMap<&str, Vec<HookSection>> = BTreeMap::new();
    for hook in &settings.hooks {
        used.entry(hook.connection.as_str())
            .or_default()
            .push(hook.clone());
    }
    let services = state.services();
    let checks = used.into_iter().map(|(name, declared)| async move {
        let kind = settings
            .connections
            .get(name)
            .map_or("unknown", |c| c.kind());
        let result = match (services, settings.connections.get(name)) {
            (Some(services), Some(section)) => {
                let one = BTreeMap::from([(name.to_owned(), section.clone())]);
                let no_secrets = BTreeMap::new();
                let plan = HookPlan {
                    public_url,
                    connections: &one,
                    clients: services.connections(),
                    hooks: &settings.hooks,
                    secrets: &no_secrets,
                };
                let mode = SyncMode {
                    dry_run: true,
                    prune: false,
                };
                match tokio::time::timeout(CHECK_TIMEOUT, plan.run(mode)).await {
                    Ok(Ok(changes)) => Ok(changes.into_iter().map(describe).collect()),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(format!(
                        "no answer within {} s; try again later",
                        CHECK_TIMEOUT.as_secs()
                    )),
                }
            }
            (None, _) => Err("the connections' clients are not available in this process".into()),
            (_, None) => Err("no such connection".into()),
        };
        if let Err(error) = &result {
            tracing::warn!(connection = name, %error, "dashboard hook check failed");
        }
        ConnectionReport {
            name: name.to_owned(),
            kind,
            declared,
            result,
        }
    });
    futures_util::future::join_all(checks).await
}

pub(super) async fn page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(q): Query<HooksQuery>,
) -> Response {
    let cached = {
        let guard = state
            .ui()
            .hooks_report
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .filter(|r| q.refresh.is_none() && r.made.elapsed() < REPORT_TTL)
            .map(|r| (r.at, r.rows.clone()))
    };
    let (at, rows) = match cached {
        Some(hit) => hit,
        None => {
            let rows = Arc::new(check(&state).await);
            let at = OffsetDateTime::now_utc();
            *state
                .ui()
                .hooks_report
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(CachedReport {
                made: Instant::now(),
                at,
                rows: rows.clone(),
            });
            (at, rows)
        }
    };
    let offset = q.offset.unwrap_or(0);
    let public_url = state.ui().settings.public_url.clone();
    let body = html! {
        h1 { "Hooks" }
        @if rows.is_empty() {
            p.muted {
                "No webhook is declared in " code { "[[hooks]]" } "."
                @if public_url.is_none() { " (" code { "[server] public_url" } " is not set either.)" }
            }
        } @else {
            p.muted {
                "As the services report them, checked " (layout::age(at)) " ago without changing anything. "
                a href="/ui/hooks?refresh=1" { "Check again" }
            }
            @for report in rows.iter().skip(offset).take(PAGE) {
                section.job {
                    h2 { "connection " code { (report.name) } " " span.muted { "(" (report.kind) ")" } }
                    p.muted {
                        (report.declared.len()) " declared: "
                        @for (i, h) in report.declared.iter().enumerate() {
                            @if i > 0 { ", " }
                            "→ " code { (h.endpoint) }
                            @if let Some(r) = h.repository.as_deref().or(h.model.as_deref()).or(h.resource.as_deref()) { " (" (r) ")" }
                        }
                    }
                    @match &report.result {
                        Err(error) => p.alert role="alert" { "Could not check: " (error) },
                        Ok(changes) if changes.is_empty() => p.muted { "Nothing registered or declared here." },
                        Ok(changes) => {
                            div.scroll {
                                table {
                                    thead { tr { th { "health" } th { "hook" } th.wide { "meaning" } } }
                                    tbody {
                                        @for (word, meaning, hook) in changes {
                                            tr {
                                                td class=(layout::state_class(if *word == "ok" { "ok" } else { "failed" })) { (word) }
                                                td.mono { (hook) }
                                                td.wide { (meaning) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (layout::offset_pager("/ui/hooks", &[], offset, PAGE, rows.len()))
        }
    };
    layout::page(&state, &session, Nav::Hooks, "Hooks", None, body)
}
