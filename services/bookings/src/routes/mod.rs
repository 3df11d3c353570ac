//! HTTP routes: the API (contracts/openapi/bookings.yaml), the routes Dapr
//! delivers subscribed events to, and the route its scheduler fires jobs at.

mod bookings;
mod events;
mod jobs;
mod offerings;

use axum::Router;
use axum::routing::{get, post, put};
use platform_auth_token::{RequireScope, Validator};
use platform_server::app_token::dapr_facing;
use platform_settings::DaprSettings;

use crate::catalogue::Catalogue;
use crate::saga::Saga;

/// This service's contract, served at `GET /openapi.yaml`
/// (`platform_server::openapi`).
pub const OPENAPI: &str = include_str!("../../../../contracts/openapi/bookings.yaml");
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) catalogue: Catalogue,
    pub(crate) saga: Saga,
}

/// Who may call what (access tokens for audience `bookings`):
/// `bookings:admin` manages offerings and cancels them for everyone;
/// `bookings:read` reads the catalogue and one's bookings;
/// `bookings:write` books, pays and cancels one's own bookings. The routes Dapr
/// calls (subscriptions, jobs) are reached only through the sidecar on
/// loopback, like every service's (app tokens on those routes come with
/// the platform's zero-trust work).
pub(crate) fn router(state: AppState, validator: &Validator, dapr: &DaprSettings) -> Router {
    let admin = Router::new()
        .route("/v1/offerings", post(offerings::create))
        .route("/v1/offerings/{id}", put(offerings::replace))
        .route("/v1/offerings/{id}/cancel", post(offerings::cancel))
        .route_layer(RequireScope::new(validator, "bookings:admin"));
    let reads = Router::new()
        .route("/v1/offerings", get(offerings::list))
        .route("/v1/offerings/{id}", get(offerings::get))
        .route("/v1/bookings/{id}", get(bookings::get))
        .route_layer(RequireScope::new(validator, "bookings:read"));
    let writes = Router::new()
        .route("/v1/bookings", post(bookings::create))
        .route("/v1/bookings/{id}/cancel", post(bookings::cancel))
        .route("/v1/bookings/{id}/pay", post(bookings::pay))
        .route_layer(RequireScope::new(validator, "bookings:write"));
    // The routes Dapr calls (subscriptions, job triggers) accept only this
    // service's sidecar (its app token, `platform_server::app_token`).
    let from_sidecar = Router::new()
        .route("/events/payments", post(events::payments))
        .route("/events/bookings", post(events::bookings))
        .route("/job/{name}", post(jobs::fire))
        .merge(platform_consumer::declarative_subscriptions());
    dapr_facing(from_sidecar, dapr)
        .merge(admin)
        .merge(reads)
        .merge(writes)
        .merge(platform_server::openapi::routes(OPENAPI))
        .with_state(state)
}
