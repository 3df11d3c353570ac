//! A service under test, served in-process on a free port.

use std::net::SocketAddr;
use std::time::Duration;

use platform_server::Server;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::sandbox_http::wait_until_ok;
use crate::{Daprd, DaprdOptions, TestEnv};

/// The service's real router and server, run by the test's runtime; dropped
/// (or [`RunningApp::stop`]ped) it shuts down the way SIGTERM would.
#[derive(Debug)]
pub struct RunningApp {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningApp {
    pub fn start(server: Server) -> anyhow::Result<Self> {
        let addr = server.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits until `/readyz` answers 200 (sidecar and dependencies ready).
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        wait_until_ok(
            &reqwest::Client::new(),
            &self.url("/readyz"),
            timeout,
            "the app's /readyz to answer 200",
        )
        .await
    }

    /// Graceful shutdown, as on SIGTERM; returns when the server has stopped.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts a service the way every service test does: picks the sidecar's
/// ports, lets `build` put them into the service's settings and build it,
/// serves it in-process, starts its real daprd and waits until `/readyz`
/// answers 200.
pub async fn start_with_sidecar<F, Fut>(
    env: &TestEnv,
    app_id: &str,
    build: F,
) -> anyhow::Result<(RunningApp, Daprd)>
where
    F: FnOnce(&DaprdOptions) -> Fut,
    Fut: Future<Output = anyhow::Result<Server>>,
{
    let (app, daprd) = start_with_sidecar_unready(env, app_id, build).await?;
    app.wait_ready(Duration::from_secs(20)).await?;
    Ok((app, daprd))
}

/// [`start_with_sidecar`] without waiting for `/readyz`: for tests of a
/// service that is not meant to become ready.
pub async fn start_with_sidecar_unready<F, Fut>(
    env: &TestEnv,
    app_id: &str,
    build: F,
) -> anyhow::Result<(RunningApp, Daprd)>
where
    F: FnOnce(&DaprdOptions) -> Fut,
    Fut: Future<Output = anyhow::Result<Server>>,
{
    start_with_options(env, DaprdOptions::new(app_id)?, build).await
}

/// [`start_with_sidecar_unready`] with sidecar options the caller prepared
/// (`env` for components' `envRef`s, `extra_resources`): builds the service
/// with the sidecar's ports, serves it and starts its daprd. The caller
/// waits for `/readyz` ([`RunningApp::wait_ready`]) when it wants to, e.g.
/// after starting several services.
pub async fn start_with_options<F, Fut>(
    env: &TestEnv,
    dapr: DaprdOptions,
    build: F,
) -> anyhow::Result<(RunningApp, Daprd)>
where
    F: FnOnce(&DaprdOptions) -> Fut,
    Fut: Future<Output = anyhow::Result<Server>>,
{
    let server = build(&dapr).await?;
    let app = RunningApp::start(server)?;
    let daprd = Daprd::start(env, dapr, app.addr.port()).await?;
    Ok((app, daprd))
}

/// A client that sends `Authorization: Bearer <token>` on every request.
pub fn authorized_client(token: &str) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?,
    );
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .build()?)
}

/// The `WWW-Authenticate` challenge of a refused request; empty when there
/// is none, so that a test's check of it fails.
pub fn www_authenticate(res: &reqwest::Response) -> &str {
    res.headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|challenge| challenge.to_str().ok())
        .unwrap_or_default()
}

/// Sends `request` and reads its answer as JSON, whatever its status: for
/// a test's or a benchmark's arranging calls whose body it needs.
pub async fn json_answer(request: reqwest::RequestBuilder) -> anyhow::Result<serde_json::Value> {
    Ok(request.send().await?.json().await?)
}
