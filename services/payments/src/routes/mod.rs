//! HTTP routes of the payments API (contracts/openapi/payments.yaml).

mod payments;
mod provider_events;

use std::time::Duration;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use platform_auth_token::{RequireScope, Validator};
use platform_server::app_token::dapr_facing;
use platform_settings::DaprSettings;
use platform_signature::Verifier;

use crate::gateway::Gateway;
use crate::idempotency::{self, Idempotency};
use crate::jobs::reconciler::Reconciler;

/// This service's contract, served at `GET /openapi.yaml`
/// (`platform_server::openapi`).
pub const OPENAPI: &str = include_str!("../../../../contracts/openapi/payments.yaml");
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) gateway: Gateway,
    pub(crate) reconciler: Reconciler,
    /// Checks `Psp-Signature` (secret and timestamp tolerance from the
    /// settings).
    pub(crate) webhook_verifier: Verifier,
}

/// Business routes need an access token for audience `payments`:
/// `payments:write` to change, `payments:read` to read. Every write honours
/// `Idempotency-Key`. The provider's webhook is authenticated by its
/// signature; the reconciliation trigger comes from the sidecar's cron
/// binding (`/<binding>`). Routes that call the provider run under
/// `provider_deadline` instead of the app-wide request timeout: the
/// sidecar's Resiliency budget for one provider call (timeouts × attempts +
/// back-off) is longer than that, and cancelling the handler while the
/// provider may still succeed would drop its answer (ADR 0026).
/// The cron binding's route accepts only this service's sidecar (its app
/// token, `platform_server::app_token`).
pub(crate) fn router(
    state: AppState,
    idempotency: Idempotency,
    validator: &Validator,
    reconcile_binding: &str,
    provider_deadline: Duration,
    dapr: &DaprSettings,
) -> Router {
    let provider_writes = platform_server::layers::with_route_deadline(
        Router::new()
            .route("/v1/payments/{id}/confirm", post(payments::confirm))
            .route("/v1/payments/{id}/capture", post(payments::capture))
            .route("/v1/payments/{id}/cancel", post(payments::cancel))
            .route("/v1/payments/{id}/refunds", post(payments::refund)),
        provider_deadline,
    );
    let writes = Router::new()
        .route("/v1/payments", post(payments::create))
        .merge(provider_writes)
        .route_layer(middleware::from_fn_with_state(
            idempotency,
            idempotency::layer,
        ))
        .route_layer(RequireScope::new(validator, "payments:write"));
    let reads = Router::new()
        .route("/v1/payments", get(payments::list))
        .route("/v1/payments/{id}", get(payments::get))
        .route_layer(RequireScope::new(validator, "payments:read"));
    let provider = platform_server::layers::with_route_deadline(
        Router::new().route("/v1/webhooks/psp", post(provider_events::webhook)),
        provider_deadline,
    );
    let from_sidecar = platform_server::layers::with_route_deadline(
        Router::new().route(
            &format!("/{reconcile_binding}"),
            post(provider_events::reconcile),
        ),
        provider_deadline,
    );
    writes
        .merge(reads)
        .merge(provider)
        .merge(dapr_facing(from_sidecar, dapr))
        .merge(platform_server::openapi::routes(OPENAPI))
        .with_state(state)
}
