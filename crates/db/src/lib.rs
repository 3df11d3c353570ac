//! PostgreSQL the one way: [`pool_options`] builds every service's pool,
//! [`begin`] starts every transaction a service opens on it.
//!
//! Why not `PgPool::begin` (sqlx 0.8.6): it sends `BEGIN`, waits for the
//! answer, and only then counts the transaction. A caller cancelled during
//! that wait (a request past its deadline, a client gone, a shutdown) drops
//! the future with the count still 0, so nothing queues a `ROLLBACK`, and the
//! connection goes back to the pool *inside* a transaction: the next request
//! that borrows it runs in that transaction, its writes never committed and
//! the locks it takes held until the connection dies. [`begin`] runs the
//! start on a task of its own, which a cancelled caller does not cancel: the
//! transaction is either handed over or, once started, dropped by the task,
//! which rolls it back like any dropped transaction.
//!
//! `clippy.toml` disallows `Pool::begin` so that this stays the one way.
//!
//! [`pool_options`] is the second line of defence: a pooled connection is
//! checked before it is handed out, and one found inside a transaction (by
//! `begin`'s bug or any other way) is closed, which rolls that transaction
//! back, instead of being used: an autocommit statement run on it would
//! answer as if done and never be committed (`make chaos` lost a recipient
//! that way, ADR 0048).

use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgConnection, PgPool, Postgres, Row, Transaction};

/// Options for a service's pool: every connection taken from it is outside
/// any transaction. The check is one round trip, `SELECT now() =
/// statement_timestamp()` as a simple query (true only when the statement
/// starts its own transaction); it replaces sqlx's ping before acquire,
/// whose work it also does: a dead connection fails it and is closed.
/// Each connection refused is logged as an error and counted in
/// `db_pool_connections_in_transaction_total`.
#[must_use]
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, _meta| Box::pin(outside_any_transaction(conn)))
}

/// Whether `conn` is outside any transaction block; logs an error when it
/// is not (the pool then closes the connection).
async fn outside_any_transaction(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    // A plain `&str` (no arguments) goes as a simple query: one message,
    // so the statement's time is its implicit transaction's start. With a
    // prepared statement the time is that of its Execute message, later
    // than the Bind that began the transaction, and the check always fails.
    let row = conn
        .fetch_one("SELECT now() = statement_timestamp()")
        .await?;
    let outside: bool = row.try_get(0)?;
    if !outside {
        tracing::error!(
            "a pooled connection was inside a transaction; closed, its uncommitted work rolled back"
        );
        metrics::counter!("db_pool_connections_in_transaction_total").increment(1);
    }
    Ok(outside)
}

/// Starts a transaction on a connection of `pool`, safe to cancel.
///
/// # Errors
/// What `PgPool::begin` returns: no connection within the pool's acquire
/// timeout, or the database refused `BEGIN`.
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let pool = pool.clone();
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place that calls it, on a task a caller cannot cancel"
    )]
    let started = tokio::spawn(async move { pool.begin().await });
    match started.await {
        Ok(result) => result,
        // The task panicked (sqlx never does) or the runtime is shutting down.
        Err(e) => Err(sqlx::Error::Io(std::io::Error::other(e))),
    }
}
