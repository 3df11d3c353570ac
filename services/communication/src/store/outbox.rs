//! One message for the outbox relay ([`crate::outbox::Relay`]), written in
//! the caller's transaction so that it is published if and only if that
//! transaction commits. (Send jobs and status events are written set-based
//! by [`super::sends`] and the status trigger.)

use serde_json::Value;
use sqlx::PgConnection;

/// What the relay will publish.
#[derive(Debug, Clone, Copy)]
pub struct OutboxMessage<'a> {
    pub pubsub: &'a str,
    pub topic: &'a str,
    /// The CloudEvent id: stable, so that consumers drop a repeat.
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub subject: Option<&'a str>,
    pub payload: &'a Value,
}

pub async fn add(conn: &mut PgConnection, message: OutboxMessage<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (pubsub, topic, event_id, event_type, subject, payload)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(message.pubsub)
    .bind(message.topic)
    .bind(message.event_id)
    .bind(message.event_type)
    .bind(message.subject)
    .bind(message.payload)
    .execute(conn)
    .await?;
    Ok(())
}
