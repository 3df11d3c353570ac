//! Signed webhooks: `Psp-Signature: t=<unix secs>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//!
//! Delivery runs in background tasks so that an API answer never waits for
//! the receiver; a non-2xx answer or a transport error is retried a few times
//! with the same event id and body (re-signed with a fresh timestamp).

use std::sync::Arc;
use std::time::Duration;

use sandbox_kit::signed_post::{Retry, SignedPoster};
pub use sandbox_kit::signed_post::{sign, verify};

use crate::state::AppState;
use crate::store::Event;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Psp-Signature";

const RETRY: Retry = Retry {
    attempts: 5,
    first_backoff: Duration::from_millis(200),
};

/// Sends events to the configured URL.
#[derive(Debug, Clone)]
pub struct Webhooks {
    poster: SignedPoster,
}

impl Webhooks {
    pub fn new(secret: &str) -> Self {
        Self {
            poster: SignedPoster::new(secret, SIGNATURE_HEADER, RETRY, "webhook"),
        }
    }

    pub fn secret(&self) -> &str {
        self.poster.secret()
    }

    /// Starts delivering `event` to `url` in the background.
    pub fn send(&self, state: &AppState, url: String, event: Arc<Event>) {
        let poster = self.poster.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let delivered = poster
                .deliver(&url, &event.body, &event.id, |status| {
                    state.with_store(|s| s.note_attempt(&event.id, status));
                })
                .await;
            state.with_store(|s| {
                if delivered {
                    s.stats.webhooks_delivered += 1;
                } else {
                    s.stats.webhooks_failed += 1;
                }
            });
        });
    }
}
