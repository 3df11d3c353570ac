//! State stores: reads, conditional writes with a TTL, queries, and
//! transactions, including the transactional outbox.
//!
//! Everything goes over gRPC except [`Sidecar::execute_transaction`]: daprd's
//! gRPC transaction hands the store the values as opaque bytes, which
//! `state.postgresql` keeps base64-encoded (`isbinary`), out of the Query
//! API's reach, and unlike `SaveState` it ignores a `contentType` of
//! `application/json` (daprd 1.18, `pkg/api/grpc/grpc.go`). Over HTTP the
//! values are JSON and the store keeps them as JSON, so a transaction's
//! values must be JSON.
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
use std::time::Duration;

use dapr::dapr::proto::common::v1::state_options::StateConcurrency;
use dapr::dapr::proto::common::v1::{Etag, StateItem, StateOptions};
use dapr::dapr::proto::runtime::v1::{
    DeleteStateRequest, GetStateRequest, QueryStateRequest, SaveStateRequest,
};
use serde::Serialize;
use serde_json::value::RawValue;
use tracing::instrument;

use crate::{Sidecar, SidecarError};

/// A value read from a state store with its concurrency token.
#[derive(Debug, Clone)]
pub struct StateEntry {
    pub value: Vec<u8>,
    pub etag: Option<String>,
}

/// How [`Sidecar::save_state`] treats the value already under its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode<'a> {
    /// Only if the key does not exist (first-write concurrency, no ETag).
    Insert,
    /// Only if the value still has this ETag.
    IfMatch(&'a str),
    /// Last write wins.
    Overwrite,
}

/// One upsert of a state transaction; its value is JSON (see the module
/// documentation). Built by [`StateOperation::upsert_with_event`].
#[derive(Debug, Clone)]
pub struct StateOperation {
    key: String,
    /// `None`: a delete.
    value: Option<Vec<u8>>,
    etag: Option<String>,
    metadata: HashMap<String, String>,
    /// Only if the key does not exist yet (first-write concurrency).
    first_write: bool,
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

const JSON: &str = "application/json";

impl StateOperation {
    /// The two operations that save `value` (JSON) under `key` and publish
    /// `event` through the transactional outbox: both happen or neither does.
    /// `etag` guards the save (`None`: the key is new).
    pub fn upsert_with_event(
        key: impl Into<String>,
        value: Vec<u8>,
        etag: Option<String>,
        event: OutboxEvent,
    ) -> [Self; 2] {
        let key = key.into();
        let mut envelope = HashMap::from([
            ("type".to_owned(), event.event_type),
            ("subject".to_owned(), event.subject),
            ("contentType".to_owned(), JSON.to_owned()),
        ]);
        // The trace goes with the event: daprd 1.18's outbox writes an empty
        // `traceparent` on the envelope (the trace only as `traceid`, which
        // delivery ignores once `traceparent` is there), and copies this
        // metadata onto the envelope, so the consumer joins the trace.
        for (name, value) in platform_telemetry::current_trace_context() {
            envelope.insert(name.to_owned(), value);
        }
        let projection = HashMap::from([
            ("outbox.projection".to_owned(), "true".to_owned()),
            ("contentType".to_owned(), JSON.to_owned()),
        ]);
        [
            Self {
                key: key.clone(),
                value: Some(value),
                etag,
                metadata: envelope,
                first_write: false,
            },
            Self {
                key,
                value: Some(event.data),
                etag: None,
                metadata: projection,
                first_write: false,
            },
        ]
    }

    /// Saves `value` (JSON) under `key`; `etag` guards the save (`None`:
    /// last write wins). In a store without outbox nothing is published.
    pub fn upsert(key: impl Into<String>, value: Vec<u8>, etag: Option<String>) -> Self {
        Self {
            key: key.into(),
            value: Some(value),
            etag,
            metadata: HashMap::from([("contentType".to_owned(), JSON.to_owned())]),
            first_write: false,
        }
    }

    /// Saves `value` (JSON) under `key` only if the key does not exist: the
    /// whole transaction fails otherwise ([`SidecarError::EtagMismatch`]).
    pub fn insert(key: impl Into<String>, value: Vec<u8>) -> Self {
        Self {
            first_write: true,
            ..Self::upsert(key, value, None)
        }
    }

    /// Deletes `key` (a missing key is no error unless `etag` is given).
    pub fn delete(key: impl Into<String>, etag: Option<String>) -> Self {
        Self {
            key: key.into(),
            value: None,
            etag,
            metadata: HashMap::new(),
            first_write: false,
        }
    }
}

/// The body of `POST /v1.0/state/{store}/transaction`. Values are embedded
/// as they are: each was serialised once by its owner, and is only checked
/// here to be JSON.
#[derive(Serialize)]
struct TransactionBody<'a> {
    operations: Vec<TransactionOperation<'a>>,
}

#[derive(Serialize)]
struct TransactionOperation<'a> {
    operation: &'static str,
    request: TransactionItem<'a>,
}

#[derive(Serialize)]
struct TransactionItem<'a> {
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<&'a str>,
    metadata: &'a HashMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<TransactionOptions>,
}

#[derive(Serialize)]
struct TransactionOptions {
    concurrency: &'static str,
}

fn transaction_body(operations: &[StateOperation]) -> Result<Vec<u8>, SidecarError> {
    let operations = operations
        .iter()
        .map(|op| {
            let value: Option<&RawValue> = op
                .value
                .as_deref()
                .map(serde_json::from_slice)
                .transpose()
                .map_err(|e| {
                    SidecarError::Rejected(format!("the value of {} is not JSON: {e}", op.key))
                })?;
            Ok(TransactionOperation {
                operation: if value.is_some() { "upsert" } else { "delete" },
                request: TransactionItem {
                    key: &op.key,
                    value,
                    etag: op.etag.as_deref(),
                    metadata: &op.metadata,
                    options: op.first_write.then_some(TransactionOptions {
                        concurrency: "first-write",
                    }),
                },
            })
        })
        .collect::<Result<Vec<_>, SidecarError>>()?;
    serde_json::to_vec(&TransactionBody { operations })
        .map_err(|e| SidecarError::Rejected(e.to_string()))
}

/// Whether a failed conditional save is a lost race rather than a failure:
/// `state.redis` reports a first-write that finds the key taken as a failed
/// save ("failed to set key"), not as an ETag error.
fn is_conflict(mode: WriteMode<'_>, error: &SidecarError) -> bool {
    match (mode, error) {
        (_, SidecarError::EtagMismatch) => true,
        (WriteMode::Insert | WriteMode::IfMatch(_), SidecarError::Failed(message)) => {
            message.contains("failed to set key")
                || message.contains("etag")
                || message.contains(crate::error::FIRST_WRITE_TAKEN)
        }
        _ => false,
    }
}

impl Sidecar {
    #[instrument(name = "dapr.state.get", skip_all, fields(dapr.store = store, dapr.key = key))]
    pub async fn get_state(
        &self,
        store: &str,
        key: &str,
    ) -> Result<Option<StateEntry>, SidecarError> {
        let (mut grpc, request) = self.grpc(GetStateRequest {
            store_name: store.to_owned(),
            key: key.to_owned(),
            consistency: 0,
            metadata: HashMap::new(),
        });
        let res = grpc.get_state(request).await?.into_inner();
        if res.data.is_empty() {
            return Ok(None);
        }
        let etag = (!res.etag.is_empty()).then_some(res.etag);
        Ok(Some(StateEntry {
            value: res.data,
            etag,
        }))
    }

    /// Saves `value` under `key` as `mode` says, expiring after `ttl` if
    /// given. A lost race (the key exists for [`WriteMode::Insert`], the
    /// ETag changed for [`WriteMode::IfMatch`]) is
    /// [`SidecarError::EtagMismatch`].
    #[instrument(name = "dapr.state.save", skip_all, fields(dapr.store = store, dapr.key = key))]
    pub async fn save_state(
        &self,
        store: &str,
        key: &str,
        value: Vec<u8>,
        mode: WriteMode<'_>,
        ttl: Option<Duration>,
    ) -> Result<(), SidecarError> {
        let first_write = Some(StateOptions {
            concurrency: StateConcurrency::ConcurrencyFirstWrite.into(),
            consistency: 0,
        });
        let (etag, options) = match mode {
            WriteMode::Insert => (None, first_write),
            WriteMode::IfMatch(etag) => (
                Some(Etag {
                    value: etag.to_owned(),
                }),
                first_write,
            ),
            WriteMode::Overwrite => (None, None),
        };
        let metadata = ttl
            .map(|ttl| ("ttlInSeconds".to_owned(), ttl.as_secs().to_string()))
            .into_iter()
            .collect();
        let (mut grpc, request) = self.grpc(SaveStateRequest {
            store_name: store.to_owned(),
            states: vec![StateItem {
                key: key.to_owned(),
                value,
                etag,
                metadata,
                options,
            }],
        });
        match grpc.save_state(request).await {
            Ok(_) => Ok(()),
            Err(status) => {
                let error = SidecarError::from(status);
                if is_conflict(mode, &error) {
                    Err(SidecarError::EtagMismatch)
                } else {
                    Err(error)
                }
            }
        }
    }

    /// Deletes `key`, only if its value still has `etag` when one is given
    /// (otherwise [`SidecarError::EtagMismatch`]).
    #[instrument(name = "dapr.state.delete", skip_all, fields(dapr.store = store, dapr.key = key))]
    pub async fn delete_state(
        &self,
        store: &str,
        key: &str,
        etag: Option<&str>,
    ) -> Result<(), SidecarError> {
        let (mut grpc, request) = self.grpc(DeleteStateRequest {
            store_name: store.to_owned(),
            key: key.to_owned(),
            etag: etag.map(|value| Etag {
                value: value.to_owned(),
            }),
            options: None,
            metadata: HashMap::new(),
        });
        grpc.delete_state(request).await?;
        Ok(())
    }

    /// Runs `query` (the state Query API, alpha: `filter`, `sort`, `page`)
    /// and returns the values it found, in its order. The store must keep
    /// the values as JSON to filter on them.
    #[instrument(name = "dapr.state.query", skip_all, fields(dapr.store = store))]
    pub async fn query_state(
        &self,
        store: &str,
        query: &impl Serialize,
    ) -> Result<Vec<StateEntry>, SidecarError> {
        let query = serde_json::to_string(query)
            .map_err(|e| SidecarError::Rejected(format!("query: {e}")))?;
        let (mut grpc, request) = self.grpc(QueryStateRequest {
            store_name: store.to_owned(),
            query,
            metadata: HashMap::new(),
        });
        let res = grpc.query_state_alpha1(request).await?.into_inner();
        Ok(res
            .results
            .into_iter()
            .map(|item| StateEntry {
                value: item.data,
                etag: (!item.etag.is_empty()).then_some(item.etag),
            })
            .collect())
    }

    /// Executes `operations` atomically. In an outbox-enabled store this is
    /// also how events are published (see [`StateOperation::upsert_with_event`]).
    /// Over HTTP, so that the store keeps the values as JSON (module
    /// documentation); a stale ETag is [`SidecarError::EtagMismatch`] and
    /// nothing is saved or published.
    #[instrument(name = "dapr.state.transaction", skip_all, fields(dapr.store = store, dapr.operations = operations.len()))]
    pub async fn execute_transaction(
        &self,
        store: &str,
        operations: &[StateOperation],
    ) -> Result<(), SidecarError> {
        let body = transaction_body(operations)?;
        let response = self
            .http(
                reqwest::Method::POST,
                &format!("/v1.0/state/{store}/transaction"),
            )
            .header(reqwest::header::CONTENT_TYPE, JSON)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(SidecarError::from_state_write_answer(status, &text))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn body(operations: &[StateOperation]) -> Value {
        serde_json::from_slice(&transaction_body(operations).unwrap()).unwrap()
    }

    #[test]
    fn outbox_pair_saves_state_and_projects_the_event_on_the_same_key() {
        let operations = StateOperation::upsert_with_event(
            "payment||1",
            b"{\"status\":\"created\"}".to_vec(),
            Some("7".into()),
            OutboxEvent {
                event_type: "payments.payment.created".into(),
                subject: "1".into(),
                data: b"{}".to_vec(),
            },
        );
        let body = body(&operations);
        let [state, projection] = [&body["operations"][0], &body["operations"][1]];
        assert_eq!(state["operation"], "upsert");
        assert_eq!(projection["operation"], "upsert");
        let (s, p) = (&state["request"], &projection["request"]);
        assert_eq!(s["key"], p["key"]);
        assert_eq!(s["etag"], "7");
        assert_eq!(s["metadata"]["type"], "payments.payment.created");
        assert_eq!(s["metadata"]["subject"], "1");
        assert!(s["metadata"].get("outbox.projection").is_none());
        assert_eq!(p["metadata"]["outbox.projection"], "true");
        assert!(p.get("etag").is_none());
        assert_eq!(p["value"], json!({}));
    }

    #[test]
    fn values_are_embedded_as_json_not_as_strings() {
        let body = body(&[StateOperation {
            key: "k".into(),
            value: Some(br#"{"amount": 1250, "tags": ["a"]}"#.to_vec()),
            etag: None,
            metadata: HashMap::new(),
            first_write: false,
        }]);
        assert_eq!(
            body["operations"][0]["request"]["value"],
            json!({ "amount": 1250, "tags": ["a"] })
        );
    }

    #[test]
    fn a_value_that_is_not_json_is_refused_before_sending() {
        let operations = [StateOperation {
            key: "k".into(),
            value: Some(b"not json".to_vec()),
            etag: None,
            metadata: HashMap::new(),
            first_write: false,
        }];
        assert!(matches!(
            transaction_body(&operations),
            Err(SidecarError::Rejected(_))
        ));
    }

    #[test]
    fn a_taken_first_write_key_is_a_conflict() {
        let redis = SidecarError::Failed(
            "failed saving state in state store s: failed to set key app||k: ERR ...".into(),
        );
        assert!(is_conflict(WriteMode::Insert, &redis));
        assert!(is_conflict(
            WriteMode::IfMatch("1"),
            &SidecarError::EtagMismatch
        ));
        assert!(!is_conflict(WriteMode::Overwrite, &redis));
        assert!(!is_conflict(
            WriteMode::Insert,
            &SidecarError::Unavailable("connection refused".into())
        ));
    }
}
