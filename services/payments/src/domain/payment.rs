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
