//! The platform's error envelope: `application/problem+json` (RFC 9457) with a
//! stable machine-readable `code` member.
//!
//! Every service maps its own error enum onto [`Problem`]; rejections of the
//! [`Json`] extractor and unmatched routes use the same envelope, so a client
//! never sees a plain-text error.

mod json;

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

pub use json::Json;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// The `code` of a 503 for a dependency that did not answer.
pub const DEPENDENCY_UNAVAILABLE: &str = "dependency_unavailable";

/// An RFC 9457 problem details object.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// A URI reference naming the problem type; `about:blank` plus `code` by default.
    #[serde(rename = "type")]
    pub type_uri: Cow<'static, str>,
    pub title: Cow<'static, str>,
    pub status: u16,
    /// Stable, machine-readable, snake_case. Clients branch on this, not on `title`.
    pub code: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extensions: Map<String, Value>,
    #[serde(skip)]
    retry_after_secs: Option<u64>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        title: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            type_uri: Cow::Borrowed("about:blank"),
            title: title.into(),
            status: status.as_u16(),
            code: code.into(),
            detail: None,
            instance: None,
            extensions: Map::new(),
            retry_after_secs: None,
        }
    }

    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    #[must_use]
    pub fn with_extension(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.into(), value.into());
        self
    }

    /// Adds a `Retry-After` header (429, 503).
    #[must_use]
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_secs = Some(seconds);
        self
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The one body a 500 may have: nothing about the cause leaks.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal server error",
        )
    }

    /// A 503 for a dependency (the database, the sidecar, a state store)
    /// that did not answer: code `dependency_unavailable` and `Retry-After:
    /// 1`, since the same request may well succeed a moment later. `title`
    /// says which dependency, for people.
    pub fn dependency_unavailable(title: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            DEPENDENCY_UNAVAILABLE,
            title,
        )
        .with_retry_after(1)
    }

    /// [`Self::dependency_unavailable`] for a service's own database.
    pub fn database_unavailable() -> Self {
        Self::dependency_unavailable("The database is unavailable, try again")
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Resource not found")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let retry_after = self.retry_after_secs;
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| {
            br#"{"title":"Internal server error","status":500,"code":"internal_error"}"#.to_vec()
        });
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Router fallback: unknown routes answer 404 problem+json.
pub async fn not_found_fallback() -> Problem {
    Problem::not_found()
}

/// Router method fallback: 405 problem+json.
pub async fn method_not_allowed_fallback() -> Problem {
    Problem::method_not_allowed()
}

#[cfg(test)]
mod tests;
