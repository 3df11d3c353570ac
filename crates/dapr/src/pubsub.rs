//! Publishing to a pub/sub component, one event or a batch per call (gRPC).

use std::collections::HashMap;

use dapr::dapr::proto::runtime::v1::{
    BulkPublishRequest, BulkPublishRequestEntry, PublishEventRequest,
};
use tracing::instrument;

use crate::{Sidecar, SidecarError};

const JSON: &str = "application/json";

/// One event of [`Sidecar::bulk_publish`].
#[derive(Debug, Clone)]
pub struct BulkEntry {
    /// Names the entry in the answer (not the CloudEvent id: set that with
    /// `cloudevent.id` in `metadata`).
    pub id: String,
    /// The event's JSON data.
    pub data: Vec<u8>,
    /// Per-entry metadata, e.g. `cloudevent.id`, `cloudevent.type`.
    pub metadata: HashMap<String, String>,
}

impl Sidecar {
    /// Publishes `data` (JSON) to `topic`; Dapr wraps it in a CloudEvent.
    #[instrument(name = "dapr.publish", skip_all, fields(dapr.pubsub = pubsub, dapr.topic = topic))]
    pub async fn publish_json(
        &self,
        pubsub: &str,
        topic: &str,
        data: Vec<u8>,
        metadata: HashMap<String, String>,
    ) -> Result<(), SidecarError> {
        let (mut grpc, request) = self.grpc(PublishEventRequest {
            pubsub_name: pubsub.to_owned(),
            topic: topic.to_owned(),
            data,
            data_content_type: JSON.to_owned(),
            metadata,
        });
        grpc.publish_event(request).await?;
        Ok(())
    }

    /// Publishes `entries` to `topic` in one call; returns the ids of the
    /// entries that were not published (all of them if the call failed), so
    /// that the caller keeps exactly those for another try.
    #[instrument(name = "dapr.bulk_publish", skip_all, fields(dapr.pubsub = pubsub, dapr.topic = topic, entries = entries.len()))]
    pub async fn bulk_publish(
        &self,
        pubsub: &str,
        topic: &str,
        entries: Vec<BulkEntry>,
    ) -> Vec<String> {
        let ids: Vec<String> = entries.iter().map(|entry| entry.id.clone()).collect();
        let (mut grpc, request) = self.grpc(BulkPublishRequest {
            pubsub_name: pubsub.to_owned(),
            topic: topic.to_owned(),
            entries: entries
                .into_iter()
                .map(|entry| BulkPublishRequestEntry {
                    entry_id: entry.id,
                    event: entry.data,
                    content_type: JSON.to_owned(),
                    metadata: entry.metadata,
                })
                .collect(),
            metadata: HashMap::new(),
        });
        match grpc.bulk_publish_event(request).await {
            Ok(response) => {
                let failed = response.into_inner().failed_entries;
                if let Some(first) = failed.first() {
                    tracing::warn!(failed = failed.len(), error = %first.error, "some entries were not published");
                }
                failed.into_iter().map(|f| f.entry_id).collect()
            }
            Err(status) => {
                tracing::warn!(error = %status.message(), "bulk publish failed");
                ids
            }
        }
    }
}
