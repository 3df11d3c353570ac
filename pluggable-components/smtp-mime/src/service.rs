//! `dapr.proto.components.v1.OutputBinding` over the instances this
//! process serves. daprd sends every call of a component with the gRPC
//! metadata `x-component-instance: <component name>`, so one process serves
//! any number of `bindings.smtp-mime` components, each with its own
//! configuration and SMTP pool.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::RwLock;
use tonic::{Request, Response, Status};

use crate::config::ComponentConfig;
use crate::email::Email;
use crate::mailer::{Mailer, SendError};
use crate::proto::output_binding_server::OutputBinding;
use crate::proto::{
    InvokeRequest, InvokeResponse, ListOperationsRequest, ListOperationsResponse,
    OutputBindingInitRequest, OutputBindingInitResponse, PingRequest, PingResponse,
};

/// The gRPC metadata key daprd sets on every call (pkg/components/pluggable/grpc.go).
pub const INSTANCE_HEADER: &str = "x-component-instance";
/// The only operation.
pub const OPERATION_CREATE: &str = "create";

#[derive(Debug)]
struct Instance {
    config: ComponentConfig,
    mailer: Mailer,
}

/// The binding's state: initialised instances by component name.
#[derive(Debug, Clone, Default)]
pub struct SmtpMimeBinding {
    instances: Arc<RwLock<HashMap<String, Arc<Instance>>>>,
}

/// The caller's deadline from the `grpc-timeout` header (`<digits><unit>`,
/// unit H, M, S, m, u or n).
fn grpc_timeout<T>(request: &Request<T>) -> Option<Duration> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

fn instance_name<T>(request: &Request<T>) -> String {
    request
        .metadata()
        .get(INSTANCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

impl SmtpMimeBinding {
    pub fn new() -> Self {
        Self::default()
    }

    /// Closes every instance's pooled SMTP sessions.
    pub async fn shutdown(&self) {
        let instances: Vec<Arc<Instance>> = self
            .instances
            .write()
            .await
            .drain()
            .map(|(_, i)| i)
            .collect();
        for instance in instances {
            instance.mailer.shutdown().await;
        }
    }
}

#[tonic::async_trait]
impl OutputBinding for SmtpMimeBinding {
    async fn init(
        &self,
        request: Request<OutputBindingInitRequest>,
    ) -> Result<Response<OutputBindingInitResponse>, Status> {
        let instance = instance_name(&request);
        let properties = request
            .into_inner()
            .metadata
            .map(|m| m.properties)
            .unwrap_or_default();
        let config = ComponentConfig::from_metadata(&properties).map_err(|e| {
            tracing::error!(instance, error = %e, "component initialisation refused");
            Status::invalid_argument(e.to_string())
        })?;
        let mailer = Mailer::new(&config).map_err(|e| {
            tracing::error!(instance, error = %e, "component initialisation failed");
            Status::invalid_argument(format!("smtp-mime: invalid component metadata: {e}"))
        })?;
        tracing::info!(
            instance,
            smtp.host = %config.host,
            smtp.port = config.port,
            smtp.tls = ?config.tls,
            smtp.auth = config.credentials.is_some(),
            pool.size = config.pool_size,
            timeout_ms = u64::try_from(config.timeout.as_millis()).unwrap_or(u64::MAX),
            "component initialised"
        );
        let replaced = self
            .instances
            .write()
            .await
            .insert(instance, Arc::new(Instance { config, mailer }));
        if let Some(old) = replaced {
            old.mailer.shutdown().await;
        }
        Ok(Response::new(OutputBindingInitResponse {}))
    }

    async fn invoke(
        &self,
        request: Request<InvokeRequest>,
    ) -> Result<Response<InvokeResponse>, Status> {
        let started = Instant::now();
        let instance_id = instance_name(&request);
        // daprd sends its Resiliency timeout as `grpc-timeout`: a send that
        // cannot finish by then is not carried on after daprd gave up.
        let deadline = grpc_timeout(&request).map(|timeout| started + timeout);
        let request = request.into_inner();
        if request.operation != OPERATION_CREATE {
            return Err(Status::invalid_argument(format!(
                "smtp-mime: invalid request: operation {:?} is not supported (only {OPERATION_CREATE:?})",
                request.operation
            )));
        }
        let instance = self
            .instances
            .read()
            .await
            .get(&instance_id)
            .cloned()
            .ok_or_else(|| {
                tracing::error!(
                    instance = instance_id,
                    "invoke on an uninitialised instance"
                );
                Status::unavailable(format!(
                    "smtp-mime: unavailable: component instance {instance_id:?} is not initialised \
                     (the binding process restarted after daprd started; restart daprd)"
                ))
            })?;

        let email =
            Email::from_request(&request.data, &request.metadata, &instance.config.defaults)
                .map_err(|e| {
                    metrics::counter!("smtp_mime_sends_total", "outcome" => "invalid").increment(1);
                    // The reason may quote addresses: it goes to the caller,
                    // not to the log.
                    tracing::info!(instance = instance_id, "request refused as invalid");
                    Status::invalid_argument(e.to_string())
                })?;
        let message_id = email.message_id.clone();
        let recipients = email.recipients;
        let duration_ms = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match instance.mailer.send(email.message, deadline).await {
            Ok(reply) => {
                let outcome = if reply.accepted {
                    "accepted"
                } else {
                    "rejected"
                };
                metrics::counter!("smtp_mime_sends_total", "outcome" => outcome).increment(1);
                tracing::info!(
                    instance = instance_id,
                    outcome,
                    smtp.code = reply.code,
                    message_id,
                    recipients,
                    duration_ms = duration_ms(),
                    "email sent"
                );
                let metadata = HashMap::from([
                    ("outcome".to_owned(), outcome.to_owned()),
                    ("smtpCode".to_owned(), reply.code.to_string()),
                    ("smtpMessage".to_owned(), reply.message),
                    ("messageId".to_owned(), message_id),
                ]);
                Ok(Response::new(InvokeResponse {
                    data: Vec::new(),
                    metadata,
                    content_type: String::new(),
                }))
            }
            Err(SendError::Invalid(why)) => {
                metrics::counter!("smtp_mime_sends_total", "outcome" => "invalid").increment(1);
                tracing::info!(
                    instance = instance_id,
                    outcome = "invalid",
                    reason = why,
                    message_id,
                    "email cannot be sent to this server"
                );
                Err(Status::invalid_argument(
                    SendError::Invalid(why).to_string(),
                ))
            }
            Err(unavailable) => {
                metrics::counter!("smtp_mime_sends_total", "outcome" => "unavailable").increment(1);
                tracing::warn!(
                    instance = instance_id,
                    outcome = "unavailable",
                    error = %unavailable,
                    message_id,
                    duration_ms = duration_ms(),
                    "email not sent"
                );
                Err(Status::unavailable(unavailable.to_string()))
            }
        }
    }

    async fn list_operations(
        &self,
        _request: Request<ListOperationsRequest>,
    ) -> Result<Response<ListOperationsResponse>, Status> {
        Ok(Response::new(ListOperationsResponse {
            operations: vec![OPERATION_CREATE.to_owned()],
        }))
    }

    async fn ping(&self, _request: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        Ok(Response::new(PingResponse {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::MetadataRequest;

    fn request<T>(instance: &str, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert(INSTANCE_HEADER, instance.parse().unwrap());
        request
    }

    /// A local port nobody listens on (connection refused).
    fn closed_port() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port().to_string()
    }

    async fn init(binding: &SmtpMimeBinding, instance: &str, pairs: &[(&str, &str)]) {
        let properties = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        binding
            .init(request(
                instance,
                OutputBindingInitRequest {
                    metadata: Some(MetadataRequest { properties }),
                },
            ))
            .await
            .unwrap();
    }

    fn create(metadata: &[(&str, &str)]) -> InvokeRequest {
        InvokeRequest {
            data: br#"{"text":"hi"}"#.to_vec(),
            metadata: metadata
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            operation: OPERATION_CREATE.to_owned(),
        }
    }

    #[tokio::test]
    async fn each_instance_keeps_its_own_configuration() {
        let binding = SmtpMimeBinding::new();
        let port = closed_port();
        init(
            &binding,
            "with-sender",
            &[
                ("host", "127.0.0.1"),
                ("port", &port),
                ("tls", "none"),
                ("emailFrom", "a@x.test"),
            ],
        )
        .await;
        init(
            &binding,
            "without-sender",
            &[("host", "127.0.0.1"), ("port", &port), ("tls", "none")],
        )
        .await;
        let to = [("emailTo", "ada@y.test")];

        let without = binding
            .invoke(request("without-sender", create(&to)))
            .await
            .unwrap_err();
        let with = binding
            .invoke(request("with-sender", create(&to)))
            .await
            .unwrap_err();

        assert_eq!(without.code(), tonic::Code::InvalidArgument);
        assert!(
            without
                .message()
                .starts_with("smtp-mime: invalid request: no sender"),
            "{without:?}"
        );
        assert_eq!(with.code(), tonic::Code::Unavailable, "{with:?}");
        assert!(
            with.message().starts_with("smtp-mime: unavailable: "),
            "{with:?}"
        );
        binding.shutdown().await;
    }

    #[tokio::test]
    async fn unknown_operations_and_instances_are_refused() {
        let binding = SmtpMimeBinding::new();
        init(
            &binding,
            "mail",
            &[("host", "127.0.0.1"), ("port", &closed_port())],
        )
        .await;

        let mut delete = create(&[("emailTo", "ada@y.test")]);
        delete.operation = "delete".into();
        let refused = binding.invoke(request("mail", delete)).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(
            refused
                .message()
                .starts_with("smtp-mime: invalid request: operation")
        );

        let unknown = binding
            .invoke(request("other", create(&[("emailTo", "ada@y.test")])))
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::Unavailable);
        assert!(unknown.message().contains("not initialised"), "{unknown:?}");

        let operations = binding
            .list_operations(request("mail", ListOperationsRequest {}))
            .await
            .unwrap()
            .into_inner()
            .operations;
        assert_eq!(operations, ["create"]);
        assert!(binding.ping(request("mail", PingRequest {})).await.is_ok());
    }

    #[tokio::test]
    async fn init_refuses_bad_metadata_with_the_reason() {
        let binding = SmtpMimeBinding::new();
        let status = binding
            .init(request(
                "mail",
                OutputBindingInitRequest {
                    metadata: Some(MetadataRequest {
                        properties: HashMap::from([("host".to_owned(), "mx.test".to_owned())]),
                    }),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "smtp-mime: invalid component metadata: port: is required"
        );
    }
}
