//! HTTP routes of the payments API (contracts/openapi/payments.yaml).

mod payments;

use axum::Router;
use axum::routing::{get, post};
use platform_auth_token::{RequireScope, Validator};
use platform_dapr::Sidecar;

#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) sidecar: Sidecar,
    pub(crate) state_store: String,
}

/// Every route needs an access token for audience `payments`:
/// `payments:write` to create, `payments:read` to read.
pub(crate) fn router(state: AppState, validator: &Validator) -> Router {
    let writes = Router::new()
        .route("/v1/payments", post(payments::create))
        .route_layer(RequireScope::new(validator, "payments:write"));
    let reads = Router::new()
        .route("/v1/payments/{id}", get(payments::get))
        .route_layer(RequireScope::new(validator, "payments:read"));
    writes.merge(reads).with_state(state)
}
