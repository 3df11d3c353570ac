//! State store operations, including the transactional outbox.
//!
//! How Dapr's outbox behaves (daprd 1.18, `pkg/runtime/pubsub/outbox.go`),
//! which shapes this API:
//! * In a state store with `outboxPublishPubsub`/`outboxPublishTopic`, *every*
//!   upsert of a transaction is published after the transaction commits.
//! * An extra upsert of the same key with metadata `outbox.projection=true`
//!   is not stored; its value is what gets published instead of the state.
//! * The upsert's metadata is copied onto the CloudEvent envelope (so `type`
//!   and `subject` set the event type and subject); the CloudEvent `id` is
//!   Dapr's own outbox id, stable across redeliveries of that message.

use std::collections::HashMap;

use dapr::dapr::proto::common::v1::{Etag, StateItem};
use dapr::dapr::proto::runtime::v1::TransactionalStateOperation;

/// A value read from a state store with its concurrency token.
#[derive(Debug, Clone)]
pub struct StateEntry {
    pub value: Vec<u8>,
    pub etag: Option<String>,
}

/// One operation of a state transaction.
#[derive(Debug, Clone)]
pub enum StateOperation {
    Upsert {
        key: String,
        value: Vec<u8>,
        etag: Option<String>,
        metadata: HashMap<String, String>,
    },
    Delete {
        key: String,
        etag: Option<String>,
    },
}

/// The event that an outbox transaction publishes with a state change.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    /// CloudEvent `type`, e.g. `payments.payment.created`.
    pub event_type: String,
    /// CloudEvent `subject`, e.g. the payment id.
    pub subject: String,
    /// JSON body published as the CloudEvent `data`.
    pub data: Vec<u8>,
}

impl StateOperation {
    /// Upsert guarded by `etag` (`None` for "create or overwrite").
    pub fn upsert(key: impl Into<String>, value: Vec<u8>, etag: Option<String>) -> Self {
        Self::Upsert {
            key: key.into(),
            value,
            etag,
            metadata: HashMap::new(),
        }
    }

    pub fn delete(key: impl Into<String>, etag: Option<String>) -> Self {
        Self::Delete {
            key: key.into(),
            etag,
        }
    }

    /// The two operations that save `value` under `key` and publish `event`
    /// through the transactional outbox: both happen or neither does.
    pub fn upsert_with_event(
        key: impl Into<String>,
        value: Vec<u8>,
        etag: Option<String>,
        event: OutboxEvent,
    ) -> [Self; 2] {
        let key = key.into();
        let envelope = HashMap::from([
            ("type".to_owned(), event.event_type),
            ("subject".to_owned(), event.subject),
        ]);
        let projection = HashMap::from([
            ("outbox.projection".to_owned(), "true".to_owned()),
            ("contentType".to_owned(), "application/json".to_owned()),
        ]);
        [
            Self::Upsert {
                key: key.clone(),
                value,
                etag,
                metadata: envelope,
            },
            Self::Upsert {
                key,
                value: event.data,
                etag: None,
                metadata: projection,
            },
        ]
    }

    pub(crate) fn into_proto(self) -> TransactionalStateOperation {
        let (operation_type, item) = match self {
            Self::Upsert {
                key,
                value,
                etag,
                metadata,
            } => (
                "upsert",
                StateItem {
                    key,
                    value,
                    etag: etag.map(|value| Etag { value }),
                    metadata,
                    options: None,
                },
            ),
            Self::Delete { key, etag } => (
                "delete",
                StateItem {
                    key,
                    value: Vec::new(),
                    etag: etag.map(|value| Etag { value }),
                    metadata: HashMap::new(),
                    options: None,
                },
            ),
        };
        TransactionalStateOperation {
            operation_type: operation_type.to_owned(),
            request: Some(item),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_pair_saves_state_and_projects_the_event_on_the_same_key() {
        let [state, projection] = StateOperation::upsert_with_event(
            "payment||1",
            b"{\"status\":\"created\"}".to_vec(),
            Some("7".into()),
            OutboxEvent {
                event_type: "payments.payment.created".into(),
                subject: "1".into(),
                data: b"{}".to_vec(),
            },
        );
        let state = state.into_proto();
        let projection = projection.into_proto();
        let (s, p) = (state.request.unwrap(), projection.request.unwrap());
        assert_eq!(s.key, p.key);
        assert_eq!(s.etag.unwrap().value, "7");
        assert_eq!(s.metadata["type"], "payments.payment.created");
        assert!(!s.metadata.contains_key("outbox.projection"));
        assert_eq!(p.metadata["outbox.projection"], "true");
        assert!(p.etag.is_none());
        assert_eq!(p.value, b"{}");
    }
}
