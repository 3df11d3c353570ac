//! The send job of a notification: put in the outbox for the queue, claimed
//! by the worker before the binding is called, then sent, released for a
//! retry or failed (and dead-lettered); lost or stale jobs are queued again.

use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use super::outbox::{self, OutboxMessage};
use crate::domain::Channel;
use crate::templates::Content;

/// The pub/sub component and topic of send jobs (components/local/communication-queue.yaml).
pub const QUEUE_PUBSUB: &str = "communication-queue";
pub const SEND_TOPIC: &str = "communication.sends";
pub const SEND_DEAD_LETTER_TOPIC: &str = "communication.sends.deadletter";
pub const SEND_JOB_TYPE: &str = "communication.send.requested";
pub const SEND_FAILED_TYPE: &str = "communication.send.failed";

/// Puts a send job for each of `ids` in the outbox, in one statement.
pub async fn enqueue_sends(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (pubsub, topic, event_id, event_type, subject, payload)
         SELECT $1, $2, 'send-' || id::text || '-' || gen_random_uuid()::text, $4, id::text,
                jsonb_strip_nulls(jsonb_build_object('notification_id', id, 'traceparent', $5::text))
           FROM UNNEST($3::uuid[]) AS id",
    )
    .bind(QUEUE_PUBSUB)
    .bind(SEND_TOPIC)
    .bind(ids)
    .bind(SEND_JOB_TYPE)
    // The trace the sends continue (the relay puts it on each job's CloudEvent).
    .bind(platform_telemetry::current_traceparent())
    .execute(conn)
    .await?;
    Ok(())
}

/// A claimed send: everything the worker needs.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: Uuid,
    pub channel: Channel,
    pub address: String,
    pub content: Content,
    pub attempts: i32,
}

/// Why a send job was not claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotClaimed {
    /// No such notification.
    Unknown,
    /// Already sent, failed or not to be sent.
    Done,
    /// Another worker holds it (or a crashed one did: the sweeper decides).
    InFlight,
}

/// Claims the send: `queued`/`sending` and not in flight → `sending`, in
/// flight, one more attempt. Committed before the binding is called, so a
/// crash during the call leaves the row in flight (outcome unknown).
pub async fn claim(pool: &PgPool, id: Uuid) -> Result<Result<Claim, NotClaimed>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE notifications
            SET status = 'sending', in_flight = true, attempts = attempts + 1, claimed_at = now()
          WHERE id = $1 AND status IN ('queued', 'sending') AND NOT in_flight
          RETURNING channel, address, content, attempts",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    if let Some(row) = row {
        let channel: String = row.get("channel");
        let content: Value = row.get("content");
        return Ok(Ok(Claim {
            id,
            channel: Channel::parse(&channel).unwrap_or(Channel::Email),
            address: row.get::<Option<String>, _>("address").unwrap_or_default(),
            content: serde_json::from_value(content).unwrap_or_default(),
            attempts: row.get("attempts"),
        }));
    }
    let state: Option<(String, bool)> =
        sqlx::query_as("SELECT status, in_flight FROM notifications WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(Err(match state {
        None => NotClaimed::Unknown,
        Some((_, true)) => NotClaimed::InFlight,
        Some(_) => NotClaimed::Done,
    }))
}

pub async fn mark_sent(
    pool: &PgPool,
    id: Uuid,
    provider: &str,
    message_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications
            SET status = 'sent', in_flight = false, provider = $2, provider_message_id = $3,
                status_reason = NULL
          WHERE id = $1 AND status = 'sending'",
    )
    .bind(id)
    .bind(provider)
    .bind(message_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// A retriable failure: released for the next attempt, still `sending`.
pub async fn release_for_retry(pool: &PgPool, id: Uuid, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications SET in_flight = false, last_error = $2
          WHERE id = $1 AND status = 'sending'",
    )
    .bind(id)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// Fails the notification and dead-letters its send job with the reason,
/// in one transaction. `false` if it had already reached an end state.
pub async fn fail(pool: &PgPool, id: Uuid, reason: &str) -> Result<bool, sqlx::Error> {
    let mut tx = platform_db::begin(pool).await?;
    let failed = fail_in(&mut tx, id, reason).await?;
    if failed {
        tx.commit().await?;
    }
    Ok(failed)
}

/// `fail` in the caller's transaction.
async fn fail_in(conn: &mut PgConnection, id: Uuid, reason: &str) -> Result<bool, sqlx::Error> {
    let failed = sqlx::query(
        "UPDATE notifications
            SET status = 'failed', in_flight = false, status_reason = $2,
                last_error = coalesce(last_error, $2)
          WHERE id = $1 AND status IN ('queued', 'sending')
          RETURNING recipient_id, channel, attempts",
    )
    .bind(id)
    .bind(reason)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = failed else {
        return Ok(false);
    };
    let payload = json!({
        "notification_id": id,
        "recipient_id": row.get::<String, _>("recipient_id"),
        "channel": row.get::<String, _>("channel"),
        "attempts": row.get::<i32, _>("attempts"),
        "reason": reason,
    });
    let subject = id.to_string();
    outbox::add(
        conn,
        OutboxMessage {
            pubsub: QUEUE_PUBSUB,
            topic: SEND_DEAD_LETTER_TOPIC,
            event_id: &format!("send-failed-{subject}"),
            event_type: SEND_FAILED_TYPE,
            subject: Some(&subject),
            payload: &payload,
        },
    )
    .await?;
    Ok(true)
}

/// What became of a retriable failure at the end of a round of attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// Released, still `sending`: the sweeper queues it again once idle for
    /// `requeue_after_secs`.
    Deferred,
    /// Older than `give_up_after_secs`: failed and dead-lettered.
    Failed,
    AlreadyDone,
}

/// The last attempt of a round failed retriably: the notification is
/// deferred (released, left to the sweeper) while younger than
/// `give_up_after_secs`, else failed. A provider that is down for longer
/// than one round of Dapr's back-off (an SMTP relay refusing sessions for a
/// minute) must not lose the notifications sent meanwhile.
pub async fn defer_or_fail(
    pool: &PgPool,
    id: Uuid,
    reason: &str,
    attempts: i32,
    give_up_after_secs: i64,
) -> Result<Exhausted, sqlx::Error> {
    let deferred = sqlx::query(
        "UPDATE notifications SET in_flight = false, last_error = $2
          WHERE id = $1 AND status = 'sending'
            AND created_at > now() - make_interval(secs => $3)",
    )
    .bind(id)
    .bind(reason)
    .bind(give_up_after_secs as f64)
    .execute(pool)
    .await?
    .rows_affected()
        > 0;
    if deferred {
        return Ok(Exhausted::Deferred);
    }
    let reason = format!("gave up after {attempts} attempts: {reason}");
    Ok(if fail(pool, id, &reason).await? {
        Exhausted::Failed
    } else {
        Exhausted::AlreadyDone
    })
}

/// What became of a job Dapr dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLettered {
    Requeued,
    /// Out of attempts but younger than `give_up_after_secs`: left to the
    /// sweeper, as [`Exhausted::Deferred`].
    Deferred,
    Failed,
    AlreadyDone,
}

/// For a job Dapr dead-lettered: queue it again while the notification has
/// attempts left and is not in flight; out of attempts, leave it to the
/// sweeper while younger than `give_up_after_secs`, else fail it.
pub async fn requeue_or_fail(
    pool: &PgPool,
    id: Uuid,
    max_attempts: i32,
    give_up_after_secs: i64,
) -> Result<DeadLettered, sqlx::Error> {
    let mut tx = platform_db::begin(pool).await?;
    let row: Option<(String, i32, bool, bool)> = sqlx::query_as(
        "SELECT status, attempts, in_flight,
                created_at > now() - make_interval(secs => $2)
           FROM notifications WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .bind(give_up_after_secs as f64)
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match row {
        Some((status, attempts, in_flight, young))
            if (status == "queued" || status == "sending") && !in_flight =>
        {
            // Under the row lock: nothing claims it between the check and
            // the requeue or the failure.
            if attempts < max_attempts {
                enqueue_sends(&mut tx, &[id]).await?;
                DeadLettered::Requeued
            } else if young {
                DeadLettered::Deferred
            } else {
                fail_in(&mut tx, id, "retries exhausted").await?;
                DeadLettered::Failed
            }
        }
        _ => return Ok(DeadLettered::AlreadyDone),
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Claims older than `stale_after_secs` without an outcome (a crash during
/// the send): released and queued again (at-least-once, docs/adr/0021).
/// Also re-queues pending notifications idle for `requeue_after_secs`
/// (their job message was lost). Returns how many were queued again.
pub async fn requeue_stale(
    pool: &PgPool,
    stale_after_secs: i64,
    requeue_after_secs: i64,
) -> Result<usize, sqlx::Error> {
    let mut tx = platform_db::begin(pool).await?;
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE notifications
            SET in_flight = false,
                last_error = CASE WHEN in_flight THEN 'outcome unknown: the send was interrupted'
                                  ELSE last_error END
          WHERE id IN (
                SELECT id FROM notifications
                 WHERE (in_flight AND claimed_at < now() - make_interval(secs => $1))
                    OR (status IN ('queued', 'sending') AND NOT in_flight
                        AND updated_at < now() - make_interval(secs => $2))
                 ORDER BY updated_at LIMIT 500
                 FOR UPDATE SKIP LOCKED)
          RETURNING id",
    )
    .bind(stale_after_secs as f64)
    .bind(requeue_after_secs as f64)
    .fetch_all(&mut *tx)
    .await?;
    if !ids.is_empty() {
        enqueue_sends(&mut tx, &ids).await?;
    }
    tx.commit().await?;
    Ok(ids.len())
}
