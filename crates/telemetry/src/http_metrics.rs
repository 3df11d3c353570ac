//! Per-request HTTP metrics, labelled by route template rather than raw path
//! so that ids in URLs do not explode label cardinality.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// `axum::middleware::from_fn` layer recording `http_requests_total` and
/// `http_request_duration_seconds`.
pub async fn record_http_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());

    // The request's span (platform_server's `http.request`) is named after
    // the route template, which is what a trace view groups by.
    let span = tracing::Span::current();
    crate::traces::name_request_span(&span, &method, &route);

    let response = next.run(request).await;

    let status = response.status().as_u16().to_string();
    span.record("http.status_code", status.as_str());
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
