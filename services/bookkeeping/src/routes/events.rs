//! Subscribed event handlers (Dapr pub/sub over HTTP).
//!
//! The `payments` subscription uses bulk delivery (`bulkSubscribe` in
//! dapr-config/subscriptions/bookkeeping-payments.yaml): one request carries
//! up to 100 events, processed in one database transaction with a savepoint
//! per event, so a hot account is locked and the WAL flushed once per batch
//! rather than once per event. A single (non-bulk) delivery is accepted too.
//!
//! Per event the answer is:
//! * SUCCESS: applied, already applied (inbox), or of a type not consumed;
//! * SUCCESS after publishing a `bookkeeping.event.rejected` message with the
//!   reason to the dead-letter topic, for an event that can never be booked;
//! * RETRY: a transient failure (database); Dapr redelivers per Resiliency.
//! * DROP only if the body is not even JSON (Dapr dead-letters it as is).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use platform_dapr::{CloudEvent, TopicResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{Acquire, PgConnection};
use tokio::sync::{mpsc, oneshot};
use tracing::instrument;

use super::AppState;
use crate::inbox::{self, EventMeta};
use crate::ledger::{self, StoreError};
use crate::posting_rules::{self, Booking, Rejection};

/// Must match dapr-config/subscriptions/bookkeeping-payments.yaml.
const PUBSUB: &str = "pubsub";
const PAYMENTS_TOPIC: &str = "payments";
const DEAD_LETTER_TOPIC: &str = "payments.deadletter";
pub(crate) const REJECTED_TYPE: &str = "bookkeeping.event.rejected";

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

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Applied,
    Duplicate,
    Ignored,
    Rejected(String),
    Retry,
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
        let outcomes = handle(&state, events).await;
        let statuses = entries
            .into_iter()
            .zip(outcomes)
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

/// Groups single deliveries that arrive together into one database
/// transaction: while a batch is being booked, the next deliveries queue up
/// and are booked together. Each delivery is still answered only after its
/// batch has committed, so an acknowledged event is durable. At low load a
/// batch is one event and nothing waits.
#[derive(Debug, Clone)]
pub(crate) struct EventBatcher {
    queue: mpsc::Sender<(Value, oneshot::Sender<TopicResponse>)>,
}

impl EventBatcher {
    /// The batcher and the loop to spawn once `state` exists.
    pub(crate) fn new(max_batch: usize) -> (Self, BatchLoop) {
        let (queue, receiver) = mpsc::channel(max_batch * 4);
        (
            Self { queue },
            BatchLoop {
                receiver,
                max_batch,
            },
        )
    }

    async fn submit(&self, event: Value) -> TopicResponse {
        let (answer, answered) = oneshot::channel();
        if self.queue.send((event, answer)).await.is_err() {
            return TopicResponse::Retry;
        }
        answered.await.unwrap_or(TopicResponse::Retry)
    }
}

#[derive(Debug)]
pub(crate) struct BatchLoop {
    receiver: mpsc::Receiver<(Value, oneshot::Sender<TopicResponse>)>,
    max_batch: usize,
}

impl BatchLoop {
    pub(crate) async fn run(mut self, state: AppState) {
        while let Some(first) = self.receiver.recv().await {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match self.receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            metrics::histogram!("event_batch_size").record(batch.len() as f64);
            let (events, answers): (Vec<Value>, Vec<_>) = batch.into_iter().unzip();
            let outcomes = handle(&state, events).await;
            for (answer, outcome) in answers.into_iter().zip(outcomes) {
                let _ = answer.send(outcome);
            }
        }
    }
}

fn is_bulk(body: &Value) -> bool {
    body.get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with(".bulk"))
}

/// Processes a batch of delivered events and returns Dapr's answer for each.
async fn handle(state: &AppState, events: Vec<Value>) -> Vec<TopicResponse> {
    let mut outcomes = book_all(state, &events).await;
    for (outcome, raw) in outcomes.iter_mut().zip(&events) {
        if let Outcome::Rejected(reason) = outcome {
            *outcome = match dead_letter(state, raw, reason).await {
                Ok(()) => Outcome::Rejected(std::mem::take(reason)),
                Err(()) => Outcome::Retry,
            };
        }
    }
    outcomes
        .into_iter()
        .map(|outcome| {
            let (label, response) = match outcome {
                Outcome::Applied => ("applied", TopicResponse::Success),
                Outcome::Duplicate => ("duplicate", TopicResponse::Success),
                Outcome::Ignored => ("ignored", TopicResponse::Success),
                Outcome::Rejected(_) => ("rejected", TopicResponse::Success),
                Outcome::Retry => ("retry", TopicResponse::Retry),
            };
            metrics::counter!("events_handled_total", "topic" => PAYMENTS_TOPIC, "outcome" => label).increment(1);
            response
        })
        .collect()
}

/// Books every event in one transaction, a savepoint each.
async fn book_all(state: &AppState, events: &[Value]) -> Vec<Outcome> {
    let mut outcomes = vec![Outcome::Retry; events.len()];
    let mut tx = match state.pool.begin().await {
        Ok(tx) => tx,
        Err(error) => {
            tracing::warn!(%error, "database unavailable; asking for redelivery");
            return outcomes;
        }
    };
    // set_config(..., true) is SET LOCAL with a bind parameter.
    if let Err(error) = sqlx::query("SELECT set_config('lock_timeout', $1, true)")
        .bind(format!("{}ms", state.lock_timeout_ms))
        .execute(&mut *tx)
        .await
    {
        tracing::warn!(%error, "cannot configure the transaction; asking for redelivery");
        return outcomes;
    }
    for (outcome, raw) in outcomes.iter_mut().zip(events) {
        *outcome = match serde_json::from_value::<CloudEvent<Value>>(raw.clone()) {
            Err(error) => Outcome::Rejected(format!("not a CloudEvent with JSON data: {error}")),
            Ok(event) => book_one(&mut tx, &event).await,
        };
    }
    match tx.commit().await {
        Ok(()) => outcomes,
        Err(error) => {
            tracing::warn!(%error, "commit failed; asking for redelivery of the batch");
            outcomes
                .into_iter()
                .map(|o| {
                    if matches!(o, Outcome::Rejected(_)) {
                        o
                    } else {
                        Outcome::Retry
                    }
                })
                .collect()
        }
    }
}

#[instrument(name = "events.book", skip_all, fields(event.id = %event.id, event.type = %event.event_type))]
async fn book_one(conn: &mut PgConnection, event: &CloudEvent<Value>) -> Outcome {
    if !posting_rules::consumes(&event.event_type) {
        tracing::debug!("ignoring an event type this service does not consume");
        return Outcome::Ignored;
    }
    let booking = match posting_rules::booking_for(
        &event.source,
        &event.id,
        &event.event_type,
        &event.data,
    ) {
        Ok(booking) => booking,
        Err(Rejection(reason)) => return Outcome::Rejected(reason),
    };
    let meta = EventMeta {
        source: &event.source,
        id: &event.id,
        event_type: &event.event_type,
        topic: event.topic.as_deref().unwrap_or(PAYMENTS_TOPIC),
        subject: event.subject.as_deref(),
    };
    let mut savepoint = match conn.begin().await {
        Ok(savepoint) => savepoint,
        Err(error) => {
            tracing::warn!(%error, "cannot open a savepoint");
            return Outcome::Retry;
        }
    };
    let result = apply(&mut savepoint, &meta, booking.as_ref()).await;
    let outcome = match result {
        Ok(true) => Outcome::Applied,
        Ok(false) => Outcome::Duplicate,
        Err(StoreError::Database(error)) => {
            tracing::warn!(%error, "event not applied, asking for redelivery");
            return Outcome::Retry;
        }
        // Invalid against the ledger (bounds, currencies): never bookable.
        Err(error) => return Outcome::Rejected(error.to_string()),
    };
    match savepoint.commit().await {
        Ok(()) => outcome,
        Err(error) => {
            tracing::warn!(%error, "event not applied, asking for redelivery");
            Outcome::Retry
        }
    }
}

/// Claims the event and books it; `false` if it was already applied.
async fn apply(
    conn: &mut PgConnection,
    meta: &EventMeta<'_>,
    booking: Option<&Booking>,
) -> Result<bool, StoreError> {
    if !inbox::claim(conn, meta).await? {
        return Ok(false);
    }
    if let Some(booking) = booking {
        for account in &booking.accounts {
            sqlx::query(
                "INSERT INTO accounts (id, code, name, kind, currency, min_balance)
                 VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (id) DO NOTHING",
            )
            .bind(account.id)
            .bind(&account.code)
            .bind(&account.name)
            .bind(account.kind)
            .bind(&account.currency)
            .execute(&mut *conn)
            .await?;
        }
        ledger::post_in(conn, std::slice::from_ref(&booking.entry), None).await?;
        // Run the deferred balance checks now, inside this event's savepoint,
        // so a bad entry fails alone instead of failing the batch's commit.
        sqlx::query("SET CONSTRAINTS ALL IMMEDIATE")
            .execute(&mut *conn)
            .await?;
        sqlx::query("SET CONSTRAINTS ALL DEFERRED")
            .execute(&mut *conn)
            .await?;
    }
    Ok(true)
}

/// Publishes the event with the reason it can never be booked.
async fn dead_letter(state: &AppState, raw: &Value, reason: &str) -> Result<(), ()> {
    tracing::warn!(reason, "rejecting an event to the dead-letter topic");
    let data = json!({ "reason": reason, "topic": PAYMENTS_TOPIC, "rejected_by": "bookkeeping", "event": raw });
    let metadata = HashMap::from([("cloudevent.type".to_owned(), REJECTED_TYPE.to_owned())]);
    let body = serde_json::to_vec(&data).map_err(|_| ())?;
    state.sidecar.publish_json(PUBSUB, DEAD_LETTER_TOPIC, body, metadata).await.map_err(|error| {
        tracing::warn!(%error, "cannot publish to the dead-letter topic; asking for redelivery");
    })
}
