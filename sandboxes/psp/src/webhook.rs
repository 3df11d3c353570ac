//! Signed webhooks: `Psp-Signature: t=<unix secs>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//!
//! Delivery runs in background tasks so that an API answer never waits for
//! the receiver; a non-2xx answer or a transport error is retried a few times
//! with the same event id and body (re-signed with a fresh timestamp).

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::state::AppState;
use crate::store::Event;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Psp-Signature";

/// Attempts per event before giving up.
const ATTEMPTS: u32 = 5;
/// Wait before the second attempt; doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Deliveries in flight at once; more wait their turn.
const CONCURRENCY: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// The `Psp-Signature` value for `body` sent at unix time `t`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, body)))
}

/// Checks a `Psp-Signature` value against `body` (constant-time comparison).
/// Receivers should also refuse timestamps too far from their clock.
pub fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

fn mac(secret: &str, t: i64, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return Vec::new();
    };
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Sends events to the configured URL.
#[derive(Debug, Clone)]
pub struct Webhooks {
    client: reqwest::Client,
    secret: Arc<str>,
    permits: Arc<Semaphore>,
}

impl Webhooks {
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

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Starts delivering `event` to `url` in the background.
    pub fn send(&self, state: &AppState, url: String, event: Arc<Event>) {
        let webhooks = self.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(_permit) = webhooks.permits.acquire().await else {
                return;
            };
            webhooks.deliver(&state, &url, &event).await;
        });
    }

    async fn deliver(&self, state: &AppState, url: &str, event: &Event) {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let t = OffsetDateTime::now_utc().unix_timestamp();
            let result = self
                .client
                .post(url)
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, sign(&self.secret, t, &event.body))
                .body(event.body.clone())
                .send()
                .await;
            let status = result.as_ref().ok().map(|r| r.status().as_u16());
            state.with_store(|s| s.note_attempt(&event.id, status));
            match result {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(webhook.event_id = %event.id, webhook.type = %event.kind, attempt, "webhook delivered");
                    state.with_store(|s| s.stats.webhooks_delivered += 1);
                    return;
                }
                Ok(response) => {
                    tracing::info!(webhook.event_id = %event.id, attempt, http.status = response.status().as_u16(), "webhook refused; will retry");
                }
                Err(error) => {
                    tracing::info!(webhook.event_id = %event.id, attempt, %error, "webhook not delivered; will retry");
                }
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        tracing::warn!(webhook.event_id = %event.id, webhook.type = %event.kind, attempts = ATTEMPTS, "webhook given up");
        state.with_store(|s| s.stats.webhooks_failed += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_with_the_same_secret_and_body() {
        let header = sign("whsec_test", 1_700_000_000, b"{\"id\":\"evt_1\"}");
        assert!(header.starts_with("t=1700000000,v1="));
        assert!(verify("whsec_test", &header, b"{\"id\":\"evt_1\"}"));
        assert!(!verify("other", &header, b"{\"id\":\"evt_1\"}"));
        assert!(!verify("whsec_test", &header, b"{\"id\":\"evt_2\"}"));
        assert!(!verify("whsec_test", "t=1,v1=zz", b"{}"));
        assert!(!verify("whsec_test", "", b"{}"));
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Reference value: python3 -c 'import hmac,hashlib;
        //   print(hmac.new(b"key", b"1.{}", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign("key", 1, b"{}"),
            "t=1,v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }
}
