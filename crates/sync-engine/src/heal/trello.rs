//! The Trello monitor: Trello counts the deliveries to each webhook that failed in a row
//! (`consecutiveFailures`, reset by a success) and offers no redelivery, so the gap cannot
//! be healed from here; the monitor makes it visible. Each run lists the token's webhooks,
//! sets `hookbridge_hook_consecutive_failures{endpoint, hook}` for those calling the
//! endpoint's URL, and reports the failing ones (as `hookbridge hooks list` does).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use hookbridge_core::EndpointName;
use hookbridge_providers::trello::client::TrelloClient;

use super::{
    HealError, HealItem, HealOutcome, HealReport, HealSettings, Healer, RunOptions, metric_names,
    same_url, when,
};
use crate::store::Store;

/// Watches the Trello webhooks of one endpoint.
pub struct TrelloMonitor {
    name: String,
    endpoint: EndpointName,
    client: TrelloClient,
    url: String,
    interval: Duration,
    /// Hooks with a gauge, so that one deleted at Trello is set back to 0.
    gauged: Mutex<BTreeSet<String>>,
}

impl TrelloMonitor {
    /// A monitor of `settings.endpoint`'s Trello webhooks, read with `client`.
    pub fn new(settings: &HealSettings, client: TrelloClient) -> Result<Self, String> {
        let url = settings.url.clone().ok_or(
            "set server.public_url: the endpoint's Trello webhooks are found by their callback URL",
        )?;
        Ok(Self {
            name: format!("heal:trello:{}", settings.endpoint),
            endpoint: settings.endpoint.clone(),
            client,
            url,
            interval: settings.interval,
            gauged: Mutex::new(BTreeSet::new()),
        })
    }
}

#[async_trait]
impl Healer for TrelloMonitor {
    fn name(&self) -> &str {
        &self.name
    }

    fn endpoint(&self) -> &EndpointName {
        &self.endpoint
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    async fn run(&self, _store: &dyn Store, options: &RunOptions) -> Result<HealReport, HealError> {
        let mut report = HealReport::new(
            &self.name,
            &self.endpoint,
            "Trello webhooks".to_owned(),
            options.dry_run,
        );
        let hooks = self
            .client
            .list_webhooks()
            .await
            .map_err(|source| HealError::Api {
                healer: self.name.clone(),
                source,
            })?;
        let mut seen = BTreeSet::new();
        for hook in hooks
            .iter()
            .filter(|h| same_url(&h.callback_url, &self.url))
        {
            report.scanned += 1;
            seen.insert(hook.id.clone());
            metrics::gauge!(metric_names::HOOK_FAILURES,
                "endpoint" => self.endpoint.to_string(), "hook" => hook.id.clone())
            .set(hook.consecutive_failures as f64);
            if hook.is_failing() {
                let since = hook
                    .failing_since()
                    .map(|t| format!(" since {}", when(t)))
                    .unwrap_or_default();
                let state = if hook.active { "active" } else { "inactive" };
                report.items.push(HealItem {
                    id: hook.id.clone(),
                    summary: format!("model {} ({state}){since}", hook.id_model),
                    outcome: HealOutcome::Failing(hook.consecutive_failures),
                    new_gap: false,
                    new_failure: false,
                });
            }
        }
        if let Ok(mut gauged) = self.gauged.lock() {
            for gone in gauged.difference(&seen) {
                metrics::gauge!(metric_names::HOOK_FAILURES,
                    "endpoint" => self.endpoint.to_string(), "hook" => gone.clone())
                .set(0.0);
            }
            *gauged = seen;
        }
        Ok(report)
    }
}
