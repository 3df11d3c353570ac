use crate::helpers::{TestApp, post_status};

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
    // A status, never the error text.
    assert!(
        matches!(body["checks"]["dapr"].as_str(), Some("failed" | "timeout")),
        "{body}"
    );
    // Liveness does not depend on the sidecar.
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn the_api_requires_a_token_for_this_audience_with_the_right_scope() {
    let app = TestApp::spawn().await;
    let path = app.app.url("/v1/entries");
    let body = serde_json::json!({ "id": uuid::Uuid::new_v4(), "effective_at": "2026-11-26T10:00:00Z", "postings": [] });

    // No token: 401 with a Bearer challenge, problem+json.
    let res = reqwest::Client::new()
        .post(&path)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(platform_test_support::www_authenticate(&res).starts_with("Bearer"));
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    // Read scope only: a write is 403.
    let reader =
        crate::helpers::authorized_client(&app.issuer.token("bookkeeping", &["bookkeeping:read"]))
            .unwrap();
    assert_eq!(post_status(&reader, &path, &body).await, 403);
    // ...but reads are allowed (404: the entry does not exist).
    let read = reader
        .get(
            app.app
                .url(&format!("/v1/entries/{}", uuid::Uuid::new_v4())),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 404);

    // A token for another service, or an expired one: 401.
    let other =
        crate::helpers::authorized_client(&app.issuer.token("payments", &["bookkeeping:write"]))
            .unwrap();
    assert_eq!(post_status(&other, &path, &body).await, 401);
    let expired = crate::helpers::authorized_client(&app.issuer.token_with(
        "bookkeeping",
        &["bookkeeping:write"],
        -600,
    ))
    .unwrap();
    assert_eq!(post_status(&expired, &path, &body).await, 401);

    // Health and the routes Dapr calls need no token.
    assert_eq!(
        reqwest::get(app.app.url("/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );
}
