//! Output bindings (gRPC).

use std::collections::HashMap;

use dapr::dapr::proto::runtime::v1::{InvokeBindingRequest, InvokeBindingResponse};
use tracing::instrument;

use crate::{Sidecar, SidecarError};

/// A binding's answer: its data and the metadata the component reported
/// with it (e.g. `bindings.http` puts the provider's `statusCode` there).
#[derive(Debug, Clone, Default)]
pub struct BindingResponse {
    pub data: Vec<u8>,
    pub metadata: HashMap<String, String>,
}

/// A binding call that failed, in the words of daprd and of the component
/// (daprd wraps the component's error in its own message and reports every
/// binding failure with the same gRPC code, so the text is all a caller can
/// tell failures apart by).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BindingError {
    pub message: String,
}

impl Sidecar {
    async fn call_binding(
        &self,
        name: &str,
        operation: &str,
        data: Vec<u8>,
        metadata: HashMap<String, String>,
    ) -> Result<InvokeBindingResponse, tonic::Status> {
        let (mut grpc, request) = self.grpc(InvokeBindingRequest {
            name: name.to_owned(),
            data,
            metadata,
            operation: operation.to_owned(),
        });
        Ok(grpc.invoke_binding(request).await?.into_inner())
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
        Ok(self
            .call_binding(name, operation, data, metadata)
            .await?
            .data)
    }

    /// Invokes an output binding and returns its data and metadata, for
    /// bindings that report the outcome in the metadata (an HTTP status, an
    /// SMTP reply).
    #[instrument(name = "dapr.binding", skip_all, fields(dapr.binding = name, dapr.operation = operation))]
    pub async fn invoke_binding_with_metadata(
        &self,
        name: &str,
        operation: &str,
        data: Vec<u8>,
        metadata: HashMap<String, String>,
    ) -> Result<BindingResponse, BindingError> {
        match self.call_binding(name, operation, data, metadata).await {
            Ok(response) => Ok(BindingResponse {
                data: response.data,
                metadata: response.metadata,
            }),
            Err(status) => Err(BindingError {
                message: status.message().to_owned(),
            }),
        }
    }
}
