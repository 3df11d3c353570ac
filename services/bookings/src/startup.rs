//! Wiring: settings → database (migrated), sidecar client, payments client
//! → saga, catalogue → router + background loops.

use std::process::ExitCode;
use std::time::Duration;

use platform_dapr::Sidecar;
use platform_server::{BackgroundTasks, Server, StartupError, checks};
use sqlx::migrate::Migrator;

use crate::catalogue::Catalogue;
use crate::jobs::{self, outbox_relay::Relay};
use crate::payments::PaymentsClient;
use crate::routes::{self, AppState};
use crate::saga::Saga;
use crate::settings::Settings;
use crate::store::offerings::Offerings;

pub const SERVICE: &str = "bookings";

pub async fn main(manifest_dir: &str) -> ExitCode {
    platform_server::run_service(SERVICE, manifest_dir, |s: &Settings| &s.telemetry, build).await
}

/// This service's schema, applied at start (`platform_server::checks::migrations`).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Binds at once; the database is connected lazily and migrated in the
/// background, `/readyz` reports `migrations` until that is done.
pub async fn build(settings: Settings) -> Result<Server, StartupError> {
    let metrics = platform_telemetry::init_metrics()?;
    let pool = settings.database.lazy_pool();
    let sidecar = Sidecar::connect_lazy(&settings.dapr)?;
    let readiness =
        checks::service_with_database(&sidecar, &pool, &MIGRATOR, settings.dapr.probe_timeout());
    let payments = PaymentsClient::new(&sidecar, settings.payments.clone());
    let saga = Saga::new(
        pool.clone(),
        sidecar.clone(),
        payments,
        settings.bookings.clone(),
        settings.saga.batch,
    );
    let catalogue = Catalogue::new(
        Offerings::new(pool.clone()),
        sidecar.clone(),
        settings.cache.clone(),
        &settings.bookings.topic,
    );
    let interval = Duration::from_millis(settings.saga.worker_interval_ms);
    let mut background = BackgroundTasks::new();
    jobs::saga_worker::start(&mut background, saga.clone(), interval);
    jobs::outbox_relay::start(
        &mut background,
        Relay {
            pool: pool.clone(),
            sidecar: sidecar.clone(),
            pubsub: settings.bookings.pubsub.clone(),
            batch: settings.saga.relay_batch,
        },
        saga.clone(),
        interval,
    );
    let validator = platform_server::auth::token_validator(&settings.auth, &settings.dapr)?;
    let routes = routes::router(AppState { catalogue, saga }, &validator, &settings.dapr);
    Ok(Server::bind_service(&settings.server, routes, readiness, metrics, background).await?)
}
