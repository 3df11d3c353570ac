//! The providers' error envelope: `{"error":{"code","message"}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the recipient {0} cannot be reached (permanent)")]
    InvalidRecipient(String),
    #[error("no provider {0} (sms-primary, sms-secondary, push)")]
    UnknownProvider(String),
    #[error("too many requests; retry after 1 s")]
    Throttled,
    #[error("injected failure (sandbox configuration)")]
    Injected { status: StatusCode },
}

impl ApiError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) | Self::InvalidRecipient(_) => StatusCode::BAD_REQUEST,
            Self::UnknownProvider(_) => StatusCode::NOT_FOUND,
            Self::Throttled => StatusCode::TOO_MANY_REQUESTS,
            Self::Injected { status } => *status,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidRecipient(_) => "invalid_recipient",
            Self::UnknownProvider(_) => "unknown_provider",
            Self::Throttled => "throttled",
            Self::Injected { status } => match status.as_u16() {
                400 => "rejected",
                408 => "timeout",
                429 => "throttled",
                503 => "unavailable",
                _ => "provider_error",
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        let mut response = (status, Json(body)).into_response();
        if matches!(status.as_u16(), 429 | 503) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
