//! `payments`: the payment gateway.
//!
//! Payment state lives in the Dapr state store `payments-state`
//! (`state.postgresql`); every state change, its event (an outbox record)
//! and the payment's reconciliation intent are committed in one transaction,
//! so an event is published if and only if the change is saved, and no
//! provider call is made without a saved intent (ADR 0031). The provider is
//! called through the sidecar (an `HTTPEndpoint` with a Resiliency policy);
//! idempotency records and webhook ids are in `payments-idempotency`
//! (PostgreSQL too, ADR 0030).

pub mod domain;
pub mod error;
pub mod fault;
pub mod gateway;
pub mod idempotency;
pub mod jobs;
pub mod provider;
mod routes;
pub mod settings;
pub mod startup;
pub mod store;
