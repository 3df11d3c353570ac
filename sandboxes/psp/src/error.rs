//! The provider's error envelope: `{"error":{"type","code","message"}}`.
//!
//! This is the PSP's wire format (fixed by `/work/psp-contract.md`), not the
//! platform's problem+json: the sandbox plays a third party.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Everything a request can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the Idempotency-Key header is required on every POST")]
    IdempotencyKeyMissing,
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyKeyReused,
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    AmountTooLarge(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("the card was declined ({code})")]
    CardDeclined {
        code: &'static str,
        authorization_id: String,
    },
    #[error("the provider could not process the request; retry")]
    Processing,
    #[error("injected failure (sandbox configuration)")]
    Injected { status: StatusCode },
    #[error("no webhook URL is configured")]
    WebhookUrlMissing,
}

impl ApiError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) | Self::IdempotencyKeyMissing | Self::AmountTooLarge(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::InvalidState(_) | Self::WebhookUrlMissing => StatusCode::CONFLICT,
            Self::CardDeclined { .. } => StatusCode::PAYMENT_REQUIRED,
            Self::Processing => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Injected { status } => *status,
        }
    }

    /// `error.type`: the family a client branches on.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CardDeclined { .. } => "card_declined",
            Self::Processing => "processing_error",
            Self::Injected { .. } => "api_error",
            _ => "invalid_request",
        }
    }

    /// `error.code`: the stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::IdempotencyKeyMissing => "idempotency_key_missing",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::NotFound(_) => "not_found",
            Self::AmountTooLarge(_) => "amount_too_large",
            Self::InvalidState(_) => "invalid_state",
            Self::CardDeclined { code, .. } => code,
            Self::Processing => "processing_error",
            Self::Injected { status } => match status.as_u16() {
                429 => "rate_limited",
                408 => "request_timeout",
                503 => "service_unavailable",
                _ => "processing_error",
            },
            Self::WebhookUrlMissing => "webhook_url_missing",
        }
    }

    /// The JSON body, also what the idempotency store replays.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({
            "type": self.kind(),
            "code": self.code(),
            "message": self.to_string(),
        });
        if let Self::CardDeclined {
            authorization_id, ..
        } = self
        {
            error["authorization_id"] = json!(authorization_id);
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut response = json_response(status, self.body().to_string().into_bytes());
        if matches!(status.as_u16(), 429 | 503) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A JSON response from already serialised bytes (replayed byte for byte).
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}
