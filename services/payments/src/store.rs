//! Where payments keep their state, through `platform_dapr::Sidecar`.
//!
//! [`PaymentStore`]: the payments state store (`state.postgresql`). Every
//! save is one transaction of the payment (guarded by the ETag read before),
//! its event as an outbox record (`outbox:<event id>`, published by
//! [`crate::jobs::outbox_relay`]) and, when the save starts or ends a provider
//! call, the payment's reconciliation intent (`reconcile:<payment id>`,
//! worked by [`crate::jobs::reconciler`]). A failed transaction leaves
//! nothing: PostgreSQL rolls back all of it (ADR 0031). Dapr's own outbox is
//! not used: it publishes to its internal topic *before* the transaction, so
//! every failed or conflicting transaction left a message that was retried
//! forever.
//! [`KeyValue`]: the store for idempotency records and webhook event ids
//! (also `state.postgresql`, ADR 0030), with first-write concurrency and
//! per-key TTLs.

use std::sync::Arc;
use std::time::Duration;

use platform_dapr::{Sidecar, SidecarError, StateOperation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tracing::instrument;
use uuid::Uuid;

use crate::domain::{DomainEvent, Payment, PaymentId};
use crate::error::PaymentsError;

/// [`KeyValue::put`] takes the sidecar's write modes as they are.
pub use platform_dapr::WriteMode;

/// How long a call to the payments state store may take.
const STORE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call to the key/value store may take: every API write
/// waits on it (idempotency records).
const KEY_VALUE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct PaymentStore {
    sidecar: Sidecar,
    store: String,
    /// Notified after every commit that wrote an outbox record.
    outbox_written: Arc<Notify>,
}

/// The `record` field of the rows that are not payments.
const OUTBOX: &str = "outbox";
const RECONCILE: &str = "reconcile";

/// A 16-digit, zero-padded microsecond count: the state store's Query API
/// sorts (and compares) as text, so text order must be time order.
pub fn micros(at: OffsetDateTime) -> String {
    let us = (at.unix_timestamp_nanos() / 1000).max(0);
    format!("{us:016}")
}

/// An event waiting to be published, saved in the same transaction as the
/// change it reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub(crate) record: String,
    /// The CloudEvent id: stable across republishing, so consumers
    /// de-duplicate.
    pub event_id: String,
    pub event_type: String,
    pub subject: String,
    pub data: serde_json::Value,
    pub queued_at_us: String,
    /// The W3C trace context of the request that wrote the event, put on
    /// the CloudEvent by the relay so the consumers' spans join its trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl OutboxMessage {
    pub(crate) fn new(event: &DomainEvent, now: OffsetDateTime) -> Result<Self, PaymentsError> {
        let data = event.to_json().map_err(internal)?;
        Ok(Self {
            record: OUTBOX.to_owned(),
            event_id: Uuid::now_v7().to_string(),
            event_type: event.event_type().to_owned(),
            subject: event.subject(),
            data: serde_json::from_slice(&data).map_err(internal)?,
            queued_at_us: micros(now),
            traceparent: platform_telemetry::current_trace_context()
                .into_iter()
                .find_map(|(name, value)| (name == "traceparent").then_some(value)),
        })
    }

    pub fn key(&self) -> String {
        format!("outbox:{}", self.event_id)
    }
}

/// A payment whose provider outcome may be unknown: written *before* the
/// provider call (with the state change, when there is one), removed when
/// the outcome is saved, worked by the reconciler otherwise. One key per
/// payment, so reconciliation has no shared, contended record; the
/// reconciler's progress (claim, tries, next check) lives here too.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReconcileIntent {
    pub(crate) record: String,
    pub payment_id: PaymentId,
    /// Not checked before this time (16-digit microseconds, [`micros`]).
    pub due_at_us: String,
    /// Checks made so far (the back-off grows with them).
    #[serde(default)]
    pub tries: u32,
    /// The round that holds the intent until `due_at_us`, if any.
    #[serde(default)]
    pub claim: Option<String>,
    #[serde(default)]
    pub last_error: Option<String>,
}

impl ReconcileIntent {
    /// An intent first checked at `due`.
    pub fn new(payment_id: PaymentId, due: OffsetDateTime) -> Self {
        Self {
            record: RECONCILE.to_owned(),
            payment_id,
            due_at_us: micros(due),
            tries: 0,
            claim: None,
            last_error: None,
        }
    }

    pub fn key(&self) -> String {
        reconcile_key(self.payment_id)
    }
}

fn reconcile_key(id: PaymentId) -> String {
    format!("reconcile:{id}")
}

/// What a save does to the payment's reconciliation intent.
#[derive(Debug, Clone)]
pub enum Intent {
    /// Leaves it as it is.
    Keep,
    /// Writes it (before a provider call).
    Record(ReconcileIntent),
    /// Removes it when the saved payment has no unknown outcome left (after
    /// the provider's answer was saved).
    ClearIfSettled,
}

/// A page of payments in creation order.
#[derive(Debug, Clone)]
pub struct Page {
    pub payments: Vec<Payment>,
    pub has_more: bool,
    /// Offset of the next page, when there is one.
    pub next: Option<u64>,
}

/// A payment as read, with the ETag a save must present.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    pub etag: Option<String>,
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> PaymentsError {
    PaymentsError::Internal(Box::new(e))
}

impl PaymentStore {
    pub fn new(sidecar: &Sidecar, store: String) -> Self {
        Self {
            sidecar: sidecar.with_timeout(STORE_TIMEOUT),
            store,
            outbox_written: Arc::new(Notify::new()),
        }
    }

    /// Fires after a commit wrote an outbox record (the relay's wake-up).
    pub fn outbox_written(&self) -> Arc<Notify> {
        Arc::clone(&self.outbox_written)
    }

    /// Payments in creation order (oldest first), optionally of one
    /// customer, from offset `after` (the previous page's cursor). New
    /// payments are appended at the end, so a cursor stays valid while
    /// payments are added. (The Query API of `state.postgresql` v1 compares
    /// everything but equality as text, so a keyset cursor is not possible;
    /// its own pagination token is an offset.)
    #[instrument(name = "payments.list", skip_all, fields(limit))]
    pub async fn list(
        &self,
        owner: Option<&str>,
        customer_reference: Option<&str>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page, PaymentsError> {
        // Only payment records: the outbox keeps its markers in the same
        // table, without a `status`.
        let mut conditions = vec![json!({ "NEQ": { "status": "" } })];
        // In the query, so that pages stay full and cursors valid.
        if let Some(owner) = owner {
            conditions.push(json!({ "EQ": { "owner_client_id": owner } }));
        }
        if let Some(customer) = customer_reference {
            conditions.push(json!({ "EQ": { "customer_reference": customer } }));
        }
        let mut page = json!({ "limit": limit + 1 });
        if let Some(after) = after {
            page["token"] = json!(after.to_string());
        }
        let filter = if conditions.len() == 1 {
            conditions.remove(0)
        } else {
            json!({ "AND": conditions })
        };
        let query = json!({
            "filter": filter,
            // 16-digit microsecond counts: text order is time order.
            "sort": [
                { "key": "created_at_us", "order": "ASC" },
                { "key": "id", "order": "ASC" },
            ],
            "page": page,
        });
        let mut payments = self
            .sidecar
            .query_state(&self.store, &query)
            .await
            .map_err(store_failure)?
            .into_iter()
            .map(|entry| serde_json::from_slice::<Payment>(&entry.value).map_err(internal))
            .collect::<Result<Vec<_>, _>>()?;
        let has_more = payments.len() > limit;
        payments.truncate(limit);
        let next = has_more.then(|| after.unwrap_or(0) + payments.len() as u64);
        Ok(Page {
            payments,
            has_more,
            next,
        })
    }

    pub async fn load(&self, id: PaymentId) -> Result<Option<Versioned<Payment>>, PaymentsError> {
        let Some(entry) = self.sidecar.get_state(&self.store, &id.state_key()).await? else {
            return Ok(None);
        };
        let value = serde_json::from_slice(&entry.value).map_err(internal)?;
        Ok(Some(Versioned {
            value,
            etag: entry.etag,
        }))
    }

    /// Saves `payment`, queues `event` and applies `intent`, in one
    /// transaction. `etag` `None` creates: the id must be new (first-write),
    /// else [`PaymentsError::Conflict`]; a stale ETag is a conflict too, and
    /// then nothing at all is written.
    #[instrument(name = "payments.save", skip_all, fields(payment.id = %payment.id, event.type = event.event_type()))]
    pub async fn save(
        &self,
        payment: &Payment,
        etag: Option<String>,
        event: &DomainEvent,
        intent: Intent,
    ) -> Result<(), PaymentsError> {
        payment
            .check_invariants()
            .map_err(|broken| PaymentsError::Internal(broken.into()))?;
        let value = serde_json::to_vec(payment).map_err(internal)?;
        let message = OutboxMessage::new(event, OffsetDateTime::now_utc())?;
        let mut operations = vec![
            match etag {
                Some(etag) => StateOperation::upsert(payment.id.state_key(), value, Some(etag)),
                None => StateOperation::insert(payment.id.state_key(), value),
            },
            StateOperation::upsert(
                message.key(),
                serde_json::to_vec(&message).map_err(internal)?,
                None,
            ),
        ];
        match intent {
            Intent::Keep => {}
            Intent::Record(intent) => operations.push(StateOperation::upsert(
                intent.key(),
                serde_json::to_vec(&intent).map_err(internal)?,
                None,
            )),
            Intent::ClearIfSettled if !payment.has_unknown_outcome() => {
                operations.push(StateOperation::delete(reconcile_key(payment.id), None));
            }
            Intent::ClearIfSettled => {}
        }
        self.sidecar
            .execute_transaction(&self.store, &operations)
            .await?;
        self.outbox_written.notify_one();
        Ok(())
    }

    /// Writes a reconciliation intent on its own (before a provider call
    /// that changes nothing until it answers: capture, void, refund).
    pub async fn record_intent(&self, intent: &ReconcileIntent) -> Result<(), PaymentsError> {
        let operation = StateOperation::upsert(
            intent.key(),
            serde_json::to_vec(intent).map_err(internal)?,
            None,
        );
        Ok(self
            .sidecar
            .execute_transaction(&self.store, &[operation])
            .await?)
    }

    /// Replaces the intent read with `etag`; [`Written::Conflict`] when it
    /// changed since (another round, or a new provider call, wrote it).
    pub async fn update_intent(
        &self,
        intent: &ReconcileIntent,
        etag: Option<String>,
    ) -> Result<Written, PaymentsError> {
        let operation = StateOperation::upsert(
            intent.key(),
            serde_json::to_vec(intent).map_err(internal)?,
            etag,
        );
        written(
            self.sidecar
                .execute_transaction(&self.store, &[operation])
                .await,
        )
    }

    /// Removes the intent read with `etag` (unless it changed since).
    pub async fn clear_intent(
        &self,
        id: PaymentId,
        etag: Option<String>,
    ) -> Result<Written, PaymentsError> {
        let operation = StateOperation::delete(reconcile_key(id), etag);
        written(
            self.sidecar
                .execute_transaction(&self.store, &[operation])
                .await,
        )
    }

    pub async fn load_intent(
        &self,
        id: PaymentId,
    ) -> Result<Option<Versioned<ReconcileIntent>>, PaymentsError> {
        let Some(entry) = self
            .sidecar
            .get_state(&self.store, &reconcile_key(id))
            .await
            .map_err(store_failure)?
        else {
            return Ok(None);
        };
        let value = serde_json::from_slice(&entry.value).map_err(internal)?;
        Ok(Some(Versioned {
            value,
            etag: entry.etag,
        }))
    }

    /// The first `limit` intents by the time they are due (earliest first):
    /// one page through the keyed records, never one shared list.
    #[instrument(name = "payments.intents", skip_all, fields(limit))]
    pub async fn intents(
        &self,
        limit: usize,
    ) -> Result<Vec<Versioned<ReconcileIntent>>, PaymentsError> {
        self.records(RECONCILE, "due_at_us", limit).await
    }

    /// The oldest `limit` outbox records.
    #[instrument(name = "payments.outbox", skip_all, fields(limit))]
    pub async fn outbox(&self, limit: usize) -> Result<Vec<OutboxMessage>, PaymentsError> {
        Ok(self
            .records(OUTBOX, "queued_at_us", limit)
            .await?
            .into_iter()
            .map(|v| v.value)
            .collect())
    }

    async fn records<T: DeserializeOwned>(
        &self,
        record: &str,
        order_by: &str,
        limit: usize,
    ) -> Result<Vec<Versioned<T>>, PaymentsError> {
        let query = json!({
            "filter": { "EQ": { "record": record } },
            "sort": [{ "key": order_by, "order": "ASC" }],
            "page": { "limit": limit },
        });
        self.sidecar
            .query_state(&self.store, &query)
            .await
            .map_err(store_failure)?
            .into_iter()
            .map(|entry| {
                Ok(Versioned {
                    value: serde_json::from_slice(&entry.value).map_err(internal)?,
                    etag: entry.etag,
                })
            })
            .collect()
    }

    /// Removes published outbox records, in one transaction.
    pub async fn delete_outbox(&self, keys: Vec<String>) -> Result<(), PaymentsError> {
        if keys.is_empty() {
            return Ok(());
        }
        let operations: Vec<StateOperation> = keys
            .into_iter()
            .map(|key| StateOperation::delete(key, None))
            .collect();
        Ok(self
            .sidecar
            .execute_transaction(&self.store, &operations)
            .await?)
    }
}

fn written(result: Result<(), SidecarError>) -> Result<Written, PaymentsError> {
    match result {
        Ok(()) => Ok(Written::Ok),
        Err(SidecarError::EtagMismatch) => Ok(Written::Conflict),
        Err(e) => Err(e.into()),
    }
}

/// A store without outbox, holding JSON values.
#[derive(Debug, Clone)]
pub struct KeyValue {
    sidecar: Sidecar,
    store: String,
}

/// Outcome of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Ok,
    /// The key exists (first-write) or changed (ETag).
    Conflict,
}

impl KeyValue {
    pub fn new(sidecar: &Sidecar, store: String) -> Self {
        Self {
            sidecar: sidecar.with_timeout(KEY_VALUE_TIMEOUT),
            store,
        }
    }

    #[instrument(name = "dapr.kv.get", skip_all, fields(dapr.key = key))]
    pub async fn get<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<Versioned<T>>, PaymentsError> {
        let Some(entry) = self
            .sidecar
            .get_state(&self.store, key)
            .await
            .map_err(store_failure)?
        else {
            return Ok(None);
        };
        let value = serde_json::from_slice(&entry.value).map_err(internal)?;
        Ok(Some(Versioned {
            value,
            etag: entry.etag,
        }))
    }

    /// Writes `value` under `key` as `mode` says, expiring after `ttl_secs`.
    #[instrument(name = "dapr.kv.put", skip_all, fields(dapr.key = key))]
    pub async fn put<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        mode: WriteMode<'_>,
        ttl_secs: u64,
    ) -> Result<Written, PaymentsError> {
        let value = serde_json::to_vec(value).map_err(internal)?;
        let ttl = Some(Duration::from_secs(ttl_secs));
        match self
            .sidecar
            .save_state(&self.store, key, value, mode, ttl)
            .await
        {
            Ok(()) => Ok(Written::Ok),
            Err(SidecarError::EtagMismatch) => Ok(Written::Conflict),
            Err(e) => Err(store_failure(e)),
        }
    }

    #[instrument(name = "dapr.kv.delete", skip_all, fields(dapr.key = key))]
    pub async fn delete(&self, key: &str, etag: Option<&str>) -> Result<Written, PaymentsError> {
        match self.sidecar.delete_state(&self.store, key, etag).await {
            Ok(()) => Ok(Written::Ok),
            Err(SidecarError::EtagMismatch) => Ok(Written::Conflict),
            Err(e) => Err(store_failure(e)),
        }
    }
}

/// What the key/value and query calls make of a failure. daprd reports any
/// failure of the store behind it (Redis or PostgreSQL down) as an internal
/// error; a retry may well succeed, so it is a 503, as it has always been
/// for these calls. A request the sidecar refused stays a bug (500).
fn store_failure(e: SidecarError) -> PaymentsError {
    match e {
        SidecarError::Failed(_) => PaymentsError::Unavailable(e),
        e => e.into(),
    }
}
