//! HTTP routes: the API (contracts/openapi/bookkeeping.yaml) and the routes
//! Dapr delivers subscribed events to.

pub(crate) mod events;
mod ledger;
pub(crate) mod statements;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use platform_auth_token::{RequireScope, Validator};
use platform_consumer::parking_lot::{self, ParkingLot};
use platform_dapr::Sidecar;
use platform_server::app_token::dapr_facing;
use platform_settings::DaprSettings;

use crate::booking::{Bookkeeper, EventBatcher};
use crate::jobs::statement_export::StatementExports;
use crate::ledger::Ledger;
use crate::statements::Statements;

/// This service's contract, served at `GET /openapi.yaml`
/// (`platform_server::openapi`).
pub const OPENAPI: &str = include_str!("../../../../contracts/openapi/bookkeeping.yaml");
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) ledger: Ledger,
    pub(crate) sidecar: Sidecar,
    pub(crate) statements: Statements,
    pub(crate) statement_exports: StatementExports,
    pub(crate) bookkeeper: Bookkeeper,
    pub(crate) event_batcher: EventBatcher,
    pub(crate) parking_lot: ParkingLot<Bookkeeper>,
}

/// The API behind scopes (`bookkeeping:read`, `bookkeeping:write`, the
/// parking lot's operator routes `bookkeeping:admin`); the routes Dapr calls
/// (subscriptions, jobs, dead letters) accept only this service's sidecar
/// (its app token, `platform_server::app_token`).
pub(crate) fn router(
    state: AppState,
    validator: &Validator,
    dapr: &DaprSettings,
    deliveries_deadline: Duration,
) -> Router {
    let read = RequireScope::new(validator, "bookkeeping:read");
    let write = RequireScope::new(validator, "bookkeeping:write");
    let reads = Router::new()
        .route("/v1/accounts", get(ledger::list_accounts))
        .route("/v1/accounts/{id}", get(ledger::get_account))
        .route("/v1/accounts/{id}/balance", get(ledger::get_balance))
        .route("/v1/entries/{id}", get(ledger::get_entry))
        .route("/v1/statements/{id}", get(statements::get))
        .route("/v1/statements/{id}/download", get(statements::download))
        .route_layer(read);
    let writes = Router::new()
        .route("/v1/accounts", post(ledger::create_account))
        .route("/v1/entries", post(ledger::post_entry))
        .route("/v1/entries/batch", post(ledger::post_batch))
        .route("/v1/entries/{id}/reversal", post(ledger::reverse_entry))
        .route("/v1/statements", post(statements::request))
        .route_layer(write);
    let admin = parking_lot::admin::router(state.parking_lot.clone())
        .route_layer(RequireScope::new(validator, "bookkeeping:admin"));
    // Dapr's routes run under their own deadline, below the inbound timeout
    // of `pubsub` (docs/adr/0026-timeout-hierarchy.md), and only for the
    // sidecar's app token.
    let deliveries = platform_server::layers::with_route_deadline(
        Router::new()
            .route("/events/payments", post(events::payments))
            .route("/jobs/statements", post(statements::worker))
            .with_state(state.clone())
            .merge(parking_lot::deliveries(
                state.parking_lot.clone(),
                &[("/deadletters/payments", "payments.deadletter")],
            )),
        deliveries_deadline,
    );
    let from_sidecar = dapr_facing(
        deliveries.merge(platform_consumer::declarative_subscriptions()),
        dapr,
    );
    Router::new()
        .merge(reads)
        .merge(writes)
        .with_state(state)
        .merge(from_sidecar)
        .merge(admin)
        .merge(platform_server::openapi::routes(OPENAPI))
}
