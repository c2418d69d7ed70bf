//! `GET /ui`: deliveries per endpoint over the last hours, failures, dead-letter depth, the
//! oldest delivery not yet fully processed, and this instance's open circuits.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use hookbridge_sync_engine::engine::CircuitState;
use hookbridge_sync_engine::store::JobState;
use maud::html;
use serde::Deserialize;
use time::OffsetDateTime;

use super::layout::{self, Nav};
use super::session::Session;
use crate::AppState;

const HOUR: i64 = 3600;
const WINDOWS: &[u32] = &[6, 24, 72];

#[derive(Deserialize)]
pub(super) struct OverviewQuery {
    hours: Option<u32>,
}

/// Per endpoint, per hour of the window: (deliveries, failed).
type Series = BTreeMap<String, Vec<(u64, u64)>>;

pub(super) async fn page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(q): Query<OverviewQuery>,
) -> Response {
    let hours = q.hours.unwrap_or(24).clamp(1, 168);
    let slots = usize::try_from(hours).unwrap_or(24);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let first = now.div_euclid(HOUR) * HOUR - (i64::from(hours) - 1) * HOUR;
    let since = OffsetDateTime::from_unix_timestamp(first).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let store = state.store();
    let buckets = match store
        .delivery_buckets(since, Duration::from_secs(HOUR.unsigned_abs()))
        .await
    {
        Ok(b) => b,
        Err(e) => return layout::store_failed(&state, &e),
    };
    let counts = match store.job_counts().await {
        Ok(c) => c,
        Err(e) => return layout::store_failed(&state, &e),
    };
    let oldest = match store.oldest_unfinished_delivery().await {
        Ok(o) => o,
        Err(e) => return layout::store_failed(&state, &e),
    };

    let mut series: Series = super::endpoint_names(&state)
        .into_iter()
        .map(|name| (name, vec![(0, 0); slots]))
        .collect();
    for b in &buckets {
        let index = (b.start.unix_timestamp() - first).div_euclid(HOUR);
        let Ok(index) = usize::try_from(index) else {
            continue;
        };
        let row = series
            .entry(b.endpoint.as_str().to_owned())
            .or_insert_with(|| vec![(0, 0); slots]);
        if let Some(slot) = row.get_mut(index) {
            slot.0 += b.deliveries;
            slot.1 += b.failed;
        }
    }
    let total: u64 = buckets.iter().map(|b| b.deliveries).sum();
    let failed: u64 = buckets.iter().map(|b| b.failed).sum();
    let count = |s: JobState| {
        counts
            .iter()
            .filter(|(state, _)| *state == s)
            .map(|(_, n)| *n)
            .sum::<u64>()
    };
    let dead = count(JobState::Dead);
    let waiting = count(JobState::Pending) + count(JobState::Running);
    let peak = series
        .values()
        .flatten()
        .map(|(n, _)| *n)
        .max()
        .unwrap_or(0)
        .max(1);
    // Circuits live in each instance's memory: these are this instance's.
    let circuits: Vec<_> = state
        .engine()
        .map(|e| e.circuits())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.state != CircuitState::Closed)
        .collect();
    let hour_label = |i: usize| {
        let start = first + i64::try_from(i).unwrap_or(0) * HOUR;
        OffsetDateTime::from_unix_timestamp(start)
            .map(|t| format!("{:02}:00", t.hour()))
            .unwrap_or_default()
    };

    let body = html! {
        h1 { "Overview" }
        div.cards {
            div.card {
                span.n { (total) }
                "deliveries in the last " (hours) " h"
            }
            div.card {
                span.n.error[failed > 0] { (failed) }
                a href=(layout::link("/ui/deliveries", &[("status", Some("failed".into()))])) { "failed" }
                " (unparseable, or a job dead-lettered)"
            }
            div.card {
                span.n.error[dead > 0] { (dead) }
                a href="/ui/dead-letters" { "dead letters" }
                " waiting for a replay"
            }
            div.card {
                span.n { (waiting) }
                "jobs pending or running"
            }
            div.card {
                span.n.error[!circuits.is_empty()] { (circuits.len()) }
                "open circuits (services paused on this instance)"
            }
            div.card {
                @match &oldest {
                    Some(d) => {
                        span.n { (layout::age(d.received_at)) }
                        "oldest unfinished: "
                        a href=(format!("/ui/deliveries/{}", d.seq)) { "#" (d.seq) }
                        " on " (d.endpoint.as_str())
                    }
                    None => {
                        span.n { "none" }
                        "every delivery is processed"
                    }
                }
            }
        }
        @if !circuits.is_empty() {
            h2 { "Open circuits on this instance" }
            div.scroll {
                table #circuits {
                    thead { tr { th { "service" } th { "state" } th { "since" } th { "next probe" } th { "last error" } } }
                    tbody {
                        @for c in &circuits {
                            tr {
                                td.mono { (c.target) }
                                td.error { (c.state.as_str()) }
                                td { (c.opened_at.map(layout::time).unwrap_or_default()) }
                                td { (c.probe_at.map(layout::time).unwrap_or_default()) }
                                td { (c.last_error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Deliveries per endpoint, last " (hours) " hours (UTC)" }
        p.muted {
            "Window: "
            @for w in WINDOWS {
                @if *w == hours { strong { (w) " h" } } @else {
                    a href=(format!("/ui?hours={w}")) { (w) " h" }
                }
                " "
            }
            " · each bar is one hour, red when some of its deliveries failed."
        }
        @if series.is_empty() {
            p { "No endpoint is configured." }
        } @else {
            div.scroll {
                table {
                    thead { tr {
                        th { "endpoint" }
                        th { (hour_label(0)) " → " (hour_label(slots.saturating_sub(1))) }
                        th.num { "deliveries" }
                        th.num { "failed" }
                    } }
                    tbody {
                        @for (endpoint, row) in &series {
                            @let sum: u64 = row.iter().map(|(n, _)| n).sum();
                            @let fails: u64 = row.iter().map(|(_, f)| f).sum();
                            tr {
                                td {
                                    a href=(layout::link("/ui/deliveries", &[("endpoint", Some(endpoint.clone()))])) {
                                        (endpoint)
                                    }
                                }
                                td.chart {
                                    div.bars {
                                        @for (i, (n, f)) in row.iter().enumerate() {
                                            span class=(bar_class(*n, *f, peak))
                                                title=(format!("{} UTC: {n} deliveries, {f} failed", hour_label(i))) {}
                                        }
                                    }
                                }
                                td.num { (sum) }
                                td.num.error[fails > 0] { (fails) }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(&state, &session, Nav::Overview, "Overview", None, body)
}

/// The height class (`h0`..`h10`, a tenth of the peak each) and colour of one hour's bar.
fn bar_class(n: u64, failed: u64, peak: u64) -> String {
    let tenths = if n == 0 {
        0
    } else {
        (n * 10).div_ceil(peak).clamp(1, 10)
    };
    if failed > 0 {
        format!("h{tenths} f")
    } else {
        format!("h{tenths}")
    }
}

#[cfg(test)]
mod tests {
    use super::bar_class;

    #[test]
    fn bars_scale_to_the_peak() {
        assert_eq!(bar_class(0, 0, 7), "h0");
        assert_eq!(bar_class(1, 0, 100), "h1");
        assert_eq!(bar_class(7, 2, 7), "h10 f");
        assert_eq!(bar_class(5, 0, 10), "h5");
    }
}
