//! `GET /ui/rules`: the engine's rules, and a dry run of them on a chosen delivery
//! (`POST /ui/rules/dry-run`): which rules match and what they would do, without doing it.

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use hookbridge_sync_engine::engine::{DryRun, DryRunError};
use hookbridge_sync_engine::store::DeliveryFilter;
use maud::{Markup, html};
use serde::Deserialize;

use super::csrf::Form;
use super::layout::{self, Nav};
use super::session::Session;
use crate::AppState;

/// Rules listed per page.
const PAGE: usize = 50;
/// Recent deliveries offered in the dry-run form.
const RECENT: u32 = 25;

#[derive(Deserialize)]
pub(super) struct RulesQuery {
    delivery: Option<i64>,
    offset: Option<usize>,
}

pub(super) async fn page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(q): Query<RulesQuery>,
) -> Response {
    render(&state, &session, q.delivery, q.offset.unwrap_or(0), None).await
}

pub(super) async fn dry_run(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(form): Extension<Form>,
) -> Response {
    let Some(seq) = form
        .get("delivery")
        .and_then(|s| s.trim().trim_start_matches('#').parse::<i64>().ok())
    else {
        return layout::error_page(
            &state,
            StatusCode::BAD_REQUEST,
            "Choose a delivery by its number.",
        );
    };
    let Some(engine) = state.engine() else {
        return layout::error_page(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            "The engine is not running in this process.",
        );
    };
    let result = engine.dry_run(seq).await;
    let status = match &result {
        Ok(_) => StatusCode::OK,
        Err(DryRunError::NotFound(_)) => StatusCode::NOT_FOUND,
        Err(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let mut response = render(&state, &session, Some(seq), 0, Some(result)).await;
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

async fn render(
    state: &AppState,
    session: &Session,
    chosen: Option<i64>,
    offset: usize,
    result: Option<Result<DryRun, DryRunError>>,
) -> Response {
    let rules = state.engine().map(|e| e.rule_names());
    let recent = match state
        .store()
        .list_deliveries(&DeliveryFilter {
            endpoint: None,
            before_seq: None,
            limit: RECENT,
        })
        .await
    {
        Ok(r) => r,
        Err(e) => return layout::store_failed(state, &e),
    };
    let chosen_in_recent = chosen.is_some_and(|c| recent.iter().any(|d| d.seq == c));
    let body = html! {
        h1 { "Rules" }
        @match &rules {
            None => p.alert { "The engine is not running in this process: no rules to show." },
            Some(rules) if rules.is_empty() => p.muted { "No rules are configured." },
            Some(rules) => {
                div.scroll {
                    table #rules {
                        thead { tr { th { "rule" } th { "" } } }
                        tbody {
                            @for name in rules.iter().skip(offset).take(PAGE) {
                                tr {
                                    td { code { (name) } }
                                    td { a href=(layout::link("/ui/dead-letters", &[("rule", Some(name.clone()))])) { "dead letters" } }
                                }
                            }
                        }
                    }
                }
                (layout::offset_pager("/ui/rules", &[("delivery", chosen.map(|c| c.to_string()))], offset, PAGE, rules.len()))
            }
        }
        h2 { "Dry run" }
        p.muted { "Runs every rule on a stored delivery without side effects: what each would do is recorded as " code { "would: ..." } "; no link, state or echo mark is written." }
        form.filters method="post" action="/ui/rules/dry-run" {
            (layout::csrf_field(session))
            label { "recent delivery"
                select name="delivery" {
                    @if let Some(c) = chosen.filter(|_| !chosen_in_recent) {
                        option value=(c) selected { "#" (c) }
                    }
                    @for d in &recent {
                        option value=(d.seq) selected[chosen == Some(d.seq)] {
                            "#" (d.seq) " · " (d.endpoint.as_str()) " · " (d.event_type) " · " (d.delivery_id.as_str())
                        }
                    }
                }
            }
            button type="submit" #dry-run { "Dry run" }
        }
        @if let Some(result) = &result { (report(result)) }
    };
    layout::page(state, session, Nav::Rules, "Rules", None, body)
}

fn report(result: &Result<DryRun, DryRunError>) -> Markup {
    html! {
        @match result {
            Err(e) => p.alert role="alert" { (e.to_string()) },
            Ok(run) => {
                h2 { "Dry run of delivery " a href=(format!("/ui/deliveries/{}", run.seq)) { "#" (run.seq) } " (" code { (run.event) } ")" }
                div.scroll {
                    table #dry-run-result {
                        thead { tr { th { "rule" } th { "matches" } th { "outcome" } th { "would do" } th { "error" } } }
                        tbody {
                            @for r in &run.rules {
                                tr {
                                    td { code { (r.rule) } }
                                    td { @if r.matched { "yes" } @else { span.muted { "no" } } }
                                    td class=(layout::state_class(&r.outcome)) { (r.outcome) }
                                    td { @for a in &r.actions { div.mono { (a) } } }
                                    td.error { (r.error.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
