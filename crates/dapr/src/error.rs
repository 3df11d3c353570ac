//! Sidecar failures, classified so callers can decide between 409, 503 and 500.

use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// The sidecar (or the component behind it) is not reachable or timed out;
    /// retrying later may succeed.
    #[error("dapr sidecar unavailable: {0}")]
    Unavailable(String),
    /// An ETag did not match: somebody else changed the state first.
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

impl From<reqwest::Error> for SidecarError {
    fn from(err: reqwest::Error) -> Self {
        Self::Unavailable(err.to_string())
    }
}
