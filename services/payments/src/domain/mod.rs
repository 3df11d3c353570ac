//! Payment domain types: pure, no I/O. Values past the HTTP boundary are
//! always valid.

mod events;
mod payment;

pub use events::{DomainEvent, PaymentEventData, RefundSucceeded};
pub use payment::{
    ACCEPTED_CURRENCIES, Applied, Attempt, AttemptStatus, AuthorizationFact, AuthorizationOutcome,
    CaptureMethod, DomainError, Fact, Payment, PaymentId, PaymentStatus, ProviderReference, Refund,
    RefundFact, RefundStatus, accepted_currency,
};
