//! The operations monitor: every `[alerts] interval_ms` it refreshes the gauges read from
//! the store (`hookbridge_dead_letters`, `hookbridge_oldest_unfinished_seconds`) and posts
//! alerts to the `[alerts] target` chat connection, once per episode rather than per job:
//!
//! - dead letters appeared (the count went from zero to some), and they cleared (back to
//!   zero, after replays). The episode is kept in the store (rule state
//!   `__hookbridge_alerts`), so a restart does not announce it again, and only the instance
//!   holding the `alerts:dead-letters` lease posts, so several instances on one PostgreSQL
//!   post once;
//! - a target's circuit opened, and it closed again. Circuits are per instance, and so are
//!   these alerts (each names its instance).
//!
//! An alert that cannot be posted is tried again at the next check, so it is late rather
//! than lost.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use hookbridge_providers::sinks::{Message, Notifier};
use hookbridge_sync_engine::engine::{CircuitState, CircuitStatus, Engine};
use hookbridge_sync_engine::store::{JobFilter, JobState, Store, StoreError};
use serde_json::json;
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use crate::config::AlertsConfig;
use crate::services::Services;

/// Where the dead-letter episode is kept (rule state, not a rule).
const STATE_RULE: &str = "__hookbridge_alerts";
const DEAD_LETTERS_KEY: &str = "dead_letters";
const LEASE: &str = "alerts:dead-letters";

/// Why the monitor could not start.
#[derive(Debug, thiserror::Error)]
#[error("alerts: cannot use connection {target:?}: {message}")]
pub struct AlertsError {
    /// The configured target.
    pub target: String,
    /// What is wrong.
    pub message: String,
}

/// Starts the monitor on the current runtime: gauges, and alerts when `config` names a
/// target. Abort the handle to stop it.
pub fn start(
    config: &AlertsConfig,
    store: Arc<dyn Store>,
    engine: Engine,
    services: &Services,
) -> Result<JoinHandle<()>, AlertsError> {
    let notifier = match &config.target {
        Some(target) => {
            let notifier = services
                .connections()
                .notifier("alerts", target)
                .map_err(|e| AlertsError {
                    target: target.clone(),
                    message: e.to_string(),
                })?;
            Some((target.clone(), notifier))
        }
        None => None,
    };
    let mut monitor = Monitor {
        store,
        engine,
        notifier,
        interval: config.interval,
        circuits: HashMap::new(),
    };
    // The recorder must exist before the first gauge is set.
    let _ = super::handle();
    Ok(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(monitor.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            monitor.tick().await;
        }
    }))
}

/// What was announced of one target's circuit.
#[derive(Default)]
struct Announced {
    /// Episodes (openings) announced.
    opened: u64,
    /// Whether the last announcement was an opening (a closing is owed).
    open: bool,
}

struct Monitor {
    store: Arc<dyn Store>,
    engine: Engine,
    notifier: Option<(String, Arc<dyn Notifier>)>,
    interval: Duration,
    circuits: HashMap<String, Announced>,
}

impl Monitor {
    async fn tick(&mut self) {
        let now = OffsetDateTime::now_utc();
        let dead = match self.store.job_counts().await {
            Ok(counts) => {
                let dead = counts
                    .iter()
                    .find(|(state, _)| *state == JobState::Dead)
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!(super::DEAD_LETTERS).set(dead as f64);
                Some(dead)
            }
            Err(error) => {
                tracing::warn!(%error, "monitor: cannot count jobs");
                None
            }
        };
        match self.store.oldest_unfinished_delivery().await {
            Ok(oldest) => {
                let age = oldest.map_or(0.0, |d| (now - d.received_at).as_seconds_f64().max(0.0));
                metrics::gauge!(super::OLDEST_UNFINISHED).set(age);
            }
            Err(error) => {
                tracing::warn!(%error, "monitor: cannot find the oldest unfinished delivery")
            }
        }
        if self.notifier.is_none() {
            return;
        }
        if let Some(dead) = dead
            && let Err(error) = self.dead_letters(dead, now).await
        {
            tracing::warn!(%error, "monitor: cannot check the dead-letter episode");
        }
        self.circuits().await;
    }

    /// Announces the start and the end of a dead-letter episode, from one instance.
    async fn dead_letters(&mut self, dead: u64, now: OffsetDateTime) -> Result<(), StoreError> {
        // Outlives a few checks, so the holder keeps it; lapses soon after it stops.
        let ttl = self.interval.saturating_mul(3) + Duration::from_secs(1);
        if !self
            .store
            .try_lease(LEASE, self.engine.worker_id(), ttl, now)
            .await?
        {
            return Ok(());
        }
        let episode = self.store.state(STATE_RULE, DEAD_LETTERS_KEY).await?;
        let open_since = episode
            .as_ref()
            .filter(|e| e["open"].as_bool() == Some(true))
            .and_then(|e| e["since"].as_i64());
        match (dead > 0, open_since) {
            (true, None) => {
                let since = now.unix_timestamp();
                let by_rule = self.dead_by_rule().await?;
                let rules = by_rule
                    .iter()
                    .map(|(rule, n)| format!("{rule} ({n})"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let text = format!(
                    "hookbridge: {dead} job(s) dead-lettered (out of attempts or failed for good), rules: {rules}. \
                     See `hookbridge dead-letters list`; replay once fixed with \
                     `hookbridge deliveries replay --status dead`."
                );
                let message = Message::new(
                    format!("hookbridge-alert-dead-letters-{since}-appeared"),
                    text,
                )
                .with_field("dead letters", dead.to_string())
                .with_field("rules", rules);
                if self.post("dead_letters_appeared", &message).await {
                    let state = json!({"open": true, "since": since});
                    self.store
                        .put_state(STATE_RULE, DEAD_LETTERS_KEY, &state)
                        .await?;
                }
            }
            (false, Some(since)) => {
                let text =
                    "hookbridge: the dead letters are cleared: no job is dead-lettered any more.";
                let message = Message::new(
                    format!("hookbridge-alert-dead-letters-{since}-cleared"),
                    text,
                );
                if self.post("dead_letters_cleared", &message).await {
                    let state = json!({"open": false, "since": since});
                    self.store
                        .put_state(STATE_RULE, DEAD_LETTERS_KEY, &state)
                        .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn dead_by_rule(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let dead = self
            .store
            .list_jobs(&JobFilter {
                state: Some(JobState::Dead),
                limit: 1000,
                ..JobFilter::default()
            })
            .await?;
        let mut by_rule = BTreeMap::new();
        for job in dead {
            *by_rule.entry(job.rule).or_insert(0) += 1;
        }
        Ok(by_rule)
    }

    /// Announces each circuit's openings and closings (once per episode).
    async fn circuits(&mut self) {
        for status in self.engine.circuits() {
            let announced = self.circuits.remove(&status.target).unwrap_or_default();
            let announced = self.circuit(&status, announced).await;
            self.circuits.insert(status.target.clone(), announced);
        }
    }

    async fn circuit(&self, status: &CircuitStatus, mut announced: Announced) -> Announced {
        let instance = self.engine.worker_id();
        let target = &status.target;
        if status.opened_total > announced.opened {
            let cooldown = self
                .engine
                .circuit_config()
                .map(|c| format!("{:?}", c.cooldown))
                .unwrap_or_default();
            let text = format!(
                "hookbridge: the circuit of {target} opened on {instance} after {} consecutive transient failures \
                 (last: {}). Jobs calling it wait {cooldown}, then one probe call is let through. \
                 See `hookbridge circuits`.",
                status.consecutive_failures,
                status.last_error.as_deref().unwrap_or("unknown"),
            );
            let message = Message::new(
                format!(
                    "hookbridge-alert-circuit-{target}-{instance}-{}-opened",
                    status.opened_total
                ),
                text,
            )
            .with_field("target", target.clone())
            .with_field("instance", instance.to_owned());
            if self.post("circuit_opened", &message).await {
                announced.opened = status.opened_total;
                announced.open = true;
            } else {
                return announced;
            }
        }
        if announced.open && status.state == CircuitState::Closed {
            let text = format!(
                "hookbridge: the circuit of {target} closed on {instance}: a probe call succeeded; \
                 the jobs it paused run again."
            );
            let message = Message::new(
                format!(
                    "hookbridge-alert-circuit-{target}-{instance}-{}-closed",
                    announced.opened
                ),
                text,
            )
            .with_field("target", target.clone())
            .with_field("instance", instance.to_owned());
            if self.post("circuit_closed", &message).await {
                announced.open = false;
            }
        }
        announced
    }

    /// Posts an alert; `false` if it could not be (it is tried again at the next check).
    async fn post(&self, kind: &'static str, message: &Message) -> bool {
        let Some((target, notifier)) = &self.notifier else {
            return false;
        };
        match notifier.notify(message).await {
            Ok(()) => {
                metrics::counter!(super::ALERTS_TOTAL, "kind" => kind, "outcome" => "sent")
                    .increment(1);
                tracing::info!(kind, target = %target, "alert posted");
                true
            }
            Err(error) => {
                metrics::counter!(super::ALERTS_TOTAL, "kind" => kind, "outcome" => "failed")
                    .increment(1);
                tracing::warn!(kind, target = %target, %error, "cannot post the alert; will try again");
                false
            }
        }
    }
}
