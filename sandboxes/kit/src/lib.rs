//! The parts every provider sandbox (`sandboxes/psp`, `sandboxes/notify`)
//! shares: the process's `main` ([`run_process`]: logging, settings, serving
//! until SIGTERM/SIGINT), binding and serving with a graceful shutdown that
//! releases held-back answers ([`Server`]), running in-process for tests
//! ([`RunningSandbox`]), reading settings variables ([`settings`]), and
//! signed POSTs with retries ([`signed_post`]).
//! Sandboxes stand in for external providers, so they do not depend on the
//! platform's own server crate.

pub mod settings;
pub mod signed_post;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing_subscriber::EnvFilter;

use crate::settings::FromVariables;

/// The `main` of a sandbox process: logs (JSON when the variable
/// `log_format_var` is `json`), reads the settings from the environment,
/// builds the sandbox and serves it until SIGTERM or SIGINT. A failure is
/// logged and exits non-zero.
pub async fn run_process<S, A, Fut>(log_format_var: &str, build: impl FnOnce(S) -> Fut) -> ExitCode
where
    S: FromVariables,
    Fut: Future<Output = std::io::Result<A>>,
    A: Into<Server>,
{
    init_logging(log_format_var);
    let outcome = async {
        let settings = S::from_env().map_err(|e| format!("invalid settings: {e}"))?;
        let server: Server = build(settings)
            .await
            .map_err(|e| format!("cannot bind: {e}"))?
            .into();
        server
            .run_until_stopped(shutdown_signal())
            .await
            .map_err(|e| format!("server failed: {e}"))
    }
    .await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "sandbox failed");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stdout at `RUST_LOG` (default `info`); JSON when the variable
/// `format_var` is `json`, colours only on a terminal.
fn init_logging(format_var: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    if std::env::var(format_var).is_ok_and(|f| f == "json") {
        subscriber.json().flatten_event(true).init();
    } else {
        subscriber.compact().init();
    }
}

/// A sandbox bound to its port with its routes, not yet serving.
#[derive(Debug)]
pub struct Server {
    name: &'static str,
    listener: TcpListener,
    router: Router,
    stop: watch::Sender<bool>,
}

impl Server {
    /// Binds `host:port` (port 0 picks a free port) and builds the routes
    /// with `routes`, which gets the receiver that turns `true` when the
    /// sandbox starts shutting down (for [`sleep_unless_stopping`]).
    pub async fn bind(
        name: &'static str,
        host: IpAddr,
        port: u16,
        routes: impl FnOnce(watch::Receiver<bool>) -> Router,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::new(host, port)).await?;
        tracing::info!(sandbox = name, address = %listener.local_addr()?, "sandbox listening");
        let (stop, stopping) = watch::channel(false);
        Ok(Self {
            name,
            listener,
            router: routes(stopping),
            stop,
        })
    }

    /// The bound port (the free one picked for port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` completes, then releases held-back answers
    /// at once and lets in-flight requests finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            name,
            listener,
            router,
            stop,
        } = self;
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!(sandbox = name, "shutting down");
                let _ = stop.send(true);
            })
            .await?;
        tracing::info!(sandbox = name, "stopped");
        Ok(())
    }

    /// Serves in a background task of the current runtime (in-process use).
    pub fn spawn(self) -> RunningSandbox {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        RunningSandbox {
            stop: Some(stop),
            task,
        }
    }
}

/// Sleeps for `duration`, or less once `stopping` (see [`Server::bind`])
/// turns true, so that a held-back answer never delays a graceful shutdown.
pub async fn sleep_unless_stopping(stopping: &watch::Receiver<bool>, duration: Duration) {
    if duration.is_zero() {
        return;
    }
    let mut stopping = stopping.clone();
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        _ = stopping.wait_for(|stopping| *stopping) => {}
    }
}

/// A sandbox served in a background task of the current runtime
/// ([`Server::spawn`]); stops when dropped.
#[derive(Debug)]
pub struct RunningSandbox {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningSandbox {
    /// Stops serving and waits until the server has finished.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = interrupt => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = interrupt.await;
        }
    }
}

/// One debug line per request with its status and duration
/// (`.layer(axum::middleware::from_fn(sandbox_kit::log_request))`).
pub async fn log_request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        http.method = %method,
        http.path = %path,
        http.status = response.status().as_u16(),
        duration_ms = started.elapsed().as_millis(),
        "request"
    );
    response
}

/// `GET /healthz`: `{"status":"ok"}` while the sandbox serves.
pub async fn healthz() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}
