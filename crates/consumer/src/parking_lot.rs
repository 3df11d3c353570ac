//! The parking lot of dead letters (docs/adr/0029): where a consumer keeps
//! the events that reached a dead-letter topic, until they are applied.
//!
//! A consumer subscribes to the dead-letter topics of its own subscriptions
//! (`<topic>.deadletter`, dapr-config/subscriptions/) and hands each delivery
//! to [`ParkingLot::receive`], which stores it in the consumer's own
//! `parked_letters` table ([`MIGRATION`], copied into a migration of the
//! service like the inbox's; [`check_table`] in its tests):
//!
//! * an event the sidecar forwarded as it was, because its inbound retries
//!   ran out, is parked as **transient** (its cause was the database or the
//!   sidecar being unavailable: an event that can never be applied is
//!   rejected by the consumer with a reason instead);
//! * a [`crate::DeadLetter`] of this consumer (`<consumer>.event.rejected`)
//!   is parked as **poison**, with its reason; letters of other consumers
//!   on a shared dead-letter topic are not this consumer's business;
//! * a forwarded event already in the consumer's inbox (applied after all)
//!   is not parked.
//!
//! Transient letters are re-driven by [`ParkingLot::redrive_due`] (a
//! background job) with exponential back-off; poison letters stay until an
//! operator re-drives them ([`admin`]). A re-drive applies the event
//! through the consumer's [`Redrive`] implementation, which is the same
//! handler path as a live delivery, inbox claim included, so an event
//! re-driven twice, or delivered late on its topic, still has one effect.

pub mod admin;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::table::TableError;
use crate::{Outcome, TopicResponse};

/// The `parked_letters` table: the SQL for a consumer's migration.
pub const MIGRATION: &str = include_str!("../sql/parked_letters.sql");

/// Compares the `parked_letters` table the connection sees with the one
/// [`MIGRATION`] creates (as [`crate::inbox::check_table`] does).
pub async fn check_table(conn: &mut PgConnection) -> Result<(), TableError> {
    crate::table::check(conn, "parked_letters", MIGRATION).await
}

/// How a consumer applies a parked event: through the same handler as a
/// live delivery of `event` on `topic` (claiming it in the inbox in the
/// same transaction as its effect), answering what it came to. It must not
/// dead-letter a rejected event itself: the parking lot records the reason.
pub trait Redrive: Send + Sync + 'static {
    fn apply(&self, topic: &str, event: &Value) -> impl Future<Output = Outcome> + Send;

    /// Whether the consumer acts on events of `event_type` at all. A
    /// forwarded event of a type it ignores (dead-lettered because another
    /// consumer of the shared topic failed) is not parked.
    fn consumes(&self, event_type: &str) -> bool {
        let _ = event_type;
        true
    }
}

/// Why a letter is parked, which decides who re-drives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// Database or sidecar unavailable: re-driven automatically.
    Transient,
    /// Rejected or invalid: parked until an operator acts.
    Poison,
}

impl Classification {
    fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Poison => "poison",
        }
    }
}

/// One parked letter, as stored and as the operator API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ParkedLetter {
    pub id: i64,
    pub source: String,
    pub event_id: String,
    pub topic: String,
    pub event_type: String,
    #[sqlx(json)]
    pub event: Value,
    pub reason: String,
    pub classification: String,
    pub status: String,
    pub attempts: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub first_failed_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_failed_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_redrive_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub redriven_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "id, source, event_id, topic, event_type, event, reason, classification, \
     status, attempts, first_failed_at, last_failed_at, next_redrive_at, redriven_at";

/// A letter as it arrived on a dead-letter topic, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    pub source: String,
    pub event_id: String,
    pub topic: String,
    pub event_type: String,
    pub event: Value,
    pub reason: String,
    pub classification: Classification,
}

impl Arrival {
    /// What `consumer` parks of `body`, delivered from `dead_letter_topic`:
    /// `Ok(None)` for another consumer's rejection; `Err` for a body that
    /// names no event (nothing could ever apply it).
    pub fn of_delivery(
        consumer: &str,
        dead_letter_topic: &str,
        body: &Value,
    ) -> Result<Option<Self>, String> {
        let kind = body["type"].as_str().unwrap_or_default();
        let (event, topic, reason, classification) = if kind.ends_with(".event.rejected") {
            let data = &body["data"];
            if kind != format!("{consumer}.event.rejected")
                || data["rejected_by"].as_str() != Some(consumer)
            {
                return Ok(None);
            }
            let topic = data["topic"].as_str().ok_or("a rejection without topic")?;
            let reason = data["reason"]
                .as_str()
                .unwrap_or("rejected without a reason");
            (
                data["event"].clone(),
                topic.to_owned(),
                format!("rejected: {reason}"),
                Classification::Poison,
            )
        } else {
            let topic = dead_letter_topic
                .strip_suffix(".deadletter")
                .unwrap_or(dead_letter_topic);
            (
                body.clone(),
                topic.to_owned(),
                format!(
                    "the sidecar's delivery retries ran out (database or sidecar unavailable); \
                     forwarded to {dead_letter_topic}"
                ),
                Classification::Transient,
            )
        };
        let field = |name: &str| {
            event[name]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("the dead letter's event has no {name}"))
        };
        Ok(Some(Self {
            source: field("source")?,
            event_id: field("id")?,
            event_type: field("type")?,
            topic,
            event,
            reason,
            classification,
        }))
    }
}

/// How often and how far apart transient letters are re-driven.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The wait after the first failed re-drive; doubled after each.
    pub initial: Duration,
    /// The longest wait between two re-drives.
    pub max: Duration,
    /// How long a re-drive holds its letter before another may take it (a
    /// re-drive cut by a crash is tried again after this).
    pub lease: Duration,
}

/// A consumer's `[parking_lot]` settings section.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ParkingLotSettings {
    /// How often the re-drive job looks for due transient letters.
    pub redrive_interval_ms: u64,
    /// [`Backoff::initial`], in milliseconds.
    pub backoff_initial_ms: u64,
    /// [`Backoff::max`], in milliseconds.
    pub backoff_max_ms: u64,
    /// [`Backoff::lease`], in milliseconds.
    pub lease_ms: u64,
}

impl ParkingLotSettings {
    pub fn redrive_interval(&self) -> Duration {
        Duration::from_millis(self.redrive_interval_ms)
    }

    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial: Duration::from_millis(self.backoff_initial_ms),
            max: Duration::from_millis(self.backoff_max_ms),
            lease: Duration::from_millis(self.lease_ms),
        }
    }

    /// Every interval > 0, the first wait no longer than the longest.
    pub fn validate(&self) -> Result<(), platform_settings::SettingsError> {
        let all_positive = [
            self.redrive_interval_ms,
            self.backoff_initial_ms,
            self.backoff_max_ms,
            self.lease_ms,
        ]
        .iter()
        .all(|ms| *ms > 0);
        if !all_positive || self.backoff_initial_ms > self.backoff_max_ms {
            return Err(platform_settings::SettingsError::Invalid(
                "parking_lot: every interval must be > 0 and backoff_initial_ms <= backoff_max_ms"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// What a re-drive came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Settled {
    /// Applied now, or found applied (or of a type not consumed): done.
    Redriven,
    /// Failed again transiently: parked, re-driven after the back-off.
    StillTransient,
    /// Rejected: parked as poison.
    Poison,
}

/// A consumer's parking lot: its table and the handler that re-drives.
pub struct ParkingLot<R> {
    consumer: &'static str,
    pool: PgPool,
    handler: Arc<R>,
    backoff: Backoff,
}

impl<R> Clone for ParkingLot<R> {
    fn clone(&self) -> Self {
        Self {
            consumer: self.consumer,
            pool: self.pool.clone(),
            handler: Arc::clone(&self.handler),
            backoff: self.backoff,
        }
    }
}

impl<R> std::fmt::Debug for ParkingLot<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkingLot")
            .field("consumer", &self.consumer)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl<R: Redrive> ParkingLot<R> {
    pub fn new(consumer: &'static str, pool: PgPool, handler: R, backoff: Backoff) -> Self {
        Self {
            consumer,
            pool,
            handler: Arc::new(handler),
            backoff,
        }
    }

    /// Handles one delivery from `dead_letter_topic`: parks it and answers
    /// SUCCESS, or RETRY when the database is unavailable. The dead-letter
    /// subscription names its own topic as its dead-letter topic, so a
    /// letter whose retries run out during a long outage is published
    /// there again rather than dropped (docs/adr/0029).
    pub async fn receive(&self, dead_letter_topic: &str, body: &Value) -> TopicResponse {
        let arrival = match Arrival::of_delivery(self.consumer, dead_letter_topic, body) {
            Ok(Some(arrival)) => arrival,
            Ok(None) => return TopicResponse::Success,
            Err(reason) => {
                tracing::warn!(%reason, dead_letter_topic, "a dead letter that names no event; not parked");
                return TopicResponse::Success;
            }
        };
        if arrival.classification == Classification::Transient
            && !self.handler.consumes(&arrival.event_type)
        {
            return TopicResponse::Success;
        }
        match self.park(&arrival).await {
            Ok(parked) => {
                if parked {
                    tracing::warn!(
                        source = arrival.source,
                        event.id = arrival.event_id,
                        classification = arrival.classification.as_str(),
                        reason = arrival.reason,
                        "dead letter parked"
                    );
                    metrics::counter!(PARKED, "classification" => arrival.classification.as_str())
                        .increment(1);
                }
                TopicResponse::Success
            }
            Err(error) => {
                tracing::warn!(%error, "cannot park a dead letter; asking for redelivery");
                TopicResponse::Retry
            }
        }
    }

    /// Stores `arrival`, or counts one more failure of the letter already
    /// parked for the same event; `false` when a transient letter's event
    /// is in the inbox (applied after all) and nothing was parked. (A
    /// poison letter is always parked: a consumer may claim the events it
    /// rejects, so that the rejection is published once.)
    pub async fn park(&self, arrival: &Arrival) -> Result<bool, sqlx::Error> {
        let parked = sqlx::query(
            "INSERT INTO parked_letters
                    (source, event_id, topic, event_type, event, reason, classification, next_redrive_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, CASE WHEN $7 = 'transient' THEN now() END
              WHERE $7 = 'poison'
                 OR NOT EXISTS (SELECT 1 FROM inbox WHERE source = $1 AND event_id = $2)
             ON CONFLICT (source, event_id, topic) DO UPDATE
                SET attempts = parked_letters.attempts + 1,
                    last_failed_at = now(),
                    reason = EXCLUDED.reason,
                    classification = EXCLUDED.classification,
                    status = 'parked',
                    redriven_at = NULL,
                    next_redrive_at = EXCLUDED.next_redrive_at",
        )
        .bind(&arrival.source)
        .bind(&arrival.event_id)
        .bind(&arrival.topic)
        .bind(&arrival.event_type)
        .bind(&arrival.event)
        .bind(&arrival.reason)
        .bind(arrival.classification.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(parked == 1)
    }

    /// Up to `limit` letters with `id > after`, oldest first, of `status`
    /// (`parked` or `redriven`).
    pub async fn list(
        &self,
        status: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ParkedLetter>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM parked_letters
              WHERE status = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(status)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn get(&self, id: i64) -> Result<Option<ParkedLetter>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM parked_letters WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// The background job's tick: re-drives the transient letters that are
    /// due (taking each with a lease, so that two instances do not re-drive
    /// the same letter at once); how many it took.
    pub async fn redrive_due(&self) -> Result<usize, sqlx::Error> {
        let due: Vec<ParkedLetter> = sqlx::query_as(&format!(
            "UPDATE parked_letters
                SET next_redrive_at = now() + $1 * interval '1 millisecond'
              WHERE id IN (SELECT id FROM parked_letters
                            WHERE status = 'parked' AND next_redrive_at <= now()
                            ORDER BY next_redrive_at LIMIT 100
                            FOR UPDATE SKIP LOCKED)
              RETURNING {COLUMNS}"
        ))
        .bind(millis(self.backoff.lease))
        .fetch_all(&self.pool)
        .await?;
        for letter in &due {
            self.redrive(letter).await?;
        }
        Ok(due.len())
    }

    /// Applies `letter` now (an operator's re-drive, or the job's) and
    /// records what it came to.
    pub async fn redrive(&self, letter: &ParkedLetter) -> Result<Settled, sqlx::Error> {
        let outcome = self.handler.apply(&letter.topic, &letter.event).await;
        let settled = match &outcome {
            Outcome::Applied | Outcome::Duplicate | Outcome::Ignored => {
                sqlx::query(
                    "UPDATE parked_letters
                        SET status = 'redriven', redriven_at = now(), next_redrive_at = NULL
                      WHERE id = $1",
                )
                .bind(letter.id)
                .execute(&self.pool)
                .await?;
                Settled::Redriven
            }
            Outcome::Retry => {
                sqlx::query(
                    "UPDATE parked_letters
                        SET attempts = attempts + 1, last_failed_at = now(),
                            classification = 'transient',
                            reason = 're-drive failed: database or sidecar unavailable',
                            next_redrive_at = now() + least($2::float8,
                                $3::float8 * power(2, least(attempts - 1, 30)))
                                * interval '1 millisecond'
                      WHERE id = $1",
                )
                .bind(letter.id)
                .bind(millis(self.backoff.max) as f64)
                .bind(millis(self.backoff.initial) as f64)
                .execute(&self.pool)
                .await?;
                Settled::StillTransient
            }
            Outcome::Rejected(reason) => {
                sqlx::query(
                    "UPDATE parked_letters
                        SET attempts = attempts + 1, last_failed_at = now(),
                            classification = 'poison', reason = $2, next_redrive_at = NULL
                      WHERE id = $1",
                )
                .bind(letter.id)
                .bind(format!("rejected: {reason}"))
                .execute(&self.pool)
                .await?;
                Settled::Poison
            }
        };
        tracing::info!(
            letter.id = letter.id,
            event.id = letter.event_id,
            outcome = outcome.label(),
            "dead letter re-driven"
        );
        metrics::counter!(REDRIVEN, "outcome" => outcome.label()).increment(1);
        Ok(settled)
    }
}

/// The routes Dapr delivers the dead-letter topics to: one `(path,
/// dead-letter topic)` pair per subscription in dapr-config/subscriptions/.
/// A body that is not JSON is acknowledged (logged): the subscription
/// dead-letters to its own topic, so DROP would only send it round again.
pub fn deliveries<R: Redrive>(lot: ParkingLot<R>, routes: &[(&str, &'static str)]) -> Router {
    let mut router = Router::new();
    for (path, topic) in routes {
        let topic: &'static str = topic;
        router = router.route(
            path,
            post(
                move |State(lot): State<ParkingLot<R>>, body: Bytes| async move {
                    match serde_json::from_slice::<Value>(&body) {
                        Ok(body) => lot.receive(topic, &body).await,
                        Err(error) => {
                            tracing::warn!(%error, topic, "a dead letter that is not JSON; not parked");
                            TopicResponse::Success
                        }
                    }
                },
            ),
        );
    }
    router.with_state(lot)
}

/// Letters parked, labelled `classification`.
pub const PARKED: &str = "dead_letters_parked_total";
/// Re-drives, labelled `outcome` ([`Outcome::label`]).
pub const REDRIVEN: &str = "dead_letters_redriven_total";

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn payment_event() -> Value {
        json!({"specversion": "1.0", "id": "e1", "source": "payments",
               "type": "payments.payment.succeeded", "data": {"amount": 1}})
    }

    #[test]
    fn a_forwarded_event_is_transient_and_keeps_its_topic() {
        let arrival = Arrival::of_delivery("bookkeeping", "payments.deadletter", &payment_event())
            .unwrap()
            .unwrap();
        assert_eq!(arrival.classification, Classification::Transient);
        assert_eq!(arrival.topic, "payments");
        assert_eq!(
            (arrival.source.as_str(), arrival.event_id.as_str()),
            ("payments", "e1")
        );
        assert_eq!(arrival.event, payment_event());
    }

    #[test]
    fn its_own_rejection_is_poison_and_another_consumers_is_not_its_business() {
        let event = payment_event();
        let letter = crate::DeadLetter::new("bookkeeping", "payments", "no amount", &event);
        let body = json!({"type": letter.event_type(), "data": letter.data(), "id": "x", "source": "bookkeeping"});
        let arrival = Arrival::of_delivery("bookkeeping", "payments.deadletter", &body)
            .unwrap()
            .unwrap();
        assert_eq!(arrival.classification, Classification::Poison);
        assert_eq!(arrival.reason, "rejected: no amount");
        assert_eq!(arrival.event, event);
        assert_eq!(
            Arrival::of_delivery("communication", "payments.deadletter", &body).unwrap(),
            None
        );
    }

    #[test]
    fn a_letter_that_names_no_event_is_refused() {
        let body = json!({"type": "x", "source": "payments"});
        assert!(Arrival::of_delivery("bookkeeping", "payments.deadletter", &body).is_err());
    }
}
