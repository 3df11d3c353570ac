//! In-memory state of every provider: accepted messages, idempotency
//! records, the control-API configuration and counters.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ApiError;
use crate::message::{AcceptedMessage, OutgoingMessage, Provider};

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
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Accept,
            fail_next: 0,
            fail_status: 503,
            delay_ms: 0,
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
        let accepted = AcceptedMessage {
            id: format!("msg_{}", uuid::Uuid::new_v4()),
            provider,
            status: "accepted",
            to: message.to,
            reference: message.reference,
            title: message.title,
            body: message.body,
            accepted_at: OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default(),
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
        // The key was not used up by the refusal.
        assert!(
            store
                .accept(Provider::SmsPrimary, Some("k"), &sms("+4915112345678"))
                .is_ok()
        );
    }
}
