//! `Sidecar`: a cheap-to-clone handle on this service's daprd, and the two
//! transports every call goes out on. The calls themselves live with their
//! building block (`state`, `pubsub`, `binding`, `invoke`).

use std::time::Duration;

use dapr::dapr::proto::runtime::v1::GetMetadataRequest;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use platform_settings::DaprSettings;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tracing::instrument;

use crate::SidecarError;
use crate::token::ApiToken;

pub(crate) type Grpc = DaprClient<InterceptedService<Channel, ApiToken>>;

#[derive(Debug, Clone)]
pub struct Sidecar {
    grpc: Grpc,
    /// Sends the API token with every request (default headers).
    http: reqwest::Client,
    http_base: String,
    probe_timeout: Duration,
    /// Deadline of every call made through this handle ([`Sidecar::with_timeout`]).
    call_timeout: Option<Duration>,
}

impl Sidecar {
    /// Builds the client without connecting: the connection is made on first
    /// use and re-made after a sidecar restart, so start-up order between the
    /// app and its sidecar does not matter.
    pub fn connect_lazy(settings: &DaprSettings) -> Result<Self, SidecarError> {
        let token = ApiToken::from_settings(settings)?;
        let channel = Endpoint::from_shared(settings.grpc_endpoint())
            .map_err(|e| SidecarError::Rejected(e.to_string()))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .connect_lazy();
        let http = reqwest::Client::builder()
            .default_headers(token.http_headers())
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| SidecarError::Rejected(e.to_string()))?;
        Ok(Self {
            grpc: DaprClient::with_interceptor(channel, token),
            http,
            http_base: settings.http_endpoint(),
            probe_timeout: settings.probe_timeout(),
            call_timeout: None,
        })
    }

    /// The same sidecar, with every call through the returned handle given
    /// up after `timeout` (as a gRPC deadline, which daprd also honours, or
    /// as the HTTP request's timeout). A call that times out is
    /// [`SidecarError::Unavailable`]; whether it had an effect is unknown.
    #[must_use]
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self {
            call_timeout: Some(timeout),
            ..self.clone()
        }
    }

    /// A gRPC client and the request to send on it (token added by the
    /// client's interceptor, deadline here).
    pub(crate) fn grpc<T>(&self, message: T) -> (Grpc, tonic::Request<T>) {
        let mut request = tonic::Request::new(message);
        if let Some(timeout) = self.call_timeout {
            request.set_timeout(timeout);
        }
        // W3C trace context as gRPC metadata: daprd's span (and the
        // CloudEvent it publishes, the binding it calls) joins this trace.
        for (name, value) in platform_telemetry::current_trace_context() {
            if let Ok(value) = value.parse() {
                request.metadata_mut().insert(name, value);
            }
        }
        (self.grpc.clone(), request)
    }

    /// An HTTP request to the sidecar's API at `path` (`/v1.0/...`).
    pub(crate) fn http(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.http_base));
        // W3C trace context, so that daprd's span and the call it makes
        // (an invocation, a PSP request) join this trace.
        for (name, value) in platform_telemetry::current_trace_context() {
            request = request.header(name, value);
        }
        match self.call_timeout {
            Some(timeout) => request.timeout(timeout),
            None => request,
        }
    }

    /// Ready when the sidecar has loaded its components and can make outbound
    /// calls (`/v1.0/healthz/outbound`). Does not depend on this app being
    /// ready, so there is no readiness cycle between app and sidecar. Over
    /// HTTP: Dapr exposes its health only there.
    #[instrument(name = "dapr.healthz", skip_all)]
    pub async fn check_outbound(&self) -> Result<(), SidecarError> {
        let res = self
            .http(reqwest::Method::GET, "/v1.0/healthz/outbound")
            .timeout(self.probe_timeout)
            .send()
            .await?;
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
        let (mut grpc, request) = self.grpc(GetMetadataRequest {});
        let res = grpc.get_metadata(request).await?;
        Ok(res.into_inner().runtime_version)
    }
}
