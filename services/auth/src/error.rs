//! The error enum of auth's non-OAuth endpoints (admin API, registration)
//! and its problem+json mapping.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform_problem::{DEPENDENCY_UNAVAILABLE, Problem};
use platform_server::database::{self, is_unavailable};

use crate::keys::KeyRingError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("too many requests, try again")]
    Busy,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("keys: {0}")]
    Keys(#[from] KeyRingError),
    #[error("password hashing: {0}")]
    Hashing(String),
}

impl AuthError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(e) if is_unavailable(e) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) | Self::Keys(_) | Self::Hashing(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Invalid { .. } => "validation_failed",
            Self::Conflict(_) => "conflict",
            Self::Busy => "busy",
            Self::Database(e) if is_unavailable(e) => DEPENDENCY_UNAVAILABLE,
            Self::Database(_) | Self::Keys(_) | Self::Hashing(_) => "internal_error",
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let code = self.code();
        let problem = match &self {
            Self::Database(e) => database::problem(e),
            _ if status == StatusCode::INTERNAL_SERVER_ERROR => {
                tracing::error!(error = %self, "request failed");
                Problem::internal()
            }
            Self::Busy => {
                tracing::warn!(error = %self, "unavailable");
                Problem::new(status, code, "Unavailable, try again").with_retry_after(1)
            }
            Self::Invalid { field, .. } => Problem::new(status, code, "Invalid request")
                .with_detail(self.to_string())
                .with_extension("field", *field),
            _ => Problem::new(
                status,
                code,
                match status {
                    StatusCode::NOT_FOUND => "Not found",
                    _ => "Conflict",
                },
            )
            .with_detail(self.to_string()),
        };
        problem.into_response()
    }
}

impl From<crate::passwords::HashError> for AuthError {
    fn from(error: crate::passwords::HashError) -> Self {
        match error {
            crate::passwords::HashError::Busy => Self::Busy,
            other => Self::Hashing(other.to_string()),
        }
    }
}

/// `on_constraint`-style helper: a unique violation becomes a 409.
pub fn conflict_on_unique(what: &'static str) -> impl FnOnce(sqlx::Error) -> AuthError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => AuthError::Conflict(what),
        _ => AuthError::Database(e),
    }
}
