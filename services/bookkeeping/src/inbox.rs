//! The inbox: exactly-once effect for at-least-once delivery.
//!
//! Dapr delivers an event at least once (redelivery after RETRY, a crash
//! before the ack, the outbox republishing). Recording `(source, id)` in the
//! same transaction as the event's effect makes the effect happen once: the
//! second delivery finds the row and does nothing. Concurrent deliveries of
//! the same event serialise on the primary key.

use sqlx::PgConnection;

/// The identity and routing facts of a delivered event.
#[derive(Debug, Clone)]
pub struct EventMeta<'a> {
    pub source: &'a str,
    pub id: &'a str,
    pub event_type: &'a str,
    pub topic: &'a str,
    pub subject: Option<&'a str>,
}

/// Claims `event` in the caller's transaction: `true` the first time (apply
/// the effect in the same transaction), `false` if it was already applied.
/// A concurrent claim of the same event waits for the other transaction (at
/// most the transaction's `lock_timeout`).
pub async fn claim(conn: &mut PgConnection, event: &EventMeta<'_>) -> Result<bool, sqlx::Error> {
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
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}
