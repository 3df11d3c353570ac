//! Wiring: settings → database (migrated) and sidecar client → router.

use std::process::ExitCode;
use std::time::Duration;

use platform_consumer::parking_lot::ParkingLot;
use platform_dapr::Sidecar;
use platform_server::{BackgroundTasks, Server, StartupError, checks};
use sqlx::migrate::Migrator;

use crate::booking::{Bookkeeper, EventBatcher};
use crate::jobs::{self, statement_export::StatementExports};
use crate::ledger::Ledger;
use crate::routes::{self, AppState};
use crate::settings::Settings;
use crate::statements::Statements;

pub const SERVICE: &str = "bookkeeping";

pub async fn main(manifest_dir: &str) -> ExitCode {
    platform_server::run_service(SERVICE, manifest_dir, |s: &Settings| &s.telemetry, build).await
}

/// This service's schema, applied at start (`platform_server::checks::migrations`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Binds the listener at once; the database is connected lazily and migrated
/// in the background (retrying until PostgreSQL answers), and `/readyz`
/// reports `migrations` until that is done. Start-up order does not matter.
pub async fn build(settings: Settings) -> Result<Server, StartupError> {
    let metrics = platform_telemetry::init_metrics()?;
    let pool = settings.database.lazy_pool();
    let sidecar = Sidecar::connect_lazy(&settings.dapr)?;
    let readiness =
        checks::service_with_database(&sidecar, &pool, &MIGRATOR, settings.dapr.probe_timeout());

    let bookkeeper = Bookkeeper::new(
        pool.clone(),
        sidecar.clone(),
        settings.events.lock_timeout_ms,
    );
    let (event_batcher, batch_loop) =
        EventBatcher::new(bookkeeper.clone(), settings.events.max_batch);
    let statement_exports = StatementExports::new(
        pool.clone(),
        sidecar.clone(),
        Statements::new(pool.clone()),
        settings.statements.clone(),
    );
    let parking_lot = ParkingLot::new(
        SERVICE,
        pool.clone(),
        bookkeeper.clone(),
        settings.parking_lot.backoff(),
    );
    let state = AppState {
        parking_lot: parking_lot.clone(),
        bookkeeper,
        event_batcher,
        ledger: Ledger::new(pool.clone()),
        statements: Statements::new(pool.clone()),
        statement_exports: statement_exports.clone(),
        sidecar,
    };
    let mut background = BackgroundTasks::new();
    background.spawn("event-batcher", |stop| batch_loop.run(stop));
    jobs::parking_lot_redrive::start(
        &mut background,
        parking_lot,
        settings.parking_lot.redrive_interval(),
    );
    jobs::statement_sweeper::start(
        &mut background,
        statement_exports,
        Duration::from_millis(settings.statements.sweep_interval_ms),
    );
    let validator = platform_server::auth::token_validator(&settings.auth, &settings.dapr)?;
    let routes = routes::router(
        state,
        &validator,
        &settings.dapr,
        settings.events.route_timeout(),
    );
    Ok(Server::bind_service(&settings.server, routes, readiness, metrics, background).await?)
}
