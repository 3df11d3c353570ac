//! `payments`: the payment gateway.
//!
//! Payment state lives in the Dapr state store `payments-state` (Redis
//! locally); every state change and its event are committed in one Dapr
//! transaction through the transactional outbox, so an event is published if
//! and only if the change is saved.

pub mod domain;
pub mod error;
mod routes;
pub mod settings;
pub mod startup;
