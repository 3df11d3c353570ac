//! bookings against a real daprd, a real Dapr scheduler, Redis and
//! PostgreSQL (ADR 0004).

mod auth;
mod capacity;
mod helpers;
mod offerings;
mod saga;
