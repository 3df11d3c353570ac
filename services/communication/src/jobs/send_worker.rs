//! The send worker: what happens to one send job that Dapr delivered from
//! the `communication.sends` topic of the `communication-queue` pub/sub
//! (the route `/jobs/send` hands it over), and to one it gave up on.
//!
//! Per job: claim the notification (`sending`, in flight, one more attempt;
//! committed before the provider is called), send through the channel's
//! binding, record the outcome. A retriable failure answers RETRY, so Dapr
//! redelivers with the backoff of the Resiliency policy on
//! `communication-queue` (dapr-config/resiliency/communication.yaml). At
//! `sending.max_attempts` a retriable failure is deferred: the job is done,
//! and the sweeper queues the notification again after
//! `sending.requeue_after_secs`, until it is `sending.give_up_after_secs`
//! old. Then, or on a terminal failure, the notification is `failed` and its
//! job goes to `communication.sends.deadletter` with the reason.

use std::time::Duration;

use tokio::time::Instant;

use platform_consumer::TopicResponse;
use sqlx::PgPool;
use uuid::Uuid;

use crate::outbox::Relay;
use crate::sender::{Outcome, Sender};
use crate::store::sends::{self, NotClaimed};

/// How long before its claim goes stale a sent message's record stops
/// being tried (so that it never lands after the sweeper queued it again).
const STALE_MARGIN: Duration = Duration::from_secs(2);

/// Records that notification `id` was sent, trying again (back-off up to
/// 2 s) until it is recorded or `until`. Only a crash of the process or a
/// database away until `until` leaves the claim to the sweeper, which sends
/// the message again (at-least-once, docs/adr/0021).
async fn record_sent_until(
    pool: PgPool,
    relay: Relay,
    id: Uuid,
    provider: String,
    message_id: Option<String>,
    until: Instant,
) {
    let mut wait = Duration::from_millis(250);
    loop {
        if Instant::now() + wait >= until {
            tracing::error!(
                notification.id = %id,
                "a sent message could not be recorded before its claim goes stale; the sweeper will send it again"
            );
            return;
        }
        tokio::time::sleep(wait).await;
        match sends::mark_sent(&pool, id, &provider, message_id.as_deref()).await {
            Ok(()) => {
                tracing::info!(notification.id = %id, "sent message recorded after the database came back");
                relay.wake();
                return;
            }
            Err(error) => {
                tracing::debug!(%error, notification.id = %id, "still cannot record a sent message")
            }
        }
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// The worker over the service's pool, sender and relay.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SendWorker<'a> {
    pub(crate) pool: &'a PgPool,
    pub(crate) sender: &'a Sender,
    pub(crate) relay: &'a Relay,
    /// `sending.max_attempts`.
    pub(crate) max_attempts: i32,
    /// `sending.give_up_after_secs`.
    pub(crate) give_up_after_secs: i64,
    /// `sending.stale_after_secs`: how long a claim without an outcome is
    /// left alone before the sweeper sends the notification again.
    pub(crate) stale_after_secs: i64,
}

impl SendWorker<'_> {
    /// Claims notification `id`, sends it and records the outcome; the
    /// answer to give Dapr.
    pub(crate) async fn send(self, id: Uuid) -> TopicResponse {
        // Taken before the claim, so never later than the claim's own time.
        let claimed_at = Instant::now();
        let claim = match sends::claim(self.pool, id).await {
            Ok(Ok(claim)) => claim,
            Ok(Err(NotClaimed::Unknown)) => {
                tracing::warn!("send job for an unknown notification; dropped");
                return TopicResponse::Success;
            }
            Ok(Err(reason)) => {
                tracing::debug!(?reason, "send job not claimed");
                return TopicResponse::Success;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot claim the send; asking for redelivery");
                return TopicResponse::Retry;
            }
        };
        self.relay.wake();
        let outcome = self
            .sender
            .send(claim.id, claim.channel, &claim.address, &claim.content)
            .await;
        let response = self
            .record(claim.id, claim.attempts, outcome, claimed_at)
            .await;
        self.relay.wake();
        response
    }

    /// Records an attempt's outcome; the answer to give Dapr.
    async fn record(
        self,
        id: Uuid,
        attempts: i32,
        outcome: Outcome,
        claimed_at: Instant,
    ) -> TopicResponse {
        let pool = self.pool;
        let mut tries = 0;
        loop {
            let result = match &outcome {
                Outcome::Sent {
                    provider,
                    message_id,
                } => sends::mark_sent(pool, id, provider, message_id.as_deref())
                    .await
                    .map(|()| TopicResponse::Success),
                Outcome::Terminal(reason) => sends::fail(pool, id, reason)
                    .await
                    .map(|_| TopicResponse::Success),
                Outcome::Retriable(reason) if attempts >= self.max_attempts => {
                    sends::defer_or_fail(pool, id, reason, attempts, self.give_up_after_secs)
                        .await
                        .map(|exhausted| {
                            tracing::warn!(
                                ?exhausted,
                                attempts,
                                "a round of send attempts ran out"
                            );
                            TopicResponse::Success
                        })
                }
                Outcome::Retriable(reason) => sends::release_for_retry(pool, id, reason)
                    .await
                    .map(|()| TopicResponse::Retry),
            };
            match result {
                Ok(response) => {
                    match &outcome {
                        Outcome::Sent { provider, .. } => {
                            tracing::debug!(provider, attempts, "sent")
                        }
                        Outcome::Retriable(reason) => {
                            tracing::warn!(reason, attempts, "send failed; will retry")
                        }
                        Outcome::Terminal(reason) => {
                            tracing::warn!(reason, attempts, "send failed permanently")
                        }
                    }
                    return response;
                }
                Err(error) if tries < 5 => {
                    tries += 1;
                    tracing::warn!(%error, tries, "cannot record the send outcome; trying again");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(error) => {
                    if let Outcome::Sent {
                        provider,
                        message_id,
                    } = outcome
                    {
                        // The message is out. Were the record given up now,
                        // the sweeper would send it again once the claim is
                        // stale: a database restart longer than these tries
                        // doubled a receipt (make chaos, database-restart).
                        // So it is kept trying past this request, until
                        // just before the claim goes stale.
                        tracing::warn!(%error, "cannot record a sent message yet; trying on in the background");
                        let until = claimed_at
                            + Duration::from_secs(self.stale_after_secs.unsigned_abs())
                                .saturating_sub(STALE_MARGIN);
                        tokio::spawn(record_sent_until(
                            pool.clone(),
                            self.relay.clone(),
                            id,
                            provider,
                            message_id,
                            until,
                        ));
                        return TopicResponse::Success;
                    }
                    // The row stays in flight; the sweeper re-queues it after
                    // sending.stale_after_secs (docs/adr/0021): one more
                    // attempt of a message that did not go out.
                    tracing::error!(%error, ?outcome, "cannot record the send outcome");
                    return TopicResponse::Success;
                }
            }
        }
    }

    /// A send job of notification `id` that Dapr gave up on after its
    /// retries: if the worker did not try `max_attempts` times (the service
    /// was down while Dapr delivered), the job is queued again, so a restart
    /// longer than the retry window loses nothing; if it did, the
    /// notification waits for the sweeper like any deferred one, or is
    /// `failed` once `give_up_after_secs` old. Jobs the worker dead-lettered
    /// itself are already failed (a no-op here).
    pub(crate) async fn dead_lettered(self, id: Uuid) -> TopicResponse {
        match sends::requeue_or_fail(self.pool, id, self.max_attempts, self.give_up_after_secs)
            .await
        {
            Ok(outcome) => {
                tracing::warn!(notification.id = %id, ?outcome, "send job dead-lettered by Dapr");
                self.relay.wake();
                TopicResponse::Success
            }
            Err(error) => {
                tracing::warn!(%error, "cannot record a dead-lettered send");
                TopicResponse::Retry
            }
        }
    }
}
