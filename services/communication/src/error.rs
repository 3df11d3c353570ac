//! The communication error enum and its problem+json mapping.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform_problem::{DEPENDENCY_UNAVAILABLE, Problem};
use platform_server::database::{self, is_unavailable};
use platform_signature::SignatureError;

use crate::templates::RenderError;

#[derive(Debug, thiserror::Error)]
pub enum CommunicationError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0}")]
    Render(#[from] RenderError),
    #[error("the Idempotency-Key was used with a different request")]
    IdempotencyConflict,
    #[error("too many notifications for this recipient; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error("receipt signature not accepted: {0}")]
    InvalidSignature(SignatureError),
    #[error("the notification has not been sent yet; retry the receipt later")]
    NotYetSent,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl CommunicationError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid { .. } | Self::Render(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::IdempotencyConflict => StatusCode::CONFLICT,
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::InvalidSignature(_) => StatusCode::UNAUTHORIZED,
            Self::NotYetSent => StatusCode::CONFLICT,
            Self::Database(e) if is_unavailable(e) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Invalid { .. } => "validation_failed",
            Self::Render(RenderError::UnknownTemplate(_)) => "unknown_template",
            Self::Render(RenderError::NoChannel { .. }) => "channel_not_supported",
            Self::Render(_) => "template_render_failed",
            Self::IdempotencyConflict => "idempotency_conflict",
            Self::Throttled { .. } => "throttled",
            Self::InvalidSignature(_) => "invalid_signature",
            Self::NotYetSent => "not_yet_sent",
            Self::Database(e) if is_unavailable(e) => DEPENDENCY_UNAVAILABLE,
            Self::Database(_) => "internal_error",
        }
    }
}

impl IntoResponse for CommunicationError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let code = self.code();
        let problem = match &self {
            Self::Database(e) => database::problem(e),
            Self::Throttled { retry_after_secs } => {
                Problem::new(status, code, "Too many notifications")
                    .with_detail(self.to_string())
                    .with_retry_after(*retry_after_secs)
            }
            Self::NotYetSent => Problem::new(status, code, "Not sent yet")
                .with_detail(self.to_string())
                .with_retry_after(1),
            Self::InvalidSignature(_) => {
                Problem::new(status, code, "Receipt signature not accepted")
                    .with_detail(self.to_string())
            }
            _ => {
                let title = match status {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::CONFLICT => "Conflict",
                    _ => "Invalid request",
                };
                let mut problem = Problem::new(status, code, title).with_detail(self.to_string());
                if let Self::Invalid { field, .. } = &self {
                    problem = problem.with_extension("field", field.clone());
                }
                problem
            }
        };
        problem.into_response()
    }
}
