//! Dead-lettering with a reason.
//!
//! An event a consumer can never process (fields missing, a type it cannot
//! book) is acknowledged rather than dropped: Dapr's own dead-lettering on
//! DROP would forward the event without saying why. Instead the consumer
//! publishes the event as delivered, with the reason, as
//! `<consumer>.event.rejected` to `<topic>.deadletter` (schemas in
//! contracts/events/*.event.rejected.schema.json).

use std::collections::HashMap;

use platform_dapr::{Sidecar, SidecarError};
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

    /// Publishes it now through the sidecar (Dapr gives it a fresh id). On
    /// an error the caller should ask for redelivery, so the letter is not
    /// lost.
    pub async fn publish(&self, sidecar: &Sidecar, pubsub: &str) -> Result<(), SidecarError> {
        tracing::warn!(
            reason = self.reason,
            "rejecting an event to the dead-letter topic"
        );
        let body = serde_json::to_vec(&self.data())
            .map_err(|error| SidecarError::Rejected(error.to_string()))?;
        let metadata = HashMap::from([("cloudevent.type".to_owned(), self.event_type())]);
        sidecar
            .publish_json(pubsub, &self.topic(), body, metadata)
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
    }
}
