//! The Jira healer: puts the webhooks Jira Cloud gave up delivering to the endpoint into its
//! inbox.
//!
//! Jira Cloud retries a dynamic webhook a few times, then lists it among the app's failed
//! webhooks (`GET /rest/api/3/webhook/failed`, oldest first, kept about 72 hours, readable
//! by apps only) with its original payload and its id. Each run reads the failures after its
//! cursor (the last failure time read), keeps those sent to the endpoint's URL, and stores
//! each as a delivery of the endpoint, identified exactly as a real delivery would be: the
//! failed webhook's id is the `X-Atlassian-Webhook-Identifier` Jira sent it with, which is
//! the endpoint's delivery id, so a failure that did reach hookbridge (stored, but answered
//! too late for Jira) and a later delivery of the same webhook are duplicates, not second
//! events. The deliveries and the cursor are committed in one transaction.
//!
//! Jira sends no redelivery: the payload comes from the authenticated API, so it is not
//! signed, and it is marked with `X-Hookbridge-Healed: jira-failed-webhook`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt as _;
use hookbridge_core::{DeliveryId, EndpointName, Provider, RawDelivery};
use hookbridge_providers::jira::client::{Deployment, FailedWebhook, JiraClient};
use http::{HeaderMap, HeaderValue};
use time::OffsetDateTime;

use super::{
    HealError, HealItem, HealOutcome, HealReport, HealSettings, Healer, RunOptions, same_url, when,
};
use crate::store::{InsertOutcome, NewDelivery, Store};

/// The header marking a delivery the Jira healer stored.
pub const HEALED_HEADER: &str = "x-hookbridge-healed";

/// Heals one Jira Cloud endpoint from the app's failed webhooks.
pub struct JiraHealer {
    name: String,
    endpoint: EndpointName,
    client: JiraClient,
    url: String,
    interval: Duration,
    max_per_run: u32,
    parser: Arc<dyn Provider>,
}

impl JiraHealer {
    /// A healer of `settings.endpoint` reading the failed webhooks with `client` (Cloud).
    pub fn new(settings: &HealSettings, client: JiraClient) -> Result<Self, String> {
        if client.deployment() != Deployment::Cloud {
            return Err(
                "Jira Data Center has no failed-webhook API: healing is for Jira Cloud".into(),
            );
        }
        let url = settings.url.clone().ok_or(
            "set server.public_url: failed webhooks are told apart by the URL they were sent to",
        )?;
        let parser = hookbridge_providers::parser("jira").map_err(|e| e.to_string())?;
        Ok(Self {
            name: format!("heal:jira:{}", settings.endpoint),
            endpoint: settings.endpoint.clone(),
            client,
            url,
            interval: settings.interval,
            max_per_run: settings.max_per_run,
            parser,
        })
    }

    fn store_error(&self, source: crate::store::StoreError) -> HealError {
        HealError::Store {
            healer: self.name.clone(),
            source,
        }
    }

    /// The failed webhook as the delivery Jira meant to send.
    fn delivery(&self, failed: &FailedWebhook, body: &str) -> Result<NewDelivery, String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let id = HeaderValue::from_str(&failed.id).map_err(|_| "its id is not a header value")?;
        headers.insert("x-atlassian-webhook-identifier", id);
        headers.insert(
            HEALED_HEADER,
            HeaderValue::from_static("jira-failed-webhook"),
        );
        let raw = RawDelivery::new(self.endpoint.clone(), headers, body.as_bytes().to_vec());
        let identity = self
            .parser
            .identify(&raw)
            .map_err(|e| format!("not a Jira webhook payload: {e}"))?;
        Ok(NewDelivery::from_raw(
            &raw,
            "jira",
            identity.delivery_id,
            identity.event_type,
        ))
    }
}

fn failed_at(failed: &FailedWebhook) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(failed.failure_time) * 1_000_000)
        .map(when)
        .unwrap_or_else(|_| failed.failure_time.to_string())
}

#[async_trait]
impl Healer for JiraHealer {
    fn name(&self) -> &str {
        &self.name
    }

    fn endpoint(&self) -> &EndpointName {
        &self.endpoint
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    async fn run(&self, store: &dyn Store, options: &RunOptions) -> Result<HealReport, HealError> {
        let mut report = HealReport::new(
            &self.name,
            &self.endpoint,
            "Jira Cloud failed webhooks".to_owned(),
            options.dry_run,
        );
        let cursor: Option<i64> = store
            .cursor(&self.name)
            .await
            .map_err(|e| self.store_error(e))?
            .and_then(|c| c.parse().ok());
        let after = match options.since {
            Some(since) => {
                Some(i64::try_from(since.unix_timestamp_nanos() / 1_000_000).unwrap_or(0))
            }
            None => cursor,
        };
        let max = options.max.unwrap_or(self.max_per_run);
        let mut position = after;
        let mut batch: Vec<NewDelivery> = Vec::new();
        let mut batch_ids = BTreeSet::new();
        let mut deferred_from = None;
        let mut failures = std::pin::pin!(self.client.failed_webhooks(after));
        while let Some(failed) = failures.try_next().await.map_err(|source| HealError::Api {
            healer: self.name.clone(),
            source,
        })? {
            report.scanned += 1;
            if !same_url(&failed.url, &self.url) {
                // Another endpoint's, or another app URL's.
                position = position.max(Some(failed.failure_time));
                continue;
            }
            let mut item = HealItem {
                id: failed.id.clone(),
                summary: format!("failed at {}", failed_at(&failed)),
                outcome: HealOutcome::Deferred,
                new_gap: true,
                new_failure: false,
            };
            if batch.len() >= max as usize {
                // Failures of one time may continue on the next page: resume just before it.
                deferred_from = Some(failed.failure_time);
                item.new_gap = false;
                report.items.push(item);
                report
                    .notes
                    .push("more failed webhooks wait for the next run (per-run maximum)".into());
                break;
            }
            position = position.max(Some(failed.failure_time));
            let delivery = match failed.body.as_deref() {
                None => Err("Jira kept no payload for it".to_owned()),
                Some(body) => self.delivery(&failed, body),
            };
            let delivery = match delivery {
                Ok(delivery) => delivery,
                Err(why) => {
                    item.new_failure = true;
                    item.outcome = HealOutcome::GaveUp(why);
                    report.items.push(item);
                    continue;
                }
            };
            item.summary = format!("{} {}", delivery.event_type, item.summary);
            let stored = store
                .find_deliveries(&delivery.delivery_id, Some(&self.endpoint))
                .await
                .map_err(|e| self.store_error(e))?;
            if !stored.is_empty() || !batch_ids.insert(delivery.delivery_id.clone()) {
                // It reached the inbox after all (Jira counted a slow answer as a failure).
                continue;
            }
            item.outcome = if options.dry_run {
                HealOutcome::WouldIngest
            } else {
                HealOutcome::Ingested
            };
            report.items.push(item);
            batch.push(delivery);
        }
        if options.dry_run {
            return Ok(report);
        }
        let position = match deferred_from {
            Some(t) => Some(t - 1),
            None => position,
        };
        let Some(position) = position else {
            return Ok(report);
        };
        let ids: Vec<DeliveryId> = batch.iter().map(|d| d.delivery_id.clone()).collect();
        let outcomes = store
            .commit_poll(&self.name, &position.to_string(), batch)
            .await
            .map_err(|e| self.store_error(e))?;
        // A real delivery may have landed between the check and the commit.
        for (id, outcome) in ids.iter().zip(outcomes) {
            if outcome == InsertOutcome::Duplicate {
                report.items.retain(|item| {
                    !(item.outcome == HealOutcome::Ingested && item.id == id.as_str())
                });
            }
        }
        Ok(report)
    }
}
