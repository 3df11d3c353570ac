//! Wiring: settings → templates (checked), database (migrated) and sidecar
//! client → router, outbox relay and send sweeper.

use std::process::ExitCode;
use std::sync::Arc;

use platform_consumer::parking_lot::ParkingLot;
use platform_dapr::Sidecar;
use platform_server::{BackgroundTasks, Server, StartupError, checks};
use platform_signature::Verifier;
use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;

use crate::events::EventRedrive;
use crate::jobs;
use crate::outbox::Relay;
use crate::routes::{self, AppState};
use crate::sender::Sender;
use crate::settings::Settings;
use crate::templates::Templates;

pub const SERVICE: &str = "communication";

pub async fn main(manifest_dir: &str) -> ExitCode {
    platform_server::run_service(SERVICE, manifest_dir, |s: &Settings| &s.telemetry, build).await
}

/// This service's schema, applied at start (`platform_server::checks::migrations`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Loads and checks every template (a broken one stops the start), binds
/// the listener, migrates the database in the background (`/readyz` reports
/// `migrations` until done) and starts the relay and the sweeper.
pub async fn build(settings: Settings) -> Result<Server, StartupError> {
    let locale = &settings.templates.default_locale;
    let templates = match settings.templates.resolved_dir() {
        Some(dir) => Templates::load(&dir, locale),
        None => Templates::embedded(locale),
    }
    .map_err(|e| StartupError::Config(e.to_string()))?;
    tracing::info!(templates = ?templates.names().collect::<Vec<_>>(), "templates loaded");
    let metrics = platform_telemetry::init_metrics()?;
    let pool = settings.database.lazy_pool();
    let sidecar = Sidecar::connect_lazy(&settings.dapr)?;
    let readiness =
        checks::service_with_database(&sidecar, &pool, &MIGRATOR, settings.dapr.probe_timeout());
    let relay = Relay::new(pool.clone(), sidecar.clone(), settings.relay.clone());
    let templates = Arc::new(templates);
    let shared_settings = Arc::new(settings.clone());
    let parking_lot = ParkingLot::new(
        SERVICE,
        pool.clone(),
        EventRedrive {
            pool: pool.clone(),
            templates: Arc::clone(&templates),
            settings: Arc::clone(&shared_settings),
            relay: relay.clone(),
        },
        settings.parking_lot.backoff(),
    );
    let state = AppState {
        pool,
        templates,
        parking_lot: parking_lot.clone(),
        sender: Sender::new(
            sidecar,
            settings.channels.clone(),
            settings.providers.clone(),
        ),
        relay: relay.clone(),
        receipt_verifier: Verifier::new(
            settings.providers.receipt_secret.expose_secret().as_bytes(),
            // At least 1: Settings::validate.
            u64::try_from(settings.providers.receipt_tolerance_secs).unwrap_or(0),
        ),
        settings: shared_settings,
    };
    let mut background = BackgroundTasks::new();
    jobs::outbox_relay::start(&mut background, relay);
    jobs::parking_lot_redrive::start(
        &mut background,
        parking_lot,
        settings.parking_lot.redrive_interval(),
    );
    jobs::send_sweeper::start(
        &mut background,
        state.pool.clone(),
        state.relay.clone(),
        settings.sending.clone(),
    );
    let validator = platform_server::auth::token_validator(&settings.auth, &settings.dapr)?;
    let routes = routes::router(state, &validator, &settings.dapr);
    Ok(Server::bind_service(&settings.server, routes, readiness, metrics, background).await?)
}
