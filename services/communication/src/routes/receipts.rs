//! `POST /v1/providers/{provider}/receipts`: delivery receipts from the
//! email, SMS and push providers (docs/adr/0022). SMS and push providers are
//! told the URL with each message (`status_callback`); an email provider has
//! it configured on its side and names the notification by the mail's
//! `X-Notification-Id` header.
//!
//! No access token: a provider cannot get one from our issuer. The route is
//! authenticated by the body's signature instead, `Notify-Signature:
//! t=<unix secs>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, checked by
//! platform-signature (bounded header, body hashed once, constant-time
//! comparison) with the timestamp within the tolerance either way (a
//! captured receipt cannot be replayed later; within the window the receipt
//! id makes a replay a no-op).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use platform_problem::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::AppState;
use crate::domain::{Channel, Status};
use crate::error::CommunicationError;
use crate::sender::{EMAIL, PUSH, SMS_PRIMARY, SMS_SECONDARY};
use crate::store::receipts::{self, ReceiptApplied};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Notify-Signature";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ReceiptStatus {
    Delivered,
    Undeliverable,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Receipt {
    id: String,
    #[serde(default)]
    message_id: Option<String>,
    reference: String,
    status: ReceiptStatus,
}

#[derive(Debug, Serialize)]
pub(crate) struct ReceiptAnswer {
    receipt_id: String,
    notification_id: Uuid,
    /// `applied`, `duplicate` (this receipt id was seen before) or `ignored`
    /// (it would move the status backwards).
    result: &'static str,
    status: Status,
}

pub(crate) async fn receive(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReceiptAnswer>, CommunicationError> {
    let header = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    state
        .receipt_verifier
        .verify(header, &body, OffsetDateTime::now_utc().unix_timestamp())
        .map_err(|reason| {
            tracing::warn!(receipt.provider = %provider, %reason, "receipt signature refused");
            CommunicationError::InvalidSignature(reason)
        })?;
    let channel = match provider.as_str() {
        EMAIL => Channel::Email,
        SMS_PRIMARY | SMS_SECONDARY => Channel::Sms,
        PUSH => Channel::Push,
        _ => return Err(CommunicationError::NotFound("provider")),
    };
    let receipt: Receipt = serde_json::from_slice(&body)
        .map_err(|e| CommunicationError::invalid("body", e.to_string()))?;
    if receipt.id.is_empty() || receipt.id.len() > 255 {
        return Err(CommunicationError::invalid(
            "id",
            "must be 1 to 255 characters",
        ));
    }
    // The reference is the notification id (sender.rs); anything else
    // cannot be one of ours.
    let notification_id = Uuid::parse_str(&receipt.reference)
        .map_err(|_| CommunicationError::NotFound("notification"))?;
    let (target, reason) = match receipt.status {
        ReceiptStatus::Delivered => (Status::Delivered, None),
        ReceiptStatus::Undeliverable => {
            (Status::Bounced, Some(format!("{provider}: undeliverable")))
        }
    };
    let applied = receipts::apply_receipt(
        &state.pool,
        notification_id,
        channel,
        &format!("provider:{provider}"),
        &receipt.id,
        target,
        reason.as_deref(),
    )
    .await?;
    let (result, status) = match applied {
        ReceiptApplied::Applied => {
            state.relay.wake();
            ("applied", target)
        }
        ReceiptApplied::Duplicate(status) => ("duplicate", status),
        ReceiptApplied::Ignored(status) => ("ignored", status),
        ReceiptApplied::Unknown => return Err(CommunicationError::NotFound("notification")),
        ReceiptApplied::NotYetSent => return Err(CommunicationError::NotYetSent),
    };
    tracing::info!(
        notification.id = %notification_id,
        receipt.id = %receipt.id,
        receipt.provider = %provider,
        receipt.message_id = receipt.message_id.as_deref().unwrap_or_default(),
        receipt.result = result,
        notification.status = status.as_str(),
        "delivery receipt"
    );
    Ok(Json(ReceiptAnswer {
        receipt_id: receipt.id,
        notification_id,
        result,
        status,
    }))
}
