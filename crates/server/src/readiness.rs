//! Liveness, readiness and metrics endpoints.
//!
//! `/healthz` answers as long as the process serves HTTP: a failing
//! dependency must not get the pod restarted. `/readyz` runs every registered
//! check concurrently, each bounded by a timeout, and answers 503
//! problem+json naming the failing ones, so traffic is only routed to an
//! instance whose sidecar and database answer.

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

/// A named readiness check; returns `Err(reason)` when not ready.
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

    /// Runs every check; returns the failing ones with their reasons.
    pub async fn failures(&self) -> Vec<(&'static str, String)> {
        let runs = self.checks.iter().map(|check| async move {
            match tokio::time::timeout(self.timeout, (check.run)()).await {
                Ok(Ok(())) => None,
                Ok(Err(reason)) => Some((check.name, reason)),
                Err(_) => Some((
                    check.name,
                    format!("no answer within {} ms", self.timeout.as_millis()),
                )),
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
    }
}

async fn readyz(State(readiness): State<Readiness>) -> Response {
    let failures = readiness.failures().await;
    if failures.is_empty() {
        return Json(json!({ "status": "ready" })).into_response();
    }
    for (check, reason) in &failures {
        // Debug: probes run every few seconds and a starting stack is not ready
        // for a while; the 503 body names the failing checks.
        tracing::debug!(readiness.check = check, readiness.reason = %reason, "not ready");
    }
    let checks: serde_json::Map<_, _> = failures
        .into_iter()
        .map(|(name, reason)| (name.to_owned(), json!(reason)))
        .collect();
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        "A dependency is not ready",
    )
    .with_extension("checks", checks)
    .into_response()
}
