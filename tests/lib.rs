//! Cross-service tests live in `tests/`; this library holds what they share:
//! where each service's settings are, and payments started the way every
//! cross-service test starts it.

use std::path::Path;

use platform_settings::Source;
use platform_test_support::{
    Daprd, DaprdOptions, RunningApp, TestDatabase, TestEnv, TestIssuer, start_with_options,
};

/// `services/<service>/config` with the `test` environment.
pub fn source(service: &str) -> Source {
    Source {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../services")
            .join(service)
            .join("config"),
        environment: "test".into(),
    }
}

/// payments and its sidecar, as [`start_payments`] left them.
#[derive(Debug)]
pub struct Payments {
    pub app: RunningApp,
    pub daprd: Daprd,
    /// The sidecar's state store (and so its outbox): a PostgreSQL database
    /// of its own. Declared last, so that it outlives the sidecar.
    pub state_db: TestDatabase,
}

/// payments with its sidecar on `env`'s Redis and name resolution, its state
/// store in a database of its own, trusting `issuer`'s tokens; `adjust`
/// adds what the test needs to its settings and sidecar options. The caller
/// waits for `/readyz` ([`RunningApp::wait_ready`]), e.g. once the other
/// services are started too.
pub async fn start_payments(
    env: &TestEnv,
    issuer: &TestIssuer,
    adjust: impl FnOnce(&mut payments::settings::Settings, &mut DaprdOptions),
) -> anyhow::Result<Payments> {
    let mut settings = source("payments").load::<payments::settings::Settings>()?;
    let state_db = TestDatabase::create_for("payments").await?;
    let mut dapr = DaprdOptions::new("payments")?;
    dapr.env.push((
        "PAYMENTS_STATE_DATABASE".into(),
        state_db.settings().database_name.clone(),
    ));
    settings.server.port = 0;
    issuer.apply_to(&mut settings.auth);
    adjust(&mut settings, &mut dapr);
    let (app, daprd) = start_with_options(env, dapr, |dapr| {
        dapr.apply_to(&mut settings.dapr);
        async move { Ok(payments::startup::build(settings).await?) }
    })
    .await?;
    Ok(Payments {
        app,
        daprd,
        state_db,
    })
}
