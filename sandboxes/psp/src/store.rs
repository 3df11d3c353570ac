//! The provider's in-memory state: objects, idempotency records, webhook
//! events, the control-API configuration and the effect counters. One mutex
//! guards it all, so an idempotency check and the effect it protects happen
//! atomically.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ApiError;
use crate::model::{
    Authorization, AuthorizationRequest, AuthorizationStatus, CaptureRequest, CardOutcome, Refund,
    RefundRequest,
};
use crate::settings::Settings;

/// Run-time behaviour, changed through `POST /__sandbox/config`.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub latency_ms: u64,
    pub failure_rate: f64,
    pub fail_next: u32,
    pub fail_status: u16,
    pub timeout_next: u32,
    pub slow_ms: u64,
    pub webhook_url: Option<String>,
}

impl Config {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            latency_ms: u64::try_from(settings.latency.as_millis()).unwrap_or(u64::MAX),
            failure_rate: 0.0,
            fail_next: 0,
            fail_status: 500,
            timeout_next: 0,
            slow_ms: u64::try_from(settings.slow.as_millis()).unwrap_or(u64::MAX),
            webhook_url: settings.webhook_url.clone(),
        }
    }
}

/// A partial update of [`Config`]; absent fields keep their value,
/// `"webhook_url": null` stops webhooks.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigUpdate {
    latency_ms: Option<u64>,
    failure_rate: Option<f64>,
    fail_next: Option<u32>,
    fail_status: Option<u16>,
    timeout_next: Option<u32>,
    slow_ms: Option<u64>,
    /// `Some(Value::Null)` when the field is present as `null`.
    #[serde(default, deserialize_with = "present")]
    webhook_url: Option<Value>,
}

/// Keeps an explicit `null` apart from an absent field.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl ConfigUpdate {
    /// Applies the update to a copy; nothing changes if any field is invalid.
    pub fn apply(self, config: &Config) -> Result<Config, ApiError> {
        let mut next = config.clone();
        if let Some(rate) = self.failure_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ApiError::InvalidRequest(
                    "failure_rate must be between 0.0 and 1.0".into(),
                ));
            }
            next.failure_rate = rate;
        }
        if let Some(status) = self.fail_status {
            if !(400..=599).contains(&status) {
                return Err(ApiError::InvalidRequest(
                    "fail_status must be a 4xx or 5xx status (500, 503, 429, 408...)".into(),
                ));
            }
            next.fail_status = status;
        }
        match self.webhook_url {
            None => {}
            Some(Value::Null) => next.webhook_url = None,
            Some(Value::String(url))
                if reqwest::Url::parse(&url)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https")) =>
            {
                next.webhook_url = Some(url);
            }
            Some(_) => {
                return Err(ApiError::InvalidRequest(
                    "webhook_url must be an http(s) URL or null".into(),
                ));
            }
        }
        next.latency_ms = self.latency_ms.unwrap_or(next.latency_ms);
        next.fail_next = self.fail_next.unwrap_or(next.fail_next);
        next.timeout_next = self.timeout_next.unwrap_or(next.timeout_next);
        next.slow_ms = self.slow_ms.unwrap_or(next.slow_ms);
        Ok(next)
    }
}

/// How many injected failures [`Store::injected_failures`] remembers (the
/// oldest are forgotten first).
const INJECTED_KEPT: usize = 10_000;

/// A request answered with an injected failure: which endpoint, the
/// `reference` its body named (if any), the status it got. Lets a test tell
/// which of its requests reached the provider while it was failing.
#[derive(Debug, Clone, Serialize)]
pub struct InjectedFailure {
    pub endpoint: String,
    pub reference: Option<String>,
    pub status: u16,
}

/// Counts of real effects (and of injected failures), for tests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Authorizations that reserved funds (declines are counted apart).
    pub authorizations_created: u64,
    pub declines: u64,
    /// Captures, an authorization with `"capture": true` included.
    pub captures: u64,
    pub voids: u64,
    pub refunds: u64,
    /// Every `/v1` request, replays and failures included.
    pub requests: u64,
    pub failures_injected: u64,
    pub timeouts_injected: u64,
    pub webhooks_delivered: u64,
    pub webhooks_failed: u64,
}

/// The outcome of one POST: what to answer, which events to send, whether to
/// hold the answer back.
#[derive(Debug)]
pub struct Outcome {
    pub status: StatusCode,
    pub body: Value,
    pub events: Vec<Arc<Event>>,
    pub slow: bool,
    /// Whether the answer is kept for the idempotency key: not for input
    /// that never reached a decision (so the caller may correct it and retry
    /// with the same key) nor for the provider's own 5xx failures.
    pub record: bool,
}

impl Outcome {
    fn ok(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body,
            events: Vec::new(),
            slow: false,
            record: true,
        }
    }

    fn error(error: &ApiError) -> Self {
        let mut outcome = Self::ok(error.status_code(), error.body());
        outcome.record = !outcome.status.is_server_error();
        outcome
    }

    /// Malformed input: answered, not recorded.
    fn invalid(error: &ApiError) -> Self {
        Self {
            record: false,
            ..Self::error(error)
        }
    }
}

/// A webhook event, signed and sent as is (also when resent).
#[derive(Debug)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Serialize)]
struct EventDelivery {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    attempts: u32,
    delivered: bool,
    last_status: Option<u16>,
}

#[derive(Debug)]
struct StoredResponse {
    request: Value,
    status: StatusCode,
    body: Arc<Vec<u8>>,
}

/// What the idempotency check found.
#[derive(Debug)]
pub enum Replay {
    /// First use of the key: process the request.
    New,
    /// Same key, same body: answer this again.
    Same(StatusCode, Arc<Vec<u8>>),
}

#[derive(Debug)]
pub struct Store {
    authorizations: HashMap<String, Authorization>,
    authorizations_by_reference: HashMap<String, Vec<String>>,
    refunds: HashMap<String, Refund>,
    refunds_by_reference: HashMap<String, Vec<String>>,
    idempotency: HashMap<(String, String), StoredResponse>,
    events: HashMap<String, (Arc<Event>, EventDelivery)>,
    event_order: Vec<String>,
    injected: VecDeque<InjectedFailure>,
    pub config: Config,
    pub stats: Stats,
}

impl Store {
    pub fn new(config: Config) -> Self {
        Self {
            authorizations: HashMap::new(),
            authorizations_by_reference: HashMap::new(),
            refunds: HashMap::new(),
            refunds_by_reference: HashMap::new(),
            idempotency: HashMap::new(),
            events: HashMap::new(),
            event_order: Vec::new(),
            injected: VecDeque::new(),
            config,
            stats: Stats::default(),
        }
    }

    /// Remembers a request answered with an injected failure.
    pub fn record_injected(&mut self, failure: InjectedFailure) {
        if self.injected.len() == INJECTED_KEPT {
            self.injected.pop_front();
        }
        self.injected.push_back(failure);
    }

    /// The remembered injected failures, oldest first; only those whose
    /// reference starts with `prefix` when given.
    pub fn injected_failures(&self, prefix: Option<&str>) -> Vec<&InjectedFailure> {
        self.injected
            .iter()
            .filter(|f| {
                prefix.is_none_or(|p| f.reference.as_deref().is_some_and(|r| r.starts_with(p)))
            })
            .collect()
    }

    /// Looks `key` up for the endpoint `path` (keys are per endpoint).
    pub fn check_idempotency(
        &self,
        path: &str,
        key: &str,
        request: &Value,
    ) -> Result<Replay, ApiError> {
        match self.idempotency.get(&(path.to_owned(), key.to_owned())) {
            None => Ok(Replay::New),
            Some(stored) if stored.request == *request => {
                Ok(Replay::Same(stored.status, Arc::clone(&stored.body)))
            }
            Some(_) => Err(ApiError::IdempotencyKeyReused),
        }
    }

    pub fn remember(
        &mut self,
        path: &str,
        key: &str,
        request: Value,
        status: StatusCode,
        body: Arc<Vec<u8>>,
    ) {
        self.idempotency.insert(
            (path.to_owned(), key.to_owned()),
            StoredResponse {
                request,
                status,
                body,
            },
        );
    }

    pub fn authorize(&mut self, body: &Value) -> Outcome {
        let request = match AuthorizationRequest::parse(body) {
            Ok(request) => request,
            Err(e) => return Outcome::invalid(&e),
        };
        let outcome = CardOutcome::of(&request.card_number);
        if outcome == CardOutcome::ProcessingError {
            tracing::info!(psp.reference = %request.reference, "processing error (test card); nothing created");
            return Outcome::error(&ApiError::Processing);
        }
        let id = format!("auth_{}", uuid::Uuid::new_v4());
        let (status, decline_code) = match outcome {
            CardOutcome::Decline(code) => (AuthorizationStatus::Declined, Some(code)),
            _ if request.capture => (AuthorizationStatus::Captured, None),
            _ => (AuthorizationStatus::Authorized, None),
        };
        let authorization = Authorization {
            id: id.clone(),
            status,
            amount: request.amount,
            currency: request.currency,
            captured_amount: if status == AuthorizationStatus::Captured {
                request.amount
            } else {
                0
            },
            refunded_amount: 0,
            reference: request.reference,
            decline_code,
            created_at: now_rfc3339(),
        };
        self.authorizations_by_reference
            .entry(authorization.reference.clone())
            .or_default()
            .push(id.clone());
        let data = to_json(&authorization);
        tracing::info!(
            psp.authorization_id = %id,
            psp.reference = %authorization.reference,
            psp.status = ?status,
            psp.amount = authorization.amount,
            psp.currency = %authorization.currency,
            "authorization"
        );
        self.authorizations.insert(id.clone(), authorization);
        let mut result = match decline_code {
            Some(code) => {
                self.stats.declines += 1;
                let mut outcome = Outcome::error(&ApiError::CardDeclined {
                    code,
                    authorization_id: id,
                });
                outcome
                    .events
                    .push(self.record_event("authorization.declined", data));
                outcome
            }
            None => {
                self.stats.authorizations_created += 1;
                let kind = if status == AuthorizationStatus::Captured {
                    self.stats.captures += 1;
                    "authorization.captured"
                } else {
                    "authorization.authorized"
                };
                let mut outcome = Outcome::ok(StatusCode::CREATED, data.clone());
                outcome.events.push(self.record_event(kind, data));
                outcome
            }
        };
        result.slow = outcome == CardOutcome::AuthorizeSlowly;
        result
    }

    pub fn capture(&mut self, id: &str, body: &Value) -> Outcome {
        let request = match CaptureRequest::parse(body) {
            Ok(request) => request,
            Err(e) => return Outcome::invalid(&e),
        };
        let Some(authorization) = self.authorizations.get_mut(id) else {
            return Outcome::error(&ApiError::NotFound(format!("authorization {id}")));
        };
        if !matches!(
            authorization.status,
            AuthorizationStatus::Authorized | AuthorizationStatus::Captured
        ) {
            return Outcome::error(&ApiError::InvalidState(format!(
                "an authorization in status {:?} cannot be captured",
                authorization.status
            )));
        }
        let remaining = authorization.amount - authorization.captured_amount;
        let amount = request.amount.unwrap_or(remaining);
        if amount == 0 || amount > remaining {
            return Outcome::error(&ApiError::AmountTooLarge(format!(
                "capture of {amount} exceeds the {remaining} left to capture"
            )));
        }
        authorization.captured_amount += amount;
        authorization.status = AuthorizationStatus::Captured;
        tracing::info!(psp.authorization_id = %id, psp.amount = amount, "capture");
        let data = to_json(authorization);
        self.stats.captures += 1;
        let mut outcome = Outcome::ok(StatusCode::OK, data.clone());
        outcome
            .events
            .push(self.record_event("authorization.captured", data));
        outcome
    }

    pub fn void(&mut self, id: &str, body: &Value) -> Outcome {
        if let Err(e) = crate::model::parse_void(body) {
            return Outcome::invalid(&e);
        }
        let Some(authorization) = self.authorizations.get_mut(id) else {
            return Outcome::error(&ApiError::NotFound(format!("authorization {id}")));
        };
        if authorization.status != AuthorizationStatus::Authorized
            || authorization.captured_amount > 0
        {
            return Outcome::error(&ApiError::InvalidState(format!(
                "only an authorization with nothing captured can be voided (status {:?})",
                authorization.status
            )));
        }
        authorization.status = AuthorizationStatus::Voided;
        tracing::info!(psp.authorization_id = %id, "void");
        let data = to_json(authorization);
        self.stats.voids += 1;
        let mut outcome = Outcome::ok(StatusCode::OK, data.clone());
        outcome
            .events
            .push(self.record_event("authorization.voided", data));
        outcome
    }

    pub fn refund(&mut self, body: &Value) -> Outcome {
        let request = match RefundRequest::parse(body) {
            Ok(request) => request,
            Err(e) => return Outcome::invalid(&e),
        };
        let Some(authorization) = self.authorizations.get_mut(&request.authorization_id) else {
            return Outcome::error(&ApiError::NotFound(format!(
                "authorization {}",
                request.authorization_id
            )));
        };
        let refundable = authorization.captured_amount - authorization.refunded_amount;
        if request.amount > refundable {
            return Outcome::error(&ApiError::AmountTooLarge(format!(
                "refund of {} exceeds the {refundable} captured and not yet refunded",
                request.amount
            )));
        }
        authorization.refunded_amount += request.amount;
        let refund = Refund {
            id: format!("re_{}", uuid::Uuid::new_v4()),
            authorization_id: request.authorization_id,
            amount: request.amount,
            currency: authorization.currency.clone(),
            status: "succeeded",
            reference: request.reference,
            created_at: now_rfc3339(),
        };
        tracing::info!(
            psp.refund_id = %refund.id,
            psp.authorization_id = %refund.authorization_id,
            psp.amount = refund.amount,
            "refund"
        );
        let data = to_json(&refund);
        self.refunds_by_reference
            .entry(refund.reference.clone())
            .or_default()
            .push(refund.id.clone());
        self.refunds.insert(refund.id.clone(), refund);
        self.stats.refunds += 1;
        let mut outcome = Outcome::ok(StatusCode::CREATED, data.clone());
        outcome
            .events
            .push(self.record_event("refund.succeeded", data));
        outcome
    }

    pub fn authorization(&self, id: &str) -> Option<&Authorization> {
        self.authorizations.get(id)
    }

    /// Authorizations with `reference`, oldest first; all of them without.
    pub fn authorizations(&self, reference: Option<&str>) -> Vec<&Authorization> {
        let mut found: Vec<&Authorization> = match reference {
            Some(r) => self
                .authorizations_by_reference
                .get(r)
                .into_iter()
                .flatten()
                .filter_map(|id| self.authorizations.get(id))
                .collect(),
            None => self.authorizations.values().collect(),
        };
        found.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        found
    }

    pub fn refund_by_id(&self, id: &str) -> Option<&Refund> {
        self.refunds.get(id)
    }

    pub fn refunds(&self, reference: Option<&str>) -> Vec<&Refund> {
        let mut found: Vec<&Refund> = match reference {
            Some(r) => self
                .refunds_by_reference
                .get(r)
                .into_iter()
                .flatten()
                .filter_map(|id| self.refunds.get(id))
                .collect(),
            None => self.refunds.values().collect(),
        };
        found.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        found
    }

    /// Creates and keeps an event (for resends); the caller sends it.
    pub fn record_event(&mut self, kind: &str, data: Value) -> Arc<Event> {
        let id = format!("evt_{}", uuid::Uuid::new_v4());
        let body = json!({
            "id": id,
            "type": kind,
            "created": OffsetDateTime::now_utc().unix_timestamp(),
            "data": data,
        });
        let event = Arc::new(Event {
            id: id.clone(),
            kind: kind.to_owned(),
            body: body.to_string().into_bytes(),
        });
        self.events.insert(
            id.clone(),
            (
                Arc::clone(&event),
                EventDelivery {
                    id: id.clone(),
                    kind: kind.to_owned(),
                    attempts: 0,
                    delivered: false,
                    last_status: None,
                },
            ),
        );
        self.event_order.push(id);
        event
    }

    pub fn event(&self, id: &str) -> Option<Arc<Event>> {
        self.events.get(id).map(|(event, _)| Arc::clone(event))
    }

    /// Notes one delivery attempt of an event.
    pub fn note_attempt(&mut self, id: &str, status: Option<u16>) {
        if let Some((_, delivery)) = self.events.get_mut(id) {
            delivery.attempts += 1;
            delivery.last_status = status;
            if status.is_some_and(|s| (200..300).contains(&s)) {
                delivery.delivered = true;
            }
        }
    }

    /// Every event, oldest first, with its delivery state.
    pub fn event_deliveries(&self) -> Value {
        let data: Vec<&EventDelivery> = self
            .event_order
            .iter()
            .filter_map(|id| self.events.get(id).map(|(_, d)| d))
            .collect();
        json!({ "data": data })
    }
}

fn to_json<T: Serialize>(value: &T) -> Value {
    // Our own plain structs always serialise.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::new(Config::from_settings(&Settings::default()))
    }

    fn authorize(store: &mut Store, amount: i64, capture: bool) -> String {
        let outcome = store.authorize(&json!({
            "amount": amount, "currency": "EUR", "card_number": "4242424242424242",
            "reference": "pay_1", "capture": capture
        }));
        assert_eq!(outcome.status, StatusCode::CREATED);
        outcome.body["id"].as_str().unwrap().to_owned()
    }

    #[test]
    fn captures_never_exceed_the_authorized_amount() {
        let mut s = store();
        let id = authorize(&mut s, 1000, false);
        assert_eq!(
            s.capture(&id, &json!({"amount": 600})).status,
            StatusCode::OK
        );
        let too_much = s.capture(&id, &json!({"amount": 401}));
        assert_eq!(too_much.status, StatusCode::BAD_REQUEST);
        assert_eq!(too_much.body["error"]["code"], "amount_too_large");
        let rest = s.capture(&id, &json!({}));
        assert_eq!(rest.body["captured_amount"], 1000);
        assert_eq!(
            s.capture(&id, &json!({})).status,
            StatusCode::BAD_REQUEST,
            "nothing is left to capture"
        );
        assert_eq!(s.stats.captures, 2);
    }

    #[test]
    fn refunds_never_exceed_the_captured_amount() {
        let mut s = store();
        let id = authorize(&mut s, 1000, false);
        let nothing_captured =
            s.refund(&json!({"authorization_id": id, "amount": 1, "reference": "r1"}));
        assert_eq!(nothing_captured.status, StatusCode::BAD_REQUEST);
        s.capture(&id, &json!({"amount": 700}));
        assert_eq!(
            s.refund(&json!({"authorization_id": id, "amount": 500, "reference": "r1"}))
                .status,
            StatusCode::CREATED
        );
        assert_eq!(
            s.refund(&json!({"authorization_id": id, "amount": 201, "reference": "r2"}))
                .status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            s.refund(&json!({"authorization_id": id, "amount": 200, "reference": "r3"}))
                .status,
            StatusCode::CREATED
        );
        assert_eq!(s.authorization(&id).unwrap().refunded_amount, 700);
        assert_eq!(s.stats.refunds, 2);
    }

    #[test]
    fn only_an_uncaptured_authorization_can_be_voided() {
        let mut s = store();
        let captured = authorize(&mut s, 100, true);
        assert_eq!(s.void(&captured, &json!({})).status, StatusCode::CONFLICT);
        let open = authorize(&mut s, 100, false);
        assert_eq!(s.void(&open, &json!({})).body["status"], "voided");
        assert_eq!(s.void(&open, &json!({})).status, StatusCode::CONFLICT);
        assert_eq!(
            s.capture(&open, &json!({})).status,
            StatusCode::CONFLICT,
            "a voided authorization cannot be captured"
        );
        assert_eq!(
            s.void("auth_missing", &json!({})).status,
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn a_processing_error_creates_nothing_and_a_decline_is_kept() {
        let mut s = store();
        let failed = s.authorize(&json!({"amount": 5, "currency": "EUR",
            "card_number": "4000000000000119", "reference": "p"}));
        assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(s.authorizations(Some("p")).is_empty());
        assert!(failed.events.is_empty());
        let declined = s.authorize(&json!({"amount": 5, "currency": "EUR",
            "card_number": "4000000000009995", "reference": "p"}));
        assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED);
        assert_eq!(declined.body["error"]["code"], "insufficient_funds");
        let kept = s.authorizations(Some("p"));
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].status, AuthorizationStatus::Declined);
        assert_eq!(declined.events[0].kind, "authorization.declined");
        assert_eq!(s.stats.authorizations_created, 0);
        assert_eq!(s.stats.declines, 1);
    }

    #[test]
    fn config_updates_are_partial_and_all_or_nothing() {
        let config = Config::from_settings(&Settings::default());
        let update: ConfigUpdate =
            serde_json::from_value(json!({"fail_next": 2, "fail_status": 503})).unwrap();
        let next = update.apply(&config).unwrap();
        assert_eq!((next.fail_next, next.fail_status), (2, 503));
        assert_eq!(next.slow_ms, 30_000);
        let bad: ConfigUpdate =
            serde_json::from_value(json!({"fail_next": 2, "failure_rate": 1.5})).unwrap();
        assert!(bad.apply(&next).is_err());
        let clear: ConfigUpdate = serde_json::from_value(json!({"webhook_url": null})).unwrap();
        let with_url = Config {
            webhook_url: Some("http://x".into()),
            ..config
        };
        assert!(clear.apply(&with_url).unwrap().webhook_url.is_none());
    }
}
