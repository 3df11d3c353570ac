//! Delivery receipts: posted to the message's `status_callback` in a
//! background task once the accepting request has been answered, signed
//! `Notify-Signature: t=<unix secs>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! A non-2xx answer or a transport error is retried a few times with the
//! same receipt (same id, re-signed with a fresh timestamp).

use std::time::Duration;

pub use sandbox_kit::signed_post::sign;
use sandbox_kit::signed_post::{Retry, SignedPoster};

use crate::store::PendingReceipt;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Notify-Signature";

/// How long after the accepting answer the first attempt is made.
const FIRST_DELAY: Duration = Duration::from_millis(100);
const RETRY: Retry = Retry {
    attempts: 6,
    first_backoff: Duration::from_millis(250),
};

/// Posts receipts; `note` is told the outcome of every attempt.
#[derive(Debug, Clone)]
pub struct Receipts {
    poster: SignedPoster,
}

impl Receipts {
    pub fn new(secret: &str) -> Self {
        Self {
            poster: SignedPoster::new(secret, SIGNATURE_HEADER, RETRY, "receipt"),
        }
    }

    /// Starts posting `receipt` in the background; never waits for it.
    pub fn send(
        &self,
        receipt: PendingReceipt,
        note: impl Fn(&str, Option<u16>) + Send + Sync + 'static,
    ) {
        let poster = self.poster.clone();
        tokio::spawn(async move {
            tokio::time::sleep(FIRST_DELAY).await;
            let id = receipt.body["id"].as_str().unwrap_or_default();
            let body = receipt.body.to_string().into_bytes();
            poster
                .deliver(&receipt.url, &body, id, |status| note(id, status))
                .await;
        });
    }
}
