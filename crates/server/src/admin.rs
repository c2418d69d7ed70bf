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
}

fn limit(asked: Option<u32>) -> u32 {
    asked.unwrap_or(50).clamp(1, 500)
}

async fn list_deliveries(
    State(state): State<AppState>,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult {
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
fn body_json(delivery: &StoredDelivery) -> serde_json::Value {
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
    let event = hookbridge_providers::parser(&delivery.provider)
        .ok()
        .and_then(|p| p.parse(&delivery.to_raw()).ok())
        .map(|e| e.name().to_string());
    Ok(Json(json!({
        "delivery": delivery,
        "event": event,
        "body": body_json(&delivery),
        "jobs": jobs,
    }))
    .into_response())
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

async fn replay_job(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult {
    if state
        .store()
        .replay_job(JobId(id), OffsetDateTime::now_utc())
        .await?
    {
        tracing::info!(job = id, "job replayed");
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"status": "replaying", "job": id})),
        )
            .into_response());
    }
    match state.store().job(JobId(id)).await? {
        None => Err(not_found("job")),
        Some((job, _)) => Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "job {id} is {}, only dead or skipped jobs replay",
                job.state.as_str()
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
