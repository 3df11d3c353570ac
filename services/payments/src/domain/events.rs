//! The events payments publishes on topic `payments` (CloudEvent `data`;
//! schemas in contracts/events/<type>.schema.json). The CloudEvent id is the
//! outbox message id, stable across redeliveries: consumers dedupe on it.

use platform_money::Currency;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{PaymentId, PaymentStatus};

/// `payments.payment.{created,updated,succeeded,failed,canceled}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentEventData {
    pub payment_id: PaymentId,
    /// Minor units: the payment's amount, or the captured amount in
    /// `payments.payment.succeeded`.
    pub amount: i64,
    pub currency: Currency,
    pub customer_reference: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// Only in `payments.payment.updated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PaymentStatus>,
    /// Only in `payments.payment.failed`: the decline or failure code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `payments.refund.succeeded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundSucceeded {
    pub refund_id: String,
    pub payment_id: PaymentId,
    pub amount: i64,
    pub currency: Currency,
    pub customer_reference: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainEvent {
    Created(PaymentEventData),
    /// Any other change (processing, requires_capture, a pending or failed
    /// refund): the outbox publishes every saved state, so every save has an
    /// event; consumers that do not care ignore this type.
    Updated(PaymentEventData),
    Succeeded(PaymentEventData),
    Failed(PaymentEventData),
    Canceled(PaymentEventData),
    RefundSucceeded(RefundSucceeded),
}

impl DomainEvent {
    pub const TYPES: [&'static str; 6] = [
        "payments.payment.created",
        "payments.payment.updated",
        "payments.payment.succeeded",
        "payments.payment.failed",
        "payments.payment.canceled",
        "payments.refund.succeeded",
    ];

    /// The CloudEvent `type`.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Created(_) => Self::TYPES[0],
            Self::Updated(_) => Self::TYPES[1],
            Self::Succeeded(_) => Self::TYPES[2],
            Self::Failed(_) => Self::TYPES[3],
            Self::Canceled(_) => Self::TYPES[4],
            Self::RefundSucceeded(_) => Self::TYPES[5],
        }
    }

    /// The CloudEvent `subject`: the payment id, or the refund id.
    pub fn subject(&self) -> String {
        match self {
            Self::RefundSucceeded(r) => r.refund_id.clone(),
            Self::Created(d)
            | Self::Updated(d)
            | Self::Succeeded(d)
            | Self::Failed(d)
            | Self::Canceled(d) => d.payment_id.to_string(),
        }
    }

    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            Self::RefundSucceeded(r) => serde_json::to_vec(r),
            Self::Created(d)
            | Self::Updated(d)
            | Self::Succeeded(d)
            | Self::Failed(d)
            | Self::Canceled(d) => serde_json::to_vec(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use platform_money::Money;
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::{
        AuthorizationFact, AuthorizationOutcome, CaptureMethod, Fact, Payment, PaymentId,
        RefundFact, RefundStatus,
    };

    fn auth(outcome: AuthorizationOutcome, captured: i64) -> Fact {
        Fact::Authorization(AuthorizationFact {
            attempt: 1,
            provider_id: Some("auth_1".into()),
            outcome,
            amount: 1250,
            currency: "EUR".into(),
            captured_amount: captured,
        })
    }

    /// One event of every type, produced by the domain.
    fn every_event() -> Vec<DomainEvent> {
        let now = OffsetDateTime::UNIX_EPOCH;
        let money = Money::positive(1250, Currency::EUR).unwrap();
        let new = || {
            Payment::create(
                PaymentId::new(),
                money,
                "cus_1".into(),
                CaptureMethod::Manual,
                now,
            )
        };
        let mut events = Vec::new();
        let mut p = new();
        events.push(p.created_event());
        events.push(
            p.apply(&auth(AuthorizationOutcome::Authorized, 0), now)
                .unwrap()
                .unwrap(),
        );
        events.push(
            p.apply(&auth(AuthorizationOutcome::Captured, 1250), now)
                .unwrap()
                .unwrap(),
        );
        let refund = Fact::Refund(RefundFact {
            refund: 1,
            provider_id: None,
            amount: 50,
            status: RefundStatus::Succeeded,
        });
        events.push(p.apply(&refund, now).unwrap().unwrap());
        let mut p = new();
        let declined = AuthorizationOutcome::Declined {
            code: "generic_decline".into(),
        };
        events.push(p.apply(&auth(declined, 0), now).unwrap().unwrap());
        let mut p = new();
        events.push(
            p.apply(&Fact::CanceledBeforeConfirmation, now)
                .unwrap()
                .unwrap(),
        );
        events
    }

    /// Every published event matches its JSON Schema (the contract a
    /// consumer in any language relies on), checked by a JSON Schema
    /// validator, formats included.
    #[test]
    fn every_event_matches_its_json_schema() {
        let events = every_event();
        let mut types: Vec<&str> = events.iter().map(DomainEvent::event_type).collect();
        types.sort_unstable();
        let mut expected = DomainEvent::TYPES.to_vec();
        expected.sort_unstable();
        assert_eq!(types, expected, "one event of each type");
        for event in events {
            let data: serde_json::Value =
                serde_json::from_slice(&event.to_json().unwrap()).unwrap();
            platform_event_contracts::assert_valid(event.event_type(), &data);
            assert_eq!(data["currency"], "EUR");
        }
    }

    /// As the relay publishes them: the envelope and the data of each type
    /// match contracts/events/envelope.schema.json and the type's schema.
    #[test]
    fn every_event_as_the_relay_publishes_it_matches_the_envelope() {
        let now = OffsetDateTime::now_utc();
        for event in every_event() {
            let record = crate::store::OutboxMessage::new(&event, now).unwrap();
            let (key, published) = crate::jobs::outbox_relay::cloud_event(record);
            assert!(key.starts_with("outbox:"));
            let mut envelope = published.envelope();
            // What daprd adds on the way (structured mode keeps the rest).
            envelope["topic"] = "payments".into();
            envelope["pubsubname"] = "pubsub".into();
            platform_event_contracts::assert_valid_envelope(&envelope);
            assert_eq!(envelope["subject"], event.subject());
        }
    }

    /// The types payments publishes are the ones the AsyncAPI lists on its
    /// `payments` channel, no more, no fewer.
    #[test]
    fn the_asyncapi_lists_exactly_the_published_types() {
        let doc = platform_event_contracts::asyncapi::document();
        let listed = platform_event_contracts::asyncapi::channels(&doc)["payments"].clone();
        let published: std::collections::BTreeSet<String> =
            DomainEvent::TYPES.iter().map(|t| (*t).to_owned()).collect();
        assert_eq!(listed, published);
    }
}
