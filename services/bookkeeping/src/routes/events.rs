//! Subscribed event handlers (Dapr pub/sub over HTTP): the delivery is
//! parsed and handed to the [`Bookkeeper`](crate::booking::Bookkeeper);
//! the booking itself is in [`crate::booking`].
//!
//! The `payments` subscription uses bulk delivery (`bulkSubscribe` in
//! dapr-config/subscriptions/bookkeeping-payments.yaml): one request carries
//! up to 100 events, booked as one batch and answered per entry. A single
//! (non-bulk) delivery is accepted too and booked with the single
//! deliveries arriving at the same time ([`crate::booking::EventBatcher`]).
//! A body that is not even JSON is answered DROP (Dapr dead-letters it as
//! is).

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use platform_consumer::TopicResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::instrument;

use super::AppState;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BulkEntry {
    entry_id: String,
    event: Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryStatus {
    entry_id: String,
    status: TopicResponse,
}

#[derive(Debug, Serialize)]
struct BulkResponse {
    statuses: Vec<EntryStatus>,
}

#[instrument(name = "events.payments", skip_all, fields(events))]
pub(crate) async fn payments(State(state): State<AppState>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        tracing::warn!("dropping a delivery whose body is not JSON");
        return TopicResponse::Drop.into_response();
    };
    if let Some(entries) = body.get("entries").filter(|_| is_bulk(&body)) {
        let entries: Vec<BulkEntry> = match serde_json::from_value(entries.clone()) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(%error, "malformed bulk delivery; asking for redelivery");
                return TopicResponse::Retry.into_response();
            }
        };
        tracing::Span::current().record("events", entries.len());
        let events: Vec<Value> = entries.iter().map(|e| e.event.clone()).collect();
        let answers = state.bookkeeper.book(events).await;
        let statuses = entries
            .into_iter()
            .zip(answers)
            .map(|(entry, status)| EntryStatus {
                entry_id: entry.entry_id,
                status,
            })
            .collect();
        return axum::Json(BulkResponse { statuses }).into_response();
    }
    tracing::Span::current().record("events", 1);
    state.event_batcher.submit(body).await.into_response()
}

fn is_bulk(body: &Value) -> bool {
    body.get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with(".bulk"))
}
