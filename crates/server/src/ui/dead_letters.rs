//! `GET /ui/dead-letters` (dead jobs, newest first, by pages), and their replay: one
//! (`POST /ui/jobs/{id}/replay`) or many (`POST /ui/dead-letters/replay`).

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use hookbridge_sync_engine::store::{JobFilter, JobId, JobState};
use maud::html;
use serde::Deserialize;

use super::csrf::Form;
use super::layout::{self, Nav};
use super::session::Session;
use crate::AppState;
use crate::admin::{JobReplay, replay_job_now};

/// Most jobs one bulk replay takes (a page is at most 200).
const MAX_BULK: usize = 500;

#[derive(Deserialize)]
pub(super) struct ListQuery {
    rule: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
    done: Option<String>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(q): Query<ListQuery>,
) -> Response {
    let rule = q.rule.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let limit = layout::page_size(q.limit);
    let filter = JobFilter {
        state: Some(JobState::Dead),
        rule: rule.map(str::to_owned),
        delivery_seq: None,
        before_id: q.before,
        limit,
    };
    let jobs = match state.store().list_jobs(&filter).await {
        Ok(jobs) => jobs,
        Err(e) => return layout::store_failed(&state, &e),
    };
    let params: Vec<(&str, Option<String>)> = vec![
        ("rule", rule.map(str::to_owned)),
        ("limit", q.limit.map(|l| l.to_string())),
    ];
    let next = (jobs.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| jobs.last().map(|j| j.id.0))
        .flatten()
        .map(|id| {
            let mut p = params.clone();
            p.push(("before", Some(id.to_string())));
            layout::link("/ui/dead-letters", &p)
        });
    let here = {
        let mut p = params.clone();
        p.push(("before", q.before.map(|b| b.to_string())));
        layout::link("/ui/dead-letters", &p)
    };
    let first = q
        .before
        .is_some()
        .then(|| layout::link("/ui/dead-letters", &params));
    let rules = state.engine().map(|e| e.rule_names()).unwrap_or_default();
    let page_ids = jobs
        .iter()
        .map(|j| j.id.0.to_string())
        .collect::<Vec<_>>()
        .join(",");

    let body = html! {
        h1 { "Dead letters" }
        p.muted { "Jobs out of attempts, or failed permanently. A replay gives a job a fresh set of attempts; its earlier attempts stay on record." }
        form.filters method="get" action="/ui/dead-letters" {
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
        @if jobs.is_empty() {
            p #no-dead-letters { "No dead letters." }
        } @else {
            form method="post" action="/ui/dead-letters/replay" {
                (layout::csrf_field(&session))
                input type="hidden" name="back" value=(here);
                div.actions {
                    button type="submit" #replay-selected { "Replay selected" }
                    button type="submit" name="page" value=(page_ids) #replay-page { "Replay all " (jobs.len()) " on this page" }
                }
                div.scroll {
                    table #dead-letters {
                        thead { tr {
                            th { span.muted { "select" } }
                            th { "job" }
                            th { "delivery" }
                            th { "rule" }
                            th.wide { "subject" }
                            th { "attempts" }
                            th { "last error" }
                            th.wide { "dead since" }
                            th { "" }
                        } }
                        tbody {
                            @for job in &jobs {
                                tr {
                                    td { input type="checkbox" name="job" value=(job.id.0) aria-label=(format!("select job {}", job.id)); }
                                    td { (job.id) }
                                    td { a href=(format!("/ui/deliveries/{}#job-{}", job.delivery_seq, job.id)) { "#" (job.delivery_seq) } }
                                    td { code { (job.rule) } }
                                    td.wide.mono { (job.subject.as_deref().unwrap_or("")) }
                                    td { (job.attempts) "/" (job.max_attempts) }
                                    td.error { (job.last_error.as_deref().unwrap_or("")) }
                                    td.wide { (layout::time(job.updated_at)) }
                                    td {
                                        button.small type="submit" formaction=(format!("/ui/jobs/{}/replay", job.id)) id=(format!("replay-{}", job.id)) { "Replay" }
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
    let notice = layout::notice(q.done.as_deref());
    layout::page(
        &state,
        &session,
        Nav::DeadLetters,
        "Dead letters",
        notice,
        body,
    )
}

/// The page to go back to, with the replay's result appended as a `done=` code.
fn back_with(form: &Form, replayed: u32, refused: u32) -> String {
    let back = layout::back_to(form.get("back"), "/ui/dead-letters");
    let back = back
        .split('#')
        .next()
        .unwrap_or("/ui/dead-letters")
        .to_owned();
    let sep = if back.contains('?') { '&' } else { '?' };
    format!("{back}{sep}done=replayed:{replayed}:{refused}")
}

pub(super) async fn replay_one(
    State(state): State<AppState>,
    Extension(form): Extension<Form>,
    Path(id): Path<i64>,
) -> Response {
    match replay_job_now(state.store().as_ref(), JobId(id)).await {
        Ok(JobReplay::Replayed) => layout::redirect(&back_with(&form, 1, 0)),
        Ok(JobReplay::NotFound) => {
            layout::error_page(&state, StatusCode::NOT_FOUND, "There is no such job.")
        }
        Ok(JobReplay::NotReplayable(job_state)) => layout::error_page(
            &state,
            StatusCode::CONFLICT,
            &format!(
                "Job {id} is {}: only dead or skipped jobs replay.",
                job_state.as_str()
            ),
        ),
        Err(e) => layout::store_failed(&state, &e),
    }
}

/// The job ids a bulk replay names: checked boxes (`job`) and a whole page (`page`).
fn bulk_ids(form: &Form) -> Vec<i64> {
    let mut ids: Vec<i64> = form
        .all("job")
        .chain(form.all("page").flat_map(|list| list.split(',')))
        .filter_map(|id| id.trim().parse().ok())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

pub(super) async fn replay_many(
    State(state): State<AppState>,
    Extension(form): Extension<Form>,
) -> Response {
    let ids = bulk_ids(&form);
    if ids.is_empty() {
        return layout::error_page(
            &state,
            StatusCode::BAD_REQUEST,
            "Select at least one dead letter to replay.",
        );
    }
    if ids.len() > MAX_BULK {
        return layout::error_page(
            &state,
            StatusCode::BAD_REQUEST,
            &format!("At most {MAX_BULK} jobs replay at once."),
        );
    }
    let (mut replayed, mut refused) = (0u32, 0u32);
    for id in &ids {
        match replay_job_now(state.store().as_ref(), JobId(*id)).await {
            Ok(JobReplay::Replayed) => replayed += 1,
            Ok(_) => refused += 1,
            Err(e) => return layout::store_failed(&state, &e),
        }
    }
    tracing::info!(
        replayed,
        refused,
        "dead letters replayed from the dashboard"
    );
    layout::redirect(&back_with(&form, replayed, refused))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_ids_from_boxes_and_pages() {
        let form = Form::parse(b"csrf=x&job=3&job=1&page=1%2C2%2C9&job=nope");
        assert_eq!(bulk_ids(&form), [1, 2, 3, 9]);
        assert!(bulk_ids(&Form::parse(b"csrf=x")).is_empty());
    }

    #[test]
    fn back_keeps_the_page_and_adds_the_result() {
        let form = Form::parse(b"back=%2Fui%2Fdead-letters%3Frule%3Dr");
        assert_eq!(
            back_with(&form, 2, 1),
            "/ui/dead-letters?rule=r&done=replayed:2:1"
        );
        let form = Form::parse(b"back=https%3A%2F%2Fevil.example%2F");
        assert_eq!(back_with(&form, 1, 0), "/ui/dead-letters?done=replayed:1:0");
    }
}
