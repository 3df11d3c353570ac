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

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use platform_consumer::{CloudEvent, TopicResponse};
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

/// An event that passed parsing and the posting rules.
struct Prepared {
    index: usize,
    event: CloudEvent<Value>,
    booking: Option<Booking>,
}

/// Books every event in one transaction: first all together in a handful of
/// set-based statements; if anything in the batch fails, event by event with
/// a savepoint each, so one bad event cannot take the others down.
async fn book_all(state: &AppState, events: &[Value]) -> Vec<Outcome> {
    let mut outcomes = vec![Outcome::Retry; events.len()];
    let mut prepared = Vec::with_capacity(events.len());
    for (index, raw) in events.iter().enumerate() {
        let event = match CloudEvent::<Value>::deserialize(raw) {
            Ok(event) => event,
            Err(error) => {
                outcomes[index] =
                    Outcome::Rejected(format!("not a CloudEvent with JSON data: {error}"));
                continue;
            }
        };
        if !posting_rules::consumes(&event.event_type) {
            outcomes[index] = Outcome::Ignored;
            continue;
        }
        match posting_rules::booking_for(&event.source, &event.id, &event.event_type, &event.data) {
            Ok(booking) => prepared.push(Prepared {
                index,
                event,
                booking,
            }),
            Err(Rejection(reason)) => outcomes[index] = Outcome::Rejected(reason),
        }
    }
    if prepared.is_empty() {
        return outcomes;
    }
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
    match book_together(&mut tx, &prepared).await {
        Ok(applied) => {
            for (p, applied) in prepared.iter().zip(applied) {
                outcomes[p.index] = if applied {
                    Outcome::Applied
                } else {
                    Outcome::Duplicate
                };
            }
        }
        Err(error) => {
            tracing::debug!(%error, events = prepared.len(), "batch failed as a whole; booking event by event");
            for p in &prepared {
                outcomes[p.index] = book_one(&mut tx, p).await;
            }
        }
    }
    match tx.commit().await {
        Ok(()) => outcomes,
        Err(error) => {
            tracing::warn!(%error, "commit failed; asking for redelivery of the batch");
            outcomes
                .into_iter()
                .map(|o| {
                    if matches!(o, Outcome::Rejected(_) | Outcome::Ignored) {
                        o
                    } else {
                        Outcome::Retry
                    }
                })
                .collect()
        }
    }
}

/// The fast path, all or nothing (inside a savepoint): one inbox insert for
/// the batch, one upsert of the accounts it needs, one ledger post. Returns,
/// per event, whether it was applied (`false`: already in the inbox, or a
/// repeat within the batch).
async fn book_together(
    conn: &mut PgConnection,
    prepared: &[Prepared],
) -> Result<Vec<bool>, StoreError> {
    let mut savepoint = conn.begin().await?;
    let column = |f: fn(&Prepared) -> Option<&str>| prepared.iter().map(f).collect::<Vec<_>>();
    let claimed: HashSet<(String, String)> = sqlx::query_as(
        "INSERT INTO inbox (source, event_id, event_type, topic, subject)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
         ON CONFLICT (source, event_id) DO NOTHING
         RETURNING source, event_id",
    )
    .bind(column(|p| Some(p.event.source.as_str())))
    .bind(column(|p| Some(p.event.id.as_str())))
    .bind(column(|p| Some(p.event.event_type.as_str())))
    .bind(column(|p| {
        Some(p.event.topic.as_deref().unwrap_or(PAYMENTS_TOPIC))
    }))
    .bind(column(|p| p.event.subject.as_deref()))
    .fetch_all(&mut *savepoint)
    .await?
    .into_iter()
    .collect();

    let mut seen = HashSet::new();
    let mut applied = Vec::with_capacity(prepared.len());
    let mut drafts = Vec::new();
    let mut accounts = BTreeMap::new();
    for p in prepared {
        let key = (p.event.source.clone(), p.event.id.clone());
        let first = claimed.contains(&key) && seen.insert(key);
        applied.push(first);
        if let (true, Some(booking)) = (first, &p.booking) {
            for account in &booking.accounts {
                accounts.insert(account.id, account);
            }
            drafts.push(booking.entry.clone());
        }
    }
    if !accounts.is_empty() {
        ensure_accounts(&mut savepoint, accounts.values().copied()).await?;
    }
    if !drafts.is_empty() {
        ledger::post_in(&mut savepoint, &drafts, None).await?;
        sqlx::query("SET CONSTRAINTS ALL IMMEDIATE")
            .execute(&mut *savepoint)
            .await?;
        sqlx::query("SET CONSTRAINTS ALL DEFERRED")
            .execute(&mut *savepoint)
            .await?;
    }
    savepoint.commit().await?;
    Ok(applied)
}

/// Creates the system accounts a booking needs, if they are not there yet.
async fn ensure_accounts<'a>(
    conn: &mut PgConnection,
    accounts: impl Iterator<Item = &'a posting_rules::SystemAccount>,
) -> Result<(), StoreError> {
    let accounts: Vec<_> = accounts.collect();
    sqlx::query(
        "INSERT INTO accounts (id, code, name, kind, currency, min_balance)
         SELECT id, code, name, kind, currency, NULL
           FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::account_kind[], $5::text[])
                AS a(id, code, name, kind, currency)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(accounts.iter().map(|a| a.id).collect::<Vec<_>>())
    .bind(accounts.iter().map(|a| a.code.as_str()).collect::<Vec<_>>())
    .bind(accounts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>())
    .bind(accounts.iter().map(|a| a.kind).collect::<Vec<_>>())
    .bind(
        accounts
            .iter()
            .map(|a| a.currency.as_str())
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The slow path for one event, in its own savepoint.
#[instrument(name = "events.book", skip_all, fields(event.id = %p.event.id, event.type = %p.event.event_type))]
async fn book_one(conn: &mut PgConnection, p: &Prepared) -> Outcome {
    let event = &p.event;
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
    let outcome = match apply(&mut savepoint, &meta, p.booking.as_ref()).await {
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
        ensure_accounts(conn, booking.accounts.iter()).await?;
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
