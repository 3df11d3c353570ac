//! The `outbox` table: bookings' events, written in the transaction of the
//! change they announce and published by the relay
//! ([`crate::jobs::outbox_relay`]). The row's `event_id` is the CloudEvent
//! id, stable across republishing: consumers deduplicate on it.

use serde_json::Value;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

/// Appends one event to `topic`.
pub async fn append(
    conn: &mut PgConnection,
    topic: &str,
    event_type: &str,
    subject: &str,
    payload: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (topic, event_id, event_type, subject, payload)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(topic)
    .bind(Uuid::now_v7().to_string())
    .bind(event_type)
    .bind(subject)
    .bind(payload)
    .execute(conn)
    .await?;
    Ok(())
}

/// One row to publish.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: i64,
    pub topic: String,
    pub event_id: String,
    pub event_type: String,
    pub subject: Option<String>,
    pub payload: Value,
    /// When the transaction wrote it: the CloudEvent `time`.
    pub created_at: time::OffsetDateTime,
}

/// The oldest rows, locked so that replicas share the work.
pub async fn oldest(conn: &mut PgConnection, limit: i64) -> Result<Vec<Message>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, topic, event_id, event_type, subject, payload, created_at FROM outbox
          ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Message {
                id: r.try_get("id")?,
                topic: r.try_get("topic")?,
                event_id: r.try_get("event_id")?,
                event_type: r.try_get("event_type")?,
                subject: r.try_get("subject")?,
                payload: r.try_get("payload")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

pub async fn delete(conn: &mut PgConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Rows not yet published (tests, runbook).
pub async fn backlog(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await?
        .try_get(0)
}
