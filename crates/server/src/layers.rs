//! The middleware stack around every service router, and the per-route
//! deadline that a route calling a slow dependency through the sidecar
//! declares (docs/adr/0026-timeout-hierarchy.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Wraps `router` with: problem+json fallbacks, request deadline
/// (`request_timeout`, unless the route declared its own with
/// [`with_route_deadline`]; so that draining on shutdown ends), HTTP metrics, a tracing span per request carrying the
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

/// Gives every route of `router` its own deadline instead of the app-wide
/// request timeout of [`wrap`]: longer for a route whose sidecar calls
/// carry a Resiliency budget beyond it (a provider call with retries, a send
/// through an output binding), so that the handler is never cancelled while
/// the sidecar may still complete the call. Used without [`wrap`] (a bare
/// router in a test), it enforces the deadline itself.
pub fn with_route_deadline<S>(router: Router<S>, deadline: Duration) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.route_layer(middleware::from_fn_with_state(deadline, set_route_deadline))
}

/// The deadline of one request, shared between [`wrap`]'s timeout (which
/// enforces it) and a route's [`with_route_deadline`] (which sets it once the
/// route is known: routing happens inside the outer layer).
#[derive(Debug, Clone)]
struct RequestDeadline {
    started: tokio::time::Instant,
    limit_ms: Arc<AtomicU64>,
}

impl RequestDeadline {
    fn new(limit: Duration) -> Self {
        Self {
            started: tokio::time::Instant::now(),
            limit_ms: Arc::new(AtomicU64::new(millis(limit))),
        }
    }

    fn limit(&self) -> Duration {
        Duration::from_millis(self.limit_ms.load(Ordering::Acquire))
    }

    fn set(&self, limit: Duration) {
        self.limit_ms.store(millis(limit), Ordering::Release);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn set_route_deadline(
    State(deadline): State<Duration>,
    request: AxumRequest,
    next: Next,
) -> Response {
    match request.extensions().get::<RequestDeadline>() {
        Some(shared) => {
            shared.set(deadline);
            next.run(request).await
        }
        None => match tokio::time::timeout(deadline, next.run(request)).await {
            Ok(response) => response,
            Err(_) => timed_out(deadline),
        },
    }
}

/// Ends a request that runs longer than its deadline (the app-wide limit,
/// or the route's own) with a 503 problem, so that clients get the usual
/// envelope and draining on shutdown is bounded.
async fn limit_duration(
    State(limit): State<Duration>,
    mut request: AxumRequest,
    next: Next,
) -> Response {
    let deadline = RequestDeadline::new(limit);
    request.extensions_mut().insert(deadline.clone());
    let run = next.run(request);
    tokio::pin!(run);
    loop {
        let limit = deadline.limit();
        tokio::select! {
            response = &mut run => return response,
            () = tokio::time::sleep_until(deadline.started + limit) => {
                // The route may have moved its deadline while we slept.
                if deadline.limit() <= limit {
                    return timed_out(limit);
                }
            }
        }
    }
}

fn timed_out(limit: Duration) -> Response {
    tracing::warn!(request.timeout_ms = limit.as_millis(), "request timed out");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "request_timeout",
        "The request took too long",
    )
    .with_retry_after(1)
    .into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    use super::{with_route_deadline, wrap};

    const APP_WIDE: Duration = Duration::from_secs(10);

    async fn slow(after: Duration) -> &'static str {
        tokio::time::sleep(after).await;
        "done"
    }

    /// `/plain` answers after 20 s; so does `/provider`, which declares a
    /// 30 s deadline; `/stuck` answers after 40 s under the same 30 s.
    fn app() -> Router {
        let provider = with_route_deadline(
            Router::new()
                .route("/provider", get(|| slow(Duration::from_secs(20))))
                .route("/stuck", get(|| slow(Duration::from_secs(40)))),
            Duration::from_secs(30),
        );
        let plain = Router::new().route("/plain", get(|| slow(Duration::from_secs(20))));
        wrap(plain.merge(provider), APP_WIDE)
    }

    async fn status_of(router: Router, path: &str) -> StatusCode {
        let request = Request::get(path).body(Body::empty()).unwrap();
        router.oneshot(request).await.unwrap().status()
    }

    #[tokio::test(start_paused = true)]
    async fn a_plain_route_ends_at_the_app_wide_timeout() {
        assert_eq!(
            status_of(app(), "/plain").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_route_with_its_own_deadline_outlives_the_app_wide_timeout() {
        let started = tokio::time::Instant::now();
        assert_eq!(status_of(app(), "/provider").await, StatusCode::OK);
        assert_eq!(started.elapsed(), Duration::from_secs(20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_route_with_its_own_deadline_still_ends_at_it() {
        let started = tokio::time::Instant::now();
        assert_eq!(
            status_of(app(), "/stuck").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_route_deadline_without_the_shared_layers_is_enforced_alone() {
        let router = with_route_deadline(
            Router::new().route("/stuck", get(|| slow(Duration::from_secs(40)))),
            Duration::from_secs(30),
        );
        assert_eq!(
            status_of(router, "/stuck").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
