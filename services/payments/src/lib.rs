//! `payments`: the payment gateway.
//!
//! Payment state lives in the Dapr state store `payments-state` (Redis
//! locally); every state change and its event are committed in one Dapr
//! transaction through the transactional outbox, so an event is published if
//! and only if the change is saved. The provider is called through the
//! sidecar (an `HTTPEndpoint` with a Resiliency policy); idempotency records,
//! webhook ids and the reconciliation set are in `payments-idempotency`.

pub mod domain;
pub mod error;
pub mod gateway;
pub mod idempotency;
pub mod provider;
mod routes;
pub mod settings;
pub mod startup;
pub mod store;
