//! Payment domain types. Values past the HTTP boundary are always valid.

mod money;
mod payment;

pub use money::{Currency, Money, MoneyError};
pub use payment::{Payment, PaymentCreated, PaymentId, PaymentStatus};
