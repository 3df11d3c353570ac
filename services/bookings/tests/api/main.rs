//! bookings against a real daprd, a real Dapr scheduler, Redis and
//! PostgreSQL (ADR 0004).

mod auth;
mod capacity;
mod contract;
mod contracts;
mod crash;
mod edge;
#[expect(clippy::expect_used, reason = "test set-up fails the test loudly")]
mod helpers;
#[expect(clippy::expect_used, reason = "test set-up fails the test loudly")]
mod ledger;
mod offerings;
mod pay;
mod saga;
