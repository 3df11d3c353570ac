//! The binary's set-up, from environment variables:
//!
//! | variable | default |
//! |---|---|
//! | `DAPR_COMPONENTS_SOCKETS_FOLDER` | `/tmp/dapr-components-sockets` (daprd's variable and default) |
//! | `SMTP_MIME_SOCKET_NAME` | `smtp-mime` (component type `bindings.smtp-mime`) |
//! | `SMTP_MIME_SHUTDOWN_GRACE_SECONDS` | `20`: in-flight sends may finish this long after SIGTERM |
//! | `SMTP_MIME_SOCKET_MODE` | unset (umask); e.g. `660` lets daprd running as another user of the same group connect (set before the socket appears at its path) |
//! | `SMTP_MIME_METRICS_ADDR` | unset; e.g. `0.0.0.0:9102` serves Prometheus `GET /metrics` |
//! | `APP__TELEMETRY__LOG_FORMAT` | `pretty`; `json` for one JSON object per line (as the services) |
//! | `APP__TELEMETRY__LOG_FILTER` | `info`; `RUST_LOG` wins |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use platform_settings::{LogFormat, TelemetrySettings};

use crate::server::{DEFAULT_SHUTDOWN_GRACE, DEFAULT_SOCKET_NAME, DEFAULT_SOCKETS_FOLDER};

/// Runs the process; the exit code is 0 after a signal-initiated shutdown.
pub async fn main() -> ExitCode {
    let telemetry = TelemetrySettings {
        log_filter: env("APP__TELEMETRY__LOG_FILTER").unwrap_or_else(|| "info".into()),
        log_format: match env("APP__TELEMETRY__LOG_FORMAT").as_deref() {
            Some("json") => LogFormat::Json,
            _ => LogFormat::Pretty,
        },
    };
    if let Err(e) = platform_telemetry::init_tracing("smtp-mime-binding", &telemetry) {
        eprintln!("smtp-mime-binding: {e}");
        return ExitCode::FAILURE;
    }
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "smtp-mime-binding failed");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let folder =
        env("DAPR_COMPONENTS_SOCKETS_FOLDER").unwrap_or_else(|| DEFAULT_SOCKETS_FOLDER.into());
    let name = env("SMTP_MIME_SOCKET_NAME").unwrap_or_else(|| DEFAULT_SOCKET_NAME.into());
    anyhow::ensure!(
        !name.contains(['/', '.']),
        "SMTP_MIME_SOCKET_NAME {name:?} must be a plain name (the component type is bindings.<name>)"
    );
    let grace = match env("SMTP_MIME_SHUTDOWN_GRACE_SECONDS") {
        Some(v) => Duration::from_secs(v.parse().with_context(|| {
            format!("SMTP_MIME_SHUTDOWN_GRACE_SECONDS {v:?} is not a number of seconds")
        })?),
        None => DEFAULT_SHUTDOWN_GRACE,
    };
    if let Some(addr) = env("SMTP_MIME_METRICS_ADDR") {
        let addr: SocketAddr = addr
            .parse()
            .with_context(|| format!("SMTP_MIME_METRICS_ADDR {addr:?} is not host:port"))?;
        serve_metrics(addr).await?;
    }
    let mode = env("SMTP_MIME_SOCKET_MODE")
        .map(|mode| {
            u32::from_str_radix(&mode, 8)
                .ok()
                .filter(|m| *m <= 0o777)
                .with_context(|| {
                    format!("SMTP_MIME_SOCKET_MODE {mode:?} is not an octal file mode")
                })
        })
        .transpose()?;
    let socket = crate::server::socket_path(&PathBuf::from(folder), &name);
    // The mode is applied before the socket appears at its path.
    let bound = crate::server::BoundSocket::bind_with_mode(&socket, mode)?;
    bound.serve(shutdown_signal(), grace).await
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Prometheus text on `GET /metrics` (`smtp_mime_sends_total{outcome}`).
async fn serve_metrics(addr: SocketAddr) -> anyhow::Result<()> {
    let handle = platform_telemetry::init_metrics()?;
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || std::future::ready(handle.render())),
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for metrics"))?;
    tracing::info!(addr = %listener.local_addr()?, "serving metrics");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the metrics endpoint failed");
        }
    });
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!(signal = "SIGINT", "shutdown requested"),
        () = terminate => tracing::info!(signal = "SIGTERM", "shutdown requested"),
    }
}
