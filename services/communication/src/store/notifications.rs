//! The notifications table: how a notification is recorded (once per
//! idempotency key, `queued` with its send job or `not_sent` with a reason),
//! read, and its status history.

use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::recipients::opted_out;
use super::sends::{QUEUE_PUBSUB, SEND_JOB_TYPE, SEND_TOPIC};
use super::throttle::count_against_limit;
use crate::domain::{Channel, RecipientId, Status};
use crate::templates::Content;

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
                  jsonb_strip_nulls(jsonb_build_object('notification_id', id, 'traceparent', $18::text))
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
    // The trace the send continues (the relay puts it on the job's CloudEvent).
    .bind(platform_telemetry::current_traceparent())
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
