//! The axum side: a layer that requires a scope, and an extractor for the
//! claims it checked.
//!
//! ```
//! # use std::sync::Arc;
//! # use axum::{Router, routing::post};
//! # use platform_auth_token::{RequireScope, StaticKeys, Validator, ValidatorConfig};
//! # async fn create() {}
//! # let validator = Validator::new(
//! #     ValidatorConfig::new("http://127.0.0.1:8001", "payments"),
//! #     Arc::new(StaticKeys::default()),
//! # );
//! let app: Router = Router::new()
//!     .route("/v1/payments", post(create))
//!     .route_layer(RequireScope::new(&validator, "payments:write"));
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform_problem::Problem;
use tower::{Layer, Service};

use crate::{AccessClaims, ValidationError, Validator};

/// Requires a valid access token for this service carrying `scope`.
#[derive(Debug, Clone)]
pub struct RequireScope {
    validator: Validator,
    scope: Arc<str>,
}

impl RequireScope {
    pub fn new(validator: &Validator, scope: &str) -> Self {
        Self {
            validator: validator.clone(),
            scope: scope.into(),
        }
    }
}

impl<S> Layer<S> for RequireScope {
    type Service = RequireScopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopeService {
            inner,
            guard: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RequireScopeService<S> {
    inner: S,
    guard: RequireScope,
}

impl<S> Service<Request> for RequireScopeService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The clone that was polled ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        Box::pin(async move {
            let token = match bearer_token(request.headers()) {
                Ok(token) => token,
                Err(rejection) => return Ok(rejection.into_response(&guard)),
            };
            let claims = match guard.validator.validate(&token).await {
                Ok(claims) => claims,
                Err(error) => {
                    tracing::info!(auth.error = %error, "access token refused");
                    return Ok(Rejection::Invalid(error).into_response(&guard));
                }
            };
            if !claims.has_scope(&guard.scope) {
                return Ok(Rejection::InsufficientScope.into_response(&guard));
            }
            request.extensions_mut().insert(Authenticated(claims));
            inner.call(request).await
        })
    }
}

/// The claims of the request's access token, as checked by [`RequireScope`].
/// On a route without the layer it rejects with 401: fail closed.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<AccessClaims>);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            tracing::error!("Authenticated used on a route without RequireScope");
            let mut response = Problem::new(
                StatusCode::UNAUTHORIZED,
                "missing_token",
                "Authentication required",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        })
    }
}

enum Rejection {
    Missing,
    Malformed,
    Invalid(ValidationError),
    InsufficientScope,
}

fn bearer_token(headers: &axum::http::HeaderMap) -> Result<String, Rejection> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Rejection::Missing);
    };
    let value = value.to_str().map_err(|_| Rejection::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(Rejection::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Rejection::Malformed);
    }
    Ok(token.trim().to_owned())
}

impl Rejection {
    /// RFC 6750 §3: the challenge says what was wrong; the body is the
    /// platform's problem+json.
    fn into_response(self, guard: &RequireScope) -> Response {
        let realm = &guard.validator.config().audience;
        let (problem, challenge) = match self {
            Self::Missing => (
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_token",
                    "Authentication required",
                ),
                format!("Bearer realm=\"{realm}\""),
            ),
            Self::Malformed => (
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "The access token is invalid",
                )
                .with_detail("the Authorization header is not a bearer token"),
                format!("Bearer realm=\"{realm}\", error=\"invalid_request\""),
            ),
            Self::Invalid(error) => (
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "The access token is invalid",
                )
                .with_detail(error.to_string()),
                format!(
                    "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{error}\""
                ),
            ),
            Self::InsufficientScope => (
                Problem::new(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    "The access token lacks a required scope",
                )
                .with_extension("required_scope", guard.scope.to_string()),
                format!(
                    "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{}\"",
                    guard.scope
                ),
            ),
        };
        let mut response = problem.into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}
