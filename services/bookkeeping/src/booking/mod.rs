//! Booking consumed events into the ledger (docs/adr/0008,
//! docs/chart-of-accounts.md): what the `payments` subscription delivers
//! becomes journal entries, each event exactly once.
//!
//! Events come in batches (a bulk delivery, or single deliveries gathered by
//! the [`EventBatcher`]) and are booked in one database transaction with a
//! savepoint per event when needed, so a hot account is locked and the WAL
//! flushed once per batch rather than once per event.
//!
//! Per event the answer is:
//! * SUCCESS: applied, already applied (inbox), or of a type not consumed;
//! * SUCCESS after publishing a `bookkeeping.event.rejected` message with the
//!   reason to the dead-letter topic, for an event that can never be booked;
//! * RETRY: a transient failure (database, sidecar); Dapr redelivers per
//!   Resiliency.

mod batch;
mod post;

use platform_consumer::{CloudEvent, DeadLetter, Outcome, TopicResponse};
use platform_dapr::Sidecar;
use serde::Deserialize as _;
use serde_json::Value;
use sqlx::PgPool;

pub use batch::{BatchLoop, EventBatcher};

use crate::posting_rules::{self, Booking, Rejection};
use crate::startup::SERVICE;

/// Must match dapr-config/subscriptions/bookkeeping-payments.yaml.
const PUBSUB: &str = "pubsub";
const PAYMENTS_TOPIC: &str = "payments";

/// Books batches of delivered events. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Bookkeeper {
    pool: PgPool,
    sidecar: Sidecar,
    /// How long a booking waits for a row lock (a hot account, a concurrent
    /// delivery of the same event) before asking for redelivery.
    lock_timeout_ms: u64,
}

/// An event that passed parsing and the posting rules.
struct Prepared {
    index: usize,
    event: CloudEvent<Value>,
    booking: Option<Booking>,
}

impl Bookkeeper {
    pub fn new(pool: PgPool, sidecar: Sidecar, lock_timeout_ms: u64) -> Self {
        Self {
            pool,
            sidecar,
            lock_timeout_ms,
        }
    }

    /// Books `events` (each the JSON body of one delivery) and returns
    /// Dapr's answer for each, in order; dead-letters those that can never
    /// be booked and counts every outcome.
    pub async fn book(&self, events: Vec<Value>) -> Vec<TopicResponse> {
        let mut outcomes = self.book_all(&events).await;
        for (outcome, raw) in outcomes.iter_mut().zip(&events) {
            if let Outcome::Rejected(reason) = outcome {
                let letter = DeadLetter::new(SERVICE, PAYMENTS_TOPIC, reason, raw);
                if letter.publish(&self.sidecar, PUBSUB).await.is_err() {
                    *outcome = Outcome::Retry;
                }
            }
        }
        outcomes
            .iter()
            .map(|outcome| outcome.respond(PAYMENTS_TOPIC))
            .collect()
    }

    /// Books one event as a delivery of it would be booked, without
    /// dead-lettering a rejection: the parking lot's re-drive (a parked
    /// event's rejection is recorded with the letter).
    pub async fn apply(&self, event: &Value) -> Outcome {
        self.book_all(std::slice::from_ref(event))
            .await
            .pop()
            .unwrap_or(Outcome::Retry)
    }

    /// Books every event in one transaction: first all together in a
    /// handful of set-based statements; if anything in the batch fails,
    /// event by event with a savepoint each, so one bad event cannot take
    /// the others down.
    async fn book_all(&self, events: &[Value]) -> Vec<Outcome> {
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
            match posting_rules::booking_for(
                &event.source,
                &event.id,
                &event.event_type,
                &event.data,
            ) {
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
        let mut tx = match platform_db::begin(&self.pool).await {
            Ok(tx) => tx,
            Err(error) => {
                tracing::warn!(%error, "database unavailable; asking for redelivery");
                return outcomes;
            }
        };
        // set_config(..., true) is SET LOCAL with a bind parameter.
        if let Err(error) = sqlx::query("SELECT set_config('lock_timeout', $1, true)")
            .bind(format!("{}ms", self.lock_timeout_ms))
            .execute(&mut *tx)
            .await
        {
            tracing::warn!(%error, "cannot configure the transaction; asking for redelivery");
            return outcomes;
        }
        match post::book_together(&mut tx, &prepared).await {
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
                    outcomes[p.index] = post::book_one(&mut tx, p).await;
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
}

impl platform_consumer::parking_lot::Redrive for Bookkeeper {
    /// Every event bookkeeping parks came from `payments`.
    async fn apply(&self, _topic: &str, event: &Value) -> Outcome {
        Bookkeeper::apply(self, event).await
    }

    fn consumes(&self, event_type: &str) -> bool {
        posting_rules::consumes(event_type)
    }
}

impl Prepared {
    /// Its inbox entry; the topic is the envelope's (Dapr sets it) or the
    /// one this service subscribes to.
    fn inbox_entry(&self) -> platform_consumer::inbox::Entry<'_> {
        let topic = self.event.topic.as_deref().unwrap_or(PAYMENTS_TOPIC);
        platform_consumer::inbox::Entry::of(&self.event, topic)
    }
}
