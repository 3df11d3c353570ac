//! The pinned Dapr scheduler (`make dapr`) for a test: the Jobs API behind
//! durable deadlines, on free ports, its embedded etcd in the test's
//! directory, serving the test sidecars over mTLS (this process's sentry).
//!
//! A start can fail for reasons outside the test (CI run 21 saw two
//! schedulers not become healthy in 60 s while every later one did), so a
//! start that has not become healthy within [`ATTEMPT_TIMEOUT`] is killed,
//! its log printed, and started again on new ports with a new data
//! directory, at most [`ATTEMPTS`] times. The error names every attempt's
//! log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::{ChildGuard, dapr_binary, tail};
use crate::{free_port, mtls};

/// How many starts are tried before the test fails.
const ATTEMPTS: u32 = 3;
/// How long one start may take to answer `GET /healthz` (it takes about a
/// second on an idle machine).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(40);

/// A running scheduler; killed when dropped.
#[derive(Debug)]
pub struct Scheduler {
    /// `host:port` of its gRPC server (daprd's `--scheduler-host-address`).
    pub address: String,
    _process: ChildGuard,
}

impl Scheduler {
    /// Starts a scheduler whose data and logs live under `dir`.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let mut failures = Vec::new();
        for attempt in 1..=ATTEMPTS {
            let data = dir.join(format!("scheduler-{attempt}"));
            let log = dir.join(format!("scheduler-{attempt}.log"));
            match Self::start_once(&data, &log).await {
                Ok(scheduler) => return Ok(scheduler),
                Err(e) => {
                    let tail = tail(&log, 30);
                    eprintln!(
                        "dapr scheduler start {attempt}/{ATTEMPTS} failed: {e:#}\n{}:\n{tail}",
                        log.display()
                    );
                    failures.push(format!("start {attempt}: {e:#} ({})", log.display()));
                }
            }
        }
        anyhow::bail!("the Dapr scheduler did not start: {}", failures.join("; "))
    }

    async fn start_once(data: &PathBuf, log: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data)?;
        let [port, healthz, metrics, etcd_client, etcd_peer] = [
            free_port()?,
            free_port()?,
            free_port()?,
            free_port()?,
            free_port()?,
        ];
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--listen-address",
            "127.0.0.1",
            "--healthz-port",
            &healthz.to_string(),
            "--healthz-listen-address",
            "127.0.0.1",
            "--metrics-port",
            &metrics.to_string(),
            "--metrics-listen-address",
            "127.0.0.1",
            "--etcd-data-dir",
            &data.display().to_string(),
            "--etcd-client-port",
            &etcd_client.to_string(),
            "--etcd-client-listen-address",
            "127.0.0.1",
            "--etcd-initial-cluster",
            &format!("dapr-scheduler-server-0=http://127.0.0.1:{etcd_peer}"),
            "--log-level",
            "info",
        ]
        .into_iter()
        .map(ToOwned::to_owned)
        .collect();
        // The test sidecars talk mTLS to it.
        args.extend(mtls::control_plane_args()?);
        let mut process =
            ChildGuard::spawn("dapr scheduler", &dapr_binary("scheduler"), &args, &[], log)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("http://127.0.0.1:{healthz}/healthz");
        let deadline = tokio::time::Instant::now() + ATTEMPT_TIMEOUT;
        loop {
            if let Some(status) = process.exited() {
                anyhow::bail!("exited with {status}");
            }
            if http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(Self {
                    address: format!("127.0.0.1:{port}"),
                    _process: process,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                process.stop().await.ok();
                anyhow::bail!("not healthy after {ATTEMPT_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
