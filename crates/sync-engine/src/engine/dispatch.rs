//! Dispatch: a delivery is parsed and becomes one job per matching rule.
//!
//! The server plans a delivery while receiving it ([`Engine::plan`](super::Engine::plan)) and
//! stores it with its jobs in one transaction. The dispatcher task handles the rest: deliveries
//! stored without a plan (pollers, replays, a server without an engine, a crash between the
//! two), still `received`, a batch per transaction.

use std::pin::pin;
use std::sync::Arc;

use hookbridge_core::{Event, RawDelivery, RuleOutcome};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::{Inner, idle};
use crate::store::{DeliveryStatus, Dispatch, NewJob, StoreError, StoredDelivery};

const BATCH: u32 = 128;

pub(crate) async fn run(engine: Arc<Inner>, mut stopped: watch::Receiver<bool>) {
    let notify = engine.store.notifier();
    loop {
        let mut notified = pin!(notify.notified());
        notified.as_mut().enable();
        let found = match engine.store.undispatched(BATCH).await {
            Ok(batch) => {
                let n = batch.len();
                if let Err(error) = dispatch_batch(&engine, &batch).await {
                    tracing::error!(deliveries = n, %error, "dispatch failed; will retry");
                }
                n
            }
            Err(error) => {
                tracing::error!(%error, "cannot read undispatched deliveries");
                0
            }
        };
        if *stopped.borrow() {
            return;
        }
        if found == 0 && idle(notified, engine.config.poll_interval, &mut stopped).await {
            return;
        }
    }
}

/// Parses a stored delivery with its endpoint's provider (or, for an endpoint no longer
/// configured, a parser of its provider kind).
pub(crate) fn parse(engine: &Inner, delivery: &StoredDelivery) -> Result<Event, String> {
    parse_raw(engine, &delivery.to_raw(), &delivery.provider)
}

/// [`parse`] for a delivery as received, before it is stored.
fn parse_raw(engine: &Inner, raw: &RawDelivery, provider_kind: &str) -> Result<Event, String> {
    let provider = match engine.providers.get(&raw.endpoint) {
        Some(provider) => provider.clone(),
        None => hookbridge_providers::parser(provider_kind).map_err(|e| e.to_string())?,
    };
    let event = provider.parse(raw).map_err(|e| e.to_string())?;
    Ok(event.with_raw_json(json_document(&raw.body)))
}

/// What becomes of a delivery: one job per matching rule, or why there is none.
pub(crate) fn plan(engine: &Inner, raw: &RawDelivery, provider_kind: &str) -> Dispatch {
    match parse_raw(engine, raw, provider_kind) {
        Err(reason) => {
            tracing::warn!(endpoint = %raw.endpoint, %reason, "delivery cannot be parsed");
            Dispatch {
                status: DeliveryStatus::Unparseable,
                jobs: Vec::new(),
            }
        }
        Ok(event) => {
            let jobs: Vec<NewJob> = engine
                .rules
                .iter()
                .filter(|rule| rule.matches(&event))
                .map(|rule| NewJob {
                    rule: rule.name().to_owned(),
                    subject: event.subject().map(|s| s.to_string()),
                    max_attempts: engine.config.max_attempts,
                })
                .collect();
            let status = if jobs.is_empty() {
                DeliveryStatus::NoRules
            } else {
                DeliveryStatus::Dispatched
            };
            tracing::debug!(endpoint = %raw.endpoint, event = %event.name(), jobs = jobs.len(), "dispatch planned");
            Dispatch { status, jobs }
        }
    }
}

/// The JSON document of a body: the body itself, or the `payload` field of a form body
/// (GitHub's form deliveries, Travis CI, Slack interactivity).
fn json_document(body: &bytes::Bytes) -> Option<bytes::Bytes> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | Some(b'[') => Some(body.clone()),
        _ => form_urlencoded::parse(body)
            .find(|(key, _)| key == "payload")
            .map(|(_, value)| bytes::Bytes::from(value.into_owned())),
    }
}

/// Plans a batch of stored deliveries and records their dispatch in one store call (one
/// transaction where the backend can), oldest first, so their jobs keep the inbox's order.
async fn dispatch_batch(engine: &Inner, batch: &[StoredDelivery]) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let now = OffsetDateTime::now_utc();
    let planned: Vec<(i64, Dispatch)> = batch
        .iter()
        .map(|delivery| {
            (
                delivery.seq,
                plan(engine, &delivery.to_raw(), &delivery.provider),
            )
        })
        .collect();
    engine.store.dispatch_many(&planned, now).await?;
    Ok(())
}

/// What each rule would do with one delivery.
#[derive(Clone, Debug, Serialize)]
pub struct DryRun {
    /// The delivery.
    pub seq: i64,
    /// Its event name.
    pub event: String,
    /// One entry per rule.
    pub rules: Vec<RuleDryRun>,
}

/// One rule's dry run.
#[derive(Clone, Debug, Serialize)]
pub struct RuleDryRun {
    /// The rule.
    pub rule: String,
    /// Whether it matches the event.
    pub matched: bool,
    /// `applied`, `skipped: <reason>`, `failed`, or `not matched`.
    pub outcome: String,
    /// The actions it would take.
    pub actions: Vec<String>,
    /// The calls it would make, structured (service, method, target, summary).
    pub calls: Vec<crate::store::CallRecord>,
    /// Its error, if it failed.
    pub error: Option<String>,
}

/// Why a dry run could not run.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    /// No such delivery.
    #[error("no delivery with sequence number {0}")]
    NotFound(i64),
    /// The delivery cannot be parsed.
    #[error("delivery {seq} cannot be parsed: {reason}")]
    Unparseable {
        /// The delivery.
        seq: i64,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) async fn dry_run(engine: &Inner, seq: i64) -> Result<DryRun, DryRunError> {
    let delivery = engine
        .store
        .delivery(seq)
        .await?
        .ok_or(DryRunError::NotFound(seq))?;
    let event =
        parse(engine, &delivery).map_err(|reason| DryRunError::Unparseable { seq, reason })?;
    let mut rules = Vec::new();
    for rule in &engine.rules {
        if !rule.matches(&event) {
            rules.push(RuleDryRun {
                rule: rule.name().to_owned(),
                matched: false,
                outcome: "not matched".into(),
                actions: Vec::new(),
                calls: Vec::new(),
                error: None,
            });
            continue;
        }
        let ctx = engine.context(rule.name(), None, true);
        let (outcome, error) = if engine.is_self_actor(&event) {
            (
                "skipped: caused by hookbridge's own account".to_owned(),
                None,
            )
        } else {
            match rule.apply(&ctx, &event).await {
                Ok(RuleOutcome::Applied { actions }) => {
                    for action in actions {
                        ctx.record(action);
                    }
                    ("applied".to_owned(), None)
                }
                Ok(RuleOutcome::Skipped { reason }) => (format!("skipped: {reason}"), None),
                Err(error) => ("failed".to_owned(), Some(error.to_string())),
            }
        };
        rules.push(RuleDryRun {
            rule: rule.name().to_owned(),
            matched: true,
            outcome,
            actions: ctx.take_actions(),
            calls: ctx.take_calls(),
            error,
        });
    }
    Ok(DryRun {
        seq,
        event: event.name().to_string(),
        rules,
    })
}
