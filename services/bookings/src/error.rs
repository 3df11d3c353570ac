//! The bookings error enum and its problem+json mapping.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform_problem::{DEPENDENCY_UNAVAILABLE, Problem};
use platform_server::database;

use crate::domain::InvalidOffering;

#[derive(Debug, thiserror::Error)]
pub enum BookingsError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    InvalidOffering(#[from] InvalidOffering),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("Idempotency-Key header is required (1 to 200 visible characters)")]
    IdempotencyKeyMissing,
    #[error("this Idempotency-Key was used with another request body")]
    IdempotencyConflict,
    #[error("the offering has no place left")]
    SoldOut,
    #[error("the offering is not open for bookings now")]
    BookingClosed,
    #[error("the offering's price changed while booking; try again")]
    TermsChanged,
    #[error("the booking is {0} and cannot be cancelled")]
    NotCancellable(String),
    #[error("the booking is {0}; only a reserved booking can be paid")]
    NotPayable(String),
    #[error("the card was declined: {0}")]
    CardDeclined(String),
    #[error("payments could not be reached: {0}")]
    PaymentsUnavailable(String),
    #[error("payments refused the request: {0}")]
    PaymentsRefused(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl BookingsError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::InvalidOffering(_) | Self::Invalid { .. } | Self::IdempotencyConflict => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::IdempotencyKeyMissing => StatusCode::BAD_REQUEST,
            Self::SoldOut
            | Self::BookingClosed
            | Self::TermsChanged
            | Self::NotCancellable(_)
            | Self::NotPayable(_) => StatusCode::CONFLICT,
            Self::CardDeclined(_) => StatusCode::PAYMENT_REQUIRED,
            Self::PaymentsUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::PaymentsRefused(_) => StatusCode::BAD_GATEWAY,
            Self::Database(e) if database::is_unavailable(e) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::InvalidOffering(_) | Self::Invalid { .. } => "validation_failed",
            Self::IdempotencyKeyMissing => "idempotency_key_required",
            Self::IdempotencyConflict => "idempotency_conflict",
            Self::SoldOut => "sold_out",
            Self::BookingClosed => "booking_closed",
            Self::TermsChanged => "terms_changed",
            Self::NotCancellable(_) => "not_cancellable",
            Self::NotPayable(_) => "not_payable",
            Self::CardDeclined(_) => "card_declined",
            Self::PaymentsUnavailable(_) => DEPENDENCY_UNAVAILABLE,
            Self::PaymentsRefused(_) => "payments_refused",
            Self::Database(e) if database::is_unavailable(e) => DEPENDENCY_UNAVAILABLE,
            Self::Database(_) => "internal_error",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidOffering(e) => Some(e.field),
            Self::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl IntoResponse for BookingsError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let problem = match &self {
            Self::Database(e) => database::problem(e),
            Self::PaymentsUnavailable(why) => {
                tracing::warn!(reason = %why, "payments unavailable");
                Problem::dependency_unavailable("Payments are unavailable, try again")
                    .with_retry_after(5)
            }
            Self::PaymentsRefused(why) => {
                tracing::error!(reason = %why, "payments refused a call of bookings");
                Problem::new(status, self.code(), "Payments refused the request")
            }
            _ => {
                let title = match status {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::CONFLICT => "Conflict",
                    StatusCode::PAYMENT_REQUIRED => "The card was declined",
                    _ => "Invalid request",
                };
                let mut problem =
                    Problem::new(status, self.code(), title).with_detail(self.to_string());
                if let Some(field) = self.field() {
                    problem = problem.with_extension("field", field.to_owned());
                }
                problem
            }
        };
        problem.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_status_and_code() {
        let cases = [
            (BookingsError::SoldOut, 409, "sold_out"),
            (
                BookingsError::IdempotencyKeyMissing,
                400,
                "idempotency_key_required",
            ),
            (
                BookingsError::IdempotencyConflict,
                422,
                "idempotency_conflict",
            ),
            (BookingsError::NotFound("booking"), 404, "not_found"),
            (
                BookingsError::NotPayable("released".into()),
                409,
                "not_payable",
            ),
            (
                BookingsError::CardDeclined("insufficient_funds".into()),
                402,
                "card_declined",
            ),
            (
                BookingsError::PaymentsUnavailable("down".into()),
                503,
                DEPENDENCY_UNAVAILABLE,
            ),
            (
                BookingsError::Database(sqlx::Error::PoolTimedOut),
                503,
                DEPENDENCY_UNAVAILABLE,
            ),
            (
                BookingsError::Database(sqlx::Error::RowNotFound),
                500,
                "internal_error",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status_code().as_u16(), status, "{error}");
            assert_eq!(error.code(), code, "{error}");
        }
    }
}
