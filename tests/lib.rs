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

/// A service started by [`start_service`]: its app, its sidecar and its
/// database (declared last, so that it outlives both).
#[derive(Debug)]
pub struct Service {
    pub app: RunningApp,
    pub daprd: Daprd,
    pub db: TestDatabase,
}

/// The services the platform runs, each with its sidecar, on `env`
/// (services tests: the security tests' callees).
#[derive(Debug)]
pub struct Platform {
    pub auth: Service,
    pub payments: Payments,
    pub bookkeeping: Service,
    pub communication: Service,
    /// communication's pluggable SMTP binding, which its sidecar loads.
    _smtp_binding: smtp_mime_binding::RunningBinding,
}

/// auth, payments, bookkeeping and communication with their sidecars on
/// `env`, resource servers trusting `issuer`, every one ready.
pub async fn start_platform(env: &TestEnv, issuer: &TestIssuer) -> anyhow::Result<Platform> {
    let auth = start_auth(env).await?;
    let payments = start_payments(env, issuer, |_, _| {}).await?;

    let mut book = source("bookkeeping").load::<bookkeeping::settings::Settings>()?;
    let book_db = TestDatabase::create_in_place(&mut book.database).await?;
    book.server.port = 0;
    issuer.apply_to(&mut book.auth);
    let (book_app, book_daprd) =
        start_with_options(env, DaprdOptions::new("bookkeeping")?, |dapr| {
            dapr.apply_to(&mut book.dapr);
            async move { Ok(bookkeeping::startup::build(book).await?) }
        })
        .await?;

    let mut comm = source("communication").load::<communication::settings::Settings>()?;
    let comm_db = TestDatabase::create_in_place(&mut comm.database).await?;
    comm.server.port = 0;
    comm.providers.receipts_base_url = String::new();
    issuer.apply_to(&mut comm.auth);
    let sockets = env.dir().join("sockets");
    let smtp_binding = smtp_mime_binding::RunningBinding::spawn(&sockets).await?;
    let nowhere = format!("http://127.0.0.1:{}", platform_test_support::free_port()?);
    let mut comm_dapr = DaprdOptions::new("communication")?;
    comm_dapr.env = vec![
        ("COMMUNICATION_SMTP_HOST".into(), "127.0.0.1".into()),
        ("COMMUNICATION_SMTP_PORT".into(), "9".into()),
        ("COMMUNICATION_SMS_PRIMARY_URL".into(), nowhere.clone()),
        ("COMMUNICATION_SMS_SECONDARY_URL".into(), nowhere.clone()),
        ("COMMUNICATION_PUSH_URL".into(), nowhere),
        (
            "DAPR_COMPONENTS_SOCKETS_FOLDER".into(),
            sockets.display().to_string(),
        ),
    ];
    let (comm_app, comm_daprd) = start_with_options(env, comm_dapr, |dapr| {
        dapr.apply_to(&mut comm.dapr);
        async move { Ok(communication::startup::build(comm).await?) }
    })
    .await?;

    let ready = std::time::Duration::from_secs(60);
    payments.app.wait_ready(ready).await?;
    book_app.wait_ready(ready).await?;
    comm_app.wait_ready(ready).await?;
    Ok(Platform {
        auth,
        payments,
        bookkeeping: Service {
            app: book_app,
            daprd: book_daprd,
            db: book_db,
        },
        communication: Service {
            app: comm_app,
            daprd: comm_daprd,
            db: comm_db,
        },
        _smtp_binding: smtp_binding,
    })
}

/// auth with its database and sidecar, ready; its issuer names its port.
pub async fn start_auth(env: &TestEnv) -> anyhow::Result<Service> {
    let mut settings = source("auth").load::<auth::settings::Settings>()?;
    let db = TestDatabase::create_in_place(&mut settings.database).await?;
    let port = platform_test_support::free_port()?;
    settings.server.port = port;
    settings.oauth.issuer = format!("http://127.0.0.1:{port}");
    settings.keys.publish_delay_secs = 0;
    let (app, daprd) = platform_test_support::start_with_sidecar(env, "auth", |dapr| {
        dapr.apply_to(&mut settings.dapr);
        async move { Ok(auth::startup::build(settings).await?) }
    })
    .await?;
    Ok(Service { app, daprd, db })
}
