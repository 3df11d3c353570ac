//! `bookkeeping`: the double-entry ledger.
//!
//! Owns the PostgreSQL database `bookkeeping` (migrations in `migrations/`).
//! Consumes domain events over Dapr pub/sub through declarative
//! subscriptions (`dapr-config/subscriptions/`), [`booking`] each event
//! exactly once through the inbox of `platform_consumer`.

pub mod booking;
pub mod error;
mod jobs;
pub mod ledger;
pub mod posting_rules;
mod routes;
pub mod settings;
pub mod startup;
pub mod statements;

#[cfg(test)]
mod contract_tests;
