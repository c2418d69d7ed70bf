//! Prometheus metrics. The recorder is process-wide (the `metrics` facade is global), so it
//! is installed once, whatever the number of routers built.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Deliveries received, by endpoint and outcome.
pub const DELIVERIES_TOTAL: &str = "hookbridge_deliveries_total";
/// Time from request to answer on the ingest path, by endpoint.
pub const INGEST_SECONDS: &str = "hookbridge_ingest_duration_seconds";

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
            metrics::describe_histogram!(
                INGEST_SECONDS,
                metrics::Unit::Seconds,
                "Time to verify, identify and durably store a delivery."
            );
            Some(handle)
        })
        .as_ref()
}
