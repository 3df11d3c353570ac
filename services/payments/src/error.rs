//! The payments error enum and its problem+json mapping.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform_dapr::SidecarError;
use platform_money::MoneyError;
use platform_problem::{DEPENDENCY_UNAVAILABLE, Problem};
use platform_signature::SignatureError;

use crate::domain::{DomainError, Payment};

#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    #[error("payment not found")]
    NotFound,
    #[error(transparent)]
    InvalidMoney(#[from] MoneyError),
    #[error("field {field} holds control characters")]
    ControlCharacters { field: &'static str },
    #[error("Idempotency-Key already used for another request")]
    IdempotencyKeyReused,
    #[error("invalid field {field}: {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("the card was declined ({code})")]
    Declined { code: String, payment: Box<Payment> },
    #[error("the payment was changed concurrently")]
    Conflict,
    #[error("the payment provider is unavailable: {0}")]
    ProviderUnavailable(String),
    #[error("the payment provider failed: {0}")]
    ProviderFailed(String),
    /// The provider refused the request as invalid (a 400/422 other than a
    /// decline, e.g. a card number it does not accept): the caller's input,
    /// so a 4xx; nothing was authorized.
    #[error("the payment provider refused the request ({code}): {message}")]
    ProviderRejected { code: String, message: String },
    #[error("webhook signature: {0}")]
    InvalidSignature(#[from] SignatureError),
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
            Self::ControlCharacters { .. } => StatusCode::BAD_REQUEST,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InvalidMoney(_) | Self::InvalidField { .. } | Self::ProviderRejected { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Domain(DomainError::InvalidState { .. }) => StatusCode::CONFLICT,
            Self::Domain(DomainError::AmountTooLarge { .. } | DomainError::NotPositive(_)) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Domain(DomainError::Mismatch(_)) | Self::ProviderFailed(_) => {
                StatusCode::BAD_GATEWAY
            }
            Self::Declined { .. } => StatusCode::PAYMENT_REQUIRED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::InvalidSignature(_) => StatusCode::BAD_REQUEST,
            Self::ProviderUnavailable(_) | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "payment_not_found",
            Self::ControlCharacters { .. } => "control_characters",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::InvalidMoney(MoneyError::UnknownCurrency(_)) => "invalid_currency",
            Self::InvalidMoney(_) => "invalid_amount",
            Self::InvalidField { .. } => "invalid_field",
            Self::Domain(DomainError::InvalidState { .. }) => "invalid_state",
            Self::Domain(DomainError::AmountTooLarge { .. } | DomainError::NotPositive(_)) => {
                "invalid_amount"
            }
            Self::Domain(DomainError::Mismatch(_)) => "provider_mismatch",
            Self::Declined { .. } => "card_declined",
            Self::Conflict => "concurrent_modification",
            Self::ProviderUnavailable(_) => "provider_unavailable",
            Self::ProviderFailed(_) => "provider_error",
            Self::ProviderRejected { .. } => "provider_rejected",
            Self::InvalidSignature(SignatureError::Stale) => "stale_signature",
            Self::InvalidSignature(_) => "invalid_signature",
            Self::Unavailable(_) => DEPENDENCY_UNAVAILABLE,
            Self::Internal(_) => "internal_error",
        }
    }
}

impl IntoResponse for PaymentsError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let code = self.code();
        let problem = match &self {
            Self::Internal(source) => {
                tracing::error!(error = %source, "request failed");
                Problem::internal()
            }
            Self::Unavailable(source) => {
                tracing::warn!(error = %source, "dependency unavailable");
                Problem::dependency_unavailable("A dependency is unavailable, try again")
            }
            Self::ProviderUnavailable(reason) => {
                tracing::warn!(%reason, "payment provider unavailable");
                Problem::new(
                    status,
                    code,
                    "The payment provider is unavailable; try again with the same Idempotency-Key",
                )
                .with_retry_after(5)
            }
            Self::ProviderFailed(reason) => {
                tracing::error!(%reason, "payment provider failed");
                Problem::new(status, code, "The payment provider failed")
            }
            Self::InvalidField { field, .. } => Problem::new(status, code, "Invalid request")
                .with_detail(self.to_string())
                .with_extension("field", *field),
            Self::ProviderRejected {
                code: provider_code,
                message,
            } => {
                tracing::info!(provider.code = %provider_code, "payment provider refused the request");
                Problem::new(status, code, "The payment provider refused the request")
                    .with_detail(message.clone())
                    .with_extension("provider_code", provider_code.clone())
            }
            Self::NotFound => Problem::new(status, code, "Payment not found"),
            Self::ControlCharacters { field } => {
                Problem::new(status, code, "Control characters are not allowed")
                    .with_detail(format!("{field} must not contain control characters"))
            }
            Self::IdempotencyKeyReused => Problem::new(
                status,
                code,
                "Idempotency-Key already used for another request",
            ),
            // The key is released (idempotency.rs): the same request may
            // run again, and says when, unlike a 409 about the payment's
            // state, which is final.
            Self::Conflict => Problem::new(status, code, "Concurrent modification")
                .with_detail(self.to_string())
                .with_retry_after(1),
            Self::InvalidMoney(_) => Problem::new(status, code, "Invalid amount or currency")
                .with_detail(self.to_string()),
            Self::Domain(_) => Problem::new(status, code, "Not possible for this payment")
                .with_detail(self.to_string()),
            Self::Declined {
                code: decline,
                payment,
            } => Problem::new(status, code, "The card was declined")
                .with_extension("decline_code", decline.clone())
                .with_extension("payment_id", payment.id.to_string())
                .with_extension("payment_status", payment.status.as_str()),
            Self::InvalidSignature(_) => {
                tracing::warn!(error = %self, "webhook refused");
                Problem::new(status, code, "Webhook signature not accepted")
            }
        };
        problem.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_after(error: PaymentsError) -> (StatusCode, Option<String>) {
        let response = error.into_response();
        let header = response
            .headers()
            .get(axum::http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (response.status(), header)
    }

    #[test]
    fn a_concurrent_modification_says_when_to_retry_and_a_state_conflict_does_not() {
        assert_eq!(
            retry_after(PaymentsError::Conflict),
            (StatusCode::CONFLICT, Some("1".to_owned()))
        );
        let state = PaymentsError::Domain(DomainError::InvalidState {
            status: crate::domain::PaymentStatus::Succeeded,
            action: "confirmed",
        });
        assert_eq!(retry_after(state), (StatusCode::CONFLICT, None));
    }
}
