//! The app channel's token: what proves that a request to a Dapr-facing
//! route (`/events/*`, `/jobs/*`, input bindings, `/dapr/subscribe`) comes
//! from this service's own sidecar.
//!
//! The sidecar runs with `APP_API_TOKEN` and sends it as `dapr-api-token` on
//! every request it makes to the app (pub/sub deliveries, input bindings,
//! service invocation, `/dapr/subscribe`, `/dapr/config`); the service
//! reads the same value into `dapr.app_token`. [`dapr_facing`] wraps the
//! routes only the sidecar may call: a request without the token, or with
//! another one, is answered 401 `application/problem+json` before any
//! handler runs, so it changes nothing. Without a configured token (which
//! production refuses at start-up) those routes refuse every request.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use platform_problem::Problem;
use platform_settings::DaprSettings;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

/// The header daprd sends the app token in.
pub const HEADER: HeaderName = HeaderName::from_static("dapr-api-token");

/// The expected token, or none (every request refused).
#[derive(Clone)]
pub struct AppToken(Option<Arc<[u8]>>);

impl AppToken {
    pub fn from_settings(dapr: &DaprSettings) -> Self {
        Self(
            dapr.app_token
                .as_ref()
                .map(|t| t.expose_secret().as_bytes().into())
                .filter(|t: &Arc<[u8]>| !t.is_empty()),
        )
    }

    /// Whether `presented` is the token (in constant time).
    fn accepts(&self, presented: Option<&[u8]>) -> bool {
        match (&self.0, presented) {
            (Some(expected), Some(presented)) => bool::from(expected.ct_eq(presented)),
            _ => false,
        }
    }
}

impl std::fmt::Debug for AppToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = if self.0.is_some() {
            "[REDACTED]"
        } else {
            "none"
        };
        f.debug_tuple("AppToken").field(&shown).finish()
    }
}

/// `routes` (the ones only the sidecar calls) behind the app token; merge
/// the result with the service's other routes.
pub fn dapr_facing<S>(routes: Router<S>, dapr: &DaprSettings) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    routes.route_layer(middleware::from_fn_with_state(
        AppToken::from_settings(dapr),
        require_app_token,
    ))
}

async fn require_app_token(
    State(token): State<AppToken>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request.headers().get(&HEADER).map(|v| v.as_bytes());
    if token.accepts(presented) {
        return next.run(request).await;
    }
    tracing::warn!(
        http.path = %request.uri().path(),
        token.present = presented.is_some(),
        "refused a request to a Dapr-facing route without this app's token"
    );
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "app_token_required",
        "Only this service's Dapr sidecar may call this route",
    )
    .with_detail("the request must carry the sidecar's app token in `dapr-api-token`")
    .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::post;
    use secrecy::SecretString;
    use tower::ServiceExt;

    use super::*;

    fn dapr(token: Option<&str>) -> DaprSettings {
        DaprSettings {
            host: "127.0.0.1".into(),
            http_port: 1,
            grpc_port: 2,
            api_token: None,
            app_token: token.map(|t| SecretString::from(t.to_owned())),
            probe_timeout_ms: 100,
        }
    }

    async fn status(token: Option<&str>, sent: Option<&str>) -> (StatusCode, String) {
        let app = dapr_facing(
            Router::new().route("/events/x", post(|| async { "ok" })),
            &dapr(token),
        );
        let mut request = Request::post("/events/x");
        if let Some(sent) = sent {
            request = request.header("dapr-api-token", sent);
        }
        let res = app
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (res.status(), content_type)
    }

    #[tokio::test]
    async fn only_the_configured_token_passes() {
        assert_eq!(
            status(Some("s3cret"), Some("s3cret")).await.0,
            StatusCode::OK
        );
        for sent in [None, Some("wrong"), Some(""), Some("s3cret ")] {
            let (status, content_type) = status(Some("s3cret"), sent).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{sent:?}");
            assert_eq!(content_type, "application/problem+json");
        }
    }

    #[tokio::test]
    async fn without_a_configured_token_everything_is_refused() {
        assert_eq!(
            status(None, Some("anything")).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(status(Some(""), Some("")).await.0, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn the_token_is_never_printed() {
        assert!(
            !format!("{:?}", AppToken::from_settings(&dapr(Some("s3cret")))).contains("s3cret")
        );
    }
}
