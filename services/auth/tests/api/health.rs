use crate::helpers::TestApp;

#[tokio::test]
async fn ready_with_sidecar_and_database_and_unknown_routes_are_problems() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    let missing = app.get("/no-such-route").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
}
