//! The real binary, as a process: SIGTERM lets an in-flight request finish,
//! then the process exits 0.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use platform_test_support::free_port;

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits_cleanly() {
    // A "sidecar" that accepts connections and never answers makes /readyz
    // take the whole probe timeout: a request that is in flight when the
    // signal arrives.
    let silent_sidecar = TcpListener::bind("127.0.0.1:0").unwrap();
    let sidecar_port = silent_sidecar.local_addr().unwrap().port();
    let app_port = free_port().unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_payments"))
        .env("APP_ENVIRONMENT", "test")
        .env("APP__SERVER__PORT", app_port.to_string())
        .env("APP__DAPR__PROBE_TIMEOUT_MS", "1500")
        .env("DAPR_HTTP_PORT", sidecar_port.to_string())
        .env("DAPR_GRPC_PORT", sidecar_port.to_string())
        .env("APP__TELEMETRY__LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let base = format!("http://127.0.0.1:{app_port}");
    platform_test_support::eventually(Duration::from_secs(10), "the binary to listen", || async {
        reqwest::get(format!("{base}/healthz"))
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await
    .unwrap();

    let in_flight = tokio::spawn(reqwest::get(format!("{base}/readyz")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());

    // The in-flight request still gets its answer (503: the sidecar never replied)...
    let response = in_flight
        .await
        .unwrap()
        .expect("in-flight request answered during shutdown");
    assert_eq!(response.status(), 503);
    // ...new connections are refused once the listener is closed...
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(signalled.elapsed() < Duration::from_secs(10));
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err());
    drop(silent_sidecar);
}

#[test]
fn invalid_settings_stop_the_binary_at_start_with_a_message() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_payments"))
        .env("APP_ENVIRONMENT", "test")
        .env("APP__SERVER__REQUEST_TIMEOUT_MS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success());
    assert!(stderr.contains("request_timeout_ms"), "{stderr}");
}
