//! The payments error enum and its problem+json mapping.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform_dapr::SidecarError;
use platform_problem::Problem;

use crate::domain::MoneyError;

#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    #[error("payment not found")]
    NotFound,
    #[error(transparent)]
    InvalidMoney(#[from] MoneyError),
    #[error("invalid field {field}: {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
    #[error("the payment was changed concurrently")]
    Conflict,
    #[error("a dependency is unavailable")]
    Unavailable(#[source] SidecarError),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<SidecarError> for PaymentsError {
    fn from(err: SidecarError) -> Self {
        match err {
            SidecarError::EtagMismatch => Self::Conflict,
            e if e.is_transient() => Self::Unavailable(e),
            e => Self::Internal(Box::new(e)),
        }
    }
}

impl PaymentsError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::InvalidMoney(_) | Self::InvalidField { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "payment_not_found",
            Self::InvalidMoney(MoneyError::UnknownCurrency(_)) => "invalid_currency",
            Self::InvalidMoney(MoneyError::NotPositive(_)) => "invalid_amount",
            Self::InvalidField { .. } => "invalid_field",
            Self::Conflict => "concurrent_modification",
            Self::Unavailable(_) => "dependency_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl IntoResponse for PaymentsError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let problem = match &self {
            Self::Internal(source) => {
                tracing::error!(error = %source, "request failed");
                Problem::internal()
            }
            Self::Unavailable(source) => {
                tracing::warn!(error = %source, "dependency unavailable");
                Problem::new(
                    status,
                    self.code(),
                    "A dependency is unavailable, try again",
                )
                .with_retry_after(1)
            }
            Self::InvalidField { field, .. } => {
                Problem::new(status, self.code(), "Invalid request")
                    .with_detail(self.to_string())
                    .with_extension("field", *field)
            }
            Self::NotFound => Problem::new(status, self.code(), "Payment not found"),
            Self::Conflict => Problem::new(status, self.code(), "Concurrent modification")
                .with_detail(self.to_string()),
            Self::InvalidMoney(_) => {
                Problem::new(status, self.code(), "Invalid amount or currency")
                    .with_detail(self.to_string())
            }
        };
        problem.into_response()
    }
}
