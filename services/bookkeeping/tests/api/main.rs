//! Integration tests of bookkeeping against a real daprd, a Redis and a
//! PostgreSQL database of their own.

mod events;
mod health;
#[expect(clippy::expect_used, reason = "test set-up fails the test loudly")]
mod helpers;
mod ledger;
mod statements;
