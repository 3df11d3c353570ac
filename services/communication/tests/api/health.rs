use std::path::Path;

use communication::settings::Settings;
use platform_settings::Source;
use platform_test_support::{TestDatabase, TestEnv, start_with_sidecar};

#[tokio::test]
async fn ready_with_its_sidecar_and_database_and_not_ready_without_the_sidecar() {
    let env = TestEnv::start().await.unwrap();
    let source = Source {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        environment: "test".into(),
    };
    let mut settings = Settings::load(&source).unwrap();
    let db = TestDatabase::create(&settings.database).await.unwrap();
    settings.server.port = 0;
    settings.database = db.settings().clone();
    let (app, daprd) = start_with_sidecar(&env, "communication", |dapr| {
        settings.dapr.http_port = dapr.http_port;
        settings.dapr.grpc_port = dapr.grpc_port;
        async move { Ok(communication::startup::build(settings).await?) }
    })
    .await
    .unwrap();

    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        200
    );
    assert_eq!(
        reqwest::get(app.url("/readyz")).await.unwrap().status(),
        200
    );
    let metrics = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(metrics.status(), 200);

    daprd.stop().await.unwrap();
    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert!(body["checks"]["dapr"].is_string(), "{body}");
    assert!(
        body["checks"].get("postgres").is_none(),
        "the database is fine: {body}"
    );
}

#[tokio::test]
async fn not_ready_while_its_database_is_unreachable() {
    let env = TestEnv::start().await.unwrap();
    let source = Source {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        environment: "test".into(),
    };
    let mut settings = Settings::load(&source).unwrap();
    settings.server.port = 0;
    // A port nothing listens on: the pool connects lazily, so the service
    // starts and reports the database in /readyz.
    settings.database.port = platform_test_support::free_port().unwrap();
    settings.database.acquire_timeout_ms = 300;
    let (app, _daprd) =
        platform_test_support::start_with_sidecar_unready(&env, "communication", |dapr| {
            settings.dapr.http_port = dapr.http_port;
            settings.dapr.grpc_port = dapr.grpc_port;
            async move { Ok(communication::startup::build(settings).await?) }
        })
        .await
        .unwrap();

    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert!(body["checks"]["postgres"].is_string(), "{body}");
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        200,
        "liveness does not depend on the database"
    );
}
