//! Dead-lettering with a reason.
//!
//! An event a consumer can never process (fields missing, a type it cannot
//! book) is acknowledged rather than dropped: Dapr's own dead-lettering on
//! DROP would forward the event without saying why. Instead the consumer
//! publishes the event as delivered, with the reason, as
//! `<consumer>.event.rejected` to `<topic>.deadletter` (schemas in
//! contracts/events/*.event.rejected.schema.json).

use platform_dapr::{OutgoingEvent, Sidecar, SidecarError};
use serde_json::{Value, json};

/// One rejected event, addressed to the dead-letter topic of the topic it
/// was delivered from.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetter<'a> {
    consumer: &'a str,
    topic: &'a str,
    reason: &'a str,
    event: &'a Value,
}

impl<'a> DeadLetter<'a> {
    /// `consumer` rejects `event` (the delivered body, CloudEvent or not),
    /// delivered from `topic`, because of `reason`.
    pub fn new(consumer: &'a str, topic: &'a str, reason: &'a str, event: &'a Value) -> Self {
        Self {
            consumer,
            topic,
            reason,
            event,
        }
    }

    /// Where it goes: `<topic>.deadletter`.
    pub fn topic(&self) -> String {
        format!("{}.deadletter", self.topic)
    }

    /// Its CloudEvent type: `<consumer>.event.rejected`.
    pub fn event_type(&self) -> String {
        format!("{}.event.rejected", self.consumer)
    }

    /// Its CloudEvent data: `{reason, topic, rejected_by, event}`.
    pub fn data(&self) -> Value {
        json!({
            "reason": self.reason,
            "topic": self.topic,
            "rejected_by": self.consumer,
            "event": self.event,
        })
    }

    /// A CloudEvent id for the letter of the event `(source, id)` that is the
    /// same on every redelivery, for a consumer that publishes it through its
    /// own outbox (so that subscribers deduplicate it).
    pub fn id_for(&self, source: &str, id: &str) -> String {
        format!("{}-rejected-{source}-{id}", self.consumer)
    }

    /// The CloudEvent published now: a fresh id (each rejection is its own
    /// letter), `source` the consumer, `subject` the rejected event's id.
    pub fn cloud_event(&self) -> OutgoingEvent {
        let event = OutgoingEvent::new(
            uuid::Uuid::now_v7().to_string(),
            self.consumer,
            self.event_type(),
            self.data(),
        );
        match self.event.get("id").and_then(Value::as_str) {
            Some(id) => event.subject(id),
            None => event,
        }
    }

    /// Publishes it now through the sidecar. On an error the caller should
    /// ask for redelivery, so the letter is not lost.
    pub async fn publish(&self, sidecar: &Sidecar, pubsub: &str) -> Result<(), SidecarError> {
        tracing::warn!(
            reason = self.reason,
            "rejecting an event to the dead-letter topic"
        );
        sidecar
            .publish_event(pubsub, &self.topic(), &self.cloud_event())
            .await
            .inspect_err(|error| {
                tracing::warn!(%error, "cannot publish to the dead-letter topic; asking for redelivery");
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_letter_names_the_consumer_the_topic_and_the_reason() {
        let event = json!({ "id": "e1", "source": "payments", "data": {} });
        let letter = DeadLetter::new("bookkeeping", "payments", "no amount", &event);
        assert_eq!(letter.topic(), "payments.deadletter");
        assert_eq!(letter.event_type(), "bookkeeping.event.rejected");
        assert_eq!(
            letter.data(),
            json!({
                "reason": "no amount",
                "topic": "payments",
                "rejected_by": "bookkeeping",
                "event": event,
            })
        );
        assert_eq!(
            letter.id_for("payments", "e1"),
            "bookkeeping-rejected-payments-e1"
        );
        let published = letter.cloud_event();
        assert_eq!(published.source, "bookkeeping");
        assert_eq!(published.event_type, "bookkeeping.event.rejected");
        assert_eq!(published.subject.as_deref(), Some("e1"));
        assert_eq!(published.data, letter.data());
        assert_ne!(
            published.id,
            letter.cloud_event().id,
            "a fresh id per letter"
        );
    }

    /// Both consumers' rejections match their contracts, envelope included.
    #[test]
    fn a_letter_matches_the_rejected_event_contract() {
        let event = json!({
            "specversion": "1.0", "id": "e1", "source": "payments",
            "type": "payments.payment.succeeded", "data": {"amount": 1}
        });
        for consumer in ["bookkeeping", "communication"] {
            let letter = DeadLetter::new(consumer, "payments", "no currency", &event);
            platform_event_contracts::assert_valid(&letter.event_type(), &letter.data());
            let mut delivered = letter.cloud_event().envelope();
            delivered["topic"] = json!(letter.topic());
            delivered["pubsubname"] = json!("pubsub");
            platform_event_contracts::assert_valid_envelope(&delivered);
        }
    }
}
