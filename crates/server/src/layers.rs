//! The middleware stack around every service router.

use std::time::Duration;

use axum::Router;
use axum::extract::{Request as AxumRequest, State};
use axum::http::{HeaderName, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use platform_problem::{Problem, method_not_allowed_fallback, not_found_fallback};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps `router` with: problem+json fallbacks, request timeout (so draining
/// on shutdown ends), HTTP metrics, a tracing span per request carrying the
/// request id, and `x-request-id` generation/propagation.
pub fn wrap(router: Router, request_timeout: Duration) -> Router {
    router
        .fallback(not_found_fallback)
        .method_not_allowed_fallback(method_not_allowed_fallback)
        .layer(middleware::from_fn_with_state(
            request_timeout,
            limit_duration,
        ))
        .layer(middleware::from_fn(platform_telemetry::record_http_metrics))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let request_id = req
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let span = tracing::info_span!(
                        "http.request",
                        otel.kind = "server",
                        otel.name = tracing::field::Empty,
                        http.method = %req.method(),
                        http.path = %req.uri().path(),
                        http.request_id = %request_id,
                        http.status_code = tracing::field::Empty,
                        trace_id = tracing::field::Empty,
                        span_id = tracing::field::Empty,
                    );
                    // W3C trace context from the caller (a client, a sidecar
                    // delivering an event or an invocation).
                    platform_telemetry::accept_http_parent(&span, req.headers());
                    span
                })
                .on_request(())
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::DEBUG)
                        .latency_unit(tower_http::LatencyUnit::Millis),
                ),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Ends a request that runs longer than the limit with a 503 problem, so that
/// clients get the usual envelope and draining on shutdown is bounded.
async fn limit_duration(
    State(limit): State<Duration>,
    request: AxumRequest,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(request.timeout_ms = limit.as_millis(), "request timed out");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "request_timeout",
                "The request took too long",
            )
            .with_retry_after(1)
            .into_response()
        }
    }
}
