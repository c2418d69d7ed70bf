//! The dispatcher: takes deliveries still `received`, parses them, and records one job per
//! matching rule, in one transaction per delivery.

use std::pin::pin;
use std::sync::Arc;

use hookbridge_core::{Event, RuleOutcome};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::{Inner, idle};
use crate::store::{DeliveryStatus, NewJob, StoreError, StoredDelivery};

const BATCH: u32 = 128;

pub(crate) async fn run(engine: Arc<Inner>, mut stopped: watch::Receiver<bool>) {
    let notify = engine.store.notifier();
    loop {
        let mut notified = pin!(notify.notified());
        notified.as_mut().enable();
        let found = match engine.store.undispatched(BATCH).await {
            Ok(batch) => {
                let n = batch.len();
                for delivery in batch {
                    if let Err(error) = dispatch_one(&engine, &delivery).await {
                        tracing::error!(seq = delivery.seq, %error, "dispatch failed; will retry");
                    }
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
    let raw = delivery.to_raw();
    let provider = match engine.providers.get(&delivery.endpoint) {
        Some(provider) => provider.clone(),
        None => hookbridge_providers::parser(&delivery.provider).map_err(|e| e.to_string())?,
    };
    let event = provider.parse(&raw).map_err(|e| e.to_string())?;
    Ok(event.with_raw_json(json_document(&delivery.body)))
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

async fn dispatch_one(engine: &Inner, delivery: &StoredDelivery) -> Result<(), StoreError> {
    let now = OffsetDateTime::now_utc();
    let (status, jobs) = match parse(engine, delivery) {
        Err(reason) => {
            tracing::warn!(seq = delivery.seq, endpoint = %delivery.endpoint, %reason, "delivery cannot be parsed");
            (DeliveryStatus::Unparseable, Vec::new())
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
            tracing::debug!(seq = delivery.seq, event = %event.name(), jobs = jobs.len(), "dispatched");
            (status, jobs)
        }
    };
    engine
        .store
        .dispatch(delivery.seq, status, &jobs, now)
        .await?;
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
