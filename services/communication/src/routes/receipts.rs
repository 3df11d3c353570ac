//! `POST /v1/providers/{provider}/receipts`: delivery receipts from the
//! email, SMS and push providers (docs/adr/0022). SMS and push providers are
//! told the URL with each message (`status_callback`); an email provider has
//! it configured on its side and names the notification by the mail's
//! `X-Notification-Id` header.
//!
//! No access token: a provider cannot get one from our issuer. The route is
//! authenticated by the body's signature instead, `Notify-Signature:
//! t=<unix secs>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, compared in
//! constant time, with the timestamp within the tolerance either way (a
//! captured receipt cannot be replayed later; within the window the receipt
//! id makes a replay a no-op).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use platform_problem::Json;
use secrecy::ExposeSecret;
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
    let settings = &state.settings.providers;
    let header = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    verify(
        settings.receipt_secret.expose_secret().as_bytes(),
        header,
        &body,
        OffsetDateTime::now_utc().unix_timestamp(),
        settings.receipt_tolerance_secs,
    )
    .map_err(|reason| {
        tracing::warn!(receipt.provider = %provider, reason, "receipt signature refused");
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

/// Checks `t=<secs>,v1=<hex>` (several `v1` allowed, as during a key
/// rotation) against `body`; the timestamp must be within `tolerance` of
/// `now` either way. The comparison is constant-time (`ring::hmac::verify`).
pub(crate) fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), &'static str> {
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(unhex(value).ok_or("malformed signature")?),
            _ => {}
        }
    }
    let t = t.ok_or("missing or malformed signature header")?;
    if signatures.is_empty() {
        return Err("missing or malformed signature header");
    }
    if (now - t).abs() > tolerance {
        return Err("timestamp outside the tolerance");
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    if signatures
        .iter()
        .any(|sig| ring::hmac::verify(&key, &signed, sig).is_ok())
    {
        Ok(())
    } else {
        Err("no signature matches")
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"key";

    fn sign(t: i64, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET);
        let mut signed = format!("{t}.").into_bytes();
        signed.extend_from_slice(body);
        let tag = ring::hmac::sign(&key, &signed);
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("t={t},v1={hex}")
    }

    #[test]
    fn the_signature_matches_the_sandboxes_reference_value() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"key", b"1.{}", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(1, b"{}"),
            "t=1,v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }

    #[test]
    fn only_a_fresh_signature_over_the_same_body_verifies() {
        let header = sign(1000, b"{}");
        assert_eq!(verify(SECRET, &header, b"{}", 1100, 300), Ok(()));
        assert_eq!(verify(SECRET, &header, b"{}", 700, 300), Ok(()));
        assert!(verify(SECRET, &header, b"{ }", 1000, 300).is_err());
        assert!(verify(b"other", &header, b"{}", 1000, 300).is_err());
        assert!(verify(SECRET, &header, b"{}", 1301, 300).is_err());
        assert!(verify(SECRET, "", b"{}", 1000, 300).is_err());
        assert!(verify(SECRET, "t=1000,v1=zz", b"{}", 1000, 300).is_err());
        assert!(verify(SECRET, "v1=00", b"{}", 1000, 300).is_err());
    }
}
