//! Queued statement exports.
//!
//! `POST /v1/statements` records a job (`queued`) and publishes it to the
//! `bookkeeping.statements` topic; the subscription hands it to
//! [`export`], which streams the account's postings from PostgreSQL into CSV
//! parts of at most [`export::PART_BYTES`] written through the Dapr output
//! binding `statements-storage` (local files here, blob storage in a cloud
//! overlay), so memory stays constant whatever the statement's size. When
//! done, `bookkeeping.statement.ready` is published.

pub mod download;
pub mod export;
mod store;

pub use store::{NewStatement, Statement, StatementStatus, Statements};

/// Must match components/*/statements-storage.yaml and the subscription.
pub const STORAGE_BINDING: &str = "statements-storage";
pub const JOBS_TOPIC: &str = "bookkeeping.statements";
pub const EVENTS_TOPIC: &str = "bookkeeping";
pub const READY_TYPE: &str = "bookkeeping.statement.ready";

/// The file name of part `n` (1-based) of a statement.
pub fn part_name(statement: uuid::Uuid, n: i32) -> String {
    format!("statements/{statement}/part-{n:05}.csv")
}
