//! The inbox: exactly-once effect for at-least-once delivery.
//!
//! Dapr delivers an event at least once (redelivery after RETRY, a crash
//! before the ack, the outbox republishing). Recording `(source, id)` in the
//! same transaction as the event's effect makes the effect happen once: the
//! second delivery finds the row and does nothing. Concurrent deliveries of
//! the same event serialise on the primary key.

use sqlx::{PgPool, Postgres, Transaction};

/// The identity and routing facts of a delivered event.
#[derive(Debug, Clone)]
pub struct EventMeta<'a> {
    pub source: &'a str,
    pub id: &'a str,
    pub event_type: &'a str,
    pub topic: &'a str,
    pub subject: Option<&'a str>,
}

/// Outcome of offering an event to the inbox.
#[derive(Debug)]
pub enum Claim<'c> {
    /// First delivery: apply the effect in this transaction, then commit.
    New(Transaction<'c, Postgres>),
    /// Already processed; nothing to do.
    Duplicate,
}

/// Starts a transaction and claims `event` in it. `lock_timeout_ms` bounds how
/// long a concurrent claim of the same event (or a locked table) is waited
/// for; past it the error is returned and the caller asks for redelivery.
pub async fn claim<'c>(
    pool: &'c PgPool,
    event: &EventMeta<'_>,
    lock_timeout_ms: u64,
) -> Result<Claim<'c>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // SET does not take bind parameters; the value is an integer we own.
    sqlx::query(&format!("SET LOCAL lock_timeout = '{lock_timeout_ms}ms'"))
        .execute(&mut *tx)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO inbox (source, event_id, event_type, topic, subject)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (source, event_id) DO NOTHING",
    )
    .bind(event.source)
    .bind(event.id)
    .bind(event.event_type)
    .bind(event.topic)
    .bind(event.subject)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        Ok(Claim::New(tx))
    } else {
        tx.rollback().await?;
        Ok(Claim::Duplicate)
    }
}
