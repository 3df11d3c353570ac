//! What handling one event came to, how Dapr is told, and how it is counted.

use crate::TopicResponse;

/// The counter every consumer increments once per handled event, labelled
/// `topic` (the topic the event was delivered from) and `outcome`
/// ([`Outcome::label`]). A delivery dropped before it is an event (a body
/// that is not JSON) is not counted: Dapr counts its own drops.
pub const EVENTS_HANDLED: &str = "events_handled_total";

/// What happened to one delivered event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Claimed in the inbox and its effect applied.
    Applied,
    /// Already applied (found in the inbox, or a repeat within a batch):
    /// nothing was done again.
    Duplicate,
    /// Of a type this consumer does not act on.
    Ignored,
    /// Can never be applied; it went with this reason to the dead-letter
    /// topic ([`crate::DeadLetter`]) and is acknowledged.
    Rejected(String),
    /// A transient failure (database, sidecar): Dapr delivers it again.
    Retry,
}

impl Outcome {
    /// The `outcome` label of [`EVENTS_HANDLED`].
    pub fn label(&self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Rejected(_) => "rejected",
            Self::Retry => "retry",
        }
    }

    /// Dapr's answer: everything but [`Outcome::Retry`] is acknowledged (a
    /// rejected event has already been dead-lettered with its reason, so
    /// Dapr must not dead-letter it again without one).
    pub fn response(&self) -> TopicResponse {
        match self {
            Self::Retry => TopicResponse::Retry,
            Self::Applied | Self::Duplicate | Self::Ignored | Self::Rejected(_) => {
                TopicResponse::Success
            }
        }
    }

    /// Counts the outcome of an event delivered from `topic` and returns
    /// Dapr's answer for it.
    pub fn respond(&self, topic: &'static str) -> TopicResponse {
        metrics::counter!(EVENTS_HANDLED, "topic" => topic, "outcome" => self.label()).increment(1);
        self.response()
    }
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;

    #[test]
    fn only_a_transient_failure_asks_for_redelivery() {
        assert_eq!(Outcome::Applied.response(), TopicResponse::Success);
        assert_eq!(Outcome::Duplicate.response(), TopicResponse::Success);
        assert_eq!(Outcome::Ignored.response(), TopicResponse::Success);
        assert_eq!(
            Outcome::Rejected("no amount".into()).response(),
            TopicResponse::Success
        );
        assert_eq!(Outcome::Retry.response(), TopicResponse::Retry);
    }

    #[test]
    fn respond_counts_by_topic_and_outcome() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let answers = metrics::with_local_recorder(&recorder, || {
            [
                Outcome::Applied.respond("payments"),
                Outcome::Applied.respond("payments"),
                Outcome::Duplicate.respond("payments"),
                Outcome::Ignored.respond("bookkeeping"),
                Outcome::Rejected("why".into()).respond("payments"),
                Outcome::Retry.respond("bookkeeping"),
            ]
        });
        assert_eq!(
            answers,
            [
                TopicResponse::Success,
                TopicResponse::Success,
                TopicResponse::Success,
                TopicResponse::Success,
                TopicResponse::Success,
                TopicResponse::Retry,
            ]
        );
        let text = handle.render();
        for line in [
            r#"events_handled_total{topic="payments",outcome="applied"} 2"#,
            r#"events_handled_total{topic="payments",outcome="duplicate"} 1"#,
            r#"events_handled_total{topic="bookkeeping",outcome="ignored"} 1"#,
            r#"events_handled_total{topic="payments",outcome="rejected"} 1"#,
            r#"events_handled_total{topic="bookkeeping",outcome="retry"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
