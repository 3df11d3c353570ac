use crate::helpers::{Providers, TestApp, settings};

#[tokio::test]
async fn ready_with_its_sidecar_and_database_and_not_ready_without_the_sidecar() {
    let TestApp {
        app,
        daprd,
        db: _db,
        env: _env,
        issuer: _issuer,
        ..
    } = TestApp::spawn(&Providers::unreachable()).await;
    let app = app.unwrap();

    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        200
    );
    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    let metrics = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(metrics.status(), 200);

    daprd.stop().await.unwrap();
    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    // A status, never the error text.
    assert!(
        matches!(body["checks"]["dapr"].as_str(), Some("failed" | "timeout")),
        "{body}"
    );
    assert!(
        body["checks"].get("postgres").is_none(),
        "the database is fine: {body}"
    );
}

#[tokio::test]
async fn not_ready_while_its_database_is_unreachable() {
    let env = platform_test_support::TestEnv::start().await.unwrap();
    let mut settings = settings();
    settings.server.port = 0;
    // A port nothing listens on: the pool connects lazily, so the service
    // starts and reports the database in /readyz.
    settings.database.port = platform_test_support::free_port().unwrap();
    settings.database.acquire_timeout_ms = 300;
    let mut dapr = platform_test_support::DaprdOptions::new("communication").unwrap();
    dapr.env = Providers::unreachable().sidecar_env();
    let _email_binding = crate::helpers::email_binding(&env, &mut dapr).await;
    let (app, _daprd) = platform_test_support::start_with_options(&env, dapr, |dapr| {
        dapr.apply_to(&mut settings.dapr);
        async move { Ok(communication::startup::build(settings).await?) }
    })
    .await
    .unwrap();

    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    // A status, never the error text.
    assert!(
        matches!(
            body["checks"]["postgres"].as_str(),
            Some("failed" | "timeout")
        ),
        "{body}"
    );
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        200,
        "liveness does not depend on the database"
    );
}

#[tokio::test]
async fn a_template_that_does_not_parse_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let en = dir.path().join("broken/en");
    std::fs::create_dir_all(&en).unwrap();
    std::fs::write(en.join("sms.txt"), "Hello {{ name ").unwrap();
    let mut settings = settings();
    settings.server.port = 0;
    settings.templates.dir = Some(dir.path().to_path_buf());
    let error = communication::startup::build(settings).await.err().unwrap();
    assert!(error.to_string().contains("broken/en/sms.txt"), "{error}");
}
