//! RFC 6749 §5.2 error responses. OAuth clients parse `error`, not
//! problem+json, so the OAuth endpoints answer in this format; every other
//! endpoint uses the platform's problem+json (`error.rs`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    /// Client authentication failed. `basic`: the client tried HTTP Basic,
    /// so the answer carries a Basic challenge (RFC 6749 §5.2).
    #[error("client authentication failed")]
    InvalidClient { basic: bool },
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("the grant type is not supported")]
    UnsupportedGrantType,
    #[error("{0}")]
    InvalidScope(String),
    /// RFC 8707 §2: the requested audience is not allowed.
    #[error("{0}")]
    InvalidTarget(String),
    /// Logged where it is raised; the body says nothing more.
    #[error("internal error")]
    ServerError,
    /// The database could not be reached: a 503 with `Retry-After` the
    /// client may retry (RFC 6749 §4.1.2.1's code), not a 500.
    #[error("the service is temporarily unavailable; retry later")]
    TemporarilyUnavailable,
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget(_) => "invalid_target",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::InvalidRequest(message.into())
    }

    pub fn invalid_grant(message: impl Into<String>) -> Self {
        Self::InvalidGrant(message.into())
    }

    pub fn invalid_scope(message: impl Into<String>) -> Self {
        Self::InvalidScope(message.into())
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Any failure of the database or of the key ring is a server error, logged
/// here, once.
pub fn server_error(error: impl std::fmt::Display) -> OAuthError {
    tracing::error!(%error, "OAuth request failed");
    OAuthError::ServerError
}

/// A database that cannot be reached is a 503 (logged as a warning); any
/// other failed statement a server error.
impl From<sqlx::Error> for OAuthError {
    fn from(error: sqlx::Error) -> Self {
        if platform_server::database::is_unavailable(&error) {
            tracing::warn!(%error, "OAuth request: database unavailable");
            Self::TemporarilyUnavailable
        } else {
            server_error(error)
        }
    }
}

impl From<crate::keys::KeyRingError> for OAuthError {
    fn from(error: crate::keys::KeyRingError) -> Self {
        server_error(error)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = json!({ "error": self.code(), "error_description": self.to_string() });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if matches!(self, Self::TemporarilyUnavailable) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Self::InvalidClient { basic } = self {
            let challenge = if basic {
                "Basic realm=\"auth\", charset=\"UTF-8\""
            } else {
                "Basic realm=\"auth\""
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;

    use super::OAuthError;

    async fn answer(error: sqlx::Error) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = OAuthError::from(error).into_response();
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        (status, retry_after, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_database_out_of_reach_is_a_503_to_retry_and_a_failed_statement_a_500() {
        for away in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed] {
            let (status, retry_after, body) = answer(away).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(retry_after.as_deref(), Some("1"));
            assert_eq!(body["error"], "temporarily_unavailable");
        }
        let (status, retry_after, body) = answer(sqlx::Error::RowNotFound).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(retry_after, None);
        assert_eq!(body["error"], "server_error");
    }
}
