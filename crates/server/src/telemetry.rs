//! Logging set-up: `tracing` to stderr, as text or JSON lines.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The environment variable whose filter overrides the configured one.
pub const LOG_ENV: &str = "HOOKBRIDGE_LOG";

/// Installs the global subscriber. `filter` is used when `HOOKBRIDGE_LOG` is unset; `info`
/// when neither is given. Does nothing if a subscriber is already installed.
pub fn init(format: LogFormat, filter: Option<&str>) {
    let filter = EnvFilter::try_from_env(LOG_ENV)
        .or_else(|_| EnvFilter::try_new(filter.unwrap_or("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
