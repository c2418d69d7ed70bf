//! `GET /ui/links`: the links rules keep between an object at one service and its
//! counterpart at another (A ↔ B), by rule, in pages.

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::layout::{self, Nav};
use super::session::Session;
use crate::AppState;

/// Longest link data shown, in characters.
const MAX_DATA_SHOWN: usize = 300;

#[derive(Deserialize)]
pub(super) struct LinksQuery {
    rule: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
}

pub(super) async fn page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(q): Query<LinksQuery>,
) -> Response {
    let rule = q.rule.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let after = q.after.as_deref().filter(|a| !a.is_empty());
    let limit = layout::page_size(q.limit);
    let links = match state.store().list_links(rule, after, limit).await {
        Ok(links) => links,
        Err(e) => return layout::store_failed(&state, &e),
    };
    let params: Vec<(&str, Option<String>)> = vec![
        ("rule", rule.map(str::to_owned)),
        ("limit", q.limit.map(|l| l.to_string())),
    ];
    let next = (links.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| links.last().map(|l| l.a.clone()))
        .flatten()
        .map(|a| {
            let mut p = params.clone();
            p.push(("after", Some(a)));
            layout::link("/ui/links", &p)
        });
    let first = after.is_some().then(|| layout::link("/ui/links", &params));
    let rules = state.engine().map(|e| e.rule_names()).unwrap_or_default();
    let body = html! {
        h1 { "Links" }
        p.muted { "Each rule links an object at one service (A) to its counterpart at another (B), e.g. a GitHub issue and its Jira issue." }
        form.filters method="get" action="/ui/links" {
            label { "rule"
                select name="rule" {
                    option value="" { "any" }
                    @for name in &rules {
                        option value=(name) selected[rule == Some(name.as_str())] { (name) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        @if links.is_empty() {
            p.muted { "No links." }
        } @else {
            div.scroll {
                table #links {
                    thead { tr { th { "rule" } th { "A" } th { "" } th { "B" } th.wide { "data" } } }
                    tbody {
                        @for link in &links {
                            @let data = link.data.to_string();
                            tr {
                                td { code { (link.rule) } }
                                td.mono { (link.a) }
                                td { "↔" }
                                td.mono { (link.b) }
                                td.wide.mono {
                                    @if link.data.is_null() { "" }
                                    @else if data.chars().count() > MAX_DATA_SHOWN {
                                        (data.chars().take(MAX_DATA_SHOWN).collect::<String>()) "…"
                                    } @else { (data) }
                                }
                            }
                        }
                    }
                }
            }
        }
        (layout::pager(first, next))
    };
    layout::page(&state, &session, Nav::Links, "Links", None, body)
}
