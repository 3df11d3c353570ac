//! The one way a service consumes events delivered by its Dapr sidecar.
//!
//! A subscription route hands the delivered [`CloudEvent`] to the service's
//! handler, which
//! 1. claims the event in its own `inbox` table ([`inbox::claim`],
//!    [`inbox::claim_batch`]) in the same transaction as the event's effect,
//!    so that at-least-once delivery has its effect exactly once;
//! 2. for an event it can never process, publishes a [`DeadLetter`] (the
//!    event with the reason, as `<consumer>.event.rejected` on
//!    `<topic>.deadletter`) and acknowledges it;
//! 3. ends in one [`Outcome`], which [`Outcome::respond`] counts in
//!    [`EVENTS_HANDLED`] and turns into Dapr's answer ([`TopicResponse`]);
//! 4. parks what reaches its dead-letter topics in its own database and
//!    re-drives it through the same handler ([`parking_lot`]).
//!
//! What is *not* here: the events' meaning (each service's own), the sidecar
//! client (`platform_dapr`), retries and their back-off (the sidecar's
//! resiliency policy), parsing bulk deliveries (the one bulk subscriber's
//! route).

mod cloudevent;
mod dead_letter;
pub mod inbox;
mod outcome;
pub mod parking_lot;
mod subscribe;
mod table;

pub use cloudevent::{CloudEvent, EVENT_AGE, TopicResponse};
pub use dead_letter::DeadLetter;
pub use outcome::{EVENTS_HANDLED, Outcome};
pub use subscribe::declarative_subscriptions;
