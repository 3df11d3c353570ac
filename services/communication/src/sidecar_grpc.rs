//! The two sidecar calls `platform_dapr::Sidecar` does not offer, over the
//! sidecar's gRPC API: output-binding calls that keep the binding's response
//! metadata (the HTTP binding reports the provider's `statusCode` there), and
//! bulk publishing (one call for a batch of outbox rows).

use std::collections::HashMap;
use std::time::Duration;

use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use dapr::dapr::proto::runtime::v1::{
    BulkPublishRequest, BulkPublishRequestEntry, InvokeBindingRequest,
};
use platform_settings::DaprSettings;
use secrecy::{ExposeSecret, SecretString};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tracing::instrument;

#[derive(Debug, Clone)]
pub struct SidecarGrpc {
    grpc: DaprClient<Channel>,
    api_token: Option<SecretString>,
}

/// A binding's answer: its data and metadata.
#[derive(Debug, Clone, Default)]
pub struct BindingResponse {
    pub data: Vec<u8>,
    pub metadata: HashMap<String, String>,
}

/// The sidecar or the binding failed; `message` is what the component said.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BindingError {
    pub code: tonic::Code,
    pub message: String,
}

impl SidecarGrpc {
    pub fn connect_lazy(settings: &DaprSettings) -> Result<Self, String> {
        let channel = Endpoint::from_shared(settings.grpc_endpoint())
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(Self {
            grpc: DaprClient::new(channel),
            api_token: settings.api_token.clone(),
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.api_token
            && let Ok(value) = MetadataValue::try_from(token.expose_secret())
        {
            request.metadata_mut().insert("dapr-api-token", value);
        }
        request
    }

    /// Publishes `entries` (id, JSON data, CloudEvent metadata) to `topic` in
    /// one call; returns the ids of the entries that failed (all of them if
    /// the call failed).
    #[instrument(name = "dapr.bulk_publish", skip_all, fields(dapr.pubsub = pubsub, dapr.topic = topic, entries = entries.len()))]
    pub async fn bulk_publish(
        &self,
        pubsub: &str,
        topic: &str,
        entries: Vec<(String, Vec<u8>, HashMap<String, String>)>,
    ) -> Vec<String> {
        let ids: Vec<String> = entries.iter().map(|(id, _, _)| id.clone()).collect();
        let request = self.request(BulkPublishRequest {
            pubsub_name: pubsub.to_owned(),
            topic: topic.to_owned(),
            entries: entries
                .into_iter()
                .map(|(entry_id, event, metadata)| BulkPublishRequestEntry {
                    entry_id,
                    event,
                    content_type: "application/json".to_owned(),
                    metadata,
                })
                .collect(),
            metadata: HashMap::new(),
        });
        match self.grpc.clone().bulk_publish_event(request).await {
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

    #[instrument(name = "dapr.binding", skip_all, fields(dapr.binding = name, dapr.operation = operation))]
    pub async fn invoke(
        &self,
        name: &str,
        operation: &str,
        data: Vec<u8>,
        metadata: HashMap<String, String>,
    ) -> Result<BindingResponse, BindingError> {
        let request = self.request(InvokeBindingRequest {
            name: name.to_owned(),
            data,
            metadata,
            operation: operation.to_owned(),
        });
        match self.grpc.clone().invoke_binding(request).await {
            Ok(response) => {
                let response = response.into_inner();
                Ok(BindingResponse {
                    data: response.data,
                    metadata: response.metadata,
                })
            }
            Err(status) => Err(BindingError {
                code: status.code(),
                message: status.message().to_owned(),
            }),
        }
    }
}
