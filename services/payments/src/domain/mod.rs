//! Payment domain types: pure, no I/O. Values past the HTTP boundary are
//! always valid.

mod events;
mod money;
mod payment;

pub use events::{DomainEvent, PaymentEventData, RefundSucceeded};
pub use money::{Currency, Money, MoneyError};
pub use payment::{
    Applied, Attempt, AttemptStatus, AuthorizationFact, AuthorizationOutcome, CaptureMethod,
    DomainError, Fact, Payment, PaymentId, PaymentStatus, ProviderReference, Refund, RefundFact,
    RefundStatus,
};
