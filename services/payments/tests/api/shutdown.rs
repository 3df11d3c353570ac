//! The real binary, as a process: SIGTERM lets an in-flight request finish,
//! then the process exits 0.

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use platform_test_support::{free_port, run_until_exit};

/// Kills the binary if the test fails before it exits by itself.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]
impl KillOnDrop {
    /// Waits for the process to exit, at most `timeout`.
    fn wait_at_most(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits_cleanly() {
    // What is needed here is a slow request, not a sidecar: a listener that
    // accepts and never answers makes /readyz take the whole probe timeout,
    // so a request is in flight when the signal arrives. (Sidecar behaviour
    // is tested against the real daprd elsewhere.)
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let app_port = free_port().unwrap();

    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_payments"))
            .env("APP_ENVIRONMENT", "test")
            .env("APP__SERVER__PORT", app_port.to_string())
            .env("APP__DAPR__PROBE_TIMEOUT_MS", "1500")
            .env("DAPR_HTTP_PORT", silent_port.to_string())
            .env("DAPR_GRPC_PORT", silent_port.to_string())
            .env("APP__TELEMETRY__LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

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
    // Wait until the request is being served (its probe holds a connection
    // to the silent listener), then signal.
    let (_held, _) = tokio::task::spawn_blocking(move || silent.accept())
        .await
        .unwrap()
        .unwrap();
    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());

    // The in-flight request still gets its answer (503: the probe timed out)...
    let response = in_flight
        .await
        .unwrap()
        .expect("in-flight request answered during shutdown");
    assert_eq!(response.status(), 503);
    // ...and the process then exits 0, well within the shutdown grace.
    let status = tokio::task::spawn_blocking(move || child.wait_at_most(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(signalled.elapsed() < Duration::from_secs(10));
}

#[test]
fn invalid_settings_stop_the_binary_at_start_with_a_message() {
    let (status, stderr) = run_until_exit(
        Command::new(env!("CARGO_BIN_EXE_payments"))
            .env("APP_ENVIRONMENT", "test")
            .env("APP__SERVER__REQUEST_TIMEOUT_MS", "0"),
        Duration::from_secs(10),
    );
    assert!(!status.success());
    assert!(stderr.contains("request_timeout_ms"), "{stderr}");
}
