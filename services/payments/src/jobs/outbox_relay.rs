//! The outbox relay: publishes the events that payment transactions wrote
//! as outbox records (`outbox:<event id>` in `payments-state`) through the
//! sidecar, then deletes them. At least once: a crash between the publish
//! and the delete publishes again under the same CloudEvent id, which
//! consumers de-duplicate (their inbox, ADR 0005). Two replicas may publish
//! the same record concurrently; the id makes that harmless too.

use std::sync::Arc;
use std::time::Duration;

use platform_dapr::{OutgoingEvent, Sidecar};
use platform_server::StopSignal;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::error::PaymentsError;
use crate::store::{OutboxMessage, PaymentStore};

/// The CloudEvent `source` of everything payments publishes (its app id).
pub const SOURCE: &str = "payments";

/// When the record was written (16-digit microseconds, `store::micros`);
/// now if it cannot be read.
fn queued_at(micros: &str) -> OffsetDateTime {
    micros
        .parse::<i128>()
        .ok()
        .and_then(|us| OffsetDateTime::from_unix_timestamp_nanos(us * 1000).ok())
        .unwrap_or_else(OffsetDateTime::now_utc)
}

/// The CloudEvent of an outbox record, named by its key. The envelope is
/// ours (ADR 0040): the time of the change, to the microsecond, and the
/// writer's trace, so the consumers' spans join the payment's trace (ADR 0032).
pub(crate) fn cloud_event(m: OutboxMessage) -> (String, OutgoingEvent) {
    let key = m.key();
    let event = OutgoingEvent::new(m.event_id, SOURCE, m.event_type, m.data)
        .subject(m.subject)
        .at(queued_at(&m.queued_at_us))
        .in_trace(m.traceparent);
    (key, event)
}

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
        let events = messages.into_iter().map(cloud_event).collect();
        let failed = self
            .sidecar
            .bulk_publish_events(&self.pubsub, &self.topic, events)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_time_is_when_the_record_was_written() {
        let at = queued_at("1765000000123456");
        assert_eq!(
            platform_dapr::format_time(at),
            "2025-12-06T05:46:40.123456Z"
        );
    }
}
