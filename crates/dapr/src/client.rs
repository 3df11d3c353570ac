//! `Sidecar`: a cheap-to-clone handle on this service's daprd.

use std::collections::HashMap;
use std::time::Duration;

use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use dapr::dapr::proto::runtime::v1::{
    ExecuteStateTransactionRequest, GetMetadataRequest, GetStateRequest, InvokeBindingRequest,
    PublishEventRequest,
};
use platform_settings::DaprSettings;
use secrecy::{ExposeSecret, SecretString};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tracing::instrument;

use crate::{SidecarError, StateEntry, StateOperation};

const API_TOKEN_HEADER: &str = "dapr-api-token";

#[derive(Debug, Clone)]
pub struct Sidecar {
    grpc: DaprClient<Channel>,
    http: reqwest::Client,
    http_base: String,
    api_token: Option<SecretString>,
    probe_timeout: Duration,
}

impl Sidecar {
    /// Builds the client without connecting: the connection is made on first
    /// use and re-made after a sidecar restart, so start-up order between the
    /// app and its sidecar does not matter.
    pub fn connect_lazy(settings: &DaprSettings) -> Result<Self, SidecarError> {
        let channel = Endpoint::from_shared(settings.grpc_endpoint())
            .map_err(|e| SidecarError::Rejected(e.to_string()))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .connect_lazy();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.probe_timeout_ms))
            .build()
            .map_err(|e| SidecarError::Rejected(e.to_string()))?;
        Ok(Self {
            grpc: DaprClient::new(channel),
            http,
            http_base: settings.http_endpoint(),
            api_token: settings.api_token.clone(),
            probe_timeout: Duration::from_millis(settings.probe_timeout_ms),
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.api_token
            && let Ok(value) = MetadataValue::try_from(token.expose_secret())
        {
            request.metadata_mut().insert(API_TOKEN_HEADER, value);
        }
        request
    }

    /// Ready when the sidecar has loaded its components and can make outbound
    /// calls (`/v1.0/healthz/outbound`). Does not depend on this app being
    /// ready, so there is no readiness cycle between app and sidecar.
    #[instrument(name = "dapr.healthz", skip_all)]
    pub async fn check_outbound(&self) -> Result<(), SidecarError> {
        let mut req = self
            .http
            .get(format!("{}/v1.0/healthz/outbound", self.http_base))
            .timeout(self.probe_timeout);
        if let Some(token) = &self.api_token {
            req = req.header(API_TOKEN_HEADER, token.expose_secret());
        }
        let res = req.send().await?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(SidecarError::Unavailable(format!(
                "sidecar health answered {}",
                res.status()
            )))
        }
    }

    /// The daprd version the sidecar reports.
    #[instrument(name = "dapr.metadata", skip_all)]
    pub async fn runtime_version(&self) -> Result<String, SidecarError> {
        let res = self
            .grpc
            .clone()
            .get_metadata(self.request(GetMetadataRequest {}))
            .await?;
        Ok(res.into_inner().runtime_version)
    }

    #[instrument(name = "dapr.state.get", skip_all, fields(dapr.store = store, dapr.key = key))]
    pub async fn get_state(
        &self,
        store: &str,
        key: &str,
    ) -> Result<Option<StateEntry>, SidecarError> {
        let res = self
            .grpc
            .clone()
            .get_state(self.request(GetStateRequest {
                store_name: store.to_owned(),
                key: key.to_owned(),
                consistency: 0,
                metadata: HashMap::new(),
            }))
            .await?
            .into_inner();
        if res.data.is_empty() {
            return Ok(None);
        }
        let etag = (!res.etag.is_empty()).then_some(res.etag);
        Ok(Some(StateEntry {
            value: res.data,
            etag,
        }))
    }

    /// Executes `operations` atomically. In an outbox-enabled store this is
    /// also how events are published (see [`StateOperation::upsert_with_event`]).
    #[instrument(name = "dapr.state.transaction", skip_all, fields(dapr.store = store, dapr.operations = operations.len()))]
    pub async fn execute_transaction(
        &self,
        store: &str,
        operations: Vec<StateOperation>,
    ) -> Result<(), SidecarError> {
        let request = ExecuteStateTransactionRequest {
            store_name: store.to_owned(),
            operations: operations
                .into_iter()
                .map(StateOperation::into_proto)
                .collect(),
            metadata: HashMap::new(),
        };
        self.grpc
            .clone()
            .execute_state_transaction(self.request(request))
            .await?;
        Ok(())
    }

    /// Publishes `data` (JSON) to `topic`; Dapr wraps it in a CloudEvent.
    #[instrument(name = "dapr.publish", skip_all, fields(dapr.pubsub = pubsub, dapr.topic = topic))]
    pub async fn publish_json(
        &self,
        pubsub: &str,
        topic: &str,
        data: Vec<u8>,
        metadata: HashMap<String, String>,
    ) -> Result<(), SidecarError> {
        let request = PublishEventRequest {
            pubsub_name: pubsub.to_owned(),
            topic: topic.to_owned(),
            data,
            data_content_type: "application/json".to_owned(),
            metadata,
        };
        self.grpc
            .clone()
            .publish_event(self.request(request))
            .await?;
        Ok(())
    }

    /// Invokes an output binding (`operation` such as `create` or `get`) and
    /// returns the binding's response data.
    #[instrument(name = "dapr.binding", skip_all, fields(dapr.binding = name, dapr.operation = operation))]
    pub async fn invoke_binding(
        &self,
        name: &str,
        operation: &str,
        data: Vec<u8>,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<u8>, SidecarError> {
        let request = InvokeBindingRequest {
            name: name.to_owned(),
            data,
            metadata,
            operation: operation.to_owned(),
        };
        let response = self
            .grpc
            .clone()
            .invoke_binding(self.request(request))
            .await?;
        Ok(response.into_inner().data)
    }
}
