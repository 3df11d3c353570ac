//! Inbound CloudEvents (what Dapr delivers to a subscription route) and the
//! answer an app gives back.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// A CloudEvents 1.0 envelope as Dapr delivers it (structured JSON mode).
/// `source` + `id` identify an event: consumers deduplicate on that pair.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CloudEvent<T> {
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub specversion: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub datacontenttype: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub pubsubname: Option<String>,
    #[serde(default)]
    pub traceparent: Option<String>,
    pub data: T,
}

/// What a subscriber tells Dapr about one delivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TopicResponse {
    /// Processed (or already processed): acknowledge.
    Success,
    /// A transient failure: deliver again later.
    Retry,
    /// Can never succeed (malformed, unknown): do not deliver again; Dapr
    /// forwards it to the subscription's dead-letter topic.
    Drop,
}

#[derive(Serialize)]
struct Body {
    status: TopicResponse,
}

impl IntoResponse for TopicResponse {
    /// Always HTTP 200 with `{"status": ...}`: Dapr reads the status field;
    /// a non-2xx code would be taken as an error and retried regardless.
    fn into_response(self) -> Response {
        Json(Body { status: self }).into_response()
    }
}
