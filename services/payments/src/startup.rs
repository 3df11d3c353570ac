//! Wiring: settings → sidecar client → router → bound server.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use platform_dapr::Sidecar;
use platform_server::{Readiness, Server, StartupError, checks, layers};
use platform_settings::Source;

use crate::routes::{self, AppState};
use crate::settings::Settings;

pub const SERVICE: &str = "payments";

/// The binary's `main`: `manifest_dir/config` holds the settings files unless
/// `APP_CONFIG_DIR` says otherwise.
pub async fn main(manifest_dir: &str) -> ExitCode {
    let source = Source::from_env(Path::new(manifest_dir).join("config"));
    platform_server::run_service(SERVICE, Settings::load(&source), |s| &s.telemetry, build).await
}

/// Builds the service and binds its listener (port 0 picks a free port);
/// nothing is served until [`Server::run_until_stopped`].
pub async fn build(settings: Settings) -> Result<Server, StartupError> {
    let metrics = platform_telemetry::init_metrics()?;
    let sidecar = Sidecar::connect_lazy(&settings.dapr)?;
    let readiness = Readiness::new(
        vec![
            checks::dapr_sidecar(&sidecar),
            checks::dapr_state_store(&sidecar, &settings.payments.state_store),
        ],
        settings.dapr.probe_timeout(),
    );

    let state = AppState {
        sidecar,
        state_store: settings.payments.state_store.clone(),
    };
    let router = layers::wrap(
        routes::router(
            state,
            &platform_server::auth::token_validator(&settings.auth, &settings.dapr)?,
        ),
        settings.server.request_timeout(),
    )
    .merge(readiness.routes(metrics));
    let addr = SocketAddr::new(settings.server.host, settings.server.port);
    Ok(Server::bind(addr, router, settings.server.shutdown_grace()).await?)
}
