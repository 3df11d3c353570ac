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

impl From<sqlx::Error> for OAuthError {
    fn from(error: sqlx::Error) -> Self {
        server_error(error)
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
