//! Wiring: settings → database (migrated) and sidecar client → router.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use platform_dapr::Sidecar;
use platform_server::{Readiness, Server, StartupError, checks, layers};
use platform_settings::Source;
use sqlx::postgres::PgPoolOptions;

use crate::ledger::Ledger;
use crate::routes::{self, AppState};
use crate::settings::Settings;

pub const SERVICE: &str = "bookkeeping";

pub async fn main(manifest_dir: &str) -> ExitCode {
    let source = Source::from_env(Path::new(manifest_dir).join("config"));
    platform_server::run_service(SERVICE, Settings::load(&source), |s| &s.telemetry, build).await
}

/// Connects and migrates the database, then binds the listener.
pub async fn build(settings: Settings) -> Result<Server, StartupError> {
    let metrics = platform_telemetry::init_metrics()?;
    let pool = PgPoolOptions::new()
        .max_connections(settings.database.max_connections)
        .acquire_timeout(settings.database.acquire_timeout())
        .connect_with(settings.database.connect_options())
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    let sidecar = Sidecar::connect_lazy(&settings.dapr)?;
    let readiness = Readiness::new(
        vec![checks::dapr_sidecar(&sidecar), checks::postgres(&pool)],
        settings.dapr.probe_timeout(),
    );

    let state = AppState {
        ledger: Ledger::new(pool.clone()),
        sidecar,
        pool,
        lock_timeout_ms: settings.events.lock_timeout_ms,
    };
    let router = layers::wrap(routes::router(state), settings.server.request_timeout())
        .merge(readiness.routes(metrics));
    let addr = SocketAddr::new(settings.server.host, settings.server.port);
    Ok(Server::bind(addr, router, settings.server.shutdown_grace()).await?)
}
