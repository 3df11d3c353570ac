//! Service invocation through the sidecar, e.g. of an `HTTPEndpoint` (an
//! HTTP service outside Dapr, reached under the resource's name and governed
//! by the sidecar's Resiliency policy).
//!
//! Over the sidecar's HTTP API, not gRPC `InvokeService`, because only HTTP
//! keeps the exchange an HTTP exchange. In daprd 1.18
//! (`pkg/api/grpc/grpc.go`) `InvokeService` and its gRPC → HTTP path are
//! deprecated; a non-2xx answer becomes a gRPC error status whose message
//! is the body as text (the status itself survives only as `dapr-http-status`
//! metadata), so the caller can no longer tell the target's answer from
//! daprd's own failure; and the resiliency runner counts every such answer
//! (a decline, a 404) as a failed attempt. Over HTTP daprd passes the
//! target's status and body through untouched and answers its own failures
//! (circuit open, no connection, timeout) with its JSON error body, which
//! is how a caller tells who answered ([`InvokeResponse::sidecar_error`]).

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use tracing::instrument;

use crate::Sidecar;

/// An HTTP request to invoke on another app or endpoint.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
}

impl InvokeRequest {
    /// `path` is the target's path with its query string
    /// (`/v1/refunds?reference=r1`).
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            headers: HeaderMap::new(),
            body: None,
        }
    }

    /// A header passed on to the target (e.g. `Idempotency-Key`).
    #[must_use]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// A JSON body (serialised by the caller, once).
    #[must_use]
    pub fn json(mut self, body: Vec<u8>) -> Self {
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.body = Some(body);
        self
    }
}

/// The answer, whoever gave it: the target, or daprd itself when the call
/// did not get a target's answer (see [`InvokeResponse::sidecar_error`]).
#[derive(Debug, Clone)]
pub struct InvokeResponse {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// daprd's own error answer (`{"errorCode": ..., "message": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SidecarErrorBody {
    #[serde(rename = "errorCode")]
    pub error_code: String,
    #[serde(default)]
    pub message: String,
}

impl InvokeResponse {
    /// `Some` when daprd answered instead of the target: the call never got
    /// an answer from it (circuit breaker open, connection refused, timed
    /// out after the sidecar's retries).
    pub fn sidecar_error(&self) -> Option<SidecarErrorBody> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The exchange with the sidecar itself failed, so there is no answer.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// No connection to the sidecar could be made (or the request could not
    /// even be built): it certainly went nowhere.
    #[error("sidecar unreachable: {0}")]
    NotSent(String),
    /// The exchange broke off or timed out after the request was sent: the
    /// target may have acted on it.
    #[error("{0}")]
    Interrupted(String),
}

impl From<reqwest::Error> for InvokeError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_connect() || e.is_builder() {
            Self::NotSent(e.to_string())
        } else {
            Self::Interrupted(e.to_string())
        }
    }
}

impl Sidecar {
    /// Invokes `request` on `app_id` (an app id or an `HTTPEndpoint`
    /// resource name) and returns the answer, whatever its status.
    #[instrument(name = "dapr.invoke", skip_all, fields(dapr.app_id = app_id, http.method = %request.method))]
    pub async fn invoke(
        &self,
        app_id: &str,
        request: InvokeRequest,
    ) -> Result<InvokeResponse, InvokeError> {
        let path = format!(
            "/v1.0/invoke/{app_id}/method/{}",
            request.path.trim_start_matches('/')
        );
        let mut builder = self.http(request.method, &path).headers(request.headers);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let response = builder.send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        Ok(InvokeResponse {
            status,
            body: body.into(),
        })
    }
}
