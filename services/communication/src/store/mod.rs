//! PostgreSQL, one module per aggregate: [`notifications`] (a notification,
//! its status history and how it is created), [`sends`] (the send job of a
//! notification: queue, claim, outcome, re-queue), [`receipts`] (provider
//! delivery receipts), [`recipients`] (the directory and preferences) and
//! [`throttle`] (per-recipient windows), and [`outbox`] (a message for the
//! relay, written in the caller's transaction). The status machine itself is
//! enforced by the database (migrations), not here.

pub mod notifications;
pub mod outbox;
pub mod receipts;
pub mod recipients;
pub mod sends;
mod throttle;
