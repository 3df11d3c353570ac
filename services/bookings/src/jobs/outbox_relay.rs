//! Publishes what transactions wrote to the `outbox` table through the
//! sidecar, then deletes it: at once when woken, at least every interval,
//! and one last round when the service stops. At least once; consumers
//! deduplicate on the CloudEvent id the row carries.

use std::collections::HashMap;
use std::time::Duration;

use platform_dapr::Sidecar;
use platform_server::{BackgroundTasks, StopSignal};
use sqlx::PgPool;

use crate::saga::Saga;
use crate::store::outbox;

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
        let mut tx = self.pool.begin().await?;
        let messages = outbox::oldest(&mut tx, self.batch).await?;
        let mut published = Vec::with_capacity(messages.len());
        for message in &messages {
            let mut metadata = HashMap::from([
                ("cloudevent.id".to_owned(), message.event_id.clone()),
                ("cloudevent.type".to_owned(), message.event_type.clone()),
            ]);
            if let Some(subject) = &message.subject {
                metadata.insert("cloudevent.subject".to_owned(), subject.clone());
            }
            let data = serde_json::to_vec(&message.payload).unwrap_or_default();
            match self
                .sidecar
                .publish_json(&self.pubsub, &message.topic, data, metadata)
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
