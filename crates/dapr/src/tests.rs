//! The client against tiny local listeners that play the sidecar on both
//! transports and record what they were sent: the API token on every call,
//! the HTTP exchange of an invocation kept as it is, timeouts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use platform_settings::DaprSettings;
use reqwest::header::{HeaderName, HeaderValue};
use secrecy::SecretString;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;

use crate::{
    InvokeError, InvokeRequest, OutboxEvent, Sidecar, SidecarError, StateOperation, WriteMode,
};

const TOKEN: &str = "s3cret";

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Recorded>>>;

/// Plays the sidecar's HTTP API: records each request and answers `status`
/// with `body`, after `delay`.
async fn http_listener(status: StatusCode, body: &'static str, delay: Duration) -> (u16, Log) {
    let log = Log::default();
    let recorded = Arc::clone(&log);
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body_in: Bytes| {
            let recorded = Arc::clone(&recorded);
            async move {
                recorded.lock().unwrap().push(Recorded {
                    method,
                    uri,
                    headers,
                    body: body_in,
                });
                tokio::time::sleep(delay).await;
                (status, body).into_response()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, log)
}

/// Plays the sidecar's gRPC API: records the headers (metadata) of each
/// call and answers every one `UNIMPLEMENTED`, after `delay`.
#[derive(Debug, Clone)]
struct GrpcRecorder {
    log: Arc<Mutex<Vec<HeaderMap>>>,
    delay: Duration,
}

impl NamedService for GrpcRecorder {
    const NAME: &'static str = "dapr.proto.runtime.v1.Dapr";
}

impl Service<http::Request<tonic::body::Body>> for GrpcRecorder {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        self.log.lock().unwrap().push(request.headers().clone());
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            Ok(tonic::Status::unimplemented("recorded").into_http())
        })
    }
}

async fn grpc_listener(delay: Duration) -> (u16, Arc<Mutex<Vec<HeaderMap>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let recorder = GrpcRecorder {
        log: Arc::clone(&log),
        delay,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(recorder)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (port, log)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    listener.local_addr().unwrap().port()
}

fn sidecar(http_port: u16, grpc_port: u16) -> Sidecar {
    Sidecar::connect_lazy(&DaprSettings {
        host: "127.0.0.1".into(),
        http_port,
        grpc_port,
        api_token: Some(SecretString::from(TOKEN.to_owned())),
        app_token: None,
        probe_timeout_ms: 2000,
    })
    .unwrap()
}

fn outbox_pair() -> [StateOperation; 2] {
    StateOperation::upsert_with_event(
        "k",
        br#"{"status":"created"}"#.to_vec(),
        None,
        OutboxEvent {
            event_type: "t".into(),
            subject: "s".into(),
            data: b"{}".to_vec(),
        },
    )
}

#[tokio::test]
async fn every_http_call_carries_the_token() {
    let (port, log) = http_listener(StatusCode::NO_CONTENT, "", Duration::ZERO).await;
    let sidecar = sidecar(port, closed_port());
    sidecar.check_outbound().await.unwrap();
    sidecar
        .execute_transaction("s", &outbox_pair())
        .await
        .unwrap();
    sidecar
        .invoke("psp", InvokeRequest::new(Method::GET, "/v1/x"))
        .await
        .unwrap();
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 3);
    for request in log.iter() {
        assert_eq!(request.headers["dapr-api-token"], TOKEN, "{}", request.uri);
    }
    assert_eq!(log[0].uri, "/v1.0/healthz/outbound");
    assert_eq!(log[1].uri, "/v1.0/state/s/transaction");
    assert_eq!(log[1].headers["content-type"], "application/json");
}

#[tokio::test]
async fn every_grpc_call_carries_the_token() {
    let (port, log) = grpc_listener(Duration::ZERO).await;
    let sidecar = sidecar(closed_port(), port);
    assert!(sidecar.runtime_version().await.is_err());
    let saved = sidecar
        .save_state("s", "k", b"{}".to_vec(), WriteMode::Insert, None)
        .await;
    assert!(matches!(saved, Err(SidecarError::Rejected(_))), "{saved:?}");
    assert!(
        sidecar
            .invoke_binding_with_metadata("b", "create", Vec::new(), Default::default())
            .await
            .is_err()
    );
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 3);
    for headers in log.iter() {
        assert_eq!(headers["dapr-api-token"], TOKEN);
    }
}

#[tokio::test]
async fn an_invocation_is_the_targets_http_exchange() {
    let declined = r#"{"error":{"type":"card_error","code":"card_declined"}}"#;
    let (port, log) = http_listener(StatusCode::PAYMENT_REQUIRED, declined, Duration::ZERO).await;
    let sidecar = sidecar(port, closed_port());
    let answer = sidecar
        .invoke(
            "psp",
            InvokeRequest::new(Method::POST, "/v1/refunds?reference=r%201")
                .header(
                    HeaderName::from_static("idempotency-key"),
                    HeaderValue::from_static("p.r1"),
                )
                .json(br#"{"amount":5}"#.to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(answer.body, declined.as_bytes());
    assert!(answer.sidecar_error().is_none(), "the target answered");

    let log = log.lock().unwrap();
    let sent = &log[0];
    assert_eq!(sent.method, Method::POST);
    assert_eq!(
        sent.uri,
        "/v1.0/invoke/psp/method/v1/refunds?reference=r%201"
    );
    assert_eq!(sent.headers["idempotency-key"], "p.r1");
    assert_eq!(sent.headers["content-type"], "application/json");
    assert_eq!(sent.body.as_ref(), br#"{"amount":5}"#);
}

#[tokio::test]
async fn the_sidecars_own_failure_is_told_apart() {
    let open = r#"{"errorCode":"ERR_DIRECT_INVOKE","message":"circuit breaker is open"}"#;
    let (port, _) = http_listener(StatusCode::INTERNAL_SERVER_ERROR, open, Duration::ZERO).await;
    let answer = sidecar(port, closed_port())
        .invoke("psp", InvokeRequest::new(Method::GET, "/v1/x"))
        .await
        .unwrap();
    let error = answer.sidecar_error().unwrap();
    assert_eq!(error.error_code, "ERR_DIRECT_INVOKE");
    assert_eq!(error.message, "circuit breaker is open");
}

#[tokio::test]
async fn no_sidecar_means_not_sent() {
    let result = sidecar(closed_port(), closed_port())
        .invoke("psp", InvokeRequest::new(Method::POST, "/v1/x"))
        .await;
    assert!(matches!(result, Err(InvokeError::NotSent(_))), "{result:?}");
}

#[tokio::test]
async fn a_call_past_its_timeout_is_given_up_on_both_transports() {
    let slow = Duration::from_secs(5);
    let (http_port, _) = http_listener(StatusCode::OK, "{}", slow).await;
    let (grpc_port, _) = grpc_listener(slow).await;
    let sidecar = sidecar(http_port, grpc_port).with_timeout(Duration::from_millis(100));

    let invoked = sidecar
        .invoke("psp", InvokeRequest::new(Method::POST, "/v1/x"))
        .await;
    assert!(
        matches!(invoked, Err(InvokeError::Interrupted(_))),
        "{invoked:?}"
    );
    let read = sidecar.get_state("s", "k").await;
    assert!(matches!(read, Err(ref e) if e.is_transient()), "{read:?}");
}

#[tokio::test]
async fn the_client_never_prints_the_token() {
    let printed = format!("{:?}", sidecar(closed_port(), closed_port()));
    assert!(printed.contains("Sidecar"), "{printed}");
    assert!(!printed.contains(TOKEN), "{printed}");
}
