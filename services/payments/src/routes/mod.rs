//! HTTP routes of the payments API (contracts/openapi/payments.yaml).

mod payments;
mod provider_events;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use platform_auth_token::{RequireScope, Validator};
use platform_server::app_token::dapr_facing;
use platform_settings::DaprSettings;
use platform_signature::Verifier;

use crate::gateway::Gateway;
use crate::idempotency::{self, Idempotency};

#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) gateway: Gateway,
    /// Checks `Psp-Signature` (secret and timestamp tolerance from the
    /// settings).
    pub(crate) webhook_verifier: Verifier,
}

/// Business routes need an access token for audience `payments`:
/// `payments:write` to change, `payments:read` to read. Every write honours
/// `Idempotency-Key`. The provider's webhook is authenticated by its
/// signature; the reconciliation trigger comes from the sidecar's cron
/// binding (`/<binding>`) and accepts only this service's sidecar (its app
/// token, `platform_server::app_token`).
pub(crate) fn router(
    state: AppState,
    idempotency: Idempotency,
    validator: &Validator,
    reconcile_binding: &str,
    dapr: &DaprSettings,
) -> Router {
    let writes = Router::new()
        .route("/v1/payments", post(payments::create))
        .route("/v1/payments/{id}/confirm", post(payments::confirm))
        .route("/v1/payments/{id}/capture", post(payments::capture))
        .route("/v1/payments/{id}/cancel", post(payments::cancel))
        .route("/v1/payments/{id}/refunds", post(payments::refund))
        .route_layer(middleware::from_fn_with_state(
            idempotency,
            idempotency::layer,
        ))
        .route_layer(RequireScope::new(validator, "payments:write"));
    let reads = Router::new()
        .route("/v1/payments", get(payments::list))
        .route("/v1/payments/{id}", get(payments::get))
        .route_layer(RequireScope::new(validator, "payments:read"));
    let provider = Router::new().route("/v1/webhooks/psp", post(provider_events::webhook));
    let from_sidecar = Router::new().route(
        &format!("/{reconcile_binding}"),
        post(provider_events::reconcile),
    );
    writes
        .merge(reads)
        .merge(provider)
        .merge(dapr_facing(from_sidecar, dapr))
        .with_state(state)
}
