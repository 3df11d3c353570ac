//! Subscribed events (Dapr pub/sub over HTTP, declarative subscriptions in
//! dapr-config/subscriptions/bookings-*.yaml): payments' outcomes drive the
//! saga; bookings' own offering events invalidate the catalogue cache.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use platform_consumer::{CloudEvent, Outcome, TopicResponse};
use serde_json::Value;
use tracing::instrument;

use super::AppState;
use crate::saga::{Applied, PAYMENTS_TOPIC};

fn parse(body: &[u8]) -> Option<CloudEvent<Value>> {
    serde_json::from_slice(body).ok()
}

#[instrument(name = "events.payments", skip_all, fields(event.id, event.type))]
pub(super) async fn payments(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let Some(event) = parse(&body) else {
        tracing::warn!("dropping a delivery that is not a CloudEvent");
        return TopicResponse::Drop.into_response();
    };
    tracing::Span::current()
        .record("event.id", event.id.as_str())
        .record("event.type", event.event_type.as_str());
    let outcome = match state.saga.on_payment_event(&event).await {
        Ok(Applied::Moved(_)) => Outcome::Applied,
        Ok(Applied::Unchanged) => Outcome::Duplicate,
        Ok(Applied::NotOurs) => Outcome::Ignored,
        Err(error) => {
            tracing::warn!(%error, "payments event not applied; asking for redelivery");
            Outcome::Retry
        }
    };
    outcome.respond(PAYMENTS_TOPIC).into_response()
}

/// bookings' own topic: an offering changed → a new cache generation.
/// Invalidating twice is harmless, so no inbox is needed.
#[instrument(name = "events.bookings", skip_all)]
pub(super) async fn bookings(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let Some(event) = parse(&body) else {
        return TopicResponse::Drop.into_response();
    };
    let outcome = if !event.event_type.starts_with("bookings.offering.") {
        Outcome::Ignored
    } else if let Err(error) = state.catalogue.invalidate().await {
        tracing::warn!(%error, "catalogue cache not invalidated; asking for redelivery");
        Outcome::Retry
    } else {
        Outcome::Applied
    };
    outcome.respond("bookings").into_response()
}
