//! The `statements` table: job state, claims and heartbeats.

use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::export::Written;

use crate::ledger::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "statement_status", rename_all = "lowercase")]
pub enum StatementStatus {
    Queued,
    Running,
    Ready,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewStatement {
    /// Client-chosen id: requesting the same statement again is idempotent.
    pub id: Uuid,
    pub account_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    #[serde(default = "csv")]
    pub format: String,
    /// The client whose token requested it (ADR 0028); set by the route,
    /// never by the body.
    #[serde(skip)]
    pub owner_client_id: Option<String>,
}

fn csv() -> String {
    "csv".to_owned()
}

#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    pub id: Uuid,
    pub account_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub format: String,
    pub status: StatementStatus,
    pub attempts: i32,
    pub parts: i32,
    pub rows: i64,
    pub bytes: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    /// The client that requested it; None: requested before owners were
    /// recorded (admin only).
    #[serde(skip)]
    pub owner_client_id: Option<String>,
}

impl Statement {
    /// Whether `client_id` may see it: its owner, or an admin.
    pub fn visible_to(&self, client_id: &str, admin: bool) -> bool {
        admin || self.owner_client_id.as_deref() == Some(client_id)
    }
}

#[derive(Debug, Clone)]
pub struct Statements {
    pool: PgPool,
}

const COLUMNS: &str = "id, account_id, period_from, period_to, format, status, attempts, parts, rows_written, \
                       bytes_written, error, requested_at, completed_at, owner_client_id";

fn from_row(r: &sqlx::postgres::PgRow) -> Statement {
    Statement {
        id: r.get("id"),
        account_id: r.get("account_id"),
        from: r.get("period_from"),
        to: r.get("period_to"),
        format: r.get("format"),
        status: r.get("status"),
        attempts: r.get("attempts"),
        parts: r.get("parts"),
        rows: r.get("rows_written"),
        bytes: r.get("bytes_written"),
        error: r.get("error"),
        requested_at: r.get("requested_at"),
        completed_at: r.get("completed_at"),
        owner_client_id: r.get("owner_client_id"),
    }
}

/// PostgreSQL keeps microseconds: compare at that precision.
fn micros(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos() / 1000
}

impl Statements {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Records a job; `(statement, created)`. The same id with other
    /// parameters is a conflict naming the field.
    pub async fn create(&self, new: &NewStatement) -> Result<(Statement, bool), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO statements (id, account_id, period_from, period_to, format, owner_client_id)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(new.id)
        .bind(new.account_id)
        .bind(new.from)
        .bind(new.to)
        .bind(&new.format)
        .bind(&new.owner_client_id)
        .execute(&self.pool)
        .await
        .map_err(
            |e| match e.as_database_error().and_then(|d| d.constraint()) {
                Some("statements_account_id_fkey") => StoreError::Invalid {
                    field: "account_id".into(),
                    reason: "unknown account".into(),
                },
                _ => StoreError::Database(e),
            },
        )?
        .rows_affected()
            == 1;
        let existing = self
            .get(new.id)
            .await?
            .ok_or(StoreError::NotFound("statement"))?;
        if !inserted {
            let differing = [
                // Another client's id is taken, not theirs to read.
                ("id", existing.owner_client_id != new.owner_client_id),
                ("account_id", existing.account_id != new.account_id),
                ("from", micros(existing.from) != micros(new.from)),
                ("to", micros(existing.to) != micros(new.to)),
                ("format", existing.format != new.format),
            ];
            if let Some((field, _)) = differing.iter().find(|(_, d)| *d) {
                return Err(StoreError::Conflict {
                    field: (*field).into(),
                });
            }
        }
        Ok((existing, inserted))
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Statement>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM statements WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(from_row))
    }

    /// Takes the job for this worker if nobody is working on it: queued, or
    /// running with a heartbeat older than `stale_after_secs`.
    pub async fn claim(
        &self,
        id: Uuid,
        stale_after_secs: i64,
    ) -> Result<Option<Statement>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE statements
                SET status = 'running', attempts = attempts + 1, heartbeat_at = now(),
                    parts = 0, rows_written = 0, bytes_written = 0, error = NULL
              WHERE id = $1
                AND (status = 'queued'
                     OR (status = 'running' AND heartbeat_at < now() - make_interval(secs => $2)))
          RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(stale_after_secs as f64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(from_row))
    }

    /// Progress after a part is written; also the worker's heartbeat.
    pub async fn progress(&self, id: Uuid, written: Written) -> Result<(), StoreError> {
        self.record(id, written, false).await
    }

    /// The export is complete: `ready`, with what was written.
    pub async fn finish(&self, id: Uuid, written: Written) -> Result<(), StoreError> {
        self.record(id, written, true).await
    }

    async fn record(&self, id: Uuid, written: Written, done: bool) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE statements
                SET parts = $2, rows_written = $3, bytes_written = $4, heartbeat_at = now(),
                    status = CASE WHEN $5 THEN 'ready'::statement_status ELSE status END,
                    completed_at = CASE WHEN $5 THEN now() ELSE completed_at END
              WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .bind(written.parts)
        .bind(written.rows)
        .bind(written.bytes)
        .bind(done)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A failed attempt: queued again while attempts remain, else failed.
    pub async fn fail(&self, id: Uuid, error: &str, max_attempts: i32) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE statements
                SET status = CASE WHEN attempts >= $3 THEN 'failed'::statement_status ELSE 'queued' END,
                    error = $2, heartbeat_at = now()
              WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .bind(error)
        .bind(max_attempts)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Jobs to (re)publish: queued for longer than `queued_secs`, or running
    /// without a heartbeat for `stale_secs`.
    pub async fn pending(
        &self,
        queued_secs: i64,
        stale_secs: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM statements
              WHERE (status = 'queued' AND heartbeat_at < now() - make_interval(secs => $1))
                 OR (status = 'running' AND heartbeat_at < now() - make_interval(secs => $2))
              ORDER BY requested_at LIMIT 100",
        )
        .bind(queued_secs as f64)
        .bind(stale_secs as f64)
        .fetch_all(&self.pool)
        .await?)
    }
}
