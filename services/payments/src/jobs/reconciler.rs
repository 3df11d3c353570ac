//! Reconciliation of unknown provider outcomes (ADR 0031). Every payment
//! whose outcome may be unknown has its own intent record
//! (`reconcile:<payment id>`), written before the provider call. A round
//! (fired by the cron binding) pages through the intents that are due,
//! earliest first, and checks them with bounded concurrency within a time
//! budget. Each check first claims its intent (an ETag-guarded write that
//! also pushes its due time out by a lease), so overlapping rounds and
//! replicas never check the same payment twice at once, and then records its
//! progress on that payment alone: resolved → the intent is deleted; still
//! unknown or failed → tries + 1 and the next check backs off. There is no
//! shared list to contend for, and a round that runs out of time leaves the
//! rest due for the next one: no livelock.

use std::time::Duration;

use futures::StreamExt;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::PaymentsError;
use crate::gateway::Gateway;
use crate::store::{ReconcileIntent, Versioned, Written, micros};

/// The longest wait between two checks of the same payment.
const MAX_BACKOFF_SECS: i64 = 300;
/// The first back-off; doubled with every try.
const FIRST_BACKOFF_SECS: i64 = 5;

#[derive(Debug, Clone)]
pub struct Reconciler {
    pub gateway: Gateway,
    /// Intents read per round.
    pub batch: usize,
    /// Payments checked at once (each check is a few provider calls).
    pub concurrency: usize,
    /// A round stops starting checks after this long (below the route's
    /// request timeout); what is left stays due.
    pub budget: Duration,
    /// How long a claimed intent is left alone by other rounds.
    pub lease_secs: i64,
}

/// What a round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub resolved: usize,
    pub pending: usize,
    /// Claimed by another round or rewritten by a provider call meanwhile.
    pub skipped: usize,
}

enum Checked {
    Resolved,
    Pending,
    Skipped,
}

/// The wait before check number `tries + 1`.
pub fn backoff(tries: u32) -> time::Duration {
    let exponent = tries.saturating_sub(1).min(16);
    let secs = FIRST_BACKOFF_SECS.saturating_mul(1 << exponent);
    time::Duration::seconds(secs.min(MAX_BACKOFF_SECS))
}

impl Reconciler {
    /// One round over the intents that are due.
    pub async fn round(&self) -> Result<Round, PaymentsError> {
        let now = micros(OffsetDateTime::now_utc());
        let due: Vec<Versioned<ReconcileIntent>> = self
            .gateway
            .store
            .intents(self.batch)
            .await?
            .into_iter()
            .take_while(|intent| intent.value.due_at_us <= now)
            .collect();
        let deadline = tokio::time::sleep(self.budget);
        let checks = futures::stream::iter(due)
            .map(|intent| self.check(intent))
            .buffer_unordered(self.concurrency.max(1))
            .take_until(deadline);
        let outcomes: Vec<Result<Checked, PaymentsError>> = checks.collect().await;
        let mut round = Round::default();
        for outcome in outcomes {
            match outcome {
                Ok(Checked::Resolved) => round.resolved += 1,
                Ok(Checked::Pending) => round.pending += 1,
                Ok(Checked::Skipped) => round.skipped += 1,
                Err(e) => {
                    round.pending += 1;
                    tracing::warn!(error = %e, "a reconciliation check failed");
                }
            }
        }
        Ok(round)
    }

    async fn check(&self, intent: Versioned<ReconcileIntent>) -> Result<Checked, PaymentsError> {
        let store = &self.gateway.store;
        let id = intent.value.payment_id;
        let now = OffsetDateTime::now_utc();
        let claim = Uuid::new_v4().to_string();
        let claimed = ReconcileIntent {
            claim: Some(claim.clone()),
            tries: intent.value.tries.saturating_add(1),
            due_at_us: micros(now + time::Duration::seconds(self.lease_secs)),
            ..intent.value
        };
        if store.update_intent(&claimed, intent.etag).await? == Written::Conflict {
            return Ok(Checked::Skipped);
        }
        let synced = self.gateway.sync(id).await;
        // Progress is written only over our own claim: a provider call that
        // wrote a fresh intent meanwhile keeps it.
        let Some(current) = store.load_intent(id).await? else {
            return Ok(Checked::Skipped);
        };
        if current.value.claim.as_deref() != Some(claim.as_str()) {
            return Ok(Checked::Skipped);
        }
        match synced {
            Ok(false) => {
                store.clear_intent(id, current.etag).await?;
                Ok(Checked::Resolved)
            }
            Ok(true) | Err(_) => {
                let last_error = synced.err().map(|e| e.to_string());
                if let Some(error) = &last_error {
                    tracing::warn!(payment.id = %id, %error, tries = claimed.tries, "reconciliation of a payment failed");
                }
                let next = ReconcileIntent {
                    claim: None,
                    due_at_us: micros(OffsetDateTime::now_utc() + backoff(claimed.tries)),
                    last_error,
                    ..claimed
                };
                store.update_intent(&next, current.etag).await?;
                Ok(Checked::Pending)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(1), time::Duration::seconds(5));
        assert_eq!(backoff(2), time::Duration::seconds(10));
        assert_eq!(backoff(4), time::Duration::seconds(40));
        assert_eq!(backoff(7), time::Duration::seconds(300));
        assert_eq!(backoff(u32::MAX), time::Duration::seconds(300));
    }
}
