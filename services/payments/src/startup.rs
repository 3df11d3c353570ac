//! Wiring: settings → sidecar client → router → bound server.

use std::process::ExitCode;

use platform_dapr::Sidecar;
use platform_server::{BackgroundTasks, Check, Readiness, Server, StartupError, checks};
use platform_signature::Verifier;
use secrecy::ExposeSecret;

use std::sync::Arc;
use std::time::Duration;

use crate::gateway::Gateway;
use crate::idempotency::Idempotency;
use crate::jobs::outbox_relay::OutboxRelay;
use crate::jobs::reconciler::Reconciler;
use crate::provider::psp::PspProvider;
use crate::routes::{self, AppState};
use crate::settings::Settings;
use crate::store::{KeyValue, PaymentStore};

pub const SERVICE: &str = "payments";

/// The binary's `main`: `manifest_dir/config` holds the settings files unless
/// `APP_CONFIG_DIR` says otherwise.
pub async fn main(manifest_dir: &str) -> ExitCode {
    platform_server::run_service(SERVICE, manifest_dir, |s: &Settings| &s.telemetry, build).await
}

/// Builds the service and binds its listener (port 0 picks a free port);
/// nothing is served until [`Server::run_until_stopped`].
pub async fn build(settings: Settings) -> Result<Server, StartupError> {
    let metrics = platform_telemetry::init_metrics()?;
    let sidecar = Sidecar::connect_lazy(&settings.dapr)?;

    let provider = PspProvider::new(
        &sidecar,
        settings.provider.endpoint.clone(),
        settings.provider.timeout(),
    );
    let kv = KeyValue::new(&sidecar, settings.payments.idempotency_store.clone());
    let store = PaymentStore::new(&sidecar, settings.payments.state_store.clone());
    let gateway = Gateway {
        store: store.clone(),
        kv: kv.clone(),
        provider: Arc::new(provider),
        vanished_after_secs: settings.reconciliation.vanished_after_secs,
        first_check_after_secs: settings.reconciliation.first_check_after_secs,
    };
    let reconciler = Reconciler {
        gateway: gateway.clone(),
        batch: settings.reconciliation.batch,
        concurrency: settings.reconciliation.concurrency,
        budget: Duration::from_millis(settings.reconciliation.round_budget_ms),
        lease_secs: settings.reconciliation.lease_secs,
    };
    let relay = OutboxRelay {
        store,
        sidecar: sidecar.clone(),
        pubsub: settings.outbox.pubsub.clone(),
        topic: settings.outbox.topic.clone(),
        batch: settings.outbox.batch,
        interval: Duration::from_millis(settings.outbox.interval_ms),
    };
    let readiness = Readiness::new(
        vec![
            checks::dapr_sidecar(&sidecar),
            checks::dapr_state_store(&sidecar, &settings.payments.state_store),
            idempotency_store_check(kv.clone()),
        ],
        settings.dapr.probe_timeout(),
    );
    let idempotency = Idempotency {
        kv,
        ttl_secs: settings.payments.idempotency_ttl_secs,
        lease_secs: i64::try_from(settings.payments.idempotency_lease_secs).unwrap_or(i64::MAX),
    };
    let state = AppState {
        gateway,
        reconciler,
        webhook_verifier: Verifier::new(
            settings.provider.webhook_secret.expose_secret().as_bytes(),
            // Positive: Settings::validate.
            u64::try_from(settings.provider.webhook_tolerance_secs).unwrap_or(0),
        ),
    };
    let routes = routes::router(
        state,
        idempotency,
        &platform_server::auth::token_validator(&settings.auth, &settings.dapr)?,
        &settings.reconciliation.binding,
        settings.provider.route_timeout(),
        &settings.dapr,
    );
    // Reconciliation runs when the cron binding calls; the relay is ours.
    let mut background = BackgroundTasks::new();
    background.spawn("outbox_relay", move |stop| relay.run(stop));
    Ok(Server::bind_service(&settings.server, routes, readiness, metrics, background).await?)
}

/// Ready only when the idempotency store answers too: every write needs it.
fn idempotency_store_check(kv: KeyValue) -> Check {
    Check::new("idempotency_store", move || {
        let kv = kv.clone();
        async move {
            kv.get::<serde_json::Value>("readiness-probe")
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:?}"))
        }
    })
}
