//! Logging and metrics set-up shared by every service.
//!
//! * Logs: `tracing` with an `EnvFilter` (`RUST_LOG` wins over settings), human
//!   readable by default, one JSON object per line with `log_format = "json"`
//!   (`APP__TELEMETRY__LOG_FORMAT=json`).
//! * Metrics: a Prometheus recorder for the `metrics` facade, rendered on
//!   `GET /metrics`, plus a middleware that records every HTTP request.
//! * Traces: every `tracing` span is also an OpenTelemetry span, exported
//!   over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; W3C trace context
//!   in and out of every hop ([`traces`]). JSON log lines carry the
//!   `trace_id`/`span_id` of the request or event they belong to.

mod http_metrics;
pub mod traces;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use platform_settings::{LogFormat, TelemetrySettings};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub use http_metrics::record_http_metrics;
pub use traces::{
    accept_http_parent, accept_parent, current_trace_context, current_traceparent,
    name_request_span, shutdown_tracing,
};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter: {0}")]
    Filter(String),
    #[error("metrics recorder: {0}")]
    Metrics(String),
    #[error("tracing: {0}")]
    Tracing(String),
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

    let fmt = tracing_subscriber::fmt::layer()
        .with_span_events(FmtSpan::NONE)
        .with_target(true)
        // Colours only for a terminal; files and collectors get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(traces::layer(service)?);
    let result = match settings.log_format {
        LogFormat::Json => registry
            .with(
                fmt.json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(fmt.compact()).try_init(),
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
                .and_then(|b| {
                    // Freshness of consumed events (platform_consumer):
                    // publish → handled, from tens of ms to minutes.
                    b.set_buckets_for_metric(
                        Matcher::Full("event_age_seconds".into()),
                        &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0],
                    )
                })
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(TelemetryError::Metrics)
}
