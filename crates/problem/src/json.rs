//! A JSON extractor/response whose rejections are problem+json, so malformed
//! bodies get the same envelope as every other error.
//!
//! A body holding a NUL character (`\u0000`) anywhere is refused (400
//! `control_characters`) before it is parsed: no text field of ours accepts
//! one, and PostgreSQL cannot store it in `text` or `jsonb`, so it would
//! surface as a 5xx from the database (issue #16 reported it for payments'
//! `customer_reference`; ADR 0039).

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Problem;

/// Drop-in for `axum::Json`: same behaviour, problem+json rejections.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(unsupported_media_type());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request body could not be read",
            )
            .with_detail(e.body_text())
        })?;
        if holds_nul(&bytes) {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "control_characters",
                "Control characters are not allowed",
            )
            .with_detail("the body holds a NUL character (\\u0000), which no field accepts"));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(rejection_to_problem(&rejection)),
        }
    }
}

/// `application/json` or `application/<anything>+json`, as `axum::Json`
/// accepts.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence
        .strip_prefix("application/")
        .is_some_and(|subtype| subtype == "json" || subtype.ends_with("+json"))
}

fn unsupported_media_type() -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "Expected a JSON body",
    )
    .with_detail("Content-Type must be application/json")
}

/// Whether JSON text holds the escape `\u0000` (a raw NUL byte is not
/// valid JSON anyway). An escaped backslash (`\\`) is skipped as a
/// pair, so the text `\\u0000` (a backslash, then "u0000") is not one.
fn holds_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1..i + 6) == Some(b"u0000".as_slice()) {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    json.contains(&0)
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn rejection_to_problem(rejection: &JsonRejection) -> Problem {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => unsupported_media_type(),
        JsonRejection::JsonDataError(e) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "The body does not match the expected schema",
        )
        .with_detail(e.body_text()),
        JsonRejection::JsonSyntaxError(e) => Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "The body is not valid JSON",
        )
        .with_detail(e.body_text()),
        other => Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body could not be read",
        )
        .with_detail(other.body_text()),
    }
}
