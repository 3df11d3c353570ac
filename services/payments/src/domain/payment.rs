//! A payment intent and the events it emits.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::Money;

/// Time-ordered (UUIDv7) so that keys and event ids sort by creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PaymentId(Uuid);

impl PaymentId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(s: &str) -> Option<Self> {
        Uuid::parse_str(s).ok().map(Self)
    }

    /// The key under which the payment is kept in the state store.
    pub fn state_key(self) -> String {
        format!("payment:{}", self.0)
    }
}

impl Default for PaymentId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for PaymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    RequiresConfirmation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    pub money: Money,
    pub customer_reference: String,
    pub status: PaymentStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Payment {
    pub fn create(money: Money, customer_reference: String, now: OffsetDateTime) -> Self {
        Self {
            id: PaymentId::new(),
            money,
            customer_reference,
            status: PaymentStatus::RequiresConfirmation,
            created_at: now,
        }
    }

    pub fn created_event(&self) -> PaymentCreated {
        PaymentCreated {
            payment_id: self.id,
            amount: self.money.amount(),
            currency: self.money.currency().code().to_owned(),
            customer_reference: self.customer_reference.clone(),
            occurred_at: self.created_at,
        }
    }
}

/// `payments.payment.created` (contracts/events/payments.payment.created.schema.json).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCreated {
    pub payment_id: PaymentId,
    pub amount: i64,
    pub currency: String,
    pub customer_reference: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
}

impl PaymentCreated {
    pub const TYPE: &'static str = "payments.payment.created";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    /// The published event carries exactly the properties its contract file
    /// declares, so a consumer in any language can rely on the schema.
    #[test]
    fn payment_created_matches_its_json_schema_properties() {
        let schema: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../contracts/events/payments.payment.created.schema.json"
        ))
        .unwrap();
        let money = Money::new(1250, Currency::parse("EUR").unwrap()).unwrap();
        let payment = Payment::create(money, "cus_1".into(), OffsetDateTime::UNIX_EPOCH);
        let event = serde_json::to_value(payment.created_event()).unwrap();

        let mut emitted: Vec<&str> = event
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut declared: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        emitted.sort_unstable();
        declared.sort_unstable();
        assert_eq!(emitted, declared);
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert!(required.iter().all(|r| emitted.contains(r)));
        assert_eq!(event["amount"], 1250);
        assert_eq!(event["currency"], "EUR");
    }
}
