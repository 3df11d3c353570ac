//! Liveness, readiness and metrics endpoints.
//!
//! `/healthz` answers as long as the process serves HTTP: a failing
//! dependency must not get the pod restarted. `/readyz` runs every registered
//! check concurrently, each bounded by a timeout, and answers 503
//! problem+json naming the failing ones with a status (`failed`, `timeout`),
//! so traffic is only routed to an instance whose sidecar and database
//! answer. Why a check failed (a driver error with host names, ports, users)
//! goes to the log only: the probe port is reachable by more than operators.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use platform_problem::Problem;
use serde_json::json;

pub type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A named readiness check; returns `Err(reason)` when not ready. The reason
/// is logged, never answered.
pub struct Check {
    name: &'static str,
    run: Box<dyn Fn() -> CheckFuture + Send + Sync>,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Check {
    pub fn new<F, Fut>(name: &'static str, run: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name,
            run: Box::new(move || Box::pin(run())),
        }
    }
}

/// A check that did not pass.
#[derive(Debug, Clone)]
pub struct Failure {
    pub check: &'static str,
    pub status: FailureStatus,
    /// For the log only: may name hosts, ports and users.
    pub reason: String,
}

/// How a check did not pass: all that `/readyz` says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureStatus {
    /// The check answered with an error.
    Failed,
    /// The check did not answer within the readiness timeout.
    Timeout,
}

impl FailureStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Timeout => "timeout",
        }
    }
}

/// The set of readiness checks of one service.
#[derive(Debug, Clone)]
pub struct Readiness {
    checks: Arc<Vec<Check>>,
    timeout: Duration,
}

impl Readiness {
    pub fn new(checks: Vec<Check>, timeout: Duration) -> Self {
        Self {
            checks: Arc::new(checks),
            timeout,
        }
    }

    /// Runs every check; returns the failing ones.
    pub async fn failures(&self) -> Vec<Failure> {
        let runs = self.checks.iter().map(|check| async move {
            match tokio::time::timeout(self.timeout, (check.run)()).await {
                Ok(Ok(())) => None,
                Ok(Err(reason)) => Some(Failure {
                    check: check.name,
                    status: FailureStatus::Failed,
                    reason,
                }),
                Err(_) => Some(Failure {
                    check: check.name,
                    status: FailureStatus::Timeout,
                    reason: format!("no answer within {} ms", self.timeout.as_millis()),
                }),
            }
        });
        let results = futures::future::join_all(runs).await;
        results.into_iter().flatten().collect()
    }

    /// `/healthz`, `/readyz` and `/metrics`. Services merge these outside
    /// [`crate::layers::wrap`] on purpose: probes and scrapes every few
    /// seconds would drown the request logs and metrics.
    pub fn routes(self, metrics: PrometheusHandle) -> Router {
        Router::new()
            .route(
                "/healthz",
                get(|| async { Json(json!({ "status": "ok" })) }),
            )
            .route("/readyz", get(readyz).with_state(self))
            .route(
                "/metrics",
                get(move || std::future::ready(metrics.render())),
            )
            // Served beside the shared layers, so they need the problem+json
            // 405 of their own (`TRACE /healthz` answered text/plain before).
            .method_not_allowed_fallback(platform_problem::method_not_allowed_fallback)
    }
}

async fn readyz(State(readiness): State<Readiness>) -> Response {
    let failures = readiness.failures().await;
    if failures.is_empty() {
        return Json(json!({ "status": "ready" })).into_response();
    }
    for failure in &failures {
        // The only place the reason goes: the body names the check alone.
        tracing::warn!(
            readiness.check = failure.check,
            readiness.status = failure.status.as_str(),
            readiness.reason = %failure.reason,
            "readiness check failed"
        );
    }
    let checks: serde_json::Map<_, _> = failures
        .iter()
        .map(|failure| (failure.check.to_owned(), json!(failure.status.as_str())))
        .collect();
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        "A dependency is not ready",
    )
    .with_extension("checks", checks)
    .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use metrics_exporter_prometheus::PrometheusBuilder;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_method_the_probes_do_not_serve_is_a_405_problem_with_allow() {
        let metrics = PrometheusBuilder::new().build_recorder().handle();
        for path in ["/healthz", "/readyz", "/metrics"] {
            // Composed as `Server::bind_service` composes a service.
            let service =
                axum::Router::new().route("/v1/things", axum::routing::get(|| async { "" }));
            let response = crate::layers::wrap(service, Duration::from_secs(5))
                .merge(
                    Readiness::new(Vec::new(), Duration::from_millis(50)).routes(metrics.clone()),
                )
                .oneshot(
                    Request::builder()
                        .method("TRACE")
                        .uri(path)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{path}"
            );
            let allow = response.headers()["allow"].to_str().unwrap();
            assert!(allow.contains("GET"), "{path}: {allow}");
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["code"], "method_not_allowed", "{path}");
        }
    }

    #[tokio::test]
    async fn readyz_names_the_failing_checks_without_their_reasons() {
        let readiness = Readiness::new(
            vec![
                Check::new("dapr", || async { Ok(()) }),
                Check::new("postgres", || async {
                    Err("error connecting to db.internal:5432 as user payments".to_owned())
                }),
                Check::new("state_store", std::future::pending),
            ],
            Duration::from_millis(50),
        );
        let metrics = PrometheusBuilder::new().build_recorder().handle();
        let response = readiness
            .routes(metrics)
            .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["code"], "not_ready");
        assert_eq!(
            body["checks"],
            json!({ "postgres": "failed", "state_store": "timeout" })
        );
        assert!(!text.contains("db.internal"), "{text}");
        assert!(!text.contains("no answer within"), "{text}");
    }
}
