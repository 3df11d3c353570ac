//! The send worker (subscription to `communication.sends` on the
//! `communication-queue` pub/sub), the consumer of its dead-letter topic, and
//! the sweeper that re-queues interrupted sends.
//!
//! Per job: claim the notification (`sending`, in flight, one more attempt;
//! committed before the provider is called), send through the channel's
//! binding, record the outcome. A retriable failure answers RETRY, so Dapr
//! redelivers with the backoff of the Resiliency policy on
//! `communication-queue` (dapr-config/resiliency/communication.yaml); at
//! `sending.max_attempts`, or on a terminal failure, the notification is
//! `failed` and its job goes to `communication.sends.deadletter` with the
//! reason.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use platform_consumer::{CloudEvent, TopicResponse};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::AppState;
use crate::sender::Outcome;
use crate::store::{self, NotClaimed};

#[derive(Debug, Deserialize)]
pub(crate) struct SendJob {
    notification_id: Uuid,
}

#[tracing::instrument(name = "jobs.send", skip_all, fields(notification.id))]
pub(crate) async fn send(State(state): State<AppState>, body: Bytes) -> TopicResponse {
    let Ok(job) = serde_json::from_slice::<CloudEvent<SendJob>>(&body) else {
        tracing::warn!("dropping a send job that is not a CloudEvent with a notification_id");
        return TopicResponse::Drop;
    };
    let id = job.data.notification_id;
    tracing::Span::current().record("notification.id", id.to_string());
    let claim = match store::claim(&state.pool, id).await {
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
    state.relay.wake();
    let outcome = state
        .sender
        .send(claim.id, claim.channel, &claim.address, &claim.content)
        .await;
    let response = record(&state, claim.id, claim.attempts, outcome).await;
    state.relay.wake();
    response
}

/// Records an attempt's outcome; the answer to give Dapr.
async fn record(state: &AppState, id: Uuid, attempts: i32, outcome: Outcome) -> TopicResponse {
    let max_attempts = state.settings.sending.max_attempts;
    let mut tries = 0;
    loop {
        let result = match &outcome {
            Outcome::Sent {
                provider,
                message_id,
            } => store::mark_sent(&state.pool, id, provider, message_id.as_deref())
                .await
                .map(|()| TopicResponse::Success),
            Outcome::Terminal(reason) => store::fail(&state.pool, id, reason)
                .await
                .map(|_| TopicResponse::Success),
            Outcome::Retriable(reason) if attempts >= max_attempts => store::fail(
                &state.pool,
                id,
                &format!("gave up after {attempts} attempts: {reason}"),
            )
            .await
            .map(|_| TopicResponse::Success),
            Outcome::Retriable(reason) => store::release_for_retry(&state.pool, id, reason)
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
                // The row stays in flight; the sweeper re-queues it after
                // sending.stale_after_secs (docs/adr/0021).
                tracing::error!(%error, ?outcome, "cannot record the send outcome");
                return TopicResponse::Success;
            }
        }
    }
}

/// Dead-letter consumer. A job Dapr gave up on after its retries: if the
/// worker did try `max_attempts` times, the notification is `failed`; if it
/// did not (the service was down while Dapr delivered), the job is queued
/// again, so a restart longer than the retry window loses nothing. Jobs the
/// worker dead-lettered itself are already failed (a no-op here).
#[tracing::instrument(name = "jobs.send_failed", skip_all)]
pub(crate) async fn send_failed(State(state): State<AppState>, body: Bytes) -> TopicResponse {
    let Ok(event) = serde_json::from_slice::<CloudEvent<Value>>(&body) else {
        return TopicResponse::Drop;
    };
    let Some(id) = event.data["notification_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
    else {
        return TopicResponse::Drop;
    };
    if event.event_type != store::SEND_JOB_TYPE {
        return TopicResponse::Success;
    }
    let result = store::requeue_or_fail(&state.pool, id, state.settings.sending.max_attempts).await;
    match result {
        Ok(outcome) => {
            tracing::warn!(notification.id = %id, ?outcome, "send job dead-lettered by Dapr");
            state.relay.wake();
            TopicResponse::Success
        }
        Err(error) => {
            tracing::warn!(%error, "cannot record a dead-lettered send");
            TopicResponse::Retry
        }
    }
}

/// Re-queues interrupted and lost sends every `interval` until `stop`'s
/// sender is dropped. Safe in every replica: claims decide who sends.
pub(crate) async fn sweep(
    state: AppState,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<()>,
) {
    let settings = state.settings.sending.clone();
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        match store::requeue_stale(
            &state.pool,
            settings.stale_after_secs,
            settings.requeue_after_secs,
        )
        .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(notifications = n, "re-queued interrupted or idle sends");
                state.relay.wake();
            }
            Err(error) => tracing::warn!(%error, "send sweep failed"),
        }
    }
}
