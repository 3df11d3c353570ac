//! The bookkeeping error enum and its problem+json mapping.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform_problem::{DEPENDENCY_UNAVAILABLE, Problem};
use platform_server::database::{self, is_unavailable};

use crate::ledger::{EntryError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum BookkeepingError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(#[from] EntryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BookkeepingError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound(_) | Self::Store(StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
            Self::Invalid(_)
            | Self::Store(
                StoreError::Invalid { .. }
                | StoreError::BoundsExceeded { .. }
                | StoreError::ReversalOfReversal(_),
            ) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Store(StoreError::Conflict { .. } | StoreError::AlreadyReversed(_)) => {
                StatusCode::CONFLICT
            }
            Self::Store(StoreError::Database(e)) if is_unavailable(e) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Store(StoreError::Database(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) | Self::Store(StoreError::NotFound(_)) => "not_found",
            Self::Invalid(_) | Self::Store(StoreError::Invalid { .. }) => "validation_failed",
            Self::Store(StoreError::BoundsExceeded { .. }) => "account_bounds_exceeded",
            Self::Store(StoreError::ReversalOfReversal(_)) => "reversal_of_reversal",
            Self::Store(StoreError::Conflict { .. }) => "idempotency_conflict",
            Self::Store(StoreError::AlreadyReversed(_)) => "already_reversed",
            Self::Store(StoreError::Database(e)) if is_unavailable(e) => DEPENDENCY_UNAVAILABLE,
            Self::Store(StoreError::Database(_)) => "internal_error",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid(e) => Some(&e.field),
            Self::Store(StoreError::Invalid { field, .. } | StoreError::Conflict { field }) => {
                Some(field)
            }
            _ => None,
        }
    }
}

impl IntoResponse for BookkeepingError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let code = self.code();
        let problem = match &self {
            Self::Store(StoreError::Database(e)) => database::problem(e),
            _ => {
                let title = match status {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::CONFLICT => "Conflict",
                    _ => "Invalid request",
                };
                let mut problem = Problem::new(status, code, title).with_detail(self.to_string());
                if let Some(field) = self.field() {
                    problem = problem.with_extension("field", field.to_owned());
                }
                problem
            }
        };
        problem.into_response()
    }
}
