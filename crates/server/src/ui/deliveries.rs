//! `GET /ui/deliveries` (filters, search, pages), `GET /ui/deliveries/{seq}` (one delivery
//! with its jobs) and `POST /ui/deliveries/{seq}/replay`.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use hookbridge_core::EndpointName;
use hookbridge_sync_engine::store::{
    Attempt, DeliverySearch, DeliveryStatus, Job, JobFilter, JobState, StoredDelivery,
};
use maud::{Markup, html};
use serde::Deserialize;
use time::OffsetDateTime;

use super::layout::{self, Nav};
use super::session::Session;
use crate::AppState;

/// The statuses the filter offers: the stored ones, and `failed` (a job dead-lettered).
const STATUSES: &[(&str, &str)] = &[
    ("received", "received (not dispatched yet)"),
    ("dispatched", "dispatched"),
    ("no_rules", "no rule wanted it"),
    ("unparseable", "unparseable"),
    ("failed", "failed (a job dead-lettered)"),
];

/// Longest body shown; the rest is cut (the admin API and CLI give the whole of it).
const MAX_BODY_SHOWN: usize = 256 * 1024;

/// Header names whose values are credentials or signatures: shown as `[redacted]`.
const CREDENTIAL_WORDS: &[&str] = &[
    "signature",
    "authorization",
    "token",
    "secret",
    "cookie",
    "password",
    "api-key",
    "apikey",
    "x-hub-signature",
];

#[derive(Default, Deserialize)]
pub(super) struct ListQuery {
    endpoint: Option<String>,
    event: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    q: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
}

fn filled(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A time from the filter form: `datetime-local` input (`2025-01-31T12:30`), with seconds,
/// a date alone, or RFC 3339. Times without an offset are UTC.
fn parse_time(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    let text = text.replace(' ', "T");
    let with_seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    for format in [with_seconds, minutes] {
        if let Ok(t) = time::PrimitiveDateTime::parse(&text, &format) {
            return Some(t.assume_utc());
        }
    }
    time::Date::parse(&text, format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|d| d.midnight().assume_utc())
}

pub(super) async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(q): Query<ListQuery>,
) -> Response {
    let mut problems = Vec::new();
    let mut time_filter = |name: &str, value: &Option<String>| {
        let text = filled(value)?;
        let parsed = parse_time(&text);
        if parsed.is_none() {
            problems.push(format!(
                "{name}: {text:?} is not a time; write 2025-01-31T12:30 (UTC)"
            ));
        }
        parsed
    };
    let since = time_filter("since", &q.since);
    let until = time_filter("until", &q.until);
    let status = filled(&q.status);
    let (status_filter, failed) = match status.as_deref() {
        None => (None, false),
        Some("failed") => (None, true),
        Some(other) => match DeliveryStatus::parse(other) {
            Some(s) => (Some(s), false),
            None => {
                problems.push(format!("status: unknown status {other:?}"));
                (None, false)
            }
        },
    };
    let limit = layout::page_size(q.limit);
    let search = DeliverySearch {
        endpoint: filled(&q.endpoint).map(EndpointName::new),
        event_type: filled(&q.event),
        status: status_filter,
        failed,
        since,
        until,
        text: filled(&q.q),
        before_seq: q.before,
        limit,
    };
    let rows = if problems.is_empty() {
        match state.store().search_deliveries(&search).await {
            Ok(rows) => rows,
            Err(e) => return layout::store_failed(&state, &e),
        }
    } else {
        Vec::new()
    };
    let mut job_states = Vec::with_capacity(rows.len());
    for d in &rows {
        match jobs_summary(&state, d.seq).await {
            Ok(summary) => job_states.push(summary),
            Err(e) => return layout::store_failed(&state, &e),
        }
    }
    let filters: Vec<(&str, Option<String>)> = vec![
        ("endpoint", filled(&q.endpoint)),
        ("event", filled(&q.event)),
        ("status", status.clone()),
        ("since", filled(&q.since)),
        ("until", filled(&q.until)),
        ("q", filled(&q.q)),
        ("limit", q.limit.map(|l| l.to_string())),
    ];
    let next = (rows.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| rows.last().map(|d| d.seq))
        .flatten()
        .map(|seq| {
            let mut params = filters.clone();
            params.push(("before", Some(seq.to_string())));
            layout::link("/ui/deliveries", &params)
        });
    let first = q
        .before
        .is_some()
        .then(|| layout::link("/ui/deliveries", &filters));
    let endpoints = super::endpoint_names(&state);
    let chosen_endpoint = filled(&q.endpoint);

    let body = html! {
        h1 { "Deliveries" }
        form.filters method="get" action="/ui/deliveries" {
            label { "endpoint"
                select name="endpoint" {
                    option value="" { "any" }
                    @for name in &endpoints {
                        option value=(name) selected[chosen_endpoint.as_deref() == Some(name.as_str())] { (name) }
                    }
                }
            }
            label { "event type"
                input name="event" value=(filled(&q.event).unwrap_or_default()) placeholder="e.g. issues";
            }
            label { "status"
                select name="status" {
                    option value="" { "any" }
                    @for (value, label) in STATUSES {
                        option value=(value) selected[status.as_deref() == Some(*value)] { (label) }
                    }
                }
            }
            label { "since (UTC)"
                input type="datetime-local" name="since" value=(filled(&q.since).unwrap_or_default());
            }
            label { "until (UTC)"
                input type="datetime-local" name="until" value=(filled(&q.until).unwrap_or_default());
            }
            label { "delivery id or subject"
                input type="search" name="q" value=(filled(&q.q).unwrap_or_default()) placeholder="id, or github:org/repo#12";
            }
            button type="submit" { "Filter" }
            a href="/ui/deliveries" { "clear" }
        }
        @for problem in &problems {
            p.alert role="alert" { (problem) }
        }
        @if rows.is_empty() && problems.is_empty() {
            p.muted { "No delivery matches." }
        } @else if !rows.is_empty() {
            div.scroll {
                table #deliveries {
                    thead { tr {
                        th { "#" }
                        th { "received" }
                        th { "endpoint" }
                        th { "event" }
                        th.wide { "delivery id" }
                        th { "status" }
                        th { "jobs" }
                    } }
                    tbody {
                        @for (d, jobs) in rows.iter().zip(&job_states) {
                            tr {
                                td { a href=(format!("/ui/deliveries/{}", d.seq)) { (d.seq) } }
                                td { (layout::time(d.received_at)) }
                                td { (d.endpoint.as_str()) }
                                td.event { (d.event_type) }
                                td.wide.mono { (d.delivery_id.as_str()) }
                                td class=(layout::state_class(&d.status)) { (d.status) }
                                td {
                                    @for (i, (state, n)) in jobs.iter().enumerate() {
                                        @if i > 0 { ", " }
                                        span class=(layout::state_class(state.as_str())) { (n) " " (state.as_str()) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (layout::pager(first, next))
    };
    layout::page(&state, &session, Nav::Deliveries, "Deliveries", None, body)
}

/// How many of a delivery's jobs are in each state, worst first.
async fn jobs_summary(
    state: &AppState,
    seq: i64,
) -> Result<Vec<(JobState, usize)>, hookbridge_sync_engine::store::StoreError> {
    let jobs = state
        .store()
        .list_jobs(&JobFilter {
            delivery_seq: Some(seq),
            limit: 200,
            ..Default::default()
        })
        .await?;
    let order = [
        JobState::Dead,
        JobState::Running,
        JobState::Pending,
        JobState::Skipped,
        JobState::Done,
    ];
    Ok(order
        .into_iter()
        .map(|s| (s, jobs.iter().filter(|j| j.state == s).count()))
        .filter(|(_, n)| *n > 0)
        .collect())
}

#[derive(Deserialize)]
pub(super) struct ShowQuery {
    done: Option<String>,
}

/// The value to show for a stored header: credentials and signatures never appear.
fn shown_header_value<'a>(name: &str, value: &'a str) -> &'a str {
    let name = name.to_ascii_lowercase();
    if CREDENTIAL_WORDS.iter().any(|w| name.contains(w)) {
        "[redacted]"
    } else {
        value
    }
}

/// The body for display: pretty JSON when it is JSON, else the text (cut when long).
fn shown_body(delivery: &StoredDelivery) -> (String, bool) {
    let value = crate::admin::body_json(delivery);
    let mut text = match &value {
        serde_json::Value::String(text) => text.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    let cut = text.len() > MAX_BODY_SHOWN;
    if cut {
        let mut end = MAX_BODY_SHOWN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    (text, cut)
}

pub(super) async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(seq): Path<i64>,
    Query(q): Query<ShowQuery>,
) -> Response {
    let delivery = match state.store().delivery(seq).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return layout::page_with_status(
                &state,
                &session,
                StatusCode::NOT_FOUND,
                Nav::Deliveries,
                "No such delivery",
                None,
                html! { h1 { "No delivery #" (seq) } p { a href="/ui/deliveries" { "All deliveries" } } },
            );
        }
        Err(e) => return layout::store_failed(&state, &e),
    };
    let jobs = match state
        .store()
        .list_jobs(&JobFilter {
            delivery_seq: Some(seq),
            limit: 200,
            ..Default::default()
        })
        .await
    {
        Ok(jobs) => jobs,
        Err(e) => return layout::store_failed(&state, &e),
    };
    let mut detailed: Vec<(Job, Vec<Attempt>)> = Vec::with_capacity(jobs.len());
    for job in jobs.into_iter().rev() {
        match state.store().job(job.id).await {
            Ok(Some(found)) => detailed.push(found),
            Ok(None) => detailed.push((job, Vec::new())),
            Err(e) => return layout::store_failed(&state, &e),
        }
    }
    let event = crate::admin::event_name(&delivery);
    let verification = verification(&state, &delivery);
    let (body_text, cut) = shown_body(&delivery);
    let back = format!("/ui/deliveries/{seq}");

    let body = html! {
        h1 { "Delivery #" (seq) }
        dl.facts {
            dt { "endpoint" } dd { a href=(layout::link("/ui/deliveries", &[("endpoint", Some(delivery.endpoint.as_str().to_owned()))])) { (delivery.endpoint.as_str()) } }
            dt { "provider" } dd { (delivery.provider) }
            dt { "delivery id" } dd.mono { (delivery.delivery_id.as_str()) }
            dt { "event type" } dd { (delivery.event_type) }
            dt { "event" } dd { @match &event { Some(e) => code { (e) }, None => span.error { "not parseable by its provider" } } }
            dt { "received" } dd { (layout::time(delivery.received_at)) " (" (layout::age(delivery.received_at)) " ago)" }
            dt { "status" } dd class=(layout::state_class(&delivery.status)) { (delivery.status) }
            dt { "verification" } dd { (verification) }
        }
        div.actions {
            form.inline method="post" action=(format!("/ui/deliveries/{seq}/replay")) {
                (layout::csrf_field(&session))
                button type="submit" #replay-delivery { "Replay through the current rules" }
            }
            a href=(layout::link("/ui/rules", &[("delivery", Some(seq.to_string()))])) { "Dry-run the rules on it" }
        }
        h2 { "Jobs" }
        @if detailed.is_empty() {
            p.muted { "No job: " @if delivery.status == "received" { "not dispatched yet." } @else { "no rule took it." } }
        }
        @for (job, attempts) in &detailed {
            (job_block(&session, job, attempts, &back))
        }
        h2 { "Headers" }
        div.scroll {
            table #headers {
                thead { tr { th { "name" } th { "value" } } }
                tbody {
                    @for (name, value) in &delivery.headers {
                        tr { td.mono { (name) } td.mono { (shown_header_value(name, value)) } }
                    }
                }
            }
        }
        p.muted { "Credentials (Authorization, cookies, tokens) are never stored; signatures are not shown." }
        h2 { "Body" }
        @if cut { p.muted { "Only the first " (MAX_BODY_SHOWN / 1024) " KiB are shown." } }
        pre #body { (body_text) }
    };
    let title = format!("Delivery #{seq}");
    let notice = layout::notice(q.done.as_deref());
    layout::page(&state, &session, Nav::Deliveries, &title, notice, body)
}

/// What verifying the stored delivery again says, next to the fact that it was verified
/// when received (unverified deliveries are never stored).
fn verification(state: &AppState, delivery: &StoredDelivery) -> Markup {
    let now = state
        .endpoint(delivery.endpoint.as_str())
        .map(|ep| ep.provider.verify(&delivery.to_raw()));
    html! {
        span.s-ok { "verified when received" }
        " (deliveries that fail verification are refused, never stored). "
        @match now {
            Some(Ok(v)) => {
                "Checked again now: " span.s-ok { "passes" } " (" code { (v.scheme) } ", secret #" (v.secret_index + 1) ")."
            }
            Some(Err(e)) => {
                "Checked again now: " span.error { "does not pass" } " (" (e.to_string()) "): expected after a secret rotation, for signed timestamps older than the tolerance, and for credentials hookbridge does not keep."
            }
            None => { "Its endpoint is no longer configured." }
        }
    }
}

fn job_block(session: &Session, job: &Job, attempts: &[Attempt], back: &str) -> Markup {
    let replayable = matches!(job.state, JobState::Dead | JobState::Skipped);
    html! {
        div.job id=(format!("job-{}", job.id)) {
            p {
                strong { "job " (job.id) } " · rule " code { (job.rule) }
                @if let Some(subject) = &job.subject { " · subject " code { (subject) } }
                " · " span.state class=(layout::state_class(job.state.as_str())) { (job.state.as_str()) }
                " · attempts " (job.attempts) "/" (job.max_attempts)
                @if job.state == JobState::Pending { " · next run " (layout::time(job.run_at)) }
            }
            @if let Some(error) = &job.last_error { p.error { "last error: " (error) } }
            @if replayable {
                form.inline method="post" action=(format!("/ui/jobs/{}/replay", job.id)) {
                    (layout::csrf_field(session))
                    input type="hidden" name="back" value=(back);
                    button.small type="submit" { "Replay job " (job.id) }
                }
            }
            @if !attempts.is_empty() {
                div.scroll {
                    table {
                        thead { tr { th { "#" } th { "started" } th.wide { "took" } th { "outcome" } th { "error" } th { "actions and calls" } } }
                        tbody {
                            @for a in attempts {
                                tr {
                                    td { (a.number) }
                                    td { (layout::time(a.started_at)) }
                                    td.wide { ((a.finished_at - a.started_at).whole_milliseconds()) " ms" }
                                    td class=(layout::state_class(&a.outcome)) { (a.outcome) }
                                    td { (a.error.as_deref().unwrap_or("")) }
                                    td {
                                        @for action in &a.actions { div.mono { (action) } }
                                        @for call in &a.calls { div.mono { "→ " (call.to_string()) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) async fn replay(State(state): State<AppState>, Path(seq): Path<i64>) -> Response {
    match state.store().replay_delivery(seq).await {
        Ok(true) => {
            tracing::info!(seq, "delivery replayed from the dashboard");
            layout::redirect(&format!("/ui/deliveries/{seq}?done=delivery-replayed"))
        }
        Ok(false) => {
            layout::error_page(&state, StatusCode::NOT_FOUND, "There is no such delivery.")
        }
        Err(e) => layout::store_failed(&state, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_headers_are_redacted() {
        for name in [
            "X-Hub-Signature-256",
            "x-hub-signature",
            "Authorization",
            "x-gitlab-token",
            "X-Slack-Signature",
            "stripe-signature",
            "webhook-signature",
            "Signature",
            "X-Hook-Secret",
            "x-api-key",
        ] {
            assert_eq!(shown_header_value(name, "v"), "[redacted]", "{name}");
        }
        for name in [
            "x-github-event",
            "content-type",
            "x-github-delivery",
            "user-agent",
        ] {
            assert_eq!(shown_header_value(name, "v"), "v", "{name}");
        }
    }

    #[test]
    fn filter_times() {
        let t = parse_time("2025-01-31T12:30").unwrap();
        assert_eq!(t.unix_timestamp(), 1_738_326_600);
        assert_eq!(
            parse_time("2025-01-31 12:30:15").unwrap().unix_timestamp(),
            1_738_326_615
        );
        assert_eq!(
            parse_time("2025-01-31").unwrap().unix_timestamp(),
            1_738_281_600
        );
        assert_eq!(
            parse_time("2025-01-31T13:30:00+01:00")
                .unwrap()
                .unix_timestamp(),
            1_738_326_600
        );
        assert!(parse_time("yesterday").is_none());
    }
}
