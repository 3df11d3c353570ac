//! The CloudEvent a service publishes, built by the service itself.
//!
//! Published in structured mode (`application/cloudevents+json`), daprd keeps
//! every attribute it is given and only adds `topic` and `pubsubname`
//! (components-contrib 1.18 `pubsub.FromCloudEvent`). Letting daprd build the
//! envelope instead (`application/json` data plus `cloudevent.*` metadata)
//! gives a `time` in whole seconds (`time.RFC3339` of the publish, not of the
//! change) and an empty `traceparent`/`traceid` whenever the publishing call
//! carried no trace (a relay round, a job). The envelope every consumer
//! relies on is `contracts/events/envelope.schema.json` (ADR 0040).

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

/// The content type daprd takes as "this is already a CloudEvent".
pub(crate) const CLOUDEVENT_JSON: &str = "application/cloudevents+json";

/// One event to publish: the attributes a producer chooses and its data.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    /// Unique per `source`, stable across republishing (consumers
    /// deduplicate on `(source, id)`); opaque to consumers.
    pub id: String,
    /// The publishing service (its Dapr app id).
    pub source: String,
    /// `<service>.<entity>.<happening>`, with a schema in
    /// contracts/events/<type>.schema.json.
    pub event_type: String,
    /// The entity the event is about (e.g. the payment id), if any.
    pub subject: Option<String>,
    /// When the change happened (its transaction wrote the event), not when
    /// it was published.
    pub time: OffsetDateTime,
    /// The W3C trace context of the change. A missing or malformed one is
    /// replaced by a new, unsampled root when the event is built, so the
    /// envelope never carries an empty `traceparent`.
    pub traceparent: Option<String>,
    /// The event's data (contracts/events/<type>.schema.json).
    pub data: Value,
}

impl OutgoingEvent {
    /// An event that happened now, in the current span's trace (if any).
    pub fn new(
        id: impl Into<String>,
        source: impl Into<String>,
        event_type: impl Into<String>,
        data: Value,
    ) -> Self {
        Self {
            id: id.into(),
            source: source.into(),
            event_type: event_type.into(),
            subject: None,
            time: OffsetDateTime::now_utc(),
            traceparent: platform_telemetry::current_traceparent(),
            data,
        }
    }

    #[must_use]
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    #[must_use]
    pub fn at(mut self, time: OffsetDateTime) -> Self {
        self.time = time;
        self
    }

    /// The trace of the change, when it was kept with the event (an outbox
    /// row); `None` keeps the current span's.
    #[must_use]
    pub fn in_trace(mut self, traceparent: Option<String>) -> Self {
        if traceparent.is_some() {
            self.traceparent = traceparent;
        }
        self
    }

    /// The structured CloudEvent (JSON) handed to daprd. `traceid` (Dapr's
    /// older name) repeats `traceparent`: daprd fills both from its own,
    /// possibly empty, span when `traceid` is absent.
    pub fn envelope(&self) -> Value {
        let traceparent = self
            .traceparent
            .clone()
            .filter(|t| is_traceparent(t))
            .unwrap_or_else(new_root_traceparent);
        let mut envelope = Map::new();
        envelope.insert("specversion".into(), json!("1.0"));
        envelope.insert("id".into(), json!(self.id));
        envelope.insert("source".into(), json!(self.source));
        envelope.insert("type".into(), json!(self.event_type));
        if let Some(subject) = &self.subject {
            envelope.insert("subject".into(), json!(subject));
        }
        envelope.insert("time".into(), json!(format_time(self.time)));
        envelope.insert("datacontenttype".into(), json!("application/json"));
        envelope.insert("traceparent".into(), json!(traceparent));
        envelope.insert("traceid".into(), json!(traceparent));
        envelope.insert("data".into(), self.data.clone());
        Value::Object(envelope)
    }

    /// [`Self::envelope`] as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.envelope()).unwrap_or_default()
    }
}

/// RFC 3339 in UTC with exactly six fractional digits (microseconds), so
/// events within one second stay ordered and every parser reads it.
pub fn format_time(time: OffsetDateTime) -> String {
    let utc = time.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.microsecond()
    )
}

/// `00-<32 hex, not all 0>-<16 hex, not all 0>-<2 hex>` (W3C Trace Context).
pub fn is_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && parts[1].bytes().any(|b| b != b'0')
        && hex(parts[2], 16)
        && parts[2].bytes().any(|b| b != b'0')
        && hex(parts[3], 2)
}

/// A new root context, not sampled: the event starts its own trace.
fn new_root_traceparent() -> String {
    let trace = Uuid::new_v4().simple().to_string();
    let span = Uuid::new_v4().simple().to_string();
    format!("00-{trace}-{}-00", &span[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn event() -> OutgoingEvent {
        OutgoingEvent::new(
            "0193a5b2-7c1e-7d3a-9f00-000000000001",
            "payments",
            "payments.payment.created",
            json!({"payment_id": "p1"}),
        )
    }

    #[test]
    fn the_envelope_keeps_the_producer_s_attributes_and_a_precise_time() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_765_000_000_123_456_789).unwrap();
        let e = event()
            .subject("p1")
            .at(at)
            .in_trace(Some(PARENT.into()))
            .envelope();
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(e["id"], "0193a5b2-7c1e-7d3a-9f00-000000000001");
        assert_eq!(e["source"], "payments");
        assert_eq!(e["type"], "payments.payment.created");
        assert_eq!(e["subject"], "p1");
        assert_eq!(e["time"], "2025-12-06T05:46:40.123456Z");
        assert_eq!(e["datacontenttype"], "application/json");
        assert_eq!(e["traceparent"], PARENT);
        assert_eq!(e["traceid"], PARENT);
        assert_eq!(e["data"]["payment_id"], "p1");
        assert!(e.get("contentType").is_none());
        let mut delivered = e.clone();
        delivered["topic"] = json!("payments");
        delivered["pubsubname"] = json!("pubsub");
        platform_event_contracts::validate(platform_event_contracts::ENVELOPE, &delivered)
            .unwrap_or_else(|errors| panic!("{errors}"));
    }

    #[test]
    fn a_whole_second_still_has_six_fractional_digits() {
        let at = OffsetDateTime::from_unix_timestamp(1_765_000_000).unwrap();
        assert_eq!(format_time(at), "2025-12-06T05:46:40.000000Z");
        let offset = at.to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(format_time(offset), "2025-12-06T05:46:40.000000Z");
    }

    #[test]
    fn without_a_valid_trace_the_event_starts_an_unsampled_root() {
        for missing in [None, Some(String::new()), Some("00-garbage".to_owned())] {
            let mut e = event();
            e.traceparent = missing;
            let envelope = e.envelope();
            let traceparent = envelope["traceparent"].as_str().unwrap();
            assert!(is_traceparent(traceparent), "{traceparent}");
            assert!(traceparent.ends_with("-00"));
            assert_eq!(envelope["traceid"], traceparent);
        }
        assert!(is_traceparent(PARENT));
        assert!(!is_traceparent(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
        assert!(!is_traceparent(
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
        ));
    }
}
