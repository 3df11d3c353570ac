use crate::helpers::TestApp;

#[tokio::test]
async fn ready_when_sidecar_and_database_answer_and_unknown_routes_are_problems() {
    let app = TestApp::spawn().await;

    let live = app.get("/healthz").await;
    assert_eq!(live.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);

    let missing = app.get("/no-such-route").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn not_ready_while_the_sidecar_is_down() {
    let app = TestApp::spawn().await;
    let TestApp { app, daprd, .. } = app;
    daprd.stop().await.unwrap();

    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["code"], "not_ready");
    assert!(body["checks"]["dapr"].is_string(), "{body}");
    // Liveness does not depend on the sidecar.
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        200
    );
}
