//! Integration-test harness.
//!
//! Everything a test starts is real: `daprd` built by `scripts/install-dapr.sh`
//! (its version is checked against the pin in `tools/dapr/go.mod`), a
//! `redis-server` of its own, a PostgreSQL database of its own on the local
//! server. Nothing is shared between tests, so they run in parallel.
//!
//! Processes are killed when their guard is dropped, also when the test
//! panics, and are started under `setpriv --pdeathsig SIGKILL` so that they
//! die with the test thread even if the test process is killed.

mod app;
pub mod bench;
mod binary;
pub mod chaos;
mod daprd;
mod gateway;
mod issuer;
mod mtls;
mod notify;
mod oauth;
mod ports;
mod postgres;
mod process;
mod production;
mod psp;
mod pubsub_scopes;
mod redis;
mod repo;
mod sandbox_http;
mod scheduler;
mod smtp;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use app::{
    RunningApp, authorized_client, json_answer, start_with_options, start_with_sidecar,
    start_with_sidecar_unready, www_authenticate,
};
pub use binary::run_until_exit;
pub use daprd::{Daprd, DaprdOptions};
pub use gateway::{EdgeGateway, EdgeOptions, RotatingIssuer};
pub use issuer::TestIssuer;
pub use mtls::control_plane_args as mtls_control_plane_args;
pub use notify::NotifySandbox;
pub use oauth::{client_credentials_grant, stack_token};
pub use ports::free_port;
pub use postgres::TestDatabase;
pub use production::{production_settings, refusal, sidecar_tokens};
pub use psp::PspSandbox;
pub use pubsub_scopes::topics_published_by;
pub use redis::TestRedis;
pub use repo::{pinned_dapr_version, repo_root};
pub use scheduler::Scheduler;
pub use smtp::{SmtpCatcher, smtp_send};

/// The shared surroundings of one test: its own Redis and a scratch folder
/// (logs, the name-resolution database of its sidecars).
#[derive(Debug)]
pub struct TestEnv {
    pub redis: TestRedis,
    dir: tempfile::TempDir,
}

impl TestEnv {
    pub async fn start() -> anyhow::Result<Self> {
        init_tracing();
        let dir = tempfile::Builder::new()
            .prefix("platform-test-")
            .tempdir()?;
        let redis = TestRedis::start(dir.path()).await?;
        Ok(Self { redis, dir })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where this test's storage bindings write files (`STATEMENTS_DIR`).
    pub fn files_dir(&self) -> PathBuf {
        self.dir.path().join("files")
    }

    /// Where this test's sidecars register and resolve each other.
    pub fn name_resolution_db(&self) -> PathBuf {
        self.dir.path().join("name-resolution.db")
    }

    /// This test's secrets file, read by the `platform-secrets` store
    /// (`PLATFORM_SECRETS_FILE`): the local values `make up` uses too
    /// (scripts/lib/secrets.sh): the test Redis has no password, and each
    /// service's database role's password is its name
    /// (scripts/sql/service-databases.sql, [`TestDatabase::create_for`]).
    pub fn secrets_file(&self) -> anyhow::Result<PathBuf> {
        let file = self.dir.path().join("secrets.json");
        if !file.exists() {
            let secrets = serde_json::json!({
                "REDIS_PASSWORD": "",
                "PAYMENTS_STATE_PASSWORD": "payments",
            });
            std::fs::write(&file, serde_json::to_vec_pretty(&secrets)?)?;
        }
        Ok(file)
    }
}

/// A random token for a sidecar's API or app token: two random (v4)
/// UUIDs, 244 random bits, hex.
pub fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A client that sends `name: value` on every request (marked sensitive).
pub fn client_with_header(name: &'static str, value: &str) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut value = reqwest::header::HeaderValue::from_str(value)?;
    value.set_sensitive(true);
    headers.insert(reqwest::header::HeaderName::from_static(name), value);
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .build()?)
}

/// Polls `check` until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Logs of the code under test, shown for failing tests (`RUST_LOG` filters;
/// warnings and errors by default).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
