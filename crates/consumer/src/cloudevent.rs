//! Inbound CloudEvents (what Dapr delivers to a subscription route) and the
//! answer an app gives back. (Outbound events are the sidecar client's
//! business: `platform_dapr`.)

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
    #[serde(default)]
    pub tracestate: Option<String>,
    /// When the event was published (RFC 3339; daprd sets it).
    #[serde(default)]
    pub time: Option<String>,
    pub data: T,
}

/// Histogram of how old an event is when its consumer handles it
/// (`time` → now), labelled `topic`: the freshness SLIs (slo/*.yaml).
pub const EVENT_AGE: &str = "event_age_seconds";

impl<T> CloudEvent<T> {
    /// Seconds since the event was published, if it says when (a clock
    /// behind the publisher's counts as 0).
    pub fn age_seconds(&self) -> Option<f64> {
        let published = time::OffsetDateTime::parse(
            self.time.as_deref()?,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()?;
        Some(
            (time::OffsetDateTime::now_utc() - published)
                .as_seconds_f64()
                .max(0.0),
        )
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: TopicResponse) -> (u16, String) {
        let response = response.into_response();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap_or_default();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn every_answer_is_a_200_with_dapr_s_status_word() {
        assert_eq!(
            body_of(TopicResponse::Success).await,
            (200, r#"{"status":"SUCCESS"}"#.to_owned())
        );
        assert_eq!(
            body_of(TopicResponse::Retry).await,
            (200, r#"{"status":"RETRY"}"#.to_owned())
        );
        assert_eq!(
            body_of(TopicResponse::Drop).await,
            (200, r#"{"status":"DROP"}"#.to_owned())
        );
    }

    #[test]
    fn a_cloudevent_needs_only_the_required_attributes() {
        let event: CloudEvent<serde_json::Value> = serde_json::from_str(
            r#"{"id":"e1","source":"payments","type":"t","specversion":"1.0","data":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(event.id, "e1");
        assert_eq!(event.event_type, "t");
        assert_eq!(event.subject, None);
        assert_eq!(event.data["a"], 1);
    }

    #[test]
    fn the_age_is_measured_from_the_publish_time_and_absent_without_one() {
        let ten_s_ago = (time::OffsetDateTime::now_utc() - time::Duration::seconds(10))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let event: CloudEvent<serde_json::Value> = serde_json::from_value(serde_json::json!({
            "id": "e1", "source": "payments", "type": "t", "specversion": "1.0",
            "time": ten_s_ago, "data": {}
        }))
        .unwrap();
        let age = event.age_seconds().unwrap();
        assert!((10.0..60.0).contains(&age), "{age}");
        let undated: CloudEvent<serde_json::Value> = serde_json::from_str(
            r#"{"id":"e1","source":"s","type":"t","specversion":"1.0","data":{}}"#,
        )
        .unwrap();
        assert_eq!(undated.age_seconds(), None);
        let garbled = CloudEvent {
            time: Some("yesterday".into()),
            ..undated
        };
        assert_eq!(garbled.age_seconds(), None);
    }
}
