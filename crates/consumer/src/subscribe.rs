//! `GET /dapr/subscribe`, which daprd asks every app at start-up.

use axum::routing::get;
use axum::{Json, Router};

/// Subscriptions are declarative (`dapr-config/subscriptions/`), so the
/// programmatic list is empty; answering it keeps daprd from logging a 404
/// at every start. Merge it into the service's router.
pub fn declarative_subscriptions<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/dapr/subscribe", get(|| async { Json(Vec::<()>::new()) }))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn daprd_is_told_there_are_no_programmatic_subscriptions() {
        let response = declarative_subscriptions::<()>()
            .oneshot(Request::get("/dapr/subscribe").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"[]");
    }
}
