//! One module per aggregate, each owning its table's SQL.

pub mod bookings;
pub mod commands;
pub mod offerings;
pub mod outbox;
