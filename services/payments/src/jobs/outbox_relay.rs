//! The outbox relay: publishes the events that payment transactions wrote
//! as outbox records (`outbox:<event id>` in `payments-state`) through the
//! sidecar, then deletes them. At least once: a crash between the publish
//! and the delete publishes again under the same CloudEvent id, which
//! consumers de-duplicate (their inbox, ADR 0005). Two replicas may publish
//! the same record concurrently; the id makes that harmless too.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use platform_dapr::{BulkEntry, Sidecar};
use platform_server::StopSignal;
use tokio::sync::Notify;

use crate::error::PaymentsError;
use crate::store::PaymentStore;

#[derive(Debug, Clone)]
pub struct OutboxRelay {
    pub store: PaymentStore,
    pub sidecar: Sidecar,
    pub pubsub: String,
    pub topic: String,
    /// Records per round (one query, one bulk publish, one delete).
    pub batch: usize,
    /// A round runs at least this often, and at once after a commit.
    pub interval: Duration,
}

impl OutboxRelay {
    /// Runs until `stop` fires (after the server drained its requests).
    pub async fn run(self, mut stop: StopSignal) {
        let wake: Arc<Notify> = self.store.outbox_written();
        loop {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(self.interval) => {}
                () = stop.stopped() => {
                    // One last round for what the final requests committed.
                    let _ = self.publish_batch().await;
                    tracing::info!("outbox relay stopped");
                    return;
                }
            }
            loop {
                match self.publish_batch().await {
                    Ok(n) if n >= self.batch => continue,
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, "outbox relay failed; retrying at the next interval");
                        break;
                    }
                }
            }
        }
    }

    /// Publishes up to `batch` records and deletes those the sidecar took;
    /// returns how many records were read.
    pub async fn publish_batch(&self) -> Result<usize, PaymentsError> {
        let messages = self.store.outbox(self.batch).await?;
        let read = messages.len();
        if read == 0 {
            return Ok(0);
        }
        let keys: Vec<String> = messages.iter().map(|m| m.key()).collect();
        let entries = messages
            .into_iter()
            .map(|m| {
                let mut metadata = HashMap::from([
                    ("cloudevent.id".to_owned(), m.event_id.clone()),
                    ("cloudevent.type".to_owned(), m.event_type.clone()),
                    ("cloudevent.subject".to_owned(), m.subject.clone()),
                ]);
                // The writer's trace (daprd's `cloudevent.traceparent`
                // override): the consumers' spans join the payment's trace.
                if let Some(traceparent) = &m.traceparent {
                    metadata.insert("cloudevent.traceparent".to_owned(), traceparent.clone());
                }
                BulkEntry {
                    id: m.key(),
                    data: serde_json::to_vec(&m.data).unwrap_or_default(),
                    metadata,
                }
            })
            .collect();
        let failed = self
            .sidecar
            .bulk_publish(&self.pubsub, &self.topic, entries)
            .await;
        let published: Vec<String> = keys.into_iter().filter(|k| !failed.contains(k)).collect();
        let count = published.len();
        self.store.delete_outbox(published).await?;
        if count < read {
            tracing::warn!(
                published = count,
                read,
                "some outbox records were not published; retried next round"
            );
        }
        Ok(read)
    }
}
