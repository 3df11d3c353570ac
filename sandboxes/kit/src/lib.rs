//! The parts every provider sandbox (`sandboxes/psp`, `sandboxes/notify`)
//! shares: process logging, serving with a graceful shutdown that releases
//! held-back answers, running in-process for tests, the stop signals, and
//! signed POSTs with retries ([`signed_post`]).
//! Sandboxes stand in for external providers, so they do not depend on the
//! platform's own server crate.

pub mod settings;
pub mod signed_post;

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing_subscriber::EnvFilter;

/// Logs to stdout at `RUST_LOG` (default `info`); JSON when the variable
/// `format_var` is `json`, colours only on a terminal.
pub fn init_logging(format_var: &str) {
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

/// The exit code of a sandbox process: the error, if any, is logged.
pub fn exit_code<E: Display>(outcome: Result<(), E>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "sandbox failed");
            ExitCode::FAILURE
        }
    }
}

/// Serves `app` until `shutdown` completes, then tells the sandbox to release
/// held-back answers (`stop`) and lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stop: watch::Sender<bool>,
    name: &'static str,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!(sandbox = name, "shutting down");
            let _ = stop.send(true);
        })
        .await?;
    tracing::info!(sandbox = name, "stopped");
    Ok(())
}

/// Sleeps for `duration`, or less once `stopping` turns true (the `stop` of
/// [`serve`]), so that a held-back answer never delays a graceful shutdown.
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

/// The future a sandbox serves until, when it runs in-process.
pub type StopFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A sandbox served in a background task of the current runtime; stops when
/// dropped.
#[derive(Debug)]
pub struct RunningSandbox {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningSandbox {
    /// Runs `serve(stop)` in a task; `stop` completes on [`Self::stop`] or drop.
    pub fn spawn<F, Fut>(serve: F) -> Self
    where
        F: FnOnce(StopFuture) -> Fut,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(Box::pin(async move {
            let _ = rx.await;
        })));
        Self {
            stop: Some(tx),
            task,
        }
    }

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
pub async fn shutdown_signal() {
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
