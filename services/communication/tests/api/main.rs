//! Integration tests of communication against a real daprd, a PostgreSQL
//! database of its own, the notification sandbox and a real SMTP catcher.

mod api;
mod bookings;
mod contract;
#[expect(clippy::expect_used, reason = "test helpers fail the test loudly")]
mod contract_findings;
mod contracts;
mod email;
mod events;
mod health;
#[expect(clippy::expect_used, reason = "test set-up fails the test loudly")]
mod helpers;
mod inbox;
#[expect(clippy::unwrap_used, reason = "test helpers fail the test loudly")]
mod parking_lot;
mod providers;
#[expect(clippy::unwrap_used, reason = "test helpers fail the test loudly")]
mod receipts;
