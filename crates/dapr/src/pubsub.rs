//! Publishing to a pub/sub component, one event or a batch per call (gRPC).

use std::collections::HashMap;

use dapr::dapr::proto::runtime::v1::{
    BulkPublishRequest, BulkPublishRequestEntry, PublishEventRequest,
};
use tracing::instrument;

use crate::cloudevent::CLOUDEVENT_JSON;
use crate::{OutgoingEvent, Sidecar, SidecarError};

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

    /// Publishes `event` to `topic` as the CloudEvent the service built
    /// (`contracts/events/envelope.schema.json`): daprd adds only `topic`
    /// and `pubsubname`.
    #[instrument(name = "dapr.publish", skip_all, fields(dapr.pubsub = pubsub, dapr.topic = topic, event.type = %event.event_type))]
    pub async fn publish_event(
        &self,
        pubsub: &str,
        topic: &str,
        event: &OutgoingEvent,
    ) -> Result<(), SidecarError> {
        let (mut grpc, request) = self.grpc(PublishEventRequest {
            pubsub_name: pubsub.to_owned(),
            topic: topic.to_owned(),
            data: event.to_bytes(),
            data_content_type: CLOUDEVENT_JSON.to_owned(),
            metadata: HashMap::new(),
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
        let entries = entries
            .into_iter()
            .map(|entry| BulkPublishRequestEntry {
                entry_id: entry.id,
                event: entry.data,
                content_type: JSON.to_owned(),
                metadata: entry.metadata,
            })
            .collect();
        self.bulk(pubsub, topic, entries).await
    }

    /// As [`Sidecar::bulk_publish`], each entry `(entry id, event)` the
    /// CloudEvent the service built (see [`Sidecar::publish_event`]).
    #[instrument(name = "dapr.bulk_publish", skip_all, fields(dapr.pubsub = pubsub, dapr.topic = topic, entries = events.len()))]
    pub async fn bulk_publish_events(
        &self,
        pubsub: &str,
        topic: &str,
        events: Vec<(String, OutgoingEvent)>,
    ) -> Vec<String> {
        let entries = events
            .into_iter()
            .map(|(id, event)| BulkPublishRequestEntry {
                entry_id: id,
                event: event.to_bytes(),
                content_type: CLOUDEVENT_JSON.to_owned(),
                metadata: HashMap::new(),
            })
            .collect();
        self.bulk(pubsub, topic, entries).await
    }

    async fn bulk(
        &self,
        pubsub: &str,
        topic: &str,
        entries: Vec<BulkPublishRequestEntry>,
    ) -> Vec<String> {
        let ids: Vec<String> = entries.iter().map(|entry| entry.entry_id.clone()).collect();
        let (mut grpc, request) = self.grpc(BulkPublishRequest {
            pubsub_name: pubsub.to_owned(),
            topic: topic.to_owned(),
            entries,
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
