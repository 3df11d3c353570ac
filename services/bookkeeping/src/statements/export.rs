//! Streaming one statement into CSV parts through the storage binding.

use std::collections::HashMap;

use base64::Engine;
use futures::TryStreamExt;
use platform_dapr::{Sidecar, SidecarError};
use platform_money::{Currency, Money};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{STORAGE_BINDING, Statement, Statements, part_name};
use crate::ledger::StoreError;

/// Largest part written through the binding (raw CSV bytes). Parts keep
/// memory constant and stay under the sidecar's 4 MiB request limit once
/// base64-encoded.
pub const PART_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("storage binding: {0}")]
    Storage(#[from] SidecarError),
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub parts: i32,
    pub rows: i64,
    pub bytes: i64,
}

struct PartWriter<'a> {
    sidecar: &'a Sidecar,
    jobs: &'a Statements,
    statement: uuid::Uuid,
    buffer: Vec<u8>,
    written: Written,
}

impl PartWriter<'_> {
    async fn flush(&mut self) -> Result<(), ExportError> {
        self.written.parts += 1;
        // The localstorage binding base64-decodes data that decodes; sending
        // base64 ourselves makes the bytes on disk exactly ours.
        let data = base64::engine::general_purpose::STANDARD
            .encode(&self.buffer)
            .into_bytes();
        let metadata = HashMap::from([(
            "fileName".to_owned(),
            part_name(self.statement, self.written.parts),
        )]);
        self.sidecar
            .invoke_binding(STORAGE_BINDING, "create", data, metadata)
            .await?;
        self.written.bytes += i64::try_from(self.buffer.len()).unwrap_or(i64::MAX);
        self.buffer.clear();
        self.jobs.progress(self.statement, self.written).await?;
        Ok(())
    }
}

/// Writes the statement's CSV: one row per posting on the account in the
/// period, ordered by effective time, with the running balance.
pub async fn run(
    pool: &PgPool,
    sidecar: &Sidecar,
    jobs: &Statements,
    statement: &Statement,
) -> Result<Written, ExportError> {
    let account = sqlx::query(
        "SELECT currency, normal_sign(kind)::bigint AS sign FROM accounts WHERE id = $1",
    )
    .bind(statement.account_id)
    .fetch_one(pool)
    .await?;
    let currency: Currency = account.try_get("currency")?;
    let sign: i64 = account.get("sign");
    let opening: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(p.amount), 0)::bigint FROM postings p JOIN entries e ON e.id = p.entry_id
          WHERE p.account_id = $1 AND e.effective_at < $2",
    )
    .bind(statement.account_id)
    .bind(statement.from)
    .fetch_one(pool)
    .await?;

    let mut writer = PartWriter {
        sidecar,
        jobs,
        statement: statement.id,
        buffer: Vec::with_capacity(PART_BYTES + 1024),
        written: Written {
            parts: 0,
            rows: 0,
            bytes: 0,
        },
    };
    writer
        .buffer
        .extend_from_slice(b"sequence,entry_id,effective_at,description,amount,balance,currency\n");
    let mut balance = opening * sign;

    let mut rows = sqlx::query(
        "SELECT e.sequence, e.id, e.effective_at, e.description, p.amount
           FROM postings p JOIN entries e ON e.id = p.entry_id
          WHERE p.account_id = $1 AND e.effective_at >= $2 AND e.effective_at < $3
          ORDER BY e.effective_at, e.sequence, p.position",
    )
    .bind(statement.account_id)
    .bind(statement.from)
    .bind(statement.to)
    .fetch(pool);
    while let Some(row) = rows.try_next().await? {
        let amount = row.get::<i64, _>("amount") * sign;
        balance += amount;
        let effective_at: OffsetDateTime = row.get("effective_at");
        let line = format!(
            "{},{},{},{},{},{},{}\n",
            row.get::<i64, _>("sequence"),
            row.get::<uuid::Uuid, _>("id"),
            effective_at.format(&Rfc3339).unwrap_or_default(),
            csv_field(row.get::<&str, _>("description")),
            Money::new(amount, currency).decimal('.'),
            Money::new(balance, currency).decimal('.'),
            currency,
        );
        writer.buffer.extend_from_slice(line.as_bytes());
        writer.written.rows += 1;
        if writer.buffer.len() >= PART_BYTES {
            writer.flush().await?;
        }
    }
    if !writer.buffer.is_empty() || writer.written.parts == 0 {
        writer.flush().await?;
    }
    Ok(writer.written)
}

/// RFC 4180 quoting, and a leading `'` for text a spreadsheet would run as a
/// formula (CSV injection).
pub fn csv_field(text: &str) -> String {
    let defused = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_follow_the_currency_exponent() {
        let decimal = |minor, currency| Money::new(minor, currency).decimal('.');
        assert_eq!(decimal(1250, Currency::EUR), "12.50");
        assert_eq!(decimal(-5, Currency::EUR), "-0.05");
        assert_eq!(decimal(990, Currency::JPY), "990");
        assert_eq!(decimal(1, Currency::KWD), "0.001");
        assert_eq!(decimal(i64::MIN, Currency::EUR), "-92233720368547758.08");
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
    }
}
