//! Providers' delivery receipts: each applied once (inbox), moving a sent
//! notification forward.

use platform_consumer::inbox;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{Channel, Status};

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
    let mut tx = platform_db::begin(pool).await?;
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
