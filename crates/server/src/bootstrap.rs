//! The common `main` of every service: settings, logging, build, serve.

use std::fmt::Display;
use std::path::Path;
use std::process::ExitCode;

use platform_settings::{Source, TelemetrySettings, Validate};
use serde::de::DeserializeOwned;

use crate::Server;

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot bind the HTTP listener: {0}")]
    Bind(#[from] std::io::Error),
    #[error("cannot set up the Dapr sidecar client: {0}")]
    Sidecar(#[from] platform_dapr::SidecarError),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("telemetry: {0}")]
    Telemetry(#[from] platform_telemetry::TelemetryError),
    #[error("configuration: {0}")]
    Config(String),
}

/// Loads and validates the settings (from `manifest_dir/config` unless
/// `APP_CONFIG_DIR` says otherwise), initialises logging, builds the service
/// and serves until SIGTERM/SIGINT. Start-up failures are printed once and
/// exit non-zero.
pub async fn run_service<S, B, Fut, E>(
    service: &'static str,
    manifest_dir: &str,
    telemetry: impl FnOnce(&S) -> &TelemetrySettings,
    build: B,
) -> ExitCode
where
    S: DeserializeOwned + Validate,
    B: FnOnce(S) -> Fut,
    Fut: Future<Output = Result<Server, E>>,
    E: Display,
{
    let source = Source::from_env(Path::new(manifest_dir).join("config"));
    let settings = match source.load::<S>() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{service}: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = platform_telemetry::init_tracing(service, telemetry(&settings)) {
        eprintln!("{service}: {error}");
        return ExitCode::FAILURE;
    }
    let server = match build(settings).await {
        Ok(server) => server,
        Err(error) => {
            tracing::error!(%error, "start-up failed");
            return ExitCode::FAILURE;
        }
    };
    match server
        .run_until_stopped(crate::shutdown::terminate_signal())
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}
