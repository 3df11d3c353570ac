//! Subscribed domain events (Dapr pub/sub over HTTP): a delivery is parsed
//! into a CloudEvent and handed to [`crate::events`], which turns it into a
//! notification; its outcome is Dapr's answer. A body that is not a
//! CloudEvent is answered DROP (Dapr dead-letters it as is).

use axum::body::Bytes;
use axum::extract::State;
use platform_consumer::{CloudEvent, TopicResponse};
use serde::Deserialize as _;
use serde_json::Value;

use super::AppState;
use crate::events::EventHandler;

pub(crate) async fn payments(State(state): State<AppState>, body: Bytes) -> TopicResponse {
    deliver(&state, "payments", body).await
}

pub(crate) async fn bookkeeping(State(state): State<AppState>, body: Bytes) -> TopicResponse {
    deliver(&state, "bookkeeping", body).await
}

pub(crate) async fn bookings(State(state): State<AppState>, body: Bytes) -> TopicResponse {
    deliver(&state, "bookings", body).await
}

#[tracing::instrument(name = "events.handle", skip_all, fields(topic, event.id, event.type))]
async fn deliver(state: &AppState, topic: &'static str, body: Bytes) -> TopicResponse {
    let span = tracing::Span::current();
    span.record("topic", topic);
    let Ok(raw) = serde_json::from_slice::<Value>(&body) else {
        tracing::warn!("dropping a delivery whose body is not JSON");
        return TopicResponse::Drop;
    };
    let Ok(event) = CloudEvent::<Value>::deserialize(&raw) else {
        tracing::warn!("dropping a delivery that is not a CloudEvent");
        return TopicResponse::Drop;
    };
    span.record("event.id", event.id.as_str());
    span.record("event.type", event.event_type.as_str());
    let handler = EventHandler {
        pool: &state.pool,
        templates: &state.templates,
        settings: &state.settings,
        relay: &state.relay,
    };
    handler.handle(topic, &event, &raw).await.respond(topic)
}
