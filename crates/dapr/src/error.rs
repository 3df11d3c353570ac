//! Sidecar failures, classified so callers can decide between 409, 503 and 500.

use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// The sidecar (or the component behind it) is not reachable or timed out;
    /// retrying later may succeed.
    #[error("dapr sidecar unavailable: {0}")]
    Unavailable(String),
    /// A concurrency check failed: an ETag did not match, or a first-write
    /// found its key taken. Somebody else changed the state first.
    #[error("state changed concurrently (etag mismatch)")]
    EtagMismatch,
    /// The sidecar rejected the request as malformed; a bug on our side.
    #[error("dapr rejected the request: {0}")]
    Rejected(String),
    /// Anything else the sidecar or a component reported.
    #[error("dapr call failed: {0}")]
    Failed(String),
}

impl SidecarError {
    /// True when the same call may succeed later without any change.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// How `state.postgresql` v1 (components-contrib 1.18,
/// `common/component/postgresql/v1`) reports a first-write whose key exists:
/// its upsert affected no row. Not an ETag error, so it needs its own match.
pub(crate) const FIRST_WRITE_TAKEN: &str = "no item was updated";

impl SidecarError {
    /// Classifies a failed answer of the sidecar's HTTP state API to a write:
    /// a concurrency conflict (409, or a store's own words for it), the
    /// store or sidecar failing (5xx, may pass), or a request it refused.
    pub(crate) fn from_state_write_answer(status: reqwest::StatusCode, body: &str) -> Self {
        if status == reqwest::StatusCode::CONFLICT
            || body.contains("etag")
            || body.contains(FIRST_WRITE_TAKEN)
        {
            return Self::EtagMismatch;
        }
        let message = format!("state store answered {status}: {body}");
        if status.is_server_error() {
            Self::Unavailable(message)
        } else {
            Self::Rejected(message)
        }
    }
}

impl From<tonic::Status> for SidecarError {
    fn from(status: tonic::Status) -> Self {
        let message = status.message().to_owned();
        // A connection that cannot be made surfaces as Unknown with a
        // transport error as its source.
        if std::error::Error::source(&status).is_some_and(|s| s.is::<tonic::transport::Error>()) {
            return Self::Unavailable(message);
        }
        match status.code() {
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Cancelled => Self::Unavailable(message),
            // Dapr reports an ETag mismatch as Aborted; some stores as
            // FailedPrecondition with a "possible etag mismatch" message.
            Code::Aborted => Self::EtagMismatch,
            Code::FailedPrecondition if message.contains("etag") => Self::EtagMismatch,
            Code::InvalidArgument | Code::NotFound | Code::Unimplemented => Self::Rejected(message),
            _ if message.contains("possible etag mismatch") => Self::EtagMismatch,
            _ => Self::Failed(message),
        }
    }
}

/// The sidecar's HTTP API did not answer (no connection, timeout).
impl From<reqwest::Error> for SidecarError {
    fn from(err: reqwest::Error) -> Self {
        Self::Unavailable(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;

    #[test]
    fn http_state_answers_are_classified() {
        let answer = SidecarError::from_state_write_answer;
        assert!(matches!(
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"errorCode":"ERR_STATE_TRANSACTION","message":"error while executing state transaction: no item was updated"}"#
            ),
            SidecarError::EtagMismatch
        ));
        assert!(matches!(
            answer(StatusCode::CONFLICT, ""),
            SidecarError::EtagMismatch
        ));
        assert!(matches!(
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"errorCode":"ERR_STATE_TRANSACTION","message":"possible etag mismatch"}"#
            ),
            SidecarError::EtagMismatch
        ));
        let down = answer(StatusCode::INTERNAL_SERVER_ERROR, "connection refused");
        assert!(down.is_transient(), "{down:?}");
        assert!(matches!(
            answer(StatusCode::BAD_REQUEST, "malformed"),
            SidecarError::Rejected(_)
        ));
    }

    #[test]
    fn grpc_statuses_are_classified() {
        assert!(SidecarError::from(tonic::Status::unavailable("x")).is_transient());
        assert!(matches!(
            SidecarError::from(tonic::Status::aborted("x")),
            SidecarError::EtagMismatch
        ));
        assert!(matches!(
            SidecarError::from(tonic::Status::invalid_argument("x")),
            SidecarError::Rejected(_)
        ));
        assert!(matches!(
            SidecarError::from(tonic::Status::internal("redis down")),
            SidecarError::Failed(_)
        ));
    }
}
