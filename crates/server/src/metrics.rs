//! Prometheus metrics. The recorder is process-wide (the `metrics` facade is global), so it
//! is installed once, whatever the number of routers built.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Deliveries received, by endpoint and outcome.
pub const DELIVERIES_TOTAL: &str = "hookbridge_deliveries_total";
/// Time from request to answer on the ingest path, by endpoint.
pub const INGEST_SECONDS: &str = "hookbridge_ingest_duration_seconds";
/// Age of the oldest delivery still being processed (gauge, refreshed by the monitor).
pub const OLDEST_UNFINISHED: &str = "hookbridge_oldest_unfinished_seconds";
/// Dead-lettered jobs (gauge, refreshed by the monitor).
pub const DEAD_LETTERS: &str = "hookbridge_dead_letters";
/// Alerts posted or failed, by kind and outcome.
pub const ALERTS_TOTAL: &str = "hookbridge_alerts_total";

pub mod alerts;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder if no other recorder is installed, and returns its
/// handle. `None` when the embedding application installed its own recorder: hookbridge's
/// metrics then go there.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(INGEST_SECONDS.to_owned()),
                    &[
                        0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                        1.0, 2.5, 10.0,
                    ],
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full("hookbridge_job_duration_seconds".to_owned()),
                    &[0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0],
                )
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            metrics::describe_counter!(
                DELIVERIES_TOTAL,
                "Deliveries received, by endpoint and outcome."
            );
            metrics::describe_counter!(
                "hookbridge_job_attempts_total",
                "Job attempts, by rule and outcome (applied, skipped, retry, failed)."
            );
            metrics::describe_gauge!("hookbridge_jobs", "Jobs in the store, by state.");
            metrics::describe_histogram!(
                "hookbridge_job_duration_seconds",
                metrics::Unit::Seconds,
                "Time a rule took to apply."
            );
            metrics::describe_gauge!(
                OLDEST_UNFINISHED,
                metrics::Unit::Seconds,
                "Age of the oldest delivery not yet processed: undispatched, or with a job pending or running (0: none)."
            );
            metrics::describe_gauge!(
                DEAD_LETTERS,
                "Dead-lettered jobs: out of attempts or failed for good, waiting for a replay."
            );
            metrics::describe_gauge!(
                "hookbridge_circuit_open",
                "1 while a downstream target's circuit is open or half open (its jobs are paused), by target."
            );
            metrics::describe_counter!(
                "hookbridge_circuit_opened_total",
                "Times a target's circuit opened (episodes), by target."
            );
            metrics::describe_counter!(
                "hookbridge_jobs_paused_total",
                "Jobs put back to wait by an open circuit (the attempt not counted), by rule and target."
            );
            metrics::describe_counter!(ALERTS_TOTAL, "Alerts posted (or failed), by kind and outcome.");
            metrics::describe_histogram!(
                INGEST_SECONDS,
                metrics::Unit::Seconds,
                "Time to verify, identify and durably store a delivery."
            );
            describe_heal_metrics();
            Some(handle)
        })
        .as_ref()
}

/// The healers' metrics (`hookbridge_sync_engine::heal`).
fn describe_heal_metrics() {
    use hookbridge_sync_engine::heal::metric_names as heal;
    metrics::describe_counter!(
        heal::MISSING,
        "Deliveries a service logged that the endpoint's inbox lacked, each counted once, by endpoint."
    );
    metrics::describe_counter!(
        heal::REDELIVERED,
        "Redeliveries GitHub accepted and Jira failed webhooks ingested by the healers, by endpoint."
    );
    metrics::describe_counter!(
        heal::FAILED,
        "Redelivery requests that failed and deliveries the healers gave up on, by endpoint."
    );
    metrics::describe_counter!(
        heal::RUNS,
        "Healer runs, by endpoint and outcome (ok, error)."
    );
    metrics::describe_gauge!(
        heal::HOOK_FAILURES,
        "Deliveries that failed in a row as the service reports them (Trello), by endpoint and hook."
    );
}
