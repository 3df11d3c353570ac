//! HTTP routes: the API (contracts/openapi/communication.yaml) and the
//! routes Dapr delivers subscribed events and send jobs to.

pub(crate) mod events;
pub(crate) mod jobs;
mod notifications;
mod receipts;
mod recipients;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use platform_auth_token::{RequireScope, Validator};
use platform_consumer::parking_lot::{self, ParkingLot};
use platform_server::app_token::dapr_facing;
use platform_settings::DaprSettings;
use platform_signature::Verifier;
use sqlx::PgPool;

use crate::events::EventRedrive;
use crate::outbox::Relay;
use crate::sender::Sender;
use crate::settings::Settings;
use crate::templates::Templates;

/// This service's contract, served at `GET /openapi.yaml`
/// (`platform_server::openapi`).
pub const OPENAPI: &str = include_str!("../../../../contracts/openapi/communication.yaml");
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) pool: PgPool,
    pub(crate) templates: Arc<Templates>,
    pub(crate) sender: Sender,
    pub(crate) relay: Relay,
    pub(crate) settings: Arc<Settings>,
    /// Checks providers' delivery receipts (built once from the settings).
    pub(crate) receipt_verifier: Verifier,
    pub(crate) parking_lot: ParkingLot<EventRedrive>,
}

/// The API behind scopes (`communication:read`, `communication:write`, the
/// parking lot's operator routes `communication:admin`); the routes Dapr
/// calls accept only this service's sidecar (its app token,
/// `platform_server::app_token`); provider receipts are authenticated by
/// their signature.
pub(crate) fn router(state: AppState, validator: &Validator, dapr: &DaprSettings) -> Router {
    let read = RequireScope::new(validator, "communication:read");
    let write = RequireScope::new(validator, "communication:write");
    let reads = Router::new()
        .route("/v1/notifications/{id}", get(notifications::get))
        .route("/v1/recipients/{id}", get(recipients::get))
        .route(
            "/v1/recipients/{id}/preferences",
            get(recipients::get_preferences),
        )
        .route_layer(read);
    let writes = Router::new()
        .route("/v1/notifications", post(notifications::create))
        .route("/v1/recipients/{id}", axum::routing::put(recipients::put))
        .route(
            "/v1/recipients/{id}/preferences",
            axum::routing::put(recipients::put_preferences),
        )
        .route_layer(write);
    let admin = parking_lot::admin::router(state.parking_lot.clone())
        .route_layer(RequireScope::new(validator, "communication:admin"));
    // Dapr's routes run under their own deadlines, each below the inbound
    // timeout of its pub/sub component (docs/adr/0026-timeout-hierarchy.md).
    let events = platform_server::layers::with_route_deadline(
        Router::new()
            .route("/events/payments", post(events::payments))
            .route("/events/bookkeeping", post(events::bookkeeping))
            .route("/events/bookings", post(events::bookings))
            .with_state(state.clone())
            .merge(parking_lot::deliveries(
                state.parking_lot.clone(),
                &[
                    ("/deadletters/payments", "payments.deadletter"),
                    ("/deadletters/bookkeeping", "bookkeeping.deadletter"),
                    ("/deadletters/bookings", "bookings.deadletter"),
                ],
            )),
        state.settings.events.route_timeout(),
    );
    let jobs = platform_server::layers::with_route_deadline(
        Router::new()
            .route("/jobs/send", post(jobs::send))
            .route("/jobs/send-failed", post(jobs::send_failed))
            .with_state(state.clone()),
        state.settings.sending.route_timeout(),
    );
    let from_sidecar = dapr_facing(
        events
            .merge(jobs)
            .merge(platform_consumer::declarative_subscriptions()),
        dapr,
    );
    Router::new()
        // Providers post receipts without a token (no account with our
        // issuer); the body's signature authenticates them (receipts.rs).
        .route("/v1/providers/{provider}/receipts", post(receipts::receive))
        .merge(reads)
        .merge(writes)
        .with_state(state)
        .merge(from_sidecar)
        .merge(admin)
        .merge(platform_server::openapi::routes(OPENAPI))
}
