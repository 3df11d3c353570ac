//! mTLS for every sidecar a test starts: one Dapr `sentry` per test process,
//! signing with the trust bundle `scripts/lib/mtls.sh` makes (and caches),
//! and the daprd flags that same script writes. The one Rust place that
//! knows how a test's sidecar talks mTLS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{free_port, repo_root};

/// What a daprd needs to talk mTLS with this process's sentry.
#[derive(Debug)]
pub(crate) struct Mtls {
    /// `--enable-mtls --sentry-address … --control-plane-*`.
    pub(crate) daprd_args: Vec<String>,
    /// The root certificate (PEM), for `DAPR_TRUST_ANCHORS`.
    pub(crate) trust_anchors: String,
    /// `--tls-enabled --sentry-address … --trust-anchors-file … --trust-domain …`:
    /// what a control-plane service (the scheduler) needs so that the
    /// sidecars reach it with mTLS (`mtls_control_plane_flags`).
    pub(crate) control_plane_args: Vec<String>,
}

/// The flags a test's Dapr scheduler needs to serve the test sidecars,
/// which talk mTLS to it (from `scripts/lib/mtls.sh`, like make up's).
pub fn control_plane_args() -> anyhow::Result<Vec<String>> {
    Ok(mtls()?.control_plane_args.clone())
}

/// Starts sentry the first time it is asked for, then hands out the same.
/// Sentry runs as long as the test process (killed with it: it is spawned
/// under `setpriv --pdeathsig` by a thread that never ends).
pub(crate) fn mtls() -> anyhow::Result<&'static Mtls> {
    static MTLS: OnceLock<Result<Mtls, String>> = OnceLock::new();
    MTLS.get_or_init(|| start().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("sentry for the test sidecars: {e}"))
}

fn script() -> PathBuf {
    repo_root().join("scripts/lib/mtls.sh")
}

fn run_script(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("bash").arg(script()).args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "scripts/lib/mtls.sh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

fn sentry_binary() -> PathBuf {
    crate::process::dapr_binary("sentry")
}

fn start() -> anyhow::Result<Mtls> {
    let bundle = PathBuf::from(run_script(&["bundle"])?.trim());
    let trust_anchors = std::fs::read_to_string(bundle.join("ca.crt"))?;
    let port = free_port()?;
    let healthz = free_port()?;
    let metrics = free_port()?;
    // One file for every test process (appended; sentry logs warnings only).
    let log = std::env::temp_dir().join("platform-test-sentry.log");
    let args: Vec<String> = vec![
        "--issuer-credentials".into(),
        bundle.display().to_string(),
        "--trust-domain".into(),
        "localhost".into(),
        "--port".into(),
        port.to_string(),
        "--listen-address".into(),
        "127.0.0.1".into(),
        "--healthz-port".into(),
        healthz.to_string(),
        "--healthz-listen-address".into(),
        "127.0.0.1".into(),
        "--metrics-port".into(),
        metrics.to_string(),
        "--metrics-listen-address".into(),
        "127.0.0.1".into(),
        "--config".into(),
        repo_root()
            .join("dapr-config/sentry/config.yaml")
            .display()
            .to_string(),
        "--log-level".into(),
        "warn".into(),
    ];
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let log_file = log.clone();
    // pdeathsig fires when the spawning *thread* ends: this one never does.
    std::thread::Builder::new()
        .name("sentry".into())
        .spawn(move || {
            let spawned = (|| -> anyhow::Result<std::process::Child> {
                let out = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log_file)?;
                let err = out.try_clone()?;
                Ok(Command::new("setpriv")
                    .arg("--pdeathsig")
                    .arg("SIGKILL")
                    .arg("--")
                    .arg(sentry_binary())
                    .args(&args)
                    .stdin(Stdio::null())
                    .stdout(out)
                    .stderr(err)
                    .spawn()?)
            })();
            let _child = match spawned {
                Ok(child) => {
                    let _ = started_tx.send(Ok(()));
                    child
                }
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            loop {
                std::thread::park();
            }
        })?;
    started_rx.recv()??;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !healthy(healthz) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "sentry not healthy after 30 s:\n{}",
            crate::process::tail(&log, 30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let daprd_args = run_script(&["flags", &format!("127.0.0.1:{port}")])?
        .lines()
        .map(ToOwned::to_owned)
        .collect();
    let control_plane_args = run_script(&["control-plane-flags", &format!("127.0.0.1:{port}")])?
        .lines()
        .map(ToOwned::to_owned)
        .collect();
    Ok(Mtls {
        daprd_args,
        trust_anchors,
        control_plane_args,
    })
}

/// `GET /healthz` answers 2xx (plain HTTP/1.0 over std, outside any runtime).
fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && head[9] == b'2'
}
