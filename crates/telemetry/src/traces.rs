//! Distributed tracing: OpenTelemetry spans exported over OTLP, and W3C
//! trace context (`traceparent`/`tracestate`) read from and written to every
//! hop (HTTP headers, gRPC metadata, CloudEvents).
//!
//! * Export: on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (OTLP/gRPC, e.g.
//!   `http://127.0.0.1:4317`; `make up` sets it to the trace backend). Off,
//!   spans still get ids, so context still flows to the next hop.
//! * Sampling: parent-based; a trace started here is kept with probability
//!   `OTEL_TRACES_SAMPLER_ARG` (default [`DEFAULT_SAMPLING_RATIO`]); a hop
//!   with a parent follows the parent's decision (the `sampled` flag), so a
//!   trace is kept or dropped whole. Why that default: docs/adr/0032.

use std::collections::HashMap;
use std::sync::OnceLock;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::TelemetryError;

/// Ratio of new traces kept when `OTEL_TRACES_SAMPLER_ARG` is not set: one
/// in ten. At 1.0 tracing cost 11-25 % of payments' throughput in
/// `make bench-tracing`, over the 5 % budget of issue 14 (ADR 0047). A
/// caller that needs a given request traced sends a sampled `traceparent`
/// (flag 01), which every hop follows.
pub const DEFAULT_SAMPLING_RATIO: f64 = 0.1;

/// The W3C header / metadata / CloudEvent attribute names.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

fn sampling_ratio() -> Result<f64, TelemetryError> {
    match std::env::var("OTEL_TRACES_SAMPLER_ARG") {
        Err(_) => Ok(DEFAULT_SAMPLING_RATIO),
        Ok(raw) => match raw.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
            _ => Err(TelemetryError::Tracing(format!(
                "OTEL_TRACES_SAMPLER_ARG must be a number in [0, 1], not {raw:?}"
            ))),
        },
    }
}

/// Builds the process' tracer provider (once): OTLP/gRPC batch export when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Needs a Tokio runtime only when
/// exporting (the batch processor runs on its own thread).
pub(crate) fn provider(service: &'static str) -> Result<SdkTracerProvider, TelemetryError> {
    if let Some(p) = PROVIDER.get() {
        return Ok(p.clone());
    }
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(sampling_ratio()?)));
    let mut builder = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_resource(Resource::builder().with_service_name(service).build());
    if std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|v| !v.trim().is_empty()) {
        use opentelemetry_otlp::WithExportConfig as _;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_timeout(std::time::Duration::from_secs(3))
            .build()
            .map_err(|e| TelemetryError::Tracing(e.to_string()))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(PROVIDER.get_or_init(|| provider).clone())
}

/// The `tracing` layer that turns spans into OpenTelemetry spans.
pub(crate) fn layer<S>(
    service: &'static str,
) -> Result<
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
    TelemetryError,
>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let tracer = provider(service)?.tracer(service);
    Ok(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Sends the spans still buffered (call before exit; bounded by the
/// exporter's timeout).
pub fn shutdown_tracing() {
    if let Some(p) = PROVIDER.get() {
        let _ = p.force_flush();
    }
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct Pairs(HashMap<String, String>);

impl Injector for Pairs {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

impl Extractor for Pairs {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Makes `span` the child of the remote span named by `headers`'
/// `traceparent` (if any, and valid), then records its `trace_id` and
/// `span_id` fields (when the span declares them) so that log lines inside
/// it carry the ids.
pub fn accept_http_parent(span: &Span, headers: &http::HeaderMap) {
    let cx = TraceContextPropagator::new().extract(&Headers(headers));
    adopt(span, cx);
}

/// As [`accept_http_parent`], from a `traceparent` (and `tracestate`)
/// carried elsewhere, e.g. in a CloudEvent or a queued job.
pub fn accept_parent(span: &Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    let Some(traceparent) = traceparent else {
        record_ids(span);
        return;
    };
    let mut pairs = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    if let Some(state) = tracestate {
        pairs.insert(TRACESTATE.to_owned(), state.to_owned());
    }
    let cx = TraceContextPropagator::new().extract(&Pairs(pairs));
    adopt(span, cx);
}

fn adopt(span: &Span, cx: opentelemetry::Context) {
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
    record_ids(span);
}

fn record_ids(span: &Span) {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.record("trace_id", tracing::field::display(sc.trace_id()));
        span.record("span_id", tracing::field::display(sc.span_id()));
    }
}

/// Names `span` (a request's server span) after the route template that
/// served it, e.g. `POST /v1/payments/{id}/confirm`: what a trace view lists
/// and groups by, with ids out of the name. Routing happens after the span
/// was made and, through [`accept_http_parent`], started, and
/// tracing-opentelemetry applies a recorded `otel.name` only to a span not
/// yet started; so the started OpenTelemetry span is renamed directly, and
/// `otel.name` is recorded too for log lines.
pub fn name_request_span(span: &Span, method: &str, route: &str) {
    let name = format!("{method} {route}");
    span.record("otel.name", name.as_str());
    span.context().span().update_name(name);
}

/// The W3C context of the current span, as (name, value) pairs to send with
/// an outgoing call or to store with a queued job: `traceparent` and, when
/// there is one, `tracestate`. Empty outside any span with a valid context.
pub fn current_trace_context() -> Vec<(&'static str, String)> {
    let cx = Span::current().context();
    if !cx.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut pairs = Pairs(HashMap::new());
    TraceContextPropagator::new().inject_context(&cx, &mut pairs);
    let mut out = Vec::with_capacity(2);
    for name in [TRACEPARENT, TRACESTATE] {
        if let Some(value) = pairs.0.remove(name).filter(|v| !v.is_empty()) {
            out.push((name, value));
        }
    }
    out
}

/// The current span's `traceparent`, if it has a valid context.
pub fn current_traceparent() -> Option<String> {
    current_trace_context()
        .into_iter()
        .find_map(|(k, v)| (k == TRACEPARENT).then_some(v))
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn with_otel<T>(f: impl FnOnce() -> T) -> T {
        let subscriber = tracing_subscriber::registry().with(layer("telemetry-test").unwrap());
        tracing::subscriber::with_default(subscriber, f)
    }

    #[test]
    fn an_incoming_traceparent_becomes_the_parent_and_is_passed_on() {
        with_otel(|| {
            let mut headers = http::HeaderMap::new();
            headers.insert(TRACEPARENT, PARENT.parse().unwrap());
            let span = tracing::info_span!(
                "req",
                trace_id = tracing::field::Empty,
                span_id = tracing::field::Empty
            );
            accept_http_parent(&span, &headers);
            let _g = span.enter();
            let out = current_traceparent().expect("a traceparent");
            let parts: Vec<&str> = out.split('-').collect();
            assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
            assert_ne!(parts[2], "00f067aa0ba902b7", "a new span id for this hop");
            assert_eq!(parts[3], "01", "the parent's sampling decision is kept");
        });
    }

    #[test]
    fn a_malformed_traceparent_starts_a_new_trace() {
        with_otel(|| {
            let span = tracing::info_span!("req");
            accept_parent(&span, Some("00-zz-00f067aa0ba902b7-01"), None);
            let _g = span.enter();
            let out = current_traceparent().expect("a fresh context");
            assert!(!out.contains("4bf92f3577b34da6a3ce929d0e0e4736"));
            assert_eq!(out.len(), 55, "{out}");
        });
    }

    /// Keeps what the SDK exports, to look at the spans' final names.
    #[derive(Debug, Clone, Default)]
    struct Kept(std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

    impl opentelemetry_sdk::trace::SpanExporter for Kept {
        async fn export(
            &self,
            batch: Vec<opentelemetry_sdk::trace::SpanData>,
        ) -> opentelemetry_sdk::error::OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    #[test]
    fn a_request_span_is_named_after_its_route_template_once_routed() {
        let kept = Kept::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(kept.clone())
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("naming-test"));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let mut headers = http::HeaderMap::new();
            headers.insert(TRACEPARENT, PARENT.parse().unwrap());
            // As platform_server's layer makes it: started by adopting the
            // caller's context before routing is known.
            let span = tracing::info_span!(
                "http.request",
                otel.name = tracing::field::Empty,
                trace_id = tracing::field::Empty,
                span_id = tracing::field::Empty
            );
            accept_http_parent(&span, &headers);
            name_request_span(&span, "POST", "/v1/payments/{id}/confirm");
            drop(span);
        });
        let spans = kept.0.lock().unwrap();
        assert_eq!(spans.len(), 1, "{spans:?}");
        assert_eq!(spans[0].name, "POST /v1/payments/{id}/confirm");
        assert_eq!(
            spans[0].span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "still the caller's trace"
        );
    }

    #[test]
    fn no_span_means_nothing_to_propagate() {
        with_otel(|| assert!(current_trace_context().is_empty()));
    }
}
