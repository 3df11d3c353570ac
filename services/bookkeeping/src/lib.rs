//! `bookkeeping`: the double-entry ledger.
//!
//! Owns the PostgreSQL database `bookkeeping` (migrations in `migrations/`).
//! Consumes domain events over Dapr pub/sub through declarative
//! subscriptions (`dapr-config/subscriptions/`), applying each event exactly
//! once through the [`inbox`].

pub mod error;
pub mod inbox;
mod jobs;
pub mod ledger;
pub mod posting_rules;
mod routes;
pub mod settings;
pub mod startup;
pub mod statements;
