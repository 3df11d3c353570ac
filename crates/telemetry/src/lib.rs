//! Logging and metrics set-up shared by every service.
//!
//! * Logs: `tracing` with an `EnvFilter` (`RUST_LOG` wins over settings), human
//!   readable by default, one JSON object per line with `log_format = "json"`
//!   (`APP__TELEMETRY__LOG_FORMAT=json`).
//! * Metrics: a Prometheus recorder for the `metrics` facade, rendered on
//!   `GET /metrics`, plus a middleware that records every HTTP request.

mod http_metrics;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use platform_settings::{LogFormat, TelemetrySettings};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

pub use http_metrics::record_http_metrics;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter: {0}")]
    Filter(String),
    #[error("metrics recorder: {0}")]
    Metrics(String),
}

/// Installs the global `tracing` subscriber. Call once, from `main`.
pub fn init_tracing(
    service: &'static str,
    settings: &TelemetrySettings,
) -> Result<(), TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) => EnvFilter::try_new(directives),
        Err(_) => EnvFilter::try_new(&settings.log_filter),
    }
    .map_err(|e| TelemetryError::Filter(e.to_string()))?;

    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_target(true)
        // Colours only for a terminal; files and collectors get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let result = match settings.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    // A second initialisation (tests in one process) keeps the first subscriber.
    if result.is_ok() {
        tracing::info!(service, log.format = ?settings.log_format, "logging initialised");
    }
    Ok(())
}

static PROMETHEUS: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once, also under
/// concurrent calls) and returns the handle that renders the exposition text.
pub fn init_metrics() -> Result<PrometheusHandle, TelemetryError> {
    PROMETHEUS
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ],
                )
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(TelemetryError::Metrics)
}
