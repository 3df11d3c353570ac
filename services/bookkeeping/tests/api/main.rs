//! Integration tests of bookkeeping against a real daprd, a Redis and a
//! PostgreSQL database of their own.

mod accounts;
mod contract;
#[expect(clippy::expect_used, reason = "test helpers fail the test loudly")]
mod contract_findings;
mod events;
mod health;
#[expect(clippy::expect_used, reason = "test set-up fails the test loudly")]
mod helpers;
mod inbox;
mod ledger;
#[expect(clippy::expect_used, reason = "test helpers fail the test loudly")]
mod ledger_properties;
#[expect(clippy::unwrap_used, reason = "test helpers fail the test loudly")]
mod parking_lot;
mod statements;
