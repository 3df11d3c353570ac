//! The notifications table and everything a notification is decided by:
//! the recipient directory, preferences and throttling windows.

use platform_consumer::inbox;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Channel, Contacts, RecipientId, Status};
use crate::templates::Content;

/// The pub/sub component and topic of send jobs (components/local/communication-queue.yaml).
pub const QUEUE_PUBSUB: &str = "communication-queue";
pub const SEND_TOPIC: &str = "communication.sends";
pub const SEND_DEAD_LETTER_TOPIC: &str = "communication.sends.deadletter";
pub const SEND_JOB_TYPE: &str = "communication.send.requested";
pub const SEND_FAILED_TYPE: &str = "communication.send.failed";

/// A notification ready to be recorded: rendered, its channel chosen.
#[derive(Debug, Clone)]
pub struct Draft {
    pub id: Uuid,
    pub idempotency_key: String,
    pub request_hash: String,
    pub origin: &'static str,
    pub recipient_id: RecipientId,
    pub channel: Channel,
    pub address: Option<String>,
    pub category: String,
    pub template: String,
    pub locale: String,
    pub content: Content,
    /// Bypasses opt-outs and throttling.
    pub critical: bool,
    /// Decided before storing (e.g. no address): recorded as `not_sent`.
    pub not_sent: Option<String>,
}

/// What a throttled trigger turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// API: nothing is stored, the caller gets 429.
    Refuse,
    /// Events: recorded as `not_sent` (an event cannot be refused).
    RecordNotSent,
}

#[derive(Debug)]
pub enum Created {
    New(Notification),
    /// The same idempotency key and request: the first notification.
    Existing(Notification),
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("idempotency key reused with a different request")]
    Conflict,
    #[error("throttled for {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub id: Uuid,
    pub recipient_id: String,
    pub channel: Channel,
    pub category: String,
    pub template: String,
    pub locale: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub attempts: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub content_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(skip)]
    pub request_hash: String,
}

const COLUMNS: &str = "id, recipient_id, channel, category, template, locale, status, status_reason, attempts, \
                       provider, provider_message_id, last_error, content_hash, created_at, updated_at, request_hash";

fn from_row(r: &sqlx::postgres::PgRow) -> Notification {
    let channel: String = r.get("channel");
    let status: String = r.get("status");
    Notification {
        id: r.get("id"),
        recipient_id: r.get("recipient_id"),
        channel: Channel::parse(&channel).unwrap_or(Channel::Email),
        category: r.get("category"),
        template: r.get("template"),
        locale: r.get("locale"),
        status: Status::parse(&status).unwrap_or(Status::Failed),
        status_reason: r.get("status_reason"),
        attempts: r.get("attempts"),
        provider: r.get("provider"),
        provider_message_id: r.get("provider_message_id"),
        last_error: r.get("last_error"),
        content_hash: r.get("content_hash"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        request_hash: r.get("request_hash"),
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<Notification>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(from_row))
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

pub async fn history(pool: &PgPool, id: Uuid) -> Result<Vec<HistoryEntry>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT status, reason, at FROM notification_status_history
          WHERE notification_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| HistoryEntry {
            status: r.get("status"),
            reason: r.get("reason"),
            at: r.get("at"),
        })
        .collect())
}

/// Records `draft` (in the caller's transaction): the first time as
/// `queued` with its send job in the outbox, or `not_sent` when opted out,
/// throttled (events) or undeliverable; the same key again returns the
/// first notification.
pub async fn create(
    conn: &mut PgConnection,
    draft: &Draft,
    throttle: &crate::settings::ThrottleSettings,
    over_limit: OverLimit,
) -> Result<Created, CreateError> {
    // The look-up first keeps a repeated request from counting against the
    // throttle or reading preferences; a draft that does neither (critical,
    // or decided `not_sent`) is checked by the insert's conflict instead, one
    // round trip fewer (same outcome: the first notification or Conflict).
    if (!draft.critical && draft.not_sent.is_none())
        && let Some(existing) = by_key(conn, &draft.idempotency_key).await?
    {
        return same_request(existing, draft);
    }
    let mut not_sent = draft.not_sent.clone();
    if not_sent.is_none() && !draft.critical && opted_out(conn, draft).await? {
        not_sent = Some("opted_out".to_owned());
    }
    if not_sent.is_none()
        && !draft.critical
        && let Some(retry_after_secs) =
            count_against_limit(conn, &draft.recipient_id, throttle).await?
    {
        match over_limit {
            OverLimit::Refuse => return Err(CreateError::Throttled { retry_after_secs }),
            OverLimit::RecordNotSent => not_sent = Some("throttled".to_owned()),
        }
    }
    let status = if not_sent.is_some() {
        Status::NotSent
    } else {
        Status::Queued
    };
    let content = serde_json::to_value(&draft.content).unwrap_or(Value::Null);
    let content_hash = sha256_hex(content.to_string().as_bytes());
    // One round trip: the row and, when queued, its send job (what
    // enqueue_sends writes) in the same statement.
    let row = sqlx::query(&format!(
        "WITH created AS (
           INSERT INTO notifications (id, idempotency_key, request_hash, origin, recipient_id, channel,
                                      address, category, template, locale, content, content_hash,
                                      status, status_reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
           ON CONFLICT (idempotency_key) DO NOTHING
           RETURNING {COLUMNS}
         ), job AS (
           INSERT INTO outbox (pubsub, topic, event_id, event_type, subject, payload)
           SELECT $15, $16, 'send-' || id::text || '-' || gen_random_uuid()::text, $17, id::text,
                  jsonb_build_object('notification_id', id)
             FROM created WHERE status = 'queued'
         )
         SELECT {COLUMNS} FROM created"
    ))
    .bind(draft.id)
    .bind(&draft.idempotency_key)
    .bind(&draft.request_hash)
    .bind(draft.origin)
    .bind(&draft.recipient_id)
    .bind(draft.channel.as_str())
    .bind(&draft.address)
    .bind(&draft.category)
    .bind(&draft.template)
    .bind(&draft.locale)
    .bind(&content)
    .bind(&content_hash)
    .bind(status.as_str())
    .bind(&not_sent)
    .bind(QUEUE_PUBSUB)
    .bind(SEND_TOPIC)
    .bind(SEND_JOB_TYPE)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        // A concurrent request with the same key won the insert.
        let existing = by_key(conn, &draft.idempotency_key)
            .await?
            .ok_or(CreateError::Conflict)?;
        return same_request(existing, draft);
    };
    Ok(Created::New(from_row(&row)))
}

fn same_request(existing: Notification, draft: &Draft) -> Result<Created, CreateError> {
    if existing.request_hash == draft.request_hash {
        Ok(Created::Existing(existing))
    } else {
        Err(CreateError::Conflict)
    }
}

async fn by_key(conn: &mut PgConnection, key: &str) -> Result<Option<Notification>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE idempotency_key = $1"
    ))
    .bind(key)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(from_row))
}

async fn opted_out(conn: &mut PgConnection, draft: &Draft) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query_scalar::<_, bool>(
        "SELECT opted_out FROM preferences WHERE recipient_id = $1 AND category = $2 AND channel = $3",
    )
    .bind(&draft.recipient_id)
    .bind(&draft.category)
    .bind(draft.channel.as_str())
    .fetch_optional(conn)
    .await?
    .unwrap_or(false))
}

/// Counts one notification in the recipient's current window; `Some(secs
/// until the window ends)` if that is over the cap (the count is then not
/// kept: the caller rolls back or records `not_sent`).
async fn count_against_limit(
    conn: &mut PgConnection,
    recipient_id: &RecipientId,
    throttle: &crate::settings::ThrottleSettings,
) -> Result<Option<u64>, sqlx::Error> {
    let row = sqlx::query(
        "WITH w AS (SELECT to_timestamp(floor(extract(epoch FROM now()) / $2) * $2) AS start)
         INSERT INTO throttle_windows (recipient_id, window_start, sent)
         SELECT $1, w.start, 1 FROM w
         ON CONFLICT (recipient_id, window_start)
           DO UPDATE SET sent = throttle_windows.sent + 1
         RETURNING sent,
                   ceil(extract(epoch FROM window_start + make_interval(secs => $2) - now()))::bigint AS remaining",
    )
    .bind(recipient_id)
    .bind(throttle.window_secs as f64)
    .fetch_one(&mut *conn)
    .await?;
    let sent: i32 = row.get("sent");
    if sent <= throttle.max_per_window {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE throttle_windows SET sent = sent - 1
          WHERE recipient_id = $1
            AND window_start = to_timestamp(floor(extract(epoch FROM now()) / $2) * $2)",
    )
    .bind(recipient_id)
    .bind(throttle.window_secs as f64)
    .execute(conn)
    .await?;
    let remaining: i64 = row.get("remaining");
    Ok(Some(remaining.max(1) as u64))
}

/// Puts a send job for each of `ids` in the outbox, in one statement.
pub async fn enqueue_sends(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (pubsub, topic, event_id, event_type, subject, payload)
         SELECT $1, $2, 'send-' || id::text || '-' || gen_random_uuid()::text, $4, id::text,
                jsonb_build_object('notification_id', id)
           FROM UNNEST($3::uuid[]) AS id",
    )
    .bind(QUEUE_PUBSUB)
    .bind(SEND_TOPIC)
    .bind(ids)
    .bind(SEND_JOB_TYPE)
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
    let mut tx = pool.begin().await?;
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
    sqlx::query(
        "INSERT INTO outbox (pubsub, topic, event_id, event_type, subject, payload)
         VALUES ($1, $2, 'send-failed-' || $3::text, $4, $3::text, $5)",
    )
    .bind(QUEUE_PUBSUB)
    .bind(SEND_DEAD_LETTER_TOPIC)
    .bind(id)
    .bind(SEND_FAILED_TYPE)
    .bind(payload)
    .execute(conn)
    .await?;
    Ok(true)
}

/// What became of a job Dapr dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLettered {
    Requeued,
    Failed,
    AlreadyDone,
}

/// For a job Dapr dead-lettered: queue it again while the notification has
/// attempts left and is not in flight, else fail it.
pub async fn requeue_or_fail(
    pool: &PgPool,
    id: Uuid,
    max_attempts: i32,
) -> Result<DeadLettered, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: Option<(String, i32, bool)> = sqlx::query_as(
        "SELECT status, attempts, in_flight FROM notifications WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match row {
        Some((status, attempts, in_flight))
            if (status == "queued" || status == "sending") && !in_flight =>
        {
            // Under the row lock: nothing claims it between the check and
            // the requeue or the failure.
            if attempts < max_attempts {
                enqueue_sends(&mut tx, &[id]).await?;
                DeadLettered::Requeued
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
    let mut tx = pool.begin().await?;
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

/// What a delivery receipt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptApplied {
    /// `sent` → the receipt's status.
    Applied,
    /// This receipt was applied (or ignored) before; the current status.
    Duplicate(Status),
    /// The status is already past `sent` (never regresses); the current status.
    Ignored(Status),
    /// No notification of this id on the receipt's channel.
    Unknown,
    /// Still `queued`/`sending` (the receipt overtook our own bookkeeping):
    /// nothing recorded, the provider retries.
    NotYetSent,
}

/// Applies a provider's delivery receipt: claims it in the inbox (source
/// `provider:<name>`, the receipt id) and moves the notification from
/// `sent` to `target` in one transaction; the status triggers write the
/// history row and the status event.
pub async fn apply_receipt(
    pool: &PgPool,
    id: Uuid,
    channel: Channel,
    source: &str,
    receipt_id: &str,
    target: Status,
    reason: Option<&str>,
) -> Result<ReceiptApplied, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT status, channel FROM notifications WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let current = match row {
        Some((status, row_channel)) if row_channel == channel.as_str() => {
            Status::parse(&status).unwrap_or(Status::Failed)
        }
        _ => return Ok(ReceiptApplied::Unknown),
    };
    if matches!(current, Status::Queued | Status::Sending) {
        return Ok(ReceiptApplied::NotYetSent);
    }
    let receipt = inbox::Entry {
        source,
        id: receipt_id,
        event_type: &format!("provider.receipt.{}", target.as_str()),
        topic: "receipts",
        subject: Some(&id.to_string()),
    };
    if !inbox::claim(&mut tx, &receipt).await? {
        return Ok(ReceiptApplied::Duplicate(current));
    }
    if current != Status::Sent {
        tx.commit().await?;
        return Ok(ReceiptApplied::Ignored(current));
    }
    sqlx::query("UPDATE notifications SET status = $2, status_reason = $3 WHERE id = $1")
        .bind(id)
        .bind(target.as_str())
        .bind(reason)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ReceiptApplied::Applied)
}

// --- recipient directory and preferences ---

pub async fn recipient(pool: &PgPool, id: &RecipientId) -> Result<Option<Contacts>, sqlx::Error> {
    let row = sqlx::query("SELECT email, phone, push_token, locale FROM recipients WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    Ok(Some(Contacts {
        email: r.try_get("email")?,
        phone: r.get("phone"),
        push_token: r.get("push_token"),
        locale: r.get("locale"),
    }))
}

pub async fn put_recipient(
    pool: &PgPool,
    id: &RecipientId,
    contacts: &Contacts,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO recipients (id, email, phone, push_token, locale)
         VALUES ($1, $2, $3, $4, coalesce($5, 'en'))
         ON CONFLICT (id) DO UPDATE
            SET email = $2, phone = $3, push_token = $4, locale = coalesce($5, 'en'), updated_at = now()",
    )
    .bind(id)
    .bind(&contacts.email)
    .bind(&contacts.phone)
    .bind(&contacts.push_token)
    .bind(&contacts.locale)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preference {
    pub category: String,
    pub channel: Channel,
    pub opted_out: bool,
}

pub async fn preferences(
    pool: &PgPool,
    recipient_id: &RecipientId,
) -> Result<Vec<Preference>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT category, channel, opted_out FROM preferences
          WHERE recipient_id = $1 ORDER BY category, channel",
    )
    .bind(recipient_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Preference {
            category: r.get("category"),
            channel: Channel::parse(r.get::<&str, _>("channel")).unwrap_or(Channel::Email),
            opted_out: r.get("opted_out"),
        })
        .collect())
}

/// Replaces the recipient's preferences with `preferences`.
pub async fn put_preferences(
    pool: &PgPool,
    recipient_id: &RecipientId,
    preferences: &[Preference],
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM preferences WHERE recipient_id = $1")
        .bind(recipient_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO preferences (recipient_id, category, channel, opted_out)
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::bool[])",
    )
    .bind(recipient_id)
    .bind(
        preferences
            .iter()
            .map(|p| p.category.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        preferences
            .iter()
            .map(|p| p.channel.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(preferences.iter().map(|p| p.opted_out).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
