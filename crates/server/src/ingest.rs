//! `POST /hooks/{endpoint}`: receive, handshake, verify, identify, plan the dispatch, persist,
//! and only then acknowledge.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hookbridge_core::{IdentifyError, RawDelivery};
use hookbridge_sync_engine::store::{InsertOutcome, NewDelivery};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde_json::json;
use time::OffsetDateTime;

use crate::AppState;
use crate::config::Endpoint;
use crate::metrics::{DELIVERIES_TOTAL, INGEST_SECONDS};

/// How a request ended, for the answer, the log and the metrics.
#[derive(Debug)]
enum Outcome {
    Accepted { delivery_id: String, seq: i64 },
    Duplicate { delivery_id: String },
    Handshake(Response),
    UnknownEndpoint,
    MethodNotAllowed,
    TooLarge { limit: u64 },
    SecretConflict,
    BodyTimeout,
    BodyError(String),
    InvalidSignature(String),
    UnsupportedMediaType(String),
    Malformed(String),
    StoreUnavailable,
    NotReady(String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Accepted { .. } => "accepted",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::Handshake(_) => "handshake",
            Outcome::UnknownEndpoint => "unknown_endpoint",
            Outcome::MethodNotAllowed => "method_not_allowed",
            Outcome::TooLarge { .. } => "too_large",
            Outcome::SecretConflict => "secret_conflict",
            Outcome::BodyTimeout => "body_timeout",
            Outcome::BodyError(_) => "body_error",
            Outcome::InvalidSignature(_) => "invalid_signature",
            Outcome::UnsupportedMediaType(_) => "unsupported_media_type",
            Outcome::Malformed(_) => "malformed",
            Outcome::StoreUnavailable => "store_unavailable",
            Outcome::NotReady(_) => "not_ready",
        }
    }

    fn into_response(self) -> Response {
        let label = self.label();
        let (status, body) = match self {
            Outcome::Handshake(response) => return response,
            Outcome::Accepted { delivery_id, seq } => (
                StatusCode::ACCEPTED,
                json!({"status": label, "delivery_id": delivery_id, "seq": seq}),
            ),
            Outcome::Duplicate { delivery_id } => (
                StatusCode::OK,
                json!({"status": label, "delivery_id": delivery_id}),
            ),
            Outcome::UnknownEndpoint => (StatusCode::NOT_FOUND, error(label, "no such endpoint")),
            Outcome::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                error(label, "deliveries are sent with POST"),
            ),
            Outcome::TooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                error(label, &format!("body is larger than {limit} bytes")),
            ),
            Outcome::SecretConflict => (
                StatusCode::CONFLICT,
                error(
                    label,
                    "this endpoint already has a secret; a handshake never replaces it",
                ),
            ),
            Outcome::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                error(label, "the body was not received in time"),
            ),
            Outcome::BodyError(m) => (StatusCode::BAD_REQUEST, error(label, &m)),
            Outcome::InvalidSignature(m) => (StatusCode::UNAUTHORIZED, error(label, &m)),
            Outcome::UnsupportedMediaType(m) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, error(label, &m))
            }
            Outcome::Malformed(m) => (StatusCode::BAD_REQUEST, error(label, &m)),
            Outcome::StoreUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                error(label, "the delivery could not be stored; retry later"),
            ),
            Outcome::NotReady(m) => (StatusCode::SERVICE_UNAVAILABLE, error(label, &m)),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        }
        response
    }
}

fn error(code: &str, message: &str) -> serde_json::Value {
    json!({"error": code, "message": message})
}

/// The webhook handler. Any method is routed here so that providers' handshakes (Trello's
/// `HEAD`) can be answered; deliveries themselves must be `POST`.
pub(crate) async fn receive(
    State(state): State<AppState>,
    Path(endpoint): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Some(ep) = state.endpoint(&endpoint) else {
        tracing::debug!(endpoint = %truncate(&endpoint), "delivery for unknown endpoint");
        metrics::counter!(DELIVERIES_TOTAL, "endpoint" => "_unknown", "outcome" => "unknown_endpoint").increment(1);
        return Outcome::UnknownEndpoint.into_response();
    };
    let outcome = handle(&state, ep, method, uri, headers, body).await;
    let name = ep.name.as_str().to_owned();
    match &outcome {
        Outcome::Accepted { delivery_id, seq } => {
            tracing::info!(endpoint = %name, %delivery_id, seq, "delivery accepted");
        }
        Outcome::Duplicate { delivery_id } => {
            tracing::info!(endpoint = %name, %delivery_id, "duplicate delivery ignored");
        }
        Outcome::StoreUnavailable => {}
        Outcome::InvalidSignature(reason) => {
            tracing::warn!(endpoint = %name, %reason, "delivery rejected: signature");
        }
        other => {
            tracing::info!(endpoint = %name, outcome = other.label(), "delivery rejected");
        }
    }
    metrics::counter!(DELIVERIES_TOTAL, "endpoint" => name.clone(), "outcome" => outcome.label())
        .increment(1);
    metrics::histogram!(INGEST_SECONDS, "endpoint" => name).record(started.elapsed());
    outcome.into_response()
}

async fn handle(
    state: &AppState,
    ep: &Endpoint,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Outcome {
    let limit = ep.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Outcome::TooLarge { limit };
    }
    let body = match read_body(body, limit, state.body_timeout()).await {
        Ok(body) => body,
        Err(outcome) => return outcome,
    };
    let raw = RawDelivery {
        endpoint: ep.name.clone(),
        method,
        uri,
        headers,
        body,
        received_at: OffsetDateTime::now_utc(),
    };
    if let Some(handshake) = ep.provider.handshake(&raw) {
        if let Some(secret) = handshake.learned_secret.clone()
            && let Err(refused) = accept_learned_secret(state, ep, secret).await
        {
            // Not echoing the secret is what tells the service the registration failed.
            return refused;
        }
        let mut response = Response::new(Body::from(handshake.body));
        *response.status_mut() = handshake.status;
        *response.headers_mut() = handshake.headers;
        return Outcome::Handshake(response);
    }
    if raw.method != Method::POST {
        return Outcome::MethodNotAllowed;
    }
    match ep.provider.verify(&raw) {
        Ok(_) => {}
        // The endpoint cannot judge yet (a key still loading): ask the sender to retry
        // rather than refuse a delivery that may well be genuine.
        Err(e @ hookbridge_core::VerifyError::NotReady { .. }) => {
            return Outcome::NotReady(e.to_string());
        }
        Err(e) => return Outcome::InvalidSignature(e.to_string()),
    }
    let identity = match ep.provider.identify(&raw) {
        Ok(identity) => identity,
        Err(IdentifyError::UnsupportedContentType(ct)) => {
            return Outcome::UnsupportedMediaType(format!("unsupported content type {ct:?}"));
        }
        Err(e) => return Outcome::Malformed(e.to_string()),
    };
    let delivery_id = identity.delivery_id.as_str().to_owned();
    let record = NewDelivery::from_raw(
        &raw,
        ep.provider.kind().as_str(),
        identity.delivery_id,
        identity.event_type,
    );
    // With an engine, the delivery is stored with its jobs in one transaction; without
    // one, as `received`, for a dispatcher to pick up.
    let stored = match state.engine() {
        Some(engine) => {
            let dispatch = engine.plan(&raw, ep.provider.kind().as_str());
            state.store().insert_dispatched(record, dispatch).await
        }
        None => state.store().insert_delivery(record).await,
    };
    match stored {
        Ok(InsertOutcome::Inserted { seq }) => Outcome::Accepted { delivery_id, seq },
        Ok(InsertOutcome::Duplicate) => Outcome::Duplicate { delivery_id },
        Err(error) => {
            tracing::error!(endpoint = %ep.name, %delivery_id, %error, "delivery not stored");
            Outcome::StoreUnavailable
        }
    }
}

/// A secret handed over in a handshake (Asana's `X-Hook-Secret`) is accepted only by an
/// endpoint that has none, stored durably before the handshake is answered, and never
/// replaces one: otherwise anyone who can reach the endpoint could take it over.
async fn accept_learned_secret(
    state: &AppState,
    ep: &Endpoint,
    secret: hookbridge_core::Secret,
) -> Result<(), Outcome> {
    if ep.provider.has_secret() {
        tracing::warn!(endpoint = %ep.name, "handshake refused: the endpoint already has a secret");
        return Err(Outcome::SecretConflict);
    }
    match state.store().store_learned_secret(&ep.name, &secret).await {
        Ok(true) => {
            ep.provider.learn_secret(secret);
            tracing::info!(endpoint = %ep.name, "handshake secret stored");
            Ok(())
        }
        Ok(false) => {
            tracing::warn!(endpoint = %ep.name, "handshake refused: a secret is already stored");
            Err(Outcome::SecretConflict)
        }
        Err(error) => {
            tracing::error!(endpoint = %ep.name, %error, "handshake secret not stored");
            Err(Outcome::StoreUnavailable)
        }
    }
}

async fn read_body(body: Body, limit: u64, timeout: std::time::Duration) -> Result<Bytes, Outcome> {
    let limited = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(Outcome::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Outcome::TooLarge { limit })
        }
        Ok(Err(e)) => Err(Outcome::BodyError(format!(
            "the body could not be read: {e}"
        ))),
    }
}

/// Unknown endpoint names come from the client: log a bounded prefix only.
fn truncate(name: &str) -> &str {
    let end = name.char_indices().nth(64).map_or(name.len(), |(i, _)| i);
    &name[..end]
}
