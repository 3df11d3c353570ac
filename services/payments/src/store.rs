//! Where payments keep their state, through `platform_dapr::Sidecar`.
//!
//! [`PaymentStore`]: the outbox-enabled Dapr state store; every save is one
//! transaction with the event it publishes, guarded by the ETag read before.
//! [`KeyValue`]: the plain (no outbox) store for idempotency records, webhook
//! event ids and the reconciliation set, with first-write concurrency and
//! per-key TTLs.

use std::time::Duration;

use platform_dapr::{OutboxEvent, Sidecar, SidecarError, StateOperation};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::instrument;

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
        }
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

    /// Saves `payment` and publishes `event` in one transaction. `etag`
    /// `None` creates (the id is new); a stale ETag is
    /// [`PaymentsError::Conflict`] and nothing is saved or published. The
    /// payment and the event are each serialised once, straight into the
    /// transaction (ADR 0005: the state upsert carries the CloudEvent
    /// `type`/`subject`, the projection the event).
    #[instrument(name = "payments.save", skip_all, fields(payment.id = %payment.id, event.type = event.event_type()))]
    pub async fn save(
        &self,
        payment: &Payment,
        etag: Option<String>,
        event: &DomainEvent,
    ) -> Result<(), PaymentsError> {
        payment
            .check_invariants()
            .map_err(|broken| PaymentsError::Internal(broken.into()))?;
        let operations = StateOperation::upsert_with_event(
            payment.id.state_key(),
            serde_json::to_vec(payment).map_err(internal)?,
            etag,
            OutboxEvent {
                event_type: event.event_type().to_owned(),
                subject: event.subject(),
                data: event.to_json().map_err(internal)?,
            },
        );
        Ok(self
            .sidecar
            .execute_transaction(&self.store, &operations)
            .await?)
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
