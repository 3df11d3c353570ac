//! Types that cannot hold invalid values, and the saga's rule table; no I/O.

mod offering;
pub mod saga;

pub use offering::{
    InvalidOffering, OfferingInput, OfferingKind, OfferingSpec, RefundPolicy, RefundStep,
};
pub use saga::{BookingState, Command, Decision, Fact};
