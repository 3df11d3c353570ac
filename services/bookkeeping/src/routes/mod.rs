//! HTTP routes: the API (contracts/openapi/bookkeeping.yaml) and the routes
//! Dapr delivers subscribed events to.

mod events;

use axum::Router;
use axum::routing::{get, post};
use sqlx::PgPool;

#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) pool: PgPool,
    pub(crate) lock_timeout_ms: u64,
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        // Subscriptions are declarative (dapr-config/subscriptions/); an empty
        // programmatic list keeps daprd from logging a 404 at start-up.
        .route(
            "/dapr/subscribe",
            get(|| async { axum::Json(Vec::<()>::new()) }),
        )
        .route("/events/payments", post(events::payments))
        .with_state(state)
}
