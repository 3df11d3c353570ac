//! `bookings`: registrations for courses, camps and tournaments with limited
//! places, run as a saga across payments, bookkeeping and communication.
//!
//! Owns the PostgreSQL database `bookings` (migrations in `migrations/`):
//! offerings and their capacity (the only judge of a place), bookings with
//! the saga's state and history, the saga's pending calls, inbox and
//! outbox. Deadlines are Dapr jobs; payments is reached through the
//! sidecar; the catalogue is cached in a Dapr state store (ADRs 0037, 0038).

pub mod catalogue;
pub mod domain;
pub mod error;
mod jobs;
pub mod payments;
mod routes;
pub mod saga;
pub mod settings;
pub mod startup;
pub mod store;
