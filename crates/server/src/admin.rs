//! The admin API under `/admin`, on only when `[admin] token` is configured: list and show
//! deliveries and jobs, replay deliveries and dead letters, dry-run the rules on a delivery,
//! list links. Bearer-token authentication, compared in constant time.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hookbridge_core::{EndpointName, Secret};
use hookbridge_sync_engine::store::{DeliveryFilter, JobFilter, JobId, JobState, StoredDelivery};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::AppState;

pub(crate) fn router(state: AppState, token: Secret) -> Router {
    Router::new()
        .route("/deliveries", get(list_deliveries))
        .route("/deliveries/{seq}", get(show_delivery))
        .route("/deliveries/{seq}/replay", post(replay_delivery))
        .route("/deliveries/{seq}/dry-run", post(dry_run))
        .route("/jobs", get(list_jobs))
        .route("/jobs/{id}", get(show_job))
        .route("/jobs/{id}/replay", post(replay_job))
        .route("/dead-letters", get(dead_letters))
        .route("/links", get(list_links))
        .route("/rules", get(list_rules))
        .route("/replay", post(bulk_replay))
        .route("/circuits", get(circuits))
        .route(
            "/integrations/{name}/routes",
            get(travis_routes::list)
                .post(travis_routes::add)
                .delete(travis_routes::remove),
        )
        .route(
            "/integrations/{name}/routes/defaults",
            get(travis_routes::defaults)
                .put(travis_routes::set_defaults)
                .delete(travis_routes::reset_defaults),
        )
        // Inside the authentication layer, so an unknown path answers 401 without the token
        // like the known ones: routes cannot be probed.
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such admin route".into()) })
        .layer(middleware::from_fn_with_state(token, authenticate))
        .with_state(state)
}

async fn authenticate(State(token): State<Secret>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| Secret::new(t.trim()));
    // `Secret`'s equality is constant time.
    if presented.as_ref() != Some(&token) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({"error": "unauthorized", "message": "a valid bearer token is required"})),
        )
            .into_response();
    }
    next.run(request).await
}

type ApiResult = Result<Response, ApiError>;

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<hookbridge_sync_engine::store::StoreError> for ApiError {
    fn from(error: hookbridge_sync_engine::store::StoreError) -> Self {
        tracing::error!(%error, "admin API store error");
        ApiError(StatusCode::SERVICE_UNAVAILABLE, "the store failed".into())
    }
}

fn not_found(what: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no such {what}"))
}

#[derive(Deserialize)]
struct DeliveryQuery {
    endpoint: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
    /// Only deliveries whose processing is unfinished (a job pending, retrying, running or
    /// dead, or not dispatched yet), oldest first.
    unfinished: Option<bool>,
    /// With `unfinished`: only deliveries received at least this many seconds ago.
    older_than: Option<u64>,
    /// With `unfinished`: only deliveries with an unfinished job of this rule.
    rule: Option<String>,
    /// With `unfinished`: only deliveries after this sequence number (paging).
    after: Option<i64>,
}

fn limit(asked: Option<u32>) -> u32 {
    asked.unwrap_or(50).clamp(1, 500)
}

async fn list_deliveries(
    State(state): State<AppState>,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult {
    if q.unfinished == Some(true) {
        return unfinished_deliveries(&state, q).await;
    }
    if q.older_than.is_some() || q.rule.is_some() || q.after.is_some() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "older_than, rule and after go with unfinished=true".into(),
        ));
    }
    let filter = DeliveryFilter {
        endpoint: q.endpoint.map(EndpointName::new),
        before_seq: q.before,
        limit: limit(q.limit),
    };
    let rows = state.store().list_deliveries(&filter).await?;
    let next = rows.last().map(|r| r.seq);
    Ok(Json(json!({"deliveries": rows, "next_before": next})).into_response())
}

/// A delivery's body for display: JSON when it is JSON, else text.
pub(crate) fn body_json(delivery: &StoredDelivery) -> serde_json::Value {
    serde_json::from_slice(&delivery.body).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&delivery.body).into_owned())
    })
}

async fn show_delivery(State(state): State<AppState>, Path(seq): Path<i64>) -> ApiResult {
    let delivery = state
        .store()
        .delivery(seq)
        .await?
        .ok_or_else(|| not_found("delivery"))?;
    let jobs = state
        .store()
        .list_jobs(&JobFilter {
            delivery_seq: Some(seq),
            limit: 500,
            ..Default::default()
        })
        .await?;
    // What hookbridge did because of it: each job with its attempts, actions and calls.
    let jobs = jobs_with_attempts(state.store().as_ref(), jobs).await?;
    let event = event_name(&delivery);
    Ok(Json(json!({
        "delivery": delivery,
        "event": event,
        "body": body_json(&delivery),
        "jobs": jobs,
    }))
    .into_response())
}

/// A stored delivery's typed event name (e.g. `issues.opened`), when its provider parses it.
pub(crate) fn event_name(delivery: &StoredDelivery) -> Option<String> {
    hookbridge_providers::parser(&delivery.provider)
        .ok()
        .and_then(|p| p.parse(&delivery.to_raw()).ok())
        .map(|e| e.name().to_string())
}

async fn replay_delivery(State(state): State<AppState>, Path(seq): Path<i64>) -> ApiResult {
    if !state.store().replay_delivery(seq).await? {
        return Err(not_found("delivery"));
    }
    tracing::info!(seq, "delivery replayed through the current rules");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"status": "replaying", "seq": seq})),
    )
        .into_response())
}

async fn dry_run(State(state): State<AppState>, Path(seq): Path<i64>) -> ApiResult {
    let engine = state.engine().ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine is not running".into(),
        )
    })?;
    match engine.dry_run(seq).await {
        Ok(report) => Ok(Json(report).into_response()),
        Err(hookbridge_sync_engine::engine::DryRunError::NotFound(_)) => Err(not_found("delivery")),
        Err(e) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())),
    }
}

#[derive(Deserialize)]
struct JobQuery {
    state: Option<String>,
    rule: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
}

async fn jobs(state: &AppState, q: JobQuery, forced: Option<JobState>) -> ApiResult {
    let job_state =
        match (forced, q.state.as_deref()) {
            (Some(s), _) => Some(s),
            (None, Some(text)) => Some(JobState::parse(text).ok_or_else(|| {
                ApiError(StatusCode::BAD_REQUEST, format!("unknown state {text:?}"))
            })?),
            (None, None) => None,
        };
    let filter = JobFilter {
        state: job_state,
        rule: q.rule,
        delivery_seq: None,
        before_id: q.before,
        limit: limit(q.limit),
    };
    let rows = state.store().list_jobs(&filter).await?;
    let next = rows.last().map(|j| j.id);
    Ok(Json(json!({"jobs": rows, "next_before": next})).into_response())
}

async fn list_jobs(State(state): State<AppState>, Query(q): Query<JobQuery>) -> ApiResult {
    jobs(&state, q, None).await
}

async fn dead_letters(State(state): State<AppState>, Query(q): Query<JobQuery>) -> ApiResult {
    jobs(&state, q, Some(JobState::Dead)).await
}

async fn show_job(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult {
    let (job, attempts) = state
        .store()
        .job(JobId(id))
        .await?
        .ok_or_else(|| not_found("job"))?;
    Ok(Json(json!({"job": job, "attempts": attempts})).into_response())
}

/// What asking to replay a job did.
pub(crate) enum JobReplay {
    /// The job is pending again.
    Replayed,
    /// There is no such job.
    NotFound,
    /// The job is in this state; only dead or skipped jobs replay.
    NotReplayable(JobState),
}

/// Replays a dead (or skipped) job now: the admin API's and the dashboard's replay.
pub(crate) async fn replay_job_now(
    store: &dyn hookbridge_sync_engine::store::Store,
    id: JobId,
) -> Result<JobReplay, hookbridge_sync_engine::store::StoreError> {
    if store.replay_job(id, OffsetDateTime::now_utc()).await? {
        tracing::info!(job = id.0, "job replayed");
        return Ok(JobReplay::Replayed);
    }
    Ok(match store.job(id).await? {
        None => JobReplay::NotFound,
        Some((job, _)) => JobReplay::NotReplayable(job.state),
    })
}

async fn replay_job(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult {
    match replay_job_now(state.store().as_ref(), JobId(id)).await? {
        JobReplay::Replayed => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"status": "replaying", "job": id})),
        )
            .into_response()),
        JobReplay::NotFound => Err(not_found("job")),
        JobReplay::NotReplayable(job_state) => Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "job {id} is {}, only dead or skipped jobs replay",
                job_state.as_str()
            ),
        )),
    }
}

#[derive(Deserialize)]
struct LinkQuery {
    rule: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
}

async fn list_links(State(state): State<AppState>, Query(q): Query<LinkQuery>) -> ApiResult {
    let links = state
        .store()
        .list_links(q.rule.as_deref(), q.after.as_deref(), limit(q.limit))
        .await?;
    let next = links.last().map(|l| l.a.clone());
    Ok(Json(json!({"links": links, "next_after": next})).into_response())
}

async fn list_rules(State(state): State<AppState>) -> ApiResult {
    let rules = state.engine().map(|e| e.rule_names()).unwrap_or_default();
    Ok(Json(json!({"rules": rules})).into_response())
}

/// `/admin/integrations/{name}/routes`: the routes and defaults of a travis-chat
/// integration, as `hookbridge routes` manages them. Secrets given here (a route's Slack URL
/// or webhook secret) are stored, and never part of an answer.
mod travis_routes {
    use std::sync::Arc;

    use axum::Json;
    use axum::extract::rejection::JsonRejection;
    use axum::extract::{Path, Query, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use hookbridge_sync_engine::integrations::travis_chat::{NewRoute, TravisChat};
    use hookbridge_sync_engine::integrations::{Handle, IntegrationError};
    use serde::Deserialize;
    use serde_json::json;

    use super::{ApiError, ApiResult};
    use crate::AppState;

    fn chat(state: &AppState, name: &str) -> Result<Arc<TravisChat>, ApiError> {
        let services = state.services().ok_or_else(|| {
            ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "integrations are not running".into(),
            )
        })?;
        match services.integration(name).map(|i| &i.handle) {
            Some(Handle::TravisChat(chat)) => Ok(chat.clone()),
            Some(_) => Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("integration {name:?} has no routes (it is not travis-chat)"),
            )),
            None => Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no integration named {name:?}"),
            )),
        }
    }

    fn failed(error: IntegrationError) -> ApiError {
        match error {
            IntegrationError::Store { .. } => {
                tracing::error!(%error, "routes: store failure");
                ApiError(StatusCode::SERVICE_UNAVAILABLE, "the store failed".into())
            }
            other => ApiError(StatusCode::BAD_REQUEST, other.to_string()),
        }
    }

    fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
        body.map(|Json(value)| value)
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, without_strings(&e.body_text())))
    }

    /// The rejection's text names what is wrong (a field, a type), but serde quotes a string
    /// given where something else was expected (`invalid type: string "..."`): that string
    /// may be a secret put in the wrong field, so it is not echoed.
    fn without_strings(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find("string \"") {
            out.push_str(&rest[..at]);
            out.push_str("a string");
            let after = &rest[at + "string \"".len()..];
            rest = after.find('"').map_or("", |end| &after[end + 1..]);
        }
        out.push_str(rest);
        out
    }

    #[derive(Deserialize)]
    pub(super) struct RepoQuery {
        repo: Option<String>,
        target: Option<String>,
    }

    pub(super) async fn list(
        State(state): State<AppState>,
        Path(name): Path<String>,
        Query(q): Query<RepoQuery>,
    ) -> ApiResult {
        let chat = chat(&state, &name)?;
        let store = state.store().as_ref();
        let routes = chat
            .routes(store, q.repo.as_deref())
            .await
            .map_err(failed)?;
        let defaults = chat.defaults(store).await.map_err(failed)?;
        Ok(Json(json!({"routes": routes, "defaults": defaults})).into_response())
    }

    pub(super) async fn add(
        State(state): State<AppState>,
        Path(name): Path<String>,
        new: Result<Json<NewRoute>, JsonRejection>,
    ) -> ApiResult {
        let chat = chat(&state, &name)?;
        let added = chat
            .add_route(state.store().as_ref(), body(new)?)
            .await
            .map_err(failed)?;
        Ok((StatusCode::CREATED, Json(json!({"added": added}))).into_response())
    }

    pub(super) async fn remove(
        State(state): State<AppState>,
        Path(name): Path<String>,
        Query(q): Query<RepoQuery>,
    ) -> ApiResult {
        let chat = chat(&state, &name)?;
        let repo = q
            .repo
            .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "give the route's ?repo=".into()))?;
        let removed = chat
            .remove_routes(state.store().as_ref(), &repo, q.target.as_deref())
            .await
            .map_err(failed)?;
        if removed.is_empty() {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no route of {repo:?} to remove"),
            ));
        }
        Ok(Json(json!({"removed": removed})).into_response())
    }

    pub(super) async fn defaults(
        State(state): State<AppState>,
        Path(name): Path<String>,
    ) -> ApiResult {
        let chat = chat(&state, &name)?;
        let defaults = chat
            .defaults(state.store().as_ref())
            .await
            .map_err(failed)?;
        Ok(Json(defaults).into_response())
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct DefaultsInput {
        events: Option<Vec<String>>,
        targets: Option<Vec<String>>,
    }

    pub(super) async fn set_defaults(
        State(state): State<AppState>,
        Path(name): Path<String>,
        input: Result<Json<DefaultsInput>, JsonRejection>,
    ) -> ApiResult {
        let chat = chat(&state, &name)?;
        let input = body(input)?;
        let defaults = chat
            .set_defaults(state.store().as_ref(), input.events, input.targets)
            .await
            .map_err(failed)?;
        Ok(Json(defaults).into_response())
    }

    pub(super) async fn reset_defaults(
        State(state): State<AppState>,
        Path(name): Path<String>,
    ) -> ApiResult {
        let chat = chat(&state, &name)?;
        let defaults = chat
            .reset_defaults(state.store().as_ref())
            .await
            .map_err(failed)?;
        Ok(Json(defaults).into_response())
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn rejections_do_not_echo_strings() {
            let text = r#"Failed to deserialize the JSON body into the target type: targets: invalid type: string "whsec_c2VjcmV0", expected a sequence at line 1 column 40"#;
            let shown = super::without_strings(text);
            assert!(!shown.contains("whsec_"), "{shown}");
            assert!(
                shown.contains("targets: invalid type: a string, expected a sequence"),
                "{shown}"
            );
            assert_eq!(
                super::without_strings("unknown field `token`"),
                "unknown field `token`"
            );
        }
    }
}

// ---- operations: unfinished deliveries, bulk replay, circuits ----

/// Jobs as JSON, each with its attempts (outcome, error, action lines and calls).
pub(crate) async fn jobs_with_attempts(
    store: &dyn hookbridge_sync_engine::store::Store,
    jobs: Vec<hookbridge_sync_engine::store::Job>,
) -> Result<Vec<serde_json::Value>, hookbridge_sync_engine::store::StoreError> {
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let attempts = store.job(job.id).await?.map(|(_, a)| a).unwrap_or_default();
        let mut value = json!(job);
        value["attempts"] = json!(attempts);
        out.push(value);
    }
    Ok(out)
}

async fn unfinished_deliveries(state: &AppState, q: DeliveryQuery) -> ApiResult {
    let now = OffsetDateTime::now_utc();
    let older_than = q
        .older_than
        .map(|secs| {
            i64::try_from(secs)
                .ok()
                .and_then(|secs| now.checked_sub(time::Duration::seconds(secs)))
                .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "older_than is too large".into()))
        })
        .transpose()?;
    let filter = hookbridge_sync_engine::store::UnfinishedFilter {
        received_before: older_than,
        endpoint: q.endpoint.map(EndpointName::new),
        rule: q.rule,
        after_seq: q.after,
        limit: limit(q.limit),
    };
    let rows = state.store().unfinished_deliveries(&filter).await?;
    let next = rows.last().map(|r| r.delivery.seq);
    let rows: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|row| {
            let mut value = json!(row.delivery);
            value["age_seconds"] = json!((now - row.delivery.received_at).whole_seconds().max(0));
            value["jobs"] = row
                .jobs
                .iter()
                .map(|job| {
                    let mut j = json!(job);
                    j["progress"] = json!(job.progress());
                    j
                })
                .collect();
            value
        })
        .collect();
    Ok(Json(json!({"deliveries": rows, "next_after": next})).into_response())
}

/// `POST /admin/replay`: the filter of `hookbridge deliveries replay` as JSON (times in
/// RFC 3339), and `dry_run`. Unknown fields are refused: a misspelt filter must not widen a
/// replay.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    #[serde(default, with = "time::serde::rfc3339::option")]
    since: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    until: Option<OffsetDateTime>,
    endpoint: Option<String>,
    rule: Option<String>,
    status: Option<hookbridge_sync_engine::engine::ReplayStatus>,
    #[serde(default)]
    limit: u32,
    #[serde(default)]
    dry_run: bool,
}

async fn bulk_replay(
    State(state): State<AppState>,
    body: Result<Json<ReplayRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    use hookbridge_sync_engine::engine::{ReplayError, replay, select_deliveries};
    let Json(request) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let mut filter = hookbridge_sync_engine::engine::ReplayFilter {
        since: request.since,
        until: request.until,
        endpoint: request.endpoint,
        rule: request.rule,
        status: request.status,
        limit: request.limit.min(10_000),
    };
    if !request.dry_run {
        return match replay(state.store().as_ref(), &filter, OffsetDateTime::now_utc()).await {
            Ok(report) => Ok((
                StatusCode::ACCEPTED,
                Json(json!({
                    "status": "replaying",
                    "jobs": report.jobs,
                    "deliveries": report.deliveries,
                    "skipped": report.skipped,
                    "truncated": report.truncated,
                })),
            )
                .into_response()),
            Err(ReplayError::NoStatus) => Err(ApiError(
                StatusCode::BAD_REQUEST,
                ReplayError::NoStatus.to_string(),
            )),
            Err(ReplayError::Store(error)) => Err(error.into()),
        };
    }
    let engine = state.engine().ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine is not running".into(),
        )
    })?;
    if filter.limit == 0 {
        filter.limit = 100;
    }
    let (seqs, truncated) = select_deliveries(state.store().as_ref(), &filter).await?;
    let mut diffs = Vec::with_capacity(seqs.len());
    for seq in seqs {
        match engine.replay_diff(seq, filter.rule.as_deref()).await {
            Ok(diff) => diffs.push(diff),
            Err(hookbridge_sync_engine::engine::DryRunError::Store(error)) => {
                return Err(error.into());
            }
            Err(other) => tracing::warn!(seq, error = %other, "replay dry run skipped a delivery"),
        }
    }
    let changed = diffs.iter().filter(|d| d.changed()).count();
    Ok(Json(json!({
        "dry_run": true,
        "deliveries": diffs,
        "changed": changed,
        "truncated": truncated,
    }))
    .into_response())
}

async fn circuits(State(state): State<AppState>) -> ApiResult {
    let engine = state.engine().ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine is not running".into(),
        )
    })?;
    let config = engine.circuit_config();
    Ok(Json(json!({
        "enabled": config.is_some(),
        "failures": config.map(|c| c.failures),
        "cooldown_secs": config.map(|c| c.cooldown.as_secs()),
        "instance": engine.worker_id(),
        "circuits": engine.circuits(),
    }))
    .into_response())
}
