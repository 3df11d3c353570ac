use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use axum::routing::post;
use serde::Deserialize;
use tower::ServiceExt;

use super::*;

#[derive(Debug, Deserialize)]
struct Body1 {
    #[expect(dead_code, reason = "only deserialised")]
    amount: u64,
}

async fn handler(Json(_): Json<Body1>) -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn call(content_type: Option<&str>, body: &str) -> (StatusCode, String, serde_json::Value) {
    let app = Router::new()
        .route("/", post(handler))
        .fallback(not_found_fallback);
    let mut req = Request::post("/");
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let res = app
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = to_bytes(res.into_body(), 1 << 16).await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, ct, json)
}

#[tokio::test]
async fn malformed_json_is_400_problem() {
    let (status, ct, body) = call(Some("application/json"), "{").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(ct, CONTENT_TYPE);
    assert_eq!(body["code"], "malformed_json");
    assert_eq!(body["status"], 400);
}

#[tokio::test]
async fn wrong_shape_is_422_problem() {
    let (status, _, body) = call(Some("application/json"), r#"{"amount":"ten"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_body");
}

#[tokio::test]
async fn missing_content_type_is_415_problem() {
    let (status, _, body) = call(None, r#"{"amount":1}"#).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["code"], "unsupported_media_type");
}

#[tokio::test]
async fn a_nul_anywhere_in_the_body_is_400_control_characters() {
    for body in [
        r#"{"amount":1,"x":"a\u0000b"}"#,
        r#"{"amount":1,"\u0000":1}"#,
    ] {
        let (status, ct, problem) = call(Some("application/json"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(ct, CONTENT_TYPE);
        assert_eq!(problem["code"], "control_characters", "{body}");
    }
    // A backslash followed by the text "u0000" is not a NUL.
    let (status, _, _) = call(Some("application/json"), r#"{"amount":1,"x":"\\u0000"}"#).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(Some("application/merge-patch+json"), r#"{"amount":1}"#).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "+json types are JSON");
    let (status, _, _) = call(Some("text/plain"), r#"{"amount":1}"#).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn valid_body_passes() {
    let (status, _, _) = call(Some("application/json"), r#"{"amount":1}"#).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[test]
fn internal_error_has_no_detail_and_retry_after_is_a_header() {
    let problem = Problem::internal();
    assert!(problem.detail.is_none());
    assert!(problem.extensions.is_empty());
    let res = problem.into_response();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let res = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "x")
        .with_retry_after(3)
        .into_response();
    assert_eq!(res.headers()[header::RETRY_AFTER], "3");
}

#[test]
fn an_unavailable_database_is_a_503_to_retry() {
    let res = Problem::database_unavailable().into_response();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[header::RETRY_AFTER], "1");
    let problem = Problem::database_unavailable();
    assert_eq!(problem.code, DEPENDENCY_UNAVAILABLE);
    assert_eq!(problem.title, "The database is unavailable, try again");
}
