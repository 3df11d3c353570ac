//! Where payments keep their state.
//!
//! [`PaymentStore`]: the outbox-enabled Dapr state store; every save is one
//! transaction with the event it publishes, guarded by the ETag read before.
//! [`KeyValue`]: the plain (no outbox) store for idempotency records, webhook
//! event ids and the reconciliation set, over the sidecar's HTTP state API
//! because it needs first-write concurrency and per-key TTLs.

use platform_dapr::{Sidecar, SidecarError};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::instrument;

use crate::domain::{DomainEvent, Payment, PaymentId};
use crate::error::PaymentsError;

#[derive(Debug, Clone)]
pub struct PaymentStore {
    sidecar: Sidecar,
    store: String,
    /// The sidecar's state Query API (alpha; HTTP) for listings.
    http: reqwest::Client,
    query_url: String,
    transaction_url: String,
    api_token: Option<SecretString>,
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
    pub fn new(
        sidecar: Sidecar,
        store: String,
        dapr_http: &str,
        api_token: Option<SecretString>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            query_url: format!("{dapr_http}/v1.0-alpha1/state/{store}/query"),
            transaction_url: format!("{dapr_http}/v1.0/state/{store}/transaction"),
            sidecar,
            store,
            http,
            api_token,
        })
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
        customer_reference: Option<&str>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page, PaymentsError> {
        // Only payment records: the outbox keeps its markers in the same
        // table, without a `status`.
        let mut conditions = vec![json!({ "NEQ": { "status": "" } })];
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
        let mut request = self.http.post(&self.query_url).json(&query);
        if let Some(token) = &self.api_token {
            request = request.header("dapr-api-token", token.expose_secret());
        }
        let response = request.send().await.map_err(sidecar_unavailable)?;
        let status = response.status();
        if !status.is_success() {
            return Err(store_error(status, response).await);
        }
        #[derive(serde::Deserialize)]
        struct Results {
            #[serde(default)]
            results: Vec<Item>,
        }
        #[derive(serde::Deserialize)]
        struct Item {
            data: serde_json::Value,
        }
        let bytes = response.bytes().await.map_err(sidecar_unavailable)?;
        let body: Results = if bytes.is_empty() {
            Results {
                results: Vec::new(),
            }
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| PaymentsError::Internal(format!("query answer: {e}").into()))?
        };
        let mut payments = body
            .results
            .into_iter()
            .map(|item| serde_json::from_value::<Payment>(item.data).map_err(internal))
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
    /// [`PaymentsError::Conflict`] and nothing is saved or published.
    ///
    /// Over the sidecar's HTTP API rather than gRPC: there the values are
    /// JSON, so the store keeps them as JSON (gRPC hands it opaque bytes,
    /// which `state.postgresql` stores base64-encoded, out of the Query
    /// API's reach). The operations are those of ADR 0005: the state upsert
    /// carries the CloudEvent `type`/`subject`, the projection the event.
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
        let data: serde_json::Value =
            serde_json::from_slice(&event.to_json().map_err(internal)?).map_err(internal)?;
        let key = payment.id.state_key();
        let mut state = json!({
            "key": key,
            "value": payment,
            "metadata": {
                "type": event.event_type(),
                "subject": event.subject(),
                "contentType": "application/json",
            },
        });
        if let Some(etag) = etag {
            state["etag"] = json!(etag);
        }
        let body = json!({
            "operations": [
                { "operation": "upsert", "request": state },
                { "operation": "upsert", "request": {
                    "key": key,
                    "value": data,
                    "metadata": { "outbox.projection": "true", "contentType": "application/json" },
                } },
            ],
        });
        let mut request = self.http.post(&self.transaction_url).json(&body);
        if let Some(token) = &self.api_token {
            request = request.header("dapr-api-token", token.expose_secret());
        }
        let response = request.send().await.map_err(sidecar_unavailable)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        if status == StatusCode::CONFLICT || text.contains("etag") {
            return Err(PaymentsError::Conflict);
        }
        Err(store_error_text(status, text))
    }
}

/// The sidecar's HTTP state API on a store without outbox.
#[derive(Debug, Clone)]
pub struct KeyValue {
    http: reqwest::Client,
    base: String,
    api_token: Option<SecretString>,
}

/// How [`KeyValue::put`] treats an existing value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode<'a> {
    /// Only if the key does not exist (first-write without ETag).
    Insert,
    /// Only if the value still has this ETag.
    IfMatch(&'a str),
    /// Last write wins.
    Overwrite,
}

/// Outcome of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Ok,
    /// The key exists (first-write) or changed (ETag).
    Conflict,
}

impl KeyValue {
    pub fn new(
        dapr_http: &str,
        store: &str,
        api_token: Option<SecretString>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            http,
            base: format!("{dapr_http}/v1.0/state/{store}"),
            api_token,
        })
    }

    fn request(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.api_token {
            Some(token) => request.header("dapr-api-token", token.expose_secret()),
            None => request,
        }
    }

    #[instrument(name = "dapr.kv.get", skip_all, fields(dapr.key = key))]
    pub async fn get<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<Versioned<T>>, PaymentsError> {
        let response = self
            .request(reqwest::Method::GET, format!("{}/{key}", self.base))
            .send()
            .await
            .map_err(sidecar_unavailable)?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let etag = response
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .map(ToOwned::to_owned);
                let bytes = response.bytes().await.map_err(sidecar_unavailable)?;
                if bytes.is_empty() {
                    return Ok(None);
                }
                let value = serde_json::from_slice(&bytes).map_err(internal)?;
                Ok(Some(Versioned { value, etag }))
            }
            s => Err(store_error(s, response).await),
        }
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
        let mut item = json!({
            "key": key,
            "value": value,
            "metadata": { "ttlInSeconds": ttl_secs.to_string() },
        });
        match mode {
            WriteMode::Insert => item["options"] = json!({ "concurrency": "first-write" }),
            WriteMode::IfMatch(etag) => {
                item["options"] = json!({ "concurrency": "first-write" });
                item["etag"] = json!(etag);
            }
            WriteMode::Overwrite => {}
        }
        let response = self
            .request(reqwest::Method::POST, self.base.clone())
            .json(&[item])
            .send()
            .await
            .map_err(sidecar_unavailable)?;
        match response.status() {
            s if s.is_success() => Ok(Written::Ok),
            StatusCode::CONFLICT => Ok(Written::Conflict),
            s => {
                let body = response.text().await.unwrap_or_default();
                // state.redis reports a first-write or ETag conflict from its
                // Lua script as a failed save.
                if body.contains("failed to set key") || body.contains("etag") {
                    Ok(Written::Conflict)
                } else {
                    Err(store_error_text(s, body))
                }
            }
        }
    }

    #[instrument(name = "dapr.kv.delete", skip_all, fields(dapr.key = key))]
    pub async fn delete(&self, key: &str, etag: Option<&str>) -> Result<Written, PaymentsError> {
        let mut request = self.request(reqwest::Method::DELETE, format!("{}/{key}", self.base));
        if let Some(etag) = etag {
            request = request.header("if-match", etag);
        }
        let response = request.send().await.map_err(sidecar_unavailable)?;
        match response.status() {
            s if s.is_success() => Ok(Written::Ok),
            StatusCode::CONFLICT => Ok(Written::Conflict),
            s => {
                let body = response.text().await.unwrap_or_default();
                if body.contains("failed to delete") || body.contains("etag") {
                    Ok(Written::Conflict)
                } else {
                    Err(store_error_text(s, body))
                }
            }
        }
    }
}

fn sidecar_unavailable(e: reqwest::Error) -> PaymentsError {
    PaymentsError::Unavailable(SidecarError::Unavailable(e.to_string()))
}

async fn store_error(status: StatusCode, response: reqwest::Response) -> PaymentsError {
    store_error_text(status, response.text().await.unwrap_or_default())
}

fn store_error_text(status: StatusCode, body: String) -> PaymentsError {
    let message = format!("state store answered {status}: {body}");
    if status.is_server_error() && !body.contains("etag") {
        PaymentsError::Unavailable(SidecarError::Unavailable(message))
    } else {
        PaymentsError::Internal(message.into())
    }
}
