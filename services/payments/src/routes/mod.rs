//! HTTP routes of the payments API (contracts/openapi/payments.yaml).

mod payments;

use axum::Router;
use axum::routing::{get, post};
use platform_dapr::Sidecar;

#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) sidecar: Sidecar,
    pub(crate) state_store: String,
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/payments", post(payments::create))
        .route("/v1/payments/{id}", get(payments::get))
        .with_state(state)
}
