//! In-memory state of every provider: accepted messages, idempotency
//! records, the control-API configuration and counters.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ApiError;
use crate::message::{AcceptedMessage, OutgoingMessage, Provider, ReceiptStatus};

/// Which delivery receipt accepted messages earn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptMode {
    /// `undeliverable` for the bouncing recipients, else `delivered`.
    #[default]
    Auto,
    Delivered,
    Undeliverable,
}

/// A receipt to post once the accepting request has been answered.
#[derive(Debug, Clone)]
pub struct PendingReceipt {
    pub provider: Provider,
    pub url: String,
    pub body: Value,
}

/// A receipt the sandbox has posted (or is posting), for the control API.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptRecord {
    pub provider: Provider,
    pub url: String,
    pub receipt: Value,
    pub attempts: u32,
    /// The receiver's last HTTP status; none while unanswered.
    pub last_status: Option<u16>,
    pub delivered: bool,
}

/// How a provider answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Accept,
    /// Every request answers `fail_status`.
    Fail,
    /// Every request answers 429 with `Retry-After: 1`.
    Throttle,
    /// Accepts, but answers after `delay_ms`.
    Delay,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProviderConfig {
    pub mode: Mode,
    pub fail_next: u32,
    pub fail_status: u16,
    pub delay_ms: u64,
    pub receipt: ReceiptMode,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Accept,
            fail_next: 0,
            fail_status: 503,
            delay_ms: 0,
            receipt: ReceiptMode::Auto,
        }
    }
}

/// A partial update of [`ProviderConfig`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigUpdate {
    mode: Option<Mode>,
    fail_next: Option<u32>,
    fail_status: Option<u16>,
    delay_ms: Option<u64>,
    receipt: Option<ReceiptMode>,
}

impl ConfigUpdate {
    pub fn apply(self, config: &ProviderConfig) -> Result<ProviderConfig, ApiError> {
        let mut next = config.clone();
        if let Some(status) = self.fail_status {
            if !(400..=599).contains(&status) {
                return Err(ApiError::InvalidRequest(
                    "fail_status must be a 4xx or 5xx status (500, 503, 408, 400...)".into(),
                ));
            }
            next.fail_status = status;
        }
        next.mode = self.mode.unwrap_or(next.mode);
        next.fail_next = self.fail_next.unwrap_or(next.fail_next);
        next.delay_ms = self.delay_ms.unwrap_or(next.delay_ms);
        next.receipt = self.receipt.unwrap_or(next.receipt);
        Ok(next)
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProviderStats {
    pub accepted: u64,
    /// Every answer other than 202: injected failures, throttling, bad input,
    /// invalid recipients.
    pub rejected: u64,
    /// Idempotent replays (no second message).
    pub replayed: u64,
}

#[derive(Debug, Default)]
struct ProviderState {
    config: ProviderConfig,
    stats: ProviderStats,
    messages: Vec<AcceptedMessage>,
    idempotency: HashMap<String, Value>,
}

/// What a send decided before parsing the message.
#[derive(Debug)]
pub enum Admission {
    Refuse(ApiError),
    Proceed { delay_ms: u64 },
}

#[derive(Debug, Default)]
pub struct Store {
    providers: HashMap<Provider, ProviderState>,
    /// Receipts earned by accepted messages, not yet handed to a sender.
    pending: Vec<PendingReceipt>,
    /// Every receipt handed to a sender, by receipt id.
    receipts: Vec<ReceiptRecord>,
}

impl Store {
    fn state(&mut self, provider: Provider) -> &mut ProviderState {
        self.providers.entry(provider).or_default()
    }

    /// Applies the provider's failure mode to one request.
    pub fn admit(&mut self, provider: Provider) -> Admission {
        let state = self.state(provider);
        let config = &mut state.config;
        let refusal = if config.fail_next > 0 {
            config.fail_next -= 1;
            Some(injected(config.fail_status))
        } else {
            match config.mode {
                Mode::Accept | Mode::Delay => None,
                Mode::Fail => Some(injected(config.fail_status)),
                Mode::Throttle => Some(ApiError::Throttled),
            }
        };
        match refusal {
            Some(error) => {
                state.stats.rejected += 1;
                Admission::Refuse(error)
            }
            None => Admission::Proceed {
                delay_ms: if config.mode == Mode::Delay {
                    config.delay_ms
                } else {
                    0
                },
            },
        }
    }

    /// Accepts a message (or replays the answer recorded for `key`).
    pub fn accept(
        &mut self,
        provider: Provider,
        key: Option<&str>,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let state = self.state(provider);
        if let Some(recorded) = key.and_then(|k| state.idempotency.get(k)) {
            state.stats.replayed += 1;
            return Ok(recorded.clone());
        }
        let message = match OutgoingMessage::parse(provider, body) {
            Ok(message) => message,
            Err(error) => {
                state.stats.rejected += 1;
                return Err(error);
            }
        };
        let accepted_id = format!("msg_{}", uuid::Uuid::new_v4());
        let receipt_mode = state.config.receipt;
        if let Some(url) = &message.status_callback {
            let status = match receipt_mode {
                ReceiptMode::Auto => message.natural_receipt(),
                ReceiptMode::Delivered => ReceiptStatus::Delivered,
                ReceiptMode::Undeliverable => ReceiptStatus::Undeliverable,
            };
            let pending = PendingReceipt {
                provider,
                url: url.clone(),
                body: json!({
                    "id": format!("rcpt_{}", uuid::Uuid::new_v4()),
                    "message_id": accepted_id,
                    "reference": message.reference,
                    "status": status,
                    "occurred_at": now(),
                }),
            };
            self.pending.push(pending);
        }
        let state = self.state(provider);
        let accepted = AcceptedMessage {
            id: accepted_id,
            provider,
            status: "accepted",
            to: message.to,
            reference: message.reference,
            title: message.title,
            body: message.body,
            accepted_at: now(),
        };
        let answer = json!({
            "id": accepted.id,
            "provider": provider,
            "status": accepted.status,
            "to": accepted.to,
            "reference": accepted.reference,
        });
        tracing::info!(
            notify.provider = provider.name(),
            notify.message_id = %accepted.id,
            notify.reference = %accepted.reference,
            "message accepted"
        );
        state.messages.push(accepted);
        state.stats.accepted += 1;
        if let Some(key) = key {
            state.idempotency.insert(key.to_owned(), answer.clone());
        }
        Ok(answer)
    }

    /// Hands the earned receipts to the caller (who posts them) and keeps
    /// a record of each.
    pub fn take_pending(&mut self) -> Vec<PendingReceipt> {
        let pending = std::mem::take(&mut self.pending);
        for receipt in &pending {
            self.receipts.push(ReceiptRecord {
                provider: receipt.provider,
                url: receipt.url.clone(),
                receipt: receipt.body.clone(),
                attempts: 0,
                last_status: None,
                delivered: false,
            });
        }
        pending
    }

    /// Notes one attempt to post receipt `id` (`status` none: no answer).
    pub fn note_receipt_attempt(&mut self, id: &str, status: Option<u16>) {
        if let Some(record) = self.receipts.iter_mut().find(|r| r.receipt["id"] == id) {
            record.attempts += 1;
            record.last_status = status;
            record.delivered = status.is_some_and(|s| (200..300).contains(&s));
        }
    }

    /// Receipts posted, oldest first, optionally only those for `reference`.
    pub fn receipts(&self, reference: Option<&str>) -> Vec<ReceiptRecord> {
        self.receipts
            .iter()
            .filter(|r| reference.is_none_or(|reference| r.receipt["reference"] == reference))
            .cloned()
            .collect()
    }

    pub fn note_rejected(&mut self, provider: Provider) {
        self.state(provider).stats.rejected += 1;
    }

    /// Accepted messages, oldest first, filtered by recipient and reference.
    pub fn messages(
        &mut self,
        provider: Provider,
        to: Option<&str>,
        reference: Option<&str>,
    ) -> Vec<AcceptedMessage> {
        self.state(provider)
            .messages
            .iter()
            .filter(|m| to.is_none_or(|to| m.to == to))
            .filter(|m| reference.is_none_or(|r| m.reference == r))
            .cloned()
            .collect()
    }

    pub fn config(&mut self, provider: Provider) -> ProviderConfig {
        self.state(provider).config.clone()
    }

    pub fn configure(
        &mut self,
        provider: Provider,
        update: ConfigUpdate,
    ) -> Result<ProviderConfig, ApiError> {
        let state = self.state(provider);
        state.config = update.apply(&state.config)?;
        Ok(state.config.clone())
    }

    pub fn stats(&mut self) -> Value {
        let mut stats = serde_json::Map::new();
        for provider in Provider::ALL {
            stats.insert(
                provider.name().to_owned(),
                json!(self.state(provider).stats),
            );
        }
        Value::Object(stats)
    }
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn injected(status: u16) -> ApiError {
    ApiError::Injected {
        status: axum::http::StatusCode::from_u16(status)
            .unwrap_or(axum::http::StatusCode::SERVICE_UNAVAILABLE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sms(to: &str) -> Value {
        json!({"to": to, "body": "Your code is 1234", "reference": "n1"})
    }

    #[test]
    fn fail_next_fails_then_accepts() {
        let mut store = Store::default();
        store
            .configure(
                Provider::SmsPrimary,
                serde_json::from_value(json!({"fail_next": 2, "fail_status": 500})).unwrap(),
            )
            .unwrap();
        for _ in 0..2 {
            assert!(matches!(
                store.admit(Provider::SmsPrimary),
                Admission::Refuse(ApiError::Injected { .. })
            ));
        }
        assert!(matches!(
            store.admit(Provider::SmsPrimary),
            Admission::Proceed { delay_ms: 0 }
        ));
        assert!(matches!(
            store.admit(Provider::SmsSecondary),
            Admission::Proceed { .. }
        ));
        assert_eq!(store.stats()["sms-primary"]["rejected"], 2);
    }

    #[test]
    fn modes_choose_the_answer() {
        let mut store = Store::default();
        let set = |store: &mut Store, config: Value| {
            store
                .configure(Provider::Push, serde_json::from_value(config).unwrap())
                .unwrap()
        };
        set(&mut store, json!({"mode": "throttle"}));
        assert!(matches!(
            store.admit(Provider::Push),
            Admission::Refuse(ApiError::Throttled)
        ));
        set(&mut store, json!({"mode": "delay", "delay_ms": 50}));
        assert!(matches!(
            store.admit(Provider::Push),
            Admission::Proceed { delay_ms: 50 }
        ));
        let config = set(&mut store, json!({"mode": "fail"}));
        assert_eq!((config.fail_status, config.delay_ms), (503, 50));
        assert!(matches!(
            store.admit(Provider::Push),
            Admission::Refuse(ApiError::Injected { .. })
        ));
        assert!(
            store
                .configure(
                    Provider::Push,
                    serde_json::from_value(json!({"fail_status": 200})).unwrap()
                )
                .is_err()
        );
    }

    #[test]
    fn an_idempotency_key_never_sends_twice() {
        let mut store = Store::default();
        let first = store
            .accept(Provider::SmsPrimary, Some("k"), &sms("+4915112345678"))
            .unwrap();
        let again = store
            .accept(Provider::SmsPrimary, Some("k"), &sms("+4915112345678"))
            .unwrap();
        assert_eq!(first, again);
        let other_provider = store
            .accept(Provider::SmsSecondary, Some("k"), &sms("+4915112345678"))
            .unwrap();
        assert_ne!(first["id"], other_provider["id"]);
        assert_eq!(store.messages(Provider::SmsPrimary, None, None).len(), 1);
        assert_eq!(store.stats()["sms-primary"]["replayed"], 1);
    }

    #[test]
    fn a_refused_message_is_not_kept() {
        let mut store = Store::default();
        assert!(
            store
                .accept(Provider::SmsPrimary, Some("k"), &sms("+15005550001"))
                .is_err()
        );
        assert!(store.messages(Provider::SmsPrimary, None, None).is_empty());
        assert!(store.take_pending().is_empty());
        // The key was not used up by the refusal.
        assert!(
            store
                .accept(Provider::SmsPrimary, Some("k"), &sms("+4915112345678"))
                .is_ok()
        );
    }

    #[test]
    fn a_status_callback_earns_one_receipt_per_accepted_message() {
        let mut store = Store::default();
        let mut body = sms("+4915112345678");
        body["status_callback"] = json!("http://127.0.0.1:1/receipts");
        store
            .accept(Provider::SmsPrimary, Some("k"), &body)
            .unwrap();
        store
            .accept(Provider::SmsPrimary, Some("k"), &body)
            .unwrap();
        let pending = store.take_pending();
        assert_eq!(pending.len(), 1, "a replay earns no second receipt");
        assert_eq!(pending[0].url, "http://127.0.0.1:1/receipts");
        assert_eq!(pending[0].body["status"], "delivered");
        assert_eq!(pending[0].body["reference"], "n1");
        assert!(pending[0].body["id"].as_str().unwrap().starts_with("rcpt_"));
        let message_id = &store.messages(Provider::SmsPrimary, None, None)[0].id;
        assert_eq!(&pending[0].body["message_id"], message_id.as_str());
        assert!(store.take_pending().is_empty());
        assert_eq!(store.receipts(Some("n1")).len(), 1);

        store
            .accept(Provider::SmsPrimary, None, &sms("+4915112345678"))
            .unwrap();
        assert!(store.take_pending().is_empty(), "no callback, no receipt");
    }

    #[test]
    fn bouncing_recipients_and_the_receipt_setting_choose_undeliverable() {
        let mut store = Store::default();
        let callback = |mut body: Value| {
            body["status_callback"] = json!("http://127.0.0.1:1/r");
            body
        };
        store
            .accept(Provider::SmsPrimary, None, &callback(sms("+15005550009")))
            .unwrap();
        let push = json!({"to": "bounce-token", "title": "T", "body": "B", "reference": "n2"});
        store.accept(Provider::Push, None, &callback(push)).unwrap();
        store
            .configure(
                Provider::SmsSecondary,
                serde_json::from_value(json!({"receipt": "undeliverable"})).unwrap(),
            )
            .unwrap();
        store
            .accept(
                Provider::SmsSecondary,
                None,
                &callback(sms("+4915112345678")),
            )
            .unwrap();
        let statuses: Vec<Value> = store
            .take_pending()
            .into_iter()
            .map(|p| p.body["status"].clone())
            .collect();
        assert_eq!(statuses, vec![json!("undeliverable"); 3]);
        let mut bad = sms("+4915112345678");
        bad["status_callback"] = json!("ftp://x");
        assert!(store.accept(Provider::SmsPrimary, None, &bad).is_err());
    }
}
