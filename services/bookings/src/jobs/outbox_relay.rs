//! Publishes what transactions wrote to the `outbox` table through the
//! sidecar, then deletes it: at once when woken, at least every interval,
//! and one last round when the service stops. At least once; consumers
//! deduplicate on the CloudEvent id the row carries.

use std::time::Duration;

use platform_dapr::{OutgoingEvent, Sidecar};
use platform_server::{BackgroundTasks, StopSignal};
use sqlx::PgPool;

use crate::saga::Saga;
use crate::store::outbox;

/// The CloudEvent `source` of everything bookings publishes (its app id).
pub const SOURCE: &str = "bookings";

#[derive(Debug, Clone)]
pub(crate) struct Relay {
    pub(crate) pool: PgPool,
    pub(crate) sidecar: Sidecar,
    pub(crate) pubsub: String,
    pub(crate) batch: i64,
}

pub(crate) fn start(tasks: &mut BackgroundTasks, relay: Relay, saga: Saga, interval: Duration) {
    tasks.spawn("outbox-relay", move |stop| run(relay, saga, interval, stop));
}

async fn run(relay: Relay, saga: Saga, interval: Duration, mut stop: StopSignal) {
    let wake = saga.wake();
    loop {
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(interval) => {}
            () = stop.stopped() => {
                let _ = relay.publish_batch().await;
                tracing::info!("outbox relay stopped");
                return;
            }
        }
        loop {
            match relay.publish_batch().await {
                Ok(n) if n as i64 >= relay.batch => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "outbox relay failed; retrying at the next interval");
                    break;
                }
            }
        }
    }
}

impl Relay {
    /// Publishes up to `batch` rows and deletes those the sidecar took.
    pub(crate) async fn publish_batch(&self) -> Result<usize, sqlx::Error> {
        let mut tx = platform_db::begin(&self.pool).await?;
        let messages = outbox::oldest(&mut tx, self.batch).await?;
        let mut published = Vec::with_capacity(messages.len());
        for message in &messages {
            // The envelope is ours (ADR 0040): the time the row was
            // written, to the microsecond.
            let mut event = OutgoingEvent::new(
                message.event_id.clone(),
                SOURCE,
                message.event_type.clone(),
                message.payload.clone(),
            )
            .at(message.created_at);
            event.subject = message.subject.clone();
            match self
                .sidecar
                .publish_event(&self.pubsub, &message.topic, &event)
                .await
            {
                Ok(()) => published.push(message.id),
                Err(error) => {
                    // Order within a booking matters to readers: stop here.
                    tracing::warn!(%error, "publish failed; the rest waits for the next round");
                    break;
                }
            }
        }
        outbox::delete(&mut tx, &published).await?;
        tx.commit().await?;
        metrics::counter!("outbox_published_total").increment(published.len() as u64);
        Ok(published.len())
    }
}
