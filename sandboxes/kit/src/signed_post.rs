//! Signed POSTs with retries, as providers send webhooks and delivery
//! receipts: `<Header>: t=<unix secs>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! A non-2xx answer or a transport error is retried a few times with the
//! same body, re-signed with a fresh timestamp. The scheme itself is
//! platform-signature's, the one the services verify with.

use std::sync::Arc;
use std::time::Duration;

use platform_signature::Verifier;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

/// POSTs in flight at once per sender; more wait their turn.
const CONCURRENCY: usize = 64;

/// The signature header value for `body` sent at unix time `t`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    platform_signature::sign(secret.as_bytes(), t, body)
}

/// Checks a signature header value against `body` whatever its timestamp
/// (tests check what a sandbox sent); receivers also refuse timestamps too
/// far from their clock ([`Verifier`] with a tolerance).
pub fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    Verifier::new(secret.as_bytes(), u64::MAX)
        .verify(header, body, 0)
        .is_ok()
}

/// How often and how patiently a [`SignedPoster`] retries.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts per POST before giving up.
    pub attempts: u32,
    /// Wait before the second attempt; doubled each time.
    pub first_backoff: Duration,
}

/// Posts signed JSON bodies; at most [`CONCURRENCY`] at once.
#[derive(Debug, Clone)]
pub struct SignedPoster {
    client: reqwest::Client,
    secret: Arc<str>,
    header: &'static str,
    retry: Retry,
    /// What is posted (`webhook`, `receipt`), for the logs.
    what: &'static str,
    permits: Arc<Semaphore>,
}

impl SignedPoster {
    /// Signs with `secret` in the header `header`.
    pub fn new(secret: &str, header: &'static str, retry: Retry, what: &'static str) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            client,
            secret: Arc::from(secret),
            header,
            retry,
            what,
            permits: Arc::new(Semaphore::new(CONCURRENCY)),
        }
    }

    /// The HMAC key of the signatures.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Posts `body` to `url` until it is answered 2xx or the attempts are
    /// used up (waiting first for a free slot); `note` hears the status of
    /// every attempt (none: no answer). Returns whether it was delivered.
    /// `id` names the body in the logs.
    pub async fn deliver(
        &self,
        url: &str,
        body: &[u8],
        id: &str,
        note: impl Fn(Option<u16>),
    ) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let what = self.what;
        let mut backoff = self.retry.first_backoff;
        for attempt in 1..=self.retry.attempts {
            let t = OffsetDateTime::now_utc().unix_timestamp();
            let result = self
                .client
                .post(url)
                .header("content-type", "application/json")
                .header(self.header, sign(&self.secret, t, body))
                .body(body.to_vec())
                .send()
                .await;
            let status = result.as_ref().ok().map(|r| r.status().as_u16());
            note(status);
            match result {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(delivery.what = what, delivery.id = id, attempt, "delivered");
                    return true;
                }
                Ok(response) => {
                    tracing::info!(
                        delivery.what = what,
                        delivery.id = id,
                        attempt,
                        http.status = response.status().as_u16(),
                        "refused; will retry"
                    );
                }
                Err(error) => {
                    tracing::info!(
                        delivery.what = what,
                        delivery.id = id,
                        attempt,
                        %error,
                        "not delivered; will retry"
                    );
                }
            }
            if attempt < self.retry.attempts {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        tracing::warn!(
            delivery.what = what,
            delivery.id = id,
            attempts = self.retry.attempts,
            "given up"
        );
        false
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
        assert_ne!(sign("other", 1, b"{}"), sign("key", 1, b"{}"));
    }
}
