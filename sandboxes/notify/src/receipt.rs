//! Delivery receipts: posted to the message's `status_callback` in a
//! background task once the accepting request has been answered, signed
//! `Notify-Signature: t=<unix secs>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! A non-2xx answer or a transport error is retried a few times with the
//! same receipt (same id, re-signed with a fresh timestamp).

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::store::PendingReceipt;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Notify-Signature";

/// How long after the accepting answer the first attempt is made.
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// Attempts per receipt before giving up.
const ATTEMPTS: u32 = 6;
/// Wait before the second attempt; doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Receipts in flight at once; more wait their turn.
const CONCURRENCY: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// The `Notify-Signature` value for `body` sent at unix time `t`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts receipts; `note` is told the outcome of every attempt.
#[derive(Debug, Clone)]
pub struct Receipts {
    client: reqwest::Client,
    secret: Arc<str>,
    permits: Arc<Semaphore>,
}

impl Receipts {
    pub fn new(secret: &str) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            client,
            secret: Arc::from(secret),
            permits: Arc::new(Semaphore::new(CONCURRENCY)),
        }
    }

    /// Starts posting `receipt` in the background; never waits for it.
    pub fn send(
        &self,
        receipt: PendingReceipt,
        note: impl Fn(&str, Option<u16>) + Send + Sync + 'static,
    ) {
        let receipts = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(FIRST_DELAY).await;
            let Ok(_permit) = receipts.permits.acquire().await else {
                return;
            };
            receipts.deliver(&receipt, note).await;
        });
    }

    async fn deliver(&self, receipt: &PendingReceipt, note: impl Fn(&str, Option<u16>)) {
        let id = receipt.body["id"].as_str().unwrap_or_default();
        let body = receipt.body.to_string().into_bytes();
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let t = OffsetDateTime::now_utc().unix_timestamp();
            let result = self
                .client
                .post(&receipt.url)
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, sign(&self.secret, t, &body))
                .body(body.clone())
                .send()
                .await;
            let status = result.as_ref().ok().map(|r| r.status().as_u16());
            note(id, status);
            match status {
                Some(200..=299) => {
                    tracing::debug!(notify.receipt_id = id, attempt, "receipt delivered");
                    return;
                }
                Some(status) => {
                    tracing::info!(
                        notify.receipt_id = id,
                        attempt,
                        http.status = status,
                        "receipt refused; will retry"
                    );
                }
                None => {
                    tracing::info!(
                        notify.receipt_id = id,
                        attempt,
                        "receipt not delivered; will retry"
                    );
                }
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        tracing::warn!(
            notify.receipt_id = id,
            attempts = ATTEMPTS,
            "receipt given up"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Reference value: python3 -c 'import hmac,hashlib;
        //   print(hmac.new(b"key", b"1.{}", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign("key", 1, b"{}"),
            "t=1,v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
        assert_ne!(sign("other", 1, b"{}"), sign("key", 1, b"{}"));
    }
}
